//! A whole-test deadline for the tests that run nodes in this process: past it the test fails
//! with its name instead of hanging the run, and dropping its future stops the nodes it started.

use std::future::Future;
use std::time::Duration;

/// Longest a test running storm nodes in this process may take, rebuilds and all, on a loaded
/// 2-core machine (each has its own inner deadlines well below it).
pub(crate) const STORM_TEST_LIMIT: Duration = Duration::from_secs(600);

/// Runs `test` to the end or fails once `limit` has passed.
pub(crate) async fn finishes_within<F: Future<Output = ()>>(limit: Duration, test: F) {
    if tokio::time::timeout(limit, test).await.is_err() {
        panic!("the test did not finish within {limit:?}");
    }
}
