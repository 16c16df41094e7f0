//! A sharded node's warning publisher on the embedded Kafka broker publishes a version of a
//! basin's warning only as the basin's owner: while its ownership lease has lapsed it holds the
//! version (and those after it) and publishes them in order once the lease holds again, also
//! at a rebalance that keeps the basin here; a version of a basin another node owns, or has
//! taken over, is not published here.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use ractor::{Actor, ActorRef};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tianshan_actors::ask::ask;
use tianshan_core::lifecycle::action_for;
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::{warning_id, Hazard, Level, Status, WarningEvent};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::ownership_lease::OwnershipLease;
use tianshan_pipelines::telemetry::Metrics;
use tianshan_pipelines::warning_publisher::{
    read_topic, OwnerCheck, WarningPublisher, WarningPublisherArgs, WarningPublisherMsg,
};
use tianshan_proto::v1;
use tokio::sync::broadcast;

const TOPIC: &str = "warnings";
const WAIT: Duration = Duration::from_secs(30);

/// Version `version` of the flash-flood warning of `basin`.
fn version_of(basin: &str, version: u32) -> WarningEvent {
    let onset = EventTime(1_719_820_800_000);
    WarningEvent {
        id: warning_id(Hazard::FlashFlood, basin, onset),
        version,
        hazard: Hazard::FlashFlood,
        level: Level::Orange,
        action: action_for(Hazard::FlashFlood, Level::Orange),
        status: if version == 1 {
            Status::Issued
        } else {
            Status::Renewed
        },
        target: basin.to_owned(),
        area_codes: Vec::new(),
        onset,
        issued: onset.plus_ms(i64::from(version) * 600_000),
        expires: onset.plus_ms(6 * HOUR_MS),
        evidence: Vec::new(),
        caused_by: None,
    }
}

/// The (target, version) of every warning on the topic, in the order of its one partition.
fn on_topic(broker: &EmbeddedBroker) -> Vec<(String, u32)> {
    read_topic(broker.bootstrap_servers(), TOPIC)
        .expect("the topic reads")
        .iter()
        .map(|record| {
            let warning = v1::Warning::decode(record.payload.as_slice()).expect("a warning");
            (warning.target, warning.version)
        })
        .collect()
}

async fn publish(publisher: &ActorRef<WarningPublisherMsg>, event: WarningEvent) {
    publisher
        .cast(WarningPublisherMsg::Publish(event))
        .expect("the publisher runs");
    ask(publisher, WarningPublisherMsg::Flush, "flush")
        .await
        .expect("flushed");
}

/// Waits until the topic holds `expected`.
async fn topic_becomes(broker: &EmbeddedBroker, expected: &[(&str, u32)]) {
    let expected: Vec<(String, u32)> = expected
        .iter()
        .map(|(basin, version)| ((*basin).to_owned(), *version))
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let now = on_topic(broker);
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "topic holds {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_published_only_while_this_node_owns_its_basin() {
    let broker = EmbeddedBroker::start(1).expect("broker");
    broker.create_topic(TOPIC, 1).expect("topic");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .expect("producer");
    let metrics = Arc::new(Metrics::default());
    let (warnings, _) = broadcast::channel(16);
    let (publisher, _) = Actor::spawn(
        None,
        WarningPublisher,
        WarningPublisherArgs {
            producer,
            topic: TOPIC.to_owned(),
            published: BTreeSet::new(),
            broadcast: warnings,
            sign_off: None,
            metrics: metrics.clone(),
        },
    )
    .await
    .expect("publisher");
    // A lease of 2 s (half a 4 s session), not confirmed yet; this node owns B0001.
    let lease = OwnershipLease::for_session(Duration::from_secs(4));
    let owned = Arc::new(Mutex::new(BTreeSet::from(["B0001".to_owned()])));
    let owns = {
        let (lease, owned) = (lease.clone(), owned.clone());
        Arc::new(move |event: &WarningEvent| {
            lease.holds() && owned.lock().expect("owned").contains(&event.target)
        })
    };
    publisher
        .cast(WarningPublisherMsg::OnlyOwned(OwnerCheck {
            owns,
            lease: lease.clone(),
        }))
        .expect("the publisher runs");
    let held = || {
        metrics
            .render_prometheus()
            .lines()
            .find_map(|line| line.strip_prefix("tianshan_warnings_held "))
            .map(str::to_owned)
    };

    // Without a lease, versions 1 and 2 are held, in order.
    publish(&publisher, version_of("B0001", 1)).await;
    publish(&publisher, version_of("B0001", 2)).await;
    assert!(on_topic(&broker).is_empty());
    assert_eq!(held().as_deref(), Some("2"));
    let active = ask(&publisher, WarningPublisherMsg::Active, "active")
        .await
        .expect("active");
    assert!(active.is_empty(), "a held version is not published yet");

    // The coordinator answers: both go out, in order, and the next one at once.
    lease.confirm(Instant::now());
    topic_becomes(&broker, &[("B0001", 1), ("B0001", 2)]).await;
    assert_eq!(held().as_deref(), Some("0"));

    // A version of a basin another node owns is not this node's to publish.
    lease.confirm(Instant::now());
    publish(&publisher, version_of("B0002", 1)).await;
    lease.confirm(Instant::now());
    publish(&publisher, version_of("B0001", 3)).await;
    topic_becomes(&broker, &[("B0001", 1), ("B0001", 2), ("B0001", 3)]).await;

    // The lease lapses: version 4 is held, also through a rebalance while it has lapsed.
    let rebalance = || async {
        ask(
            &publisher,
            |port| WarningPublisherMsg::PublishedElsewhere(BTreeSet::new(), port),
            "rebalance",
        )
        .await
        .expect("merged");
    };
    tokio::time::sleep(lease.length()).await;
    publish(&publisher, version_of("B0001", 4)).await;
    assert_eq!(held().as_deref(), Some("1"));
    rebalance().await;
    assert_eq!(held().as_deref(), Some("1"));
    // The coordinator answers at a rebalance that kept B0001 here: version 4 goes out (a kept
    // basin is not rebuilt, so nothing else would derive it again).
    lease.confirm(Instant::now());
    rebalance().await;
    topic_becomes(
        &broker,
        &[("B0001", 1), ("B0001", 2), ("B0001", 3), ("B0001", 4)],
    )
    .await;
    // The lease lapses again and version 5 is held; then B0001 moves to another node: version
    // 5 is that node's to publish, and B0002, come here, publishes at once.
    tokio::time::sleep(lease.length()).await;
    publish(&publisher, version_of("B0001", 5)).await;
    assert_eq!(held().as_deref(), Some("1"));
    {
        let mut owned = owned.lock().expect("owned");
        owned.remove("B0001");
        owned.insert("B0002".to_owned());
    }
    lease.confirm(Instant::now());
    rebalance().await;
    assert_eq!(held().as_deref(), Some("0"));
    publish(&publisher, version_of("B0002", 2)).await;
    topic_becomes(
        &broker,
        &[
            ("B0001", 1),
            ("B0001", 2),
            ("B0001", 3),
            ("B0001", 4),
            ("B0002", 2),
        ],
    )
    .await;
    publisher.stop(None);
}
