//! Keeps every warning version it receives, in arrival order, for callers that read warnings
//! at the end instead of publishing them (replay, tests).

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tianshan_core::warning::WarningEvent;

/// Messages of [`WarningLog`].
pub enum WarningLogMsg {
    /// A warning version to keep.
    Record(WarningEvent),
    /// Replies with every version kept so far and forgets them.
    Take(RpcReplyPort<Vec<WarningEvent>>),
}

impl From<WarningEvent> for WarningLogMsg {
    fn from(event: WarningEvent) -> Self {
        WarningLogMsg::Record(event)
    }
}

impl TryFrom<WarningLogMsg> for WarningEvent {
    type Error = ();

    fn try_from(msg: WarningLogMsg) -> Result<Self, Self::Error> {
        match msg {
            WarningLogMsg::Record(event) => Ok(event),
            WarningLogMsg::Take(_) => Err(()),
        }
    }
}

/// The actor keeping warning versions.
pub struct WarningLog;

impl Actor for WarningLog {
    type Msg = WarningLogMsg;
    type State = Vec<WarningEvent>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<WarningLogMsg>,
        _args: (),
    ) -> Result<Vec<WarningEvent>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _me: ActorRef<WarningLogMsg>,
        msg: WarningLogMsg,
        kept: &mut Vec<WarningEvent>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WarningLogMsg::Record(event) => kept.push(event),
            WarningLogMsg::Take(reply) => {
                let _ = reply.send(std::mem::take(kept));
            }
        }
        Ok(())
    }
}
