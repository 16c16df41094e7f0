//! Round trips of warning and observation archives, and the errors of malformed files.

use std::path::PathBuf;

use tianshan_core::warning::{warning_id, Action, Evidence, Hazard, Level, Status};

use super::*;

/// A file in the temporary folder, unique to this process and test; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "tianshan-archive-{}-{name}.parquet",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn time(text: &str) -> EventTime {
    EventTime::parse_rfc3339(text).expect("test time")
}

fn warnings() -> Vec<WarningEvent> {
    let onset = time("2024-07-01T10:20:00Z");
    let ff = warning_id(Hazard::FlashFlood, "B0003", onset);
    vec![
        WarningEvent {
            id: ff.clone(),
            version: 1,
            hazard: Hazard::FlashFlood,
            level: Level::Orange,
            action: Action::PrepareToEvacuate,
            status: Status::Issued,
            target: "B0003".into(),
            area_codes: vec![AreaCode::new("654002"), AreaCode::new("654002100")],
            onset,
            issued: onset,
            expires: time("2024-07-01T13:20:00Z"),
            evidence: vec![Evidence {
                quantity: "areal_rain_3h".into(),
                value: 61.25,
                threshold: 60.0,
                completeness: 0.75,
                stations: vec!["R0001".into(), "R0002".into()],
            }],
            caused_by: None,
        },
        WarningEvent {
            id: warning_id(Hazard::DebrisFlow, "B0003", onset),
            version: 2,
            hazard: Hazard::DebrisFlow,
            level: Level::Red,
            action: Action::AllClear,
            status: Status::Cancelled,
            target: "B0003".into(),
            area_codes: vec![],
            onset,
            issued: time("2024-07-01T16:00:00Z"),
            expires: time("2024-07-01T16:00:00Z"),
            evidence: vec![],
            caused_by: Some(ff),
        },
    ]
}

#[test]
fn warnings_read_back_as_written() {
    let file = TempFile::new("warnings");
    write_warnings_parquet(&file.0, &warnings()).expect("written");
    assert_eq!(read_warnings_parquet(&file.0).expect("read"), warnings());
    // The schema carries the live table's columns plus the evidence.
    let batches = read_parquet(&file.0).expect("read");
    let names: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "version",
            "hazard",
            "level",
            "action",
            "status",
            "target",
            "area_codes",
            "onset",
            "issued",
            "expires",
            "caused_by",
            "evidence"
        ]
    );
}

fn observations() -> Vec<Observation> {
    vec![
        Observation {
            station: StationId::new("R0001"),
            event_time: time("2024-07-01T10:05:00Z"),
            gateway: GatewayId::new("gw-1"),
            sequence: 7,
            reading: Reading::Rainfall {
                mm: 2.5,
                interval_s: 300,
            },
        },
        Observation {
            station: StationId::new("W0001"),
            event_time: time("2024-07-01T10:05:00Z"),
            gateway: GatewayId::new("gw-2"),
            sequence: 8,
            reading: Reading::WaterLevel { metres: 101.25 },
        },
    ]
}

#[test]
fn observations_read_back_as_written() {
    let file = TempFile::new("observations");
    write_observations_parquet(&file.0, &observations()).expect("written");
    assert_eq!(
        read_observations_parquet(&file.0).expect("read"),
        observations()
    );
}

#[test]
fn observation_archives_of_other_widths_are_read() {
    // Int64 epoch milliseconds and int64 sequence, as pandas writes them.
    let file = TempFile::new("widths");
    let batch = RecordBatch::try_from_iter([
        ("station_id", text(["R0001"])),
        (
            "event_time",
            Arc::new(arrow::array::Int64Array::from(vec![1_719_828_300_000])) as ArrayRef,
        ),
        ("gateway_id", text(["gw-1"])),
        (
            "sequence",
            Arc::new(arrow::array::Int64Array::from(vec![7])) as ArrayRef,
        ),
        ("kind", text(["rainfall"])),
        ("value", Arc::new(Float64Array::from(vec![2.5])) as ArrayRef),
        (
            "interval_s",
            Arc::new(arrow::array::Int64Array::from(vec![300])) as ArrayRef,
        ),
    ])
    .expect("batch");
    write_parquet(&file.0, &batch).expect("written");
    assert_eq!(
        read_observations_parquet(&file.0).expect("read"),
        observations()[..1]
    );
}

#[test]
fn malformed_archives_name_the_column_and_row() {
    let file = TempFile::new("malformed");
    let mut batch = observations_batch(&observations()).expect("batch");
    // A kind the archive does not know, in the second row.
    let kind = batch.schema().index_of("kind").expect("kind column");
    let mut columns = batch.columns().to_vec();
    columns[kind] = text(["rainfall", "snow_depth"]);
    batch = RecordBatch::try_new(batch.schema(), columns).expect("batch");
    write_parquet(&file.0, &batch).expect("written");
    let error = read_observations_parquet(&file.0)
        .expect_err("bad kind")
        .to_string();
    assert!(
        error.ends_with("row 1: column `kind`: \"snow_depth\" is not rainfall or water_level"),
        "{error}"
    );
    // A file without the value column.
    let without = batch.project(&[0, 1, 2, 3, 4, 6]).expect("projection");
    write_parquet(&file.0, &without).expect("written");
    let error = read_observations_parquet(&file.0)
        .expect_err("no value")
        .to_string();
    assert!(error.ends_with("no column `value`"), "{error}");
    // Not Parquet at all.
    std::fs::write(&file.0, "station_id,event_time\n").expect("written");
    let error = read_warnings_parquet(&file.0).expect_err("csv").to_string();
    assert!(error.contains("not a Parquet file"), "{error}");
    // Lightning has no place in the archive's columns.
    let strike = Observation {
        reading: Reading::Lightning {
            lat: 43.0,
            lon: 87.0,
            peak_current_ka: -12.0,
            positive: false,
            cloud_to_ground: true,
        },
        ..observations()[0].clone()
    };
    let error = observations_batch(&[strike])
        .expect_err("lightning")
        .to_string();
    assert!(error.contains("reports lightning"), "{error}");
}

#[tokio::test]
async fn sql_runs_over_archive_files() {
    let warnings_file = TempFile::new("sql-warnings");
    let observations_file = TempFile::new("sql-observations");
    write_warnings_parquet(&warnings_file.0, &warnings()).expect("written");
    write_observations_parquet(&observations_file.0, &observations()).expect("written");
    let sql = crate::sql::ArchiveSql::new(&[
        ("w".to_owned(), warnings_file.0.clone()),
        ("obs".to_owned(), observations_file.0.clone()),
    ])
    .expect("registered");
    let batches = sql
        .query("SELECT hazard, level, status FROM w ORDER BY version")
        .await
        .expect("query");
    let text = crate::sql::format_batches(&batches, crate::sql::OutputFormat::Csv).expect("csv");
    assert!(
        text.starts_with("hazard,level,status")
            && text.contains("\nflash_flood,orange,issued")
            && text.contains("\ndebris_flow,red,cancelled"),
        "{text}"
    );
    let batches = sql
        .query("SELECT kind, SUM(value) AS total FROM obs GROUP BY kind ORDER BY kind")
        .await
        .expect("query");
    let text = crate::sql::format_batches(&batches, crate::sql::OutputFormat::Csv).expect("csv");
    assert_eq!(text, "kind,total\nrainfall,2.5\nwater_level,101.25\n");
    let twice = crate::sql::ArchiveSql::new(&[
        ("w".to_owned(), warnings_file.0.clone()),
        ("w".to_owned(), warnings_file.0.clone()),
    ]);
    assert!(matches!(twice, Err(PipelineError::Sql(message)) if message.contains("twice")));
}
