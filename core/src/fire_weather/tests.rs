use proptest::prelude::*;

use super::*;

/// TV6.1 tolerance: ±0.1 on the outputs rounded as the table prints them (hazards.md §6.3).
const TV6_1_TOLERANCE: f64 = 0.1 + 1e-9;

/// Latitude and month of TV6.1 (CFS test data, lat 40°N, April).
const TV6_1_LATITUDE: f64 = 40.0;

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10.0_f64.powi(decimals);
    (value * scale).round() / scale
}

fn assert_close(what: &str, actual: f64, decimals: i32, expected: f64) {
    let rounded = round_to(actual, decimals);
    assert!(
        (rounded - expected).abs() <= TV6_1_TOLERANCE,
        "{what}: got {actual} (rounded {rounded}), expected {expected}"
    );
}

/// One TV6.1 row: day, T, RH, W, r, then FFMC DMC DC ISI BUI FWI DSR.
type Tv61Row = (&'static str, [f64; 4], [f64; 7]);

/// TV6.1 [C] (hazards.md §6.3, CFS test data): the first four days chain from start-up.
const TV6_1_CHAINED: [Tv61Row; 4] = [
    (
        "04-13",
        [17.0, 42.0, 25.0, 0.0],
        [87.6, 8.5, 19.0, 10.8, 8.5, 10.0, 1.61],
    ),
    (
        "04-14",
        [20.0, 21.0, 25.0, 2.4],
        [86.2, 10.4, 23.6, 8.8, 10.4, 9.2, 1.39],
    ),
    (
        "04-15",
        [8.5, 40.0, 17.0, 0.0],
        [86.9, 11.8, 26.1, 6.5, 11.7, 7.5, 0.97],
    ),
    (
        "04-16",
        [6.5, 25.0, 6.0, 0.0],
        [88.8, 13.2, 28.2, 4.9, 13.1, 6.1, 0.67],
    ),
];

/// TV6.1 [C] rows that depend on days the reference does not list (04-17..21, 04-23..05-06).
const TV6_1_LATER: [Tv61Row; 2] = [
    (
        "04-22",
        [7.0, 93.0, 14.0, 9.0],
        [29.8, 10.1, 29.5, 0.0, 10.9, 0.0, 0.0],
    ),
    (
        "05-07",
        [28.0, 17.0, 27.0, 0.0],
        [95.1, 54.5, 102.1, 34.3, 54.3, 52.3, 29.96],
    ),
];

fn weather(values: [f64; 4]) -> NoonWeather {
    let [temp_c, rh_pct, wind_kmh, rain_24h_mm] = values;
    NoonWeather {
        temp_c,
        rh_pct,
        wind_kmh,
        rain_24h_mm,
    }
}

#[test]
fn tv6_1_fwi_daily_sequence_from_startup() {
    // TV6.1 [C]: hazards.md §6.3, start FFMC 85 / DMC 6 / DC 15, lat 40°N, April.
    let config = FwiConfig::default();
    let mut codes = config.startup_codes();
    for (day, inputs, expected) in TV6_1_CHAINED {
        let out = daily_update(&codes, &weather(inputs), 4, TV6_1_LATITUDE, &config).unwrap();
        let actual = [out.ffmc, out.dmc, out.dc, out.isi, out.bui, out.fwi];
        let names = ["ffmc", "dmc", "dc", "isi", "bui", "fwi"];
        for ((name, value), want) in names.iter().zip(actual).zip(expected) {
            assert_close(&format!("{day} {name}"), value, 1, want);
        }
        assert_close(&format!("{day} dsr"), out.dsr, 2, expected[6]);
        codes = out.codes();
    }
}

#[test]
fn tv6_1_later_rows_indices_from_their_codes() {
    // TV6.1 [C] rows 04-22 and 05-07: the preceding days are not in the reference, so the codes
    // are taken from the row and ISI, BUI, FWI and DSR are checked from them.
    let config = FwiConfig::default();
    for (day, inputs, expected) in TV6_1_LATER {
        let [ffmc_row, dmc_row, dc_row, isi_row, bui_row, fwi_row, dsr_row] = expected;
        let isi_value = isi(ffmc_row, inputs[2]);
        let bui_value = bui(dmc_row, dc_row);
        let fwi_value = fwi(isi_value, bui_value);
        assert_close(&format!("{day} isi"), isi_value, 1, isi_row);
        assert_close(&format!("{day} bui"), bui_value, 1, bui_row);
        assert_close(&format!("{day} fwi"), fwi_value, 1, fwi_row);
        // DSR from the printed FWI: the unrounded FWI differs by up to 0.05.
        assert_close(&format!("{day} dsr"), dsr(fwi_row, &config), 2, dsr_row);
    }
}

#[test]
fn tv6_1_rain_day_04_22_wets_the_fine_fuel() {
    // TV6.1 [C] 04-22 lists FFMC 29.8 after 9 mm at RH 93; the day before is not listed, so only
    // the direction is checked: from any dry-season FFMC the result falls far below 40.
    for previous in [85.0, 90.0] {
        let value = ffmc(previous, &weather([7.0, 93.0, 14.0, 9.0]));
        assert!(value < 40.0, "ffmc after 9 mm from {previous}: {value}");
    }
}

#[test]
fn day_length_tables_by_month_and_latitude() {
    // hazards.md §6.3 [C]: L_e and L_f, Xinjiang latitudes use the northern tables.
    assert_eq!(dmc_day_length(4, 40.0), Ok(12.8));
    assert_eq!(dmc_day_length(12, 49.0), Ok(6.0));
    assert_eq!(dc_day_length(7, 35.0), Ok(6.4));
    assert_eq!(dc_day_length(1, 46.0), Ok(-1.6));
    assert_eq!(
        dmc_day_length(13, 40.0),
        Err(FireWeatherError::InvalidMonth { month: 13 })
    );
    assert_eq!(
        dc_day_length(0, 40.0),
        Err(FireWeatherError::InvalidMonth { month: 0 })
    );
    assert!(matches!(
        dmc_day_length(4, 25.0),
        Err(FireWeatherError::UnsupportedLatitude { .. })
    ));
}

#[test]
fn invalid_weather_names_the_field() {
    let config = FwiConfig::default();
    let codes = config.startup_codes();
    let bad = weather([20.0, 120.0, 10.0, 0.0]);
    let err = daily_update(&codes, &bad, 6, 44.0, &config).unwrap_err();
    assert!(err.to_string().contains("rh-pct"), "{err}");
    let bad = weather([20.0, 30.0, 10.0, f64::NAN]);
    let err = daily_update(&codes, &bad, 6, 44.0, &config).unwrap_err();
    assert!(err.to_string().contains("rain-24h-mm"), "{err}");
}

#[test]
fn bui_of_zero_codes_is_zero() {
    assert_eq!(bui(0.0, 0.0), 0.0);
    assert_eq!(fwi(0.0, 0.0), 0.0);
}

#[test]
fn tv6_2_ly_t_1172_hz_levels() {
    // TV6.2 [D] (hazards.md §6.4, factor tables [S], E = 0): Tmax 22 → 16, RH 30 → 16,
    // 5 dry days → 25, wind force 3 → 15, HZ 72 → level 3; with RH 20 → 76 → level 4.
    let config = HzConfig::default();
    let inputs = HzInputs {
        tmax_c: 22.0,
        rh_14h_pct: 30.0,
        dry_days: 5,
        wind_force: 3,
        phenology_correction: 0,
    };
    let score = hz_score(&inputs);
    assert_eq!(
        (
            score.temperature,
            score.humidity,
            score.dry_days,
            score.wind
        ),
        (16, 16, 25, 15)
    );
    assert_eq!(score.hz, 72);
    assert_eq!(config.level(score.hz), CnFireLevel::RatherHigh);
    assert_eq!(config.level(score.hz).number(), 3);

    let drier = hz_score(&HzInputs {
        rh_14h_pct: 20.0,
        ..inputs
    });
    assert_eq!(drier.humidity, 20);
    assert_eq!(drier.hz, 76);
    assert_eq!(config.level(drier.hz), CnFireLevel::High);
    assert_eq!(config.level(drier.hz).number(), 4);
}

#[test]
fn ly_t_1172_factor_table_edges() {
    // hazards.md §6.4 factor tables [S] and level bounds ≤25/26–50/51–72/73–90/≥91 [C].
    let a: Vec<i32> = [5.0, 5.1, 10.0, 15.0, 20.0, 25.0, 25.1]
        .map(temperature_factor)
        .to_vec();
    assert_eq!(a, [0, 4, 4, 8, 12, 16, 20]);
    let b: Vec<i32> = [65.0, 64.0, 55.0, 54.0, 44.0, 34.0, 25.0, 24.0]
        .map(humidity_factor)
        .to_vec();
    assert_eq!(b, [0, 4, 4, 8, 12, 16, 16, 20]);
    let base = HzInputs {
        tmax_c: 0.0,
        rh_14h_pct: 90.0,
        dry_days: 0,
        wind_force: 0,
        phenology_correction: 0,
    };
    let c = |dry_days| hz_score(&HzInputs { dry_days, ..base }).dry_days;
    assert_eq!([c(0), c(1), c(9), c(10), c(30)], [0, 5, 45, 50, 50]);
    let d = |wind_force| hz_score(&HzInputs { wind_force, ..base }).wind;
    assert_eq!(
        [d(0), d(1), d(2), d(7), d(8), d(12)],
        [5, 5, 10, 35, 40, 40]
    );
    let config = HzConfig::default();
    let levels: Vec<u8> = [25, 26, 50, 51, 72, 73, 90, 91, -10]
        .map(|hz| config.level(hz).number())
        .to_vec();
    assert_eq!(levels, [1, 2, 2, 3, 3, 4, 4, 5, 1]);
}

#[test]
fn cn_levels_map_to_warning_colours() {
    // QX/T 77-2007 colours (hazards.md §6.4) [C]; green warns nothing.
    let colours: Vec<&str> = CnFireLevel::ALL.map(CnFireLevel::colour).to_vec();
    assert_eq!(colours, ["green", "blue", "yellow", "orange", "red"]);
    assert_eq!(CnFireLevel::Low.warning_level(), None);
    assert_eq!(CnFireLevel::Extreme.warning_level(), Some(Level::Red));
    assert_eq!(CnFireLevel::Extreme.name_zh(), "极高火险");
    let config = FwiConfig::default();
    let levels: Vec<u8> = [0.0, 4.9, 5.0, 12.0, 20.9, 21.0, 33.0, 80.0]
        .map(|value| config.cn_level(value).number())
        .to_vec();
    assert_eq!(levels, [1, 1, 2, 3, 3, 4, 5, 5]);
}

#[test]
fn configs_default_to_the_reference_and_validate() {
    // thresholds.toml [fire.fwi] and [fire.cn_ly_t_1172].
    let fwi_config = FwiConfig::default();
    assert_eq!(fwi_config.validate(), Ok(()));
    assert_eq!(
        fwi_config.startup_codes(),
        FwiCodes {
            ffmc: 85.0,
            dmc: 6.0,
            dc: 15.0
        }
    );
    let parsed: FwiConfig = toml::from_str("startup-ffmc = 80.0\ndsr-exp = 1.7").unwrap();
    assert_eq!((parsed.startup_ffmc, parsed.dsr_exp), (80.0, 1.7));
    assert_eq!(parsed.fwi_classes, [5.0, 12.0, 21.0, 33.0]);
    assert!(toml::from_str::<FwiConfig>("startup_ffmc = 80.0").is_err());
    let bad = FwiConfig {
        fwi_classes: [5.0, 4.0, 21.0, 33.0],
        ..FwiConfig::default()
    };
    assert!(bad.validate().unwrap_err().starts_with("fwi-classes"));
    let bad = FwiConfig {
        startup_ffmc: 120.0,
        ..FwiConfig::default()
    };
    assert!(bad.validate().unwrap_err().starts_with("startup-ffmc"));

    let hz_config = HzConfig::default();
    assert_eq!(hz_config.validate(), Ok(()));
    assert_eq!(hz_config.level_max, [25, 50, 72, 90]);
    let bad = HzConfig {
        level_max: [25, 50, 50, 90],
    };
    assert!(bad.validate().unwrap_err().starts_with("level-max"));
}

fn codes_strategy() -> impl Strategy<Value = FwiCodes> {
    (0.0..101.0, 0.0..300.0, 0.0..800.0).prop_map(|(ffmc, dmc, dc)| FwiCodes { ffmc, dmc, dc })
}

proptest! {
    /// Drier weather (lower RH, less rain; same temperature and wind) never lowers FWI or the
    /// Chinese level. Temperature and wind are held: in the FFMC wetting branch (fuel below
    /// E_w) they speed up moisture uptake, so they are not monotone there.
    #[test]
    fn fire_drier_weather_never_lowers_fwi(
        codes in codes_strategy(),
        temp_c in -5.0..40.0f64,
        wind_kmh in 0.0..60.0f64,
        rh_pct in 5.0..100.0f64,
        rh_drop in 0.0..50.0f64,
        rain_mm in 0.0..40.0f64,
        rain_drop in 0.0..1.0f64,
        month in 1u8..=12,
    ) {
        let config = FwiConfig::default();
        let wet = NoonWeather { temp_c, rh_pct, wind_kmh, rain_24h_mm: rain_mm };
        let dry = NoonWeather {
            rh_pct: (rh_pct - rh_drop).max(0.0),
            rain_24h_mm: rain_mm * rain_drop,
            ..wet
        };
        let wet_day = daily_update(&codes, &wet, month, 44.0, &config).unwrap();
        let dry_day = daily_update(&codes, &dry, month, 44.0, &config).unwrap();
        prop_assert!(dry_day.ffmc >= wet_day.ffmc - 1e-9);
        prop_assert!(dry_day.dmc >= wet_day.dmc - 1e-9);
        prop_assert!(dry_day.dc >= wet_day.dc - 1e-9);
        prop_assert!(dry_day.fwi >= wet_day.fwi - 1e-9);
        prop_assert!(config.cn_level(dry_day.fwi) >= config.cn_level(wet_day.fwi));
    }

    /// Hotter, drier, windier and longer-dry days never lower HZ or its level.
    #[test]
    fn fire_drier_weather_never_lowers_hz(
        tmax_c in -20.0..45.0f64,
        rh in 0.0..100.0f64,
        dry_days in 0u32..20,
        wind_force in 0u8..12,
        bumps in (0.0..10.0f64, 0.0..30.0f64, 0u32..5, 0u8..3),
    ) {
        let config = HzConfig::default();
        let base = HzInputs { tmax_c, rh_14h_pct: rh, dry_days, wind_force, phenology_correction: 0 };
        let worse = HzInputs {
            tmax_c: tmax_c + bumps.0,
            rh_14h_pct: (rh - bumps.1).max(0.0),
            dry_days: dry_days + bumps.2,
            wind_force: wind_force + bumps.3,
            ..base
        };
        let (before, after) = (hz_score(&base).hz, hz_score(&worse).hz);
        prop_assert!(after >= before);
        prop_assert!(config.level(after) >= config.level(before));
    }

    /// The same codes and weather give bit-identical outputs.
    #[test]
    fn fire_daily_update_is_deterministic(
        codes in codes_strategy(),
        temp_c in -5.0..40.0f64,
        rh_pct in 0.0..100.0f64,
        wind_kmh in 0.0..60.0f64,
        rain_mm in 0.0..40.0f64,
    ) {
        let config = FwiConfig::default();
        let noon = NoonWeather { temp_c, rh_pct, wind_kmh, rain_24h_mm: rain_mm };
        let first = daily_update(&codes, &noon, 7, 44.0, &config).unwrap();
        let second = daily_update(&codes, &noon, 7, 44.0, &config).unwrap();
        prop_assert_eq!(first, second);
        prop_assert!((0.0..=101.0).contains(&first.ffmc));
        prop_assert!(first.dmc >= 0.0 && first.dc >= 0.0 && first.fwi >= 0.0);
    }
}
