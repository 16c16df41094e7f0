//! The debris-flow chain of every gully on this node. Receives each basin assessment together
//! with the basin's active flash-flood warning from the `WarningManager`; emits debris-flow
//! warning versions (`WarningEvent`, linked to the flash-flood warning that raised them) to
//! `warnings`. The decisions are `tianshan_core::debris_flow_chain`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::debris_flow::DebrisFlowConfig;
use tianshan_core::debris_flow_chain::DebrisFlowChain;
use tianshan_core::flash_flood::Assessment;
use tianshan_core::ids::BasinId;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::region::Region;
use tianshan_core::warning::WarningEvent;

/// A basin's assessment with the basin's active flash-flood warning after it.
#[derive(Debug, Clone)]
pub struct ChainInput {
    /// The flash-flood assessment of the basin.
    pub assessment: Assessment,
    /// The basin's active flash-flood warning, if any.
    pub flash_flood: Option<WarningEvent>,
}

/// Messages of [`DebrisFlowChainActor`].
pub enum DebrisFlowChainMsg {
    /// The next assessment of a basin.
    Assessed(ChainInput),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Forgets every warning thread and model state, as at start, and replies (a sharded node
    /// that gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
    /// Puts the chains of these basins' gullies back as at start and replies; the others go
    /// on (a sharded node that kept some partitions through a rebalance).
    ResetSome(BTreeSet<BasinId>, RpcReplyPort<()>),
}

impl From<ChainInput> for DebrisFlowChainMsg {
    fn from(input: ChainInput) -> Self {
        DebrisFlowChainMsg::Assessed(input)
    }
}

impl TryFrom<DebrisFlowChainMsg> for ChainInput {
    type Error = ();

    fn try_from(msg: DebrisFlowChainMsg) -> Result<Self, ()> {
        match msg {
            DebrisFlowChainMsg::Assessed(input) => Ok(input),
            _ => Err(()),
        }
    }
}

/// Start-up arguments of [`DebrisFlowChainActor`].
pub struct DebrisFlowChainArgs {
    /// Gullies and their basins' areas.
    pub region: Arc<Region>,
    /// Debris-flow models and the chain step.
    pub config: DebrisFlowConfig,
    /// Warning timing.
    pub policy: LifecyclePolicy,
    /// Where warning versions go.
    pub warnings: DerivedActorRef<WarningEvent>,
}

/// State of [`DebrisFlowChainActor`].
pub struct DebrisFlowChainState {
    config: DebrisFlowConfig,
    policy: LifecyclePolicy,
    warnings: DerivedActorRef<WarningEvent>,
    chains: BTreeMap<BasinId, DebrisFlowChain>,
    /// The chains as at start, for a reset.
    initial: BTreeMap<BasinId, DebrisFlowChain>,
}

/// The actor running the debris-flow chain per gully.
pub struct DebrisFlowChainActor;

impl Actor for DebrisFlowChainActor {
    type Msg = DebrisFlowChainMsg;
    type State = DebrisFlowChainState;
    type Arguments = DebrisFlowChainArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<DebrisFlowChainMsg>,
        args: DebrisFlowChainArgs,
    ) -> Result<DebrisFlowChainState, ActorProcessingErr> {
        let chains: BTreeMap<BasinId, DebrisFlowChain> = args
            .region
            .gullies
            .values()
            .map(|gully| {
                let areas = args
                    .region
                    .basins
                    .get(&gully.basin)
                    .map(|basin| basin.area_codes())
                    .unwrap_or_default();
                (
                    gully.basin.clone(),
                    DebrisFlowChain::new(gully.clone(), areas),
                )
            })
            .collect();
        Ok(DebrisFlowChainState {
            initial: chains.clone(),
            config: args.config,
            policy: args.policy,
            warnings: args.warnings,
            chains,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<DebrisFlowChainMsg>,
        msg: DebrisFlowChainMsg,
        st: &mut DebrisFlowChainState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DebrisFlowChainMsg::Assessed(input) => {
                let Some(chain) = st.chains.get_mut(&input.assessment.basin) else {
                    return Ok(());
                };
                let emitted = chain.on_assessment(
                    &input.assessment,
                    input.flash_flood.as_ref(),
                    &st.config,
                    &st.policy,
                );
                if let Some(event) = emitted {
                    st.warnings
                        .send_message(event)
                        .map_err(|_| "warnings downstream is gone")?;
                }
            }
            DebrisFlowChainMsg::Reset(reply) => {
                st.chains = st.initial.clone();
                let _ = reply.send(());
            }
            DebrisFlowChainMsg::ResetSome(basins, reply) => {
                for basin in &basins {
                    if let Some(initial) = st.initial.get(basin) {
                        st.chains.insert(basin.clone(), initial.clone());
                    }
                }
                let _ = reply.send(());
            }
            DebrisFlowChainMsg::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
