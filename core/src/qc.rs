//! Real-time quality control of rain-gauge and stage readings (hazards.md §8), as pure checks.
//!
//! Each check returns `Ok(())` or a [`QcError`] whose [`QcError::reason`] is the dead-letter reason
//! code. The station state ([`crate::station_windows`]) runs them in the order future timestamp,
//! range, rate, persistence, after deduplication and the lateness check.

use serde::{Deserialize, Serialize};

use crate::observation::{Outcome, RejectReason};
use crate::time::{EventTime, HOUR_MS};

/// Millimetres per inch, to turn the "2·√t inches" improbable-extreme rule into millimetres.
const MM_PER_INCH: f64 = 25.4;

/// Tunables of the quality-control checks; defaults are those of `thresholds.toml` `[qc.rain]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct QcConfig {
    /// Q0: an increment over `t` minutes above `coef·√t` inches is improbable (2.0, i.e.
    /// 50.8·√t mm) [C] (BAMS 1963 via hazards.md §8).
    pub improbable_inches_coef: f64,
    /// Q1: the largest plausible mean intensity over a report interval, in mm/min (40.0) [U].
    pub max_mm_per_min: f64,
    /// Q5: this many consecutive identical non-zero increments mark a stuck sensor; the report
    /// that completes the run and the identical ones after it are rejected (6) [U].
    pub stuck_identical_steps: u32,
    /// Q5: increments below this, in mm, never count towards a stuck run: one or a few bucket
    /// tips per report is steady light rain (the real USGS drizzle of
    /// core/tests/real_rain_gauges.rs repeats 0.254 mm for hours) (1.0) [U].
    pub stuck_min_mm: f64,
    /// Lowest plausible stage in metres (−5.0) [U].
    pub stage_min_m: f64,
    /// Highest plausible stage in metres (100.0) [U].
    pub stage_max_m: f64,
    /// Fastest plausible stage change against the neighbouring accepted reading, in m/h (5.0) [U].
    pub max_stage_rate_m_per_h: f64,
}

impl Default for QcConfig {
    fn default() -> Self {
        Self {
            improbable_inches_coef: 2.0,
            max_mm_per_min: 40.0,
            stuck_identical_steps: 6,
            stuck_min_mm: 1.0,
            stage_min_m: -5.0,
            stage_max_m: 100.0,
            max_stage_rate_m_per_h: 5.0,
        }
    }
}

impl QcConfig {
    /// Checks that every field is usable.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(format!("qc.{name} must be a positive number, got {value}"))
            }
        };
        positive("improbable-inches-coef", self.improbable_inches_coef)?;
        positive("max-mm-per-min", self.max_mm_per_min)?;
        positive("max-stage-rate-m-per-h", self.max_stage_rate_m_per_h)?;
        positive("stuck-min-mm", self.stuck_min_mm)?;
        if self.stuck_identical_steps < 2 {
            return Err(format!(
                "qc.stuck-identical-steps must be at least 2, got {}",
                self.stuck_identical_steps
            ));
        }
        if !(self.stage_min_m.is_finite()
            && self.stage_max_m.is_finite()
            && self.stage_min_m < self.stage_max_m)
        {
            return Err(format!(
                "qc.stage-min-m ({}) must be finite and below qc.stage-max-m ({})",
                self.stage_min_m, self.stage_max_m
            ));
        }
        Ok(())
    }

    /// Returns the Q0 upper bound in mm for an increment over `minutes` minutes.
    pub fn rain_max_mm(&self, minutes: f64) -> f64 {
        self.improbable_inches_coef * MM_PER_INCH * minutes.max(0.0).sqrt()
    }
}

/// Why a reading failed quality control.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QcError {
    /// The event time lies too far ahead of the time the reading was received.
    #[error(
        "event time {event_time} is more than {max_future_ms} ms after receipt at {received_at}"
    )]
    FutureTimestamp {
        /// Event time of the reading.
        event_time: EventTime,
        /// Time the broker received it.
        received_at: EventTime,
        /// Largest allowed lead, in milliseconds.
        max_future_ms: i64,
    },
    /// Q0: a rain increment is negative, not a number or above the improbable-extreme bound.
    #[error("rainfall {mm} mm over {minutes} min is outside 0..={max_mm:.1} mm")]
    RainOutOfRange {
        /// Reported increment.
        mm: f64,
        /// Length of the report interval in minutes.
        minutes: f64,
        /// Q0 bound for that interval.
        max_mm: f64,
    },
    /// Q1: the mean intensity over the interval is implausible.
    #[error("rainfall {mm} mm over {minutes} min exceeds {max_mm_per_min} mm/min")]
    RainIntensity {
        /// Reported increment.
        mm: f64,
        /// Length of the report interval in minutes.
        minutes: f64,
        /// Configured intensity limit.
        max_mm_per_min: f64,
    },
    /// Q5: the same non-zero increment repeated too many times in a row.
    #[error("rainfall {mm} mm repeated {count} times in a row (limit {limit})")]
    StuckSensor {
        /// The repeated increment.
        mm: f64,
        /// Length of the run including this report.
        count: u32,
        /// Run length that marks a stuck sensor.
        limit: u32,
    },
    /// A stage outside the plausible range.
    #[error("stage {metres} m is outside {min_m}..={max_m} m")]
    StageOutOfRange {
        /// Reported stage.
        metres: f64,
        /// Lowest plausible stage.
        min_m: f64,
        /// Highest plausible stage.
        max_m: f64,
    },
    /// A stage change faster than plausible against a neighbouring accepted reading.
    #[error(
        "stage moved from {from_m} m at {from} to {to_m} m at {to}, faster than {max_m_per_h} m/h"
    )]
    StageRate {
        /// Time of the accepted neighbour.
        from: EventTime,
        /// Stage of the accepted neighbour.
        from_m: f64,
        /// Time of the new reading.
        to: EventTime,
        /// Stage of the new reading.
        to_m: f64,
        /// Configured rate limit.
        max_m_per_h: f64,
    },
}

impl QcError {
    /// Returns the dead-letter reason of this failure.
    pub fn reason(&self) -> RejectReason {
        match self {
            QcError::FutureTimestamp { .. } => RejectReason::FutureTimestamp,
            QcError::RainOutOfRange { .. } | QcError::StageOutOfRange { .. } => {
                RejectReason::OutOfRange
            }
            QcError::RainIntensity { .. } | QcError::StageRate { .. } => RejectReason::RateOfChange,
            QcError::StuckSensor { .. } => RejectReason::StuckSensor,
        }
    }
}

impl From<QcError> for Outcome {
    fn from(error: QcError) -> Self {
        Outcome::rejected(error.reason(), error.to_string())
    }
}

/// Rejects an event time more than `max_future_ms` after `received_at`.
///
/// # Errors
/// Returns [`QcError::FutureTimestamp`].
pub fn check_future(
    event_time: EventTime,
    received_at: EventTime,
    max_future_ms: i64,
) -> Result<(), QcError> {
    if event_time.millis() > received_at.millis() + max_future_ms {
        return Err(QcError::FutureTimestamp {
            event_time,
            received_at,
            max_future_ms,
        });
    }
    Ok(())
}

/// Q0: accepts `0 ≤ mm ≤ 50.8·√(Δt_min)` (with the default coefficient) for an interval of
/// `interval_s` seconds.
///
/// # Errors
/// Returns [`QcError::RainOutOfRange`], also for a value that is not a number.
pub fn check_rain_range(cfg: &QcConfig, mm: f64, interval_s: u32) -> Result<(), QcError> {
    let minutes = f64::from(interval_s) / 60.0;
    let max_mm = cfg.rain_max_mm(minutes);
    if !(0.0..=max_mm).contains(&mm) {
        return Err(QcError::RainOutOfRange {
            mm,
            minutes,
            max_mm,
        });
    }
    Ok(())
}

/// Q1: accepts a mean intensity `mm / Δt_min` up to `max_mm_per_min`. Call after
/// [`check_rain_range`], which has already rejected negative and non-numeric values.
///
/// # Errors
/// Returns [`QcError::RainIntensity`].
pub fn check_rain_intensity(cfg: &QcConfig, mm: f64, interval_s: u32) -> Result<(), QcError> {
    let minutes = f64::from(interval_s) / 60.0;
    // Written as a product so that a zero interval with zero rain passes instead of dividing 0 by 0.
    if mm > cfg.max_mm_per_min * minutes {
        return Err(QcError::RainIntensity {
            mm,
            minutes,
            max_mm_per_min: cfg.max_mm_per_min,
        });
    }
    Ok(())
}

/// Rain is kept in whole micrometres (thousandths of a millimetre): here and in the station
/// windows.
pub const MICROMETRES_PER_MM: f64 = 1000.0;

/// Q5 state: the current run of identical increments at or above the floor, in integer
/// micrometres.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StuckRun {
    micrometres: i32,
    count: u32,
}

impl StuckRun {
    /// Returns the run after one more accepted increment of `micrometres`, or the Q5 failure
    /// when the run reaches `cfg.stuck_identical_steps`. A different value, or one below
    /// `cfg.stuck_min_mm` (zero included), starts over.
    ///
    /// # Errors
    /// Returns [`QcError::StuckSensor`]; the caller then keeps the old run, so every further
    /// identical increment is rejected too.
    pub fn next(self, micrometres: i32, cfg: &QcConfig) -> Result<StuckRun, QcError> {
        let mm = f64::from(micrometres) / MICROMETRES_PER_MM;
        let run = if mm < cfg.stuck_min_mm {
            StuckRun::default()
        } else if micrometres == self.micrometres {
            StuckRun {
                micrometres,
                count: self.count + 1,
            }
        } else {
            StuckRun {
                micrometres,
                count: 1,
            }
        };
        if run.count >= cfg.stuck_identical_steps {
            return Err(QcError::StuckSensor {
                mm,
                count: run.count,
                limit: cfg.stuck_identical_steps,
            });
        }
        Ok(run)
    }
}

/// Accepts a stage within the configured plausible range.
///
/// # Errors
/// Returns [`QcError::StageOutOfRange`], also for a value that is not a number.
pub fn check_stage_range(cfg: &QcConfig, metres: f64) -> Result<(), QcError> {
    if !(cfg.stage_min_m..=cfg.stage_max_m).contains(&metres) {
        return Err(QcError::StageOutOfRange {
            metres,
            min_m: cfg.stage_min_m,
            max_m: cfg.stage_max_m,
        });
    }
    Ok(())
}

/// Accepts a stage `to` unless it moved faster than `max_stage_rate_m_per_h` from the accepted
/// reading `from` (which may be earlier or later in event time). Two readings at the same instant
/// must agree.
///
/// # Errors
/// Returns [`QcError::StageRate`].
pub fn check_stage_rate(
    cfg: &QcConfig,
    from: (EventTime, f64),
    to: (EventTime, f64),
) -> Result<(), QcError> {
    let elapsed_h = (to.0.millis() - from.0.millis()).abs() as f64 / HOUR_MS as f64;
    let change_m = (to.1 - from.1).abs();
    // Compared as a product so that equal instants need equal stages without dividing by zero.
    if change_m > cfg.max_stage_rate_m_per_h * elapsed_h {
        return Err(QcError::StageRate {
            from: from.0,
            from_m: from.1,
            to: to.0,
            to_m: to.1,
            max_m_per_h: cfg.max_stage_rate_m_per_h,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MINUTE_MS;

    /// TV8.1 (hazards.md §8): the Q0 bounds to 0.1 mm.
    #[test]
    fn tv8_1_improbable_extreme_bounds() {
        let cfg = QcConfig::default();
        for (minutes, bound) in [
            (1.0, 50.8),
            (10.0, 160.6),
            (60.0, 393.5),
            (180.0, 681.6),
            (1440.0, 1927.7),
        ] {
            let max = cfg.rain_max_mm(minutes);
            assert_eq!((max * 10.0).round() / 10.0, bound, "{minutes} min");
        }
    }

    /// TV8.1: a 10-min report of 200 mm fails Q0; a 1-min report of 45 mm passes Q0 and fails Q1.
    #[test]
    fn tv8_1_range_and_intensity_failures() {
        let cfg = QcConfig::default();
        let err = check_rain_range(&cfg, 200.0, 600).unwrap_err();
        assert_eq!(err.reason(), RejectReason::OutOfRange);
        check_rain_range(&cfg, 160.6, 600).unwrap();

        check_rain_range(&cfg, 45.0, 60).unwrap();
        let err = check_rain_intensity(&cfg, 45.0, 60).unwrap_err();
        assert_eq!(err.reason(), RejectReason::RateOfChange);
        check_rain_intensity(&cfg, 40.0, 60).unwrap();
    }

    #[test]
    fn negative_and_non_numeric_rain_is_out_of_range() {
        let cfg = QcConfig::default();
        assert!(check_rain_range(&cfg, -0.1, 300).is_err());
        assert!(check_rain_range(&cfg, f64::NAN, 300).is_err());
        check_rain_range(&cfg, 0.0, 0).unwrap();
        check_rain_intensity(&cfg, 0.0, 0).unwrap();
        assert!(check_rain_range(&cfg, 0.1, 0).is_err());
    }

    /// Q5: the 6th identical increment at or above the floor and later ones fail; a different
    /// value resets.
    #[test]
    fn stuck_sensor_after_six_identical_increments() {
        let cfg = QcConfig::default();
        let mut run = StuckRun::default();
        for _ in 0..5 {
            run = run.next(1_500, &cfg).unwrap();
        }
        let err = run.next(1_500, &cfg).unwrap_err();
        assert_eq!(err.reason(), RejectReason::StuckSensor);
        assert_eq!(
            err.to_string(),
            "rainfall 1.5 mm repeated 6 times in a row (limit 6)"
        );
        assert!(run.next(1_500, &cfg).is_err());
        run = run.next(1_600, &cfg).unwrap();
        run = run.next(1_500, &cfg).unwrap();
        assert_eq!(
            run,
            StuckRun {
                micrometres: 1_500,
                count: 1
            }
        );
    }

    /// Q5: zeros and increments below `stuck-min-mm` (steady drizzle, one tip of a 0.01-inch
    /// bucket per report) never make a stuck run.
    #[test]
    fn steady_light_rain_is_never_a_stuck_sensor() {
        let cfg = QcConfig::default();
        for micrometres in [0, 254, 762] {
            let mut run = StuckRun::default();
            for _ in 0..20 {
                run = run.next(micrometres, &cfg).unwrap();
            }
        }
    }

    #[test]
    fn future_timestamp_beyond_the_allowance() {
        let received = EventTime(1_000 * MINUTE_MS);
        check_future(received.plus_ms(5 * MINUTE_MS), received, 5 * MINUTE_MS).unwrap();
        let err =
            check_future(received.plus_ms(5 * MINUTE_MS + 1), received, 5 * MINUTE_MS).unwrap_err();
        assert_eq!(err.reason(), RejectReason::FutureTimestamp);
        let outcome = Outcome::from(err);
        assert!(matches!(
            outcome,
            Outcome::Rejected {
                reason: RejectReason::FutureTimestamp,
                ..
            }
        ));
    }

    #[test]
    fn stage_range_and_rate() {
        let cfg = QcConfig::default();
        check_stage_range(&cfg, -5.0).unwrap();
        check_stage_range(&cfg, 100.0).unwrap();
        assert_eq!(
            check_stage_range(&cfg, 100.1).unwrap_err().reason(),
            RejectReason::OutOfRange
        );
        assert!(check_stage_range(&cfg, f64::NAN).is_err());

        let t0 = EventTime(0);
        let t10 = EventTime(10 * MINUTE_MS);
        // 5 m/h allows 0.8333 m in 10 minutes, in either direction of time.
        check_stage_rate(&cfg, (t0, 1.0), (t10, 1.8)).unwrap();
        check_stage_rate(&cfg, (t10, 1.8), (t0, 1.0)).unwrap();
        let err = check_stage_rate(&cfg, (t0, 1.0), (t10, 2.0)).unwrap_err();
        assert_eq!(err.reason(), RejectReason::RateOfChange);
        check_stage_rate(&cfg, (t0, 1.0), (t0, 1.0)).unwrap();
        assert!(check_stage_rate(&cfg, (t0, 1.0), (t0, 1.01)).is_err());
    }

    #[test]
    fn config_defaults_parse_and_validate() {
        let cfg: QcConfig = toml::from_str("max-mm-per-min = 30.0").unwrap();
        assert_eq!(cfg.max_mm_per_min, 30.0);
        assert_eq!(cfg.stuck_identical_steps, 6);
        cfg.validate().unwrap();
        assert!(toml::from_str::<QcConfig>("max_mm_per_min = 30.0").is_err());
        let bad = QcConfig {
            stage_min_m: 200.0,
            ..QcConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("qc.stage-min-m"));
        let bad = QcConfig {
            stuck_identical_steps: 1,
            ..QcConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("qc.stuck-identical-steps"));
        let bad = QcConfig {
            max_mm_per_min: f64::NAN,
            ..QcConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("qc.max-mm-per-min"));
    }
}
