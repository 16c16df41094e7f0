//! Observation bytes on the wire: protobuf (`application/x-protobuf`) or JSON with the same field
//! names (`application/json`), chosen by the `content-type` header or, without one, by sniffing.

use prost::Message;
use serde::{Deserialize, Serialize};
use tianshan_core::observation::Observation;
use tianshan_core::time::EventTime;

use crate::convert::ObservationFieldError;
use crate::v1;

/// Content type of protobuf-encoded observations.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// Content type of JSON-encoded observations.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Why bytes could not be decoded into an observation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid protobuf.
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    /// Not valid JSON or not the observation shape.
    #[error("invalid json: {0}")]
    Json(String),
    /// Decoded, but a required field is missing or wrong.
    #[error("invalid observation: {0}")]
    Field(#[from] ObservationFieldError),
    /// Empty payload.
    #[error("empty payload")]
    Empty,
}

/// Wire format of an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// Protobuf `tianshan.v1.Observation`.
    Protobuf,
    /// JSON object with the protobuf field names.
    Json,
}

impl WireFormat {
    /// Returns the content-type header value.
    pub fn content_type(self) -> &'static str {
        match self {
            WireFormat::Protobuf => CONTENT_TYPE_PROTOBUF,
            WireFormat::Json => CONTENT_TYPE_JSON,
        }
    }

    /// Picks the format from a content-type header, or by sniffing the first non-blank byte.
    pub fn detect(content_type: Option<&str>, payload: &[u8]) -> WireFormat {
        match content_type.map(str::trim) {
            Some(ct) if ct.starts_with(CONTENT_TYPE_JSON) || ct.ends_with("+json") => {
                WireFormat::Json
            }
            Some(ct) if ct.starts_with(CONTENT_TYPE_PROTOBUF) || ct == "application/protobuf" => {
                WireFormat::Protobuf
            }
            _ => match payload.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => WireFormat::Json,
                _ => WireFormat::Protobuf,
            },
        }
    }
}

/// Decodes an observation from bytes, in the format the header names or the bytes suggest.
///
/// # Errors
/// Returns a [`DecodeError`] naming what is wrong; the caller routes it to the dead-letter topic.
pub fn decode_observation(
    content_type: Option<&str>,
    payload: &[u8],
) -> Result<Observation, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    let message = match WireFormat::detect(content_type, payload) {
        WireFormat::Protobuf => {
            v1::Observation::decode(payload).map_err(|e| DecodeError::Protobuf(e.to_string()))?
        }
        WireFormat::Json => serde_json::from_slice::<JsonObservation>(payload)
            .map_err(|e| DecodeError::Json(e.to_string()))?
            .into_message()
            .map_err(DecodeError::Json)?,
    };
    Ok(Observation::try_from(message)?)
}

/// Encodes an observation in the given format.
pub fn encode_observation(obs: &Observation, format: WireFormat) -> Vec<u8> {
    let message = v1::Observation::from(obs);
    match format {
        WireFormat::Protobuf => message.encode_to_vec(),
        WireFormat::Json => {
            let json = JsonObservation::from_message(&message);
            serde_json::to_vec(&json)
                .expect("observation json serialises: plain numbers and strings")
        }
    }
}

/// JSON form of an observation: the protobuf field names, the reading as one named object.
/// `event_time` (RFC 3339) is accepted instead of `event_time_ms`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonObservation {
    station_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_time_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_time: Option<String>,
    #[serde(default)]
    gateway_id: String,
    #[serde(default)]
    sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rainfall: Option<JsonRainfall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    water_level: Option<JsonWaterLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deformation: Option<JsonDeformation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lightning: Option<JsonLightning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weather: Option<JsonWeather>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRainfall {
    mm: f64,
    #[serde(default)]
    interval_s: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonWaterLevel {
    metres: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonDeformation {
    #[serde(default)]
    east_mm: f64,
    #[serde(default)]
    north_mm: f64,
    #[serde(default)]
    up_mm: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLightning {
    lon: f64,
    lat: f64,
    #[serde(default)]
    peak_current_ka: f64,
    #[serde(default)]
    positive: bool,
    #[serde(default)]
    cloud_to_ground: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonWeather {
    #[serde(default)]
    air_temperature_c: f64,
    #[serde(default)]
    relative_humidity_pct: f64,
    #[serde(default)]
    wind_speed_m_s: f64,
    #[serde(default)]
    wind_direction_deg: f64,
}

impl JsonObservation {
    fn into_message(self) -> Result<v1::Observation, String> {
        use v1::observation::Reading as Pb;
        let event_time_ms = match (self.event_time_ms, self.event_time.as_deref()) {
            (Some(ms), _) => ms,
            (None, Some(text)) => EventTime::parse_rfc3339(text)?.millis(),
            (None, None) => return Err("missing field `event_time_ms` (or `event_time`)".into()),
        };
        let mut readings = Vec::new();
        if let Some(r) = self.rainfall {
            readings.push(Pb::Rainfall(v1::Rainfall {
                mm: r.mm,
                interval_s: r.interval_s,
            }));
        }
        if let Some(w) = self.water_level {
            readings.push(Pb::WaterLevel(v1::WaterLevel { metres: w.metres }));
        }
        if let Some(d) = self.deformation {
            readings.push(Pb::Deformation(v1::Deformation {
                east_mm: d.east_mm,
                north_mm: d.north_mm,
                up_mm: d.up_mm,
            }));
        }
        if let Some(l) = self.lightning {
            readings.push(Pb::Lightning(v1::LightningStrike {
                lon: l.lon,
                lat: l.lat,
                peak_current_ka: l.peak_current_ka,
                positive: l.positive,
                cloud_to_ground: l.cloud_to_ground,
            }));
        }
        if let Some(w) = self.weather {
            readings.push(Pb::Weather(v1::Weather {
                air_temperature_c: w.air_temperature_c,
                relative_humidity_pct: w.relative_humidity_pct,
                wind_speed_m_s: w.wind_speed_m_s,
                wind_direction_deg: w.wind_direction_deg,
            }));
        }
        if readings.len() > 1 {
            return Err("more than one reading is set".into());
        }
        Ok(v1::Observation {
            station_id: self.station_id,
            event_time_ms,
            gateway_id: self.gateway_id,
            sequence: self.sequence,
            reading: readings.pop(),
        })
    }

    fn from_message(message: &v1::Observation) -> Self {
        use v1::observation::Reading as Pb;
        let mut json = JsonObservation {
            station_id: message.station_id.clone(),
            event_time_ms: Some(message.event_time_ms),
            event_time: None,
            gateway_id: message.gateway_id.clone(),
            sequence: message.sequence,
            rainfall: None,
            water_level: None,
            deformation: None,
            lightning: None,
            weather: None,
        };
        match &message.reading {
            Some(Pb::Rainfall(r)) => {
                json.rainfall = Some(JsonRainfall {
                    mm: r.mm,
                    interval_s: r.interval_s,
                })
            }
            Some(Pb::WaterLevel(w)) => json.water_level = Some(JsonWaterLevel { metres: w.metres }),
            Some(Pb::Deformation(d)) => {
                json.deformation = Some(JsonDeformation {
                    east_mm: d.east_mm,
                    north_mm: d.north_mm,
                    up_mm: d.up_mm,
                })
            }
            Some(Pb::Lightning(l)) => {
                json.lightning = Some(JsonLightning {
                    lon: l.lon,
                    lat: l.lat,
                    peak_current_ka: l.peak_current_ka,
                    positive: l.positive,
                    cloud_to_ground: l.cloud_to_ground,
                })
            }
            Some(Pb::Weather(w)) => {
                json.weather = Some(JsonWeather {
                    air_temperature_c: w.air_temperature_c,
                    relative_humidity_pct: w.relative_humidity_pct,
                    wind_speed_m_s: w.wind_speed_m_s,
                    wind_direction_deg: w.wind_direction_deg,
                })
            }
            None => {}
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use tianshan_core::ids::{GatewayId, StationId};
    use tianshan_core::observation::Reading;

    use super::*;

    fn rain() -> Observation {
        Observation {
            station: StationId::new("R00042"),
            event_time: EventTime(1_719_820_800_000),
            gateway: GatewayId::new("GW-654025"),
            sequence: 3,
            reading: Reading::Rainfall {
                mm: 4.2,
                interval_s: 300,
            },
        }
    }

    #[test]
    fn both_formats_round_trip_with_and_without_header() {
        for format in [WireFormat::Protobuf, WireFormat::Json] {
            let bytes = encode_observation(&rain(), format);
            assert_eq!(
                decode_observation(Some(format.content_type()), &bytes).unwrap(),
                rain()
            );
            assert_eq!(decode_observation(None, &bytes).unwrap(), rain());
        }
    }

    #[test]
    fn accepts_rfc3339_event_time_in_json() {
        let json =
            br#"{"station_id":"R00042","event_time":"2024-07-01T16:00:00+08:00","sequence":3,
            "gateway_id":"GW-654025","rainfall":{"mm":4.2,"interval_s":300}}"#;
        assert_eq!(decode_observation(None, json).unwrap(), rain());
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        assert!(matches!(
            decode_observation(None, br#"{"station_id": "R0"#),
            Err(DecodeError::Json(_))
        ));
        let truncated = &encode_observation(&rain(), WireFormat::Protobuf)[..7];
        assert!(decode_observation(None, truncated).is_err());
        assert_eq!(decode_observation(None, b""), Err(DecodeError::Empty));
        let two = br#"{"station_id":"R1","event_time_ms":5,"rainfall":{"mm":1},"water_level":{"metres":1}}"#;
        assert!(matches!(
            decode_observation(None, two),
            Err(DecodeError::Json(_))
        ));
    }
}
