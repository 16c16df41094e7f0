//! Event time: instants as milliseconds since the Unix epoch (UTC), durations, and tick alignment.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An instant in event time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventTime(pub i64);

/// Milliseconds in one second, minute and hour.
pub const SECOND_MS: i64 = 1_000;
/// Milliseconds in one minute.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// Beijing time offset (UTC+08:00), used for day boundaries and displayed times (hazards.md, Conventions).
pub const BEIJING_OFFSET_MS: i64 = 8 * HOUR_MS;

impl EventTime {
    /// Returns the instant `seconds` after the epoch.
    pub const fn from_secs(seconds: i64) -> Self {
        Self(seconds * SECOND_MS)
    }

    /// Returns the milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Returns this instant moved by `delta_ms` (negative moves back).
    pub const fn plus_ms(self, delta_ms: i64) -> Self {
        // Saturating: a time from input (an expiry far in the future) never overflows.
        Self(self.0.saturating_add(delta_ms))
    }

    /// Returns the latest multiple of `period_ms` at or before this instant.
    pub fn floor_to(self, period_ms: i64) -> Self {
        debug_assert!(period_ms > 0);
        Self(self.0.div_euclid(period_ms) * period_ms)
    }

    /// Returns the earliest multiple of `period_ms` at or after this instant.
    pub fn ceil_to(self, period_ms: i64) -> Self {
        debug_assert!(period_ms > 0);
        Self(-((-self.0).div_euclid(period_ms)) * period_ms)
    }

    /// Formats as `YYYY-MM-DDThh:mm:ss+08:00` in Beijing time, the form CAP `sent` requires.
    pub fn to_beijing_rfc3339(self) -> String {
        let local = self.0 + BEIJING_OFFSET_MS;
        let (y, mo, d, h, mi, s) = civil_from_millis(local);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+08:00")
    }

    /// Returns the month (1..=12) of this instant in Beijing time.
    pub fn beijing_month(self) -> u8 {
        let (_, month, ..) = civil_from_millis(self.0 + BEIJING_OFFSET_MS);
        u8::try_from(month).expect("a civil month is 1..=12")
    }

    /// Formats as a compact UTC stamp `YYYYMMDDThhmmZ`, used inside warning ids.
    pub fn to_compact_utc(self) -> String {
        let (y, mo, d, h, mi, _) = civil_from_millis(self.0);
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z")
    }

    /// Parses `YYYY-MM-DDThh:mm:ss` followed by `Z` or `±hh:mm`.
    ///
    /// # Errors
    /// Returns a description of the first malformed part.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 {
            return Err(format!("timestamp {text:?} is too short"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
            text.get(range)
                .and_then(|part| part.parse::<i64>().ok())
                .ok_or_else(|| format!("timestamp {text:?} has a malformed field"))
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
            return Err(format!("timestamp {text:?} is not RFC 3339"));
        }
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return Err(format!("timestamp {text:?} is out of range"));
        }
        let mut rest = &text[19..];
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            rest = &fraction[digits..];
        }
        let offset_ms = match rest {
            "Z" | "z" => 0,
            zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let oh: i64 = zone[1..3]
                    .parse()
                    .map_err(|_| format!("bad offset in {text:?}"))?;
                let om: i64 = zone[4..6]
                    .parse()
                    .map_err(|_| format!("bad offset in {text:?}"))?;
                sign * (oh * HOUR_MS + om * MINUTE_MS)
            }
            _ => return Err(format!("timestamp {text:?} has no valid zone")),
        };
        let days = days_from_civil(y, mo, d);
        Ok(Self(
            days * 86_400_000 + h * HOUR_MS + mi * MINUTE_MS + s * SECOND_MS - offset_ms,
        ))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = civil_from_millis(self.0);
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil` algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Calendar fields of milliseconds since the epoch (inverse of `days_from_civil`).
fn civil_from_millis(ms: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000) / 1000;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, in_day / 3600, (in_day / 60) % 60, in_day % 60)
}

/// Parses a duration such as `"30s"`, `"10m"`, `"6h"`, `"2d"` or `"500ms"` into milliseconds.
///
/// # Errors
/// Returns a description when the number or unit is missing or unknown.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {text:?} has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let value: i64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a whole number"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => SECOND_MS,
        "m" | "min" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => 24 * HOUR_MS,
        _ => return Err(format!("duration {text:?} has unknown unit {unit:?}")),
    };
    Ok(value * unit_ms)
}

/// Formats milliseconds with the largest unit that divides them exactly, so that
/// `parse_duration_ms(format_duration_ms(ms)) == ms`.
pub fn format_duration_ms(ms: i64) -> String {
    const UNITS: [(&str, i64); 4] = [
        ("d", 24 * HOUR_MS),
        ("h", HOUR_MS),
        ("m", MINUTE_MS),
        ("s", SECOND_MS),
    ];
    UNITS
        .iter()
        .find(|(_, unit_ms)| ms != 0 && ms % unit_ms == 0)
        .map_or_else(
            || format!("{ms}ms"),
            |(unit, unit_ms)| format!("{}{unit}", ms / unit_ms),
        )
}

/// Serde for durations kept as milliseconds and written as text such as `"60m"`
/// (`#[serde(with = "crate::time::duration_text")]`).
pub(crate) mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{format_duration_ms, parse_duration_ms};

    pub(crate) fn serialize<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration_ms(*ms))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration_ms(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional duration: absent (or `None`) means off.
    pub(crate) mod optional {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::{format_duration_ms, parse_duration_ms};

        pub(crate) fn serialize<S: Serializer>(
            ms: &Option<i64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => serializer.serialize_some(&format_duration_ms(*ms)),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<i64>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| parse_duration_ms(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_calendar_dates() {
        let t = EventTime::parse_rfc3339("2024-07-01T08:30:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2024-07-01T00:30:00Z");
        assert_eq!(t.to_beijing_rfc3339(), "2024-07-01T08:30:00+08:00");
        assert_eq!(
            EventTime::from_secs(1_704_067_200).to_string(),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(t.to_compact_utc(), "20240701T0030Z");
    }

    #[test]
    fn rejects_malformed_timestamps() {
        assert!(EventTime::parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        assert!(EventTime::parse_rfc3339("2024-07-01 00:00:00").is_err());
        assert!(EventTime::parse_rfc3339("2024-07-01T00:00:00").is_err());
    }

    #[test]
    fn aligns_to_ticks() {
        let t = EventTime(7 * MINUTE_MS + 1);
        assert_eq!(t.floor_to(5 * MINUTE_MS), EventTime(5 * MINUTE_MS));
        assert_eq!(t.ceil_to(5 * MINUTE_MS), EventTime(10 * MINUTE_MS));
        assert_eq!(EventTime(-1).floor_to(1000), EventTime(-1000));
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("6h"), Ok(6 * HOUR_MS));
        assert!(parse_duration_ms("6").is_err());
        assert!(parse_duration_ms("6y").is_err());
    }

    #[test]
    fn formats_durations_that_parse_back() {
        for ms in [
            0,
            1,
            1_500,
            30 * SECOND_MS,
            90 * MINUTE_MS,
            6 * HOUR_MS,
            48 * HOUR_MS,
        ] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)), Ok(ms));
        }
        assert_eq!(format_duration_ms(90 * MINUTE_MS), "90m");
        assert_eq!(format_duration_ms(48 * HOUR_MS), "2d");
    }
}
