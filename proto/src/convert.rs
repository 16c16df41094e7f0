//! Conversions between generated protobuf types and core types (kept here because of the orphan rule).

use tianshan_core::dissemination::acknowledgement::AckOutcome;
use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::signoff::{Draft, DraftOrigin};
use tianshan_core::time::EventTime;
use tianshan_core::warning::{Action, Hazard, Level, Status, WarningEvent};

use crate::v1;

/// Why a decoded protobuf message is not a valid observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservationFieldError {
    /// `station_id` is empty.
    #[error("station_id is empty")]
    MissingStation,
    /// `event_time_ms` is zero or negative.
    #[error("event_time_ms {0} is not a positive epoch time")]
    BadEventTime(i64),
    /// No reading is set.
    #[error("no reading (rainfall, water_level, deformation, lightning or weather) is set")]
    MissingReading,
    /// A numeric field is NaN or infinite.
    #[error("field {0} is not a finite number")]
    NotFinite(&'static str),
}

fn finite(name: &'static str, value: f64) -> Result<f64, ObservationFieldError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ObservationFieldError::NotFinite(name))
    }
}

impl TryFrom<v1::Observation> for Observation {
    type Error = ObservationFieldError;

    fn try_from(message: v1::Observation) -> Result<Self, Self::Error> {
        use v1::observation::Reading as Pb;
        if message.station_id.trim().is_empty() {
            return Err(ObservationFieldError::MissingStation);
        }
        if message.event_time_ms <= 0 {
            return Err(ObservationFieldError::BadEventTime(message.event_time_ms));
        }
        let reading = match message
            .reading
            .ok_or(ObservationFieldError::MissingReading)?
        {
            Pb::Rainfall(r) => Reading::Rainfall {
                mm: finite("rainfall.mm", r.mm)?,
                interval_s: r.interval_s,
            },
            Pb::WaterLevel(w) => Reading::WaterLevel {
                metres: finite("water_level.metres", w.metres)?,
            },
            Pb::Deformation(d) => Reading::Deformation {
                east_mm: finite("deformation.east_mm", d.east_mm)?,
                north_mm: finite("deformation.north_mm", d.north_mm)?,
                up_mm: finite("deformation.up_mm", d.up_mm)?,
            },
            Pb::Lightning(l) => Reading::Lightning {
                lon: finite("lightning.lon", l.lon)?,
                lat: finite("lightning.lat", l.lat)?,
                peak_current_ka: finite("lightning.peak_current_ka", l.peak_current_ka)?,
                positive: l.positive,
                cloud_to_ground: l.cloud_to_ground,
            },
            Pb::Weather(w) => Reading::Weather {
                air_temperature_c: finite("weather.air_temperature_c", w.air_temperature_c)?,
                relative_humidity_pct: finite(
                    "weather.relative_humidity_pct",
                    w.relative_humidity_pct,
                )?,
                wind_speed_m_s: finite("weather.wind_speed_m_s", w.wind_speed_m_s)?,
                wind_direction_deg: finite("weather.wind_direction_deg", w.wind_direction_deg)?,
            },
        };
        Ok(Observation {
            station: StationId::new(message.station_id.trim()),
            event_time: EventTime(message.event_time_ms),
            gateway: GatewayId::new(message.gateway_id),
            sequence: message.sequence,
            reading,
        })
    }
}

impl From<&Observation> for v1::Observation {
    fn from(obs: &Observation) -> Self {
        use v1::observation::Reading as Pb;
        let reading = match obs.reading {
            Reading::Rainfall { mm, interval_s } => Pb::Rainfall(v1::Rainfall { mm, interval_s }),
            Reading::WaterLevel { metres } => Pb::WaterLevel(v1::WaterLevel { metres }),
            Reading::Deformation {
                east_mm,
                north_mm,
                up_mm,
            } => Pb::Deformation(v1::Deformation {
                east_mm,
                north_mm,
                up_mm,
            }),
            Reading::Lightning {
                lon,
                lat,
                peak_current_ka,
                positive,
                cloud_to_ground,
            } => Pb::Lightning(v1::LightningStrike {
                lon,
                lat,
                peak_current_ka,
                positive,
                cloud_to_ground,
            }),
            Reading::Weather {
                air_temperature_c,
                relative_humidity_pct,
                wind_speed_m_s,
                wind_direction_deg,
            } => Pb::Weather(v1::Weather {
                air_temperature_c,
                relative_humidity_pct,
                wind_speed_m_s,
                wind_direction_deg,
            }),
        };
        v1::Observation {
            station_id: obs.station.to_string(),
            event_time_ms: obs.event_time.millis(),
            gateway_id: obs.gateway.to_string(),
            sequence: obs.sequence,
            reading: Some(reading),
        }
    }
}

fn hazard_to_pb(hazard: Hazard) -> v1::Hazard {
    match hazard {
        Hazard::FlashFlood => v1::Hazard::FlashFlood,
        Hazard::DebrisFlow => v1::Hazard::DebrisFlow,
        Hazard::Landslide => v1::Hazard::Landslide,
        Hazard::LightningFire => v1::Hazard::LightningFire,
        Hazard::SnowmeltFlood => v1::Hazard::SnowmeltFlood,
    }
}

/// Returns the core hazard of a protobuf `Hazard` value, or `None` for unspecified or unknown
/// values.
pub fn hazard_from_pb(value: i32) -> Option<Hazard> {
    match v1::Hazard::try_from(value).ok()? {
        v1::Hazard::Unspecified => None,
        v1::Hazard::FlashFlood => Some(Hazard::FlashFlood),
        v1::Hazard::DebrisFlow => Some(Hazard::DebrisFlow),
        v1::Hazard::Landslide => Some(Hazard::Landslide),
        v1::Hazard::LightningFire => Some(Hazard::LightningFire),
        v1::Hazard::SnowmeltFlood => Some(Hazard::SnowmeltFlood),
    }
}

/// Returns the core level of a protobuf `Level` value, or `None` for unspecified or unknown
/// values.
pub fn level_from_pb(value: i32) -> Option<Level> {
    match v1::Level::try_from(value).ok()? {
        v1::Level::Unspecified => None,
        v1::Level::Blue => Some(Level::Blue),
        v1::Level::Yellow => Some(Level::Yellow),
        v1::Level::Orange => Some(Level::Orange),
        v1::Level::Red => Some(Level::Red),
    }
}

fn level_to_pb(level: Level) -> v1::Level {
    match level {
        Level::Blue => v1::Level::Blue,
        Level::Yellow => v1::Level::Yellow,
        Level::Orange => v1::Level::Orange,
        Level::Red => v1::Level::Red,
    }
}

fn action_to_pb(action: Action) -> v1::Action {
    match action {
        Action::Monitor => v1::Action::Monitor,
        Action::PrepareToEvacuate => v1::Action::PrepareToEvacuate,
        Action::EvacuateImmediately => v1::Action::EvacuateImmediately,
        Action::PatrolStrikeArea => v1::Action::PatrolStrikeArea,
        Action::StageFirefighters => v1::Action::StageFirefighters,
        Action::AllClear => v1::Action::AllClear,
    }
}

fn status_to_pb(status: Status) -> v1::Status {
    match status {
        Status::Issued => v1::Status::Issued,
        Status::Upgraded => v1::Status::Upgraded,
        Status::Downgraded => v1::Status::Downgraded,
        Status::Renewed => v1::Status::Renewed,
        Status::Cancelled => v1::Status::Cancelled,
    }
}

impl From<&WarningEvent> for v1::Warning {
    fn from(event: &WarningEvent) -> Self {
        v1::Warning {
            id: event.id.to_string(),
            version: event.version,
            hazard: hazard_to_pb(event.hazard).into(),
            level: level_to_pb(event.level).into(),
            action: action_to_pb(event.action).into(),
            status: status_to_pb(event.status).into(),
            target: event.target.clone(),
            area_codes: event.area_codes.iter().map(ToString::to_string).collect(),
            onset_ms: event.onset.millis(),
            issued_ms: event.issued.millis(),
            expires_ms: event.expires.millis(),
            evidence: event
                .evidence
                .iter()
                .map(|e| v1::Evidence {
                    quantity: e.quantity.clone(),
                    value: e.value,
                    threshold: e.threshold,
                    completeness: e.completeness,
                    stations: e.stations.clone(),
                })
                .collect(),
            caused_by: event
                .caused_by
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl From<&Draft> for v1::Draft {
    fn from(draft: &Draft) -> Self {
        v1::Draft {
            warning: Some(v1::Warning::from(&draft.event)),
            message: draft.message.clone().unwrap_or_default(),
            department: draft.department.name().to_owned(),
            origin: match draft.origin {
                DraftOrigin::Model => "model",
                DraftOrigin::Manual(_) => "manual",
                DraftOrigin::Agency { .. } => "agency",
            }
            .to_owned(),
            submitted_ms: draft.submitted_at.millis(),
            released_early: draft.released_early,
            auto_approve_ms: draft.auto_approve_at.map_or(0, |at| at.millis()),
        }
    }
}

impl From<AckOutcome> for v1::AckOutcome {
    fn from(outcome: AckOutcome) -> Self {
        match outcome {
            AckOutcome::InTime => v1::AckOutcome::InTime,
            AckOutcome::Late => v1::AckOutcome::Late,
            AckOutcome::AlreadyAcknowledged => v1::AckOutcome::AlreadyAcknowledged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observation_round_trips_through_protobuf() {
        let obs = Observation {
            station: StationId::new("R00001"),
            event_time: EventTime(1_719_792_000_000),
            gateway: GatewayId::new("GW-654025"),
            sequence: 7,
            reading: Reading::Rainfall {
                mm: 2.5,
                interval_s: 300,
            },
        };
        let message = v1::Observation::from(&obs);
        assert_eq!(Observation::try_from(message).unwrap(), obs);
    }

    #[test]
    fn hazards_and_levels_round_trip_and_unspecified_is_none() {
        for hazard in [
            Hazard::FlashFlood,
            Hazard::DebrisFlow,
            Hazard::Landslide,
            Hazard::LightningFire,
            Hazard::SnowmeltFlood,
        ] {
            assert_eq!(hazard_from_pb(hazard_to_pb(hazard).into()), Some(hazard));
        }
        for level in Level::ALL {
            assert_eq!(level_from_pb(level_to_pb(level).into()), Some(level));
        }
        assert_eq!(hazard_from_pb(0), None);
        assert_eq!(level_from_pb(0), None);
        assert_eq!(level_from_pb(99), None);
    }

    #[test]
    fn rejects_messages_without_station_or_reading() {
        let mut message = v1::Observation {
            station_id: "R1".into(),
            event_time_ms: 1,
            ..Default::default()
        };
        assert_eq!(
            Observation::try_from(message.clone()),
            Err(ObservationFieldError::MissingReading)
        );
        message.station_id.clear();
        assert_eq!(
            Observation::try_from(message),
            Err(ObservationFieldError::MissingStation)
        );
    }
}
