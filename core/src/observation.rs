//! Sensor observations as the core sees them, and the outcome of applying one.

use serde::{Deserialize, Serialize};

use crate::ids::{GatewayId, StationId};
use crate::time::EventTime;

/// One reading from one station, decoded and typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Station that measured the reading.
    pub station: StationId,
    /// End of the measured interval (event time).
    pub event_time: EventTime,
    /// Gateway that relayed it.
    pub gateway: GatewayId,
    /// Gateway sequence number; with station and event time it identifies the reading.
    pub sequence: u64,
    /// What was measured.
    pub reading: Reading,
}

/// The measured quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reading {
    /// Rain that fell over `interval_s` seconds ending at the event time.
    Rainfall {
        /// Depth in millimetres.
        mm: f64,
        /// Length of the interval in seconds.
        interval_s: u32,
    },
    /// Stage of a river or reservoir in metres.
    WaterLevel {
        /// Stage in metres.
        metres: f64,
    },
    /// Displacement since the reference, per axis, in millimetres.
    Deformation {
        /// East component.
        east_mm: f64,
        /// North component.
        north_mm: f64,
        /// Vertical component.
        up_mm: f64,
    },
    /// One lightning stroke.
    Lightning {
        /// Longitude in degrees.
        lon: f64,
        /// Latitude in degrees.
        lat: f64,
        /// Peak current in kiloamperes.
        peak_current_ka: f64,
        /// Positive polarity.
        positive: bool,
        /// Cloud-to-ground stroke.
        cloud_to_ground: bool,
    },
    /// Surface weather.
    Weather {
        /// Air temperature in °C.
        air_temperature_c: f64,
        /// Relative humidity in percent.
        relative_humidity_pct: f64,
        /// Wind speed in m/s.
        wind_speed_m_s: f64,
        /// Wind direction in degrees.
        wind_direction_deg: f64,
    },
}

impl Reading {
    /// Returns the short name of the reading kind, used in metrics labels and SQL.
    pub fn kind(&self) -> &'static str {
        match self {
            Reading::Rainfall { .. } => "rainfall",
            Reading::WaterLevel { .. } => "water_level",
            Reading::Deformation { .. } => "deformation",
            Reading::Lightning { .. } => "lightning",
            Reading::Weather { .. } => "weather",
        }
    }
}

/// Why an observation was not applied. Each becomes a dead-letter record with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Bytes that decode neither as protobuf nor as JSON, or miss required fields.
    Malformed,
    /// Station id not in the region's station list.
    UnknownStation,
    /// Reading kind the station does not measure.
    WrongReadingKind,
    /// QC Q0: value outside the physically plausible range.
    OutOfRange,
    /// QC Q1: change or intensity faster than physically plausible.
    RateOfChange,
    /// QC Q5: the same non-zero value repeated too many times.
    StuckSensor,
    /// Event time too far ahead of the time the broker received it.
    FutureTimestamp,
    /// Event time older than the allowed lateness.
    TooLate,
    /// Same station, event time and sequence already applied.
    Duplicate,
    /// The station's actor failed while applying it; the supervisor restarts the station.
    StationFailed,
}

impl RejectReason {
    /// All reasons, in a stable order (for metrics and reports).
    pub const ALL: [RejectReason; 10] = [
        RejectReason::Malformed,
        RejectReason::UnknownStation,
        RejectReason::WrongReadingKind,
        RejectReason::OutOfRange,
        RejectReason::RateOfChange,
        RejectReason::StuckSensor,
        RejectReason::FutureTimestamp,
        RejectReason::TooLate,
        RejectReason::Duplicate,
        RejectReason::StationFailed,
    ];

    /// Returns the reason code written to the dead-letter `reason` header and metrics.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::UnknownStation => "unknown_station",
            RejectReason::WrongReadingKind => "wrong_reading_kind",
            RejectReason::OutOfRange => "qc_out_of_range",
            RejectReason::RateOfChange => "qc_rate_of_change",
            RejectReason::StuckSensor => "qc_stuck_sensor",
            RejectReason::FutureTimestamp => "qc_future_timestamp",
            RejectReason::TooLate => "too_late",
            RejectReason::Duplicate => "duplicate",
            RejectReason::StationFailed => "station_failed",
        }
    }
}

/// What happened to one observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The observation updated the station's state.
    Applied,
    /// The observation was rejected; `detail` explains it for the dead-letter record.
    Rejected {
        /// Machine-readable reason.
        reason: RejectReason,
        /// Human-readable explanation with the offending values.
        detail: String,
    },
}

impl Outcome {
    /// Builds a rejection.
    pub fn rejected(reason: RejectReason, detail: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason,
            detail: detail.into(),
        }
    }
}
