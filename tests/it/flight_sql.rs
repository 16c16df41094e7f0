//! Arrow Flight SQL on a running node's gRPC port, through the Python ADBC Flight SQL driver
//! (tests/flight/query.py): rows for a duty officer's token; no token is UNAUTHENTICATED, a
//! subscriber's is PERMISSION_DENIED, a bad query is INVALID_ARGUMENT with DataFusion's message;
//! the driver's catalog browsing (`adbc_get_objects`, `adbc_get_table_schema`) lists the node's
//! tables with their columns; a query with values bound is prepared and answered, an ill-typed
//! value is INVALID_ARGUMENT naming the parameter. Needs python3 with the pinned `adbc-driver-flightsql` and
//! `pyarrow` (installed by .ci/run); without them the test fails, it never skips.
//!
//! The metadata commands through arrow-flight's own client, over a node with known state:
//! `GetTables` with a name pattern, table types and the tables' schemas, `GetDbSchemas`,
//! `GetCatalogs`, `GetTableTypes`, `GetSqlInfo`, and UNAUTHENTICATED without a token; a
//! prepared statement's parameter schema, runs with two different bound rows, and
//! INVALID_ARGUMENT for values missing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use arrow_flight::FlightInfo;
use tianshan_cluster::cluster_config::ClusterConfig;
use tianshan_cluster::flight_sql::FlightSqlApi;
use tianshan_cluster::peer_gather::{PeerGather, PeerTransport};
use tianshan_cluster::server::{serve, GrpcSettings};
use tianshan_cluster::sql_engine::{SnapshotSource, SqlEngine};
use tianshan_cluster::warning_service::{WarningApiSettings, WarningsTopic};
use tianshan_core::access::TokenTable;
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_pipelines::sql::known_state::{gauges, known_state, region as known_region};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::Code;

use crate::storm_on_embedded_broker::{storm_fixture, StormFixture};

const OFFICER: &str = "0f1ce40f1ce40f1ce40f1ce40f1ce40f1ce40f1c";
const SUBSCRIBER: &str = "5ab5c41b3e5ab5c41b3e5ab5c41b3e5ab5c41b3e";

const INSTALL_HINT: &str =
    "python3 -m pip install 'adbc-driver-flightsql==1.13.0' 'pyarrow==26.0.1'";

/// Runs tests/flight/query.py against `uri` with `args` (a query, `--objects` or
/// `--table-schema TABLE`); returns its stdout, or `Err(stdout)` when the driver reported an
/// error. Panics when python3 or its packages are missing.
fn adbc(uri: &str, token: Option<&str>, args: &[&str]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flight/query.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([uri, token.unwrap_or("-")])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 does not run ({e}); install it and {INSTALL_HINT}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.code() {
        Some(0) => Ok(stdout),
        Some(3) => Err(stdout),
        _ => panic!(
            "{} failed ({}): {}\nthe test needs: {INSTALL_HINT}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_flight_sql_needs_an_officer_token_and_answers_from_live_tables() {
    let StormFixture {
        broker,
        settings,
        region,
        ..
    } = storm_fixture();
    let pipeline = NodePipeline::start(&settings, region.clone())
        .await
        .expect("pipeline starts");
    let tokens = TokenTable::from_csv(
        &format!(
            "token,principal,role,department,unit\n\
             {OFFICER},duty-water,duty-officer,water-resources,\n\
             {SUBSCRIBER},app,subscriber,,\n"
        ),
        Path::new("tokens.csv"),
    )
    .expect("tokens");
    let grpc = GrpcSettings {
        api: WarningApiSettings {
            sign_off_desk: pipeline.dissemination.desk.clone(),
            region_unit: pipeline.dissemination.region_unit.clone(),
            tokens: Arc::new(tokens),
            warnings_topic: WarningsTopic::from_kafka(&settings.kafka),
        },
        cluster: ClusterConfig::default(),
        tls: None,
    };
    let bound = serve(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &pipeline,
        region.clone(),
        grpc,
        None,
    )
    .await
    .expect("the node serves");
    let uri = format!("grpc://{}", bound.grpc);
    let query = "SELECT kind, count(*) AS n FROM stations GROUP BY kind ORDER BY kind";
    let by_kind = "SELECT count(*) AS n FROM stations WHERE kind = ? AND report_interval_s > ?";

    let outcomes = tokio::task::spawn_blocking(move || {
        (
            adbc(&uri, Some(OFFICER), &[query]),
            adbc(&uri, None, &[query]),
            adbc(&uri, Some(SUBSCRIBER), &[query]),
            adbc(&uri, Some(OFFICER), &["SELECT nope FROM stations"]),
            adbc(&uri, Some(OFFICER), &["--objects"]),
            adbc(&uri, None, &["--objects"]),
            adbc(&uri, Some(OFFICER), &["--table-schema", "station_windows"]),
            adbc(&uri, Some(OFFICER), &[by_kind, "rain", "0"]),
            adbc(&uri, Some(OFFICER), &[by_kind, "rain", "often"]),
        )
    })
    .await
    .expect("the client runs");
    pipeline.stop().await.expect("pipeline stops");
    drop(broker);

    let (
        officer,
        anonymous,
        subscriber,
        bad,
        objects,
        anonymous_objects,
        table_schema,
        prepared,
        ill_typed,
    ) = outcomes;
    let count = |kind: &str| {
        region
            .stations
            .values()
            .filter(|station| station.kind.as_str() == kind)
            .count()
    };
    assert_eq!(
        officer.expect("an officer's query is answered"),
        format!(
            "kind,n\nrain,{}\nwater_level,{}\nweather,{}\n",
            count("rain"),
            count("water_level"),
            count("weather")
        )
    );
    // With values, the driver prepares the statement and binds them.
    assert_eq!(
        prepared.expect("a prepared query is answered"),
        format!("n\n{}\n", count("rain"))
    );
    let ill_typed = ill_typed.expect_err("text for a number is refused");
    assert!(ill_typed.contains("InvalidArgument"), "{ill_typed}");
    assert!(ill_typed.contains("parameter $2"), "{ill_typed}");
    let anonymous = anonymous.expect_err("no token: refused");
    assert!(anonymous.contains("Unauthenticated"), "{anonymous}");
    assert!(anonymous.contains("no bearer token"), "{anonymous}");
    let subscriber = subscriber.expect_err("a subscriber may not query SQL");
    assert!(subscriber.contains("PermissionDenied"), "{subscriber}");
    let bad = bad.expect_err("a bad query fails");
    assert!(bad.contains("InvalidArgument"), "{bad}");
    assert!(bad.contains("nope"), "DataFusion names the column: {bad}");

    // The driver's catalog browsing: every table of the node, each with its columns in order
    // (the column lists of pipelines/src/sql/tables.rs).
    let objects = objects.expect("an officer browses the catalog");
    let listed: Vec<&str> = objects.lines().collect();
    assert_eq!(listed.len(), 7, "{objects}");
    for table in ["stations", "basin_state", "dead_letters", "admin_units"] {
        let prefix = format!("datafusion.public.{table} TABLE: ");
        assert!(
            listed
                .iter()
                .any(|line| line.starts_with(&prefix) && line.len() > prefix.len()),
            "{table} with columns in {objects}"
        );
    }
    for line in [
        format!("datafusion.public.station_windows TABLE: {STATION_WINDOWS_COLUMNS}"),
        "datafusion.public.warnings TABLE: id,version,hazard,level,action,status,target,\
         area_codes,onset,issued,expires,caused_by"
            .to_owned(),
        "datafusion.public.deliveries TABLE: warning,version,level,recipient,subject,state,\
         must_acknowledge,opened,channel,first_delivered,acknowledged,escalated_to"
            .to_owned(),
    ] {
        assert!(listed.contains(&line.as_str()), "{line} in {objects}");
    }
    let anonymous_objects = anonymous_objects.expect_err("no token: no catalog");
    assert!(
        anonymous_objects.contains("Unauthenticated"),
        "{anonymous_objects}"
    );
    assert_eq!(
        table_schema.expect("an officer reads a table's schema"),
        format!("{STATION_WINDOWS_COLUMNS}\n")
    );
}

const STATION_WINDOWS_COLUMNS: &str =
    "station,kind,tick,duration_min,mm,completeness,last_observation";

/// Serves Flight SQL over the known state (`tianshan_pipelines::sql::known_state`) on
/// 127.0.0.1; returns a client connected to it, without a token.
async fn flight_sql_over_known_state() -> FlightSqlServiceClient<Channel> {
    let tokens = Arc::new(
        TokenTable::from_csv(
            &format!(
                "token,principal,role,department,unit\n\
                 {OFFICER},duty-water,duty-officer,water-resources,\n"
            ),
            Path::new("tokens.csv"),
        )
        .expect("tokens"),
    );
    let snapshot = known_state().await.snapshot;
    let no_peers = PeerGather::new(&[], None, Duration::from_secs(5), &PeerTransport::Plaintext)
        .expect("a node without peers");
    let engine = SqlEngine::new(SnapshotSource::Fixed(Arc::new(snapshot)), no_peers);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    let router = tonic::transport::Server::builder()
        .add_service(FlightSqlApi::new(engine, tokens).into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("an address")
        .connect()
        .await
        .expect("the node accepts connections");
    FlightSqlServiceClient::new(channel)
}

/// Fetches the one endpoint of `info` and returns its batches.
async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<Vec<RecordBatch>, FlightError> {
    let [endpoint] = info.endpoint.as_slice() else {
        panic!("one endpoint: {info:?}");
    };
    let ticket = endpoint.ticket.clone().expect("a ticket");
    client.do_get(ticket).await?.collect().await
}

/// The values of the string column `name` of `batches`.
fn strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch
                .column_by_name(name)
                .expect("the column")
                .as_string::<i32>();
            column
                .iter()
                .map(|value| value.expect("a value").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn code_of(error: FlightError) -> Code {
    match error {
        FlightError::Tonic(status) => status.code(),
        other => panic!("a gRPC status, not {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_metadata_lists_tables_by_pattern_and_needs_a_token() {
    let mut client = flight_sql_over_known_state().await;
    let by_pattern = |pattern: &str, include_schema: bool| CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: Some("pub%".into()),
        table_name_filter_pattern: Some(pattern.into()),
        table_types: vec!["TABLE".into()],
        include_schema,
    };

    // No token: refused before anything is listed, for the FlightInfo and for the data.
    let anonymous = client
        .get_tables(by_pattern("%", false))
        .await
        .expect_err("no token");
    assert_eq!(code_of(anonymous), Code::Unauthenticated);
    client.set_token(OFFICER.into());
    let info = client
        .get_tables(by_pattern("%", false))
        .await
        .expect("an officer lists tables");
    client.clear_token();
    let anonymous = fetch(&mut client, info).await.expect_err("no token");
    assert_eq!(code_of(anonymous), Code::Unauthenticated);
    client.set_token(OFFICER.into());

    // `%` and `_` are SQL LIKE patterns; rows come sorted by name.
    let info = client
        .get_tables(by_pattern("st%", true))
        .await
        .expect("tables");
    let batches = fetch(&mut client, info).await.expect("rows");
    assert_eq!(
        strings(&batches, "table_name"),
        ["station_windows", "stations"]
    );
    assert_eq!(
        strings(&batches, "catalog_name"),
        ["datafusion", "datafusion"]
    );
    assert_eq!(strings(&batches, "db_schema_name"), ["public", "public"]);
    assert_eq!(strings(&batches, "table_type"), ["TABLE", "TABLE"]);
    let schemas: &BinaryArray = batches[0]
        .column_by_name("table_schema")
        .expect("include_schema adds the tables' schemas")
        .as_binary();
    let station_windows: Schema =
        try_schema_from_ipc_buffer(schemas.value(0)).expect("an IPC schema");
    let names: Vec<&str> = station_windows
        .fields()
        .iter()
        .map(|field| field.name().as_str())
        .collect();
    assert_eq!(names.join(","), STATION_WINDOWS_COLUMNS);

    let info = client
        .get_tables(by_pattern("d_a%", false))
        .await
        .expect("tables");
    let batches = fetch(&mut client, info).await.expect("rows");
    assert_eq!(strings(&batches, "table_name"), ["dead_letters"]);
    assert!(batches[0].column_by_name("table_schema").is_none());
    for (filter, expected) in [
        // Another table type, another schema, another catalog: nothing.
        (
            CommandGetTables {
                table_types: vec!["VIEW".into()],
                ..by_pattern("%", false)
            },
            0,
        ),
        (
            CommandGetTables {
                db_schema_filter_pattern: Some("information_schema".into()),
                ..by_pattern("%", false)
            },
            0,
        ),
        (
            CommandGetTables {
                catalog: Some("other".into()),
                ..by_pattern("%", false)
            },
            0,
        ),
        (
            CommandGetTables {
                catalog: Some("datafusion".into()),
                table_types: vec![],
                ..by_pattern("%", false)
            },
            7,
        ),
    ] {
        let info = client.get_tables(filter.clone()).await.expect("tables");
        let rows: usize = fetch(&mut client, info)
            .await
            .expect("rows")
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, expected, "{filter:?}");
    }

    let info = client.get_catalogs().await.expect("catalogs");
    let batches = fetch(&mut client, info).await.expect("rows");
    assert_eq!(strings(&batches, "catalog_name"), ["datafusion"]);
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("datafusion".into()),
            db_schema_filter_pattern: Some("p_b%".into()),
        })
        .await
        .expect("schemas");
    let batches = fetch(&mut client, info).await.expect("rows");
    assert_eq!(strings(&batches, "db_schema_name"), ["public"]);
    let info = client.get_table_types().await.expect("table types");
    let batches = fetch(&mut client, info).await.expect("rows");
    assert_eq!(strings(&batches, "table_type"), ["TABLE"]);

    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
        ])
        .await
        .expect("sql info");
    let batches = fetch(&mut client, info).await.expect("rows");
    let [batch] = batches.as_slice() else {
        panic!("one batch: {batches:?}");
    };
    let names = batch
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>();
    assert_eq!(
        names.values().to_vec(),
        [
            SqlInfo::FlightSqlServerName as u32,
            SqlInfo::FlightSqlServerReadOnly as u32
        ]
    );
    let values = batch.column(1).as_union();
    let name = values.value(0);
    let name = name
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("a string");
    assert_eq!(name.value(0), "tianshan");
    let read_only = values.value(1);
    assert!(read_only.as_boolean().value(0), "read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_statement_runs_with_the_values_bound_to_it() {
    let mut client = flight_sql_over_known_state().await;
    let (first, second) = gauges(&known_region());
    let query = "SELECT station, mm FROM station_windows WHERE station = ? AND duration_min = ?";

    let anonymous = client.prepare(query.into(), None).await;
    assert_eq!(
        code_of(anonymous.expect_err("no token")),
        Code::Unauthenticated
    );
    client.set_token(OFFICER.into());
    let mut prepared = client.prepare(query.into(), None).await.expect("prepares");
    let parameters = prepared.parameter_schema().expect("a parameter schema");
    assert_eq!(
        parameters
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect::<Vec<_>>(),
        [("$1", DataType::Utf8), ("$2", DataType::UInt32)]
    );
    assert_eq!(
        prepared
            .dataset_schema()
            .expect("the answer's schema")
            .fields()
            .len(),
        2
    );
    let unbound = prepared.execute().await;
    assert_eq!(
        code_of(unbound.expect_err("values missing")),
        Code::InvalidArgument
    );

    // The same statement, bound twice: each run answers for its own values.
    let row = |station: &str| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("station", DataType::Utf8, true),
                Field::new("duration", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![station])),
                Arc::new(Int64Array::from(vec![60])),
            ],
        )
        .expect("a row")
    };
    for (station, mm) in [(first.as_str(), 18.0), (second.as_str(), 36.0)] {
        prepared.set_parameters(row(station)).expect("binds");
        let info = prepared.execute().await.expect("plans with its values");
        let batches = fetch(&mut client, info).await.expect("rows");
        assert_eq!(strings(&batches, "station"), [station]);
        let sums: Vec<f64> = batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("mm")
                    .expect("mm")
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(sums, [mm]);
    }

    // One value for two placeholders: refused when the statement is planned with them.
    let one_value = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "station",
            DataType::Utf8,
            true,
        )])),
        vec![Arc::new(StringArray::from(vec![first.as_str()]))],
    )
    .expect("a row");
    prepared.set_parameters(one_value).expect("binds");
    let short = prepared.execute().await;
    assert_eq!(
        code_of(short.expect_err("a value missing")),
        Code::InvalidArgument
    );
    prepared.close().await.expect("closes");
}
