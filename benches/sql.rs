//! Benches of SQL over `station_windows` with 100,000 synthetic rain gauges (seven windows each,
//! 700,000 rows; 10,000 gauges under `CI`): building the tables of a snapshot and answering
//! the query, as `POST /sql` and Flight SQL do once the actors have answered, and the query
//! alone over tables already registered. The goal is under 200 ms.
//!
//! `cargo bench --bench sql`; figures are in `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use tianshan_actors::station::Envelope;
use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::region::Region;
use tianshan_core::station_windows::{RainSummary, StationSummary, WindowValue};
use tianshan_core::time::{EventTime, MINUTE_MS};
use tianshan_pipelines::replay::Replay;
use tianshan_pipelines::sql::{known_state, NodeSnapshot, NodeSql};

/// 10 min to 24 h, as the operational windows.
const DURATIONS_MIN: [u32; 7] = [10, 30, 60, 180, 360, 720, 1440];
/// 2024-07-01T03:00:00Z.
const TICK: EventTime = EventTime(1_719_802_800_000);

const QUERIES: [(&str, &str); 2] = [
    (
        "top_ten_hourly",
        "SELECT station, mm FROM station_windows WHERE duration_min = 60 \
         ORDER BY mm DESC LIMIT 10",
    ),
    (
        "daily_stats",
        "SELECT count(*), avg(mm), max(mm) FROM station_windows \
         WHERE duration_min = 1440 AND completeness > 0.5",
    ),
];

fn gauges() -> usize {
    if std::env::var_os("CI").is_some() {
        10_000
    } else {
        100_000
    }
}

/// A snapshot of the shipped region with `gauges` synthetic rain summaries: deterministic rain
/// that grows with the window, a tenth of the gauges silent.
fn snapshot(gauges: usize) -> NodeSnapshot {
    let region = Region::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("regions/xinjiang"))
        .expect("the shipped region loads");
    let station_summaries = (0..gauges)
        .map(|index| {
            let rate = (index * 7919 % 100) as f64 / 10.0;
            let silent = index % 10 == 0;
            StationSummary::Rain(RainSummary {
                station: StationId::new(format!("S{index:06}")),
                tick: TICK,
                windows: DURATIONS_MIN
                    .iter()
                    .map(|&duration_min| WindowValue {
                        duration_min,
                        mm: if silent {
                            0.0
                        } else {
                            rate * f64::from(duration_min) / 60.0
                        },
                        completeness: if silent { 0.0 } else { 1.0 },
                    })
                    .collect(),
                today_mm: rate,
                antecedent_mm: 0.0,
                last_observation: (!silent).then_some(TICK),
            })
        })
        .collect();
    NodeSnapshot {
        taken_at: TICK,
        region: Arc::new(region),
        station_summaries,
        assessments: Vec::new(),
        warnings: Vec::new(),
        books: Vec::new(),
        rejected: BTreeMap::new(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Ten samples within `seconds`: each request takes tens to hundreds of milliseconds.
fn few_long_samples(group: &mut BenchmarkGroup<'_, WallTime>, seconds: u64) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
}

fn station_windows(c: &mut Criterion) {
    let runtime = runtime();
    let gauges = gauges();
    let snapshot = snapshot(gauges);
    let registered = NodeSql::new(&snapshot).expect("tables register");
    let mut group = c.benchmark_group("sql_station_windows");
    few_long_samples(&mut group, 5);
    for (name, query) in QUERIES {
        // What a request costs once the actors answered: tables, planning, execution.
        group.bench_function(format!("tables_and_{name}/{gauges}_gauges"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let sql = NodeSql::new(black_box(&snapshot)).expect("tables register");
                    sql.query(query).await.expect("the query runs")
                })
            })
        });
        group.bench_function(format!("{name}/{gauges}_gauges"), |b| {
            b.iter(|| {
                runtime
                    .block_on(async { registered.query(black_box(query)).await })
                    .expect("the query runs")
            })
        });
    }
    group.finish();
}

/// The same queries over a live node's snapshot: `gauges` rain gauges as station actors (a
/// replay's, each having reported twice around [`TICK`]), asked for their summaries, then the
/// tables and the query, as `POST /sql` answers on a node of that size.
fn live_station_windows(c: &mut Criterion) {
    let runtime = runtime();
    let gauges = gauges();
    let ids: Vec<StationId> = (0..gauges)
        .map(|index| StationId::new(format!("S{index:06}")))
        .collect();
    let region = Arc::new(Region::rain_gauges_only("bench", ids.iter().cloned(), 300));
    let replay = runtime.block_on(async {
        let mut replay = Replay::start(&known_state::settings(), region.clone())
            .await
            .expect("the actors start");
        let gateway = GatewayId::new("bench");
        for minutes in [-1, 4] {
            let event_time = TICK.plus_ms(minutes * MINUTE_MS);
            for (index, station) in ids.iter().enumerate() {
                let observation = Observation {
                    station: station.clone(),
                    event_time,
                    gateway: gateway.clone(),
                    sequence: 0,
                    reading: Reading::Rainfall {
                        mm: (index % 7) as f64,
                        interval_s: 300,
                    },
                };
                replay
                    .push(
                        "",
                        Envelope {
                            observation,
                            received_at: event_time,
                        },
                    )
                    .await
                    .expect("applied");
            }
        }
        replay.settle().await.expect("settled");
        replay
    });
    let mut group = c.benchmark_group("sql_live_station_windows");
    few_long_samples(&mut group, 10);
    for (name, query) in QUERIES {
        group.bench_function(format!("actors_tables_and_{name}/{gauges}_gauges"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let snapshot = NodeSnapshot::of_models(replay.models(), region.clone(), TICK)
                        .await
                        .expect("the actors answer");
                    assert_eq!(snapshot.station_summaries.len(), gauges);
                    let sql = NodeSql::new(&snapshot).expect("tables register");
                    sql.query(black_box(query)).await.expect("the query runs")
                })
            })
        });
    }
    group.finish();
    runtime.block_on(async { replay.finish(None).await.expect("the actors stop") });
}

criterion_group!(benches, station_windows, live_station_windows);
criterion_main!(benches);
