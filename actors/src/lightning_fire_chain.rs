//! The lightning → fire chain of the node's fire zones. Receives the lightning strokes the
//! `StationSupervisor` routes to it, the summaries of the weather stations and gauges the zones'
//! fuel state and strokes' rain come from, and every evaluation tick; emits fire warning versions
//! (`WarningEvent`) to `warnings`. The decisions are `tianshan_core::lightning_fire_chain`'s.

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::lightning_fire_chain::LightningFireChain;
use tianshan_core::observation::Outcome;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use crate::station::Envelope;

/// Messages of [`LightningFireChainActor`].
pub enum LightningFireChainMsg {
    /// Strokes in arrival order; replies with one outcome each.
    Strokes(Vec<Envelope>, RpcReplyPort<Vec<Outcome>>),
    /// The summaries of the watched stations at a tick, sent before that tick.
    Summaries(Vec<StationSummary>),
    /// Every stroke up to this tick is in: assess the zones.
    Tick(EventTime),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Forgets every warning thread and model state, as at start, and replies (a sharded node
    /// that gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
}

/// Start-up arguments of [`LightningFireChainActor`].
pub struct LightningFireChainArgs {
    /// The zones' chain, built from the region and the lightning-fire config.
    pub chain: LightningFireChain,
    /// Warning timing.
    pub policy: LifecyclePolicy,
    /// Where warning versions go.
    pub warnings: DerivedActorRef<WarningEvent>,
}

/// State of [`LightningFireChainActor`].
pub struct LightningFireChainState {
    chain: LightningFireChain,
    /// The chain as at start, for a reset.
    initial: LightningFireChain,
    policy: LifecyclePolicy,
    warnings: DerivedActorRef<WarningEvent>,
}

/// The actor running the fire warnings of the node's zones.
pub struct LightningFireChainActor;

impl Actor for LightningFireChainActor {
    type Msg = LightningFireChainMsg;
    type State = LightningFireChainState;
    type Arguments = LightningFireChainArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<LightningFireChainMsg>,
        args: LightningFireChainArgs,
    ) -> Result<LightningFireChainState, ActorProcessingErr> {
        Ok(LightningFireChainState {
            initial: args.chain.clone(),
            chain: args.chain,
            policy: args.policy,
            warnings: args.warnings,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<LightningFireChainMsg>,
        msg: LightningFireChainMsg,
        st: &mut LightningFireChainState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LightningFireChainMsg::Strokes(strokes, reply) => {
                let outcomes = strokes
                    .iter()
                    .map(|envelope| st.chain.observe(&envelope.observation))
                    .collect();
                let _ = reply.send(outcomes);
            }
            LightningFireChainMsg::Summaries(summaries) => {
                for summary in &summaries {
                    st.chain.observe_summary(summary);
                }
            }
            LightningFireChainMsg::Tick(tick) => {
                for event in st.chain.on_tick(tick, &st.policy) {
                    st.warnings
                        .send_message(event)
                        .map_err(|_| "warnings downstream is gone")?;
                }
            }
            LightningFireChainMsg::Reset(reply) => {
                st.chain = st.initial.clone();
                let _ = reply.send(());
            }
            LightningFireChainMsg::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
