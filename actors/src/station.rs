//! Sliding windows and QC for one station. Receives [`StationMsg`]; emits a `StationSummary` at
//! every tick to `summaries` (the `BasinSupervisor`, or a recorder in tests). Supervised by
//! `StationSupervisor`.

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::observation::{Observation, Outcome};
use tianshan_core::station_windows::{StationSummary, StationWindows};
use tianshan_core::time::EventTime;

use crate::ask::FanInPort;

/// An observation with the time the broker received it (the Kafka timestamp), which QC uses to
/// spot timestamps in the future without reading a clock.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The decoded observation.
    pub observation: Observation,
    /// When the broker received it.
    pub received_at: EventTime,
}

/// Messages of [`StationActor`].
pub enum StationMsg {
    /// Applies observations in order and replies with one outcome each.
    Apply(Vec<Envelope>, RpcReplyPort<Vec<Outcome>>),
    /// Advances the windows to this tick and emits the station's summary.
    Tick(EventTime),
    /// Replies once every earlier message has been handled.
    Flush(RpcReplyPort<()>),
    /// Replies with the last summary made (at a tick, or asked for with `Summarize`).
    Snapshot(RpcReplyPort<Option<StationSummary>>),
    /// Replies through a fan-in (a snapshot of every station) with the last summary made, or,
    /// given a tick, with the summary at that tick of a station no tick reaches, worked out as a
    /// tick would have advanced its windows but leaving them as they are (so a query never
    /// changes what a late reading does). The last summary stands if it is at or after the
    /// tick, and a station that has applied no reading has none (on a sharded node, the
    /// stations of partitions it does not own).
    SnapshotInto(Option<EventTime>, FanInPort<Option<StationSummary>>),
    /// Advances the windows to this time and replies with the summary, without emitting it; the
    /// summary is kept as the last one.
    Summarize(EventTime, RpcReplyPort<StationSummary>),
    /// Advances the windows to this time, neither summarizing nor emitting (a tick whose
    /// summaries an earlier owner already sent on).
    Advance(EventTime),
}

/// Start-up arguments of [`StationActor`].
pub struct StationArgs {
    /// Empty windows for the station.
    pub windows: StationWindows,
    /// Where summaries go.
    pub summaries: DerivedActorRef<StationSummary>,
}

/// State of [`StationActor`].
pub struct StationState {
    windows: StationWindows,
    summaries: DerivedActorRef<StationSummary>,
    last_summary: Option<StationSummary>,
}

/// The actor owning one station's windows.
pub struct StationActor;

impl Actor for StationActor {
    type Msg = StationMsg;
    type State = StationState;
    type Arguments = StationArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<StationMsg>,
        args: StationArgs,
    ) -> Result<StationState, ActorProcessingErr> {
        Ok(StationState {
            windows: args.windows,
            summaries: args.summaries,
            last_summary: None,
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<StationMsg>,
        msg: StationMsg,
        st: &mut StationState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StationMsg::Apply(batch, reply) => {
                let outcomes = batch
                    .iter()
                    .map(|env| st.windows.observe(&env.observation, env.received_at))
                    .collect();
                let _ = reply.send(outcomes);
            }
            StationMsg::Tick(tick) => {
                st.windows.advance_to(tick);
                let summary = st.windows.summary(tick);
                st.last_summary = Some(summary.clone());
                st.summaries
                    .send_message(summary)
                    .map_err(|_| "station summaries downstream is gone")?;
            }
            StationMsg::Flush(reply) => {
                let _ = reply.send(());
            }
            StationMsg::Snapshot(reply) => {
                let _ = reply.send(st.last_summary.clone());
            }
            StationMsg::SnapshotInto(tick, port) => port.send(match tick {
                Some(tick) => snapshot_at(st, tick),
                None => st.last_summary.clone(),
            }),
            StationMsg::Summarize(time, reply) => {
                st.windows.advance_to(time);
                let summary = st.windows.summary(time);
                st.last_summary = Some(summary.clone());
                let _ = reply.send(summary);
            }
            StationMsg::Advance(time) => st.windows.advance_to(time),
        }
        Ok(())
    }
}

/// The summary at `tick` of a station no tick reaches (see [`StationMsg::SnapshotInto`]),
/// leaving its windows as they are.
fn snapshot_at(st: &StationState, tick: EventTime) -> Option<StationSummary> {
    match &st.last_summary {
        Some(summary) if summary.tick() >= tick => Some(summary.clone()),
        _ => st
            .windows
            .last_observation()
            .map(|_| st.windows.summary_at(tick)),
    }
}
