use proptest::prelude::*;

use super::*;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} != {expected}"
    );
}

fn weather(air_temp_c: f64, precip_mm: f64, step_h: f64) -> StepWeather {
    StepWeather {
        air_temp_c,
        precip_mm,
        step_h,
    }
}

fn day(mean_c: f64, rain_24h_mm: f64, snow_depth_cm: f64) -> DailyWeather {
    DailyWeather {
        mean_c,
        rain_24h_mm,
        snow_depth_cm,
    }
}

/// TV7.1 (hazards.md §7.1–7.2, DDF [C] Urumqi Glacier No.1 calibrated 2.9; numbers [D]):
/// DDF 2.9, T = 5 °C → 14.5 mm/d.
#[test]
fn tv7_1_degree_day_melt() {
    close(degree_day_melt(2.9, 5.0, 0.0, 24.0), 14.5, 1e-12);
    // Sub-daily form M·Δt/24: half a day melts half.
    close(degree_day_melt(2.9, 5.0, 0.0, 12.0), 7.25, 1e-12);
    // No melt at or below the base temperature.
    assert_eq!(degree_day_melt(2.9, -4.0, 0.0, 24.0), 0.0);
}

/// TV7.1 (hazards.md §7.2 [D]): P = 20 mm at 10 °C → M_rain = 2.51 mm; and the Xinjiang statement
/// "at 10 °C, 1 mm of rain melts 0.125 mm of snow" [C] (Zhou Gang et al. 2021 citing Wu Sufen).
#[test]
fn tv7_1_rain_on_snow_melt() {
    let cfg = SnowmeltConfig::default();
    close(rain_melt(20.0, 10.0, cfg.rain_melt_coef), 2.51, 1e-12);
    close(rain_melt(20.0, 10.0, WATER_HEAT_OVER_FUSION), 2.51, 0.005);
    close(rain_melt(1.0, 10.0, cfg.rain_melt_coef), 0.125, 0.001);
    // The coefficient is c_w/L_f rounded to 4 significant figures.
    close(cfg.rain_melt_coef, WATER_HEAT_OVER_FUSION, 5e-7);
    assert_eq!(rain_melt(20.0, -2.0, cfg.rain_melt_coef), 0.0);
}

/// TV7.1 through the pack: DDF 2.9 at 10 °C with 20 mm of rain melts 29 + 2.51 mm of a deep pack.
#[test]
fn tv7_1_pack_step_total_melt() {
    let cfg = SnowmeltConfig {
        ddf_tianshan_mm_per_degday: 2.9,
        ..SnowmeltConfig::default()
    };
    let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, 100.0);
    let step = pack.step(weather(10.0, 20.0, 24.0), &cfg).unwrap();
    assert_eq!((step.snowfall_mm, step.rain_mm), (0.0, 20.0));
    close(step.potential_degree_day_mm, 29.0, 1e-12);
    close(step.potential_rain_melt_mm, 2.51, 1e-12);
    close(step.melt_mm, 31.51, 1e-12);
    close(pack.swe_mm(), 68.49, 1e-12);
    close(step.water_input_mm(), 51.51, 1e-12);
}

#[test]
fn melt_is_limited_by_the_pack() {
    let cfg = SnowmeltConfig::default();
    let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, 5.0);
    let step = pack.step(weather(5.0, 0.0, 24.0), &cfg).unwrap();
    close(step.potential_degree_day_mm, 15.0, 1e-12);
    assert_eq!((step.melt_mm, pack.swe_mm()), (5.0, 0.0));
    // An empty pack melts nothing further.
    let step = pack.step(weather(5.0, 0.0, 24.0), &cfg).unwrap();
    assert_eq!(step.melt_mm, 0.0);
}

/// The snow/rain split at the default threshold 1.0 °C (SWAT SFTMP, hazards.md §7.1 [C]/[U]).
#[test]
fn precipitation_splits_at_the_threshold() {
    let cfg = SnowmeltConfig::default();
    let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Altai, 0.0);
    let step = pack.step(weather(-3.0, 8.0, 24.0), &cfg).unwrap();
    assert_eq!(
        (step.snowfall_mm, step.rain_mm, step.melt_mm),
        (8.0, 0.0, 0.0)
    );
    // At the threshold it still snows; 1 °C above 0 melts 3 mm of what fell (default DDF 3.0).
    let step = pack.step(weather(1.0, 2.0, 24.0), &cfg).unwrap();
    assert_eq!(step.snowfall_mm, 2.0);
    close(step.melt_mm, 3.0, 1e-12);
    close(pack.swe_mm(), 7.0, 1e-12);
    let step = pack.step(weather(1.1, 2.0, 24.0), &cfg).unwrap();
    assert_eq!((step.snowfall_mm, step.rain_mm), (0.0, 2.0));
}

#[test]
fn ranges_pick_their_factor() {
    let cfg = SnowmeltConfig {
        ddf_altai_mm_per_degday: 4.0,
        ..SnowmeltConfig::default()
    };
    assert_eq!(cfg.ddf_for(MountainRange::Tianshan), 3.0);
    assert_eq!(cfg.ddf_for(MountainRange::Altai), 4.0);
}

#[test]
fn rain_on_snow_extra_input() {
    let cfg = SnowmeltConfig {
        ddf_tianshan_mm_per_degday: 2.9,
        ..SnowmeltConfig::default()
    };
    let pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, 100.0);
    // TV7.1 numbers over a 1 h step: 2.9 · 10 / 24 + 2.51.
    let extra = pack
        .rain_on_snow_extra_mm(weather(10.0, 20.0, 1.0), &cfg)
        .unwrap();
    close(extra, 29.0 / 24.0 + 2.51, 1e-12);
    assert_eq!(pack.swe_mm(), 100.0, "a preview leaves the pack alone");
    // Limited by a thin pack; nothing without rain, without a pack, or when it snows.
    let thin = |swe| {
        rain_on_snow_extra_mm(
            swe,
            weather(10.0, 20.0, 24.0),
            MountainRange::Tianshan,
            &cfg,
        )
    };
    assert_eq!(thin(2.0).unwrap(), 2.0);
    assert_eq!(thin(0.0).unwrap(), 0.0);
    assert_eq!(
        pack.rain_on_snow_extra_mm(weather(10.0, 0.0, 1.0), &cfg)
            .unwrap(),
        0.0
    );
    assert_eq!(
        pack.rain_on_snow_extra_mm(weather(0.5, 5.0, 1.0), &cfg)
            .unwrap(),
        0.0
    );
}

#[test]
fn bad_weather_is_rejected_and_leaves_the_pack() {
    let cfg = SnowmeltConfig::default();
    let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, 10.0);
    let err = pack.step(weather(f64::NAN, 0.0, 24.0), &cfg).unwrap_err();
    assert!(matches!(
        err,
        SnowmeltError::InvalidInput {
            field: "air_temp_c",
            ..
        }
    ));
    let err = pack.step(weather(2.0, -1.0, 24.0), &cfg).unwrap_err();
    assert_eq!(err.to_string(), "precip_mm must be non-negative, got -1");
    assert_eq!(pack.swe_mm(), 10.0);
    assert_eq!(
        BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, f64::NAN).swe_mm(),
        0.0
    );
}

/// TV7.2 (hazards.md §7.3, Zhou Gang et al. 2021 rule [C]; numbers [D]): snow depth 12 cm; daily
/// means 1.5, 2.0, 3.0 °C → ΣT3+ = 6.5 → grade 4; 24 h rain 15 mm (大雨) in a static high-hazard
/// cell → extreme (rain-on-snow).
#[test]
fn tv7_2_dynamic_grade_rain_on_snow() {
    let cfg = SnowmeltConfig::default();
    close(positive_temp_sum([1.5, 2.0, 3.0]), 6.5, 1e-12);
    let grade = WarmingGrade::from_sum(6.5, &cfg.warming_grade_bounds);
    assert_eq!(grade.get(), 4);
    let rain = RainClass24h::from_mm(15.0, &cfg.rain_class_bounds_24h);
    assert_eq!(rain, RainClass24h::Heavy);
    assert_eq!(
        dynamic_hazard(StaticZone::High, grade, rain),
        (SnowmeltHazard::Extreme, Trigger::RainOnSnow)
    );

    let days = [
        day(1.5, 0.0, 12.0),
        day(2.0, 0.0, 12.0),
        day(3.0, 15.0, 12.0),
    ];
    let assessment = assess(&BasinId::new("B7"), StaticZone::High, &days, &cfg)
        .unwrap()
        .expect("snow-covered");
    assert_eq!(assessment.level, Some(Level::Red));
    assert_eq!(assessment.trigger, Trigger::RainOnSnow);
    let quantities: Vec<(&str, f64, f64)> = assessment
        .evidence
        .iter()
        .map(|e| (e.quantity.as_str(), e.value, e.threshold))
        .collect();
    assert_eq!(
        quantities,
        [
            ("positive_temp_sum_3d", 6.5, 6.0),
            ("rain_24h", 15.0, 12.0),
            ("snow_depth_day1", 12.0, 1.0),
            ("warming_spell_days", 0.0, 3.0),
        ]
    );
}

/// TV7.2 without the rain: still extreme in a high zone, driven by warming (hazards.md §7.3 [C]).
#[test]
fn tv7_2_without_rain_is_a_warming_case() {
    let cfg = SnowmeltConfig::default();
    let days = [
        day(1.5, 0.0, 12.0),
        day(2.0, 0.0, 12.0),
        day(3.0, 3.0, 12.0),
    ];
    let assessment = assess(&BasinId::new("B7"), StaticZone::High, &days, &cfg)
        .unwrap()
        .expect("snow-covered");
    assert_eq!(assessment.rain_class, RainClass24h::Light);
    assert_eq!(
        (assessment.hazard, assessment.trigger),
        (SnowmeltHazard::Extreme, Trigger::Warming)
    );
}

/// The grade table of hazards.md §7.3 [C]: ≤ 0 → 1, 0–4 → 2, 4–6 → 3, 6–8 → 4, > 8 → 5, with
/// upper-inclusive bounds [U]; negative days do not count.
#[test]
fn warming_grades() {
    let bounds = SnowmeltConfig::default().warming_grade_bounds;
    let grade = |sum| WarmingGrade::from_sum(sum, &bounds).get();
    assert_eq!(positive_temp_sum([-5.0, -1.0, 0.0]), 0.0);
    assert_eq!(positive_temp_sum([-5.0, 2.0, 1.0]), 3.0);
    let expected = [
        (0.0, 1),
        (0.1, 2),
        (4.0, 2),
        (4.1, 3),
        (6.0, 3),
        (8.0, 4),
        (8.1, 5),
    ];
    for (sum, want) in expected {
        assert_eq!(grade(sum), want, "sum {sum}");
    }
    assert_eq!(WarmingGrade::new(0), None);
    assert_eq!(WarmingGrade::new(5).map(WarmingGrade::get), Some(5));
}

/// Xinjiang 24 h classes 0–6 / 6–12 / 12–24 mm (hazards.md §1.4 [C]; inclusive bounds [U]).
#[test]
fn rain_classes() {
    let bounds = SnowmeltConfig::default().rain_class_bounds_24h;
    let class = |mm| RainClass24h::from_mm(mm, &bounds);
    assert_eq!(class(0.0), RainClass24h::Light);
    assert_eq!(class(6.0), RainClass24h::Light);
    assert_eq!(class(6.1), RainClass24h::Moderate);
    assert_eq!(class(12.0), RainClass24h::Moderate);
    assert_eq!(class(24.0), RainClass24h::Heavy);
    assert_eq!(class(24.1), RainClass24h::Rainstorm);
    assert!(class(30.0).is_heavy_or_more() && !class(12.0).is_heavy_or_more());
}

/// The static × dynamic excerpt of hazards.md §7.3 [C], cell by cell, plus the two cells filled
/// here [U] (low + 5, low + 1).
#[test]
fn dynamic_hazard_matrix() {
    use SnowmeltHazard::{Extreme, High, Low, Medium, VeryLow};
    let rows = [
        (StaticZone::High, [Low, Medium, High, Extreme, Extreme]),
        (StaticZone::Medium, [Low, Medium, Medium, High, High]),
        (StaticZone::Low, [VeryLow, VeryLow, Medium, Medium, Medium]),
    ];
    for (zone, by_grade) in rows {
        for (n, want) in (1..=5).zip(by_grade) {
            let grade = WarmingGrade::new(n).unwrap();
            for rain in [RainClass24h::Light, RainClass24h::Heavy] {
                assert_eq!(
                    dynamic_hazard(zone, grade, rain).0,
                    want,
                    "{zone:?} grade {n}"
                );
            }
        }
    }
    let grade3 = WarmingGrade::new(3).unwrap();
    assert_eq!(
        dynamic_hazard(StaticZone::High, grade3, RainClass24h::Rainstorm).1,
        Trigger::Warming
    );
    assert_eq!(Medium.level(), Some(Level::Yellow));
    assert_eq!(VeryLow.level(), None);
}

#[test]
fn assessment_needs_snow_and_three_days() {
    let cfg = SnowmeltConfig::default();
    let basin = BasinId::new("B7");
    let bare = [day(5.0, 0.0, 0.5), day(6.0, 0.0, 0.0), day(7.0, 20.0, 0.0)];
    assert_eq!(assess(&basin, StaticZone::High, &bare, &cfg), Ok(None));
    let short = [day(5.0, 0.0, 10.0), day(6.0, 0.0, 10.0)];
    assert_eq!(
        assess(&basin, StaticZone::High, &short, &cfg),
        Err(SnowmeltError::TooFewDays { got: 2 })
    );
    let nan = [
        day(5.0, 0.0, 10.0),
        day(f64::NAN, 0.0, 10.0),
        day(1.0, 0.0, 10.0),
    ];
    assert!(matches!(
        assess(&basin, StaticZone::High, &nan, &cfg),
        Err(SnowmeltError::InvalidInput {
            field: "mean_c",
            ..
        })
    ));
}

/// Outlet warming criterion (hazards.md §7.3 [C], Wu Sufen): rises of 1.5–2.5 °C/d with daily
/// means of 0–5 °C for at least 3 days.
#[test]
fn warming_spell_indicators() {
    let cfg = SnowmeltConfig::default();
    let spell = warming_spell(&[-3.0, -1.0, 0.5, 2.5, 4.5], &cfg);
    assert_eq!(spell.positive_days, 3);
    assert_eq!(spell.warming_days, 3); // -1 → 0.5 (+1.5), → 2.5 (+2.0), → 4.5 (+2.0)
    assert_eq!(spell.last_rise_c, Some(2.0));
    assert!(spell.outlet_criterion_met);
    // A rise of 3 °C/d or a mean above 5 °C breaks the spell.
    let spell = warming_spell(&[-1.0, 0.5, 2.5, 5.5], &cfg);
    assert_eq!((spell.warming_days, spell.outlet_criterion_met), (0, false));
    let spell = warming_spell(&[2.0], &cfg);
    assert_eq!(
        (spell.positive_days, spell.warming_days, spell.last_rise_c),
        (1, 0, None)
    );
}

#[test]
fn config_defaults_validate_and_parse() {
    let cfg = SnowmeltConfig::default();
    assert_eq!(cfg.validate(), Ok(()));
    let parsed: SnowmeltConfig =
        toml::from_str("ddf-altai-mm-per-degday = 3.5\nwarming-grade-bounds = [0, 3, 5, 7]")
            .unwrap();
    assert_eq!(parsed.ddf_altai_mm_per_degday, 3.5);
    assert_eq!(parsed.warming_grade_bounds, [0.0, 3.0, 5.0, 7.0]);
    assert_eq!(parsed.ddf_tianshan_mm_per_degday, 3.0);
    assert!(toml::from_str::<SnowmeltConfig>("ddf = 3.0").is_err());

    let starts = |cfg: SnowmeltConfig, field: &str| {
        let message = cfg.validate().unwrap_err();
        assert!(message.starts_with(field), "{message}");
    };
    starts(
        SnowmeltConfig {
            ddf_tianshan_mm_per_degday: 0.0,
            ..cfg.clone()
        },
        "ddf-tianshan",
    );
    starts(
        SnowmeltConfig {
            ddf_altai_mm_per_degday: f64::NAN,
            ..cfg.clone()
        },
        "ddf-altai",
    );
    starts(
        SnowmeltConfig {
            rain_melt_coef: -0.1,
            ..cfg.clone()
        },
        "rain-melt-coef",
    );
    starts(
        SnowmeltConfig {
            warming_grade_bounds: [0.0, 6.0, 4.0, 8.0],
            ..cfg.clone()
        },
        "warming-grade-bounds",
    );
    starts(
        SnowmeltConfig {
            outlet_warming_days: [0, 6],
            ..cfg.clone()
        },
        "outlet-warming-days",
    );
    starts(
        SnowmeltConfig {
            outlet_daily_mean_c: [5.0, 0.0],
            ..cfg
        },
        "outlet-daily-mean-c",
    );
}

proptest! {
    /// Warmer never melts less, for the same pack and the same precipitation phase.
    #[test]
    fn warmer_never_melts_less(
        swe in 0.0..500.0f64,
        precip in 0.0..80.0f64,
        cold in -30.0..30.0f64,
        warming in 0.0..20.0f64,
        step_h in 0.0..48.0f64,
    ) {
        let cfg = SnowmeltConfig::default();
        let warm = cold + warming;
        // Crossing the snow/rain threshold turns snowfall (meltable at once) into rain.
        let same_phase = (cold <= cfg.snow_rain_threshold_c) == (warm <= cfg.snow_rain_threshold_c);
        let precip = if same_phase { precip } else { 0.0 };
        let melt = |t| melt_step(swe, weather(t, precip, step_h), 3.0, &cfg).unwrap().melt_mm;
        prop_assert!(melt(warm) >= melt(cold));
        prop_assert!(degree_day_melt(3.0, warm, 0.0, step_h) >= degree_day_melt(3.0, cold, 0.0, step_h));
    }

    /// Melt never exceeds the pack, and mass is conserved: before + snowfall = after + melt.
    #[test]
    fn mass_is_conserved(
        swe in 0.0..500.0f64,
        steps in prop::collection::vec((-30.0..30.0f64, 0.0..50.0f64, 0.0..24.0f64), 1..40),
    ) {
        let cfg = SnowmeltConfig::default();
        let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Tianshan, swe);
        for (t, p, h) in steps {
            let step = pack.step(weather(t, p, h), &cfg).unwrap();
            prop_assert!(step.melt_mm >= 0.0);
            prop_assert!(step.melt_mm <= step.swe_before_mm + step.snowfall_mm);
            prop_assert!(step.swe_after_mm >= 0.0);
            let balance = step.swe_before_mm + step.snowfall_mm - step.swe_after_mm - step.melt_mm;
            prop_assert!(balance.abs() <= 1e-9 * (1.0 + step.swe_before_mm + step.snowfall_mm));
        }
    }

    /// The same inputs give the same pack, melt and assessment.
    #[test]
    fn deterministic(
        swe in 0.0..500.0f64,
        steps in prop::collection::vec((-30.0..30.0f64, 0.0..50.0f64), 3..20),
        depth in 0.0..50.0f64,
    ) {
        let cfg = SnowmeltConfig::default();
        let run = || {
            let mut pack = BasinSnowpack::new(BasinId::new("B1"), MountainRange::Altai, swe);
            let melts: Vec<MeltStep> = steps
                .iter()
                .map(|&(t, p)| pack.step(weather(t, p, 24.0), &cfg).unwrap())
                .collect();
            let days: Vec<DailyWeather> = steps.iter().map(|&(t, p)| day(t, p, depth)).collect();
            let assessment = assess(&BasinId::new("B1"), StaticZone::Medium, &days, &cfg).unwrap();
            (pack, melts, assessment)
        };
        prop_assert_eq!(run(), run());
    }
}
