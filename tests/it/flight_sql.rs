//! Arrow Flight SQL on a running node's gRPC port, through the Python ADBC Flight SQL driver
//! (tests/flight/query.py): rows for a duty officer's token; no token is UNAUTHENTICATED, a
//! subscriber's is PERMISSION_DENIED, a bad query is INVALID_ARGUMENT with DataFusion's message.
//! Needs python3 with the pinned `adbc-driver-flightsql` and `pyarrow` (installed by .ci/run);
//! without them the test fails, it never skips.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tianshan_cluster::cluster_config::ClusterConfig;
use tianshan_cluster::server::{serve, GrpcSettings};
use tianshan_cluster::warning_service::{WarningApiSettings, WarningsTopic};
use tianshan_core::access::TokenTable;
use tianshan_pipelines::node_pipeline::NodePipeline;

use crate::storm_on_embedded_broker::{storm_fixture, StormFixture};

const OFFICER: &str = "0f1ce40f1ce40f1ce40f1ce40f1ce40f1ce40f1c";
const SUBSCRIBER: &str = "5ab5c41b3e5ab5c41b3e5ab5c41b3e5ab5c41b3e";

const INSTALL_HINT: &str =
    "python3 -m pip install 'adbc-driver-flightsql==1.13.0' 'pyarrow==26.0.1'";

/// Runs tests/flight/query.py against `uri`; returns its stdout, or `Err(stdout)` when the
/// driver reported an error. Panics when python3 or its packages are missing.
fn adbc_query(uri: &str, token: Option<&str>, query: &str) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flight/query.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([uri, token.unwrap_or("-"), query])
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

    let outcomes = tokio::task::spawn_blocking(move || {
        (
            adbc_query(&uri, Some(OFFICER), query),
            adbc_query(&uri, None, query),
            adbc_query(&uri, Some(SUBSCRIBER), query),
            adbc_query(&uri, Some(OFFICER), "SELECT nope FROM stations"),
        )
    })
    .await
    .expect("the client runs");
    pipeline.stop().await.expect("pipeline stops");
    drop(broker);

    let (officer, anonymous, subscriber, bad) = outcomes;
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
    let anonymous = anonymous.expect_err("no token: refused");
    assert!(anonymous.contains("Unauthenticated"), "{anonymous}");
    assert!(anonymous.contains("no bearer token"), "{anonymous}");
    let subscriber = subscriber.expect_err("a subscriber may not query SQL");
    assert!(subscriber.contains("PermissionDenied"), "{subscriber}");
    let bad = bad.expect_err("a bad query fails");
    assert!(bad.contains("InvalidArgument"), "{bad}");
    assert!(bad.contains("nope"), "DataFusion names the column: {bad}");
}
