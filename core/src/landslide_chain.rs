//! The landslide chain of a node's monitored slopes: deformation readings projected on each
//! point's sliding direction into its window, every point assessed at every tick (hazards.md §5)
//! with the rain on its slope, the slope at its highest point level, and one warning thread per
//! slope.
//!
//! # Rain on the slope
//! The caller passes, per basin, the basin's areal rainfall over the landslide policy's rain
//! window (`[landslide.rain] window`, default 24 h: the areal sum of the stations' 1440-min
//! windows). A slope takes the rain of its basin; a basin missing from the map counts as dry.

use std::collections::BTreeMap;

use crate::ids::{BasinId, SlopeId, StationId};
use crate::landslide::{
    assess, DeformationSample, DeformationWindow, FailureForecast, FitShortfall,
    LandslideAssessment, LandslideError, LandslidePolicy, Observed, SlopeContext,
    TangentAngleConfig,
};
use crate::lifecycle::{LifecyclePolicy, WarningThread};
use crate::observation::{Observation, Outcome, Reading, RejectReason};
use crate::region::MonitoredSlope;
use crate::time::{EventTime, HOUR_MS};
use crate::warning::{Evidence, Hazard, Level, WarningEvent};

/// One slope: what the assessment needs, its points in file order, and its warning thread.
#[derive(Debug, Clone)]
struct SlopeState {
    basin: BasinId,
    v0_mm_per_day: f64,
    points: Vec<StationId>,
    thread: WarningThread,
}

/// A point's window and the sliding direction its readings are projected on.
#[derive(Debug, Clone)]
struct PointState {
    /// (sin, cos) of the azimuth: the east and north weights of the projection.
    along: (f64, f64),
    window: DeformationWindow,
}

/// The landslide warnings of a set of monitored slopes.
#[derive(Debug, Clone)]
pub struct LandslideChain {
    policy: LandslidePolicy,
    slopes: BTreeMap<SlopeId, SlopeState>,
    points: BTreeMap<StationId, PointState>,
}

impl LandslideChain {
    /// Creates the chain of `slopes` under `policy`; each slope's warnings reach its
    /// [`MonitoredSlope::area_codes`].
    ///
    /// # Errors
    /// Returns [`LandslideError::Config`] for a policy that fails validation, or for a slope or
    /// point id that repeats.
    pub fn try_new(
        policy: LandslidePolicy,
        slopes: &[MonitoredSlope],
    ) -> Result<Self, LandslideError> {
        policy.validate().map_err(LandslideError::Config)?;
        let mut chain = Self {
            policy,
            slopes: BTreeMap::new(),
            points: BTreeMap::new(),
        };
        for slope in slopes {
            for point in &slope.points {
                let window = DeformationWindow::try_new(
                    point.id.clone(),
                    point.sensor,
                    chain.policy.windows.clone(),
                )?;
                let azimuth = point.azimuth_deg.to_radians();
                let state = PointState {
                    along: (azimuth.sin(), azimuth.cos()),
                    window,
                };
                if chain.points.insert(point.id.clone(), state).is_some() {
                    return Err(LandslideError::Config(format!(
                        "point {} appears twice",
                        point.id
                    )));
                }
            }
            let state = SlopeState {
                basin: slope.basin.clone(),
                v0_mm_per_day: slope.v0_mm_per_day,
                points: slope.points.iter().map(|point| point.id.clone()).collect(),
                thread: WarningThread::new(
                    Hazard::Landslide,
                    slope.id.as_str(),
                    slope.area_codes(),
                ),
            };
            if chain.slopes.insert(slope.id.clone(), state).is_some() {
                return Err(LandslideError::Config(format!(
                    "slope {} appears twice",
                    slope.id
                )));
            }
        }
        Ok(chain)
    }

    /// Takes one deformation reading of a known point: the horizontal displacement projected on
    /// the point's sliding direction (`east·sin(azimuth) + north·cos(azimuth)`; `up` is not
    /// used) joins the point's window. A reading of another kind is malformed here; an unknown
    /// point, a non-finite displacement (out of range), a reading older than the window's
    /// lateness (too late) and a second reading at the same event time (duplicate) are rejected.
    pub fn observe(&mut self, observation: &Observation) -> Outcome {
        let Reading::Deformation {
            east_mm, north_mm, ..
        } = observation.reading
        else {
            return Outcome::rejected(
                RejectReason::Malformed,
                format!(
                    "a {} reading is not a deformation",
                    observation.reading.kind()
                ),
            );
        };
        let Some(point) = self.points.get_mut(&observation.station) else {
            return Outcome::rejected(
                RejectReason::UnknownStation,
                format!(
                    "{} is not a monitoring point of a slope",
                    observation.station
                ),
            );
        };
        let sample = DeformationSample {
            at: observation.event_time,
            displacement_mm: east_mm * point.along.0 + north_mm * point.along.1,
        };
        match point.window.observe(sample) {
            Ok(Observed::Added) => Outcome::Applied,
            Ok(Observed::Duplicate) => Outcome::rejected(
                RejectReason::Duplicate,
                format!(
                    "point {}: a reading at {} is already held",
                    observation.station,
                    observation.event_time.to_beijing_rfc3339()
                ),
            ),
            Err(e @ LandslideError::TooLate { .. }) => {
                Outcome::rejected(RejectReason::TooLate, e.to_string())
            }
            Err(e) => Outcome::rejected(RejectReason::OutOfRange, e.to_string()),
        }
    }

    /// Assesses every point at `tick` with the rain on its slope (`rain_by_basin`: areal rain
    /// over the policy's rain window, mm) and returns the warning versions to emit, in slope
    /// order. A slope's level is the highest level of its points; the evidence is that of the
    /// point that set it (the first in file order on ties).
    ///
    /// The level has no deadband of its own: the lifecycle's off-delay and minimum dwell keep it
    /// from flapping, so the raw level is also the held one.
    pub fn on_tick(
        &mut self,
        tick: EventTime,
        rain_by_basin: &BTreeMap<BasinId, f64>,
        policy: &LifecyclePolicy,
    ) -> Vec<WarningEvent> {
        let mut emitted = Vec::new();
        for slope in self.slopes.values_mut() {
            let rain_mm = rain_by_basin
                .get(&slope.basin)
                .copied()
                .filter(|mm| mm.is_finite())
                .unwrap_or(0.0);
            let context = SlopeContext {
                v0_mm_per_day: slope.v0_mm_per_day,
                recent_rain_mm: rain_mm,
            };
            let mut decisive: Option<LandslideAssessment> = None;
            for point in &slope.points {
                let Some(state) = self.points.get(point) else {
                    continue;
                };
                let Some(assessment) = assess(&state.window, &context, &self.policy) else {
                    continue;
                };
                if decisive.as_ref().is_none_or(|d| assessment.level > d.level) {
                    decisive = Some(assessment);
                }
            }
            let level = decisive.as_ref().and_then(|d| d.level);
            let evidence = decisive
                .as_ref()
                .map(|d| evidence_of(d, slope.v0_mm_per_day, tick, &self.policy))
                .unwrap_or_default();
            emitted.extend(
                slope
                    .thread
                    .on_assessment(tick, level, level, &evidence, policy),
            );
        }
        emitted
    }

    /// Returns the last version of every active landslide warning, in slope order.
    pub fn active(&self) -> Vec<WarningEvent> {
        self.slopes
            .values()
            .filter_map(|slope| slope.thread.active().cloned())
            .collect()
    }
}

/// The lowest tangent angle of `level` (the blue band's lower edge when there is no level).
fn tangent_floor_deg(level: Option<Level>, cfg: &TangentAngleConfig) -> f64 {
    match level {
        Some(Level::Red) => cfg.red_deg,
        Some(Level::Orange) => cfg.orange_deg,
        Some(Level::Yellow) => cfg.yellow_deg + cfg.blue_tolerance_deg,
        Some(Level::Blue) | None => cfg.blue_deg - cfg.blue_tolerance_deg,
    }
}

/// Returns the text and the (value, threshold) pair of a missing failure-time forecast.
fn shortfall_text(shortfall: &FitShortfall, velocity: f64, noise_floor: f64) -> (String, f64, f64) {
    match *shortfall {
        FitShortfall::NoMovement => (
            "no movement above the noise floor".to_owned(),
            velocity,
            noise_floor,
        ),
        FitShortfall::TooFewPoints { points, required } => (
            format!("{points} moving velocities, {required} required"),
            points as f64,
            required as f64,
        ),
        FitShortfall::TooShort {
            hours,
            required_hours,
        } => (
            format!("moving velocities over {hours:.1} h, {required_hours:.1} h required"),
            hours,
            required_hours,
        ),
        FitShortfall::NotAccelerating { slope } => (
            "1/v does not fall with time (not accelerating)".to_owned(),
            slope,
            0.0,
        ),
        FitShortfall::BeyondHorizon { tf_days } => (
            format!("the fit puts failure {tf_days:.0} days away"),
            tf_days,
            0.0,
        ),
        FitShortfall::PoorFit { r2, required } => (
            format!("best r² {r2:.2} of the 1/v fit, {required:.2} required"),
            r2,
            required,
        ),
        FitShortfall::WithinNoise {
            rise_mm_per_day,
            required_mm_per_day,
        } => (
            format!(
                "velocity rise {rise_mm_per_day:.2} mm/d within the noise, {required_mm_per_day:.2} mm/d required"
            ),
            rise_mm_per_day,
            required_mm_per_day,
        ),
    }
}

/// The assessment of the deciding point as warning evidence, all from `point`:
/// - `velocity_mm_per_day` against the slope's v0 (the tangent angle is atan(v / v0));
/// - `acceleration_mm_per_day2` against 0, when the acceleration span holds enough velocities;
/// - `tangent_angle_deg` against the lowest angle of the tangent level reached;
/// - `predicted_failure_at <time>`: hours from `tick` to the predicted failure against
///   `alert-tf-hours`, and `inverse_velocity_r2` against `min-r2`; or, without a forecast,
///   `no reliable failure-time forecast: <shortfall>` with the shortfall's numbers;
/// - `rain_on_slope_<window>_mm` against `raise-mm`, and `rain_raised_level` (1 when the rain
///   raised the level one step, else 0) against 1.
fn evidence_of(
    assessment: &LandslideAssessment,
    v0_mm_per_day: f64,
    tick: EventTime,
    policy: &LandslidePolicy,
) -> Vec<Evidence> {
    let item = |quantity: String, value: f64, threshold: f64| Evidence {
        quantity,
        value,
        threshold,
        completeness: 1.0,
        stations: vec![assessment.point.to_string()],
    };
    let found = &assessment.evidence;
    let velocity = found.kinematics.velocity_mm_per_day;
    let mut out = vec![item(
        "velocity_mm_per_day".to_owned(),
        velocity,
        v0_mm_per_day,
    )];
    if let Some(acceleration) = found.kinematics.acceleration_mm_per_day2 {
        out.push(item(
            "acceleration_mm_per_day2".to_owned(),
            acceleration,
            0.0,
        ));
    }
    if let Some(angle) = found.tangent_angle_deg {
        let floor = tangent_floor_deg(found.tangent_level, &policy.tangent_angle);
        out.push(item("tangent_angle_deg".to_owned(), angle, floor));
    }
    match &found.forecast {
        FailureForecast::Predicted { at, r2, .. } => {
            let lead_h = (at.millis() - tick.millis()) as f64 / HOUR_MS as f64;
            out.push(item(
                format!("predicted_failure_at {}", at.to_beijing_rfc3339()),
                lead_h,
                policy.inverse_velocity.alert_tf_hours,
            ));
            out.push(item(
                "inverse_velocity_r2".to_owned(),
                *r2,
                policy.inverse_velocity.min_r2,
            ));
        }
        FailureForecast::NotEnoughFit { reason } => {
            let (text, value, threshold) =
                shortfall_text(reason, velocity, policy.windows.noise_floor_mm_per_day);
            out.push(item(
                format!("no reliable failure-time forecast: {text}"),
                value,
                threshold,
            ));
        }
    }
    out.push(item(
        format!("rain_on_slope_{}_mm", policy.rain.window),
        found.rain_mm,
        policy.rain.raise_mm,
    ));
    out.push(item(
        "rain_raised_level".to_owned(),
        f64::from(u8::from(found.rain_raised)),
        1.0,
    ));
    out
}

#[cfg(test)]
mod tests;
