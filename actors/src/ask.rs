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
    await_reply_by(tokio::time::Instant::now() + REPLY_TIMEOUT, receiver, what).await
}

/// Awaits a reply until `deadline`; a reply already there is taken even past it.
async fn await_reply_by<T>(
    deadline: tokio::time::Instant,
    receiver: OneshotReceiver<T>,
    what: &str,
) -> Result<T, ActorProcessingErr> {
    match tokio::time::timeout_at(deadline, receiver).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(format!("{what}: the actor stopped before replying").into()),
        Err(_) => Err(format!("{what}: no reply within {REPLY_TIMEOUT:?}").into()),
    }
}

/// Awaits every reply of a fan-out in order, all by one deadline [`REPLY_TIMEOUT`] from now
/// (not a fresh timeout per reply: a fan-out may reach every station of a node); returns each
/// reply, or why it is missing. A reply that came before the deadline is kept even when an
/// earlier one never comes.
pub async fn await_each<T>(
    receivers: Vec<OneshotReceiver<T>>,
    what: &str,
) -> Vec<Result<T, ActorProcessingErr>> {
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    let mut replies = Vec::with_capacity(receivers.len());
    for receiver in receivers {
        replies.push(await_reply_by(deadline, receiver, what).await);
    }
    replies
}

/// Awaits every reply of a fan-out in order, all within one [`REPLY_TIMEOUT`].
///
/// # Errors
/// Returns the first missing reply's error, naming `what`.
pub async fn await_all<T>(
    receivers: Vec<OneshotReceiver<T>>,
    what: &str,
) -> Result<Vec<T>, ActorProcessingErr> {
    await_each(receivers, what).await.into_iter().collect()
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

/// The replies of a fan-out through one channel instead of one oneshot each: each replier
/// sends its index with its reply. Cheaper when a fan-out reaches every station of a node.
pub struct FanIn<T> {
    sender: tokio::sync::mpsc::UnboundedSender<(usize, T)>,
    receiver: tokio::sync::mpsc::UnboundedReceiver<(usize, T)>,
    ports: usize,
}

/// Where one replier of a [`FanIn`] sends its reply.
pub struct FanInPort<T> {
    index: usize,
    sender: tokio::sync::mpsc::UnboundedSender<(usize, T)>,
}

impl<T> FanInPort<T> {
    /// Sends the reply; nothing happens if the fan-in was given up.
    pub fn send(self, reply: T) {
        let _ = self.sender.send((self.index, reply));
    }
}

impl<T> Default for FanIn<T> {
    fn default() -> Self {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        Self {
            sender,
            receiver,
            ports: 0,
        }
    }
}

impl<T> FanIn<T> {
    /// Returns the port of the next replier.
    pub fn port(&mut self) -> FanInPort<T> {
        self.ports += 1;
        FanInPort {
            index: self.ports - 1,
            sender: self.sender.clone(),
        }
    }

    /// Awaits every port's reply within one [`REPLY_TIMEOUT`] and returns them in port order.
    ///
    /// # Errors
    /// Returns an error naming `what` when a replier dropped its port (it stopped) or the
    /// replies did not all come in time.
    pub async fn gather(self, what: &str) -> Result<Vec<T>, ActorProcessingErr> {
        let Self {
            sender,
            mut receiver,
            ports,
        } = self;
        // Once every replier has answered or dropped its port, the channel closes.
        drop(sender);
        let mut replies: Vec<Option<T>> = std::iter::repeat_with(|| None).take(ports).collect();
        let mut received = 0;
        let mut chunk = Vec::with_capacity(256);
        let all = async {
            while received < ports && receiver.recv_many(&mut chunk, 256).await > 0 {
                for (index, reply) in chunk.drain(..) {
                    replies[index] = Some(reply);
                    received += 1;
                }
            }
        };
        if tokio::time::timeout(REPLY_TIMEOUT, all).await.is_err() {
            return Err(format!("{what}: no reply within {REPLY_TIMEOUT:?}").into());
        }
        replies
            .into_iter()
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| format!("{what}: an actor stopped before replying").into())
    }
}
