use proptest::prelude::*;

use super::*;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} != {expected} ± {tolerance}"
    );
}

fn window(duration_min: u32, mm: f64) -> RainWindow {
    RainWindow { duration_min, mm }
}

fn gully(curve: Option<&str>, burn_scar: Option<BurnScar>) -> GullyProfile {
    GullyProfile {
        basin: BasinId::new("G0007"),
        curve: curve.map(str::to_owned),
        ir_curve: None,
        burn_scar,
    }
}

/// TV4.2 first segment (hazards.md §4.2, pfdf test suite [C]).
const BURN: BurnScar = BurnScar {
    t: 0.2,
    f: 0.3,
    s: 0.4,
};

/// TV4.1 (hazards.md §4.1, coefficients [S], values [D], printed to 2 decimals).
#[test]
fn tv4_1_caine_and_guzzetti_thresholds() {
    let rows = [
        (0.5, 19.42, 2.98),
        (1.0, 14.82, 2.20),
        (3.0, 9.66, 1.36),
        (6.0, 7.37, 1.00),
        (24.0, 4.29, 0.54),
    ];
    let config = IdThresholdConfig::default();
    let caine = config.curve(Some("caine")).unwrap().1;
    let guzzetti = config.curve(Some("guzzetti")).unwrap().1;
    for (duration_h, caine_mm_h, guzzetti_mm_h) in rows {
        close(caine.threshold_mm_h(duration_h), caine_mm_h, 0.005);
        // Guzzetti at 0.5 h is 2.9845…, printed 2.98 (truncated, not rounded): ±0.0051.
        close(guzzetti.threshold_mm_h(duration_h), guzzetti_mm_h, 0.0051);
    }
}

/// TV4.1 example (hazards.md §4.1): a 3-h event with 33 mm → I = 11.0 mm/h → r_Caine = 1.14.
#[test]
fn tv4_1_example_three_hour_event_exceeds_caine() {
    let config = DebrisFlowConfig::default();
    let rain = DebrisRain {
        windows: vec![window(180, 33.0)],
        ..DebrisRain::default()
    };
    let assessment = assess(&config, &gully(None, None), &rain);
    let evidence = assessment.decisive().unwrap();
    assert_eq!(
        evidence.model,
        DebrisModel::IntensityDuration("caine".to_owned())
    );
    assert_eq!(evidence.duration_min, 180);
    close(evidence.value, 11.0, 1e-12);
    close(evidence.ratio, 1.14, 0.005);
    // r ≥ 1 is the warning threshold of §4.1: orange with the default ladder [U].
    assert_eq!(assessment.level, Some(Level::Orange));
}

/// TV4.2 likelihoods (hazards.md §4.2, pfdf `test_staley2017.py` [C]), 1e-6 tolerance.
#[test]
fn tv4_2_staley_m1_likelihoods() {
    let [(d15, m15), (d30, m30), (d60, m60)] = PostFireConfig::default().models();
    assert_eq!((d15, d30, d60), (15, 30, 60));
    close(m15.likelihood(&BURN, 4.0), 0.2013304, 1e-6);
    close(m30.likelihood(&BURN, 4.0), 0.10583586, 1e-6);
    close(m60.likelihood(&BURN, 4.0), 0.07712972, 1e-6);
    close(m15.likelihood(&BURN, 5.0), 0.30682605, 1e-6);
    // Second segment: T = 1, F = 0.7, S = 0.3, R = 4 → p15 = 0.67392689.
    let second = BurnScar {
        t: 1.0,
        f: 0.7,
        s: 0.3,
    };
    close(m15.likelihood(&second, 4.0), 0.67392689, 1e-6);
}

/// TV4.2 inverse (hazards.md §4.2, pfdf test suite [C]), 1e-6 tolerance.
#[test]
fn tv4_2_staley_m1_rainfall_thresholds() {
    let [(_, m15), (_, m30), (_, m60)] = PostFireConfig::default().models();
    close(m15.rainfall_for(&BURN, 0.5).unwrap(), 6.44760213, 1e-6);
    close(m30.rainfall_for(&BURN, 0.5).unwrap(), 9.78319783, 1e-6);
    close(m60.rainfall_for(&BURN, 0.5).unwrap(), 17.63736264, 1e-6);
    close(m15.rainfall_for(&BURN, 0.75).unwrap(), 8.39895611, 1e-6);
    // The inverse undoes the likelihood.
    close(m15.likelihood(&BURN, 6.44760213), 0.5, 1e-6);
    assert_eq!(m15.rainfall_for(&BURN, 1.0), None);
    let unburned = BurnScar {
        t: 0.0,
        f: 0.0,
        s: 0.0,
    };
    assert_eq!(m15.rainfall_for(&unburned, 0.5), None);
}

/// The post-fire model in an assessment: R15 = 5 mm gives p = 0.307 (TV4.2) → blue (≥ 0.2 [U]);
/// its threshold is the 15-min rain at p = 0.2.
#[test]
fn post_fire_evidence_in_an_assessment() {
    let config = DebrisFlowConfig::default();
    let rain = DebrisRain {
        windows: vec![window(15, 5.0), window(30, 0.5)],
        ..DebrisRain::default()
    };
    let assessment = assess(&config, &gully(None, Some(BURN)), &rain);
    assert_eq!(assessment.level, Some(Level::Blue));
    let evidence = assessment
        .evidence
        .iter()
        .find(|e| e.model == DebrisModel::PostFire)
        .unwrap();
    assert_eq!(evidence.duration_min, 15);
    close(evidence.ratio, 0.30682605, 1e-6);
    let [(_, m15), ..] = config.postfire.models();
    close(
        evidence.threshold,
        m15.rainfall_for(&BURN, 0.2).unwrap(),
        1e-12,
    );
    // Caine at 15 min is 25.4 mm/h: 20 mm/h is a 0.79 ratio, blue too.
    assert_eq!(
        assessment.decisive().unwrap().model,
        DebrisModel::IntensityDuration("caine".to_owned())
    );
    // Caine at 15 min is 25.4 mm/h: 20 mm/h is a 0.79 ratio, blue too, and first in order.
    assert_eq!(
        assessment.decisive().unwrap().model,
        DebrisModel::IntensityDuration("caine".to_owned())
    );
    // No burn scar: the post-fire model is skipped.
    let unburned = assess(&config, &gully(None, None), &rain);
    assert!(unburned
        .evidence
        .iter()
        .all(|e| e.model != DebrisModel::PostFire));
}

/// §4.3 effective rainfall: R_0 + Σ K^i R_i over the configured days.
#[test]
fn effective_rainfall_decays_previous_days() {
    close(
        effective_rainfall(10.0, &[20.0, 5.0], 0.8, 15),
        10.0 + 16.0 + 3.2,
        1e-12,
    );
    close(effective_rainfall(10.0, &[20.0, 5.0], 0.8, 1), 26.0, 1e-12);
    close(effective_rainfall(0.0, &[], 0.8, 15), 0.0, 1e-12);
}

/// The I–R curve: I_crit = 30 · R_eff^-0.3 (placeholder [U]); 60-min intensity against it.
#[test]
fn intensity_against_effective_rain() {
    let config = DebrisFlowConfig {
        id_threshold: IdThresholdConfig {
            min_event_mm: 1000.0, // keep I–D out of the way
            ..IdThresholdConfig::default()
        },
        ..DebrisFlowConfig::default()
    };
    // R_eff = 40 + 0.8 · 50 = 80 → I_crit = 30 · 80^-0.3 = 8.1… mm/h; 20 mm/h → ratio ≈ 2.46.
    let rain = DebrisRain {
        windows: vec![window(60, 20.0)],
        today_mm: 40.0,
        days_before_mm: vec![50.0],
    };
    let assessment = assess(&config, &gully(None, None), &rain);
    close(assessment.effective_mm, 80.0, 1e-12);
    close(assessment.rti, 1600.0, 1e-9);
    let evidence = assessment.decisive().unwrap();
    assert_eq!(evidence.model, DebrisModel::IntensityEffectiveRain);
    close(evidence.threshold, 30.0 * 80f64.powf(-0.3), 1e-12);
    assert_eq!(assessment.level, Some(Level::Red));
    // Without effective rain the curve is never reached.
    assert_eq!(
        IrCurve { a: 30.0, b: 0.3 }.critical_mm_h(0.0),
        f64::INFINITY
    );
}

#[test]
fn curve_selection_validity_and_override() {
    let config = DebrisFlowConfig::default();
    // 6 mm in 3 h = 2 mm/h: ratio 1.47 to Guzzetti (1.36) → orange; far below Caine.
    let rain = DebrisRain {
        windows: vec![window(180, 6.0), window(5, 3.0)],
        ..DebrisRain::default()
    };
    let guzzetti = assess(&config, &gully(Some("guzzetti"), None), &rain);
    assert_eq!(guzzetti.level, Some(Level::Orange));
    // The 5-min window is outside both curves' ranges: only the 3-h window is compared.
    // Without a 60-min window there is no I–R comparison either.
    assert_eq!(guzzetti.evidence.len(), 1);
    assert_eq!(guzzetti.evidence[0].duration_min, 180);
    assert_eq!(assess(&config, &gully(None, None), &rain).level, None);
    // Factor 1.2: threshold 1.36 × 1.2 = 1.63 mm/h, ratio 2 / 1.63 = 1.23 → still orange;
    // factor 1.5: 2.04 mm/h, ratio 0.98 → yellow (≥ 0.8); factor 0.6: ratio 2.45 → red.
    let scaled = |factor| DebrisFlowConfig {
        rain_threshold_factor: factor,
        ..DebrisFlowConfig::default()
    };
    let level = |factor| assess(&scaled(factor), &gully(Some("guzzetti"), None), &rain);
    close(
        level(1.2).evidence[0].threshold,
        guzzetti.evidence[0].threshold * 1.2,
        1e-12,
    );
    assert_eq!(level(1.2).level, Some(Level::Orange));
    assert_eq!(level(1.5).level, Some(Level::Yellow));
    assert_eq!(level(0.6).level, Some(Level::Red));
    // Alpha override 1.0 at the active curve (Caine β 0.39): 1 · 3^-0.39 = 0.65 → ratio 3.07.
    let overridden = DebrisFlowConfig {
        id_threshold: IdThresholdConfig {
            regional_alpha_override: 1.0,
            ..IdThresholdConfig::default()
        },
        ..DebrisFlowConfig::default()
    };
    assert_eq!(
        assess(&overridden, &gully(None, None), &rain).level,
        Some(Level::Red)
    );
    // The regional curve is Aleotti 2004: 19 · D^-0.5.
    let (_, regional) = config.id_threshold.curve(Some("regional")).unwrap();
    close(regional.threshold_mm_h(4.0), 9.5, 1e-12);
    assert!(config.id_threshold.curve(Some("nowhere")).is_none());
}

#[test]
fn level_ladder() {
    let breaks = [0.6, 0.8, 1.0, 1.5];
    assert_eq!(level_for(0.59, &breaks), None);
    assert_eq!(level_for(0.6, &breaks), Some(Level::Blue));
    assert_eq!(level_for(0.8, &breaks), Some(Level::Yellow));
    assert_eq!(level_for(1.0, &breaks), Some(Level::Orange));
    assert_eq!(level_for(9.0, &breaks), Some(Level::Red));
    assert_eq!(level_for(f64::NAN, &breaks), None);
}

#[test]
fn chain_raises_by_step_and_links_the_flash_flood() {
    let ff = WarningId::new("FF-B0042-20240701T0030Z");
    let linked = Some((&ff, Level::Orange));
    let chained = chain(Some(Level::Blue), linked, 1);
    assert_eq!(chained.level, Some(Level::Yellow));
    assert_eq!(chained.own, Some(Level::Blue));
    assert_eq!(chained.caused_by.as_ref(), Some(&ff));
    assert_eq!(
        chain(Some(Level::Yellow), linked, 2).level,
        Some(Level::Red)
    );
    // Capped at red; the link is still carried.
    let capped = chain(Some(Level::Red), linked, 1);
    assert_eq!(
        (capped.level, capped.caused_by),
        (Some(Level::Red), Some(ff.clone()))
    );
    // No linked warning, no own level, or step 0: unchanged, no cause.
    for chained in [
        chain(Some(Level::Blue), None, 1),
        chain(None, linked, 1),
        chain(Some(Level::Blue), linked, 0),
    ] {
        assert_eq!(chained.level, chained.own);
        assert_eq!(chained.caused_by, None);
    }
}

#[test]
fn config_defaults_validate_and_parse() {
    let config = DebrisFlowConfig::default();
    assert_eq!(config.validate(), Ok(()));
    let parsed: DebrisFlowConfig = toml::from_str(
        "chain-step = 2\n[id-threshold]\nactive = \"guzzetti\"\n\
         [id-threshold.local.xinjiang]\nalpha = 5.5\nbeta = 0.4\n\
         min-duration-h = 0.25\nmax-duration-h = 72.0\n\
         [effective-rain]\nk-decay = 0.85\n",
    )
    .unwrap();
    assert_eq!(parsed.validate(), Ok(()));
    assert_eq!(parsed.chain_step, 2);
    assert_eq!(parsed.id_threshold.active, "guzzetti");
    assert_eq!(parsed.id_threshold.local["xinjiang"].alpha, 5.5);
    assert_eq!(parsed.id_threshold.caine, IdCurve::CAINE_1980);
    assert_eq!(parsed.effective_rain.days, 15);
    assert!(toml::from_str::<DebrisFlowConfig>("chain = 2").is_err());

    let starts = |config: DebrisFlowConfig, field: &str| {
        let message = config.validate().unwrap_err();
        assert!(message.starts_with(field), "{message}");
    };
    let mut bad = DebrisFlowConfig::default();
    bad.id_threshold.active = "nowhere".to_owned();
    starts(bad, "active");
    let mut bad = DebrisFlowConfig::default();
    bad.id_threshold.local.insert(
        "x".to_owned(),
        IdCurve {
            alpha: -1.0,
            ..IdCurve::CAINE_1980
        },
    );
    starts(bad, "local.x.alpha");
    let mut bad = DebrisFlowConfig::default();
    bad.effective_rain.k_decay = 1.2;
    starts(bad, "k-decay");
    let mut bad = DebrisFlowConfig::default();
    bad.postfire.cf[1] = -0.1;
    starts(bad, "cf");
    let mut bad = DebrisFlowConfig::default();
    bad.postfire.p_levels = [0.2, 0.1, 0.6, 0.8];
    starts(bad, "p-levels");
    let bad = DebrisFlowConfig {
        ratio_levels: [0.0, 0.8, 1.0, 1.5],
        ..DebrisFlowConfig::default()
    };
    starts(bad, "ratio-levels");
    for factor in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let bad = DebrisFlowConfig {
            rain_threshold_factor: factor,
            ..DebrisFlowConfig::default()
        };
        starts(bad, "rain-threshold-factor");
    }
}

#[test]
fn gully_profile_validates_against_config() {
    let config = DebrisFlowConfig::default();
    assert_eq!(
        gully(Some("regional"), Some(BURN)).validate(&config),
        Ok(())
    );
    let message = gully(Some("x"), None).validate(&config).unwrap_err();
    assert!(message.starts_with("curve"));
    let burn = BurnScar { t: 1.5, ..BURN };
    let message = gully(None, Some(burn)).validate(&config).unwrap_err();
    assert!(message.starts_with("burn-scar.t"));
    let parsed: GullyProfile =
        toml::from_str("basin = \"G1\"\nburn-scar = { t = 0.2, f = 0.3, s = 0.4 }").unwrap();
    assert_eq!(parsed.burn_scar, Some(BURN));
    assert!(toml::from_str::<GullyProfile>("basin = \"G1\"\nslope = 3").is_err());
}

const DURATIONS: [u32; 8] = [10, 15, 30, 60, 180, 360, 1440, 4320];

fn rain_strategy() -> impl Strategy<Value = DebrisRain> {
    (
        proptest::collection::vec(0.0..200.0f64, DURATIONS.len()),
        0.0..150.0f64,
        proptest::collection::vec(0.0..80.0f64, 0..20),
    )
        .prop_map(|(mm, today_mm, days_before_mm)| DebrisRain {
            windows: DURATIONS
                .iter()
                .zip(mm)
                .map(|(&d, mm)| window(d, mm))
                .collect(),
            today_mm,
            days_before_mm,
        })
}

fn gully_strategy() -> impl Strategy<Value = GullyProfile> {
    let curve = prop_oneof![
        Just(None),
        Just(Some("caine")),
        Just(Some("guzzetti")),
        Just(Some("regional"))
    ];
    let burn = proptest::option::of((0.0..=1.0f64, 0.0..1.5f64, 0.0..0.6f64))
        .prop_map(|b| b.map(|(t, f, s)| BurnScar { t, f, s }));
    (curve, burn).prop_map(|(curve, burn)| gully(curve, burn))
}

fn any_level() -> impl Strategy<Value = Option<Level>> {
    proptest::option::of(proptest::sample::select(Level::ALL.to_vec()))
}

proptest! {
    /// Scaling every window and every day's rain up by `factor ≥ 1` never lowers the level.
    #[test]
    fn more_rain_never_lowers_the_level(
        rain in rain_strategy(),
        gully in gully_strategy(),
        factor in 1.0..5.0f64,
    ) {
        let config = DebrisFlowConfig::default();
        let more = DebrisRain {
            windows: rain.windows.iter().map(|w| window(w.duration_min, w.mm * factor)).collect(),
            today_mm: rain.today_mm * factor,
            days_before_mm: rain.days_before_mm.iter().map(|mm| mm * factor).collect(),
        };
        let before = assess(&config, &gully, &rain).level;
        let after = assess(&config, &gully, &more).level;
        prop_assert!(after >= before, "{before:?} → {after:?}");
    }

    /// Without a linked flash-flood warning the chain never escalates nor names a cause; with
    /// one it never lowers the level.
    #[test]
    fn no_escalation_without_the_linked_flash_flood(
        own in any_level(),
        ff_level in proptest::sample::select(Level::ALL.to_vec()),
        step in 0u8..=8,
    ) {
        let unlinked = chain(own, None, step);
        prop_assert_eq!(unlinked.level, own);
        prop_assert_eq!(unlinked.caused_by, None);
        let ff = WarningId::new("FF-G0007-20240701T0030Z");
        let linked = chain(own, Some((&ff, ff_level)), step);
        prop_assert!(linked.level >= own);
        prop_assert_eq!(linked.caused_by.is_some(), own.is_some() && step > 0);
    }

    /// The same inputs give the same assessment and chain.
    #[test]
    fn determinism(rain in rain_strategy(), gully in gully_strategy(), step in 0u8..4) {
        let config = DebrisFlowConfig::default();
        let first = assess(&config, &gully, &rain);
        let second = assess(&config, &gully.clone(), &rain.clone());
        prop_assert_eq!(&first, &second);
        let ff = WarningId::new("FF-G0007-20240701T0030Z");
        prop_assert_eq!(
            chain(first.level, Some((&ff, Level::Red)), step),
            chain(second.level, Some((&ff, Level::Red)), step)
        );
    }
}
