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

/// Casts the message `make` builds around a fresh reply port to `actor` and awaits the reply
/// for at most [`REPLY_TIMEOUT`].
///
/// # Errors
/// Returns an error naming `what` when the actor is gone, dropped the port or took too long.
pub async fn ask<M, T>(
    actor: &ractor::ActorRef<M>,
    make: impl FnOnce(RpcReplyPort<T>) -> M,
    what: &str,
) -> Result<T, ActorProcessingErr>
where
    M: ractor::Message,
{
    let (port, receiver) = reply_port();
    actor
        .cast(make(port))
        .map_err(|e| format!("{what}: the actor is gone: {e}"))?;
    await_reply(receiver, what).await
}
