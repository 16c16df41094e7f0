//! The warning lifecycle of every basin on this node. Receives basin `Assessment`s; emits each
//! new warning version (`WarningEvent`) to `warnings` (the warnings publisher in `pipelines`, or
//! a recorder in tests), and passes each assessment with the basin's active flash-flood warning
//! on to the hazard chains (`chains`). Top-level actor of the node, started before the basins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::flash_flood::Assessment;
use tianshan_core::ids::BasinId;
use tianshan_core::lifecycle::{LifecyclePolicy, WarningThread};
use tianshan_core::region::Region;
use tianshan_core::warning::{Hazard, WarningEvent};

use crate::debris_flow_chain::ChainInput;

/// Messages of [`WarningManager`].
pub enum WarningManagerMsg {
    /// A basin's assessment for one tick.
    Assess(Assessment),
    /// Replies with the last version of every active warning, ordered by id.
    Active(RpcReplyPort<Vec<WarningEvent>>),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Forgets every warning thread and model state, as at start, and replies (a sharded node
    /// that gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
    /// Forgets the warning threads of these basins and replies; the others go on (a sharded
    /// node that kept some partitions through a rebalance).
    ResetSome(BTreeSet<BasinId>, RpcReplyPort<()>),
}

impl From<Assessment> for WarningManagerMsg {
    fn from(assessment: Assessment) -> Self {
        WarningManagerMsg::Assess(assessment)
    }
}

impl TryFrom<WarningManagerMsg> for Assessment {
    type Error = ();

    fn try_from(msg: WarningManagerMsg) -> Result<Self, ()> {
        match msg {
            WarningManagerMsg::Assess(assessment) => Ok(assessment),
            _ => Err(()),
        }
    }
}

/// Start-up arguments of [`WarningManager`].
pub struct WarningManagerArgs {
    /// Basins and their areas.
    pub region: Arc<Region>,
    /// Timing of upgrades, downgrades, renewals and cancellations.
    pub policy: LifecyclePolicy,
    /// Where warning versions go.
    pub warnings: DerivedActorRef<WarningEvent>,
    /// The chains fed by flash floods (the debris-flow chain), if any.
    pub chains: Option<DerivedActorRef<ChainInput>>,
}

/// State of [`WarningManager`].
pub struct WarningManagerState {
    region: Arc<Region>,
    policy: LifecyclePolicy,
    warnings: DerivedActorRef<WarningEvent>,
    chains: Option<DerivedActorRef<ChainInput>>,
    threads: BTreeMap<BasinId, WarningThread>,
}

/// The actor running the flash-flood warning lifecycle per basin.
pub struct WarningManager;

impl Actor for WarningManager {
    type Msg = WarningManagerMsg;
    type State = WarningManagerState;
    type Arguments = WarningManagerArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<WarningManagerMsg>,
        args: WarningManagerArgs,
    ) -> Result<WarningManagerState, ActorProcessingErr> {
        Ok(WarningManagerState {
            region: args.region,
            policy: args.policy,
            warnings: args.warnings,
            chains: args.chains,
            threads: BTreeMap::new(),
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<WarningManagerMsg>,
        msg: WarningManagerMsg,
        st: &mut WarningManagerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WarningManagerMsg::Assess(assessment) => {
                let region = &st.region;
                let thread = st
                    .threads
                    .entry(assessment.basin.clone())
                    .or_insert_with(|| {
                        let areas = region
                            .basins
                            .get(&assessment.basin)
                            .map(|b| b.area_codes())
                            .unwrap_or_default();
                        WarningThread::new(Hazard::FlashFlood, assessment.basin.as_str(), areas)
                    });
                let emitted = thread.on_assessment(
                    assessment.tick,
                    assessment.raw_level,
                    assessment.held_level,
                    &assessment.evidence,
                    &st.policy,
                );
                let flash_flood = thread.active().cloned();
                if let Some(event) = emitted {
                    st.warnings
                        .send_message(event)
                        .map_err(|_| "warnings downstream is gone")?;
                }
                if let Some(chains) = &st.chains {
                    chains
                        .send_message(ChainInput {
                            assessment,
                            flash_flood,
                        })
                        .map_err(|_| "hazard chains downstream are gone")?;
                }
            }
            WarningManagerMsg::Active(reply) => {
                let active = st
                    .threads
                    .values()
                    .filter_map(|t| t.active().cloned())
                    .collect();
                let _ = reply.send(active);
            }
            WarningManagerMsg::Reset(reply) => {
                st.threads.clear();
                let _ = reply.send(());
            }
            WarningManagerMsg::ResetSome(basins, reply) => {
                st.threads.retain(|basin, _| !basins.contains(basin));
                let _ = reply.send(());
            }
            WarningManagerMsg::Flush(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
