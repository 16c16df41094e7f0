//! Owns one [`StationActor`] per configured station and routes observations and ticks to them.
//!
//! ```text
//! StationSupervisor
//!  ├── StationActor(R00001)
//!  ├── StationActor(R00002)
//!  └── …                       one per station of the region
//! ```
//! A batch is applied with one request per station, all in flight at once, and the reply is
//! sent only when every station has answered: the caller (the Kafka source) commits offsets
//! after that, and cannot run ahead by more than one batch. A station that fails is restarted
//! with empty windows and the loss is logged as an error.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{
    Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use tianshan_core::ids::StationId;
use tianshan_core::observation::{Outcome, RejectReason};
use tianshan_core::region::{Region, Station, StationKind};
use tianshan_core::station_windows::{StationSummary, StationWindows, WindowsConfig};
use tianshan_core::time::EventTime;
use tracing::error;

use crate::ask::{await_reply, reply_port};
use crate::station::{Envelope, StationActor, StationArgs, StationMsg};

/// Messages of [`StationSupervisor`].
pub enum StationSupervisorMsg {
    /// Applies a batch and replies with one outcome per envelope, in order.
    ApplyBatch(Vec<Envelope>, RpcReplyPort<Vec<Outcome>>),
    /// Advances every basin member station to this tick (they emit their summaries).
    Tick(EventTime),
    /// Replies once every station has handled all earlier messages.
    Flush(RpcReplyPort<()>),
    /// Replies with the last summary of one station.
    Snapshot(StationId, RpcReplyPort<Option<StationSummary>>),
}

/// Start-up arguments of [`StationSupervisor`].
pub struct StationSupervisorArgs {
    /// Stations to run.
    pub region: Arc<Region>,
    /// Window and QC settings.
    pub windows: WindowsConfig,
    /// Where station summaries go.
    pub summaries: DerivedActorRef<StationSummary>,
}

/// State of [`StationSupervisor`].
pub struct StationSupervisorState {
    region: Arc<Region>,
    windows: WindowsConfig,
    summaries: DerivedActorRef<StationSummary>,
    stations: BTreeMap<StationId, ActorRef<StationMsg>>,
}

/// The supervisor of all station actors of a node.
pub struct StationSupervisor;

/// Builds empty windows for a station of the given kind.
pub fn windows_for(station: &Station, cfg: &WindowsConfig) -> StationWindows {
    match station.kind {
        StationKind::Rain => {
            StationWindows::rain(station.id.clone(), station.report_interval_s, cfg)
        }
        StationKind::WaterLevel => StationWindows::water_level(station.id.clone(), cfg),
        StationKind::Weather => StationWindows::weather(station.id.clone(), cfg),
    }
}

async fn spawn_station(
    me: &ActorRef<StationSupervisorMsg>,
    station: &Station,
    st_windows: &WindowsConfig,
    summaries: &DerivedActorRef<StationSummary>,
) -> Result<ActorRef<StationMsg>, ActorProcessingErr> {
    let args = StationArgs {
        windows: windows_for(station, st_windows),
        summaries: summaries.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, StationActor, args, me.get_cell()).await?;
    Ok(actor)
}

impl Actor for StationSupervisor {
    type Msg = StationSupervisorMsg;
    type State = StationSupervisorState;
    type Arguments = StationSupervisorArgs;

    async fn pre_start(
        &self,
        me: ActorRef<StationSupervisorMsg>,
        args: StationSupervisorArgs,
    ) -> Result<StationSupervisorState, ActorProcessingErr> {
        let mut stations = BTreeMap::new();
        for station in args.region.stations.values() {
            stations.insert(
                station.id.clone(),
                spawn_station(&me, station, &args.windows, &args.summaries).await?,
            );
        }
        Ok(StationSupervisorState {
            region: args.region,
            windows: args.windows,
            summaries: args.summaries,
            stations,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<StationSupervisorMsg>,
        msg: StationSupervisorMsg,
        st: &mut StationSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StationSupervisorMsg::ApplyBatch(batch, reply) => {
                let outcomes = apply_batch(&st.stations, batch).await?;
                let _ = reply.send(outcomes);
            }
            StationSupervisorMsg::Tick(tick) => {
                // Only basin members feed an assessment; other stations' windows advance on
                // their next observation, so they need no tick.
                for (id, station) in &st.stations {
                    if !st.region.basins_of_station(id).is_empty() {
                        station.cast(StationMsg::Tick(tick))?;
                    }
                }
            }
            StationSupervisorMsg::Flush(reply) => {
                let mut pending = Vec::with_capacity(st.stations.len());
                for station in st.stations.values() {
                    let (port, receiver) = reply_port();
                    station.cast(StationMsg::Flush(port))?;
                    pending.push(receiver);
                }
                for receiver in pending {
                    await_reply(receiver, "station flush").await?;
                }
                let _ = reply.send(());
            }
            StationSupervisorMsg::Snapshot(id, reply) => match st.stations.get(&id) {
                Some(station) => {
                    let (port, receiver) = reply_port();
                    station.cast(StationMsg::Snapshot(port))?;
                    let _ = reply.send(await_reply(receiver, "station snapshot").await?);
                }
                None => {
                    let _ = reply.send(None);
                }
            },
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<StationSupervisorMsg>,
        event: SupervisionEvent,
        st: &mut StationSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            let failed = st
                .stations
                .iter()
                .find(|(_, actor)| actor.get_id() == cell.get_id())
                .map(|(id, _)| id.clone());
            if let Some(id) = failed {
                error!(station = %id, %reason, "station actor failed; restarting it with empty windows");
                if let Some(station) = st.region.stations.get(&id) {
                    let actor = spawn_station(&me, station, &st.windows, &st.summaries).await?;
                    st.stations.insert(id, actor);
                }
            }
        }
        Ok(())
    }
}

/// Sends each station its part of the batch, all at once, and gathers the outcomes in input order.
async fn apply_batch(
    stations: &BTreeMap<StationId, ActorRef<StationMsg>>,
    batch: Vec<Envelope>,
) -> Result<Vec<Outcome>, ActorProcessingErr> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
    let mut by_station: BTreeMap<StationId, (Vec<usize>, Vec<Envelope>)> = BTreeMap::new();
    for (index, envelope) in batch.into_iter().enumerate() {
        if stations.contains_key(&envelope.observation.station) {
            let entry = by_station
                .entry(envelope.observation.station.clone())
                .or_default();
            entry.0.push(index);
            entry.1.push(envelope);
        } else {
            let detail = format!(
                "station {} is not in the region's station list",
                envelope.observation.station
            );
            outcomes[index] = Some(Outcome::rejected(RejectReason::UnknownStation, detail));
        }
    }
    let mut pending = Vec::with_capacity(by_station.len());
    for (id, (indices, envelopes)) in by_station {
        let (port, receiver) = reply_port();
        if let Some(station) = stations.get(&id) {
            station.cast(StationMsg::Apply(envelopes, port))?;
            pending.push((indices, receiver));
        }
    }
    for (indices, receiver) in pending {
        let replies = await_reply(receiver, "station apply").await?;
        for (index, outcome) in indices.into_iter().zip(replies) {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.ok_or_else(|| {
                ActorProcessingErr::from("a station returned fewer outcomes than it was sent")
            })
        })
        .collect()
}
