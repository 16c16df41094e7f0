//! Parquet archives: the warnings a replay would have issued (one row per version) and
//! observation archives in the columns of the CSV observation file, written and read back for
//! `tianshan replay`, `tianshan backtest` and SQL over files.
//!
//! Warnings (`write_warnings_parquet`): `id`, `version` (uint32), `hazard`, `level`, `action`,
//! `status`, `target`, `area_codes` (list of strings), `onset`, `issued`, `expires`
//! (timestamp ms UTC), `caused_by` (nullable), `evidence` (the evidence list as a JSON string);
//! the columns of the live `warnings` SQL table plus `evidence`.
//!
//! Observations ([`OBSERVATION_COLUMNS`]): `station_id`, `event_time` (timestamp ms UTC; any
//! timestamp unit or int64 epoch ms is read), `gateway_id`, `sequence` (uint64), `kind`
//! (`rainfall` or `water_level`), `value` (float64: mm or m), `interval_s` (uint32, null for a
//! water level). Integer and string columns of other widths (int64, large strings) are read too.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::de::DeserializeOwned;
use tianshan_core::ids::{AreaCode, GatewayId, StationId, WarningId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use crate::error::PipelineError;
use crate::sql::tables::{batch, text, warning_columns};

/// The columns of an observation archive, in order.
pub const OBSERVATION_COLUMNS: [&str; 7] = [
    "station_id",
    "event_time",
    "gateway_id",
    "sequence",
    "kind",
    "value",
    "interval_s",
];

fn input_error(path: &Path, detail: impl Into<String>) -> PipelineError {
    PipelineError::Input {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn times(values: impl IntoIterator<Item = EventTime>) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::from_iter_values(values.into_iter().map(EventTime::millis))
            .with_timezone("UTC"),
    )
}

/// Builds the record batch of `warnings`, one row per version, in the given order.
///
/// # Errors
/// Returns [`PipelineError::Setup`] when evidence cannot be written as JSON or the columns do
/// not fit the schema (neither happens for well-formed warnings).
pub fn warnings_batch(warnings: &[WarningEvent]) -> Result<RecordBatch, PipelineError> {
    let evidence = warnings
        .iter()
        .map(|w| serde_json::to_string(&w.evidence))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PipelineError::Setup(format!("evidence as JSON: {e}")))?;
    let mut columns = warning_columns(warnings);
    columns.push(("evidence", false, text(evidence)));
    batch(columns).map_err(|e| PipelineError::Setup(format!("warnings batch: {e}")))
}

/// Writes `batch` to a new Parquet file at `path` (Snappy-compressed).
///
/// # Errors
/// Returns [`PipelineError::Input`] when the file cannot be created or written.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), PipelineError> {
    let file = File::create(path).map_err(|e| input_error(path, e.to_string()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))
        .map_err(|e| input_error(path, e.to_string()))?;
    writer
        .write(batch)
        .map_err(|e| input_error(path, e.to_string()))?;
    writer
        .close()
        .map_err(|e| input_error(path, e.to_string()))?;
    Ok(())
}

/// Reads every record batch of the Parquet file at `path`.
///
/// # Errors
/// Returns [`PipelineError::Input`] when the file cannot be opened or is not Parquet.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, PipelineError> {
    let file = File::open(path).map_err(|e| input_error(path, e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.with_batch_size(65_536).build())
        .map_err(|e| input_error(path, format!("not a Parquet file: {e}")))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| input_error(path, e.to_string()))
}

/// Returns the Arrow schema of the Parquet file at `path` (for a file without rows).
///
/// # Errors
/// Returns [`PipelineError::Input`] when the file cannot be opened or is not Parquet.
pub fn parquet_schema(path: &Path) -> Result<arrow::datatypes::SchemaRef, PipelineError> {
    let file = File::open(path).map_err(|e| input_error(path, e.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| input_error(path, format!("not a Parquet file: {e}")))?;
    Ok(builder.schema().clone())
}

/// Writes `warnings` as a Parquet file, one row per version (see the module's columns).
///
/// # Errors
/// Returns [`PipelineError::Input`] when the file cannot be written.
pub fn write_warnings_parquet(path: &Path, warnings: &[WarningEvent]) -> Result<(), PipelineError> {
    write_parquet(path, &warnings_batch(warnings)?)
}

/// The column `name` of `batch`, cast to `data_type`; the error names the column.
fn column(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
    data_type: &DataType,
) -> Result<ArrayRef, PipelineError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| input_error(path, format!("no column `{name}`")))?;
    cast(array, data_type).map_err(|e| {
        input_error(
            path,
            format!(
                "column `{name}` of type {} is not {data_type}: {e}",
                array.data_type()
            ),
        )
    })
}

fn downcast<'a, T: 'static>(
    path: &Path,
    array: &'a ArrayRef,
    name: &str,
) -> Result<&'a T, PipelineError> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| input_error(path, format!("column `{name}` has an unexpected layout")))
}

/// A non-null string of `array` at `row` (row `at` of the file); the error names both.
fn required<'a>(
    path: &Path,
    array: &'a StringArray,
    name: &str,
    (row, at): (usize, usize),
) -> Result<&'a str, PipelineError> {
    if array.is_null(row) {
        return Err(input_error(
            path,
            format!("row {at}: column `{name}` is null"),
        ));
    }
    Ok(array.value(row))
}

/// Parses a snake_case enum name (hazard, level, action, status) through its serde name.
fn named<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    name: &str,
    row: usize,
) -> Result<T, PipelineError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        input_error(
            path,
            format!("row {row}: column `{name}`: unknown value `{text}`"),
        )
    })
}

/// Reads a warnings file written by [`write_warnings_parquet`] back into warning versions.
///
/// # Errors
/// Returns [`PipelineError::Input`] naming the column (and row) that is missing or malformed.
pub fn read_warnings_parquet(path: &Path) -> Result<Vec<WarningEvent>, PipelineError> {
    let mut warnings = Vec::new();
    let mut row_base = 0;
    for batch in read_parquet(path)? {
        let strings = |name: &str| column(path, &batch, name, &DataType::Utf8);
        let (id, hazard, level, action, status, target, caused_by, evidence) = (
            strings("id")?,
            strings("hazard")?,
            strings("level")?,
            strings("action")?,
            strings("status")?,
            strings("target")?,
            strings("caused_by")?,
            strings("evidence")?,
        );
        let text = |array: &ArrayRef, name: &str| -> Result<StringArray, PipelineError> {
            Ok(downcast::<StringArray>(path, array, name)?.clone())
        };
        let (id, hazard, level, action, status, target, caused_by, evidence) = (
            text(&id, "id")?,
            text(&hazard, "hazard")?,
            text(&level, "level")?,
            text(&action, "action")?,
            text(&status, "status")?,
            text(&target, "target")?,
            text(&caused_by, "caused_by")?,
            text(&evidence, "evidence")?,
        );
        let version = column(path, &batch, "version", &DataType::UInt32)?;
        let version = downcast::<UInt32Array>(path, &version, "version")?;
        let time_columns =
            ["onset", "issued", "expires"].map(|name| column(path, &batch, name, &utc_millis()));
        let [onset, issued, expires] = time_columns;
        let (onset, issued, expires) = (onset?, issued?, expires?);
        let onset = downcast::<TimestampMillisecondArray>(path, &onset, "onset")?;
        let issued = downcast::<TimestampMillisecondArray>(path, &issued, "issued")?;
        let expires = downcast::<TimestampMillisecondArray>(path, &expires, "expires")?;
        let areas = batch
            .column_by_name("area_codes")
            .ok_or_else(|| input_error(path, "no column `area_codes`"))?;
        let areas = downcast::<ListArray>(path, areas, "area_codes")?;
        for row in 0..batch.num_rows() {
            let at = row_base + row;
            let here = (row, at);
            let area_list = areas.value(row);
            let area_list = downcast::<StringArray>(path, &area_list, "area_codes")?;
            let evidence_json = required(path, &evidence, "evidence", here)?;
            warnings.push(WarningEvent {
                id: WarningId::new(required(path, &id, "id", here)?),
                version: version.value(row),
                hazard: named(path, required(path, &hazard, "hazard", here)?, "hazard", at)?,
                level: named(path, required(path, &level, "level", here)?, "level", at)?,
                action: named(path, required(path, &action, "action", here)?, "action", at)?,
                status: named(path, required(path, &status, "status", here)?, "status", at)?,
                target: required(path, &target, "target", here)?.to_owned(),
                area_codes: area_list.iter().flatten().map(AreaCode::new).collect(),
                onset: EventTime(onset.value(row)),
                issued: EventTime(issued.value(row)),
                expires: EventTime(expires.value(row)),
                evidence: serde_json::from_str(evidence_json)
                    .map_err(|e| input_error(path, format!("row {at}: column `evidence`: {e}")))?,
                caused_by: (!caused_by.is_null(row)).then(|| WarningId::new(caused_by.value(row))),
            });
        }
        row_base += batch.num_rows();
    }
    Ok(warnings)
}

/// Builds the record batch of an observation archive (see [`OBSERVATION_COLUMNS`]).
///
/// # Errors
/// Returns [`PipelineError::Setup`] for a reading the archive's columns cannot hold (lightning,
/// deformation, weather), naming its station and time.
pub fn observations_batch(observations: &[Observation]) -> Result<RecordBatch, PipelineError> {
    let mut kinds = Vec::with_capacity(observations.len());
    let mut values = Vec::with_capacity(observations.len());
    let mut intervals = Vec::with_capacity(observations.len());
    for observation in observations {
        let (kind, value, interval) = match observation.reading {
            Reading::Rainfall { mm, interval_s } => ("rainfall", mm, Some(interval_s)),
            Reading::WaterLevel { metres } => ("water_level", metres, None),
            _ => {
                return Err(PipelineError::Setup(format!(
                    "observation archives hold rainfall and water levels; station {} at {} \
                     reports {}",
                    observation.station,
                    observation.event_time.to_beijing_rfc3339(),
                    observation.reading.kind()
                )))
            }
        };
        kinds.push(kind);
        values.push(value);
        intervals.push(interval);
    }
    let columns: [(bool, ArrayRef); 7] = [
        (false, text(observations.iter().map(|o| o.station.as_str()))),
        (false, times(observations.iter().map(|o| o.event_time))),
        (false, text(observations.iter().map(|o| o.gateway.as_str()))),
        (
            false,
            Arc::new(UInt64Array::from_iter_values(
                observations.iter().map(|o| o.sequence),
            )),
        ),
        (false, text(kinds)),
        (false, Arc::new(Float64Array::from(values))),
        (true, Arc::new(UInt32Array::from(intervals))),
    ];
    let schema = Schema::new(
        OBSERVATION_COLUMNS
            .iter()
            .zip(&columns)
            .map(|(name, (nullable, array))| {
                Field::new(*name, array.data_type().clone(), *nullable)
            })
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, array)| array).collect(),
    )
    .map_err(|e| PipelineError::Setup(format!("observations batch: {e}")))
}

/// Writes `observations` as an observation archive.
///
/// # Errors
/// Returns [`PipelineError`] for a reading the archive cannot hold or a file that cannot be
/// written.
pub fn write_observations_parquet(
    path: &Path,
    observations: &[Observation],
) -> Result<(), PipelineError> {
    write_parquet(path, &observations_batch(observations)?)
}

/// Reads an observation archive in file order.
///
/// # Errors
/// Returns [`PipelineError::Input`] naming the column, and the row where it applies, of the
/// first missing or malformed value.
pub fn read_observations_parquet(path: &Path) -> Result<Vec<Observation>, PipelineError> {
    let mut observations = Vec::new();
    let mut row_base = 0;
    for batch in read_parquet(path)? {
        let [station, time, gateway, sequence, kind, value, interval] = OBSERVATION_COLUMNS;
        let station_col = column(path, &batch, station, &DataType::Utf8)?;
        // Any timestamp unit, or plain integers as epoch milliseconds (as in the CSV file).
        let time_col = column(
            path,
            &batch,
            time,
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let gateway_col = column(path, &batch, gateway, &DataType::Utf8)?;
        let sequence_col = column(path, &batch, sequence, &DataType::UInt64)?;
        let kind_col = column(path, &batch, kind, &DataType::Utf8)?;
        let value_col = column(path, &batch, value, &DataType::Float64)?;
        let interval_col = column(path, &batch, interval, &DataType::UInt32)?;
        let stations = downcast::<StringArray>(path, &station_col, station)?;
        let times = downcast::<TimestampMillisecondArray>(path, &time_col, time)?;
        let gateways = downcast::<StringArray>(path, &gateway_col, gateway)?;
        let sequences = downcast::<UInt64Array>(path, &sequence_col, sequence)?;
        let kinds = downcast::<StringArray>(path, &kind_col, kind)?;
        let values = downcast::<Float64Array>(path, &value_col, value)?;
        let intervals = downcast::<UInt32Array>(path, &interval_col, interval)?;
        for row in 0..batch.num_rows() {
            let at = row_base + row;
            let not_null = |array: &dyn Array, name: &str| {
                if array.is_null(row) {
                    Err(input_error(
                        path,
                        format!("row {at}: column `{name}` is null"),
                    ))
                } else {
                    Ok(())
                }
            };
            not_null(stations, station)?;
            not_null(times, time)?;
            not_null(gateways, gateway)?;
            not_null(sequences, sequence)?;
            not_null(kinds, kind)?;
            not_null(values, value)?;
            let reading = match kinds.value(row) {
                "rainfall" => {
                    not_null(intervals, interval)?;
                    Reading::Rainfall {
                        mm: values.value(row),
                        interval_s: intervals.value(row),
                    }
                }
                "water_level" => Reading::WaterLevel {
                    metres: values.value(row),
                },
                other => {
                    return Err(input_error(
                        path,
                        format!(
                            "row {at}: column `kind`: {other:?} is not rainfall or water_level"
                        ),
                    ))
                }
            };
            observations.push(Observation {
                station: StationId::new(stations.value(row)),
                event_time: EventTime(times.value(row)),
                gateway: GatewayId::new(gateways.value(row)),
                sequence: sequences.value(row),
                reading,
            });
        }
        row_base += batch.num_rows();
    }
    Ok(observations)
}

#[cfg(test)]
mod tests;
