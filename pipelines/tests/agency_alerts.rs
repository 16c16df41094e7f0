//! Other agencies' CAP alerts end to end on the embedded Kafka broker: the consumer issues them
//! to a real sign-off desk over a real dissemination tree (the Xinjiang admin divisions, the
//! synthetic directory, a courier that records), dead-letters what it cannot take with its
//! reason, and a restarted consumer re-reads the topic without issuing anything twice while
//! still placing a later update in its thread. A second member joining the group takes some
//! partitions and re-reads only those; the first goes on with the rest without re-reading
//! them (cooperative rebalancing). The alerts are the fixtures of
//! `shared/reference/cap/examples/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tianshan_actors::admin_unit::{
    AdminUnitActor, AdminUnitArgs, AdminUnitMsg, DeliveryRequest, Dissemination,
};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::{SignOffDesk, SignOffDeskArgs, SignOffDeskMsg};
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::agency_alert::agency_warning_id;
use tianshan_core::cap::CapStatus;
use tianshan_core::dissemination::acknowledgement::{
    AcknowledgementConfig, DeliveryKey, DeliveryOutcome,
};
use tianshan_core::dissemination::recipients::Directory;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AgencyId, AreaCode};
use tianshan_core::region::Region;
use tianshan_core::signoff::{Department, Draft, DraftOrigin, DraftScope, SignOffPolicy};
use tianshan_core::warning::{Hazard, Level, Status};
use tianshan_pipelines::agency_alerts::{AgencyAlertAccounting, AgencyAlerts, AgencyAlertsConfig};
use tianshan_pipelines::config::{KafkaConfig, TopicsConfig};
use tianshan_pipelines::dead_letters::DeadLetterWriter;
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tokio::sync::{mpsc, watch};

const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/cap/examples/"
);
const SENDER: &str = "ews@example.invalid";
const FIRST: &str = "XJ-EWS-654025-20240701T0830-LS-0001";
const WAIT: Duration = Duration::from_secs(60);

/// A courier whose every delivery succeeds at once; it passes each delivery key to the test.
struct RecordingCourier;

impl Actor for RecordingCourier {
    type Msg = DeliveryRequest;
    type State = mpsc::UnboundedSender<DeliveryKey>;
    type Arguments = mpsc::UnboundedSender<DeliveryKey>;

    async fn pre_start(
        &self,
        _me: ActorRef<DeliveryRequest>,
        sent: mpsc::UnboundedSender<DeliveryKey>,
    ) -> Result<mpsc::UnboundedSender<DeliveryKey>, ActorProcessingErr> {
        Ok(sent)
    }

    async fn handle(
        &self,
        _me: ActorRef<DeliveryRequest>,
        request: DeliveryRequest,
        sent: &mut mpsc::UnboundedSender<DeliveryKey>,
    ) -> Result<(), ActorProcessingErr> {
        sent.send(request.delivery.key.clone())?;
        request.report_to.cast(AdminUnitMsg::Delivered {
            key: request.delivery.key,
            outcome: DeliveryOutcome::Delivered,
        })?;
        Ok(())
    }
}

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{EXAMPLES}{name}")).expect("the CAP fixture reads")
}

/// The landslide example as a later message of its thread, sent at `hh_mm`, referencing the
/// listed (identifier, sent hh:mm) messages of the same sender.
fn follow_up(identifier: &str, hh_mm: &str, msg_type: &str, references: &[(&str, &str)]) -> String {
    let listed: Vec<String> = references
        .iter()
        .map(|(id, at)| format!("{SENDER},{id},2024-07-01T{at}:00+08:00"))
        .collect();
    example("valid-xinjiang-landslide.xml")
        .replace(FIRST, identifier)
        .replace(
            "<sent>2024-07-01T08:30:00+08:00</sent>",
            &format!("<sent>2024-07-01T{hh_mm}:00+08:00</sent>"),
        )
        .replace(
            "<msgType>Alert</msgType>",
            &format!("<msgType>{msg_type}</msgType>"),
        )
        .replace(
            "</note>",
            &format!("</note>\n  <references>{}</references>", listed.join(" ")),
        )
}

/// The desk, the tree under it and what the courier was asked to deliver.
struct Desk {
    desk: ActorRef<SignOffDeskMsg>,
    region_unit: ActorRef<AdminUnitMsg>,
    courier: ActorRef<DeliveryRequest>,
    deliveries: mpsc::UnboundedReceiver<DeliveryKey>,
}

async fn start_desk(region: &Region) -> Desk {
    let tree = AdminTree::try_from_units(&region.admin_units).expect("the tree builds");
    let directory = Directory::synthetic(&tree, 2);
    let (sent, deliveries) = mpsc::unbounded_channel();
    let (courier, _) = Actor::spawn(None, RecordingCourier, sent)
        .await
        .expect("the courier starts");
    let shared = Arc::new(Dissemination {
        tree,
        directory,
        acknowledgement: AcknowledgementConfig::default(),
        clock: WallClock::system(),
        courier: courier.get_derived(),
        state: None,
    });
    let (region_unit, _) = Actor::spawn(
        None,
        AdminUnitActor,
        AdminUnitArgs {
            code: shared.tree.region().clone(),
            shared: shared.clone(),
            restored: Arc::default(),
        },
    )
    .await
    .expect("the tree starts");
    let (desk, _) = Actor::spawn(
        None,
        SignOffDesk,
        SignOffDeskArgs {
            policy: SignOffPolicy::default(),
            dissemination: shared,
            tree: region_unit.get_derived(),
            restored: None,
        },
    )
    .await
    .expect("the desk starts");
    Desk {
        desk,
        region_unit,
        courier,
        deliveries,
    }
}

async fn drafts(desk: &ActorRef<SignOffDeskMsg>) -> Vec<Draft> {
    ask(
        desk,
        |port| {
            SignOffDeskMsg::ListDrafts(DraftScope::Department(Department::NaturalResources), port)
        },
        "list drafts",
    )
    .await
    .expect("the desk lists its drafts")
}

async fn produce(producer: &FutureProducer, key: &str, xml: &str) {
    produce_to(producer, None, key, xml).await;
}

/// Writes an alert to the agency-alerts topic, to `partition` or the one its key hashes to.
async fn produce_to(producer: &FutureProducer, partition: Option<i32>, key: &str, xml: &str) {
    let topic = TopicsConfig::default().agency_alerts;
    let mut record = FutureRecord::to(&topic).key(key).payload(xml);
    record.partition = partition;
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("the broker takes the alert");
}

/// Writes one malformed alert to each of the agency-alerts topic's 3 partitions.
async fn malformed_to_each_partition(producer: &FutureProducer) {
    let xml = example("invalid-missing-scope.xml");
    for partition in 0..3 {
        produce_to(producer, Some(partition), "malformed", &xml).await;
    }
}

/// The shipped region, an embedded broker holding the node's topics, the settings that reach
/// it and a producer to it.
struct Fixture {
    region: Region,
    broker: EmbeddedBroker,
    topics: TopicsConfig,
    kafka: KafkaConfig,
    producer: FutureProducer,
}

fn fixture() -> Fixture {
    let region = Region::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang"
    )))
    .expect("the region loads");
    let broker = EmbeddedBroker::start(1).expect("the broker starts");
    let topics = TopicsConfig::default();
    broker
        .create_node_topics(&topics)
        .expect("the topics exist");
    let kafka = KafkaConfig {
        bootstrap_servers: broker.bootstrap_servers().to_owned(),
        ..KafkaConfig::default()
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .expect("the producer is created");
    Fixture {
        region,
        broker,
        topics,
        kafka,
        producer,
    }
}

/// Waits until the consumer has decided `records` records and returns its totals.
async fn decided(
    accounting: &mut watch::Receiver<AgencyAlertAccounting>,
    records: u64,
) -> AgencyAlertAccounting {
    tokio::time::timeout(WAIT, accounting.wait_for(|a| a.decided() >= records))
        .await
        .expect("the consumer decides in time")
        .expect("the consumer is running")
        .clone()
}

/// Returns every dead letter on the topic as (reason, detail, source offset).
fn dead_letters(bootstrap: &str) -> Vec<(String, String, String)> {
    let topic = TopicsConfig::default().dead_letters;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dead-letter-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("the reader is created");
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0;
    for partition in 0..3 {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        expected += high - low;
        assignment
            .add_partition_offset(&topic, partition, Offset::Beginning)
            .expect("partition added");
    }
    consumer.assign(&assignment).expect("assigned");
    let header = |message: &rdkafka::message::BorrowedMessage<'_>, key: &str| -> String {
        message
            .headers()
            .and_then(|headers| headers.iter().find(|h| h.key == key))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let mut letters = Vec::new();
    while (letters.len() as i64) < expected {
        let message = consumer
            .poll(WAIT)
            .expect("a dead letter in time")
            .expect("a readable dead letter");
        letters.push((
            header(&message, "reason"),
            header(&message, "detail"),
            header(&message, "source-topic"),
        ));
    }
    letters.sort();
    letters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agency_alerts_become_drafts_or_dead_letters_and_a_re_read_issues_nothing_twice() {
    let Fixture {
        region,
        broker,
        topics,
        kafka,
        producer,
    } = fixture();
    // A drill node: the fixture is an Exercise, which a production node (the default, Actual
    // only) would dead-letter as status_not_taken.
    let config = AgencyAlertsConfig {
        departments: BTreeMap::from([(SENDER.to_owned(), Department::NaturalResources)]),
        statuses: vec![CapStatus::Actual, CapStatus::Exercise],
    };
    let writer = || DeadLetterWriter::new(producer.clone(), topics.dead_letters.clone());
    let mut node = start_desk(&region).await;
    let warning = agency_warning_id(SENDER, FIRST);

    let first = AgencyAlerts::start(&kafka, &config, &region, node.desk.clone(), writer())
        .expect("the consumer starts");
    let mut accounting = first.accounting();
    produce(&producer, SENDER, &example("valid-xinjiang-landslide.xml")).await;
    assert_eq!(decided(&mut accounting, 1).await.submitted, 1);
    let listed = drafts(&node.desk).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let draft = &listed[0];
    assert_eq!(
        (
            &draft.event.id,
            draft.event.version,
            draft.event.hazard,
            draft.event.level
        ),
        (&warning, 1, Hazard::Landslide, Level::Orange)
    );
    assert_eq!(draft.event.area_codes, [AreaCode::new("654025")]);
    assert_eq!(draft.department, Department::NaturalResources);
    assert_eq!(
        draft.origin,
        DraftOrigin::Agency {
            sender: AgencyId::new(SENDER),
            department: Department::NaturalResources
        }
    );
    // Orange goes early to the responsible persons of Xinyuan County, down the same tree.
    let reached_xinyuan = async {
        while let Some(key) = node.deliveries.recv().await {
            if key.recipient.as_str().starts_with("654025") {
                return key;
            }
        }
        panic!("the courier stopped");
    };
    tokio::time::timeout(WAIT, reached_xinyuan)
        .await
        .expect("a person in Xinyuan County is reached in time");

    produce(
        &producer,
        SENDER,
        &follow_up("XJ-EWS-LS-0002", "09:30", "Update", &[(FIRST, "08:30")]),
    )
    .await;
    produce(
        &producer,
        "malformed",
        &example("invalid-missing-scope.xml"),
    )
    .await;
    produce(
        &producer,
        "stranger",
        &example("valid-xinjiang-landslide.xml").replace(SENDER, "stranger@example.invalid"),
    )
    .await;
    // The agency sends its first alert again.
    produce(&producer, SENDER, &example("valid-xinjiang-landslide.xml")).await;
    let totals = decided(&mut accounting, 5).await;
    assert_eq!(
        (totals.read, totals.submitted, totals.duplicates),
        (5, 2, 1),
        "{totals:?}"
    );
    assert_eq!(
        totals.dead_lettered,
        BTreeMap::from([("malformed_cap", 1), ("unknown_agency", 1)])
    );
    let listed = drafts(&node.desk).await;
    assert_eq!(
        listed.len(),
        1,
        "the update supersedes the draft: {listed:?}"
    );
    assert_eq!(
        (
            &listed[0].event.id,
            listed[0].event.version,
            listed[0].event.status
        ),
        (&warning, 2, Status::Renewed)
    );
    first.stop().await.expect("the consumer stops cleanly");

    // The restarted consumer re-reads the five records silently and still finds the thread.
    let second = AgencyAlerts::start(&kafka, &config, &region, node.desk.clone(), writer())
        .expect("the consumer restarts");
    let mut accounting = second.accounting();
    produce(
        &producer,
        SENDER,
        &follow_up(
            "XJ-EWS-LS-0003",
            "10:30",
            "Cancel",
            &[(FIRST, "08:30"), ("XJ-EWS-LS-0002", "09:30")],
        ),
    )
    .await;
    let totals = decided(&mut accounting, 6).await;
    assert_eq!(
        (totals.read, totals.submitted, totals.duplicates),
        (6, 1, 5),
        "{totals:?}"
    );
    assert!(totals.dead_lettered.is_empty(), "{totals:?}");
    let listed = drafts(&node.desk).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            &listed[0].event.id,
            listed[0].event.version,
            listed[0].event.status
        ),
        (&warning, 3, Status::Cancelled)
    );
    second.stop().await.expect("the consumer stops cleanly");

    let letters = dead_letters(broker.bootstrap_servers());
    assert_eq!(letters.len(), 2, "no dead letter twice: {letters:?}");
    let (reason, detail, source) = &letters[0];
    assert_eq!(
        (reason.as_str(), source.as_str()),
        ("malformed_cap", topics.agency_alerts.as_str())
    );
    assert!(detail.contains("alert.scope"), "{detail}");
    let (reason, detail, _) = &letters[1];
    assert_eq!(reason, "unknown_agency");
    assert!(detail.contains("stranger@example.invalid"), "{detail}");

    node.desk.stop(None);
    node.region_unit.stop(None);
    node.courier.stop(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_the_group_re_reads_only_the_partitions_it_takes() {
    let Fixture {
        region,
        broker: _broker,
        topics,
        kafka,
        producer,
    } = fixture();
    let config = AgencyAlertsConfig::default();
    let writer = || DeadLetterWriter::new(producer.clone(), topics.dead_letters.clone());
    let node = start_desk(&region).await;

    // Alone in the group, the first member decides one record of each partition.
    let first = AgencyAlerts::start(&kafka, &config, &region, node.desk.clone(), writer())
        .expect("the first member starts");
    let mut first_totals = first.accounting();
    malformed_to_each_partition(&producer).await;
    let before = decided(&mut first_totals, 3).await;
    assert_eq!(
        (before.read, before.dead_lettered.get("malformed_cap")),
        (3, Some(&3))
    );
    // The automatic commit (every 500 ms) takes the three offsets.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A second member joins and takes some partitions: it re-reads their one old record each,
    // silently. Then one new record lands in each partition; once all three are dead-lettered,
    // every re-read (which comes before them in its partition) is decided too.
    let second = AgencyAlerts::start(&kafka, &config, &region, node.desk.clone(), writer())
        .expect("the second member starts");
    let mut second_totals = second.accounting();
    let joined = tokio::time::timeout(WAIT, second_totals.wait_for(|t| t.duplicates > 0))
        .await
        .is_ok_and(|running| running.is_ok());
    if joined {
        malformed_to_each_partition(&producer).await;
    }
    let dead_lettered = |totals: &AgencyAlertAccounting| {
        totals
            .dead_lettered
            .get("malformed_cap")
            .copied()
            .unwrap_or(0)
    };
    let settled = tokio::time::timeout(WAIT, async {
        while dead_lettered(&first_totals.borrow()) + dead_lettered(&second_totals.borrow()) < 6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (first_after, second_after) = (
        first_totals.borrow().clone(),
        second_totals.borrow().clone(),
    );
    // Stopped before any check, so a failing check does not leave consumers behind.
    first.stop().await.expect("the first member stops");
    second.stop().await.expect("the second member stops");
    node.desk.stop(None);
    node.region_unit.stop(None);
    node.courier.stop(None);

    assert!(joined, "the second member took no partition in time");
    assert!(
        settled.is_ok(),
        "the new records were not all decided in time: {first_after:?} {second_after:?}"
    );
    let taken = second_after.duplicates;
    assert!(
        taken < 3,
        "the first member keeps some partitions: {second_after:?}"
    );
    assert_eq!(
        first_after.duplicates, 0,
        "the partitions the first member kept were not rewound: {first_after:?}"
    );
    assert_eq!(
        second_after.read,
        2 * taken,
        "the second member re-read the old record of each partition it took, then read the \
         new one: {second_after:?}"
    );
    assert_eq!(
        first_after.read,
        3 + (3 - taken),
        "the first member read the new record of each partition it kept: {first_after:?}"
    );
    assert_eq!(
        dead_lettered(&first_after) + dead_lettered(&second_after),
        6,
        "every live record dead-lettered once"
    );
}
