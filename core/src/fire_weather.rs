//! Fire weather (hazards.md §6.3–6.4): the Canadian Forest Fire Weather Index (FWI) System —
//! the moisture codes FFMC, DMC and DC updated once a day from noon weather, and the indices ISI,
//! BUI, FWI and DSR derived from them — plus the Chinese LY/T 1172-95 HZ index and the five
//! fire-danger levels of QX/T 77-2007.
//!
//! Equations are Van Wagner & Pickett (1985) / Van Wagner (1987) as hazards.md §6.3 gives them
//! [C]; the code is written from that text, not ported from any implementation. The month
//! day-length factors are the northern tables the reference gives (DMC for lat ≥ 30°N, DC for
//! lat > 20°N); other latitudes are refused rather than guessed.

use serde::{Deserialize, Serialize};

use crate::warning::Level;

/// FFMC ↔ fine-fuel moisture scale constant 250 · 59.5 / 101 = 147.277… [D]. hazards.md §6.3
/// prints it as 147.2 while deriving it this way; with the exact value TV6.1 rounds to the
/// printed table on every row, with 147.2 FFMC/ISI/FWI of 04-13 come out 0.1 high.
const FFMC_SCALE: f64 = 250.0 * 59.5 / 101.0;

/// DMC effective day-length L_e, January..December, lat ≥ 30°N (hazards.md §6.3) [C].
const DMC_DAY_LENGTH: [f64; 12] = [
    6.5, 7.5, 9.0, 12.8, 13.9, 13.9, 12.4, 10.9, 9.4, 8.0, 7.0, 6.0,
];

/// DC day-length adjustment L_f, January..December, lat > 20°N (hazards.md §6.3) [C].
const DC_DAY_LENGTH: [f64; 12] = [
    -1.6, -1.6, -1.6, 0.9, 3.8, 5.8, 6.4, 5.0, 2.4, 0.4, -1.6, -1.6,
];

/// The lowest latitude whose day-length tables the reference gives for both DMC and DC.
const MIN_TABLE_LATITUDE: f64 = 30.0;

/// FWI System settings (`[fire.fwi]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FwiConfig {
    /// FFMC at start-up (after snow melt or a data gap). Default 85 [C] (hazards.md §6.3).
    pub startup_ffmc: f64,
    /// DMC at start-up. Default 6 [C] (hazards.md §6.3).
    pub startup_dmc: f64,
    /// DC at start-up. Default 15 [C] (hazards.md §6.3).
    pub startup_dc: f64,
    /// DSR = dsr-coef · FWI^dsr-exp. Default 0.0272 [C] (hazards.md §6.3).
    pub dsr_coef: f64,
    /// DSR exponent. Default 1.77 [C] (hazards.md §6.3).
    pub dsr_exp: f64,
    /// FWI lower bounds of Chinese levels 2..=5 (blue, yellow, orange, red); below the first is
    /// level 1 (green). Default [5, 12, 21, 33]: regional placeholders [U] (thresholds.toml).
    pub fwi_classes: [f64; 4],
}

impl Default for FwiConfig {
    fn default() -> Self {
        Self {
            startup_ffmc: 85.0,
            startup_dmc: 6.0,
            startup_dc: 15.0,
            dsr_coef: 0.0272,
            dsr_exp: 1.77,
            fwi_classes: [5.0, 12.0, 21.0, 33.0],
        }
    }
}

impl FwiConfig {
    /// Checks start-up codes, DSR coefficients and the class bounds.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=101.0).contains(&self.startup_ffmc) {
            return Err(format!(
                "startup-ffmc must be in [0, 101], got {}",
                self.startup_ffmc
            ));
        }
        if !(self.startup_dmc >= 0.0 && self.startup_dmc.is_finite()) {
            return Err(format!("startup-dmc must be ≥ 0, got {}", self.startup_dmc));
        }
        if !(self.startup_dc >= 0.0 && self.startup_dc.is_finite()) {
            return Err(format!("startup-dc must be ≥ 0, got {}", self.startup_dc));
        }
        if !(self.dsr_coef > 0.0 && self.dsr_exp > 0.0) {
            return Err(format!(
                "dsr-coef and dsr-exp must be positive, got {} and {}",
                self.dsr_coef, self.dsr_exp
            ));
        }
        let classes = self.fwi_classes;
        if !(classes[0] > 0.0 && classes.windows(2).all(|pair| pair[0] < pair[1])) {
            return Err(format!(
                "fwi-classes must be positive and strictly increasing, got {classes:?}"
            ));
        }
        Ok(())
    }

    /// Returns the start-up moisture codes.
    pub fn startup_codes(&self) -> FwiCodes {
        FwiCodes {
            ffmc: self.startup_ffmc,
            dmc: self.startup_dmc,
            dc: self.startup_dc,
        }
    }

    /// Returns the Chinese five-level class of an FWI value by `fwi-classes` [U].
    pub fn cn_level(&self, fwi: f64) -> CnFireLevel {
        let above = self
            .fwi_classes
            .iter()
            .filter(|&&bound| fwi >= bound)
            .count();
        CnFireLevel::from_rank(above)
    }
}

/// Why a fire-weather computation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FireWeatherError {
    /// The month is not 1..=12.
    #[error("month must be 1..=12, got {month}")]
    InvalidMonth {
        /// The month given.
        month: u8,
    },
    /// The reference gives day-length tables only for the northern mid latitudes.
    #[error("latitude {latitude} is outside the tabulated band [30, 90] °N")]
    UnsupportedLatitude {
        /// The latitude given, degrees north.
        latitude: f64,
    },
    /// A weather input is out of its physical range or not finite.
    #[error("weather field {field} out of range: {value}")]
    InvalidWeather {
        /// The kebab-case field name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
}

/// Weather at local noon, the FWI System's daily input (hazards.md §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NoonWeather {
    /// Air temperature, °C.
    pub temp_c: f64,
    /// Relative humidity, %.
    pub rh_pct: f64,
    /// 10-m wind speed, km/h.
    pub wind_kmh: f64,
    /// Rain over the 24 h ending at noon, mm.
    pub rain_24h_mm: f64,
}

impl NoonWeather {
    /// Checks that every field is finite and in its physical range.
    ///
    /// # Errors
    /// Returns [`FireWeatherError::InvalidWeather`] naming the first offending field.
    pub fn validate(&self) -> Result<(), FireWeatherError> {
        let checks = [
            ("temp-c", self.temp_c, (-90.0..=60.0).contains(&self.temp_c)),
            ("rh-pct", self.rh_pct, (0.0..=100.0).contains(&self.rh_pct)),
            (
                "wind-kmh",
                self.wind_kmh,
                (0.0..=400.0).contains(&self.wind_kmh),
            ),
            (
                "rain-24h-mm",
                self.rain_24h_mm,
                (0.0..=2000.0).contains(&self.rain_24h_mm),
            ),
        ];
        match checks.into_iter().find(|&(_, _, ok)| !ok) {
            Some((field, value, _)) => Err(FireWeatherError::InvalidWeather { field, value }),
            None => Ok(()),
        }
    }
}

/// The three moisture codes carried from day to day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FwiCodes {
    /// Fine Fuel Moisture Code (0..=101).
    pub ffmc: f64,
    /// Duff Moisture Code (≥ 0).
    pub dmc: f64,
    /// Drought Code (≥ 0).
    pub dc: f64,
}

/// All FWI System outputs of one day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FwiDay {
    /// Fine Fuel Moisture Code.
    pub ffmc: f64,
    /// Duff Moisture Code.
    pub dmc: f64,
    /// Drought Code.
    pub dc: f64,
    /// Initial Spread Index.
    pub isi: f64,
    /// Buildup Index.
    pub bui: f64,
    /// Fire Weather Index.
    pub fwi: f64,
    /// Daily Severity Rating.
    pub dsr: f64,
}

impl FwiDay {
    /// Returns the moisture codes to carry into the next day.
    pub fn codes(&self) -> FwiCodes {
        FwiCodes {
            ffmc: self.ffmc,
            dmc: self.dmc,
            dc: self.dc,
        }
    }
}

/// Returns the DMC effective day-length L_e of `month` at `latitude` (hazards.md §6.3) [C].
///
/// # Errors
/// Returns an error for a month outside 1..=12 or a latitude outside [30, 90] °N.
pub fn dmc_day_length(month: u8, latitude: f64) -> Result<f64, FireWeatherError> {
    check_latitude(latitude)?;
    Ok(DMC_DAY_LENGTH[month_index(month)?])
}

/// Returns the DC day-length adjustment L_f of `month` at `latitude` (hazards.md §6.3) [C].
///
/// # Errors
/// Returns an error for a month outside 1..=12 or a latitude outside [30, 90] °N.
pub fn dc_day_length(month: u8, latitude: f64) -> Result<f64, FireWeatherError> {
    check_latitude(latitude)?;
    Ok(DC_DAY_LENGTH[month_index(month)?])
}

fn month_index(month: u8) -> Result<usize, FireWeatherError> {
    match month {
        1..=12 => Ok(usize::from(month - 1)),
        _ => Err(FireWeatherError::InvalidMonth { month }),
    }
}

fn check_latitude(latitude: f64) -> Result<(), FireWeatherError> {
    if (MIN_TABLE_LATITUDE..=90.0).contains(&latitude) {
        Ok(())
    } else {
        Err(FireWeatherError::UnsupportedLatitude { latitude })
    }
}

/// Converts FFMC to fine-fuel moisture content m (%) (hazards.md §6.3) [C].
fn ffmc_to_moisture(ffmc: f64) -> f64 {
    FFMC_SCALE * (101.0 - ffmc) / (59.5 + ffmc)
}

/// Returns today's FFMC from yesterday's and noon weather (hazards.md §6.3) [C].
pub fn ffmc(previous: f64, weather: &NoonWeather) -> f64 {
    let mut moisture = ffmc_to_moisture(previous);
    if weather.rain_24h_mm > 0.5 {
        moisture = ffmc_wetting(moisture, weather.rain_24h_mm - 0.5);
    }
    let moisture = ffmc_drying(moisture, weather);
    (59.5 * (250.0 - moisture) / (FFMC_SCALE + moisture)).clamp(0.0, 101.0)
}

/// Rain phase of FFMC: moisture after effective rain `effective_mm` (r_f), capped at 250 %.
fn ffmc_wetting(moisture: f64, effective_mm: f64) -> f64 {
    let mut wetted = moisture
        + 42.5
            * effective_mm
            * (-100.0 / (251.0 - moisture)).exp()
            * (1.0 - (-6.93 / effective_mm).exp());
    if moisture > 150.0 {
        wetted += 0.0015 * (moisture - 150.0).powi(2) * effective_mm.sqrt();
    }
    wetted.min(250.0)
}

/// Drying or wetting of fine fuel towards the equilibrium moisture contents E_d / E_w.
fn ffmc_drying(moisture: f64, weather: &NoonWeather) -> f64 {
    let (h, t, w) = (weather.rh_pct, weather.temp_c, weather.wind_kmh);
    let tail = 0.18 * (21.1 - t) * (1.0 - (-0.115 * h).exp());
    let e_dry = 0.942 * h.powf(0.679) + 11.0 * ((h - 100.0) / 10.0).exp() + tail;
    if moisture > e_dry {
        let rate = log_drying_rate(h / 100.0, w, t);
        return e_dry + (moisture - e_dry) * 10.0_f64.powf(-rate);
    }
    let e_wet = 0.618 * h.powf(0.753) + 10.0 * ((h - 100.0) / 10.0).exp() + tail;
    if moisture < e_wet {
        let rate = log_drying_rate((100.0 - h) / 100.0, w, t);
        return e_wet - (e_wet - moisture) * 10.0_f64.powf(-rate);
    }
    moisture
}

/// k_d (with `fraction` = H/100) or k_w (with `fraction` = (100 − H)/100), per day (log10 units).
fn log_drying_rate(fraction: f64, wind_kmh: f64, temp_c: f64) -> f64 {
    let base =
        0.424 * (1.0 - fraction.powf(1.7)) + 0.0694 * wind_kmh.sqrt() * (1.0 - fraction.powi(8));
    base * 0.581 * (0.0365 * temp_c).exp()
}

/// Returns today's DMC from yesterday's, noon weather and L_e (hazards.md §6.3) [C].
pub fn dmc(previous: f64, weather: &NoonWeather, day_length: f64) -> f64 {
    let t = weather.temp_c.max(-1.1);
    let drying = 1.894 * (t + 1.1) * (100.0 - weather.rh_pct) * day_length * 1e-4;
    let after_rain = if weather.rain_24h_mm > 1.5 {
        dmc_after_rain(previous, weather.rain_24h_mm)
    } else {
        previous
    };
    after_rain + drying
}

/// The DMC rain phase: effective rain r_e re-wets the duff (hazards.md §6.3) [C].
fn dmc_after_rain(previous: f64, rain_mm: f64) -> f64 {
    let effective = 0.92 * rain_mm - 1.27;
    let moisture = 20.0 + (5.6348 - previous / 43.43).exp();
    let slope = if previous <= 33.0 {
        100.0 / (0.5 + 0.3 * previous)
    } else if previous <= 65.0 {
        14.0 - 1.3 * previous.ln()
    } else {
        6.2 * previous.ln() - 17.2
    };
    let wetted = moisture + 1000.0 * effective / (48.77 + slope * effective);
    (244.72 - 43.43 * (wetted - 20.0).ln()).max(0.0)
}

/// Returns today's DC from yesterday's, noon weather and L_f (hazards.md §6.3) [C].
pub fn dc(previous: f64, weather: &NoonWeather, day_length: f64) -> f64 {
    let t = weather.temp_c.max(-2.8);
    let evaporation = (0.36 * (t + 2.8) + day_length).max(0.0);
    let after_rain = if weather.rain_24h_mm > 2.8 {
        let effective = 0.83 * weather.rain_24h_mm - 1.27;
        let moisture = 800.0 * (-previous / 400.0).exp() + 3.937 * effective;
        (400.0 * (800.0 / moisture).ln()).max(0.0)
    } else {
        previous
    };
    after_rain + 0.5 * evaporation
}

/// Returns the Initial Spread Index from FFMC and wind (km/h) (hazards.md §6.3) [C].
pub fn isi(ffmc: f64, wind_kmh: f64) -> f64 {
    let moisture = ffmc_to_moisture(ffmc);
    let wind_factor = (0.05039 * wind_kmh).exp();
    let fuel_factor = 91.9 * (-0.1386 * moisture).exp() * (1.0 + moisture.powf(5.31) / 4.93e7);
    0.208 * wind_factor * fuel_factor
}

/// Returns the Buildup Index from DMC and DC (hazards.md §6.3) [C]; 0 when both are 0.
pub fn bui(dmc: f64, dc: f64) -> f64 {
    if dmc <= 0.0 && dc <= 0.0 {
        return 0.0;
    }
    let value = if dmc <= 0.4 * dc {
        0.8 * dmc * dc / (dmc + 0.4 * dc)
    } else {
        dmc - (1.0 - 0.8 * dc / (dmc + 0.4 * dc)) * (0.92 + (0.0114 * dmc).powf(1.7))
    };
    value.max(0.0)
}

/// Returns the Fire Weather Index from ISI and BUI (hazards.md §6.3) [C].
pub fn fwi(isi: f64, bui: f64) -> f64 {
    let duff_factor = if bui <= 80.0 {
        0.626 * bui.powf(0.809) + 2.0
    } else {
        1000.0 / (25.0 + 108.64 * (-0.023 * bui).exp())
    };
    let intermediate = 0.1 * isi * duff_factor;
    if intermediate > 1.0 {
        (2.72 * (0.434 * intermediate.ln()).powf(0.647)).exp()
    } else {
        intermediate
    }
}

/// Returns the Daily Severity Rating dsr-coef · FWI^dsr-exp (hazards.md §6.3) [C].
pub fn dsr(fwi: f64, config: &FwiConfig) -> f64 {
    config.dsr_coef * fwi.powf(config.dsr_exp)
}

/// Runs one daily FWI update: yesterday's codes and today's noon weather give today's outputs.
///
/// # Errors
/// Returns an error for invalid weather, a month outside 1..=12 or an untabulated latitude.
pub fn daily_update(
    yesterday: &FwiCodes,
    weather: &NoonWeather,
    month: u8,
    latitude: f64,
    config: &FwiConfig,
) -> Result<FwiDay, FireWeatherError> {
    weather.validate()?;
    let ffmc = ffmc(yesterday.ffmc, weather);
    let dmc = dmc(yesterday.dmc, weather, dmc_day_length(month, latitude)?);
    let dc = dc(yesterday.dc, weather, dc_day_length(month, latitude)?);
    let isi = isi(ffmc, weather.wind_kmh);
    let bui = bui(dmc, dc);
    let fwi = fwi(isi, bui);
    Ok(FwiDay {
        ffmc,
        dmc,
        dc,
        isi,
        bui,
        fwi,
        dsr: dsr(fwi, config),
    })
}

/// China's five fire-danger levels (QX/T 77-2007; hazards.md §6.4) [C].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CnFireLevel {
    /// 1 低火险, green.
    Low,
    /// 2 较低火险, blue.
    RatherLow,
    /// 3 较高火险, yellow.
    RatherHigh,
    /// 4 高火险, orange.
    High,
    /// 5 极高火险, red.
    Extreme,
}

impl CnFireLevel {
    /// All levels, 1 to 5.
    pub const ALL: [CnFireLevel; 5] = [
        CnFireLevel::Low,
        CnFireLevel::RatherLow,
        CnFireLevel::RatherHigh,
        CnFireLevel::High,
        CnFireLevel::Extreme,
    ];

    /// Returns the level for a 0-based rank, saturating at level 5.
    fn from_rank(rank: usize) -> Self {
        Self::ALL[rank.min(Self::ALL.len() - 1)]
    }

    /// Returns the level number, 1..=5.
    pub fn number(self) -> u8 {
        match self {
            CnFireLevel::Low => 1,
            CnFireLevel::RatherLow => 2,
            CnFireLevel::RatherHigh => 3,
            CnFireLevel::High => 4,
            CnFireLevel::Extreme => 5,
        }
    }

    /// Returns the Chinese name (QX/T 77-2007) [C].
    pub fn name_zh(self) -> &'static str {
        match self {
            CnFireLevel::Low => "低火险",
            CnFireLevel::RatherLow => "较低火险",
            CnFireLevel::RatherHigh => "较高火险",
            CnFireLevel::High => "高火险",
            CnFireLevel::Extreme => "极高火险",
        }
    }

    /// Returns the colour (QX/T 77-2007) [C].
    pub fn colour(self) -> &'static str {
        match self {
            CnFireLevel::Low => "green",
            CnFireLevel::RatherLow => "blue",
            CnFireLevel::RatherHigh => "yellow",
            CnFireLevel::High => "orange",
            CnFireLevel::Extreme => "red",
        }
    }

    /// Returns the warning level of the same colour; green (level 1) warns nothing.
    pub fn warning_level(self) -> Option<Level> {
        match self {
            CnFireLevel::Low => None,
            CnFireLevel::RatherLow => Some(Level::Blue),
            CnFireLevel::RatherHigh => Some(Level::Yellow),
            CnFireLevel::High => Some(Level::Orange),
            CnFireLevel::Extreme => Some(Level::Red),
        }
    }
}

/// LY/T 1172-95 HZ level bounds (`[fire.cn_ly_t_1172]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HzConfig {
    /// Largest HZ of levels 1..=4; HZ above the last is level 5. Default [25, 50, 72, 90]
    /// [C] (hazards.md §6.4).
    pub level_max: [i32; 4],
}

impl Default for HzConfig {
    fn default() -> Self {
        Self {
            level_max: [25, 50, 72, 90],
        }
    }
}

impl HzConfig {
    /// Checks that the bounds increase strictly.
    ///
    /// # Errors
    /// Returns a message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.level_max.windows(2).all(|pair| pair[0] < pair[1]) {
            Ok(())
        } else {
            Err(format!(
                "level-max must increase strictly, got {:?}",
                self.level_max
            ))
        }
    }

    /// Returns the level of an HZ value.
    pub fn level(&self, hz: i32) -> CnFireLevel {
        let above = self.level_max.iter().filter(|&&bound| hz > bound).count();
        CnFireLevel::from_rank(above)
    }
}

/// The daily inputs of the LY/T 1172-95 index (hazards.md §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HzInputs {
    /// Daily maximum temperature, °C.
    pub tmax_c: f64,
    /// Relative humidity at 14:00 (the daily minimum), %.
    pub rh_14h_pct: f64,
    /// Consecutive days without rain; a day with < 0.1 mm counts as dry.
    pub dry_days: u32,
    /// Wind force at 14:00, Beaufort.
    pub wind_force: u8,
    /// Phenology correction E, subtracted (0 when unknown).
    pub phenology_correction: i32,
}

/// The LY/T 1172-95 factor scores and their total HZ = A + B + C + D − E.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HzScore {
    /// A, from the maximum temperature.
    pub temperature: i32,
    /// B, from the 14:00 relative humidity.
    pub humidity: i32,
    /// C, from the consecutive dry days.
    pub dry_days: i32,
    /// D, from the 14:00 wind force.
    pub wind: i32,
    /// HZ, the total.
    pub hz: i32,
}

/// Scores the LY/T 1172-95 factors (tables of Lü Weiwei et al. 2020, hazards.md §6.4) [S].
pub fn hz_score(inputs: &HzInputs) -> HzScore {
    let temperature = temperature_factor(inputs.tmax_c);
    let humidity = humidity_factor(inputs.rh_14h_pct);
    // C: 5 points per dry day, 10 or more days → 50 [S].
    let dry_days = 5 * i32::try_from(inputs.dry_days.min(10)).unwrap_or(10);
    // D: force ≤ 1 → 5, then 5 per force, ≥ 8 → 40 [S].
    let wind = 5 * i32::from(inputs.wind_force.clamp(1, 8));
    HzScore {
        temperature,
        humidity,
        dry_days,
        wind,
        hz: temperature + humidity + dry_days + wind - inputs.phenology_correction,
    }
}

/// A: ≤ 5 °C → 0, then 4 points per 5 °C band, > 25 °C → 20 [S].
fn temperature_factor(tmax_c: f64) -> i32 {
    let bands = [5.0, 10.0, 15.0, 20.0, 25.0];
    4 * bands.iter().filter(|&&upper| tmax_c > upper).count() as i32
}

/// B: ≥ 65 % → 0, then 4 points per 10 % band lower, ≤ 24 % → 20 [S]. Non-integer humidity
/// falls in the band of its integer part's lower bound (64.5 % scores as 55–64).
fn humidity_factor(rh_pct: f64) -> i32 {
    let lower_bounds = [65.0, 55.0, 45.0, 35.0, 25.0];
    4 * lower_bounds.iter().filter(|&&lower| rh_pct < lower).count() as i32
}

#[cfg(test)]
mod tests;
