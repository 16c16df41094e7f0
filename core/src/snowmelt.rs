//! Snowmelt and rain-on-snow floods (hazards.md §7): a per-basin snowpack in snow water
//! equivalent (SWE) driven by degree-day melt and rain heat (§7.1, §7.2), warming-spell
//! indicators and the Xinjiang spring snowmelt-flood dynamic grade of Zhou Gang et al. 2021
//! (§7.3), and the extra water that rain on a pack adds to the flash-flood input.
//!
//! Source tags follow hazards.md: [C] stated in the source, [D] derived here, [U] unconfirmed
//! (a configurable assumption).

use serde::{Deserialize, Serialize};

use crate::ids::BasinId;
use crate::time::parse_duration_ms;
use crate::warning::{Evidence, Level};

/// Heat capacity of water over latent heat of fusion, c_w / L_f = 4.186 / 333.55 per °C: the mm
/// of snow that 1 mm of rain melts per °C of rain temperature (hazards.md §7.2 [D]).
pub const WATER_HEAT_OVER_FUSION: f64 = 4.186 / 333.55;

/// Hours in the day that degree-day factors are stated for.
const HOURS_PER_DAY: f64 = 24.0;

/// Days the accumulated-temperature rule sums over (hazards.md §7.3 [C]).
const GRADE_DAYS: usize = 3;

/// The mountain range a basin lies in, which picks its degree-day factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountainRange {
    /// Tianshan: factors calibrated on Urumqi Glacier No.1 (hazards.md §7.1 [C]).
    Tianshan,
    /// Altai: no published factor was found (hazards.md §7.1 [U]).
    Altai,
}

/// Snowmelt model settings (`[snowmelt]` in thresholds.toml, hazards.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SnowmeltConfig {
    /// Degree-day factor for seasonal snow in Tianshan basins, mm/(d·°C). Default 3.0: within the
    /// Urumqi Glacier No.1 snow range 2.7–3.1 (calibrated 2.9) [C]; 3.0 itself [U] (§7.1).
    pub ddf_tianshan_mm_per_degday: f64,
    /// Degree-day factor for seasonal snow in Altai basins, mm/(d·°C). Default 3.0 [U]: no Altai
    /// value was found (§7.1, unconfirmed item 7).
    pub ddf_altai_mm_per_degday: f64,
    /// Base temperature T_b above which snow melts, °C. Default 0.0 [C] (Urumqi model threshold).
    pub t_base_c: f64,
    /// Precipitation falls as snow at or below this air temperature, as rain above it, °C.
    /// Default 1.0: SWAT SFTMP of the Yarkand headwaters [C]; its use for all basins [U] (§7.1).
    pub snow_rain_threshold_c: f64,
    /// Snow melted per mm of rain per °C of rain temperature. Default 0.01255 = c_w/L_f [D] (§7.2).
    pub rain_melt_coef: f64,
    /// The dynamic grade applies only where snow depth on the first of the 3 days is at least
    /// this, cm. Default 1.0 [C] (§7.3).
    pub min_snow_depth_cm: f64,
    /// Warming-grade bounds on the 3-day positive temperature sum, °C: ≤ b0 → 1, ≤ b1 → 2,
    /// ≤ b2 → 3, ≤ b3 → 4, above → 5. Default [0, 4, 6, 8] [C]; upper-inclusive bounds [U] (§7.3).
    pub warming_grade_bounds: [f64; 4],
    /// Upper bounds of the Xinjiang 24 h light, moderate and heavy rain classes, mm. Default
    /// [6, 12, 24] [C]; inclusive bounds [U] (§1.4, §7.3).
    pub rain_class_bounds_24h: [f64; 3],
    /// Day-on-day rise of the daily mean that counts as a warming day at an outlet, °C/d.
    /// Default [1.5, 2.5] [C] (Wu Sufen criterion, §7.3).
    pub outlet_warming_c_per_day: [f64; 2],
    /// Length of a warming spell that signals snowmelt floods, days. Default [3, 6] [C]; a spell
    /// of at least the first value meets the criterion (§7.3).
    pub outlet_warming_days: [u32; 2],
    /// Range of the daily mean on warming days, °C. Default [0, 5] [C] (§7.3).
    pub outlet_daily_mean_c: [f64; 2],
    /// A basin snowpack without a weather station in the region file takes the weather station
    /// nearest to the basin centre within this distance, km. Default 25 [U]: the synthetic
    /// network puts a weather station within 34 km of every basin, half of them within 11 km.
    pub station_max_distance_km: f64,
    /// A weather reading older than this at a tick does not drive the pack: the pack is held, as
    /// no melt is claimed without a measurement. A duration string; default "1h" [U].
    pub max_weather_age: String,
}

impl Default for SnowmeltConfig {
    fn default() -> Self {
        Self {
            ddf_tianshan_mm_per_degday: 3.0,
            ddf_altai_mm_per_degday: 3.0,
            t_base_c: 0.0,
            snow_rain_threshold_c: 1.0,
            rain_melt_coef: 0.01255,
            min_snow_depth_cm: 1.0,
            warming_grade_bounds: [0.0, 4.0, 6.0, 8.0],
            rain_class_bounds_24h: [6.0, 12.0, 24.0],
            outlet_warming_c_per_day: [1.5, 2.5],
            outlet_warming_days: [3, 6],
            outlet_daily_mean_c: [0.0, 5.0],
            station_max_distance_km: 25.0,
            max_weather_age: "1h".to_owned(),
        }
    }
}

impl SnowmeltConfig {
    /// Checks that factors are positive, temperatures finite and every range ordered.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        positive(
            "ddf-tianshan-mm-per-degday",
            self.ddf_tianshan_mm_per_degday,
        )?;
        positive("ddf-altai-mm-per-degday", self.ddf_altai_mm_per_degday)?;
        ordered("t-base-c", &[self.t_base_c])?;
        ordered("snow-rain-threshold-c", &[self.snow_rain_threshold_c])?;
        non_negative("rain-melt-coef", self.rain_melt_coef)?;
        non_negative("min-snow-depth-cm", self.min_snow_depth_cm)?;
        ordered("warming-grade-bounds", &self.warming_grade_bounds)?;
        ordered("rain-class-bounds-24h", &self.rain_class_bounds_24h)?;
        ordered("outlet-warming-c-per-day", &self.outlet_warming_c_per_day)?;
        ordered("outlet-daily-mean-c", &self.outlet_daily_mean_c)?;
        positive("station-max-distance-km", self.station_max_distance_km)?;
        self.max_weather_age_ms()?;
        let [shortest, longest] = self.outlet_warming_days;
        if !(1 <= shortest && shortest <= longest) {
            return Err(format!(
                "outlet-warming-days must be ordered and at least 1, got [{shortest}, {longest}]"
            ));
        }
        Ok(())
    }

    /// Returns `max-weather-age` in milliseconds.
    ///
    /// # Errors
    /// Returns a message when it is not a duration string.
    pub fn max_weather_age_ms(&self) -> Result<i64, String> {
        parse_duration_ms(&self.max_weather_age)
            .map_err(|error| format!("max-weather-age: {error}"))
    }

    /// Returns the degree-day factor of a basin in `range`, mm/(d·°C).
    pub fn ddf_for(&self, range: MountainRange) -> f64 {
        match range {
            MountainRange::Tianshan => self.ddf_tianshan_mm_per_degday,
            MountainRange::Altai => self.ddf_altai_mm_per_degday,
        }
    }
}

fn positive(field: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    Err(format!("{field} must be positive and finite, got {value}"))
}

fn non_negative(field: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(format!(
        "{field} must be non-negative and finite, got {value}"
    ))
}

fn ordered(field: &str, values: &[f64]) -> Result<(), String> {
    let finite = values.iter().all(|value| value.is_finite());
    if finite && values.windows(2).all(|pair| pair[0] <= pair[1]) {
        return Ok(());
    }
    Err(format!(
        "{field} must be finite and ascending, got {values:?}"
    ))
}

/// Why a snowmelt input was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnowmeltError {
    /// A weather input is not a number, or negative where it cannot be.
    #[error("{field} must be {expected}, got {value}")]
    InvalidInput {
        /// The input that failed.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// The value received.
        value: f64,
    },
    /// The dynamic grade needs the last three daily records.
    #[error("the snowmelt dynamic grade needs {GRADE_DAYS} daily records, got {got}")]
    TooFewDays {
        /// Records received.
        got: usize,
    },
}

/// Returns degree-day melt over a step, mm w.e.: `DDF · max(T − T_b, 0) · Δt/24`
/// (hazards.md §7.1 [C], Hock 2003).
pub fn degree_day_melt(ddf_mm_per_degday: f64, temp_c: f64, t_base_c: f64, step_h: f64) -> f64 {
    ddf_mm_per_degday * (temp_c - t_base_c).max(0.0) * step_h / HOURS_PER_DAY
}

/// Returns the snow that rain melts, mm w.e.: `coef · P · T_r`, with the rain temperature taken
/// as the air temperature and no melt from rain at or below 0 °C (hazards.md §7.2 [D]).
pub fn rain_melt(rain_mm: f64, rain_temp_c: f64, coef: f64) -> f64 {
    coef * rain_mm.max(0.0) * rain_temp_c.max(0.0)
}

/// The weather over one model step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepWeather {
    /// Mean air temperature over the step, °C.
    pub air_temp_c: f64,
    /// Precipitation over the step, mm (rain or snow water equivalent).
    pub precip_mm: f64,
    /// Length of the step, hours (24 for a daily step).
    pub step_h: f64,
}

impl StepWeather {
    /// Checks that the temperature is finite and precipitation and step are non-negative.
    ///
    /// # Errors
    /// Returns [`SnowmeltError::InvalidInput`] naming the first bad field.
    pub fn check(&self) -> Result<(), SnowmeltError> {
        let bad = |field, expected, value| SnowmeltError::InvalidInput {
            field,
            expected,
            value,
        };
        if !self.air_temp_c.is_finite() {
            return Err(bad("air_temp_c", "finite", self.air_temp_c));
        }
        if !(self.precip_mm.is_finite() && self.precip_mm >= 0.0) {
            return Err(bad("precip_mm", "non-negative", self.precip_mm));
        }
        if !(self.step_h.is_finite() && self.step_h >= 0.0) {
            return Err(bad("step_h", "non-negative", self.step_h));
        }
        Ok(())
    }
}

/// What one step did to a pack. Mass balance: `swe_before + snowfall = swe_after + melt`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeltStep {
    /// SWE at the start of the step, mm.
    pub swe_before_mm: f64,
    /// Precipitation that fell as snow, mm w.e.
    pub snowfall_mm: f64,
    /// Precipitation that fell as rain, mm.
    pub rain_mm: f64,
    /// Degree-day melt the temperature could produce, mm (before the pack limit).
    pub potential_degree_day_mm: f64,
    /// Melt the rain's heat could produce, mm (before the pack limit).
    pub potential_rain_melt_mm: f64,
    /// Melt that happened: the potential limited by the pack, mm.
    pub melt_mm: f64,
    /// SWE at the end of the step, mm.
    pub swe_after_mm: f64,
}

impl MeltStep {
    /// Returns the water leaving the pack surface: rain plus melt, mm.
    pub fn water_input_mm(&self) -> f64 {
        self.rain_mm + self.melt_mm
    }
}

/// Returns one step of the pack: snowfall is added first, then the degree-day and rain melt are
/// taken, limited by the pack (`SWE_t = SWE_{t−1} + snowfall − M`, hazards.md §7.1 [C]).
///
/// # Errors
/// Returns [`SnowmeltError::InvalidInput`] for a bad weather input or a negative pack.
pub fn melt_step(
    swe_mm: f64,
    weather: StepWeather,
    ddf_mm_per_degday: f64,
    cfg: &SnowmeltConfig,
) -> Result<MeltStep, SnowmeltError> {
    weather.check()?;
    if !(swe_mm.is_finite() && swe_mm >= 0.0) {
        return Err(SnowmeltError::InvalidInput {
            field: "swe_mm",
            expected: "non-negative",
            value: swe_mm,
        });
    }
    let falls_as_snow = weather.air_temp_c <= cfg.snow_rain_threshold_c;
    let (snowfall_mm, rain_mm) = if falls_as_snow {
        (weather.precip_mm, 0.0)
    } else {
        (0.0, weather.precip_mm)
    };
    let temp = weather.air_temp_c;
    let potential_degree_day_mm =
        degree_day_melt(ddf_mm_per_degday, temp, cfg.t_base_c, weather.step_h);
    let potential_rain_melt_mm = rain_melt(rain_mm, temp, cfg.rain_melt_coef);
    let available = swe_mm + snowfall_mm;
    let melt_mm = (potential_degree_day_mm + potential_rain_melt_mm).min(available);
    Ok(MeltStep {
        swe_before_mm: swe_mm,
        snowfall_mm,
        rain_mm,
        potential_degree_day_mm,
        potential_rain_melt_mm,
        melt_mm,
        swe_after_mm: available - melt_mm,
    })
}

/// Returns the water that rain on a snowpack adds to the basin's effective rainfall for the
/// flash-flood model, mm: while it rains on a pack, the degree-day melt plus the rain's melt
/// (total melt = M + M_rain, hazards.md §7.2 [D]), limited by the pack. The rain itself is already
/// in the gauges' windows, so it is not included. Without rain on snow (no pack, no rain, or
/// precipitation falling as snow) this is 0; attributing only melt during rain to the flash-flood
/// input is this module's choice [U].
///
/// # Errors
/// Returns [`SnowmeltError::InvalidInput`] for a bad weather input or a negative pack.
pub fn rain_on_snow_extra_mm(
    swe_mm: f64,
    weather: StepWeather,
    range: MountainRange,
    cfg: &SnowmeltConfig,
) -> Result<f64, SnowmeltError> {
    let step = melt_step(swe_mm, weather, cfg.ddf_for(range), cfg)?;
    if step.rain_mm > 0.0 && swe_mm > 0.0 {
        return Ok(step.melt_mm);
    }
    Ok(0.0)
}

/// The snowpack of one basin, as basin-average snow water equivalent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasinSnowpack {
    basin: BasinId,
    range: MountainRange,
    swe_mm: f64,
}

impl BasinSnowpack {
    /// Creates the pack of `basin` with `swe_mm` of snow water equivalent (negative or NaN: 0).
    pub fn new(basin: BasinId, range: MountainRange, swe_mm: f64) -> Self {
        let swe_mm = if swe_mm > 0.0 { swe_mm } else { 0.0 };
        Self {
            basin,
            range,
            swe_mm,
        }
    }

    /// Returns the basin.
    pub fn basin(&self) -> &BasinId {
        &self.basin
    }

    /// Returns the mountain range that picks the degree-day factor.
    pub fn range(&self) -> MountainRange {
        self.range
    }

    /// Returns the current snow water equivalent, mm.
    pub fn swe_mm(&self) -> f64 {
        self.swe_mm
    }

    /// Advances the pack by one step and returns what the step did.
    ///
    /// # Errors
    /// Returns [`SnowmeltError::InvalidInput`] for a bad weather input; the pack is then unchanged.
    pub fn step(
        &mut self,
        weather: StepWeather,
        cfg: &SnowmeltConfig,
    ) -> Result<MeltStep, SnowmeltError> {
        let step = melt_step(self.swe_mm, weather, cfg.ddf_for(self.range), cfg)?;
        debug_assert!(
            (step.swe_before_mm + step.snowfall_mm - step.swe_after_mm - step.melt_mm).abs()
                <= 1e-9 * (1.0 + step.swe_before_mm + step.snowfall_mm)
        );
        self.swe_mm = step.swe_after_mm;
        Ok(step)
    }

    /// Returns the extra flash-flood water input of rain on this pack over a step, without
    /// changing the pack (see [`rain_on_snow_extra_mm`]).
    ///
    /// # Errors
    /// Returns [`SnowmeltError::InvalidInput`] for a bad weather input.
    pub fn rain_on_snow_extra_mm(
        &self,
        weather: StepWeather,
        cfg: &SnowmeltConfig,
    ) -> Result<f64, SnowmeltError> {
        rain_on_snow_extra_mm(self.swe_mm, weather, self.range, cfg)
    }
}

/// Warming-spell indicators over daily means at a station or basin (hazards.md §7.3 [C]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmingSpell {
    /// Consecutive days up to the last with a positive daily mean.
    pub positive_days: u32,
    /// Consecutive days up to the last whose mean rose by the outlet warming rate and lies in
    /// the outlet daily-mean range.
    pub warming_days: u32,
    /// Rise of the last daily mean over the one before, °C (None with fewer than 2 days).
    pub last_rise_c: Option<f64>,
    /// The spell is at least the shortest outlet warming spell (Wu Sufen criterion).
    pub outlet_criterion_met: bool,
}

/// Returns the warming-spell indicators of `daily_means_c` (oldest first, one per day).
pub fn warming_spell(daily_means_c: &[f64], cfg: &SnowmeltConfig) -> WarmingSpell {
    let positive_days = trailing_count(daily_means_c.iter().map(|&mean| mean > 0.0));
    let rises = daily_means_c
        .windows(2)
        .map(|pair| (pair[1] - pair[0], pair[1]));
    let warming_days = trailing_count(rises.map(|(rise, mean)| is_warming_day(rise, mean, cfg)));
    WarmingSpell {
        positive_days,
        warming_days,
        last_rise_c: daily_means_c
            .windows(2)
            .last()
            .map(|pair| pair[1] - pair[0]),
        outlet_criterion_met: warming_days >= cfg.outlet_warming_days[0],
    }
}

fn is_warming_day(rise_c: f64, mean_c: f64, cfg: &SnowmeltConfig) -> bool {
    let [rise_low, rise_high] = cfg.outlet_warming_c_per_day;
    let [mean_low, mean_high] = cfg.outlet_daily_mean_c;
    (rise_low..=rise_high).contains(&rise_c) && (mean_low..=mean_high).contains(&mean_c)
}

/// Returns how many of the last items are true in a row.
fn trailing_count(flags: impl DoubleEndedIterator<Item = bool>) -> u32 {
    let run = flags.rev().take_while(|&flag| flag).count();
    u32::try_from(run).unwrap_or(u32::MAX)
}

/// Returns ΣT3+, the sum of the positive daily means of 3 days, °C (hazards.md §7.3 [C]).
pub fn positive_temp_sum(daily_means_c: [f64; GRADE_DAYS]) -> f64 {
    daily_means_c.iter().map(|mean| mean.max(0.0)).sum()
}

/// The Zhou Gang et al. 2021 warming grade, 1 (none) to 5 (strongest) (hazards.md §7.3 [C]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WarmingGrade(u8);

impl WarmingGrade {
    /// Returns the grade `n` when it is 1..=5.
    pub fn new(n: u8) -> Option<Self> {
        (1..=5).contains(&n).then_some(Self(n))
    }

    /// Returns the grade of a 3-day positive temperature sum: the first bound it does not exceed
    /// gives grades 1–4, above all bounds gives 5.
    pub fn from_sum(positive_temp_sum_c: f64, bounds: &[f64; 4]) -> Self {
        let exceeded = bounds
            .iter()
            .take_while(|&&bound| positive_temp_sum_c > bound)
            .count();
        Self(1 + exceeded as u8) // at most 4 bounds, so 1..=5
    }

    /// Returns the grade number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Returns the lower bound of this grade's sum interval (0 for grade 1).
    fn lower_bound(self, bounds: &[f64; 4]) -> f64 {
        match self.0 {
            1 => 0.0,
            n => bounds[usize::from(n) - 2],
        }
    }
}

/// Xinjiang 24 h rain classes (新疆降水量级标准, hazards.md §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RainClass24h {
    /// 小雨 or none: up to the first bound.
    Light,
    /// 中雨: up to the second bound.
    Moderate,
    /// 大雨: up to the third bound.
    Heavy,
    /// 暴雨 or more: above the third bound.
    Rainstorm,
}

impl RainClass24h {
    /// Returns the class of a 24 h total with upper-inclusive `bounds` (light, moderate, heavy).
    pub fn from_mm(rain_24h_mm: f64, bounds: &[f64; 3]) -> Self {
        let [light, moderate, heavy] = *bounds;
        if rain_24h_mm <= light {
            Self::Light
        } else if rain_24h_mm <= moderate {
            Self::Moderate
        } else if rain_24h_mm <= heavy {
            Self::Heavy
        } else {
            Self::Rainstorm
        }
    }

    /// Returns true for 大雨 or more, the rain that turns a warming into a rain-on-snow case.
    pub fn is_heavy_or_more(self) -> bool {
        self >= Self::Heavy
    }
}

/// Static snowmelt-flood hazard zone of a basin (end-Feb snow depth, elevation, distance to
/// river; hazards.md §7.3 [C]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaticZone {
    /// Low static hazard.
    Low,
    /// Medium static hazard.
    Medium,
    /// High static hazard.
    High,
}

/// Dynamic snowmelt-flood hazard class of Zhou Gang et al. 2021 (hazards.md §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnowmeltHazard {
    /// Very low.
    VeryLow,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Extreme.
    Extreme,
}

impl SnowmeltHazard {
    /// Returns the warning level: extreme → red, high → orange, medium → yellow, low → blue,
    /// very low → none. This order-preserving mapping is [U] (hazards.md §9.1).
    pub fn level(self) -> Option<Level> {
        match self {
            Self::VeryLow => None,
            Self::Low => Some(Level::Blue),
            Self::Medium => Some(Level::Yellow),
            Self::High => Some(Level::Orange),
            Self::Extreme => Some(Level::Red),
        }
    }
}

/// What drives a dynamic hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Warming alone.
    Warming,
    /// Warming of grade 4 or 5 with 大雨 or more: a rain-on-snow flood.
    RainOnSnow,
}

/// Returns the dynamic hazard of a static zone under a warming grade and 24 h rain class
/// (Zhou Gang et al. 2021 rule, hazards.md §7.3 [C]).
///
/// The reference quotes an excerpt. Cells it leaves out are filled here [U]: low + 5 → medium
/// (as low + 4) and low + 1 → very low (as low + 2). Rain changes only the trigger, not the class.
pub fn dynamic_hazard(
    zone: StaticZone,
    grade: WarmingGrade,
    rain: RainClass24h,
) -> (SnowmeltHazard, Trigger) {
    use SnowmeltHazard::{Extreme, High, Low, Medium, VeryLow};
    let hazard = match (zone, grade.get()) {
        (StaticZone::High, 4..) => Extreme,
        (StaticZone::High, 3) | (StaticZone::Medium, 4..) => High,
        (StaticZone::High, 2) | (StaticZone::Medium, 2..=3) | (StaticZone::Low, 3..) => Medium,
        (StaticZone::High | StaticZone::Medium, _) => Low,
        (StaticZone::Low, _) => VeryLow,
    };
    let trigger = if grade.get() >= 4 && rain.is_heavy_or_more() {
        Trigger::RainOnSnow
    } else {
        Trigger::Warming
    };
    (hazard, trigger)
}

/// One day of basin weather for the dynamic grade (meteorological day, hazards.md Conventions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DailyWeather {
    /// Daily mean air temperature, °C.
    pub mean_c: f64,
    /// Rain over the day, mm.
    pub rain_24h_mm: f64,
    /// Observed snow depth, cm.
    pub snow_depth_cm: f64,
}

/// The snowmelt-flood assessment of one basin for the last day of a daily series.
#[derive(Debug, Clone, PartialEq)]
pub struct SnowmeltAssessment {
    /// The basin assessed.
    pub basin: BasinId,
    /// ΣT3+ over the last 3 days, °C.
    pub positive_temp_sum_c: f64,
    /// Warming grade of ΣT3+.
    pub grade: WarmingGrade,
    /// Class of the last day's 24 h rain.
    pub rain_class: RainClass24h,
    /// Dynamic hazard class.
    pub hazard: SnowmeltHazard,
    /// Warming or rain-on-snow.
    pub trigger: Trigger,
    /// Warning level of the hazard class (None for very low).
    pub level: Option<Level>,
    /// Warming-spell indicators over the whole series.
    pub spell: WarmingSpell,
    /// `positive_temp_sum_3d`, `rain_24h`, `snow_depth_day1` and `warming_spell_days`.
    pub evidence: Vec<Evidence>,
}

/// Assesses `basin` in `zone` from its daily weather (oldest first; the last day is assessed).
/// Returns None when the snow depth on the first of the last 3 days is below the minimum: the
/// rule only applies to snow-covered ground (hazards.md §7.3 [C]).
///
/// # Errors
/// Returns [`SnowmeltError::TooFewDays`] with fewer than 3 days, and
/// [`SnowmeltError::InvalidInput`] when a value of the last 3 days is not a number.
pub fn assess(
    basin: &BasinId,
    zone: StaticZone,
    days: &[DailyWeather],
    cfg: &SnowmeltConfig,
) -> Result<Option<SnowmeltAssessment>, SnowmeltError> {
    let last3 = last_three(days)?;
    if last3[0].snow_depth_cm < cfg.min_snow_depth_cm {
        return Ok(None);
    }
    let sum = positive_temp_sum(last3.map(|day| day.mean_c));
    let grade = WarmingGrade::from_sum(sum, &cfg.warming_grade_bounds);
    let rain_24h_mm = last3[GRADE_DAYS - 1].rain_24h_mm;
    let rain_class = RainClass24h::from_mm(rain_24h_mm, &cfg.rain_class_bounds_24h);
    let (hazard, trigger) = dynamic_hazard(zone, grade, rain_class);
    let means: Vec<f64> = days.iter().map(|day| day.mean_c).collect();
    let spell = warming_spell(&means, cfg);
    let evidence = vec![
        evidence(
            "positive_temp_sum_3d",
            sum,
            grade.lower_bound(&cfg.warming_grade_bounds),
        ),
        evidence("rain_24h", rain_24h_mm, cfg.rain_class_bounds_24h[1]),
        evidence(
            "snow_depth_day1",
            last3[0].snow_depth_cm,
            cfg.min_snow_depth_cm,
        ),
        evidence(
            "warming_spell_days",
            f64::from(spell.warming_days),
            f64::from(cfg.outlet_warming_days[0]),
        ),
    ];
    Ok(Some(SnowmeltAssessment {
        basin: basin.clone(),
        positive_temp_sum_c: sum,
        grade,
        rain_class,
        hazard,
        trigger,
        level: hazard.level(),
        spell,
        evidence,
    }))
}

/// Returns the last 3 days, checked to be numbers.
fn last_three(days: &[DailyWeather]) -> Result<[DailyWeather; GRADE_DAYS], SnowmeltError> {
    let too_few = SnowmeltError::TooFewDays { got: days.len() };
    let start = days.len().checked_sub(GRADE_DAYS).ok_or(too_few.clone())?;
    let last3: [DailyWeather; GRADE_DAYS] = days[start..].try_into().map_err(|_| too_few)?;
    for day in &last3 {
        check_number("mean_c", day.mean_c)?;
        check_number("rain_24h_mm", day.rain_24h_mm)?;
        check_number("snow_depth_cm", day.snow_depth_cm)?;
    }
    Ok(last3)
}

fn check_number(field: &'static str, value: f64) -> Result<(), SnowmeltError> {
    if value.is_finite() {
        return Ok(());
    }
    Err(SnowmeltError::InvalidInput {
        field,
        expected: "finite",
        value,
    })
}

/// Builds one evidence entry; the daily inputs are basin values, so no stations are named.
fn evidence(quantity: &str, value: f64, threshold: f64) -> Evidence {
    Evidence {
        quantity: quantity.to_owned(),
        value,
        threshold,
        completeness: 1.0,
        stations: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
