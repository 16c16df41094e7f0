use std::path::Path;

use super::*;
use crate::ids::{AreaCode, GatewayId};
use crate::landslide::SensorKind;
use crate::region::{Region, SlopePoint};
use crate::scenario::{storm_scenario, StormConfig, FAILURE_AFTER_PEAK_MS, LANDSLIDE_SLOPE};
use crate::time::MINUTE_MS;
use crate::warning::Status;

const DAY_MS: i64 = 24 * HOUR_MS;
/// 2024-07-01T16:00:00+08:00.
const T0: EventTime = EventTime(1_719_820_800_000);
/// Azimuth of the test point: sliding towards the south-west.
const AZIMUTH_DEG: f64 = 225.0;

fn test_slope(v0_mm_per_day: f64) -> MonitoredSlope {
    MonitoredSlope {
        id: SlopeId::new("SL-TEST"),
        name: "测试滑坡".to_owned(),
        county: AreaCode::new("654025"),
        basin: BasinId::new("B1"),
        townships: vec![AreaCode::new("654025100")],
        lon: 83.5,
        lat: 43.3,
        v0_mm_per_day,
        points: vec![SlopePoint {
            id: StationId::new("SL-TEST-G1"),
            sensor: SensorKind::Gnss,
            azimuth_deg: AZIMUTH_DEG,
        }],
    }
}

fn chain(v0_mm_per_day: f64) -> LandslideChain {
    LandslideChain::try_new(LandslidePolicy::default(), &[test_slope(v0_mm_per_day)])
        .expect("valid chain")
}

/// A reading of `point` at `at` after `along_mm` of sliding along [`AZIMUTH_DEG`].
fn reading(point: &str, at: EventTime, sequence: u64, along_mm: f64) -> Observation {
    let (sin, cos) = AZIMUTH_DEG.to_radians().sin_cos();
    Observation {
        station: StationId::new(point),
        event_time: at,
        gateway: GatewayId::new("GW-654025"),
        sequence,
        reading: Reading::Deformation {
            east_mm: along_mm * sin,
            north_mm: along_mm * cos,
            up_mm: -0.3 * along_mm,
        },
    }
}

fn dry() -> BTreeMap<BasinId, f64> {
    BTreeMap::new()
}

/// Feeds hourly readings of `displacement(days)` for `hours` hours, ticking after each, and
/// returns every warning version emitted.
fn run_hourly(
    chain: &mut LandslideChain,
    hours: i64,
    displacement: impl Fn(f64) -> f64,
) -> Vec<WarningEvent> {
    let policy = LifecyclePolicy::default();
    let mut emitted = Vec::new();
    for h in 0..=hours {
        let at = T0.plus_ms(h * HOUR_MS);
        let obs = reading(
            "SL-TEST-G1",
            at,
            h as u64 + 1,
            displacement(h as f64 / 24.0),
        );
        assert_eq!(chain.observe(&obs), Outcome::Applied);
        emitted.extend(chain.on_tick(at, &dry(), &policy));
    }
    emitted
}

/// Inverse-velocity creep v = A/(t_f − t) with A = 5 mm and t_f = 5 d (hazards.md §5.1, α = 2):
/// x(t) = A·ln(t_f / (t_f − t)), 1 mm/d at the start, 50 mm/d a tenth of a day before failure.
fn accelerating(days: f64) -> f64 {
    5.0 * (5.0 / (5.0 - days)).ln()
}

fn first_at(emitted: &[WarningEvent], level: Level) -> Option<EventTime> {
    emitted.iter().find(|w| w.level == level).map(|w| w.issued)
}

fn quantity<'a>(warning: &'a WarningEvent, prefix: &str) -> Option<&'a Evidence> {
    warning
        .evidence
        .iter()
        .find(|e| e.quantity.starts_with(prefix))
}

#[test]
fn an_accelerating_point_reaches_orange_then_red_before_failure() {
    let mut chain = chain(1.0);
    // Up to 2 h before the true failure at 5 d.
    let emitted = run_hourly(&mut chain, 118, accelerating);
    let failure = T0.plus_ms(5 * DAY_MS);
    let orange = first_at(&emitted, Level::Orange).expect("orange is reached");
    let red = first_at(&emitted, Level::Red).expect("red is reached");
    println!(
        "orange {}, red {}",
        orange.to_beijing_rfc3339(),
        red.to_beijing_rfc3339()
    );
    assert!(orange < red && red < failure, "{orange} {red}");
    let warning = emitted
        .iter()
        .find(|w| w.level == Level::Red)
        .expect("a red version");
    assert_eq!(warning.hazard, Hazard::Landslide);
    assert_eq!(warning.target, "SL-TEST");
    assert_eq!(
        warning.area_codes,
        [AreaCode::new("654025"), AreaCode::new("654025100")]
    );
    let predicted = quantity(warning, "predicted_failure_at ").expect("a forecast when red");
    let predicted_ms = warning.issued.millis() + (predicted.value * HOUR_MS as f64) as i64;
    // The 6-h velocity lags the true one, so the forecast comes out somewhat late.
    assert!(
        (predicted_ms - failure.millis()).abs() < 12 * HOUR_MS,
        "{} predicts {predicted_ms}",
        predicted.quantity
    );
    assert!(quantity(warning, "inverse_velocity_r2").is_some_and(|e| e.value >= e.threshold));
    let velocity = quantity(warning, "velocity_mm_per_day").expect("velocity");
    assert!(
        velocity.value > 5.0 && velocity.threshold == 1.0,
        "{velocity:?}"
    );
    assert!(quantity(warning, "acceleration_mm_per_day2").is_some_and(|e| e.value > 0.0));
    assert!(quantity(warning, "tangent_angle_deg").is_some());
    assert_eq!(warning.evidence[0].stations, ["SL-TEST-G1"]);
    assert_eq!(chain.active().len(), 1);
}

#[test]
fn a_steady_creep_says_it_has_no_failure_time() {
    let mut chain = chain(2.0);
    // 2.1 mm/d against v0 = 2: 46.4°, blue, and nothing to extrapolate.
    let emitted = run_hourly(&mut chain, 48, |days| 2.1 * days);
    let last = emitted.last().expect("a blue warning");
    assert_eq!(last.level, Level::Blue);
    let missing = quantity(last, "no reliable failure-time forecast: ").expect("says so");
    assert!(quantity(last, "predicted_failure_at").is_none());
    println!("{}", missing.quantity);
}

#[test]
fn a_quiet_point_never_warns() {
    let mut chain = chain(1.0);
    // ±0.02 mm of deterministic jitter about a fixed position over three days.
    let jitter = |days: f64| {
        let k = (days * 24.0).round() as i64;
        ((k * 7919 % 13) as f64 / 12.0 - 0.5) * 0.04
    };
    let emitted = run_hourly(&mut chain, 72, jitter);
    assert!(emitted.is_empty(), "{emitted:?}");
    assert!(chain.active().is_empty());
}

#[test]
fn rain_above_raise_mm_raises_the_level_one_step() {
    let mut chain = chain(2.0);
    let emitted = run_hourly(&mut chain, 48, |days| 2.1 * days);
    assert_eq!(emitted.last().map(|w| w.level), Some(Level::Blue));
    let tick = T0.plus_ms(49 * HOUR_MS);
    let wet = BTreeMap::from([(BasinId::new("B1"), 30.0)]);
    let raised = chain.on_tick(tick, &wet, &LifecyclePolicy::default());
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (raised[0].level, raised[0].status),
        (Level::Yellow, Status::Upgraded)
    );
    let rain = quantity(&raised[0], "rain_on_slope_24h_mm").expect("rain evidence");
    assert_eq!((rain.value, rain.threshold), (30.0, 25.0));
    assert_eq!(
        quantity(&raised[0], "rain_raised_level").map(|e| e.value),
        Some(1.0)
    );
    // Rain in another basin is not rain on this slope.
    let elsewhere = BTreeMap::from([(BasinId::new("B2"), 80.0)]);
    let next = tick.plus_ms(HOUR_MS);
    assert!(chain
        .on_tick(next, &elsewhere, &LifecyclePolicy::default())
        .is_empty());
    let active = chain.active();
    assert_eq!(
        active[0].level,
        Level::Yellow,
        "upgrades hold for the off-delay"
    );
}

#[test]
fn bad_readings_are_rejected_with_their_reason() {
    let mut chain = chain(1.0);
    let reason = |outcome: Outcome| match outcome {
        Outcome::Rejected { reason, detail } => {
            assert!(!detail.is_empty());
            Some(reason)
        }
        Outcome::Applied => None,
    };
    let at = T0.plus_ms(12 * HOUR_MS);
    assert_eq!(
        reason(chain.observe(&reading("SL-NOWHERE-G1", at, 1, 1.0))),
        Some(RejectReason::UnknownStation)
    );
    let mut rain = reading("SL-TEST-G1", at, 1, 1.0);
    rain.reading = Reading::Rainfall {
        mm: 1.0,
        interval_s: 300,
    };
    assert_eq!(reason(chain.observe(&rain)), Some(RejectReason::Malformed));
    assert_eq!(
        reason(chain.observe(&reading("SL-TEST-G1", at, 1, 1.0))),
        None
    );
    assert_eq!(
        reason(chain.observe(&reading("SL-TEST-G1", at, 2, 1.1))),
        Some(RejectReason::Duplicate)
    );
    let late = at.plus_ms(-7 * HOUR_MS);
    assert_eq!(
        reason(chain.observe(&reading("SL-TEST-G1", late, 3, 0.5))),
        Some(RejectReason::TooLate)
    );
    let within = at.plus_ms(-30 * MINUTE_MS);
    assert_eq!(
        reason(chain.observe(&reading("SL-TEST-G1", within, 4, 0.9))),
        None
    );
    assert_eq!(
        reason(chain.observe(&reading("SL-TEST-G1", at.plus_ms(HOUR_MS), 5, f64::NAN))),
        Some(RejectReason::OutOfRange)
    );
}

#[test]
fn a_repeated_point_is_a_configuration_error() {
    let mut slope = test_slope(1.0);
    slope.points.push(slope.points[0].clone());
    let error =
        LandslideChain::try_new(LandslidePolicy::default(), &[slope]).expect_err("a point twice");
    assert!(error.to_string().contains("SL-TEST-G1"), "{error}");
}

#[test]
fn the_same_readings_give_the_same_warnings() {
    let first = run_hourly(&mut chain(1.0), 118, accelerating);
    let second = run_hourly(&mut chain(1.0), 118, accelerating);
    assert!(!first.is_empty());
    assert_eq!(first, second);
}

#[test]
fn the_storm_scenario_fails_its_slope_and_warns_it_orange_then_red() {
    let region = Region::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang"
    )))
    .expect("the committed region loads");
    let cfg = StormConfig::default();
    let scenario = storm_scenario(&region, &cfg);
    let mut chain =
        LandslideChain::try_new(LandslidePolicy::default(), &region.slopes).expect("valid chain");
    let policy = LifecyclePolicy::default();
    let mut emitted = Vec::new();
    let mut next_tick = scenario.start.plus_ms(10 * MINUTE_MS);
    for message in &scenario.messages {
        let Some(obs) = message.observation() else {
            continue;
        };
        if !matches!(obs.reading, Reading::Deformation { .. }) {
            continue;
        }
        // Tick on the 10-min grid once every reading up to it has been sent.
        while message.sent_at > next_tick.plus_ms(MINUTE_MS) {
            emitted.extend(chain.on_tick(next_tick, &dry(), &policy));
            next_tick = next_tick.plus_ms(10 * MINUTE_MS);
        }
        assert_eq!(chain.observe(obs), Outcome::Applied, "{obs:?}");
    }
    while next_tick <= scenario.end {
        emitted.extend(chain.on_tick(next_tick, &dry(), &policy));
        next_tick = next_tick.plus_ms(10 * MINUTE_MS);
    }
    for warning in &emitted {
        let forecast = warning
            .evidence
            .iter()
            .find(|e| e.quantity.contains("failure"))
            .map_or("", |e| e.quantity.as_str());
        println!(
            "{} {} {:?} {} {forecast}",
            warning.issued.to_beijing_rfc3339(),
            warning.target,
            warning.status,
            warning.level
        );
    }
    assert!(
        emitted.iter().all(|w| w.target == LANDSLIDE_SLOPE),
        "quiet slopes stay quiet"
    );
    let failure = scenario
        .start
        .plus_ms(cfg.dry_before_ms + cfg.rain_ms / 2 + FAILURE_AFTER_PEAK_MS);
    let orange = first_at(&emitted, Level::Orange).expect("orange is reached");
    let red = first_at(&emitted, Level::Red).expect("red is reached");
    assert!(orange < red && red < failure, "{orange} {red} {failure}");
}
