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

use criterion::{criterion_group, criterion_main, Criterion};
use tianshan_core::ids::StationId;
use tianshan_core::region::Region;
use tianshan_core::station_windows::{RainSummary, StationSummary, WindowValue};
use tianshan_core::time::EventTime;
use tianshan_pipelines::sql::{NodeSnapshot, NodeSql};

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

fn station_windows(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let gauges = gauges();
    let snapshot = snapshot(gauges);
    let registered = NodeSql::new(&snapshot).expect("tables register");
    let mut group = c.benchmark_group("sql_station_windows");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
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

criterion_group!(benches, station_windows);
criterion_main!(benches);
