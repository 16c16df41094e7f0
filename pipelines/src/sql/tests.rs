use std::time::Instant;

use tianshan_core::ids::{AreaCode, StationId};
use tianshan_core::region::StationKind;

use super::known_state::{at, known_state, warning, KnownState};
use super::*;

/// The known state's tables, the region, the two gauges and who acknowledged.
async fn node_with_known_state() -> (NodeSql, Arc<Region>, (StationId, StationId), String) {
    let KnownState {
        snapshot,
        region,
        gauges,
        acknowledged_by,
    } = known_state().await;
    let sql = NodeSql::new(&snapshot).expect("tables register");
    (sql, region, gauges, acknowledged_by)
}

async fn csv(sql: &NodeSql, query: &str) -> String {
    let batches = sql.query(query).await.expect("query runs");
    format_batches(&batches, OutputFormat::Csv).expect("csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_over_a_node_with_known_state() {
    let (sql, region, (first, second), acknowledged_by) = node_with_known_state().await;
    assert_eq!(sql.taken_at(), at("11:05"));

    // Window sums of the two gauges at the last tick.
    assert_eq!(
        csv(
            &sql,
            &format!(
                "SELECT station, tick, mm FROM station_windows \
                 WHERE duration_min = 60 AND station IN ('{first}', '{second}') ORDER BY station"
            )
        )
        .await,
        format!(
            "station,tick,mm\n{first},2024-07-01T03:00:00.000Z,18.0\n\
             {second},2024-07-01T03:00:00.000Z,36.0\n"
        )
    );
    assert_eq!(
        csv(
            &sql,
            "SELECT count(*) AS wet FROM station_windows WHERE mm > 0 AND duration_min = 60"
        )
        .await,
        "wet\n2\n"
    );

    // Stations by kind, against the region.
    let mut expected = String::from("kind,stations\n");
    for kind in [
        StationKind::Rain,
        StationKind::WaterLevel,
        StationKind::Weather,
    ] {
        let count = region.stations.values().filter(|s| s.kind == kind).count();
        expected.push_str(&format!("{},{count}\n", kind.as_str()));
    }
    assert_eq!(
        csv(
            &sql,
            "SELECT kind, count(*) AS stations FROM stations GROUP BY kind ORDER BY kind"
        )
        .await,
        expected
    );

    // Active warnings joined with the admin units they reach.
    let mut expected = String::from("id,level,code,name,unit_level\n");
    for code in &sql_warning_codes(&region) {
        let unit = &region.admin_units[code];
        expected.push_str(&format!(
            "FF-B0001-20240701T0300Z,red,{code},{},county\n",
            unit.name
        ));
    }
    assert_eq!(
        csv(
            &sql,
            "SELECT w.id, w.level, a.code, a.name, a.level AS unit_level \
             FROM (SELECT id, level, unnest(area_codes) AS code FROM warnings) w \
             JOIN admin_units a ON a.code = w.code ORDER BY a.code"
        )
        .await,
        expected
    );

    // Deliveries not acknowledged: everyone but the one who acknowledged.
    let total = csv(&sql, "SELECT count(*) AS n FROM deliveries").await;
    let total: usize = total
        .trim_start_matches("n\n")
        .trim()
        .parse()
        .expect("a count");
    assert!(total > 1, "the book has several recipients");
    assert_eq!(
        csv(
            &sql,
            "SELECT count(*) AS n FROM deliveries WHERE acknowledged IS NULL"
        )
        .await,
        format!("n\n{}\n", total - 1)
    );
    assert_eq!(
        csv(
            &sql,
            &format!(
                "SELECT state, first_delivered, acknowledged FROM deliveries \
                 WHERE recipient = '{acknowledged_by}'"
            )
        )
        .await,
        "state,first_delivered,acknowledged\n\
         acknowledged,2024-07-01T03:01:00.000Z,2024-07-01T03:03:00.000Z\n"
    );
    assert_eq!(
        csv(&sql, "SELECT reason, count FROM dead_letters").await,
        "reason,count\ntoo_late,3\n"
    );
}

/// The counties the fixture warning names, in code order.
fn sql_warning_codes(region: &Region) -> Vec<AreaCode> {
    let mut codes = warning(region).area_codes;
    codes.sort();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_written_as_table_csv_and_json() {
    let (sql, _, (first, _), _) = node_with_known_state().await;
    let query = format!(
        "SELECT station, duration_min, mm FROM station_windows \
         WHERE station = '{first}' AND duration_min = 60"
    );
    let batches = sql.query(&query).await.expect("query runs");
    assert_eq!(
        format_batches(&batches, OutputFormat::Json).expect("json"),
        format!(r#"[{{"station":"{first}","duration_min":60,"mm":18.0}}]"#)
    );
    let table = format_batches(&batches, OutputFormat::Table).expect("table");
    assert!(
        table.contains("| station") && table.contains(&format!("| {first} ")),
        "{table}"
    );
    let none = sql
        .query("SELECT station FROM station_windows WHERE mm < 0")
        .await
        .expect("query runs");
    assert_eq!(
        format_batches(&none, OutputFormat::Json).expect("json"),
        "[]"
    );
    let error = sql.query("SELECT nope FROM station_windows").await;
    assert!(matches!(error, Err(PipelineError::Sql(_))), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_writes_list_columns_as_json_text() {
    let (sql, region, _, _) = node_with_known_state().await;
    let answer = csv(
        &sql,
        "SELECT id, area_codes, CASE WHEN version > 1 THEN area_codes END AS none, version \
         FROM warnings",
    )
    .await;
    let warning = warning(&region);
    let [first, second] = &warning.area_codes[..] else {
        panic!(
            "the known warning covers two counties: {:?}",
            warning.area_codes
        );
    };
    // CSV doubles the quotes of the JSON text and quotes the field.
    assert_eq!(
        answer,
        format!(
            "id,area_codes,none,version\n\
             {},\"[\"\"{first}\"\",\"\"{second}\"\"]\",,1\n",
            warning.id
        )
    );
}

#[test]
fn csv_writes_timestamps_inside_lists_as_it_writes_timestamp_columns() {
    use arrow::array::{ListBuilder, TimestampMillisecondBuilder};
    let mut times = ListBuilder::new(TimestampMillisecondBuilder::new().with_timezone("UTC"));
    times.values().append_value(at("11:00").millis());
    times.values().append_null();
    times.append(true);
    times.append_null();
    let times: ArrayRef = Arc::new(times.finish());
    let batch = RecordBatch::try_from_iter([("times", times)]).expect("one column");
    assert_eq!(
        format_batches(&[batch], OutputFormat::Csv).expect("csv"),
        // 11:00 in Urumqi is 03:00 UTC; a null row alone is a quoted empty field, not a blank line.
        "times\n\"[\"\"2024-07-01T03:00:00.000Z\"\",null]\"\n\"\"\n"
    );
}

/// The latency of the top-ten query of BENCHMARKS.md over the shipped region's stations
/// (median of nine runs, printed; run with `--nocapture` to read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ten_hourly_sums_over_the_shipped_region() {
    let (sql, region, (first, second), _) = node_with_known_state().await;
    let query =
        "SELECT station, mm FROM station_windows WHERE duration_min = 60 ORDER BY mm DESC LIMIT 10";
    let mut millis = Vec::new();
    let mut answer = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        answer = sql.query(query).await.expect("query runs");
        millis.push(started.elapsed().as_secs_f64() * 1e3);
    }
    millis.sort_by(f64::total_cmp);
    let rain = region
        .stations
        .values()
        .filter(|s| s.kind == StationKind::Rain)
        .count();
    println!(
        "top ten of {rain} rain gauges ({} stations): median {:.2} ms, min {:.2} ms, max {:.2} ms",
        region.stations.len(),
        millis[4],
        millis[0],
        millis[8]
    );
    let text = format_batches(&answer, OutputFormat::Csv).expect("csv");
    let mut lines = text.lines().skip(1);
    assert_eq!(lines.next(), Some(format!("{second},36.0").as_str()));
    assert_eq!(lines.next(), Some(format!("{first},18.0").as_str()));
    assert_eq!(lines.count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_every_table_with_the_columns_queries_see() {
    let (sql, _, _, _) = node_with_known_state().await;
    assert_eq!(sql.catalog_names(), ["datafusion"]);
    assert_eq!(
        sql.catalog_schemas(),
        [CatalogSchema {
            catalog: "datafusion".into(),
            schema: "public".into(),
        }]
    );
    let tables = sql.catalog_tables().await.expect("the tables open");
    let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin_units",
            "basin_state",
            "dead_letters",
            "deliveries",
            "station_windows",
            "stations",
            "warnings",
        ]
    );
    for table in &tables {
        assert_eq!(
            (
                table.catalog.as_str(),
                table.schema.as_str(),
                table.table_type
            ),
            ("datafusion", "public", "TABLE")
        );
        let queried = sql
            .schema_of(&format!("SELECT * FROM {}", table.name))
            .await
            .expect("the table plans");
        let listed: Vec<&String> = table.columns.fields().iter().map(|f| f.name()).collect();
        let seen: Vec<&String> = queried.fields().iter().map(|f| f.name()).collect();
        assert_eq!(listed, seen, "{}", table.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_query_names_its_parameters_and_runs_with_one_bound_row() {
    let (sql, _, (first, second), _) = node_with_known_state().await;
    let query = "SELECT station, mm FROM station_windows \
                 WHERE station = ? AND duration_min = ? ORDER BY station";
    let prepared = sql.prepare(query).await.expect("plans with placeholders");
    assert_eq!(
        prepared
            .answer
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        ["station", "mm"]
    );
    let parameters: Vec<(String, DataType)> = prepared
        .parameters
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        parameters,
        [
            ("$1".to_string(), DataType::Utf8),
            ("$2".to_string(), DataType::UInt32)
        ],
        "typed as the columns they are compared with"
    );

    // A client binds a 64-bit integer for the duration; it is cast to the column's type.
    let row = |station: &StationId| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("0", DataType::Utf8, true),
                Field::new("1", DataType::Int64, true),
            ])),
            vec![
                Arc::new(arrow::array::StringArray::from(vec![station.to_string()])),
                Arc::new(arrow::array::Int64Array::from(vec![60])),
            ],
        )
        .expect("a row")
    };
    for (station, mm) in [(&first, "18.0"), (&second, "36.0")] {
        let (_, batches) = sql
            .query_bound(query, Some(&row(station)))
            .await
            .expect("runs with its values");
        assert_eq!(
            format_batches(&batches, OutputFormat::Csv).expect("csv"),
            format!("station,mm\n{station},{mm}\n")
        );
    }

    let unbound = sql.query_bound(query, None).await;
    assert!(
        matches!(&unbound, Err(PipelineError::Sql(m)) if m.contains("2 parameters and none")),
        "{unbound:?}"
    );
    let named = sql
        .prepare("SELECT * FROM stations WHERE station = $station")
        .await;
    assert!(
        matches!(&named, Err(PipelineError::Sql(m)) if m.contains("$station is named")),
        "{named:?}"
    );
}
