//! The tables of a [`NodeSnapshot`], each built as one Arrow record batch:
//! - `stations` (station, kind, lon, lat, county, report_interval_s): the region's stations.
//! - `station_windows` (station, kind, tick, duration_min, mm, completeness, last_observation):
//!   one row per rain window of each gauge's summary at the last tick (a gauge no tick
//!   reaches, feeding no basin, is summarized when the snapshot is taken, once it has reported).
//! - `basin_state` (basin, tick, raw_level, held_level, soil_state, antecedent_mm, quantity,
//!   value, threshold, completeness): one row per evidence entry of each basin's latest
//!   assessment.
//! - `warnings` (id, version, hazard, level, action, status, target, area_codes, onset, issued,
//!   expires, caused_by): the last version of every active warning; `area_codes` is a list.
//! - `deliveries` (warning, version, level, recipient, subject, state, must_acknowledge, opened,
//!   channel, first_delivered, acknowledged, escalated_to): one row per recipient and subject
//!   of each acknowledgement book.
//! - `dead_letters` (reason, count).
//! - `admin_units` (code, name, level, parent, lon, lat).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use tianshan_core::dissemination::acknowledgement::{
    AckEventKind, ForcedAcknowledgement, ObligationState, Subject,
};
use tianshan_core::region::SoilState;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use super::NodeSnapshot;

/// Builds every table of `snapshot`, with its name.
///
/// # Errors
/// Returns the Arrow error of a batch whose columns do not fit its schema.
pub fn all(snapshot: &NodeSnapshot) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
    Ok(vec![
        ("stations", stations(snapshot)?),
        ("station_windows", station_windows(snapshot)?),
        ("basin_state", basin_state(snapshot)?),
        ("warnings", warnings(snapshot)?),
        ("deliveries", deliveries(snapshot)?),
        ("dead_letters", dead_letters(snapshot)?),
        ("admin_units", admin_units(snapshot)?),
    ])
}

/// A column: its name, whether it may be null, and its values.
pub(crate) type Column = (&'static str, bool, ArrayRef);

/// A record batch of `columns`, its schema taken from them.
pub(crate) fn batch(columns: Vec<Column>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, nullable, array)| Field::new(*name, array.data_type().clone(), *nullable))
        .collect();
    let arrays = columns.into_iter().map(|(_, _, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

pub(crate) fn text<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn optional_text<S: AsRef<str>>(values: impl IntoIterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<StringArray>())
}

fn float(values: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(values.into_iter().collect::<Float64Array>())
}

fn times(values: impl IntoIterator<Item = Option<EventTime>>) -> ArrayRef {
    Arc::new(
        values
            .into_iter()
            .map(|time| time.map(EventTime::millis))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    )
}

fn stations(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    let stations = || snapshot.region.stations.values();
    batch(vec![
        ("station", false, text(stations().map(|s| s.id.as_str()))),
        ("kind", false, text(stations().map(|s| s.kind.as_str()))),
        ("lon", false, float(stations().map(|s| Some(s.lon)))),
        ("lat", false, float(stations().map(|s| Some(s.lat)))),
        ("county", false, text(stations().map(|s| s.county.as_str()))),
        (
            "report_interval_s",
            false,
            Arc::new(UInt32Array::from_iter_values(
                stations().map(|s| s.report_interval_s),
            )),
        ),
    ])
}

fn station_windows(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    let rows: Vec<_> = snapshot
        .station_summaries
        .iter()
        .filter_map(|summary| match summary {
            StationSummary::Rain(rain) => Some(rain),
            StationSummary::WaterLevel(_) | StationSummary::Weather(_) => None,
        })
        .flat_map(|rain| rain.windows.iter().map(move |window| (rain, window)))
        .collect();
    batch(vec![
        (
            "station",
            false,
            text(rows.iter().map(|(r, _)| r.station.as_str())),
        ),
        ("kind", false, text(rows.iter().map(|_| "rain"))),
        ("tick", false, times(rows.iter().map(|(r, _)| Some(r.tick)))),
        (
            "duration_min",
            false,
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|(_, w)| w.duration_min),
            )),
        ),
        ("mm", false, float(rows.iter().map(|(_, w)| Some(w.mm)))),
        (
            "completeness",
            false,
            float(rows.iter().map(|(_, w)| Some(w.completeness))),
        ),
        (
            "last_observation",
            true,
            times(rows.iter().map(|(r, _)| r.last_observation)),
        ),
    ])
}

fn soil_state_name(state: SoilState) -> &'static str {
    match state {
        SoilState::Dry => "dry",
        SoilState::Normal => "normal",
        SoilState::Wet => "wet",
    }
}

fn basin_state(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    // A basin assessed without evidence still has a row, with the evidence columns null.
    let rows: Vec<_> = snapshot
        .assessments
        .iter()
        .flat_map(|assessment| {
            let evidence: Vec<_> = if assessment.evidence.is_empty() {
                vec![None]
            } else {
                assessment.evidence.iter().map(Some).collect()
            };
            evidence.into_iter().map(move |item| (assessment, item))
        })
        .collect();
    batch(vec![
        (
            "basin",
            false,
            text(rows.iter().map(|(a, _)| a.basin.as_str())),
        ),
        ("tick", false, times(rows.iter().map(|(a, _)| Some(a.tick)))),
        (
            "raw_level",
            true,
            optional_text(rows.iter().map(|(a, _)| a.raw_level.map(|l| l.name()))),
        ),
        (
            "held_level",
            true,
            optional_text(rows.iter().map(|(a, _)| a.held_level.map(|l| l.name()))),
        ),
        (
            "soil_state",
            false,
            text(rows.iter().map(|(a, _)| soil_state_name(a.soil_state))),
        ),
        (
            "antecedent_mm",
            false,
            float(rows.iter().map(|(a, _)| Some(a.antecedent_mm))),
        ),
        (
            "quantity",
            true,
            optional_text(rows.iter().map(|(_, e)| e.map(|e| e.quantity.as_str()))),
        ),
        (
            "value",
            true,
            float(rows.iter().map(|(_, e)| e.map(|e| e.value))),
        ),
        (
            "threshold",
            true,
            float(rows.iter().map(|(_, e)| e.map(|e| e.threshold))),
        ),
        (
            "completeness",
            true,
            float(rows.iter().map(|(_, e)| e.map(|e| e.completeness))),
        ),
    ])
}

fn warnings(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    batch(warning_columns(&snapshot.warnings))
}

/// The columns of the `warnings` table, one row per version in the given order (also the
/// columns of a warnings archive, which adds the evidence).
pub(crate) fn warning_columns(warnings: &[WarningEvent]) -> Vec<Column> {
    let mut area_codes = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "item",
        DataType::Utf8,
        false,
    ));
    for warning in warnings {
        for code in &warning.area_codes {
            area_codes.values().append_value(code.as_str());
        }
        area_codes.append(true);
    }
    vec![
        ("id", false, text(warnings.iter().map(|w| w.id.as_str()))),
        (
            "version",
            false,
            Arc::new(UInt32Array::from_iter_values(
                warnings.iter().map(|w| w.version),
            )),
        ),
        (
            "hazard",
            false,
            text(warnings.iter().map(|w| w.hazard.name())),
        ),
        (
            "level",
            false,
            text(warnings.iter().map(|w| w.level.name())),
        ),
        (
            "action",
            false,
            text(warnings.iter().map(|w| w.action.name())),
        ),
        (
            "status",
            false,
            text(warnings.iter().map(|w| w.status.name())),
        ),
        (
            "target",
            false,
            text(warnings.iter().map(|w| w.target.as_str())),
        ),
        ("area_codes", false, Arc::new(area_codes.finish())),
        (
            "onset",
            false,
            times(warnings.iter().map(|w| Some(w.onset))),
        ),
        (
            "issued",
            false,
            times(warnings.iter().map(|w| Some(w.issued))),
        ),
        (
            "expires",
            false,
            times(warnings.iter().map(|w| Some(w.expires))),
        ),
        (
            "caused_by",
            true,
            optional_text(
                warnings
                    .iter()
                    .map(|w| w.caused_by.as_ref().map(|id| id.as_str())),
            ),
        ),
    ]
}

fn subject_name(subject: &Subject) -> String {
    match subject {
        Subject::Warning => "warning".to_owned(),
        Subject::Handover { unreached } => format!("handover:{unreached}"),
    }
}

fn state_name(state: &ObligationState) -> &'static str {
    match state {
        ObligationState::AwaitingAnswer { .. } => "awaiting_answer",
        ObligationState::Informed => "informed",
        ObligationState::Acknowledged { .. } => "acknowledged",
        ObligationState::Escalated { .. } => "escalated",
        ObligationState::GaveUp { .. } => "gave_up",
        ObligationState::Expired { .. } => "expired",
    }
}

/// One row of `deliveries`, read from a book's obligation and its event log.
struct DeliveryRow<'a> {
    book: &'a ForcedAcknowledgement,
    recipient: &'a str,
    subject: String,
    state: &'static str,
    must_acknowledge: bool,
    opened: EventTime,
    channel: Option<&'static str>,
    first_delivered: Option<EventTime>,
    acknowledged: Option<EventTime>,
    escalated_to: Option<&'a str>,
}

fn delivery_rows(book: &ForcedAcknowledgement) -> Vec<DeliveryRow<'_>> {
    book.obligations()
        .map(|(recipient, subject, obligation)| {
            let events = || {
                book.events()
                    .iter()
                    .filter(|e| &e.recipient == recipient && &e.subject == subject)
            };
            let delivered = events().find_map(|e| match &e.kind {
                AckEventKind::Delivered { channel } => Some((e.at, channel.as_str())),
                _ => None,
            });
            // A late acknowledgement leaves the state escalated or expired; the log has it.
            let acknowledged = events().find_map(|e| match e.kind {
                AckEventKind::Acknowledged { .. } => Some(e.at),
                _ => None,
            });
            let escalated_to = match &obligation.state {
                ObligationState::Escalated { to, .. } => Some(to.as_str()),
                _ => None,
            };
            DeliveryRow {
                book,
                recipient: recipient.as_str(),
                subject: subject_name(subject),
                state: state_name(&obligation.state),
                must_acknowledge: obligation.must_acknowledge,
                opened: obligation.opened,
                channel: delivered.map(|(_, channel)| channel),
                first_delivered: delivered.map(|(at, _)| at),
                acknowledged,
                escalated_to,
            }
        })
        .collect()
}

fn deliveries(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    let rows: Vec<DeliveryRow<'_>> = snapshot.books.iter().flat_map(delivery_rows).collect();
    batch(vec![
        (
            "warning",
            false,
            text(rows.iter().map(|r| r.book.warning().as_str())),
        ),
        (
            "version",
            false,
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.book.version()),
            )),
        ),
        (
            "level",
            false,
            text(rows.iter().map(|r| r.book.level().name())),
        ),
        ("recipient", false, text(rows.iter().map(|r| r.recipient))),
        (
            "subject",
            false,
            text(rows.iter().map(|r| r.subject.as_str())),
        ),
        ("state", false, text(rows.iter().map(|r| r.state))),
        (
            "must_acknowledge",
            false,
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.must_acknowledge))
                    .collect::<BooleanArray>(),
            ),
        ),
        ("opened", false, times(rows.iter().map(|r| Some(r.opened)))),
        (
            "channel",
            true,
            optional_text(rows.iter().map(|r| r.channel)),
        ),
        (
            "first_delivered",
            true,
            times(rows.iter().map(|r| r.first_delivered)),
        ),
        (
            "acknowledged",
            true,
            times(rows.iter().map(|r| r.acknowledged)),
        ),
        (
            "escalated_to",
            true,
            optional_text(rows.iter().map(|r| r.escalated_to)),
        ),
    ])
}

fn dead_letters(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    let rejected = &snapshot.rejected;
    batch(vec![
        (
            "reason",
            false,
            text(rejected.keys().map(|reason| reason.code())),
        ),
        (
            "count",
            false,
            Arc::new(UInt64Array::from_iter_values(rejected.values().copied())),
        ),
    ])
}

fn admin_units(snapshot: &NodeSnapshot) -> Result<RecordBatch, ArrowError> {
    let units = || snapshot.region.admin_units.values();
    batch(vec![
        ("code", false, text(units().map(|u| u.code.as_str()))),
        ("name", false, text(units().map(|u| u.name.as_str()))),
        ("level", false, text(units().map(|u| u.level.to_string()))),
        (
            "parent",
            true,
            optional_text(units().map(|u| u.parent.as_ref().map(|p| p.as_str()))),
        ),
        ("lon", true, float(units().map(|u| u.lon))),
        ("lat", true, float(units().map(|u| u.lat))),
    ])
}
