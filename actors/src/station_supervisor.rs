//! Owns one [`StationActor`] per configured station and routes observations and ticks to them.
//!
//! ```text
//! StationSupervisor
//!  ├── StationActor(R00001)
//!  ├── StationActor(R00002)
//!  └── …                       one per station of the region
//! ```
//! A batch is applied with one request per station, all in flight at once, and the reply is
//! sent only when every station has answered: the caller (the Kafka source) stores offsets
//! after that. Batches wait in this mailbox in order, one applied at a time. Lightning strokes and deformation
//! readings belong to no station: they go to the fire and landslide chains. At every tick each
//! chain then gets the summaries of the stations it watches (weather stations and gauges),
//! and after them the tick, so a chain always decides on the same inputs whatever the batch
//! boundaries were. A replay hands over a whole span of batches and ticks at once instead
//! (`ApplySpan`): stations no tick reaches then get one message per span, not one per batch.
//! A station that fails is restarted with empty windows and the loss is logged as an error; if
//! it fails during a batch, its part of that batch is rejected as `station_failed` (so it
//! reaches the dead letters, nothing is lost).

mod routing;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ractor::{
    Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use tianshan_core::event_clock::Release;
use tianshan_core::ids::StationId;
use tianshan_core::observation::Outcome;
use tianshan_core::region::{Region, Station, StationKind};
use tianshan_core::station_windows::{StationSummary, StationWindows, WindowsConfig};
use tianshan_core::time::EventTime;
use tracing::error;

use self::routing::{destination, Destination, Outcomes, Parts};
use crate::ask::{await_all, await_each, await_reply, reply_port, FanIn};
use crate::landslide_chain::LandslideChainMsg;
use crate::lightning_fire_chain::LightningFireChainMsg;
use crate::station::{Envelope, StationActor, StationArgs, StationMsg};

/// Messages of [`StationSupervisor`].
pub enum StationSupervisorMsg {
    /// Applies a batch and replies with one outcome per envelope, in order.
    ApplyBatch(Vec<Envelope>, RpcReplyPort<Vec<Outcome>>),
    /// Applies a span of the event-time merge, its batches and the ticks between them in order,
    /// and replies with one outcome per envelope of its batches, in order. The windows, the
    /// summaries and the chains see what [`StationSupervisorMsg::ApplyBatch`] and
    /// [`StationSupervisorMsg::Tick`] one after another would give them (unless a station
    /// fails during the span: it is restarted after it); stations no tick reaches get the
    /// span's envelopes in one message instead of one per batch (a replay running as fast as
    /// it can).
    ApplySpan(Vec<Release<Envelope>>, RpcReplyPort<Vec<Outcome>>),
    /// Advances every basin member station to this tick (they emit their summaries).
    Tick(EventTime),
    /// Replies once every station has handled all earlier messages.
    Flush(RpcReplyPort<()>),
    /// Replies with the last summary of one station.
    Snapshot(StationId, RpcReplyPort<Option<StationSummary>>),
    /// Advances every station to this time and replies with all their summaries, in station-id
    /// order, without sending them downstream (replay checks, consistent snapshots).
    SummarizeAll(EventTime, RpcReplyPort<Vec<StationSummary>>),
    /// Replies with the last summary of every station that has one, in station-id order (SQL
    /// snapshots of a running node). A station a tick reaches gives its summary of the last tick
    /// without advancing any window; one no tick reaches is summarized at the last tick now, if
    /// it has applied a reading (see [`StationMsg::SnapshotInto`]).
    SnapshotAll(RpcReplyPort<Vec<StationSummary>>),
    /// Advances the given stations to this tick and replies with their summaries, in the order
    /// given, without sending them downstream (a sharded node sends them on through Kafka).
    /// Unknown stations are left out.
    SummarizeSome(
        EventTime,
        Arc<Vec<StationId>>,
        RpcReplyPort<Vec<StationSummary>>,
    ),
    /// The given stations have passed this tick, whose summaries an earlier owner already sent
    /// on (a sharded node re-reading its log): each is advanced to it just before its next
    /// observations or summary, as it was when those observations were first applied, instead
    /// of every station getting a message at every tick now. Unknown stations are left out.
    AdvanceLater(EventTime, Arc<Vec<StationId>>),
    /// Replaces every station with one holding empty windows, as at start, and replies (a
    /// sharded node that gained or lost partitions rebuilds them from the log).
    Reset(RpcReplyPort<()>),
    /// Replaces the given stations with ones holding empty windows and replies (a sharded node
    /// that gained or lost some partitions while keeping others); unknown stations are left out.
    ResetSome(Arc<Vec<StationId>>, RpcReplyPort<()>),
}

/// Start-up arguments of [`StationSupervisor`].
pub struct StationSupervisorArgs {
    /// Stations to run.
    pub region: Arc<Region>,
    /// Window and QC settings.
    pub windows: WindowsConfig,
    /// Where station summaries go.
    pub summaries: DerivedActorRef<StationSummary>,
    /// The chains fed by the stations directly.
    pub chains: ChainFeeds,
}

/// A chain actor fed by the station supervisor, and the stations whose summaries it reads at
/// every tick.
pub struct ChainFeed<M: ractor::Message> {
    /// The chain.
    pub actor: ActorRef<M>,
    /// The stations it watches.
    pub watched: BTreeSet<StationId>,
}

/// The chains the station supervisor feeds; a reading for a chain that is not there is an
/// unknown station.
#[derive(Default)]
pub struct ChainFeeds {
    /// Lightning strokes, weather and gauge summaries → the fire chain.
    pub fire: Option<ChainFeed<LightningFireChainMsg>>,
    /// Deformation readings and slope gauge summaries → the landslide chain.
    pub landslide: Option<ChainFeed<LandslideChainMsg>>,
}

impl ChainFeeds {
    /// Returns the station slots some chain watches, resolved once at start.
    fn watched_slots(&self, stations: &StationRoutes) -> Vec<usize> {
        let fire = self.fire.iter().flat_map(|feed| feed.watched.iter());
        let landslide = self.landslide.iter().flat_map(|feed| feed.watched.iter());
        let slots: BTreeSet<usize> = fire
            .chain(landslide)
            .filter_map(|id| stations.index.get(id).copied())
            .collect();
        slots.into_iter().collect()
    }
}

/// State of [`StationSupervisor`].
pub struct StationSupervisorState {
    region: Arc<Region>,
    windows: WindowsConfig,
    summaries: DerivedActorRef<StationSummary>,
    stations: StationRoutes,
    /// Stations that feed at least one basin: the only ones a tick must reach.
    basin_members: Vec<usize>,
    /// Stations some chain watches: summarized for the chains at every tick.
    chain_watched: Vec<usize>,
    /// Per station slot: a tick reaches it (a basin member or watched by a chain).
    ticked: Vec<bool>,
    chains: ChainFeeds,
    /// Per station slot, the tick it must be advanced to before its next message
    /// ([`StationSupervisorMsg::AdvanceLater`]).
    advance_due: Vec<Option<EventTime>>,
    /// The newest tick the stations have been given (ticked, summarized or advanced later).
    last_tick: Option<EventTime>,
}

/// The station actors in station-id order, with a hash index for routing observations.
struct StationRoutes {
    ids: Vec<StationId>,
    actors: Vec<ActorRef<StationMsg>>,
    index: HashMap<StationId, usize>,
}

impl StationRoutes {
    fn get(&self, id: &StationId) -> Option<&ActorRef<StationMsg>> {
        self.index.get(id).map(|&slot| &self.actors[slot])
    }
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

/// Replaces the station in `slot` with one holding empty windows and nothing due.
async fn respawn_empty(
    me: &ActorRef<StationSupervisorMsg>,
    st: &mut StationSupervisorState,
    slot: usize,
) -> Result<(), ActorProcessingErr> {
    if let Some(station) = st.region.stations.get(&st.stations.ids[slot]) {
        st.stations.actors[slot].stop(None);
        st.stations.actors[slot] = spawn_station(me, station, &st.windows, &st.summaries).await?;
    }
    st.advance_due[slot] = None;
    Ok(())
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
        let mut stations = StationRoutes {
            ids: Vec::with_capacity(args.region.stations.len()),
            actors: Vec::with_capacity(args.region.stations.len()),
            index: HashMap::with_capacity(args.region.stations.len()),
        };
        for station in args.region.stations.values() {
            let actor = spawn_station(&me, station, &args.windows, &args.summaries).await?;
            stations
                .index
                .insert(station.id.clone(), stations.ids.len());
            stations.ids.push(station.id.clone());
            stations.actors.push(actor);
        }
        let basin_members = stations
            .ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !args.region.basins_of_station(id).is_empty())
            .map(|(slot, _)| slot)
            .collect();
        let chain_watched = args.chains.watched_slots(&stations);
        let mut ticked = vec![false; stations.actors.len()];
        for &slot in chain_watched.iter().chain(&basin_members) {
            ticked[slot] = true;
        }
        Ok(StationSupervisorState {
            advance_due: vec![None; stations.actors.len()],
            last_tick: None,
            basin_members,
            chain_watched,
            ticked,
            chains: args.chains,
            region: args.region,
            windows: args.windows,
            summaries: args.summaries,
            stations,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<StationSupervisorMsg>,
        msg: StationSupervisorMsg,
        st: &mut StationSupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StationSupervisorMsg::ApplyBatch(batch, reply) => {
                let mut outcomes = Outcomes::for_envelopes(batch.len());
                let mut parts = Parts::default();
                for (position, envelope) in batch.into_iter().enumerate() {
                    match destination(&st.stations, &st.chains, &envelope) {
                        Some(to) => parts.push(to, position, envelope),
                        None => outcomes.reject_unknown_station(position, &envelope),
                    }
                }
                outcomes.send(parts, &st.stations, &mut st.advance_due, &st.chains)?;
                let _ = reply.send(outcomes.gather().await?);
            }
            StationSupervisorMsg::ApplySpan(span, reply) => {
                let outcomes = apply_span(st, span).await?;
                let _ = reply.send(outcomes);
            }
            StationSupervisorMsg::Tick(tick) => tick_stations(st, tick).await?,
            StationSupervisorMsg::Flush(reply) => {
                let mut pending = Vec::with_capacity(st.stations.actors.len());
                for station in &st.stations.actors {
                    let (port, receiver) = reply_port();
                    station.cast(StationMsg::Flush(port))?;
                    pending.push(receiver);
                }
                await_all(pending, "station flush").await?;
                let _ = reply.send(());
            }
            StationSupervisorMsg::SummarizeAll(time, reply) => {
                let mut pending = Vec::with_capacity(st.stations.actors.len());
                for station in &st.stations.actors {
                    let (port, receiver) = reply_port();
                    station.cast(StationMsg::Summarize(time, port))?;
                    pending.push(receiver);
                }
                let _ = reply.send(await_all(pending, "station summary").await?);
            }
            StationSupervisorMsg::Reset(reply) => {
                for slot in 0..st.stations.actors.len() {
                    respawn_empty(&me, st, slot).await?;
                }
                st.last_tick = None;
                let _ = reply.send(());
            }
            StationSupervisorMsg::ResetSome(stations, reply) => {
                for id in stations.iter() {
                    if let Some(&slot) = st.stations.index.get(id) {
                        respawn_empty(&me, st, slot).await?;
                    }
                }
                let _ = reply.send(());
            }
            StationSupervisorMsg::AdvanceLater(tick, stations) => {
                st.last_tick = st.last_tick.max(Some(tick));
                for slot in stations.iter().filter_map(|id| st.stations.index.get(id)) {
                    let due = &mut st.advance_due[*slot];
                    *due = Some(due.map_or(tick, |due| due.max(tick)));
                }
            }
            StationSupervisorMsg::SummarizeSome(time, stations, reply) => {
                st.last_tick = st.last_tick.max(Some(time));
                let mut pending = Vec::with_capacity(stations.len());
                for &slot in stations.iter().filter_map(|id| st.stations.index.get(id)) {
                    // Summarizing advances the station to `time`, past any tick due before it.
                    if st.advance_due[slot].is_some_and(|due| due <= time) {
                        st.advance_due[slot] = None;
                    }
                    let (port, receiver) = reply_port();
                    st.stations.actors[slot].cast(StationMsg::Summarize(time, port))?;
                    pending.push(receiver);
                }
                let _ = reply.send(await_all(pending, "station summary").await?);
            }
            StationSupervisorMsg::SnapshotAll(reply) => {
                let mut fan_in = FanIn::default();
                for (slot, station) in st.stations.actors.iter().enumerate() {
                    let tick = st.last_tick.filter(|_| !st.ticked[slot]);
                    station.cast(StationMsg::SnapshotInto(tick, fan_in.port()))?;
                }
                let summaries = fan_in.gather("station snapshot").await?;
                let _ = reply.send(summaries.into_iter().flatten().collect());
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
                .actors
                .iter()
                .position(|actor| actor.get_id() == cell.get_id());
            if let Some(slot) = failed {
                let id = &st.stations.ids[slot];
                error!(station = %id, %reason, "station actor failed; restarting it with empty windows");
                if let Some(station) = st.region.stations.get(id) {
                    st.stations.actors[slot] =
                        spawn_station(&me, station, &st.windows, &st.summaries).await?;
                }
            }
        }
        Ok(())
    }
}

/// Applies a span (see [`StationSupervisorMsg::ApplySpan`]): stations no tick reaches get all
/// their envelopes of the span at once; the other stations and the chains get each batch and
/// each tick in turn. The outcomes are awaited at the end of the span (only the chains'
/// summaries are awaited at each tick): each station's mailbox keeps its batches and ticks in
/// order. A station that fails during a span is restarted after it, so the rest of its part of
/// the span is rejected as `station_failed` and its ticks in the span are missed; one batch at
/// a time, it would have been restarted before the next batch.
async fn apply_span(
    st: &mut StationSupervisorState,
    span: Vec<Release<Envelope>>,
) -> Result<Vec<Outcome>, ActorProcessingErr> {
    enum Step {
        Apply(Parts),
        Tick(EventTime),
    }
    let count = span
        .iter()
        .map(|release| match release {
            Release::Apply(batch) => batch.len(),
            Release::Tick(_) => 0,
        })
        .sum();
    let mut outcomes = Outcomes::for_envelopes(count);
    let mut never_ticked = Parts::default();
    let mut steps = Vec::with_capacity(span.len());
    let mut position = 0;
    for release in span {
        match release {
            Release::Tick(tick) => steps.push(Step::Tick(tick)),
            Release::Apply(batch) => {
                let mut ticked = Parts::default();
                for envelope in batch {
                    match destination(&st.stations, &st.chains, &envelope) {
                        Some(Destination::Station(slot)) if !st.ticked[slot] => {
                            never_ticked.push(Destination::Station(slot), position, envelope);
                        }
                        Some(to) => ticked.push(to, position, envelope),
                        None => outcomes.reject_unknown_station(position, &envelope),
                    }
                    position += 1;
                }
                steps.push(Step::Apply(ticked));
            }
        }
    }
    outcomes.send(never_ticked, &st.stations, &mut st.advance_due, &st.chains)?;
    for step in steps {
        match step {
            Step::Apply(parts) => {
                outcomes.send(parts, &st.stations, &mut st.advance_due, &st.chains)?;
            }
            Step::Tick(tick) => tick_stations(st, tick).await?,
        }
    }
    outcomes.gather().await
}

/// Advances the basin members to `tick` (each emits its summary) and feeds the chains. Other
/// stations' windows advance on their next observation, so they need no tick.
async fn tick_stations(
    st: &mut StationSupervisorState,
    tick: EventTime,
) -> Result<(), ActorProcessingErr> {
    st.last_tick = st.last_tick.max(Some(tick));
    for &slot in &st.basin_members {
        // A station that is gone (failed, its restart still to come) misses this tick, as a
        // station that failed during a batch misses that batch.
        if let Err(e) = st.stations.actors[slot].cast(StationMsg::Tick(tick)) {
            error!(station = %st.stations.ids[slot], error = %e, "station missed a tick");
        }
    }
    feed_chains(st, tick).await
}

/// Summarizes the stations the chains watch at `tick` and sends each chain its summaries, then
/// the tick.
async fn feed_chains(
    st: &StationSupervisorState,
    tick: EventTime,
) -> Result<(), ActorProcessingErr> {
    let mut pending = Vec::with_capacity(st.chain_watched.len());
    for &slot in &st.chain_watched {
        let (port, receiver) = reply_port();
        // A station that is gone (failed, being restarted) is left out of this tick's summaries,
        // as a station that failed during a batch is: the chains count it as not reporting.
        match st.stations.actors[slot].cast(StationMsg::Summarize(tick, port)) {
            Ok(()) => pending.push((slot, receiver)),
            Err(e) => {
                error!(station = %st.stations.ids[slot], error = %e, "no summary for the chains this tick")
            }
        }
    }
    let (slots, receivers): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
    let replies = await_each(receivers, "station summary for a chain").await;
    let mut summaries = BTreeMap::new();
    for (slot, reply) in slots.into_iter().zip(replies) {
        match reply {
            Ok(summary) => {
                summaries.insert(st.stations.ids[slot].clone(), summary);
            }
            Err(e) => {
                error!(station = %st.stations.ids[slot], error = %e, "no summary for the chains this tick")
            }
        }
    }
    let watched_by = |watched: &BTreeSet<StationId>| -> Vec<StationSummary> {
        watched
            .iter()
            .filter_map(|id| summaries.get(id).cloned())
            .collect()
    };
    if let Some(feed) = &st.chains.fire {
        feed.actor
            .cast(LightningFireChainMsg::Summaries(watched_by(&feed.watched)))?;
        feed.actor.cast(LightningFireChainMsg::Tick(tick))?;
    }
    if let Some(feed) = &st.chains.landslide {
        feed.actor
            .cast(LandslideChainMsg::Summaries(watched_by(&feed.watched)))?;
        feed.actor.cast(LandslideChainMsg::Tick(tick))?;
    }
    Ok(())
}
