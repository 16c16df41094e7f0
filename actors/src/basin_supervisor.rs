//! Owns one [`BasinActor`] per basin and routes station summaries to the basins that use them.
//!
//! ```text
//! BasinSupervisor
//!  ├── BasinActor(B0001)
//!  └── …                  one per basin of the region
//! ```
//! A basin with a snowpack also gets its snow station's summaries. A basin that fails is
//! restarted with an empty assessor (and its snowpack back at the start value); it catches up at
//! the next tick.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::{
    Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use tianshan_core::flash_flood::{Assessment, BasinAssessor, FlashFloodPolicy};
use tianshan_core::ids::BasinId;
use tianshan_core::region::{Basin, Region};
use tianshan_core::snowmelt::SnowmeltConfig;
use tianshan_core::station_windows::StationSummary;
use tracing::error;

use crate::ask::{await_reply, reply_port};
use crate::basin::{BasinActor, BasinArgs, BasinMsg};

/// Messages of [`BasinSupervisor`].
pub enum BasinSupervisorMsg {
    /// A station summary, forwarded to every basin that station belongs to.
    Summary(StationSummary),
    /// A station summary for one basin only (a sharded node owns only some of the basins a
    /// station feeds).
    SummaryFor(BasinId, StationSummary),
    /// Replies once every basin has handled all earlier messages.
    Flush(RpcReplyPort<()>),
    /// Replies with the latest assessment of every basin that has one.
    Snapshot(RpcReplyPort<Vec<Assessment>>),
    /// Replaces every basin with a fresh one, as at start, and replies (a sharded node that
    /// gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
    /// Replaces these basins with fresh ones and replies; the others keep their state (a
    /// sharded node that kept some partitions through a rebalance).
    ResetSome(BTreeSet<BasinId>, RpcReplyPort<()>),
}

impl From<StationSummary> for BasinSupervisorMsg {
    fn from(summary: StationSummary) -> Self {
        BasinSupervisorMsg::Summary(summary)
    }
}

impl TryFrom<BasinSupervisorMsg> for StationSummary {
    type Error = ();

    fn try_from(msg: BasinSupervisorMsg) -> Result<Self, ()> {
        match msg {
            BasinSupervisorMsg::Summary(summary) => Ok(summary),
            _ => Err(()),
        }
    }
}

/// Start-up arguments of [`BasinSupervisor`].
pub struct BasinSupervisorArgs {
    /// Basins to run.
    pub region: Arc<Region>,
    /// Flash-flood policy.
    pub policy: FlashFloodPolicy,
    /// Snowpack melt of the basins that have one.
    pub snowmelt: SnowmeltConfig,
    /// Where assessments go.
    pub assessments: DerivedActorRef<Assessment>,
}

/// State of [`BasinSupervisor`].
pub struct BasinSupervisorState {
    args: BasinSupervisorArgs,
    basins: BTreeMap<BasinId, ActorRef<BasinMsg>>,
}

/// The supervisor of all basin actors of a node.
pub struct BasinSupervisor;

async fn spawn_basin(
    me: &ActorRef<BasinSupervisorMsg>,
    basin: &Basin,
    settings: &BasinSupervisorArgs,
) -> Result<ActorRef<BasinMsg>, ActorProcessingErr> {
    let mut assessor = BasinAssessor::new(basin, settings.policy.clone());
    if let Some(site) = settings.region.snowpack(&basin.id) {
        assessor = assessor
            .with_snowpack(site, &settings.snowmelt)
            .map_err(|e| format!("snowpack of basin {}: {e}", basin.id))?;
    }
    let args = BasinArgs {
        assessor,
        assessments: settings.assessments.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, BasinActor, args, me.get_cell()).await?;
    Ok(actor)
}

impl Actor for BasinSupervisor {
    type Msg = BasinSupervisorMsg;
    type State = BasinSupervisorState;
    type Arguments = BasinSupervisorArgs;

    async fn pre_start(
        &self,
        me: ActorRef<BasinSupervisorMsg>,
        args: BasinSupervisorArgs,
    ) -> Result<BasinSupervisorState, ActorProcessingErr> {
        let mut basins = BTreeMap::new();
        for basin in args.region.basins.values() {
            basins.insert(basin.id.clone(), spawn_basin(&me, basin, &args).await?);
        }
        Ok(BasinSupervisorState { args, basins })
    }

    async fn handle(
        &self,
        me: ActorRef<BasinSupervisorMsg>,
        msg: BasinSupervisorMsg,
        st: &mut BasinSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            BasinSupervisorMsg::Summary(summary) => {
                for basin_id in st.args.region.basins_of_station(summary.station()) {
                    if let Some(basin) = st.basins.get(basin_id) {
                        basin.cast(BasinMsg::Summary(summary.clone()))?;
                    }
                }
            }
            BasinSupervisorMsg::SummaryFor(basin_id, summary) => {
                if let Some(basin) = st.basins.get(&basin_id) {
                    basin.cast(BasinMsg::Summary(summary))?;
                }
            }
            BasinSupervisorMsg::Reset(reply) => {
                let ids: BTreeSet<BasinId> = st.basins.keys().cloned().collect();
                renew_basins(&me, st, ids).await?;
                let _ = reply.send(());
            }
            BasinSupervisorMsg::ResetSome(ids, reply) => {
                renew_basins(&me, st, ids).await?;
                let _ = reply.send(());
            }
            BasinSupervisorMsg::Flush(reply) => {
                let mut pending = Vec::with_capacity(st.basins.len());
                for basin in st.basins.values() {
                    let (port, receiver) = reply_port();
                    basin.cast(BasinMsg::Flush(port))?;
                    pending.push(receiver);
                }
                for receiver in pending {
                    await_reply(receiver, "basin flush").await?;
                }
                let _ = reply.send(());
            }
            BasinSupervisorMsg::Snapshot(reply) => {
                let mut pending = Vec::with_capacity(st.basins.len());
                for basin in st.basins.values() {
                    let (port, receiver) = reply_port();
                    basin.cast(BasinMsg::Snapshot(port))?;
                    pending.push(receiver);
                }
                let mut assessments = Vec::new();
                for receiver in pending {
                    assessments.extend(await_reply(receiver, "basin snapshot").await?);
                }
                let _ = reply.send(assessments);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<BasinSupervisorMsg>,
        event: SupervisionEvent,
        st: &mut BasinSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            let failed = st
                .basins
                .iter()
                .find(|(_, actor)| actor.get_id() == cell.get_id())
                .map(|(id, _)| id.clone());
            if let Some(id) = failed {
                error!(basin = %id, %reason, "basin actor failed; restarting it");
                if let Some(basin) = st.args.region.basins.get(&id) {
                    let actor = spawn_basin(&me, basin, &st.args).await?;
                    st.basins.insert(id, actor);
                }
            }
        }
        Ok(())
    }
}

/// Replaces the basins `ids` with fresh ones, as at start.
async fn renew_basins(
    me: &ActorRef<BasinSupervisorMsg>,
    st: &mut BasinSupervisorState,
    ids: BTreeSet<BasinId>,
) -> Result<(), ActorProcessingErr> {
    for id in ids {
        if let Some(old) = st.basins.remove(&id) {
            old.stop(None);
        }
        if let Some(basin) = st.args.region.basins.get(&id) {
            let fresh = spawn_basin(me, basin, &st.args).await?;
            st.basins.insert(id, fresh);
        }
    }
    Ok(())
}
