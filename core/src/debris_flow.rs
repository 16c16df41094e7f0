//! Debris-flow assessment of one gully or basin (hazards.md §4): rainfall intensity–duration
//! curves (§4.1), the USGS post-fire likelihood model of Staley et al. 2017 M1 (§4.2) and the
//! Chinese intensity / effective-rainfall curve (§4.3), combined into one level with the evidence
//! behind it, plus the flash-flood → debris-flow chain (灾害链).
//!
//! Each model gives a level and the highest wins. I–D and I–R give a ratio of observed to
//! threshold intensity, mapped to a colour by `ratio-levels` (orange at ratio 1, the "warn when
//! r ≥ 1" of §4.1); the post-fire model gives a likelihood, mapped by `p-levels`. Both ladders
//! are policy [U]. Event segmentation (dry gap) is left to the caller: it passes the trailing
//! windows and, as one more window, the current event's duration and depth.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{BasinId, WarningId};
use crate::warning::Level;

/// One intensity–duration threshold curve `I = alpha · D^-beta` (I mm/h, D h), valid on a range
/// of durations (hazards.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IdCurve {
    /// Intensity at D = 1 h, in mm/h.
    pub alpha: f64,
    /// Exponent of the duration (the curve uses `D^-beta`).
    pub beta: f64,
    /// Shortest duration the curve is used for, in hours.
    pub min_duration_h: f64,
    /// Longest duration the curve is used for, in hours.
    pub max_duration_h: f64,
}

impl IdCurve {
    /// Caine (1980) global curve: alpha 14.82, beta 0.39 [S]; 10 min ≤ D ≤ 10 d [U]
    /// (hazards.md §4.1).
    pub const CAINE_1980: IdCurve = IdCurve {
        alpha: 14.82,
        beta: 0.39,
        min_duration_h: 10.0 / 60.0,
        max_duration_h: 240.0,
    };

    /// Guzzetti et al. (2008) global minimum: alpha 2.20, beta 0.44 [S]; 0.1 ≤ D ≤ 1000 h [U]
    /// (hazards.md §4.1).
    pub const GUZZETTI_2008: IdCurve = IdCurve {
        alpha: 2.20,
        beta: 0.44,
        min_duration_h: 0.1,
        max_duration_h: 1000.0,
    };

    /// Aleotti (2004) Piedmont regional curve: alpha 19, beta 0.50 [C] (negative exponent [S]);
    /// the validity range is not given, 0.1 ≤ D ≤ 1000 h here [U] (hazards.md §4.1). A placeholder
    /// regional curve until a Xinjiang one is calibrated.
    pub const ALEOTTI_2004_PIEDMONT: IdCurve = IdCurve {
        alpha: 19.0,
        beta: 0.50,
        min_duration_h: 0.1,
        max_duration_h: 1000.0,
    };

    /// Returns the threshold intensity `alpha · D^-beta` in mm/h for `duration_h` hours.
    pub fn threshold_mm_h(&self, duration_h: f64) -> f64 {
        self.alpha * duration_h.powf(-self.beta)
    }

    /// Returns true when `duration_h` lies within the validity range (both ends included).
    pub fn covers(&self, duration_h: f64) -> bool {
        (self.min_duration_h..=self.max_duration_h).contains(&duration_h)
    }

    fn validate(&self, name: &str) -> Result<(), String> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("{name}.alpha must be positive, got {}", self.alpha));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(format!(
                "{name}.beta must be non-negative, got {}",
                self.beta
            ));
        }
        if !(self.min_duration_h > 0.0 && self.min_duration_h < self.max_duration_h) {
            return Err(format!(
                "{name}.min-duration-h must be positive and below max-duration-h ({}), got {}",
                self.max_duration_h, self.min_duration_h
            ));
        }
        Ok(())
    }
}

/// I–D settings (`[debris_flow.id_threshold]` in thresholds.toml). A gully selects a curve by
/// name: `caine`, `guzzetti`, `regional` or a key of `local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct IdThresholdConfig {
    /// The `caine` curve. Default [`IdCurve::CAINE_1980`] [S].
    pub caine: IdCurve,
    /// The `guzzetti` curve. Default [`IdCurve::GUZZETTI_2008`] [S].
    pub guzzetti: IdCurve,
    /// The `regional` curve. Default [`IdCurve::ALEOTTI_2004_PIEDMONT`], a placeholder until a
    /// Xinjiang curve is calibrated [U].
    pub regional: IdCurve,
    /// Further named curves, e.g. calibrated per basin. Default none.
    pub local: BTreeMap<String, IdCurve>,
    /// Curve used by gullies that select none. Default `caine` "until recalibrated for
    /// Xinjiang" [U].
    pub active: String,
    /// When positive, replaces alpha of every curve used (local recalibration of the intercept);
    /// 0 = none. Default 0 [U].
    pub regional_alpha_override: f64,
    /// Windows with less rain than this (mm) are not compared: trivial events. Default 1.0 [U].
    pub min_event_mm: f64,
}

impl Default for IdThresholdConfig {
    fn default() -> Self {
        Self {
            caine: IdCurve::CAINE_1980,
            guzzetti: IdCurve::GUZZETTI_2008,
            regional: IdCurve::ALEOTTI_2004_PIEDMONT,
            local: BTreeMap::new(),
            active: "caine".to_owned(),
            regional_alpha_override: 0.0,
            min_event_mm: 1.0,
        }
    }
}

impl IdThresholdConfig {
    /// Returns the curve called `name` as configured, without the alpha override.
    pub fn named<'a>(&'a self, name: &'a str) -> Option<(&'a str, &'a IdCurve)> {
        match name {
            "caine" => Some(("caine", &self.caine)),
            "guzzetti" => Some(("guzzetti", &self.guzzetti)),
            "regional" => Some(("regional", &self.regional)),
            _ => self
                .local
                .get_key_value(name)
                .map(|(name, curve)| (name.as_str(), curve)),
        }
    }

    /// Returns the named curve (the active one for `None`) with the alpha override applied.
    pub fn curve<'a>(&'a self, name: Option<&'a str>) -> Option<(&'a str, IdCurve)> {
        let (name, curve) = self.named(name.unwrap_or(&self.active))?;
        let mut curve = *curve;
        if self.regional_alpha_override > 0.0 {
            curve.alpha = self.regional_alpha_override;
        }
        Some((name, curve))
    }

    fn validate(&self) -> Result<(), String> {
        self.caine.validate("caine")?;
        self.guzzetti.validate("guzzetti")?;
        self.regional.validate("regional")?;
        for (name, curve) in &self.local {
            curve.validate(&format!("local.{name}"))?;
        }
        if self.named(&self.active).is_none() {
            return Err(format!("active names no curve: {}", self.active));
        }
        if !(self.regional_alpha_override >= 0.0 && self.regional_alpha_override.is_finite()) {
            return Err(format!(
                "regional-alpha-override must be 0 or positive, got {}",
                self.regional_alpha_override
            ));
        }
        if !(self.min_event_mm >= 0.0 && self.min_event_mm.is_finite()) {
            return Err(format!(
                "min-event-mm must be non-negative, got {}",
                self.min_event_mm
            ));
        }
        Ok(())
    }
}

/// A decreasing intensity–effective-rainfall curve `I_crit = a · R_eff^-b` (mm/h, mm)
/// (hazards.md §4.3). No Xinjiang coefficients are known: calibrate per basin [U].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IrCurve {
    /// Critical intensity at R_eff = 1 mm, in mm/h. Placeholder 30.0 [U].
    pub a: f64,
    /// Exponent of the effective rainfall. Placeholder 0.3 [U].
    pub b: f64,
}

impl IrCurve {
    /// Returns the critical short-duration intensity in mm/h for `effective_mm`; infinite when
    /// there is no effective rain, so nothing is reached.
    pub fn critical_mm_h(&self, effective_mm: f64) -> f64 {
        if effective_mm <= 0.0 {
            return f64::INFINITY;
        }
        self.a * effective_mm.powf(-self.b)
    }

    fn validate(&self, field: &str) -> Result<(), String> {
        if !(self.a.is_finite() && self.a > 0.0 && self.b.is_finite() && self.b >= 0.0) {
            return Err(format!(
                "{field} needs a > 0 and b ≥ 0, got a = {}, b = {}",
                self.a, self.b
            ));
        }
        Ok(())
    }
}

/// Effective-rainfall settings (`[debris_flow.effective_rain]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct EffectiveRainConfig {
    /// Daily decay K of `R_eff = R_0 + Σ K^i · R_i`. Default 0.8 [U] (hazards.md §4.3).
    pub k_decay: f64,
    /// Number n of previous days summed. Default 15 [U] (reference range 10–20).
    pub days: u32,
    /// Window (minutes) whose intensity is compared with the I–R curve: the reference names
    /// 10 and 60 min. Default 60 [U].
    pub intensity_window_min: u32,
    /// Default I–R curve for gullies without their own. Default a = 30.0, b = 0.3 [U]
    /// placeholders.
    pub ir_curve: IrCurve,
}

impl Default for EffectiveRainConfig {
    fn default() -> Self {
        Self {
            k_decay: 0.8,
            days: 15,
            intensity_window_min: 60,
            ir_curve: IrCurve { a: 30.0, b: 0.3 },
        }
    }
}

impl EffectiveRainConfig {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.k_decay) {
            return Err(format!("k-decay must be in [0, 1], got {}", self.k_decay));
        }
        if !(1..=60).contains(&self.days) {
            return Err(format!("days must be in 1..=60, got {}", self.days));
        }
        if self.intensity_window_min == 0 {
            return Err("intensity-window-min must be positive, got 0".to_owned());
        }
        self.ir_curve.validate("ir-curve")
    }
}

/// Returns the effective rainfall `R_0 + Σ_{i=1}^{n} K^i · R_i` (hazards.md §4.3 [U] form):
/// `today_mm` is R_0, `days_before_mm[i - 1]` is R_i (newest first); days beyond `days` are
/// ignored.
pub fn effective_rainfall(today_mm: f64, days_before_mm: &[f64], k: f64, days: u32) -> f64 {
    let mut factor = 1.0;
    let mut total = today_mm;
    for &mm in days_before_mm.iter().take(days as usize) {
        factor *= k;
        total += factor * mm;
    }
    total
}

/// Returns the rainfall-triggering index `RTI = R_eff × I_max` (Jan & Lee 2004; the exact form
/// is [U], hazards.md §4.3). Reported as evidence only: no RTI thresholds are known.
pub fn rainfall_triggering_index(effective_mm: f64, max_intensity_mm_h: f64) -> f64 {
    effective_mm * max_intensity_mm_h
}

/// The burn-scar variables of a catchment for the Staley 2017 M1 model (hazards.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BurnScar {
    /// T: proportion of the catchment burned at moderate/high severity on slopes ≥ 23°.
    pub t: f64,
    /// F: mean catchment dNBR / 1000.
    pub f: f64,
    /// S: mean catchment KF-factor.
    pub s: f64,
}

impl BurnScar {
    /// Checks T in [0, 1] and F, S non-negative (negative values would make more rain lower the
    /// likelihood).
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.t) {
            return Err(format!("burn-scar.t must be in [0, 1], got {}", self.t));
        }
        if !(self.f >= 0.0 && self.f.is_finite()) {
            return Err(format!("burn-scar.f must be non-negative, got {}", self.f));
        }
        if !(self.s >= 0.0 && self.s.is_finite()) {
            return Err(format!("burn-scar.s must be non-negative, got {}", self.s));
        }
        Ok(())
    }
}

/// Coefficients of the Staley 2017 M1 logistic model for one duration (hazards.md §4.2 [C]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaleyM1 {
    /// Intercept B.
    pub b: f64,
    /// Terrain coefficient Ct.
    pub ct: f64,
    /// Fire coefficient Cf.
    pub cf: f64,
    /// Soil coefficient Cs.
    pub cs: f64,
}

impl StaleyM1 {
    /// Returns the likelihood `p = e^X / (1 + e^X)`, `X = B + Ct·T·R + Cf·F·R + Cs·S·R`, of a
    /// debris flow for `rain_mm` (accumulation in the model's window) on `burn`.
    pub fn likelihood(&self, burn: &BurnScar, rain_mm: f64) -> f64 {
        let x = self.b + self.slope(burn) * rain_mm;
        // 1 / (1 + e^-X) equals e^X / (1 + e^X) without overflowing for large X.
        1.0 / (1.0 + (-x).exp())
    }

    /// Returns the accumulation (mm) at which the likelihood is `p`:
    /// `R_p = (ln(p/(1−p)) − B) / (Ct·T + Cf·F + Cs·S)`. `None` when `p` is not in (0, 1) or
    /// rain does not change the likelihood on this burn scar.
    pub fn rainfall_for(&self, burn: &BurnScar, p: f64) -> Option<f64> {
        let slope = self.slope(burn);
        if !(p > 0.0 && p < 1.0) || slope <= 0.0 {
            return None;
        }
        Some(((p / (1.0 - p)).ln() - self.b) / slope)
    }

    /// The derivative of X with respect to R.
    fn slope(&self, burn: &BurnScar) -> f64 {
        self.ct * burn.t + self.cf * burn.f + self.cs * burn.s
    }
}

/// Post-fire settings (`[debris_flow.postfire_staley2017_m1]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PostFireConfig {
    /// Window lengths of the three M1 fits, minutes. Default [15, 30, 60] [C].
    pub durations_min: [u32; 3],
    /// Intercepts B per duration. Default [-3.63, -3.61, -3.21] [C].
    pub b: [f64; 3],
    /// Terrain coefficients Ct per duration. Default [0.41, 0.26, 0.17] [C].
    pub ct: [f64; 3],
    /// Fire coefficients Cf per duration. Default [0.67, 0.39, 0.20] [C].
    pub cf: [f64; 3],
    /// Soil coefficients Cs per duration. Default [0.70, 0.50, 0.22] [C].
    pub cs: [f64; 3],
    /// Likelihood breaks for blue, yellow, orange, red. Default [0.2, 0.4, 0.6, 0.8] [U].
    pub p_levels: [f64; 4],
}

impl Default for PostFireConfig {
    fn default() -> Self {
        Self {
            durations_min: [15, 30, 60],
            b: [-3.63, -3.61, -3.21],
            ct: [0.41, 0.26, 0.17],
            cf: [0.67, 0.39, 0.20],
            cs: [0.70, 0.50, 0.22],
            p_levels: [0.2, 0.4, 0.6, 0.8],
        }
    }
}

impl PostFireConfig {
    /// Returns the `(window minutes, coefficients)` of each fitted duration.
    pub fn models(&self) -> [(u32, StaleyM1); 3] {
        std::array::from_fn(|i| {
            let model = StaleyM1 {
                b: self.b[i],
                ct: self.ct[i],
                cf: self.cf[i],
                cs: self.cs[i],
            };
            (self.durations_min[i], model)
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.durations_min.contains(&0) {
            return Err("durations-min must be positive".to_owned());
        }
        let coefficients = [("ct", &self.ct), ("cf", &self.cf), ("cs", &self.cs)];
        for (field, values) in coefficients {
            if !values.iter().all(|c| c.is_finite() && *c >= 0.0) {
                return Err(format!("{field} must be non-negative, got {values:?}"));
            }
        }
        if !self.b.iter().all(|b| b.is_finite()) {
            return Err(format!("b must be finite, got {:?}", self.b));
        }
        if !ascending_in(&self.p_levels, 0.0, 1.0) {
            return Err(format!(
                "p-levels must ascend within (0, 1), got {:?}",
                self.p_levels
            ));
        }
        Ok(())
    }
}

/// Debris-flow policy (`[debris_flow.*]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DebrisFlowConfig {
    /// I–D curves and their selection (hazards.md §4.1).
    pub id_threshold: IdThresholdConfig,
    /// Effective rainfall and the I–R curve (hazards.md §4.3).
    pub effective_rain: EffectiveRainConfig,
    /// Staley 2017 M1 post-fire model (hazards.md §4.2).
    pub postfire: PostFireConfig,
    /// Observed/threshold intensity ratios for blue, yellow, orange, red (I–D and I–R). Default
    /// [0.6, 0.8, 1.0, 1.5]: orange at "warn when r ≥ 1" (§4.1), watch levels at the flash-flood
    /// watch ratios, red at 1.5 [U].
    pub ratio_levels: [f64; 4],
    /// Levels an active flash-flood warning in the same basin adds (灾害链). Default 1 [U].
    pub chain_step: u8,
    /// Every I–D and I–R threshold intensity is multiplied by this: below 1 warns on less rain.
    /// For threshold research and `tianshan backtest --sweep`; the post-fire likelihoods are not
    /// scaled. Default 1.0.
    pub rain_threshold_factor: f64,
}

impl Default for DebrisFlowConfig {
    fn default() -> Self {
        Self {
            id_threshold: IdThresholdConfig::default(),
            effective_rain: EffectiveRainConfig::default(),
            postfire: PostFireConfig::default(),
            ratio_levels: [0.6, 0.8, 1.0, 1.5],
            chain_step: 1,
            rain_threshold_factor: 1.0,
        }
    }
}

impl DebrisFlowConfig {
    /// Checks every section.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.id_threshold.validate()?;
        self.effective_rain.validate()?;
        self.postfire.validate()?;
        if !ascending_in(&self.ratio_levels, 0.0, f64::INFINITY) {
            return Err(format!(
                "ratio-levels must be positive and ascending, got {:?}",
                self.ratio_levels
            ));
        }
        if !(self.rain_threshold_factor.is_finite() && self.rain_threshold_factor > 0.0) {
            return Err(format!(
                "rain-threshold-factor must be positive, got {}",
                self.rain_threshold_factor
            ));
        }
        Ok(())
    }
}

/// Returns true when `values` are strictly between `low` and `high` and ascending.
fn ascending_in(values: &[f64; 4], low: f64, high: f64) -> bool {
    values.iter().all(|v| *v > low && *v < high) && values.windows(2).all(|w| w[0] <= w[1])
}

/// What is known about one gully or basin beyond its rain: its curve choice and burn scar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GullyProfile {
    /// The gully or basin.
    pub basin: BasinId,
    /// Name of its I–D curve (see [`IdThresholdConfig`]); `None` uses `active`.
    #[serde(default)]
    pub curve: Option<String>,
    /// Its own I–R curve; `None` uses `effective-rain.ir-curve`.
    #[serde(default)]
    pub ir_curve: Option<IrCurve>,
    /// Burn-scar variables when the catchment burned in recent years; `None` skips the
    /// post-fire model.
    #[serde(default)]
    pub burn_scar: Option<BurnScar>,
}

impl GullyProfile {
    /// Checks the profile against `config`: the curve exists and the numbers are in range.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self, config: &DebrisFlowConfig) -> Result<(), String> {
        if let Some(name) = &self.curve {
            if config.id_threshold.named(name).is_none() {
                return Err(format!("curve names no configured curve: {name}"));
            }
        }
        if let Some(curve) = &self.ir_curve {
            curve.validate("ir-curve")?;
        }
        self.burn_scar.as_ref().map_or(Ok(()), BurnScar::validate)
    }
}

/// One rainfall accumulation over a trailing window (or the current event).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RainWindow {
    /// Window length in minutes.
    pub duration_min: u32,
    /// Basin rainfall in the window, mm.
    pub mm: f64,
}

impl RainWindow {
    /// Returns the window length in hours.
    pub fn duration_h(&self) -> f64 {
        f64::from(self.duration_min) / 60.0
    }

    /// Returns the mean intensity in mm/h.
    pub fn intensity_mm_h(&self) -> f64 {
        self.mm / self.duration_h()
    }
}

/// The rain of one gully or basin at one evaluation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DebrisRain {
    /// Maximum accumulations over trailing windows (15 min … 72 h) and the current event.
    pub windows: Vec<RainWindow>,
    /// R_0: rain of the current meteorological day (or event), mm.
    pub today_mm: f64,
    /// R_1, R_2, …: daily rain of the previous days, newest first, mm.
    pub days_before_mm: Vec<f64>,
}

/// The model behind one piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DebrisModel {
    /// An I–D curve, by its configured name (hazards.md §4.1).
    IntensityDuration(String),
    /// The I–R curve against effective rainfall (hazards.md §4.3).
    IntensityEffectiveRain,
    /// Staley 2017 M1 post-fire likelihood (hazards.md §4.2).
    PostFire,
}

/// One comparison behind a debris-flow level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebrisEvidence {
    /// Model and curve compared.
    pub model: DebrisModel,
    /// Window length, minutes.
    pub duration_min: u32,
    /// Observed value: intensity mm/h (I–D, I–R) or accumulation mm (post-fire).
    pub value: f64,
    /// Threshold: the curve's intensity (I–D, I–R), or for post-fire the accumulation giving the
    /// likelihood break of the level reached (blue's break when none is reached).
    pub threshold: f64,
    /// Observed / curve intensity (I–D, I–R), or the post-fire likelihood p.
    pub ratio: f64,
    /// Level this comparison reaches.
    pub level: Option<Level>,
}

/// The debris-flow assessment of one gully at one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebrisAssessment {
    /// The gully or basin.
    pub basin: BasinId,
    /// Highest level of any comparison.
    pub level: Option<Level>,
    /// Effective rainfall R_eff, mm.
    pub effective_mm: f64,
    /// RTI = R_eff × the I–R window's intensity (0 without that window); information only.
    pub rti: f64,
    /// Every comparison made: I–D windows, then I–R, then post-fire.
    pub evidence: Vec<DebrisEvidence>,
}

impl DebrisAssessment {
    /// Returns the comparison that set the level: the first reaching it, in evidence order.
    pub fn decisive(&self) -> Option<&DebrisEvidence> {
        let level = self.level?;
        self.evidence.iter().find(|e| e.level == Some(level))
    }
}

/// Returns the highest level whose break `value` reaches (breaks for blue … red).
pub fn level_for(value: f64, breaks: &[f64; 4]) -> Option<Level> {
    Level::ALL
        .into_iter()
        .zip(breaks)
        .rev()
        .find(|(_, brk)| value >= **brk)
        .map(|(level, _)| level)
}

/// Assesses `gully` from `rain`. The profile is expected to have passed
/// [`GullyProfile::validate`]; an unknown curve name skips the I–D comparison.
pub fn assess(
    config: &DebrisFlowConfig,
    gully: &GullyProfile,
    rain: &DebrisRain,
) -> DebrisAssessment {
    let effective = &config.effective_rain;
    let effective_mm = effective_rainfall(
        rain.today_mm,
        &rain.days_before_mm,
        effective.k_decay,
        effective.days,
    );
    let mut evidence = intensity_duration(config, gully, rain);
    let short = max_window(rain, effective.intensity_window_min);
    let ir_curve = gully.ir_curve.unwrap_or(effective.ir_curve);
    evidence.extend(short.map(|w| intensity_effective(config, &ir_curve, w, effective_mm)));
    if let Some(burn) = &gully.burn_scar {
        evidence.extend(post_fire(&config.postfire, burn, rain));
    }
    DebrisAssessment {
        basin: gully.basin.clone(),
        level: evidence.iter().filter_map(|e| e.level).max(),
        effective_mm,
        rti: short.map_or(0.0, |w| {
            rainfall_triggering_index(effective_mm, w.intensity_mm_h())
        }),
        evidence,
    }
}

/// Returns the largest accumulation over windows of `duration_min`, if any.
fn max_window(rain: &DebrisRain, duration_min: u32) -> Option<RainWindow> {
    rain.windows
        .iter()
        .filter(|w| w.duration_min == duration_min)
        .copied()
        .max_by(|a, b| a.mm.total_cmp(&b.mm))
}

/// Compares every window within the curve's range and above `min-event-mm` with the I–D curve.
fn intensity_duration(
    config: &DebrisFlowConfig,
    gully: &GullyProfile,
    rain: &DebrisRain,
) -> Vec<DebrisEvidence> {
    let ids = &config.id_threshold;
    let Some((name, curve)) = ids.curve(gully.curve.as_deref()) else {
        return Vec::new();
    };
    rain.windows
        .iter()
        .filter(|w| w.duration_min > 0 && curve.covers(w.duration_h()) && w.mm >= ids.min_event_mm)
        .map(|w| {
            let threshold = curve.threshold_mm_h(w.duration_h()) * config.rain_threshold_factor;
            ratio_evidence(
                DebrisModel::IntensityDuration(name.to_owned()),
                w,
                threshold,
                &config.ratio_levels,
            )
        })
        .collect()
}

/// Compares the short window's intensity with the I–R curve at `effective_mm`.
fn intensity_effective(
    config: &DebrisFlowConfig,
    curve: &IrCurve,
    window: RainWindow,
    effective_mm: f64,
) -> DebrisEvidence {
    let threshold = curve.critical_mm_h(effective_mm) * config.rain_threshold_factor;
    ratio_evidence(
        DebrisModel::IntensityEffectiveRain,
        &window,
        threshold,
        &config.ratio_levels,
    )
}

/// Builds the evidence of an intensity compared with a threshold intensity.
fn ratio_evidence(
    model: DebrisModel,
    window: &RainWindow,
    threshold: f64,
    breaks: &[f64; 4],
) -> DebrisEvidence {
    let value = window.intensity_mm_h();
    let ratio = if threshold.is_finite() {
        value / threshold
    } else {
        0.0
    };
    DebrisEvidence {
        model,
        duration_min: window.duration_min,
        value,
        threshold,
        ratio,
        level: level_for(ratio, breaks),
    }
}

/// Evaluates the M1 likelihood for each fitted duration the rain has a window for.
fn post_fire(config: &PostFireConfig, burn: &BurnScar, rain: &DebrisRain) -> Vec<DebrisEvidence> {
    config
        .models()
        .into_iter()
        .filter_map(|(duration_min, model)| {
            let window = max_window(rain, duration_min)?;
            let p = model.likelihood(burn, window.mm);
            let level = level_for(p, &config.p_levels);
            let break_index = level.map_or(0, |l| l as usize);
            let threshold = model
                .rainfall_for(burn, config.p_levels[break_index])
                .unwrap_or(f64::INFINITY);
            Some(DebrisEvidence {
                model: DebrisModel::PostFire,
                duration_min,
                value: window.mm,
                threshold,
                ratio: p,
                level,
            })
        })
        .collect()
}

/// The debris-flow level after the flash-flood chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chained {
    /// The level to warn at.
    pub level: Option<Level>,
    /// The level from the debris-flow models alone.
    pub own: Option<Level>,
    /// The flash-flood warning that raised the level, when one did (capped at red counts).
    pub caused_by: Option<WarningId>,
}

/// Raises `own` by `step` levels, capped at red, when a flash-flood warning is active in the
/// same basin (`linked_flash_flood`: its warning id and level), and records that warning as the
/// cause. Without a linked warning, with `step` 0, or without an own level the result is `own`
/// unchanged with no cause: a flash flood alone does not start a debris-flow warning [U].
pub fn chain(
    own: Option<Level>,
    linked_flash_flood: Option<(&WarningId, Level)>,
    step: u8,
) -> Chained {
    let unchanged = Chained {
        level: own,
        own,
        caused_by: None,
    };
    let (Some(level), Some((warning, _)), true) = (own, linked_flash_flood, step > 0) else {
        return unchanged;
    };
    Chained {
        level: Some(raise(level, step)),
        own,
        caused_by: Some(warning.clone()),
    }
}

/// Returns `level` raised by `step`, capped at red.
fn raise(level: Level, step: u8) -> Level {
    // `Level` is declared blue … red, so its discriminant is its index in `Level::ALL`.
    let index = (level as usize + usize::from(step)).min(Level::ALL.len() - 1);
    Level::ALL[index]
}

#[cfg(test)]
mod tests;
