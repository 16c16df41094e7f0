//! Benches of the window engine on one core: `SlotWindows` updates with the seven operational
//! durations (5-min slots: 10 min to 24 h, lateness 6 slots), and the WORKLOAD.md job
//! (`run_workload`, parsing included) over an in-memory CSV. Smaller inputs under `CI`.
//!
//! `cargo bench --bench windows`; figures are in `BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tianshan_core::rain_workload::{run_workload, WorkloadSpec};
use tianshan_core::slot_windows::SlotWindows;

/// 10 min, 30 min, 1 h, 3 h, 6 h, 12 h and 24 h in 5-min slots.
const OPERATIONAL_DURATIONS: [u32; 7] = [2, 6, 12, 36, 72, 144, 288];
const LATENESS_SLOTS: u32 = 6;
/// 2024-01-01T00:00:00Z in 5-min slots.
const FIRST_SLOT: i64 = 1_704_067_200 / 300;
const MINUTES_PER_DAY: usize = 24 * 60;

fn stations() -> usize {
    if std::env::var_os("CI").is_some() {
        100
    } else {
        1_000
    }
}

/// Deterministic bursty rain in tenths, minute-major: `minutes` rows of `stations` readings.
fn readings(stations: usize, minutes: usize) -> Vec<i32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..stations * minutes)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let draw = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
            if draw % 8 == 0 {
                (draw >> 3) as i32 % 40
            } else {
                0
            }
        })
        .collect()
}

fn slot_window_updates(c: &mut Criterion) {
    let stations = stations();
    let tenths = readings(stations, MINUTES_PER_DAY);
    let template = SlotWindows::new(&OPERATIONAL_DURATIONS, LATENESS_SLOTS);
    let mut group = c.benchmark_group("slot_windows");
    group.throughput(Throughput::Elements(tenths.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    // Updates alone: the head moves inside `add`, as when nobody reads the windows.
    group.bench_function(
        format!("add_7_durations/{stations}_stations_x_1_day_1min"),
        |b| {
            b.iter_batched_ref(
                || vec![template.clone(); stations],
                |windows| {
                    for (minute, row) in tenths.chunks_exact(stations).enumerate() {
                        let slot = FIRST_SLOT + (minute / 5) as i64;
                        for (station, &value) in windows.iter_mut().zip(row) {
                            station
                                .add(slot, black_box(value))
                                .expect("readings arrive in order");
                        }
                    }
                },
                BatchSize::LargeInput,
            );
        },
    );

    // Updates plus reading every final window end, as a station actor emitting summaries does.
    group.bench_function(
        format!("add_and_visit_7_durations/{stations}_stations_x_1_day_1min"),
        |b| {
            b.iter_batched_ref(
                || vec![template.clone(); stations],
                |windows| {
                    let mut checksum = 0i64;
                    for (minute, row) in tenths.chunks_exact(stations).enumerate() {
                        let slot = FIRST_SLOT + (minute / 5) as i64;
                        for (station, &value) in windows.iter_mut().zip(row) {
                            if station.head().is_some_and(|head| slot > head) {
                                station
                                    .advance_visiting(slot, |_, totals| checksum += totals[6].sum);
                            }
                            station
                                .add(slot, black_box(value))
                                .expect("readings arrive in order");
                        }
                    }
                    black_box(checksum)
                },
                BatchSize::LargeInput,
            );
        },
    );
    group.finish();
}

/// WORKLOAD.md-shaped CSV: every station every 60 s for a day, sorted by `(ts, station_id)`.
fn workload_csv(stations: usize) -> Vec<u8> {
    let tenths = readings(stations, MINUTES_PER_DAY);
    let mut csv = String::with_capacity(tenths.len() * 20);
    for (minute, row) in tenths.chunks_exact(stations).enumerate() {
        let ts = 1_704_067_200 + 60 * minute as i64;
        for (station, value) in row.iter().enumerate() {
            csv.push_str(&format!("{station},{ts},{}.{}\n", value / 10, value % 10));
        }
    }
    csv.into_bytes()
}

fn workload(c: &mut Criterion) {
    let stations = stations();
    let csv = workload_csv(stations);
    let spec = WorkloadSpec::default();
    let rows = run_workload(&csv, &spec)
        .expect("generated CSV is well formed")
        .rows;
    let mut group = c.benchmark_group("rain_workload");
    group.throughput(Throughput::Elements(rows));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function(
        format!("run_workload/{stations}_stations_x_1_day_1min"),
        |b| {
            b.iter(|| run_workload(black_box(&csv), &spec).expect("generated CSV is well formed"));
        },
    );
    group.finish();
}

criterion_group!(benches, slot_window_updates, workload);
criterion_main!(benches);
