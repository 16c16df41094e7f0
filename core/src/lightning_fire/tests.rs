use proptest::prelude::*;

use super::*;
use crate::time::MINUTE_MS;

/// A 0.1° square forest zone west of Altay city (87.9–88.0 °E, 47.8–47.9 °N).
fn square_zone(id: &str) -> FireZone {
    let ring = vec![
        (87.9, 47.8),
        (88.0, 47.8),
        (88.0, 47.9),
        (87.9, 47.9),
        (87.9, 47.8),
    ];
    FireZone::new(FireZoneId::new(id), FuelKind::Forest, vec![vec![ring]])
}

fn tracker() -> LightningFireTracker {
    LightningFireTracker::try_new(LightningFireConfig::default(), vec![square_zone("altay-1")])
        .unwrap()
}

fn stroke_at(minutes: i64, signed_ka: f64) -> Stroke {
    Stroke::from_signed_ka(
        EventTime(minutes * MINUTE_MS),
        87.95,
        47.85,
        signed_ka,
        true,
    )
}

const DRY: StrokeRain = StrokeRain {
    rain_24h_mm: Some(0.5),
    rain_rate_2min_mm_h: Some(0.0),
};
const WET: StrokeRain = StrokeRain {
    rain_24h_mm: Some(12.0),
    rain_rate_2min_mm_h: Some(6.0),
};

fn zone_id() -> FireZoneId {
    FireZoneId::new("altay-1")
}

#[test]
fn point_in_zone_with_buffer() {
    // §6.5: strokes within match-radius-km (1.6 km, P75 [C]) of a zone count for it.
    let zone = square_zone("z");
    assert_eq!(zone.distance_km(87.95, 47.85), 0.0);
    assert!(zone.covers(87.95, 47.85, 0.0));
    // 0.01° of latitude north of the north edge ≈ 1.11 km.
    let north = 47.91;
    assert!((zone.distance_km(87.95, north) - 0.01 * KM_PER_DEGREE).abs() < 1e-6);
    assert!(zone.covers(87.95, north, 1.6));
    assert!(!zone.covers(87.95, north, 1.0));
    // 0.03° east of the east edge at 47.85 °N ≈ 2.24 km: outside the default buffer.
    assert!(!zone.covers(88.03, 47.85, 1.6));
    let tracker = tracker();
    assert_eq!(tracker.zones_at(87.95, north), vec![zone_id()]);
    assert!(tracker.zones_at(88.03, 47.85).is_empty());
}

#[test]
fn risk_is_weight_times_dry_times_fuel() {
    // §6.5 [U]: w = 4 for positive, 1 for negative; dry < 2.9 mm and < 1.7 mm/h [C];
    // fuel FFMC ≥ 86 or DMC ≥ 20 or CN level ≥ 3.
    let config = LightningFireConfig::default();
    let moist = FuelState {
        ffmc: 80.0,
        dmc: 10.0,
        cn_level: CnFireLevel::RatherLow,
    };
    let ready = FuelState {
        ffmc: 86.0,
        ..moist
    };
    assert_eq!(
        stroke_risk(&stroke_at(0, 35.0), &DRY, Some(&ready), &config),
        4.0
    );
    assert_eq!(
        stroke_risk(&stroke_at(0, -35.0), &DRY, Some(&ready), &config),
        1.0
    );
    assert_eq!(
        stroke_risk(&stroke_at(0, -35.0), &WET, Some(&ready), &config),
        0.0
    );
    assert_eq!(
        stroke_risk(&stroke_at(0, -35.0), &DRY, Some(&moist), &config),
        0.0
    );
    let level3 = FuelState {
        cn_level: CnFireLevel::RatherHigh,
        ..moist
    };
    assert_eq!(
        stroke_risk(&stroke_at(0, -35.0), &DRY, Some(&level3), &config),
        1.0
    );
    let edge = StrokeRain {
        rain_24h_mm: Some(2.9),
        rain_rate_2min_mm_h: Some(0.0),
    };
    assert!(!is_dry(&edge, &config));
    assert!(is_dry(&StrokeRain::default(), &config));
    let intra = Stroke {
        cloud_to_ground: false,
        ..stroke_at(0, 35.0)
    };
    assert_eq!(stroke_risk(&intra, &DRY, None, &config), 0.0);
}

#[test]
fn score_levels_and_counts() {
    // §6.5 [U]: score ≥ 1 blue, ≥ 3 yellow, ≥ 5 orange.
    let mut tracker = tracker();
    let zone = zone_id();
    tracker.observe_stroke(&stroke_at(0, -12.0), &DRY).unwrap();
    let now = EventTime(10 * MINUTE_MS);
    assert_eq!(tracker.assess(&zone, now).unwrap().level, Some(Level::Blue));
    tracker.observe_stroke(&stroke_at(1, 45.0), &DRY).unwrap();
    let assessed = tracker.assess(&zone, now).unwrap();
    assert_eq!((assessed.score, assessed.level), (5.0, Some(Level::Orange)));
    tracker.observe_stroke(&stroke_at(2, 75.0), &WET).unwrap();
    tracker
        .observe_stroke(
            &Stroke {
                cloud_to_ground: false,
                ..stroke_at(3, 5.0)
            },
            &DRY,
        )
        .unwrap();
    let counts = &tracker.assess(&zone, now).unwrap().counts[0];
    assert_eq!(counts.window_h, 1);
    assert_eq!(counts.negative_by_current, [0, 1, 0, 0]);
    assert_eq!(counts.positive_by_current, [0, 0, 1, 1]);
    assert_eq!(
        (counts.positive(), counts.negative(), counts.intra_cloud),
        (2, 1, 1)
    );
    // Two hours later the 1-h window is empty, the 24-h window still holds all four.
    let later = tracker.assess(&zone, EventTime(130 * MINUTE_MS)).unwrap();
    assert_eq!(later.counts[0].positive() + later.counts[0].negative(), 0);
    assert_eq!(later.counts[1].positive() + later.counts[1].negative(), 3);
    assert_eq!(later.evidence[0].quantity, "ignition_score");
    assert_eq!(later.evidence[0].threshold, 5.0);
}

#[test]
fn holdover_watch_expires_after_holdover_days() {
    // §6.2 [C] 14-day holdover; §6.5 [U] half per 3 d after the 72-h primary window.
    let mut tracker = tracker();
    let zone = zone_id();
    tracker.observe_stroke(&stroke_at(0, 20.0), &DRY).unwrap();
    let day = |days: i64| EventTime(days * DAY_MS);
    let primary = tracker.assess(&zone, day(2)).unwrap();
    assert_eq!((primary.score, primary.level), (4.0, Some(Level::Yellow)));
    // 9 days: 6 days past the primary window → 4 · ½² = 1 → blue by score.
    assert!((tracker.assess(&zone, day(9)).unwrap().score - 1.0).abs() < 1e-12);
    // 13 days: score < 1, but the watch holds blue.
    let held = tracker.assess(&zone, day(13)).unwrap();
    assert!(held.score < 1.0);
    assert_eq!(held.level, Some(Level::Blue));
    assert_eq!(held.watch_until, Some(day(14)));
    assert_eq!(held.evidence[1].quantity, "holdover_days_left");
    // At 14 days the watch has expired.
    let expired = tracker.assess(&zone, day(14)).unwrap();
    assert_eq!(
        (expired.level, expired.watch_until, expired.score),
        (None, None, 0.0)
    );
    tracker.prune(day(15));
    assert_eq!(tracker.assess(&zone, day(1)).unwrap().score, 0.0);
}

#[test]
fn wet_strokes_do_not_start_a_watch_and_hotspots_confirm_red() {
    let mut tracker = tracker();
    let zone = zone_id();
    tracker.observe_stroke(&stroke_at(0, -30.0), &WET).unwrap();
    let wet = tracker.assess(&zone, EventTime(DAY_MS)).unwrap();
    assert_eq!((wet.level, wet.watch_until), (None, None));
    // A hotspot 5 km from a qualifying stroke confirms (P95 5.86 km [C]); red [U].
    tracker.observe_stroke(&stroke_at(60, -30.0), &DRY).unwrap();
    let far = Hotspot {
        time: EventTime(2 * DAY_MS),
        lon: 87.95,
        lat: 47.85 + 7.0 / KM_PER_DEGREE,
    };
    assert!(tracker.observe_hotspot(&far).unwrap().is_empty());
    let near = Hotspot {
        lat: 47.85 + 5.0 / KM_PER_DEGREE,
        ..far
    };
    assert_eq!(tracker.observe_hotspot(&near).unwrap(), vec![zone.clone()]);
    let red = tracker
        .assess(&zone, EventTime(2 * DAY_MS + HOUR_MS))
        .unwrap();
    assert!(red.hotspot_confirmed);
    assert_eq!(red.level, Some(Level::Red));
}

#[test]
fn config_defaults_follow_thresholds_toml_and_validate() {
    // thresholds.toml [fire.lightning].
    let config = LightningFireConfig::default();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        (config.dry_rain_24h_mm, config.dry_rain_rate_2min_mm_h),
        (2.9, 1.7)
    );
    assert_eq!(
        (config.match_radius_km, config.confirm_radius_km),
        (1.6, 5.86)
    );
    assert_eq!((config.holdover_days, config.primary_window_h), (14, 72));
    assert_eq!(config.score_levels, [1.0, 3.0, 5.0]);
    let parsed: LightningFireConfig =
        toml::from_str("holdover-days = 12\nholdover-level = \"yellow\"").unwrap();
    assert_eq!(
        (parsed.holdover_days, parsed.holdover_level),
        (12, Some(Level::Yellow))
    );
    assert!(toml::from_str::<LightningFireConfig>("holdover_days = 12").is_err());
    let bad = LightningFireConfig {
        score_levels: [1.0, 5.0, 3.0],
        ..config.clone()
    };
    assert!(bad.validate().unwrap_err().starts_with("score-levels"));
    let bad = LightningFireConfig {
        match_radius_km: -1.0,
        ..config.clone()
    };
    assert!(bad.validate().unwrap_err().starts_with("match-radius-km"));
    let bad = LightningFireConfig {
        primary_window_h: 24 * 15,
        ..config
    };
    assert!(bad.validate().unwrap_err().starts_with("primary-window-h"));
    let twice = vec![square_zone("a"), square_zone("a")];
    assert!(matches!(
        LightningFireTracker::try_new(LightningFireConfig::default(), twice),
        Err(LightningFireError::DuplicateZone { .. })
    ));
    let mut tracker = tracker();
    let bad_stroke = Stroke {
        lat: 95.0,
        ..stroke_at(0, 1.0)
    };
    assert!(tracker.observe_stroke(&bad_stroke, &DRY).is_err());
}

#[test]
fn lightning_real_glm_flashes_sanity() {
    // ../shared/data/lightning: GOES-16 GLM flashes of one minute (no kA, no polarity): placed as
    // negative CG strokes of unknown current, every flash in a zone around the first one counts.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/lightning/goes16-glm-flashes-20180702T0433Z.csv");
    let Ok(mut reader) = csv::Reader::from_path(&path) else {
        eprintln!("skipped: {} not found", path.display());
        return;
    };
    let rows: Vec<(f64, f64)> = reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            (record[2].parse().unwrap(), record[1].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 853);
    let (lon0, lat0) = rows[0];
    let ring = vec![
        (lon0 - 1.0, lat0 - 1.0),
        (lon0 + 1.0, lat0 - 1.0),
        (lon0 + 1.0, lat0 + 1.0),
        (lon0 - 1.0, lat0 + 1.0),
    ];
    let zone = FireZone::new(
        FireZoneId::new("glm"),
        FuelKind::Grassland,
        vec![vec![ring]],
    );
    let inside = rows
        .iter()
        .filter(|&&(lon, lat)| zone.covers(lon, lat, 0.0))
        .count();
    let mut tracker =
        LightningFireTracker::try_new(LightningFireConfig::default(), vec![zone]).unwrap();
    for &(lon, lat) in &rows {
        tracker
            .observe_stroke(
                &Stroke::from_signed_ka(EventTime(0), lon, lat, -0.0, true),
                &DRY,
            )
            .unwrap();
    }
    let assessed = tracker
        .assess(&FireZoneId::new("glm"), EventTime(MINUTE_MS))
        .unwrap();
    assert!(inside >= 1);
    assert!(assessed.counts[0].negative() as usize >= inside);
    assert_eq!(assessed.score, assessed.counts[0].negative() as f64);
    let by_score = tracker.config().score_level(assessed.score);
    assert_eq!(assessed.level, by_score.max(Some(Level::Blue)));
}

/// (minutes after start, signed kA, rain 24 h, rain rate 2 min, in the zone).
fn strokes_strategy() -> impl Strategy<Value = Vec<(i64, f64, f64, f64, bool)>> {
    prop::collection::vec(
        (
            0i64..20_000,
            -150.0..150.0f64,
            0.0..10.0f64,
            0.0..5.0f64,
            any::<bool>(),
        ),
        0..40,
    )
}

fn run(
    strokes: &[(i64, f64, f64, f64, bool)],
    fuel: FuelState,
    rain_scale: f64,
    now_min: i64,
) -> ZoneAssessment {
    let mut tracker = tracker();
    tracker.set_fuel(&zone_id(), fuel).unwrap();
    for &(minute, ka, rain, rate, inside) in strokes {
        let lon = if inside { 87.95 } else { 88.2 };
        let stroke = Stroke::from_signed_ka(EventTime(minute * MINUTE_MS), lon, 47.85, ka, true);
        let rain = StrokeRain {
            rain_24h_mm: Some(rain * rain_scale),
            rain_rate_2min_mm_h: Some(rate * rain_scale),
        };
        tracker.observe_stroke(&stroke, &rain).unwrap();
    }
    tracker
        .assess(&zone_id(), EventTime(now_min * MINUTE_MS))
        .unwrap()
}

fn fuel_strategy() -> impl Strategy<Value = FuelState> {
    (60.0..101.0f64, 0.0..60.0f64, 0usize..5).prop_map(|(ffmc, dmc, rank)| FuelState {
        ffmc,
        dmc,
        cn_level: CnFireLevel::ALL[rank],
    })
}

proptest! {
    /// More strokes never lower the level or the score.
    #[test]
    fn lightning_more_strokes_never_lower_level(
        strokes in strokes_strategy(), extra in strokes_strategy(), fuel in fuel_strategy(), now in 0i64..25_000,
    ) {
        let before = run(&strokes, fuel, 1.0, now);
        let all: Vec<_> = strokes.iter().chain(&extra).copied().collect();
        let after = run(&all, fuel, 1.0, now);
        prop_assert!(after.level >= before.level);
        prop_assert!(after.score >= before.score - 1e-9);
    }

    /// Less rain at the strokes or drier fuel never lowers the level.
    #[test]
    fn lightning_drier_weather_never_lowers_level(
        strokes in strokes_strategy(), fuel in fuel_strategy(), drier in fuel_strategy(),
        rain_scale in 0.0..1.0f64, now in 0i64..25_000,
    ) {
        let wetter = run(&strokes, fuel, 1.0, now);
        let dry_fuel = FuelState {
            ffmc: fuel.ffmc.max(drier.ffmc),
            dmc: fuel.dmc.max(drier.dmc),
            cn_level: fuel.cn_level.max(drier.cn_level),
        };
        let dry = run(&strokes, dry_fuel, rain_scale, now);
        prop_assert!(dry.level >= wetter.level);
    }

    /// The same strokes in the same order give identical assessments.
    #[test]
    fn lightning_is_deterministic(strokes in strokes_strategy(), fuel in fuel_strategy(), now in 0i64..25_000) {
        prop_assert_eq!(run(&strokes, fuel, 1.0, now), run(&strokes, fuel, 1.0, now));
    }
}
