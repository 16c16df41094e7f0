//! The deformation → landslide chain of the node's monitored slopes. Receives the deformation
//! readings the `StationSupervisor` routes to it, the summaries of the slope basins' rain gauges
//! and then every evaluation tick; emits landslide warning versions (`WarningEvent`) to
//! `warnings`. The decisions are `tianshan_core::landslide_chain`'s and `slope_rain`'s.

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::landslide_chain::LandslideChain;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::observation::Outcome;
use tianshan_core::slope_rain::SlopeRain;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use crate::station::Envelope;

/// Messages of [`LandslideChainActor`].
pub enum LandslideChainMsg {
    /// Deformation readings in arrival order; replies with one outcome each.
    Readings(Vec<Envelope>, RpcReplyPort<Vec<Outcome>>),
    /// The summaries of the watched rain gauges at a tick, sent before that tick.
    Summaries(Vec<StationSummary>),
    /// Every reading and gauge summary up to this tick is in: assess the slopes.
    Tick(EventTime),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Forgets every warning thread and model state, as at start, and replies (a sharded node
    /// that gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
}

/// Start-up arguments of [`LandslideChainActor`].
pub struct LandslideChainArgs {
    /// The slopes' chain, built from the region and the landslide policy.
    pub chain: LandslideChain,
    /// The rain on the slopes, from their basins' gauges.
    pub rain: SlopeRain,
    /// Warning timing.
    pub policy: LifecyclePolicy,
    /// Where warning versions go.
    pub warnings: DerivedActorRef<WarningEvent>,
}

/// State of [`LandslideChainActor`].
pub struct LandslideChainState {
    chain: LandslideChain,
    rain: SlopeRain,
    /// The chain and rain as at start, for a reset.
    initial: (LandslideChain, SlopeRain),
    policy: LifecyclePolicy,
    warnings: DerivedActorRef<WarningEvent>,
}

/// The actor running the landslide warnings of the node's slopes.
pub struct LandslideChainActor;

impl Actor for LandslideChainActor {
    type Msg = LandslideChainMsg;
    type State = LandslideChainState;
    type Arguments = LandslideChainArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<LandslideChainMsg>,
        args: LandslideChainArgs,
    ) -> Result<LandslideChainState, ActorProcessingErr> {
        Ok(LandslideChainState {
            initial: (args.chain.clone(), args.rain.clone()),
            chain: args.chain,
            rain: args.rain,
            policy: args.policy,
            warnings: args.warnings,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<LandslideChainMsg>,
        msg: LandslideChainMsg,
        st: &mut LandslideChainState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LandslideChainMsg::Readings(readings, reply) => {
                let outcomes = readings
                    .iter()
                    .map(|envelope| st.chain.observe(&envelope.observation))
                    .collect();
                let _ = reply.send(outcomes);
            }
            LandslideChainMsg::Summaries(summaries) => {
                for summary in &summaries {
                    st.rain.observe(summary);
                }
            }
            LandslideChainMsg::Tick(tick) => {
                let rain_by_basin = st.rain.rain_by_basin();
                for event in st.chain.on_tick(tick, &rain_by_basin, &st.policy) {
                    st.warnings
                        .send_message(event)
                        .map_err(|_| "warnings downstream is gone")?;
                }
            }
            LandslideChainMsg::Reset(reply) => {
                (st.chain, st.rain) = st.initial.clone();
                let _ = reply.send(());
            }
            LandslideChainMsg::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
