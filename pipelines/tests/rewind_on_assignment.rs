//! A rebuilding consumer reads every partition it is assigned from the start of the log, also
//! partitions another member had consumed and committed; rebalancing cooperatively, it re-reads
//! only those it is given and keeps reading the others where it was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message};
use tianshan_pipelines::assignment::{RewindCheck, SharedAssignment, SourceContext};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::telemetry::Metrics;

const TOPIC: &str = "gauges";
const PER_PARTITION: i64 = 50;

/// A member of the group; `strategy` is its partition assignment strategy.
fn member(bootstrap: &str, strategy: &str) -> (BaseConsumer<SourceContext>, SharedAssignment) {
    let assignment = SharedAssignment::default();
    let context = SourceContext::new(
        "test records",
        assignment.clone(),
        Arc::new(Metrics::default()),
    );
    let consumer: BaseConsumer<SourceContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rebuilders")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", strategy)
        .create_with_context(context)
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    (consumer, assignment)
}

/// Polls until `want` records of the current generation have arrived or 30 s pass; returns the
/// first offset seen per partition in the generation that was current at the end.
fn first_offsets(
    consumer: &BaseConsumer<SourceContext>,
    assignment: &SharedAssignment,
    want: usize,
) -> (u64, BTreeMap<i32, i64>) {
    let started = Instant::now();
    let mut generation = assignment.generation();
    let mut first = BTreeMap::new();
    let mut seen = 0;
    let mut rewind = RewindCheck::default();
    while started.elapsed() < Duration::from_secs(30) && seen < want {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if !rewind.admit(
            consumer,
            assignment,
            message.topic(),
            message.partition(),
            message.offset(),
        ) {
            continue;
        }
        if assignment.generation() != generation {
            generation = assignment.generation();
            first.clear();
            seen = 0;
        }
        first.entry(message.partition()).or_insert(message.offset());
        seen += 1;
    }
    (generation, first)
}

/// A broker with the topic's 3 partitions holding `PER_PARTITION` records each, and its address.
fn filled_topic() -> (EmbeddedBroker, String) {
    let broker = EmbeddedBroker::start(1).expect("broker");
    broker.create_topic(TOPIC, 3).expect("topic");
    let bootstrap = broker.bootstrap_servers().to_string();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for partition in 0..3 {
        for n in 0..PER_PARTITION {
            let payload = format!("reading {n}");
            producer
                .send(
                    BaseRecord::<(), _>::to(TOPIC)
                        .partition(partition)
                        .payload(&payload),
                )
                .expect("queued");
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    (broker, bootstrap)
}

/// Two members of the group read the whole topic and commit it; returns them.
fn read_and_commit_by_two(
    bootstrap: &str,
    strategy: &str,
) -> [(BaseConsumer<SourceContext>, SharedAssignment); 2] {
    let (leaver, leaver_assignment) = member(bootstrap, strategy);
    let (heir, heir_assignment) = member(bootstrap, strategy);
    // Both consume their shares and commit them as they go, until each has a share.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    let both_have_partitions =
        || !leaver_assignment.partitions().is_empty() && !heir_assignment.partitions().is_empty();
    while Instant::now() < deadline && (read < 150 || !both_have_partitions()) {
        for consumer in [&leaver, &heir] {
            if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
                read += 1;
            }
        }
    }
    assert!(read >= 150, "the two members read the topic");
    assert!(both_have_partitions(), "the group gave each member a share");
    for consumer in [&leaver, &heir] {
        // Auto-commit may have committed everything already.
        let _ = consumer.commit_consumer_state(CommitMode::Sync);
    }
    [(leaver, leaver_assignment), (heir, heir_assignment)]
}

#[test]
fn a_member_taking_over_committed_partitions_rereads_them_from_the_start() {
    let (_broker, bootstrap) = filled_topic();
    let [leaver, (heir, heir_assignment)] = read_and_commit_by_two(&bootstrap, "range");
    drop(leaver);

    let (generation, offsets) = first_offsets(&heir, &heir_assignment, 150);
    assert_eq!(
        offsets,
        (0..3).map(|p| (p, 0)).collect(),
        "every partition is read again from its start"
    );
    assert_eq!(heir_assignment.generation(), generation);
}

#[test]
fn rebalancing_cooperatively_a_member_rereads_only_the_partitions_it_is_given() {
    let (_broker, bootstrap) = filled_topic();
    let [(leaver, leaver_assignment), (heir, heir_assignment)] =
        read_and_commit_by_two(&bootstrap, "cooperative-sticky");
    let given: Vec<i32> = leaver_assignment.partition_numbers().into_iter().collect();
    let kept = heir_assignment.partition_numbers();
    let kept_since = heir_assignment.snapshot();
    drop(leaver);

    let want = given.len() * PER_PARTITION as usize;
    let (_, offsets) = first_offsets(&heir, &heir_assignment, want);
    assert_eq!(
        offsets,
        given.iter().map(|p| (*p, 0)).collect(),
        "only the partitions given are read again, from their start"
    );
    let now = heir_assignment.snapshot();
    assert_eq!(now.partition_numbers().len(), 3);
    for partition in kept {
        let key = (TOPIC.to_string(), partition);
        assert!(
            kept_since.kept_in(&now, &key),
            "partition {partition} kept being read where it was"
        );
    }
}
