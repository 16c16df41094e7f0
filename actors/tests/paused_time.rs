//! Actor tests on tokio's paused clock: a stuck actor times out without the test waiting, so
//! does a fan-out (once for all its replies), a fan-in keeps its order, a silent station drains its windows at every
//! tick, a station advanced later judges its next reading as if ticked at once, a batch keeps its order, a span of batches and ticks gives what
//! they give one by one, a snapshot holds every station that reported, and a failed station is
//! restarted by its supervisor.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tianshan_actors::ask::{ask, await_each, reply_port, FanIn, REPLY_TIMEOUT};
use tianshan_actors::station::Envelope;
use tianshan_actors::station_supervisor::{
    ChainFeeds, StationSupervisor, StationSupervisorArgs, StationSupervisorMsg,
};
use tianshan_core::event_clock::Release;
use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Outcome, Reading, RejectReason};
use tianshan_core::region::{Region, StationKind};
use tianshan_core::station_windows::{StationSummary, WindowsConfig};
use tianshan_core::time::{EventTime, MINUTE_MS};

/// Keeps the station summaries it receives.
enum RecorderMsg {
    Summary(StationSummary),
    Take(RpcReplyPort<Vec<StationSummary>>),
}

impl From<StationSummary> for RecorderMsg {
    fn from(summary: StationSummary) -> Self {
        RecorderMsg::Summary(summary)
    }
}

impl TryFrom<RecorderMsg> for StationSummary {
    type Error = ();

    fn try_from(msg: RecorderMsg) -> Result<Self, ()> {
        match msg {
            RecorderMsg::Summary(summary) => Ok(summary),
            RecorderMsg::Take(_) => Err(()),
        }
    }
}

struct Recorder;

impl Actor for Recorder {
    type Msg = RecorderMsg;
    type State = Vec<StationSummary>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<RecorderMsg>,
        _args: (),
    ) -> Result<Vec<StationSummary>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _me: ActorRef<RecorderMsg>,
        msg: RecorderMsg,
        kept: &mut Vec<StationSummary>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RecorderMsg::Summary(summary) => kept.push(summary),
            RecorderMsg::Take(reply) => {
                let _ = reply.send(std::mem::take(kept));
            }
        }
        Ok(())
    }
}

/// Holds every reply port it gets and never answers.
struct NeverReplies;

impl Actor for NeverReplies {
    type Msg = RpcReplyPort<()>;
    type State = Vec<RpcReplyPort<()>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<RpcReplyPort<()>>,
        _args: (),
    ) -> Result<Vec<RpcReplyPort<()>>, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _me: ActorRef<RpcReplyPort<()>>,
        port: RpcReplyPort<()>,
        held: &mut Vec<RpcReplyPort<()>>,
    ) -> Result<(), ActorProcessingErr> {
        held.push(port);
        Ok(())
    }
}

fn region() -> Arc<Region> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
    Arc::new(Region::load(Path::new(dir)).expect("the committed region loads"))
}

/// A rain gauge that feeds a basin, so ticks reach it.
fn basin_rain_gauge(region: &Region) -> StationId {
    basin_rain_gauges(region)
        .into_iter()
        .next()
        .expect("some basin has a rain gauge")
}

/// The rain gauges that feed a basin, each once, in the order the basins list them.
fn basin_rain_gauges(region: &Region) -> Vec<StationId> {
    let mut gauges: Vec<StationId> = Vec::new();
    let members = region
        .basins
        .values()
        .flat_map(|basin| basin.member_stations());
    for id in members.filter(|id| region.stations[*id].kind == StationKind::Rain) {
        if !gauges.contains(id) {
            gauges.push(id.clone());
        }
    }
    gauges
}

fn rain(station: &StationId, at: EventTime, mm: f64, interval_s: u32) -> Envelope {
    Envelope {
        observation: Observation {
            station: station.clone(),
            event_time: at,
            gateway: GatewayId::new("test"),
            sequence: 1,
            reading: Reading::Rainfall { mm, interval_s },
        },
        received_at: at,
    }
}

/// Each outcome's reject reason, `None` where the observation was applied.
fn reasons(outcomes: &[Outcome]) -> Vec<Option<RejectReason>> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Applied => None,
            Outcome::Rejected { reason, .. } => Some(*reason),
        })
        .collect()
}

fn start_time() -> EventTime {
    EventTime::parse_rfc3339("2024-07-01T08:00:00Z").expect("valid time")
}

async fn stations_reporting_to(
    region: Arc<Region>,
    recorder: &ActorRef<RecorderMsg>,
) -> ActorRef<StationSupervisorMsg> {
    let (stations, _) = Actor::spawn(
        None,
        StationSupervisor,
        StationSupervisorArgs {
            region,
            windows: WindowsConfig::default(),
            summaries: recorder.get_derived(),
            chains: ChainFeeds::default(),
        },
    )
    .await
    .expect("station supervisor starts");
    stations
}

/// Has `stations` apply `batch` and returns one outcome per envelope.
async fn apply_batch(
    stations: &ActorRef<StationSupervisorMsg>,
    batch: Vec<Envelope>,
) -> Vec<Outcome> {
    ask(
        stations,
        |port| StationSupervisorMsg::ApplyBatch(batch, port),
        "apply",
    )
    .await
    .expect("applied")
}

/// The last summary of station `id`.
async fn snapshot_of(
    stations: &ActorRef<StationSupervisorMsg>,
    id: &StationId,
) -> Option<StationSummary> {
    ask(
        stations,
        |port| StationSupervisorMsg::Snapshot(id.clone(), port),
        "snapshot",
    )
    .await
    .expect("snapshot")
}

fn one_hour_mm(summary: &StationSummary) -> f64 {
    match summary {
        StationSummary::Rain(rain) => rain
            .windows
            .iter()
            .find(|w| w.duration_min == 60)
            .map_or(f64::NAN, |w| w.mm),
        other => panic!("expected a rain summary, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_actor_is_reported_after_the_reply_timeout() {
    let (silent, _) = Actor::spawn(None, NeverReplies, ())
        .await
        .expect("actor starts");
    let started = tokio::time::Instant::now();
    let error = ask(&silent, |port| port, "flush the silent actor")
        .await
        .expect_err("no reply comes");
    assert!(
        error
            .to_string()
            .contains("flush the silent actor: no reply within"),
        "{error}"
    );
    assert!(started.elapsed() >= REPLY_TIMEOUT);
    silent.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_fan_out_waits_one_reply_timeout_for_all_its_replies() {
    let (silent, _) = Actor::spawn(None, NeverReplies, ())
        .await
        .expect("actor starts");
    let (answered_port, answered) = reply_port::<()>();
    let (dropped_port, dropped) = reply_port::<()>();
    let (held_port, held) = reply_port::<()>();
    let (after_held_port, after_held) = reply_port::<()>();
    silent
        .cast(held_port)
        .expect("the silent actor holds the port");
    answered_port.send(()).expect("the receiver waits");
    after_held_port.send(()).expect("the receiver waits");
    drop(dropped_port);
    let started = tokio::time::Instant::now();
    let replies = await_each(vec![answered, dropped, held, after_held], "fan-out").await;
    let errors: Vec<Option<String>> = replies
        .iter()
        .map(|reply| reply.as_ref().err().map(ToString::to_string))
        .collect();
    assert_eq!(
        errors,
        vec![
            None,
            Some("fan-out: the actor stopped before replying".to_owned()),
            Some(format!("fan-out: no reply within {REPLY_TIMEOUT:?}")),
            None,
        ],
        "the reply that came after the stuck one is kept"
    );
    let waited = started.elapsed();
    assert!(
        waited >= REPLY_TIMEOUT && waited < 2 * REPLY_TIMEOUT,
        "{waited:?}"
    );
    silent.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_fan_in_gives_replies_in_port_order_and_names_a_replier_that_stopped() {
    let mut fan_in = FanIn::default();
    let ports: Vec<_> = (0..3).map(|_| fan_in.port()).collect();
    for (index, port) in ports.into_iter().enumerate().rev() {
        port.send(index * 10);
    }
    assert_eq!(
        fan_in.gather("in order").await.expect("all"),
        vec![0, 10, 20]
    );

    let mut fan_in = FanIn::<u8>::default();
    let (first, dropped) = (fan_in.port(), fan_in.port());
    first.send(1);
    drop(dropped);
    let started = tokio::time::Instant::now();
    let error = fan_in.gather("snapshot").await.expect_err("one stopped");
    assert_eq!(
        error.to_string(),
        "snapshot: an actor stopped before replying"
    );
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no waiting for the timeout"
    );

    let mut fan_in = FanIn::<u8>::default();
    let held = fan_in.port();
    let error = fan_in.gather("snapshot").await.expect_err("no reply");
    assert!(error.to_string().contains("no reply within"), "{error}");
    assert!(started.elapsed() >= REPLY_TIMEOUT);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_silent_station_drains_its_windows_at_every_tick() {
    let region = region();
    let gauge = basin_rain_gauge(&region);
    let interval_s = region.stations[&gauge].report_interval_s;
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region, &recorder).await;
    let t0 = start_time();

    let outcomes = apply_batch(&stations, vec![rain(&gauge, t0, 12.5, interval_s)]).await;
    assert_eq!(outcomes, vec![Outcome::Applied]);
    for minutes in [0, 30, 65] {
        stations
            .cast(StationSupervisorMsg::Tick(t0.plus_ms(minutes * MINUTE_MS)))
            .expect("tick");
    }
    ask(&stations, StationSupervisorMsg::Flush, "flush")
        .await
        .expect("flushed");
    let summaries: Vec<StationSummary> = ask(&recorder, RecorderMsg::Take, "take")
        .await
        .expect("summaries")
        .into_iter()
        .filter(|s| s.station() == &gauge)
        .collect();
    let hourly: Vec<f64> = summaries.iter().map(one_hour_mm).collect();
    assert_eq!(
        hourly,
        vec![12.5, 12.5, 0.0],
        "the reading leaves the 1-h window although the station sent nothing more"
    );
    stations.stop(None);
    recorder.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_station_advanced_later_judges_its_next_reading_as_if_ticked_at_once() {
    let region = region();
    let gauge = basin_rain_gauge(&region);
    let interval_s = region.stations[&gauge].report_interval_s;
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region, &recorder).await;
    let t0 = start_time();
    let apply = |at: EventTime| apply_batch(&stations, vec![rain(&gauge, at, 1.0, interval_s)]);
    assert_eq!(apply(t0).await, vec![Outcome::Applied]);
    assert_eq!(
        apply(t0.plus_ms(10 * MINUTE_MS)).await,
        vec![Outcome::Applied],
        "10 minutes later is within the allowed lateness of the station's newest reading"
    );
    stations
        .cast(StationSupervisorMsg::AdvanceLater(
            t0.plus_ms(120 * MINUTE_MS),
            Arc::new(vec![gauge.clone()]),
        ))
        .expect("advance later");
    let outcomes = apply(t0.plus_ms(20 * MINUTE_MS)).await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [Outcome::Rejected {
                reason: RejectReason::TooLate,
                ..
            }]
        ),
        "the station passed the 2-hour tick before this reading, so it is too late: {outcomes:?}"
    );
    stations.stop(None);
    recorder.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_batch_keeps_its_order_and_rejects_unknown_stations() {
    let region = region();
    let gauge = basin_rain_gauge(&region);
    let interval_s = region.stations[&gauge].report_interval_s;
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region, &recorder).await;
    let t0 = start_time();
    let nowhere = StationId::new("NOWHERE");
    let batch = vec![
        rain(&gauge, t0, 1.0, interval_s),
        rain(&nowhere, t0, 1.0, interval_s),
        rain(&gauge, t0, 1.0, interval_s),
        rain(&gauge, t0.plus_ms(5 * MINUTE_MS), -3.0, interval_s),
    ];
    let outcomes = apply_batch(&stations, batch).await;
    assert_eq!(
        reasons(&outcomes),
        vec![
            None,
            Some(RejectReason::UnknownStation),
            Some(RejectReason::Duplicate),
            Some(RejectReason::OutOfRange),
        ]
    );
    stations.stop(None);
    recorder.stop(None);
}

/// The rain gauges that feed no basin (and no chain watches here), so no tick reaches them.
fn gauges_without_basin(region: &Region) -> Vec<StationId> {
    region
        .stations
        .values()
        .filter(|station| {
            station.kind == StationKind::Rain && region.basins_of_station(&station.id).is_empty()
        })
        .map(|station| station.id.clone())
        .collect()
}

/// Runs `steps` through fresh stations, one message per batch and per tick or all as one span;
/// returns the outcomes, the summaries emitted at the ticks and every station's summary at `end`.
async fn run_steps(
    region: Arc<Region>,
    steps: Vec<Release<Envelope>>,
    as_one_span: bool,
    end: EventTime,
) -> (Vec<Outcome>, Vec<StationSummary>, Vec<StationSummary>) {
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region, &recorder).await;
    let mut outcomes = Vec::new();
    if as_one_span {
        outcomes = ask(
            &stations,
            |port| StationSupervisorMsg::ApplySpan(steps, port),
            "apply span",
        )
        .await
        .expect("applied");
    } else {
        for step in steps {
            match step {
                Release::Apply(batch) => outcomes.extend(
                    ask(
                        &stations,
                        |port| StationSupervisorMsg::ApplyBatch(batch, port),
                        "apply",
                    )
                    .await
                    .expect("applied"),
                ),
                Release::Tick(tick) => stations
                    .cast(StationSupervisorMsg::Tick(tick))
                    .expect("tick"),
            }
        }
    }
    ask(&stations, StationSupervisorMsg::Flush, "flush")
        .await
        .expect("flushed");
    let mut emitted = ask(&recorder, RecorderMsg::Take, "take")
        .await
        .expect("summaries");
    // Stations run concurrently, so only each station's own summaries keep an order.
    emitted.sort_by(|a, b| (a.station(), a.tick()).cmp(&(b.station(), b.tick())));
    let at_end = ask(
        &stations,
        |port| StationSupervisorMsg::SummarizeAll(end, port),
        "summarize",
    )
    .await
    .expect("summaries at the end");
    stations.stop(None);
    recorder.stop(None);
    (outcomes, emitted, at_end)
}

#[tokio::test(start_paused = true)]
async fn a_span_gives_what_its_batches_and_ticks_give_one_by_one() {
    let region = region();
    let ticked = basin_rain_gauge(&region);
    let unticked = gauges_without_basin(&region)[0].clone();
    let interval_s = region.stations[&ticked].report_interval_s;
    let nowhere = StationId::new("NOWHERE");
    let t0 = start_time();
    let at = |minutes: i64| t0.plus_ms(minutes * MINUTE_MS);
    let steps = vec![
        Release::Apply(vec![
            rain(&ticked, at(5), 2.0, interval_s),
            rain(&unticked, at(5), 3.0, interval_s),
            rain(&nowhere, at(5), 1.0, interval_s),
        ]),
        Release::Tick(at(5)),
        Release::Apply(vec![
            rain(&unticked, at(10), 4.0, interval_s),
            rain(&ticked, at(10), 1.0, interval_s),
            rain(&unticked, at(10), 4.0, interval_s),
        ]),
        Release::Tick(at(10)),
        Release::Apply(vec![
            rain(&ticked, at(15), -1.0, interval_s),
            rain(&unticked, at(15), 0.5, interval_s),
        ]),
        Release::Tick(at(15)),
    ];
    let one_by_one = run_steps(region.clone(), steps.clone(), false, at(20)).await;
    let as_span = run_steps(region, steps, true, at(20)).await;

    assert_eq!(
        reasons(&as_span.0),
        vec![
            None,
            None,
            Some(RejectReason::UnknownStation),
            None,
            None,
            Some(RejectReason::Duplicate),
            Some(RejectReason::OutOfRange),
            None,
        ],
        "one outcome per envelope, in the span's order"
    );
    assert_eq!(as_span.0, one_by_one.0, "the same outcomes");
    let ticked_hourly: Vec<f64> = as_span
        .1
        .iter()
        .filter(|summary| summary.station() == &ticked)
        .map(one_hour_mm)
        .collect();
    assert_eq!(
        ticked_hourly,
        vec![2.0, 3.0, 3.0],
        "a summary at every tick"
    );
    assert!(
        as_span.1 == one_by_one.1,
        "the same summaries at the ticks ({} and {})",
        as_span.1.len(),
        one_by_one.1.len()
    );
    let unticked_at_end: Vec<f64> = as_span
        .2
        .iter()
        .filter(|summary| summary.station() == &unticked)
        .map(one_hour_mm)
        .collect();
    assert_eq!(
        unticked_at_end,
        vec![7.5],
        "the unticked gauge got its readings"
    );
    assert!(
        as_span.2 == one_by_one.2,
        "the same windows at the end ({} and {} summaries)",
        as_span.2.len(),
        one_by_one.2.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_holds_the_stations_no_tick_reaches_once_they_report() {
    let region = region();
    let ticked = basin_rain_gauge(&region);
    let unticked = gauges_without_basin(&region)[0].clone();
    let interval_s = region.stations[&unticked].report_interval_s;
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region.clone(), &recorder).await;
    let t0 = start_time();
    let snapshot = || async {
        ask(&stations, StationSupervisorMsg::SnapshotAll, "snapshot")
            .await
            .expect("snapshot")
    };

    apply_batch(
        &stations,
        vec![rain(&unticked, t0.plus_ms(5 * MINUTE_MS), 6.0, interval_s)],
    )
    .await;
    assert!(snapshot().await.is_empty(), "no tick yet, so no summary");

    stations
        .cast(StationSupervisorMsg::Tick(t0.plus_ms(5 * MINUTE_MS)))
        .expect("tick");
    let first = snapshot().await;
    let of = |summaries: &[StationSummary], id: &StationId| -> Vec<(EventTime, f64)> {
        summaries
            .iter()
            .filter(|summary| summary.station() == id)
            .map(|summary| (summary.tick(), one_hour_mm(summary)))
            .collect()
    };
    assert_eq!(
        of(&first, &unticked),
        vec![(t0.plus_ms(5 * MINUTE_MS), 6.0)],
        "summarized at the last tick"
    );
    assert_eq!(
        of(&first, &ticked),
        vec![(t0.plus_ms(5 * MINUTE_MS), 0.0)],
        "a silent basin gauge gives its tick's summary"
    );
    let silent_unticked = gauges_without_basin(&region)[1].clone();
    assert!(
        of(&first, &silent_unticked).is_empty(),
        "a gauge no tick reaches that never reported has no summary"
    );

    // Ninety minutes later its reading has left the hour, as a tick would have moved it out.
    stations
        .cast(StationSupervisorMsg::Tick(t0.plus_ms(95 * MINUTE_MS)))
        .expect("tick");
    assert_eq!(
        of(&snapshot().await, &unticked),
        vec![(t0.plus_ms(95 * MINUTE_MS), 0.0)]
    );
    // The snapshot left its windows where they were: a reading the log brings late (85
    // minutes before that tick, more than the 30-minute lateness) is still within the
    // lateness of the gauge's own newest reading, so it is applied, and the next snapshot
    // counts it.
    assert_eq!(
        apply_batch(
            &stations,
            vec![rain(&unticked, t0.plus_ms(10 * MINUTE_MS), 2.0, interval_s)]
        )
        .await,
        vec![Outcome::Applied]
    );
    let last = snapshot().await;
    assert_eq!(
        of(&last, &unticked),
        vec![(t0.plus_ms(95 * MINUTE_MS), 0.0)],
        "the late reading is out of the hour to the last tick"
    );
    let daily: Vec<f64> = last
        .iter()
        .filter(|summary| summary.station() == &unticked)
        .filter_map(|summary| match summary {
            StationSummary::Rain(rain) => rain
                .windows
                .iter()
                .find(|w| w.duration_min == 1440)
                .map(|w| w.mm),
            _ => None,
        })
        .collect();
    assert_eq!(daily, vec![8.0], "but in the day: 6 + 2 mm");
    stations.stop(None);
    recorder.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_station_is_restarted_with_empty_windows() {
    let region = region();
    let gauge = basin_rain_gauge(&region);
    let interval_s = region.stations[&gauge].report_interval_s;
    let (recorder, recorder_handle) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region, &recorder).await;
    let t0 = start_time();
    apply_batch(&stations, vec![rain(&gauge, t0, 4.0, interval_s)]).await;

    stations.cast(StationSupervisorMsg::Tick(t0)).expect("tick");
    let before = snapshot_of(&stations, &gauge).await;
    assert!(before.is_some(), "the station summarised the first tick");

    // With its downstream gone, every ticked station fails on its next summary.
    recorder.stop(None);
    recorder_handle.await.expect("recorder stopped");
    stations
        .cast(StationSupervisorMsg::Tick(t0.plus_ms(5 * MINUTE_MS)))
        .expect("tick");
    tokio::time::sleep(Duration::from_millis(100)).await;
    ask(&stations, StationSupervisorMsg::Flush, "flush")
        .await
        .expect("the supervisor and its restarted stations answer");

    let snapshot = snapshot_of(&stations, &gauge).await;
    assert_eq!(snapshot, None, "the restarted station has no summary yet");
    let again = apply_batch(&stations, vec![rain(&gauge, t0, 4.0, interval_s)]).await;
    assert_eq!(
        again,
        vec![Outcome::Applied],
        "the restarted station's windows are empty, so the same reading is new to it"
    );
    stations.stop(None);
}

#[tokio::test(start_paused = true)]
async fn resetting_some_stations_empties_only_those() {
    let region = region();
    let gauges = basin_rain_gauges(&region);
    let [moved, kept] = [gauges[0].clone(), gauges[1].clone()];
    let interval_s = |id: &StationId| region.stations[id].report_interval_s;
    let readings = vec![
        rain(&moved, start_time(), 4.0, interval_s(&moved)),
        rain(&kept, start_time(), 4.0, interval_s(&kept)),
    ];
    let (recorder, _) = Actor::spawn(None, Recorder, ()).await.expect("recorder");
    let stations = stations_reporting_to(region.clone(), &recorder).await;
    let first = apply_batch(&stations, readings.clone()).await;
    assert_eq!(reasons(&first), vec![None, None]);
    stations
        .cast(StationSupervisorMsg::Tick(start_time()))
        .expect("tick");

    ask(
        &stations,
        |port| StationSupervisorMsg::ResetSome(Arc::new(vec![moved.clone()]), port),
        "reset some",
    )
    .await
    .expect("reset");
    assert_eq!(snapshot_of(&stations, &moved).await, None, "emptied");
    assert!(
        snapshot_of(&stations, &kept).await.is_some(),
        "kept its windows"
    );
    let again = apply_batch(&stations, readings).await;
    assert_eq!(
        reasons(&again),
        vec![None, Some(RejectReason::Duplicate)],
        "the emptied station takes the reading again; the kept one knows it"
    );
    stations.stop(None);
    recorder.stop(None);
}
