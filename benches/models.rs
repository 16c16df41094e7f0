//! Benches of the hazard models on one core, per observation or per evaluation: flash-flood basin
//! ticks, the debris-flow chain, landslide deformation readings, lightning strokes and fire-zone
//! ticks, daily fire-weather codes and snowpack steps. Inputs are generated deterministically
//! outside the timed loops; smaller under `CI`.
//!
//! `cargo bench -p tianshan-core --bench models`; figures are in `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::f64::consts::TAU;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use tianshan_core::debris_flow::{BurnScar, DebrisFlowConfig, GullyProfile};
use tianshan_core::debris_flow_chain::DebrisFlowChain;
use tianshan_core::fire_weather::{daily_update, CnFireLevel, FwiConfig, NoonWeather};
use tianshan_core::flash_flood::{Assessment, BasinAssessor, FlashFloodPolicy};
use tianshan_core::ids::{AreaCode, BasinId, StationId};
use tianshan_core::landslide::{
    assess, DeformationConfig, DeformationSample, DeformationWindow, LandslidePolicy, SensorKind,
    SlopeContext,
};
use tianshan_core::lifecycle::{LifecyclePolicy, WarningThread};
use tianshan_core::lightning_fire::{
    FireZone, FireZoneId, FuelKind, FuelState, LightningFireConfig, LightningFireTracker, Stroke,
    StrokeRain,
};
use tianshan_core::region::{Basin, RainThreshold, SoilState, StageThreshold};
use tianshan_core::snowmelt::{BasinSnowpack, MountainRange, SnowmeltConfig, StepWeather};
use tianshan_core::station_windows::{RainSummary, StageSummary, StationSummary, WindowValue};
use tianshan_core::time::{EventTime, HOUR_MS, MINUTE_MS};
use tianshan_core::warning::{Hazard, WarningEvent};

/// 2024-07-01T00:00:00Z.
const FIRST_TICK: EventTime = EventTime(1_719_792_000_000);
/// The evaluation tick of basins and fire zones.
const TICK_MS: i64 = 5 * MINUTE_MS;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.2;

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Returns `full`, or `small` under `CI`.
fn sized(full: usize, small: usize) -> usize {
    if ci() {
        small
    } else {
        full
    }
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// Deterministic draws: xorshift64* as in `windows.rs`.
struct Draws(u64);

impl Draws {
    fn new(seed: u64) -> Self {
        // xorshift never leaves 0.
        Self(seed.max(1))
    }

    /// Returns a draw in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns a draw in [low, high).
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Returns true with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

// -------------------------------------------------------------------------------- flash flood

/// Windows a gauge summary carries: the seven operational durations, 10 min to 24 h.
const WINDOW_MIN: [u32; 7] = [10, 30, 60, 180, 360, 720, 1440];
/// Threshold durations: the operational windows that are whole hours (the region has 1, 3, 6).
const THRESHOLD_H: [u32; 5] = [1, 3, 6, 12, 24];
const GAUGE_WEIGHTS: [f64; 5] = [0.3, 0.25, 0.2, 0.15, 0.1];

fn storm_basin() -> Basin {
    let ladder = |soil_factor: f64| {
        THRESHOLD_H
            .iter()
            .map(|&duration_h| {
                let prepare_mm = 25.0 * f64::from(duration_h).powf(0.45) * soil_factor;
                RainThreshold {
                    duration_h,
                    prepare_mm,
                    immediate_mm: 1.5 * prepare_mm,
                }
            })
            .collect()
    };
    Basin {
        id: BasinId::new("B0001"),
        name: "bench basin".to_owned(),
        county: AreaCode::new("653125"),
        townships: vec![AreaCode::new("653125100")],
        lon: 80.0,
        lat: 40.0,
        area_km2: 120.0,
        wm_mm: 100.0,
        gauges: GAUGE_WEIGHTS
            .iter()
            .enumerate()
            .map(|(i, &weight)| (StationId::new(format!("R{i:05}")), weight))
            .collect(),
        rain_thresholds: BTreeMap::from([
            (SoilState::Dry, ladder(1.2)),
            (SoilState::Normal, ladder(1.0)),
            (SoilState::Wet, ladder(0.8)),
        ]),
        stage_thresholds: vec![StageThreshold {
            station: StationId::new("W00001"),
            base_stage_m: 100.0,
            prepare_stage_m: 102.0,
            immediate_stage_m: 103.0,
        }],
    }
}

/// The member summaries of each tick of a one-day storm over `basin`, peaking at midday: each
/// gauge's windows are trailing sums of its 5-min rain, one gauge in ten drops out of a tick
/// (completeness 0.4), and the stage rises with the basin's 3-h rain.
fn storm_ticks(basin: &Basin, ticks: usize) -> Vec<(EventTime, Vec<StationSummary>)> {
    let mut draws = Draws::new(0x5EED_F1A5);
    let antecedent_mm: Vec<f64> = basin
        .gauges
        .iter()
        .map(|_| draws.between(20.0, 70.0))
        .collect();
    let mut history: Vec<Vec<f64>> = vec![Vec::with_capacity(ticks); basin.gauges.len()];
    let mut out = Vec::with_capacity(ticks);
    for index in 0..ticks {
        let tick = FIRST_TICK.plus_ms(index as i64 * TICK_MS);
        let phase = index as f64 / ticks as f64;
        let intensity = 6.0 * (-((phase - 0.5) / 0.12).powi(2)).exp();
        let mut summaries = Vec::with_capacity(basin.gauges.len() + 1);
        let mut rain_3h = 0.0;
        for ((station, weight), (slots, antecedent)) in basin
            .gauges
            .iter()
            .zip(history.iter_mut().zip(&antecedent_mm))
        {
            slots.push(intensity * draws.between(0.3, 1.7));
            let completeness = if draws.chance(0.1) { 0.4 } else { 1.0 };
            let windows: Vec<WindowValue> = WINDOW_MIN
                .iter()
                .map(|&duration_min| {
                    let count = (duration_min / 5) as usize;
                    let mm = slots.iter().rev().take(count).sum();
                    WindowValue {
                        duration_min,
                        mm,
                        completeness,
                    }
                })
                .collect();
            rain_3h += weight * windows[3].mm;
            summaries.push(StationSummary::Rain(RainSummary {
                station: station.clone(),
                tick,
                today_mm: windows[6].mm,
                windows,
                antecedent_mm: *antecedent,
                last_observation: Some(tick),
            }));
        }
        let stage_m = 100.0 + rain_3h / 25.0;
        summaries.push(StationSummary::WaterLevel(StageSummary {
            station: basin.stage_thresholds[0].station.clone(),
            tick,
            latest_m: Some(stage_m),
            max_1h_m: Some(stage_m),
            rise_m_per_h: Some(0.0),
            last_observation: Some(tick),
        }));
        out.push((tick, summaries));
    }
    out
}

/// Feeds each tick's summaries as the basin actor does (update, then assess once every member
/// has reported) and returns the assessments.
fn run_basin(
    assessor: &mut BasinAssessor,
    ticks: &[(EventTime, Vec<StationSummary>)],
) -> Vec<Assessment> {
    let mut assessments = Vec::with_capacity(ticks.len());
    let mut evaluated: Option<EventTime> = None;
    for (tick, summaries) in ticks {
        for summary in summaries {
            assessor.update(summary);
            if evaluated.is_none_or(|done| *tick > done) && assessor.ready(*tick) {
                assessments.push(assessor.assess(*tick));
                evaluated = Some(*tick);
            }
        }
    }
    assessments
}

fn flash_flood(c: &mut Criterion) {
    let basin = storm_basin();
    let policy = FlashFloodPolicy::default();
    let ticks = storm_ticks(&basin, sized(288, 48));
    let mut peak = BasinAssessor::new(&basin, policy.clone());
    let assessed = run_basin(&mut peak, &ticks[..ticks.len() / 2]).len();
    assert_eq!(assessed, ticks.len() / 2, "every tick completes");
    let peak_tick = ticks[ticks.len() / 2 - 1].0;

    let mut group = c.benchmark_group("flash_flood");
    configure(&mut group);
    group.throughput(Throughput::Elements(ticks.len() as u64));
    group.bench_function(
        format!(
            "update_and_assess/5_gauges_1_stage_7_windows/{}_ticks",
            ticks.len()
        ),
        |b| {
            b.iter_batched_ref(
                || BasinAssessor::new(&basin, policy.clone()),
                |assessor| run_basin(assessor, black_box(&ticks)),
                BatchSize::SmallInput,
            );
        },
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("assess_only/5_gauges_1_stage_5_durations/storm_peak", |b| {
        b.iter(|| peak.assess(black_box(peak_tick)));
    });
    group.finish();
}

// -------------------------------------------------------------------------------- debris flow

/// The basin's flash-flood warning after each assessment, as the warning manager holds it.
fn flash_flood_warnings(assessments: &[Assessment]) -> Vec<Option<WarningEvent>> {
    let policy = LifecyclePolicy::default();
    let mut thread = WarningThread::new(Hazard::FlashFlood, "B0001", Vec::new());
    assessments
        .iter()
        .map(|a| {
            thread.on_assessment(a.tick, a.raw_level, a.held_level, &a.evidence, &policy);
            thread.active().cloned()
        })
        .collect()
}

fn debris_flow(c: &mut Criterion) {
    let basin = storm_basin();
    let ticks = storm_ticks(&basin, sized(288, 48));
    let mut assessor = BasinAssessor::new(&basin, FlashFloodPolicy::default());
    let assessments = run_basin(&mut assessor, &ticks);
    let floods = flash_flood_warnings(&assessments);
    assert!(floods.iter().any(Option::is_some), "the storm warns");
    // A burned gully, so all three models (I–D, I–R, post-fire) run.
    let gully = GullyProfile {
        basin: basin.id.clone(),
        curve: None,
        ir_curve: None,
        burn_scar: Some(BurnScar {
            t: 0.3,
            f: 0.4,
            s: 0.2,
        }),
    };
    let (config, policy) = (DebrisFlowConfig::default(), LifecyclePolicy::default());

    let mut group = c.benchmark_group("debris_flow");
    configure(&mut group);
    group.throughput(Throughput::Elements(assessments.len() as u64));
    group.bench_function(
        format!(
            "chain_on_assessment/burned_gully/{}_ticks",
            assessments.len()
        ),
        |b| {
            b.iter_batched_ref(
                || DebrisFlowChain::new(gully.clone(), basin.area_codes()),
                |chain| {
                    let mut emitted = 0;
                    for (assessment, flood) in assessments.iter().zip(&floods) {
                        emitted += usize::from(
                            chain
                                .on_assessment(assessment, flood.as_ref(), &config, &policy)
                                .is_some(),
                        );
                    }
                    emitted
                },
                BatchSize::SmallInput,
            );
        },
    );
    group.finish();
}

// ---------------------------------------------------------------------------------- landslide

const READING_MS: i64 = 10 * MINUTE_MS;

/// `count` readings every 10 min of `displacement(days)` plus uniform noise of ± `noise_mm`.
fn readings(
    count: usize,
    noise_mm: f64,
    seed: u64,
    displacement: impl Fn(f64) -> f64,
) -> Vec<DeformationSample> {
    let mut draws = Draws::new(seed);
    (0..count)
        .map(|i| {
            let at_ms = i as i64 * READING_MS;
            let days = at_ms as f64 / (24 * HOUR_MS) as f64;
            DeformationSample {
                at: FIRST_TICK.plus_ms(at_ms),
                displacement_mm: displacement(days) + draws.between(-noise_mm, noise_mm),
            }
        })
        .collect()
}

fn landslide(c: &mut Criterion) {
    let cfg = DeformationConfig::default();
    let full = cfg.capacity;
    let added = sized(4, 2);
    let total = full + added;
    let end_days = (total as i64 * READING_MS) as f64 / (24 * HOUR_MS) as f64;
    // Quiet: 0.1 mm/d creep in ± 0.3 mm noise. Accelerating: Fukuzono tertiary creep
    // (1/v = 0.2 · (t_f − t), hazards.md §5.1) failing half a day after the last reading.
    let failure_days = end_days + 0.5;
    let series = [
        ("quiet", readings(total, 0.3, 0x51_0E, |days| 0.1 * days)),
        (
            "accelerating",
            readings(total, 0.1, 0xFA_11, |days| {
                -(failure_days - days).ln() / 0.2
            }),
        ),
    ];
    let policy = LandslidePolicy::default();
    let slope = SlopeContext {
        v0_mm_per_day: 0.5,
        recent_rain_mm: 10.0,
    };

    let mut group = c.benchmark_group("landslide");
    configure(&mut group);
    group.throughput(Throughput::Elements(added as u64));
    for (name, samples) in &series {
        let mut window =
            DeformationWindow::try_new(StationId::new("GNSS-01"), SensorKind::Gnss, cfg.clone())
                .expect("default config is valid");
        for sample in &samples[..full] {
            window.observe(*sample).expect("readings arrive in order");
        }
        let level = assess(&window, &slope, &policy).and_then(|a| a.level);
        assert_eq!(
            level.is_some(),
            *name == "accelerating",
            "{name}: {level:?}"
        );
        group.bench_function(
            format!("observe_and_assess/{name}/{full}_window/{added}_readings"),
            |b| {
                b.iter_batched_ref(
                    || window.clone(),
                    |held| {
                        let mut levels = 0;
                        for sample in &samples[full..] {
                            held.observe(*sample).expect("readings arrive in order");
                            let assessment = assess(held, &slope, &policy);
                            levels += usize::from(assessment.and_then(|a| a.level).is_some());
                        }
                        levels
                    },
                    BatchSize::LargeInput,
                );
            },
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------- lightning

/// Zone centres: two rows of ten along the Tianshan, one row of ten in the Altai.
fn zone_centres() -> Vec<(f64, f64)> {
    let row = |lat: f64, first_lon: f64, step: f64| {
        (0..10).map(move |i| (first_lon + step * f64::from(i), lat))
    };
    row(43.0, 80.5, 1.0)
        .chain(row(43.6, 81.0, 1.0))
        .chain(row(48.0, 86.0, 0.5))
        .collect()
}

/// Thirty irregular 16-vertex zones of 8 to 20 km radius, alternately forest and grassland.
fn fire_zones() -> Vec<FireZone> {
    let mut draws = Draws::new(0x20_4E5);
    zone_centres()
        .into_iter()
        .enumerate()
        .map(|(i, (lon, lat))| {
            let km_per_lon = KM_PER_DEGREE * lat.to_radians().cos();
            let mut ring: Vec<(f64, f64)> = (0..16)
                .map(|k| {
                    let angle = TAU * f64::from(k) / 16.0;
                    let radius_km = draws.between(8.0, 20.0);
                    (
                        lon + radius_km * angle.cos() / km_per_lon,
                        lat + radius_km * angle.sin() / KM_PER_DEGREE,
                    )
                })
                .collect();
            ring.push(ring[0]);
            let fuel = if i % 2 == 0 {
                FuelKind::Forest
            } else {
                FuelKind::Grassland
            };
            FireZone::new(
                FireZoneId::new(format!("FZ-{i:02}")),
                fuel,
                vec![vec![ring]],
            )
        })
        .collect()
}

/// A one-hour burst: a storm cell crossing the Tianshan rows west to east; 10 % positive,
/// 70 % cloud-to-ground, rain at the stroke unknown, dry or wet.
fn burst(strokes: usize) -> Vec<(Stroke, StrokeRain)> {
    let mut draws = Draws::new(0xB0_057);
    (0..strokes)
        .map(|i| {
            let progress = i as f64 / strokes as f64;
            let time = FIRST_TICK.plus_ms((progress * HOUR_MS as f64) as i64);
            let lon = 80.0 + 10.0 * progress + draws.between(-0.6, 0.6);
            let lat = 43.3 + draws.between(-0.6, 0.6);
            let signed_ka = if draws.chance(0.1) {
                draws.between(5.0, 120.0)
            } else {
                -draws.between(5.0, 60.0)
            };
            let stroke = Stroke::from_signed_ka(time, lon, lat, signed_ka, draws.chance(0.7));
            let rain = match i % 3 {
                0 => StrokeRain::default(),
                1 => StrokeRain {
                    rain_24h_mm: Some(1.0),
                    rain_rate_2min_mm_h: Some(0.5),
                },
                _ => StrokeRain {
                    rain_24h_mm: Some(12.0),
                    rain_rate_2min_mm_h: Some(8.0),
                },
            };
            (stroke, rain)
        })
        .collect()
}

fn lightning(c: &mut Criterion) {
    let zones = fire_zones();
    let zone_count = zones.len();
    let mut tracker = LightningFireTracker::try_new(LightningFireConfig::default(), zones.clone())
        .expect("distinct zones, default config");
    for (i, zone) in zones.iter().enumerate() {
        let fuel = if i % 2 == 0 {
            FuelState {
                ffmc: 89.0,
                dmc: 28.0,
                cn_level: CnFireLevel::High,
            }
        } else {
            FuelState {
                ffmc: 70.0,
                dmc: 8.0,
                cn_level: CnFireLevel::RatherLow,
            }
        };
        tracker.set_fuel(&zone.id, fuel).expect("the zone exists");
    }
    let strokes = burst(sized(20_000, 2_000));
    let mut after_burst = tracker.clone();
    let mut in_zones = 0;
    for (stroke, rain) in &strokes {
        in_zones += after_burst
            .observe_stroke(stroke, rain)
            .expect("strokes are in range")
            .len();
    }
    assert!(in_zones > strokes.len() / 10, "the burst reaches the zones");
    let tick = FIRST_TICK.plus_ms(HOUR_MS);

    let mut group = c.benchmark_group("lightning");
    configure(&mut group);
    group.throughput(Throughput::Elements(strokes.len() as u64));
    group.bench_function(
        format!(
            "observe_stroke/{zone_count}_zones/{}_strokes_burst",
            strokes.len()
        ),
        |b| {
            b.iter_batched_ref(
                || tracker.clone(),
                |fresh| {
                    let mut placed = 0;
                    for (stroke, rain) in &strokes {
                        placed += fresh
                            .observe_stroke(black_box(stroke), rain)
                            .expect("strokes are in range")
                            .len();
                    }
                    placed
                },
                BatchSize::LargeInput,
            );
        },
    );
    group.throughput(Throughput::Elements(zone_count as u64));
    group.bench_function(
        format!(
            "assess_all/{zone_count}_zones/after_{}_strokes_{in_zones}_in_zones",
            strokes.len()
        ),
        |b| {
            b.iter(|| after_burst.assess_all(black_box(tick)));
        },
    );
    group.finish();
}

// ------------------------------------------------------------------------------- fire weather

/// April to September: the fire season.
const SEASON_MONTHS: [(u8, usize); 6] = [(4, 30), (5, 31), (6, 30), (7, 31), (8, 31), (9, 30)];

fn fire_weather(c: &mut Criterion) {
    let stations = sized(100, 10);
    let months: Vec<u8> = SEASON_MONTHS
        .iter()
        .flat_map(|&(month, days)| std::iter::repeat_n(month, days))
        .collect();
    let mut draws = Draws::new(0xF1_2E);
    let latitudes: Vec<f64> = (0..stations).map(|_| draws.between(42.0, 48.5)).collect();
    // Day-major: `months.len()` rows of `stations` noon readings.
    let weather: Vec<NoonWeather> = (0..months.len() * stations)
        .map(|_| NoonWeather {
            temp_c: draws.between(5.0, 35.0),
            rh_pct: draws.between(15.0, 95.0),
            wind_kmh: draws.between(0.0, 40.0),
            rain_24h_mm: if draws.chance(0.3) {
                draws.between(0.0, 20.0)
            } else {
                0.0
            },
        })
        .collect();
    let config = FwiConfig::default();

    let mut group = c.benchmark_group("fire_weather");
    configure(&mut group);
    group.throughput(Throughput::Elements(weather.len() as u64));
    group.bench_function(
        format!(
            "daily_update_and_cn_level/{stations}_stations_x_{}_days",
            months.len()
        ),
        |b| {
            b.iter_batched_ref(
                || vec![config.startup_codes(); stations],
                |codes| {
                    let mut level_sum = 0u32;
                    for (row, &month) in weather.chunks_exact(stations).zip(&months) {
                        for ((yesterday, noon), &latitude) in
                            codes.iter_mut().zip(row).zip(&latitudes)
                        {
                            let today = daily_update(yesterday, noon, month, latitude, &config)
                                .expect("generated weather is valid");
                            level_sum += u32::from(config.cn_level(today.fwi).number());
                            *yesterday = today.codes();
                        }
                    }
                    level_sum
                },
                BatchSize::SmallInput,
            );
        },
    );
    group.finish();
}

// ----------------------------------------------------------------------------------- snowmelt

fn snowmelt(c: &mut Criterion) {
    let basins = sized(326, 30);
    let steps = 30 * 24;
    let mut draws = Draws::new(0x5_0017);
    let packs: Vec<BasinSnowpack> = (0..basins)
        .map(|i| {
            let range = if i % 4 == 0 {
                MountainRange::Altai
            } else {
                MountainRange::Tianshan
            };
            BasinSnowpack::new(
                BasinId::new(format!("B{i:04}")),
                range,
                draws.between(100.0, 400.0),
            )
        })
        .collect();
    // Step-major hourly weather over a spring month: warming by 0.5 °C a day, a diurnal swing
    // of ± 6 °C, precipitation in one hour of ten.
    let weather: Vec<StepWeather> = (0..steps * basins)
        .map(|i| {
            let hour = (i / basins) as f64;
            let diurnal = (TAU * (hour - 9.0) / 24.0).sin();
            StepWeather {
                air_temp_c: -8.0 + 0.5 * hour / 24.0 + 6.0 * diurnal + draws.between(-2.0, 2.0),
                precip_mm: if draws.chance(0.1) {
                    draws.between(0.0, 3.0)
                } else {
                    0.0
                },
                step_h: 1.0,
            }
        })
        .collect();
    let config = SnowmeltConfig::default();

    let mut group = c.benchmark_group("snowmelt");
    configure(&mut group);
    group.throughput(Throughput::Elements(weather.len() as u64));
    group.bench_function(
        format!("basin_step/{basins}_basins_x_{steps}_hourly_steps"),
        |b| {
            b.iter_batched_ref(
                || packs.clone(),
                |held| {
                    let mut water_mm = 0.0;
                    for row in weather.chunks_exact(basins) {
                        for (pack, step) in held.iter_mut().zip(row) {
                            water_mm += pack
                                .step(*step, &config)
                                .expect("generated weather is valid")
                                .water_input_mm();
                        }
                    }
                    water_mm
                },
                BatchSize::SmallInput,
            );
        },
    );
    group.finish();
}

criterion_group!(
    benches,
    flash_flood,
    debris_flow,
    landslide,
    lightning,
    fire_weather,
    snowmelt
);
criterion_main!(benches);
