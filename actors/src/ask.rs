//! Request/reply with a deadline: every caller waits a bounded time for an actor's answer.

use std::time::Duration;

use ractor::concurrency::OneshotReceiver;
use ractor::{ActorProcessingErr, RpcReplyPort};

/// How long a supervisor waits for a child's reply before it treats the child as stuck.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates a reply port and the receiver to await it on.
pub fn reply_port<T>() -> (RpcReplyPort<T>, OneshotReceiver<T>) {
    let (sender, receiver) = ractor::concurrency::oneshot();
    (RpcReplyPort::from(sender), receiver)
}

/// Awaits a reply for at most [`REPLY_TIMEOUT`].
///
/// # Errors
/// Returns an error naming `what` when the replier dropped the port or took too long.
pub async fn await_reply<T>(
    receiver: OneshotReceiver<T>,
    what: &str,
) -> Result<T, ActorProcessingErr> {
    match tokio::time::timeout(REPLY_TIMEOUT, receiver).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(format!("{what}: the actor stopped before replying").into()),
        Err(_) => Err(format!("{what}: no reply within {REPLY_TIMEOUT:?}").into()),
    }
}
