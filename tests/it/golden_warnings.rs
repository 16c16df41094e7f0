//! The golden files of the storm: its warning versions, shared by the Kafka test and the replay
//! test (one line `id version status level action` per version, sorted), and who its books
//! hold to acknowledge, shared by the one-node and the three-node Kafka tests.

use tianshan_core::dissemination::acknowledgement::{ForcedAcknowledgement, Subject};
use tianshan_proto::v1;

/// The golden file.
pub const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/golden/storm_warnings.txt"
);

/// Returns the golden line of one warning version.
pub fn golden_line(w: &v1::Warning) -> String {
    format!(
        "{} v{} {} {} {}",
        w.id,
        w.version,
        w.status().as_str_name(),
        w.level().as_str_name(),
        w.action().as_str_name()
    )
}

/// Returns the sorted lines as the golden file's text.
pub fn golden_text(mut lines: Vec<String>) -> String {
    lines.sort();
    lines.join("\n") + "\n"
}

/// Returns the golden file's text.
pub fn read_golden() -> String {
    std::fs::read_to_string(GOLDEN)
        .expect("golden file exists (run the storm test with UPDATE_GOLDEN=1 to create it)")
}

/// The golden file of who the storm's books hold to acknowledge at the end, as one node leaves
/// them: nobody signs in the storm tests, so these are the responsible persons each orange or
/// red draft was released to early.
pub const BOOKS_GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/it/golden/storm_books.txt"
);

/// Returns the sorted lines `id version recipient` of every obligation to acknowledge a warning
/// itself in `books` (handovers, which depend on how long people took, are left out).
pub fn book_lines(books: &[ForcedAcknowledgement]) -> Vec<String> {
    let mut lines: Vec<String> = books
        .iter()
        .flat_map(|book| {
            book.obligations()
                .filter(|(_, subject, _)| **subject == Subject::Warning)
                .map(move |(recipient, _, _)| {
                    format!("{} v{} {recipient}", book.warning(), book.version())
                })
        })
        .collect();
    lines.sort();
    lines
}

/// Returns the books golden file's text.
pub fn read_books_golden() -> String {
    std::fs::read_to_string(BOOKS_GOLDEN)
        .expect("books golden file exists (run the storm test with UPDATE_GOLDEN=1 to create it)")
}

/// Polls `books` (each node's books in force, together) until their lines match the books
/// golden file, for up to 30 s; returns the last text seen. The releases reach the trees a
/// moment after the warnings are published.
pub async fn books_settled_text<F, Fut>(books: F) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<ForcedAcknowledgement>>,
{
    let golden = std::fs::read_to_string(BOOKS_GOLDEN).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = golden_text(book_lines(&books().await));
        if text == golden || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
