//! The storm scenario through the real pipeline on the embedded Kafka-protocol broker: the exact
//! warning events (golden file), who the books hold to acknowledge (books golden file), every
//! rejection on the dead-letter topic with its reason, the
//! accounting identity, and a restart in the middle that changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::ask::ask;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, Anomaly, Scenario, StormConfig};
use tianshan_pipelines::config::KafkaConfig;
use tianshan_pipelines::gateway::{gateway_producer, produce_all, scenario_records, GatewayRecord};
use tianshan_pipelines::node_pipeline::{NodePipeline, PipelineSettings};
use tianshan_pipelines::warning_publisher::read_topic;
use tianshan_proto::v1;

use crate::broker_proxy::BrokerProxy;
use crate::deadline::{finishes_within, STORM_TEST_LIMIT};
use crate::golden_warnings::{
    books_settled_text, golden_line, golden_text, read_books_golden, read_golden, BOOKS_GOLDEN,
    GOLDEN,
};
use crate::kafka_under_test::{KafkaUnderTest, Proxy};

fn region() -> Arc<Region> {
    Arc::new(
        Region::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/regions/xinjiang"
        )))
        .expect("region loads"),
    )
}

/// Logs to the test output when `RUST_LOG` is set.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

fn settings(kafka: KafkaConfig) -> PipelineSettings {
    PipelineSettings {
        kafka,
        pipeline: Default::default(),
        windows: Default::default(),
        flash_flood: Default::default(),
        lifecycle: Default::default(),
        debris_flow: Default::default(),
        lightning_fire: Default::default(),
        landslide: Default::default(),
        snowmelt: Default::default(),
        dissemination: Default::default(),
        agency_alerts: Default::default(),
    }
}

/// Waits until the node has decided every one of `expected` live observations.
pub(crate) async fn wait_until_decided(pipeline: &NodePipeline, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if pipeline.metrics.has_decided(expected) {
            let a = pipeline.metrics.accounting();
            assert_eq!(a.received, expected, "no observation is read twice as live");
            return;
        }
        let a = pipeline.metrics.accounting();
        assert!(
            Instant::now() < deadline,
            "pipeline did not decide all observations in time: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The warning events on the topic as golden lines, sorted.
pub(crate) fn warning_lines(kafka: &KafkaConfig) -> Vec<String> {
    let mut lines: Vec<String> = read_topic(&kafka.bootstrap_servers, &kafka.topics.warnings)
        .expect("warnings topic reads")
        .iter()
        .map(|record| {
            golden_line(
                &v1::Warning::decode(record.payload.as_slice()).expect("warning record decodes"),
            )
        })
        .collect();
    lines.sort();
    lines
}

pub(crate) fn expected_rejections(scenario: &Scenario) -> BTreeMap<String, usize> {
    let reasons = [
        (Anomaly::Malformed, "malformed"),
        (Anomaly::UnknownStation, "unknown_station"),
        (Anomaly::OutOfRange, "qc_out_of_range"),
        (Anomaly::StuckSensor, "qc_stuck_sensor"),
        (Anomaly::FutureTimestamp, "qc_future_timestamp"),
        (Anomaly::Late, "too_late"),
        (Anomaly::Duplicate, "duplicate"),
    ];
    reasons
        .iter()
        .map(|(anomaly, code)| (code.to_string(), scenario.count(*anomaly)))
        .collect()
}

pub(crate) fn dead_letter_reasons(kafka: &KafkaConfig) -> BTreeMap<String, usize> {
    let mut reasons = BTreeMap::new();
    for record in read_topic(&kafka.bootstrap_servers, &kafka.topics.dead_letters)
        .expect("dead-letter topic reads")
    {
        let reason = record
            .headers
            .get("reason")
            .cloned()
            .unwrap_or_else(|| "missing reason header".into());
        assert!(
            record.headers.contains_key("source-offset"),
            "dead letter names its source offset"
        );
        *reasons.entry(reason).or_default() += 1;
    }
    reasons
}

fn check_golden(lines: &[String]) {
    let text = golden_text(lines.to_vec());
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &text).expect("golden file writes");
    }
    assert_eq!(text, read_golden(), "warning events differ from {GOLDEN}");
}

/// A broker with the node's topics, and the storm scenario as gateway records.
pub(crate) struct StormFixture {
    pub(crate) broker: KafkaUnderTest,
    pub(crate) settings: PipelineSettings,
    pub(crate) region: Arc<Region>,
    pub(crate) scenario: Scenario,
    pub(crate) records: Vec<GatewayRecord>,
}

/// The storm on a fresh broker ([`KafkaUnderTest`]), without a proxy in front.
pub(crate) fn storm_fixture() -> StormFixture {
    storm_fixture_with(Proxy::None).0
}

/// The storm on a fresh broker, and the proxy in front of it when asked for and possible.
pub(crate) fn storm_fixture_with(proxy: Proxy) -> (StormFixture, Option<BrokerProxy>) {
    init_logging();
    let (broker, kafka, front) = KafkaUnderTest::start(proxy);
    eprintln!("storm on the {}", broker.describe());
    let mut settings = settings(kafka);
    if !matches!(broker, KafkaUnderTest::Embedded(_)) {
        // A broker process answers fetches later than the embedded one: a partition that is
        // only slow must not count as idle, or its records arrive after their tick.
        settings.pipeline.partition_idle_after = "15s".into();
    }
    let region = region();
    let scenario = storm_scenario(&region, &StormConfig::default());
    let records = scenario_records(&scenario, &settings.kafka.topics);
    (
        StormFixture {
            broker,
            settings,
            region,
            scenario,
            records,
        },
        front,
    )
}

pub(crate) async fn produce(bootstrap: &str, records: &[GatewayRecord]) {
    let producer = gateway_producer(bootstrap).expect("producer");
    produce_all(&producer, records)
        .await
        .expect("gateway produces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_scenario_produces_the_golden_warnings_and_accounts_for_every_message() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            settings,
            region,
            scenario,
            records,
        } = storm_fixture();

        // The gateway's log is written before the node joins, so every partition holds data when it
        // is assigned and the run is a deterministic replay of that log.
        produce(&settings.kafka.bootstrap_servers, &records).await;
        let pipeline = NodePipeline::start(&settings, region.clone())
            .await
            .expect("pipeline starts");
        wait_until_decided(&pipeline, records.len() as u64).await;
        pipeline.flush().await.expect("flush");
        let accounting = pipeline.metrics.accounting();
        let published = pipeline.metrics.warnings_published();
        // Nobody signs in this test: orange and red drafts still reach responsible persons at once,
        // while the public (CAP feed, SMS lists, loudspeakers) waits for sign-off.
        let mut coverage = pipeline.dissemination.coverage().await.expect("coverage");
        for _ in 0..100 {
            if coverage.delivered > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            coverage = pipeline.dissemination.coverage().await.expect("coverage");
        }
        let cap_messages = pipeline.dissemination.cap_feed.identifiers();
        let tree = pipeline.dissemination.region_unit.clone();
        let books_text = books_settled_text(move || {
            let tree = tree.clone();
            async move {
                ask(&tree, AdminUnitMsg::Books, "acknowledgement books")
                    .await
                    .expect("the tree answers")
            }
        })
        .await;
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(BOOKS_GOLDEN, &books_text).expect("books golden file writes");
        }
        assert_eq!(
            books_text,
            read_books_golden(),
            "the books differ from {BOOKS_GOLDEN}"
        );
        let metrics_text = pipeline.metrics.render_prometheus();
        pipeline.stop().await.expect("pipeline stops");
        assert!(published > 0, "{metrics_text}");
        assert!(
            coverage.targeted > 0 && coverage.must_acknowledge > 0,
            "{coverage:?}"
        );
        assert!(
            metrics_text.contains("tianshan_deliveries_total{channel=\"app\""),
            "{metrics_text}"
        );
        assert!(
            cap_messages.is_empty(),
            "unsigned drafts never reach the public CAP feed: {cap_messages:?}"
        );

        // in = applied + rejected, and the rejections are exactly the designed anomalies.
        assert_eq!(
            accounting.received,
            accounting.applied + accounting.rejected
        );
        let expected = expected_rejections(&scenario);
        assert_eq!(
            accounting.rejected as usize,
            expected.values().sum::<usize>()
        );
        assert_eq!(dead_letter_reasons(&settings.kafka), expected);

        let lines = warning_lines(&settings.kafka);
        assert!(
            lines.iter().any(|l| l.contains("LEVEL_RED")),
            "one basin reaches evacuate-immediately: {lines:#?}"
        );
        let orange_or_red = lines
            .iter()
            .filter(|l| l.contains("LEVEL_ORANGE") || l.contains("LEVEL_RED"))
            .map(|l| l.split(' ').next().unwrap_or_default())
            .collect::<std::collections::BTreeSet<_>>();
        assert!(
            orange_or_red.len() >= 3,
            "at least three basins reach prepare-to-evacuate: {lines:#?}"
        );
        let storm_lines = || {
            lines
                .iter()
                .filter(|l| l.starts_with("FF-") || l.starts_with("DF-"))
        };
        let issued = storm_lines()
            .filter(|l| l.contains("STATUS_ISSUED"))
            .count();
        let cancelled = storm_lines()
            .filter(|l| l.contains("STATUS_CANCELLED"))
            .count();
        assert_eq!(
            issued, cancelled,
            "every flash-flood and debris-flow warning is cancelled once the storm has passed"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("DF-") && l.contains("LEVEL_RED")),
            "the chain raises a debris-flow warning to red: {lines:#?}"
        );
        let fire: Vec<&String> = lines.iter().filter(|l| l.starts_with("LF-")).collect();
        assert!(
            fire.iter().any(|l| l.contains("STATUS_ISSUED"))
                && !fire.iter().any(|l| l.contains("STATUS_CANCELLED")),
            "the lightning burst puts the dry forest zone under a fire watch that outlasts the storm: {fire:#?}"
        );
        check_golden(&lines);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_node_mid_storm_gives_the_same_warnings_and_loses_nothing() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            settings,
            region,
            scenario,
            records,
        } = storm_fixture();
        let (first, second) = records.split_at(records.len() / 2);

        produce(&settings.kafka.bootstrap_servers, first).await;
        let node_a = NodePipeline::start(&settings, region.clone())
            .await
            .expect("first node starts");
        wait_until_decided(&node_a, first.len() as u64).await;
        let a = node_a.metrics.accounting();
        node_a.stop().await.expect("first node stops and commits");

        produce(&settings.kafka.bootstrap_servers, second).await;
        let node_b = NodePipeline::start(&settings, region.clone())
            .await
            .expect("second node starts");
        assert!(
            !node_b.metrics.is_ready(),
            "not ready before its partitions are assigned and rebuilt"
        );
        wait_until_decided(&node_b, second.len() as u64).await;
        assert!(
            node_b.metrics.is_ready(),
            "ready once it re-read the first half up to the committed offsets"
        );
        node_b.flush().await.expect("flush");
        let b = node_b.metrics.accounting();
        node_b.stop().await.expect("second node stops");

        assert_eq!(
            b.rebuilt as usize,
            first.len(),
            "the second node rebuilt its windows from the first half"
        );
        assert_eq!(
            (a.applied + a.rejected + b.applied + b.rejected) as usize,
            records.len(),
            "no observation lost or counted twice"
        );
        assert_eq!(
            dead_letter_reasons(&settings.kafka),
            expected_rejections(&scenario)
        );
        check_golden(&warning_lines(&settings.kafka));
    })
    .await;
}
