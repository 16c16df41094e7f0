//! `tianshan sql` against a running node's `POST /sql`: refused without a token (401) and for a
//! subscriber (403), answered for a duty officer with rows from the node's live tables.

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

/// Runs `tianshan sql QUERY --node NODE [--token TOKEN] --format csv`; returns (success,
/// stdout, stderr).
fn sql(node: &str, token: Option<&str>, query: &str) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tianshan"));
    command.args(["sql", query, "--node", node, "--format", "csv"]);
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    let output = command.output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_http_needs_an_officer_token_and_answers_from_live_tables() {
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
    let node = format!("http://{}", bound.http);
    let query = "SELECT kind, count(*) AS n FROM stations GROUP BY kind ORDER BY kind";

    let outcomes = tokio::task::spawn_blocking(move || {
        (
            sql(&node, None, query),
            sql(&node, Some(SUBSCRIBER), query),
            sql(&node, Some(OFFICER), query),
            sql(&node, Some(OFFICER), "SELECT nope FROM stations"),
        )
    })
    .await
    .expect("the client runs");
    pipeline.stop().await.expect("pipeline stops");
    drop(broker);

    let (anonymous, subscriber, officer, bad) = outcomes;
    assert!(!anonymous.0, "no token: refused");
    assert!(anonymous.2.contains("401"), "{}", anonymous.2);
    assert!(!subscriber.0, "a subscriber may not query SQL");
    assert!(subscriber.2.contains("403"), "{}", subscriber.2);
    assert!(officer.0, "{}", officer.2);
    let count = |kind: &str| {
        region
            .stations
            .values()
            .filter(|station| station.kind.as_str() == kind)
            .count()
    };
    let expected = format!(
        "kind,n\nrain,{}\nwater_level,{}\nweather,{}\n",
        count("rain"),
        count("water_level"),
        count("weather")
    );
    assert_eq!(officer.1, expected);
    assert!(!bad.0, "a bad query fails");
    assert!(bad.2.contains("400"), "{}", bad.2);
}
