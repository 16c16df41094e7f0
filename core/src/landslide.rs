//! Landslide deformation warning for one monitoring point (hazards.md §5): a bounded series of
//! cumulative displacement, robust velocity and acceleration, the inverse-velocity failure-time
//! forecast (Fukuzono 1985, §5.1), Saito's three-point forecast (§5.2), the improved tangent-angle
//! levels (Xu Qiang et al. 2009, §5.3) and rainfall on the slope as an aggravating factor [U].
//!
//! # Regression
//! Velocities and accelerations are slopes of a robust line: a Theil–Sen line (median of the
//! pairwise slopes) finds the bulk of the points, points whose residual exceeds
//! `max(rejection-k × 1.4826 × MAD, rejection-floor-mm)` are rejected (the modified z-score rule
//! of Iglewicz & Hoaglin, 3.5 by default [U]), and ordinary least squares on the kept points gives
//! the slope and its r². Least squares keeps the TV5.1 arithmetic exact; Theil–Sen keeps one
//! bad reading from choosing which points are kept. The standard error of a velocity is that of
//! the least-squares slope, √(Σ residual² / (n − 2) / Σ (t − t̄)²), over the kept points.
//!
//! # Velocity series
//! A reading gets a velocity once the readings of its span reach back over at least
//! `min-span-coverage` of the span [U]: no velocity from the first few readings of a cold start
//! or across an outage. The window keeps the series next to its readings: a reading changes only
//! the velocities of the readings within one span after it, so an in-order reading costs one fit,
//! and a late reading or the eviction of the oldest one refits only the spans that contain it.
//!
//! # Noise
//! GNSS noise of a few millimetres puts standard errors of several mm/d on a 6-h velocity, so two
//! rules keep noise from raising a level [U]:
//! - a tangent-angle level above blue counts only when the velocity less `noise-k` standard
//!   errors still reaches it; a level reached only within the noise counts as blue;
//! - a failure time is published only from a segment of velocities covering `min-fit-hours`, whose
//!   velocity rises (least-squares slope of v against t, times the segment's duration) by more
//!   than `trend-k` × the mean standard error of its velocities.
//!
//! # Level
//! The level is the highest of the tangent-angle level (held for `persist-steps` velocity
//! samples) and the forecast level (predicted failure within `alert-tf-hours` → orange,
//! `alarm-tf-hours` → red) [U]; rain over the slope above `raise-mm` then raises an existing
//! level one step [U]. A velocity below `noise-floor-mm-per-day` is no movement and no level.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ids::StationId;
use crate::time::{parse_duration_ms, EventTime, HOUR_MS};
use crate::warning::Level;

/// Milliseconds in one day, the time unit of every rate in this module (mm/d, hazards.md §5).
const DAY_MS: f64 = 24.0 * HOUR_MS as f64;
/// Scales a median absolute deviation to a normal standard deviation (1 / Φ⁻¹(0.75)).
const MAD_TO_SIGMA: f64 = 1.4826;

/// The instrument behind a monitoring point (hazards.md §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    /// GNSS antenna: displacement along the sliding direction.
    Gnss,
    /// Crack meter or extensometer: crack opening.
    CrackMeter,
    /// InSAR line-of-sight series: detection and v0, not real-time triggering [U] (§5.4).
    Insar,
}

/// One reading: cumulative displacement at an event time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeformationSample {
    /// Event time of the reading.
    pub at: EventTime,
    /// Cumulative displacement along the sliding direction, mm.
    pub displacement_mm: f64,
}

/// A velocity estimate at the end of its regression span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VelocitySample {
    /// End of the span the velocity was fitted over.
    pub at: EventTime,
    /// Velocity, mm/d.
    pub mm_per_day: f64,
    /// Standard error of the velocity, mm/d (infinite when only two readings were kept).
    pub std_error_mm_per_day: f64,
}

/// Errors of the deformation windows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LandslideError {
    /// The configuration failed validation; the message names the field.
    #[error("invalid landslide config: {0}")]
    Config(String),
    /// The reading is older than the newest reading minus the allowed lateness.
    #[error("point {point}: reading at {at} is older than the oldest open time {oldest_open}")]
    TooLate {
        /// Monitoring point.
        point: StationId,
        /// Event time of the reading.
        at: EventTime,
        /// Oldest event time still accepted.
        oldest_open: EventTime,
    },
    /// The displacement is NaN or infinite.
    #[error("point {point}: displacement at {at} is not finite")]
    NotFinite {
        /// Monitoring point.
        point: StationId,
        /// Event time of the reading.
        at: EventTime,
    },
}

/// Per-point window settings (`[landslide.smoothing]` in thresholds.toml and hazards.md §5.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DeformationConfig {
    /// Readings kept per point; the oldest leaves first. Default 512 [U].
    pub capacity: usize,
    /// Readings older than the newest minus this are rejected. Default `"6h"` [U].
    pub allowed_lateness: String,
    /// Span of the velocity regression. Default `"6h"`: `gnss_velocity_window_h` [U] (§5.4).
    pub velocity_span: String,
    /// Span of the acceleration regression over velocity samples. Default `"24h"` [U].
    pub acceleration_span: String,
    /// Fewest readings in a span for a velocity. Default 3 [U].
    pub min_points: usize,
    /// Share of the velocity span the readings must reach back over, from the span's end to its
    /// earliest reading, before the span gives a velocity. Default 0.8 [U].
    pub min_span_coverage: f64,
    /// A speed below this is "no movement", mm/d. Default 0.5 [U] (§5.4: stay above noise).
    pub noise_floor_mm_per_day: f64,
    /// Residuals above `rejection-k` × 1.4826 × MAD are outliers. Default 3.5 [U]
    /// (Iglewicz & Hoaglin modified z-score).
    pub rejection_k: f64,
    /// Residuals at or below this are never outliers, mm. Default 1.0 [U] (sensor resolution).
    pub rejection_floor_mm: f64,
}

impl Default for DeformationConfig {
    fn default() -> Self {
        Self {
            capacity: 512,
            allowed_lateness: "6h".to_owned(),
            velocity_span: "6h".to_owned(),
            acceleration_span: "24h".to_owned(),
            min_points: 3,
            min_span_coverage: 0.8,
            noise_floor_mm_per_day: 0.5,
            rejection_k: 3.5,
            rejection_floor_mm: 1.0,
        }
    }
}

impl DeformationConfig {
    /// Checks counts, spans and thresholds.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.spans().map(|_| ())?;
        if self.min_points < 2 || self.capacity < self.min_points {
            return Err(format!(
                "min-points must be at least 2 and at most capacity ({}), got {}",
                self.capacity, self.min_points
            ));
        }
        if !(self.min_span_coverage > 0.0 && self.min_span_coverage <= 1.0) {
            return Err(format!(
                "min-span-coverage must be in (0, 1], got {}",
                self.min_span_coverage
            ));
        }
        if !(self.noise_floor_mm_per_day >= 0.0 && self.noise_floor_mm_per_day.is_finite()) {
            return Err(format!(
                "noise-floor-mm-per-day must be finite and non-negative, got {}",
                self.noise_floor_mm_per_day
            ));
        }
        if self.rejection_k.is_nan() || self.rejection_k <= 0.0 {
            return Err(format!(
                "rejection-k must be positive, got {}",
                self.rejection_k
            ));
        }
        if self.rejection_floor_mm.is_nan() || self.rejection_floor_mm < 0.0 {
            return Err(format!(
                "rejection-floor-mm must be non-negative, got {}",
                self.rejection_floor_mm
            ));
        }
        Ok(())
    }

    /// Returns `[lateness, velocity span, acceleration span]` in ms.
    fn spans(&self) -> Result<[i64; 3], String> {
        let parse = |field: &str, text: &str, allow_zero: bool| {
            let ms = parse_duration_ms(text).map_err(|e| format!("{field}: {e}"))?;
            if ms < 0 || (ms == 0 && !allow_zero) {
                return Err(format!("{field} must be positive, got {text:?}"));
            }
            Ok(ms)
        };
        Ok([
            parse("allowed-lateness", &self.allowed_lateness, true)?,
            parse("velocity-span", &self.velocity_span, false)?,
            parse("acceleration-span", &self.acceleration_span, false)?,
        ])
    }

    fn rejection(&self) -> Rejection {
        Rejection {
            k: self.rejection_k,
            floor: self.rejection_floor_mm,
        }
    }
}

/// Improved tangent-angle criteria (`[landslide.tangent_angle]`, hazards.md §5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TangentAngleConfig {
    /// Uniform-velocity angle, blue. Default 45° [C] (§5.3).
    pub blue_deg: f64,
    /// Half-width of the "≈ 45°" band, which counts as blue. Default 2° [U] (§5.3).
    pub blue_tolerance_deg: f64,
    /// Yellow above this angle (strictly), once out of the blue band. Default 45° [C] (§5.3).
    pub yellow_deg: f64,
    /// Orange at or above this angle. Default 80° [C] (§5.3).
    pub orange_deg: f64,
    /// Red at or above this angle. Default 85° [C] (§5.3).
    pub red_deg: f64,
    /// Velocity samples the level must hold before it counts. Default 3 [U] (§5.3).
    pub persist_steps: usize,
    /// Standard errors the velocity must keep above a level's angle for a level above blue;
    /// a level reached only within them counts as blue. Default 3 [U].
    pub noise_k: f64,
}

impl Default for TangentAngleConfig {
    fn default() -> Self {
        Self {
            blue_deg: 45.0,
            blue_tolerance_deg: 2.0,
            yellow_deg: 45.0,
            orange_deg: 80.0,
            red_deg: 85.0,
            persist_steps: 3,
            noise_k: 3.0,
        }
    }
}

impl TangentAngleConfig {
    /// Checks that the angles are ordered within (0°, 90°).
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        let ordered = 0.0 < self.blue_deg
            && self.blue_deg <= self.yellow_deg
            && self.yellow_deg < self.orange_deg
            && self.orange_deg <= self.red_deg
            && self.red_deg < 90.0;
        if !ordered {
            return Err(format!(
                "blue-deg, yellow-deg, orange-deg, red-deg must be ordered in (0, 90), got {}, {}, {}, {}",
                self.blue_deg, self.yellow_deg, self.orange_deg, self.red_deg
            ));
        }
        if !(0.0..self.orange_deg - self.yellow_deg).contains(&self.blue_tolerance_deg) {
            return Err(format!(
                "blue-tolerance-deg must be in [0, orange-deg − yellow-deg), got {}",
                self.blue_tolerance_deg
            ));
        }
        if self.persist_steps == 0 {
            return Err("persist-steps must be at least 1".to_owned());
        }
        if !(self.noise_k >= 0.0 && self.noise_k.is_finite()) {
            return Err(format!(
                "noise-k must be finite and non-negative, got {}",
                self.noise_k
            ));
        }
        Ok(())
    }
}

/// Inverse-velocity forecast settings (`[landslide.inverse_velocity]`, hazards.md §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct InverseVelocityConfig {
    /// Fewest velocity samples in the fitted segment. Default 5 [U] (§5.1 fit-quality gate).
    pub min_points: usize,
    /// Lowest r² of the fit of 1/v against time. Default 0.8 [U] (§5.1; r > 0.8 [C]).
    pub min_r2: f64,
    /// Shortest time the fitted segment must cover, hours. Default 6 [U] (one velocity span).
    pub min_fit_hours: f64,
    /// The velocity must rise over the fitted segment by more than this many times the mean
    /// standard error of its velocities. Default 3 [U].
    pub trend_k: f64,
    /// Orange when the predicted failure is at most this many hours ahead. Default 72 [U].
    pub alert_tf_hours: f64,
    /// Red when the predicted failure is at most this many hours ahead. Default 24 [U].
    pub alarm_tf_hours: f64,
}

impl Default for InverseVelocityConfig {
    fn default() -> Self {
        Self {
            min_points: 5,
            min_r2: 0.8,
            min_fit_hours: 6.0,
            trend_k: 3.0,
            alert_tf_hours: 72.0,
            alarm_tf_hours: 24.0,
        }
    }
}

impl InverseVelocityConfig {
    /// Checks the fit gate and the lead times.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_points < 3 {
            return Err(format!(
                "min-points must be at least 3, got {}",
                self.min_points
            ));
        }
        if !(0.0..=1.0).contains(&self.min_r2) {
            return Err(format!("min-r2 must be in [0, 1], got {}", self.min_r2));
        }
        if !(self.min_fit_hours >= 0.0 && self.min_fit_hours.is_finite()) {
            return Err(format!(
                "min-fit-hours must be finite and non-negative, got {}",
                self.min_fit_hours
            ));
        }
        if !(self.trend_k >= 0.0 && self.trend_k.is_finite()) {
            return Err(format!(
                "trend-k must be finite and non-negative, got {}",
                self.trend_k
            ));
        }
        if !(0.0 < self.alarm_tf_hours && self.alarm_tf_hours <= self.alert_tf_hours) {
            return Err(format!(
                "alarm-tf-hours must be positive and at most alert-tf-hours ({}), got {}",
                self.alert_tf_hours, self.alarm_tf_hours
            ));
        }
        Ok(())
    }
}

/// Rainfall on the slope as an aggravating factor [U] (not in hazards.md §5; §5.3 notes
/// rainfall-driven step-like deformation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RainAggravationConfig {
    /// Window the caller sums the slope's rain over. Default `"24h"` [U].
    pub window: String,
    /// Rain at or above this raises an existing level one step, mm. Default 25 [U]
    /// (the lower bound of GB/T 28592 24-h heavy rain, hazards.md §1.3).
    pub raise_mm: f64,
}

impl Default for RainAggravationConfig {
    fn default() -> Self {
        Self {
            window: "24h".to_owned(),
            raise_mm: 25.0,
        }
    }
}

impl RainAggravationConfig {
    /// Checks the window and the amount.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        match parse_duration_ms(&self.window) {
            Ok(ms) if ms > 0 => {}
            Ok(_) => return Err(format!("window must be positive, got {:?}", self.window)),
            Err(e) => return Err(format!("window: {e}")),
        }
        if self.raise_mm.is_nan() || self.raise_mm <= 0.0 {
            return Err(format!("raise-mm must be positive, got {}", self.raise_mm));
        }
        Ok(())
    }
}

/// The landslide policy: windows, tangent angle, inverse velocity and rain (`[landslide]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LandslidePolicy {
    /// Window and regression settings.
    pub windows: DeformationConfig,
    /// Tangent-angle criteria.
    pub tangent_angle: TangentAngleConfig,
    /// Inverse-velocity forecast gate and lead times.
    pub inverse_velocity: InverseVelocityConfig,
    /// Rain as an aggravating factor.
    pub rain: RainAggravationConfig,
}

impl LandslidePolicy {
    /// Validates every section.
    ///
    /// # Errors
    /// Returns a message naming the section and field, e.g. `tangent-angle.persist-steps …`.
    pub fn validate(&self) -> Result<(), String> {
        let prefixed =
            |section: &str, r: Result<(), String>| r.map_err(|e| format!("{section}.{e}"));
        prefixed("windows", self.windows.validate())?;
        prefixed("tangent-angle", self.tangent_angle.validate())?;
        prefixed("inverse-velocity", self.inverse_velocity.validate())?;
        prefixed("rain", self.rain.validate())
    }
}

// ---------------------------------------------------------------------------------- regression

/// The outlier rule: residual > max(k × 1.4826 × MAD, floor).
#[derive(Debug, Clone, Copy)]
struct Rejection {
    k: f64,
    floor: f64,
}

/// A straight line fitted by least squares to the points it kept.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LineFit {
    slope: f64,
    intercept: f64,
    r2: f64,
    /// Standard error of the slope; infinite with two points, whose residuals say nothing.
    slope_std_error: f64,
    used: usize,
    rejected: usize,
}

/// Returns the median, reordering `values` (selection, not a full sort: the Theil–Sen slopes of
/// an acceleration span number in the ten thousands).
fn median(values: &mut [f64]) -> Option<f64> {
    let len = values.len();
    if len == 0 {
        return None;
    }
    let (below, &mut upper, _) = values.select_nth_unstable_by(len / 2, f64::total_cmp);
    if len % 2 == 1 {
        return Some(upper);
    }
    let lower = below
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .expect("an even count of at least two leaves one value below the middle");
    Some((lower + upper) / 2.0)
}

/// Returns the Theil–Sen line `(slope, intercept)`: the median pairwise slope and the median of
/// `y − slope·x` (Sen 1968). Pairs with equal x are skipped.
fn theil_sen(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    for (i, &(xi, yi)) in points.iter().enumerate() {
        for &(xj, yj) in &points[i + 1..] {
            if xj != xi {
                slopes.push((yj - yi) / (xj - xi));
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut offsets: Vec<f64> = points.iter().map(|&(x, y)| y - slope * x).collect();
    Some((slope, median(&mut offsets)?))
}

/// Returns the ordinary least-squares line with its r² (1 when y is constant and fitted exactly).
fn least_squares(points: &[(f64, f64)]) -> Option<LineFit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        1.0
    };
    let slope_std_error = if points.len() > 2 {
        let residual_sum_of_squares = (syy - slope * sxy).max(0.0);
        (residual_sum_of_squares / (n - 2.0) / sxx).sqrt()
    } else {
        f64::INFINITY
    };
    Some(LineFit {
        slope,
        intercept: mean_y - slope * mean_x,
        r2,
        slope_std_error,
        used: points.len(),
        rejected: 0,
    })
}

/// Fits a line robustly: Theil–Sen, drop the outliers of [`Rejection`], least squares on the rest.
fn robust_line(points: &[(f64, f64)], rule: Rejection) -> Option<LineFit> {
    let (slope, intercept) = theil_sen(points)?;
    let residuals: Vec<f64> = points
        .iter()
        .map(|&(x, y)| (y - slope * x - intercept).abs())
        .collect();
    let mad = median(&mut residuals.clone())?;
    let limit = (rule.k * MAD_TO_SIGMA * mad).max(rule.floor);
    let kept: Vec<(f64, f64)> = points
        .iter()
        .zip(&residuals)
        .filter(|(_, &r)| r <= limit)
        .map(|(&p, _)| p)
        .collect();
    let fit = least_squares(&kept)?;
    Some(LineFit {
        rejected: points.len() - kept.len(),
        ..fit
    })
}

fn days_between(from: EventTime, to: EventTime) -> f64 {
    (to.millis() - from.millis()) as f64 / DAY_MS
}

/// Forecasts further than this from their origin are not representable as useful times.
const HORIZON_DAYS: f64 = 36_525.0;

/// Returns `origin` moved by `days`, or `None` when `days` is not finite or beyond a century
/// (a nearly flat fit extrapolates to absurd times that would overflow the clock).
fn plus_days(origin: EventTime, days: f64) -> Option<EventTime> {
    if !days.is_finite() || days.abs() > HORIZON_DAYS {
        return None;
    }
    // Rounding to the millisecond is far below any forecast's accuracy.
    Some(origin.plus_ms((days * DAY_MS).round() as i64))
}

// ----------------------------------------------------------------------------------- windows

/// Velocity and acceleration of a point at its newest reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Kinematics {
    /// Newest reading's event time.
    pub at: EventTime,
    /// Velocity over the velocity span, mm/d.
    pub velocity_mm_per_day: f64,
    /// Standard error of that velocity, mm/d.
    pub velocity_std_error_mm_per_day: f64,
    /// Slope of the velocity samples over the acceleration span, mm/d²; `None` with too few.
    pub acceleration_mm_per_day2: Option<f64>,
    /// Whether |velocity| reaches the noise floor.
    pub moving: bool,
    /// Readings used by the velocity fit.
    pub points: usize,
    /// Readings the velocity fit rejected as outliers.
    pub rejected: usize,
}

/// What [`DeformationWindow::observe`] did with a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The reading was placed in time order.
    Added,
    /// A reading with the same event time is already held; the new one was ignored.
    Duplicate,
}

/// The velocity fitted over the span ending at one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SpanFit {
    velocity: VelocitySample,
    points: usize,
    rejected: usize,
}

/// The deformation series of one monitoring point, ordered by event time and bounded, with the
/// velocity of every reading kept up to date as readings arrive and leave.
#[derive(Debug, Clone)]
pub struct DeformationWindow {
    point: StationId,
    kind: SensorKind,
    cfg: DeformationConfig,
    /// `[lateness, velocity span, acceleration span]` in ms, parsed once.
    spans: [i64; 3],
    samples: VecDeque<DeformationSample>,
    /// `fits[i]` is the velocity of the span ending at `samples[i]`, `None` when that span has
    /// too few readings or does not reach back over `min-span-coverage` of the span.
    fits: VecDeque<Option<SpanFit>>,
}

impl DeformationWindow {
    /// Creates an empty window for a point.
    ///
    /// # Errors
    /// Returns [`LandslideError::Config`] when `cfg` fails validation.
    pub fn try_new(
        point: StationId,
        kind: SensorKind,
        cfg: DeformationConfig,
    ) -> Result<Self, LandslideError> {
        cfg.validate().map_err(LandslideError::Config)?;
        let spans = cfg.spans().map_err(LandslideError::Config)?;
        Ok(Self {
            point,
            kind,
            samples: VecDeque::with_capacity(cfg.capacity),
            fits: VecDeque::with_capacity(cfg.capacity),
            cfg,
            spans,
        })
    }

    /// Returns the monitoring point.
    pub fn point(&self) -> &StationId {
        &self.point
    }

    /// Returns the instrument kind.
    pub fn kind(&self) -> SensorKind {
        self.kind
    }

    /// Returns the readings held, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &DeformationSample> + '_ {
        self.samples.iter()
    }

    /// Places a reading in time order and refits the velocities of the spans it joins (and, when
    /// the window is full, of the spans the evicted oldest reading leaves); a reading at an event
    /// time already held is ignored.
    ///
    /// # Errors
    /// [`LandslideError::NotFinite`] for a NaN or infinite displacement;
    /// [`LandslideError::TooLate`] when older than the newest reading minus the lateness.
    pub fn observe(&mut self, sample: DeformationSample) -> Result<Observed, LandslideError> {
        if !sample.displacement_mm.is_finite() {
            return Err(LandslideError::NotFinite {
                point: self.point.clone(),
                at: sample.at,
            });
        }
        if let Some(newest) = self.samples.back() {
            let oldest_open = newest.at.plus_ms(-self.spans[0]);
            if sample.at < oldest_open {
                return Err(LandslideError::TooLate {
                    point: self.point.clone(),
                    at: sample.at,
                    oldest_open,
                });
            }
        }
        let Err(index) = self.samples.binary_search_by_key(&sample.at, |s| s.at) else {
            return Ok(Observed::Duplicate);
        };
        self.samples.insert(index, sample);
        self.fits.insert(index, None);
        let evicted = if self.samples.len() > self.cfg.capacity {
            self.fits.pop_front();
            self.samples.pop_front()
        } else {
            None
        };
        self.refit_spans_containing(sample.at);
        if let Some(evicted) = evicted {
            self.refit_spans_containing(evicted.at);
        }
        Ok(Observed::Added)
    }

    /// Refits the velocity of every held reading whose span `[end − span, end]` contains `changed`,
    /// i.e. every reading in `[changed, changed + span]`: the only velocities a reading arriving
    /// or leaving at `changed` can alter.
    fn refit_spans_containing(&mut self, changed: EventTime) {
        let last = changed.plus_ms(self.spans[1]);
        let from = self.samples.partition_point(|s| s.at < changed);
        let to = self.samples.partition_point(|s| s.at <= last);
        for index in from..to {
            self.fits[index] = self.fit_span_ending_at(index);
        }
        debug_assert_eq!(self.fits.len(), self.samples.len());
    }

    /// Returns the robust velocity fit over the span ending at `samples[end]`, or `None` when
    /// the span holds fewer than `min-points` readings or its earliest reading does not reach back
    /// over `min-span-coverage` of the span.
    fn fit_span_ending_at(&self, end: usize) -> Option<SpanFit> {
        let end_at = self.samples[end].at;
        let first = self
            .samples
            .partition_point(|s| s.at < end_at.plus_ms(-self.spans[1]));
        let reach_ms = end_at.millis() - self.samples[first].at.millis();
        if end + 1 - first < self.cfg.min_points
            || (reach_ms as f64) < self.cfg.min_span_coverage * self.spans[1] as f64
        {
            return None;
        }
        let points: Vec<(f64, f64)> = self
            .samples
            .range(first..=end)
            .map(|s| (days_between(end_at, s.at), s.displacement_mm))
            .collect();
        let fit = robust_line(&points, self.cfg.rejection())?;
        Some(SpanFit {
            velocity: VelocitySample {
                at: end_at,
                mm_per_day: fit.slope,
                std_error_mm_per_day: fit.slope_std_error,
            },
            points: fit.used,
            rejected: fit.rejected,
        })
    }

    /// Returns the velocity of every reading whose span gives one, oldest first.
    pub fn velocities(&self) -> Vec<VelocitySample> {
        self.fits.iter().flatten().map(|fit| fit.velocity).collect()
    }

    /// Returns velocity and acceleration at the newest reading, or `None` while its span gives
    /// no velocity.
    pub fn kinematics(&self) -> Option<Kinematics> {
        self.kinematics_over(&self.velocities())
    }

    /// Returns the kinematics at the newest reading given this window's [`Self::velocities`].
    fn kinematics_over(&self, velocities: &[VelocitySample]) -> Option<Kinematics> {
        let fit = (*self.fits.back()?)?;
        let newest = fit.velocity;
        Some(Kinematics {
            at: newest.at,
            velocity_mm_per_day: newest.mm_per_day,
            velocity_std_error_mm_per_day: newest.std_error_mm_per_day,
            acceleration_mm_per_day2: self.acceleration(velocities, newest.at),
            moving: newest.mm_per_day.abs() >= self.cfg.noise_floor_mm_per_day,
            points: fit.points,
            rejected: fit.rejected,
        })
    }

    /// Returns the robust slope of the velocity samples in the acceleration span ending at `end`,
    /// the newest velocity, mm/d².
    fn acceleration(&self, velocities: &[VelocitySample], end: EventTime) -> Option<f64> {
        let start = end.plus_ms(-self.spans[2]);
        let first = velocities.partition_point(|v| v.at < start);
        let points: Vec<(f64, f64)> = velocities[first..]
            .iter()
            .map(|v| (days_between(end, v.at), v.mm_per_day))
            .collect();
        if points.len() < self.cfg.min_points {
            return None;
        }
        // The floor is in mm/d here; velocity noise is of the order of the noise floor.
        let rule = Rejection {
            floor: self.cfg.noise_floor_mm_per_day,
            ..self.cfg.rejection()
        };
        robust_line(&points, rule).map(|fit| fit.slope)
    }
}

// -------------------------------------------------------------------------- inverse velocity

/// Why the inverse-velocity method gave no failure time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FitShortfall {
    /// The newest velocity is below the noise floor.
    NoMovement,
    /// The trailing run of moving velocities is shorter than the gate.
    TooFewPoints {
        /// Velocity samples available.
        points: usize,
        /// Samples required (`inverse-velocity.min-points`).
        required: usize,
    },
    /// The trailing run of moving velocities covers less time than the gate.
    TooShort {
        /// Hours from the run's first velocity to its last.
        hours: f64,
        /// Hours required (`inverse-velocity.min-fit-hours`).
        required_hours: f64,
    },
    /// 1/v does not fall with time (slope b ≥ 0): not accelerating.
    NotAccelerating {
        /// Slope of 1/v against time over the whole run, (d/mm)/d.
        slope: f64,
    },
    /// The fit passed but puts failure more than a century from the onset (b ≈ 0).
    BeyondHorizon {
        /// Fitted t_f in days from the onset of the segment.
        tf_days: f64,
    },
    /// No trailing segment of 1/v reaches the r² gate.
    PoorFit {
        /// Best r² of the falling segments.
        r2: f64,
        /// r² required (`inverse-velocity.min-r2`).
        required: f64,
    },
    /// 1/v falls and fits well, but the velocity rises by no more than its noise: the
    /// acceleration may be an artefact of the readings' noise.
    WithinNoise {
        /// Rise of the velocity over the longest such segment, mm/d.
        rise_mm_per_day: f64,
        /// Rise required: `inverse-velocity.trend-k` × the mean standard error of its
        /// velocities, mm/d.
        required_mm_per_day: f64,
    },
}

/// The inverse-velocity (Fukuzono 1985, α = 2) forecast of the time of failure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FailureForecast {
    /// 1/v = a + b·t fitted well with b < 0; failure at t_f = −a/b (hazards.md §5.1).
    Predicted {
        /// Predicted time of failure.
        at: EventTime,
        /// r² of the fit.
        r2: f64,
        /// Velocity samples in the fitted segment.
        points: usize,
    },
    /// The fit does not pass the gate; no time is published.
    NotEnoughFit {
        /// What failed.
        reason: FitShortfall,
    },
}

impl FailureForecast {
    /// Returns the predicted time, if any.
    pub fn predicted_at(&self) -> Option<EventTime> {
        match self {
            FailureForecast::Predicted { at, .. } => Some(*at),
            FailureForecast::NotEnoughFit { .. } => None,
        }
    }
}

/// Returns the trailing run of velocities at or above `noise_floor` (the accelerating phase
/// starts inside it).
fn moving_run(velocities: &[VelocitySample], noise_floor: f64) -> &[VelocitySample] {
    let still = velocities
        .iter()
        .rposition(|v| v.mm_per_day < noise_floor || v.mm_per_day <= 0.0);
    &velocities[still.map_or(0, |i| i + 1)..]
}

/// Fits 1/v = a + b·t (t in days from the first sample) by least squares.
fn inverse_velocity_fit(segment: &[VelocitySample]) -> Option<LineFit> {
    let origin = segment.first()?.at;
    let points: Vec<(f64, f64)> = segment
        .iter()
        .map(|v| (days_between(origin, v.at), 1.0 / v.mm_per_day))
        .collect();
    least_squares(&points)
}

/// Returns the hours from the first to the last velocity of `segment`.
fn duration_hours(segment: &[VelocitySample]) -> f64 {
    match (segment.first(), segment.last()) {
        (Some(first), Some(last)) => days_between(first.at, last.at) * 24.0,
        _ => 0.0,
    }
}

/// Returns the rise of the velocity over `segment` (least-squares slope of v against t times
/// the segment's duration) and the rise its noise requires (`trend-k` × the mean standard error).
fn velocity_rise(segment: &[VelocitySample], trend_k: f64) -> Option<(f64, f64)> {
    let origin = segment.first()?.at;
    let points: Vec<(f64, f64)> = segment
        .iter()
        .map(|v| (days_between(origin, v.at), v.mm_per_day))
        .collect();
    let fit = least_squares(&points)?;
    let mean_std_error =
        segment.iter().map(|v| v.std_error_mm_per_day).sum::<f64>() / segment.len() as f64;
    let rise = fit.slope * duration_hours(segment) / 24.0;
    Some((rise, trend_k * mean_std_error))
}

/// Forecasts the time of failure from velocity samples (oldest first) by the inverse-velocity
/// method (hazards.md §5.1): the onset of acceleration is the start of the longest trailing
/// segment of moving samples covering `min-fit-hours` whose 1/v fit has b < 0 and
/// r² ≥ `min-r2` (the Qubuga practice of taking the segment with r > 0.8 [C]) and whose velocity
/// rises by more than `trend-k` standard errors [U]; t_f = −a/b.
pub fn forecast_failure(
    velocities: &[VelocitySample],
    noise_floor_mm_per_day: f64,
    cfg: &InverseVelocityConfig,
) -> FailureForecast {
    let not_enough = |reason| FailureForecast::NotEnoughFit { reason };
    match velocities.last() {
        Some(v) if v.mm_per_day >= noise_floor_mm_per_day && v.mm_per_day > 0.0 => {}
        _ => return not_enough(FitShortfall::NoMovement),
    }
    let run = moving_run(velocities, noise_floor_mm_per_day);
    if run.len() < cfg.min_points {
        return not_enough(FitShortfall::TooFewPoints {
            points: run.len(),
            required: cfg.min_points,
        });
    }
    if duration_hours(run) < cfg.min_fit_hours {
        return not_enough(FitShortfall::TooShort {
            hours: duration_hours(run),
            required_hours: cfg.min_fit_hours,
        });
    }
    let mut best_r2 = f64::NEG_INFINITY;
    let mut within_noise = None;
    for start in 0..=run.len() - cfg.min_points {
        let segment = &run[start..];
        // Later starts only shorten the segment.
        if duration_hours(segment) < cfg.min_fit_hours {
            break;
        }
        let Some(fit) = inverse_velocity_fit(segment) else {
            continue;
        };
        if fit.slope >= 0.0 {
            continue;
        }
        best_r2 = best_r2.max(fit.r2);
        if fit.r2 < cfg.min_r2 {
            continue;
        }
        let Some((rise, required)) = velocity_rise(segment, cfg.trend_k) else {
            continue;
        };
        if rise <= required {
            within_noise.get_or_insert(FitShortfall::WithinNoise {
                rise_mm_per_day: rise,
                required_mm_per_day: required,
            });
            continue;
        }
        let tf_days = -fit.intercept / fit.slope;
        let Some(at) = plus_days(segment[0].at, tf_days) else {
            return not_enough(FitShortfall::BeyondHorizon { tf_days });
        };
        return FailureForecast::Predicted {
            at,
            r2: fit.r2,
            points: segment.len(),
        };
    }
    match within_noise {
        Some(reason) => not_enough(reason),
        None => shortfall(run, best_r2, cfg),
    }
}

fn shortfall(run: &[VelocitySample], best_r2: f64, cfg: &InverseVelocityConfig) -> FailureForecast {
    let reason = if best_r2.is_finite() {
        FitShortfall::PoorFit {
            r2: best_r2,
            required: cfg.min_r2,
        }
    } else {
        FitShortfall::NotAccelerating {
            slope: inverse_velocity_fit(run).map_or(0.0, |fit| fit.slope),
        }
    };
    FailureForecast::NotEnoughFit { reason }
}

// ------------------------------------------------------------------------------------ Saito

/// Returns Saito's (1969) three-point time of rupture for t1 < t2 < t3 with equal displacement
/// increments: t_r = (t2² − t1·t3) / (2·t2 − t1 − t3) (hazards.md §5.2 [S]). `None` unless the
/// times are ordered and the second interval is shorter than the first (accelerating).
pub fn saito_three_point(t1: f64, t2: f64, t3: f64) -> Option<f64> {
    let denominator = 2.0 * t2 - t1 - t3;
    if !(t1 < t2 && t2 < t3 && denominator > 0.0) {
        return None;
    }
    // Shifted to t1 = 0 for precision: t_r − t1 = (t2−t1)² / [(t2−t1) − (t3−t2)] (same section).
    let first = t2 - t1;
    Some(t1 + first * first / denominator)
}

/// Returns Saito's forecast over readings (oldest first): t1 the first, t3 the last, t2 where
/// the displacement reaches the midpoint (linear interpolation between readings).
pub fn saito_forecast(samples: &[DeformationSample]) -> Option<EventTime> {
    let (first, last) = (samples.first()?, samples.last()?);
    let mid = (first.displacement_mm + last.displacement_mm) / 2.0;
    if last.displacement_mm <= first.displacement_mm {
        return None;
    }
    let above = samples.iter().position(|s| s.displacement_mm >= mid)?;
    let below = &samples[above.checked_sub(1)?];
    let upper = &samples[above];
    let share = (mid - below.displacement_mm) / (upper.displacement_mm - below.displacement_mm);
    let t2 = days_between(first.at, below.at) + share * days_between(below.at, upper.at);
    let t3 = days_between(first.at, last.at);
    saito_three_point(0.0, t2, t3).and_then(|tr| plus_days(first.at, tr))
}

// ----------------------------------------------------------------------------- tangent angle

/// Returns the improved tangent angle α = arctan(v / v0) in degrees (hazards.md §5.3 [S]).
pub fn tangent_angle_deg(velocity_mm_per_day: f64, v0_mm_per_day: f64) -> f64 {
    (velocity_mm_per_day / v0_mm_per_day).atan().to_degrees()
}

/// Returns the level of a tangent angle (hazards.md §5.3 criteria [C]): red ≥ 85°, orange ≥ 80°,
/// yellow > 45° out of the band, blue within 45° ± tolerance [U], none below.
///
/// The band takes precedence over the strict "45° < α" of the yellow criterion, so
/// (45°, 47°] is blue by default: "≈ 45°" would otherwise be an empty band above 45°.
pub fn tangent_level(angle_deg: f64, cfg: &TangentAngleConfig) -> Option<Level> {
    if angle_deg >= cfg.red_deg {
        Some(Level::Red)
    } else if angle_deg >= cfg.orange_deg {
        Some(Level::Orange)
    } else if angle_deg > cfg.yellow_deg + cfg.blue_tolerance_deg {
        Some(Level::Yellow)
    } else if angle_deg >= cfg.blue_deg - cfg.blue_tolerance_deg {
        Some(Level::Blue)
    } else {
        None
    }
}

/// Returns the tangent level of one velocity, noise-aware [U]: when the velocity has a level,
/// that level is the one the velocity less `noise-k` standard errors still reaches, and at least
/// blue (the slope moves, but faster than v0 cannot be told apart from the noise).
fn noise_aware_tangent_level(
    velocity: &VelocitySample,
    v0_mm_per_day: f64,
    cfg: &TangentAngleConfig,
) -> Option<Level> {
    let point = tangent_level(tangent_angle_deg(velocity.mm_per_day, v0_mm_per_day), cfg)?;
    let lower = velocity.mm_per_day - cfg.noise_k * velocity.std_error_mm_per_day;
    let cleared = tangent_level(tangent_angle_deg(lower, v0_mm_per_day), cfg);
    debug_assert!(
        cleared <= Some(point),
        "a lower velocity never has a higher level"
    );
    Some(cleared.map_or(Level::Blue, |level| level.max(Level::Blue)))
}

/// Returns the lowest noise-aware tangent level over the last `persist-steps` velocities, so a
/// level counts only once it has held (hazards.md §5.3 guidance); `None` with fewer samples.
fn persistent_tangent_level(
    velocities: &[VelocitySample],
    v0_mm_per_day: f64,
    cfg: &TangentAngleConfig,
) -> Option<Level> {
    let tail = velocities.get(velocities.len().checked_sub(cfg.persist_steps)?..)?;
    tail.iter()
        .map(|v| noise_aware_tangent_level(v, v0_mm_per_day, cfg))
        .min()
        .flatten()
}

// ------------------------------------------------------------------------------- assessment

/// What the caller knows about the slope beyond the point's own readings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlopeContext {
    /// Mean velocity of the constant-velocity stage, mm/d (site survey, InSAR or the
    /// `v0_window_days` history; hazards.md §5.3–5.4).
    pub v0_mm_per_day: f64,
    /// Rain over the slope in the rain window, mm.
    pub recent_rain_mm: f64,
}

/// Why a level was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandslideEvidence {
    /// Velocity and acceleration at the newest reading.
    pub kinematics: Kinematics,
    /// Tangent angle of the newest velocity, degrees; `None` without a positive v0.
    pub tangent_angle_deg: Option<f64>,
    /// Noise-aware tangent-angle level held for `persist-steps` samples.
    pub tangent_level: Option<Level>,
    /// Inverse-velocity forecast.
    pub forecast: FailureForecast,
    /// Level from the forecast's lead time.
    pub forecast_level: Option<Level>,
    /// Saito's three-point forecast over the moving run, for comparison (does not set the level).
    pub saito: Option<EventTime>,
    /// Rain over the slope, mm.
    pub rain_mm: f64,
    /// Whether the rain raised the level one step.
    pub rain_raised: bool,
}

/// The landslide assessment of one point at its newest reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandslideAssessment {
    /// Monitoring point.
    pub point: StationId,
    /// Event time of the newest reading.
    pub at: EventTime,
    /// Resulting level; `None` is no warning.
    pub level: Option<Level>,
    /// Why.
    pub evidence: LandslideEvidence,
}

/// Returns the level of a forecast lead time: red within `alarm-tf-hours`, orange within
/// `alert-tf-hours` [U] (thresholds.toml `[landslide.inverse_velocity]`).
pub fn forecast_level(
    forecast: &FailureForecast,
    now: EventTime,
    cfg: &InverseVelocityConfig,
) -> Option<Level> {
    let lead_h = (forecast.predicted_at()?.millis() - now.millis()) as f64 / HOUR_MS as f64;
    if lead_h <= cfg.alarm_tf_hours {
        Some(Level::Red)
    } else if lead_h <= cfg.alert_tf_hours {
        Some(Level::Orange)
    } else {
        None
    }
}

/// Returns the next level up, red staying red.
fn raised(level: Level) -> Level {
    match level {
        Level::Blue => Level::Yellow,
        Level::Yellow => Level::Orange,
        Level::Orange | Level::Red => Level::Red,
    }
}

/// Assesses a point at its newest reading: kinematics, tangent angle, forecasts, rain.
/// Returns `None` while the newest reading's span gives no velocity.
pub fn assess(
    window: &DeformationWindow,
    slope: &SlopeContext,
    policy: &LandslidePolicy,
) -> Option<LandslideAssessment> {
    let velocities = window.velocities();
    let kinematics = window.kinematics_over(&velocities)?;
    let noise = window.cfg.noise_floor_mm_per_day;
    let forecast = forecast_failure(&velocities, noise, &policy.inverse_velocity);
    let has_v0 = slope.v0_mm_per_day > 0.0;
    let tangent =
        has_v0.then(|| tangent_angle_deg(kinematics.velocity_mm_per_day, slope.v0_mm_per_day));
    let tangent_lvl = has_v0
        .then(|| persistent_tangent_level(&velocities, slope.v0_mm_per_day, &policy.tangent_angle))
        .flatten();
    let forecast_lvl = forecast_level(&forecast, kinematics.at, &policy.inverse_velocity);
    let base = if kinematics.moving {
        tangent_lvl.max(forecast_lvl)
    } else {
        None
    };
    let rain_raised = base.is_some() && slope.recent_rain_mm >= policy.rain.raise_mm;
    let level = if rain_raised { base.map(raised) } else { base };
    Some(LandslideAssessment {
        point: window.point.clone(),
        at: kinematics.at,
        level,
        evidence: LandslideEvidence {
            kinematics,
            tangent_angle_deg: tangent,
            tangent_level: tangent_lvl,
            forecast,
            forecast_level: forecast_lvl,
            saito: saito_over_run(window, &velocities, noise),
            rain_mm: slope.recent_rain_mm,
            rain_raised,
        },
    })
}

/// Saito's forecast over the readings since the moving run began.
fn saito_over_run(
    window: &DeformationWindow,
    velocities: &[VelocitySample],
    noise_floor: f64,
) -> Option<EventTime> {
    let start = moving_run(velocities, noise_floor).first()?.at;
    let samples: Vec<DeformationSample> = window
        .samples()
        .filter(|s| s.at >= start)
        .copied()
        .collect();
    saito_forecast(&samples)
}

#[cfg(test)]
mod tests;
