//! Checks of request fields (each failure is `INVALID_ARGUMENT` naming the field), and the
//! warning version a duty officer issues by hand.

use std::time::{SystemTime, UNIX_EPOCH};

use tianshan_core::ids::{AreaCode, WarningId};
use tianshan_core::lifecycle::action_for;
use tianshan_core::signoff::Edit;
use tianshan_core::time::EventTime;
use tianshan_core::warning::{warning_id as derive_warning_id, Status, WarningEvent};
use tianshan_proto::convert::{hazard_from_pb, level_from_pb};
use tianshan_proto::v1;

use crate::error::ClusterError;

/// The longest validity of a warning issued by hand, 72 h (our choice).
const MAX_MANUAL_VALIDITY_MS: i64 = 72 * 3_600_000;

fn invalid(detail: String) -> ClusterError {
    ClusterError::InvalidRequest(detail)
}

/// Returns the current wall-clock time, the issue time of a manual warning.
pub(super) fn now() -> EventTime {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    EventTime(i64::try_from(since_epoch).unwrap_or(i64::MAX))
}

/// Checks an area code prefix: up to 12 digits.
pub(super) fn check_prefix(prefix: &str) -> Result<(), ClusterError> {
    if prefix.len() > 12 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "area_code_prefix must be up to 12 digits of a GB/T 2260 or township code, got {prefix:?}"
        )));
    }
    Ok(())
}

/// Checks an area code: 6 (county) or 9 (township) digits.
fn area_code(code: &str) -> Result<AreaCode, ClusterError> {
    let code = code.trim();
    if !matches!(code.len(), 6 | 9) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "area_codes must be county (6 digits) or township (9 digits) codes, got {code:?}"
        )));
    }
    Ok(AreaCode::new(code))
}

fn area_codes(codes: &[String]) -> Result<Vec<AreaCode>, ClusterError> {
    codes.iter().map(|code| area_code(code)).collect()
}

/// Checks the hazards of a filter: each a known, specified value.
pub(super) fn hazards(values: &[i32]) -> Result<Vec<i32>, ClusterError> {
    for &value in values {
        if hazard_from_pb(value).is_none() {
            return Err(invalid(format!(
                "hazards holds {value}, which is no hazard"
            )));
        }
    }
    Ok(values.to_vec())
}

/// Checks a minimum level: unspecified (0) or a known level.
pub(super) fn min_level(value: i32) -> Result<i32, ClusterError> {
    if value != 0 && level_from_pb(value).is_none() {
        return Err(invalid(format!("min_level {value} is no level")));
    }
    Ok(value)
}

/// Checks a warning id: not blank.
pub(super) fn warning_id(id: &str) -> Result<WarningId, ClusterError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(invalid("warning_id is empty".to_owned()));
    }
    Ok(WarningId::new(id))
}

/// Checks a version: versions start at 1.
pub(super) fn version(version: u32) -> Result<u32, ClusterError> {
    if version == 0 {
        return Err(invalid("version must be 1 or more".to_owned()));
    }
    Ok(version)
}

/// Turns an edit into the core's; an empty `area_codes` leaves the area unchanged. Whether the
/// edit changes anything is the sign-off desk's check.
pub(super) fn edit(edit: v1::Edit) -> Result<Edit, ClusterError> {
    Ok(Edit {
        message: edit.message,
        area_codes: if edit.area_codes.is_empty() {
            None
        } else {
            Some(area_codes(&edit.area_codes)?)
        },
    })
}

/// Builds version 1 of a warning issued by hand at `now`, and its message text.
pub(super) fn manual_warning(
    request: v1::IssueWarningRequest,
    now: EventTime,
) -> Result<(WarningEvent, String), ClusterError> {
    let hazard = hazard_from_pb(request.hazard)
        .ok_or_else(|| invalid("hazard must be set to a known hazard".to_owned()))?;
    let level = level_from_pb(request.level)
        .ok_or_else(|| invalid("level must be set to a known level".to_owned()))?;
    if request.area_codes.is_empty() {
        return Err(invalid("area_codes is empty".to_owned()));
    }
    let area_codes = area_codes(&request.area_codes)?;
    let target = request.target.trim();
    let target_ok = !target.is_empty()
        && target.len() <= 64
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !target_ok {
        return Err(invalid(format!(
            "target must be 1 to 64 letters, digits, '-' or '_', got {target:?}"
        )));
    }
    let message = request.message.trim();
    if message.is_empty() {
        return Err(invalid("message is blank".to_owned()));
    }
    if request.expires_ms <= now.millis() {
        return Err(invalid(format!(
            "expires_ms {} is not after now ({})",
            request.expires_ms,
            now.millis()
        )));
    }
    let latest = now.plus_ms(MAX_MANUAL_VALIDITY_MS);
    if request.expires_ms > latest.millis() {
        return Err(invalid(format!(
            "expires_ms {} is more than 72 h after now ({}): issue a new warning instead",
            request.expires_ms,
            now.millis()
        )));
    }
    let event = WarningEvent {
        id: derive_warning_id(hazard, target, now),
        version: 1,
        hazard,
        level,
        action: action_for(hazard, level),
        status: Status::Issued,
        target: target.to_owned(),
        area_codes,
        onset: now,
        issued: now,
        expires: EventTime(request.expires_ms),
        evidence: Vec::new(),
        caused_by: None,
    };
    Ok((event, message.to_owned()))
}

#[cfg(test)]
mod tests {
    use tianshan_core::warning::{Hazard, Level};

    use super::*;

    const NOW: EventTime = EventTime(1_719_820_800_000);

    fn request() -> v1::IssueWarningRequest {
        v1::IssueWarningRequest {
            hazard: v1::Hazard::FlashFlood.into(),
            level: v1::Level::Orange.into(),
            area_codes: vec!["650102002".into()],
            target: "B0042".into(),
            message: "准备转移".into(),
            expires_ms: NOW.millis() + 3_600_000,
        }
    }

    #[test]
    fn a_manual_warning_is_version_one_issued_now() {
        let (event, message) = manual_warning(request(), NOW).expect("valid");
        assert_eq!(
            event.id,
            derive_warning_id(Hazard::FlashFlood, "B0042", NOW)
        );
        assert_eq!((event.version, event.level), (1, Level::Orange));
        assert_eq!(event.area_codes, [AreaCode::new("650102002")]);
        assert_eq!(message, "准备转移");
    }

    #[test]
    fn a_manual_warning_needs_every_field() {
        let broken: [fn(&mut v1::IssueWarningRequest); 6] = [
            |r| r.hazard = 0,
            |r| r.level = 9,
            |r| r.area_codes.clear(),
            |r| r.area_codes = vec!["65x".into()],
            |r| r.target = "a b".into(),
            |r| r.expires_ms = NOW.millis(),
        ];
        for breaking in broken {
            let mut request = request();
            breaking(&mut request);
            assert!(matches!(
                manual_warning(request, NOW),
                Err(ClusterError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn prefixes_must_be_digits() {
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("6540").is_ok());
        assert!(check_prefix("65x").is_err());
        assert!(check_prefix("6540250010011").is_err());
    }

    #[test]
    fn filters_refuse_unknown_hazards_and_levels() {
        assert!(hazards(&[1, 5]).is_ok());
        assert!(hazards(&[0]).is_err());
        assert!(min_level(0).is_ok());
        assert!(min_level(7).is_err());
    }
}
