//! `tianshan bench kafka`: the end-to-end benchmark of the cluster issue on the embedded broker,
//! gateway, broker and nodes all in this process:
//! - throughput: a long storm in which every station reports (the storm preceded by dry hours)
//!   is produced as fast as the gateway goes while one node, or N sharded nodes, read it;
//!   observations/s from the first observation read to the last one decided;
//! - latency: the storm (every station reporting, no dry hours) produced at a fixed rate while
//!   one node runs, so that every observation partition keeps moving; for every warning
//!   version, the time from the produce call of the last observation produced before the first
//!   one stamped after the warning's issue time (the data that could close its tick) to the
//!   warning being acknowledged on the warnings topic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::producer::FutureProducer;
use tianshan_core::partitioner::KeyPartitioner;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, ScenarioMessage, StormConfig};
use tianshan_pipelines::config::TopicsConfig;
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{
    gateway_producer_config, produce_all, scenario_records, GatewayRecord, GatewaySender,
};
use tianshan_pipelines::node_pipeline::{sharded_cluster_settled, NodePipeline};
use tianshan_pipelines::topic_setup::node_topics;

use crate::config::Config;
use crate::demo_cluster::share_out;

/// What `tianshan bench kafka` runs.
#[derive(Debug, Clone, Copy)]
pub struct KafkaBenchOptions {
    /// Nodes of the throughput run (more than one: sharded, in this process).
    pub nodes: usize,
    /// Dry hours before the storm in the throughput run; each adds one report per station and
    /// reporting interval.
    pub dry_hours: u32,
    /// Observations per second the gateway produces in the latency run.
    pub rate: u32,
}

/// The nodes' `kafka.fetch-wait-max` on the embedded broker.
const BENCH_FETCH_WAIT_MAX: &str = "5ms";

/// The longest a run may take before the benchmark gives up.
const RUN_AT_MOST: Duration = Duration::from_secs(600);

/// Runs the throughput run, then the latency run, and prints what they measured.
pub async fn run_kafka_bench(config: Config, options: KafkaBenchOptions) -> anyhow::Result<()> {
    if options.nodes == 0 || options.rate == 0 {
        bail!("--nodes and --rate must be at least 1");
    }
    let region = Arc::new(config.load_region()?);
    throughput(config.clone(), region.clone(), options).await?;
    latency(config, region, options.rate).await
}

/// A fresh embedded broker with the node's topics; `config` is pointed at it.
fn broker_for(config: &mut Config) -> anyhow::Result<EmbeddedBroker> {
    let broker = EmbeddedBroker::start(3)?;
    broker.create_node_topics(&config.kafka.topics)?;
    config.kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
    // The mock broker answers a fetch of caught-up partitions only when its wait is over, not
    // when a record arrives (a real broker answers at once): with librdkafka's 500 ms default,
    // that wait would be most of every latency measured.
    config.kafka.fetch_wait_max = BENCH_FETCH_WAIT_MAX.into();
    Ok(broker)
}

/// The gateway's producer, with lz4 so the embedded broker's per-partition log (librdkafka's
/// mock cluster keeps about 5 MB of each) holds the whole storm, and a longer queue.
pub(crate) fn bench_gateway(bootstrap_servers: &str) -> anyhow::Result<FutureProducer> {
    gateway_producer_config(bootstrap_servers)
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .context("create the benchmark gateway producer")
}

async fn throughput(
    mut config: Config,
    region: Arc<Region>,
    options: KafkaBenchOptions,
) -> anyhow::Result<()> {
    let broker = broker_for(&mut config)?;
    config.kafka.sharded = options.nodes > 1;
    let storm = every_station_reporting(options.dry_hours);
    let records = scenario_records(&storm_scenario(&region, &storm), &config.kafka.topics);
    let total = records.len() as u64;
    let settings = config.pipeline_settings();
    let mut nodes = Vec::with_capacity(options.nodes);
    for _ in 0..options.nodes {
        nodes.push(NodePipeline::start(&settings, region.clone()).await?);
    }
    if options.nodes > 1 {
        share_out(&nodes).await?;
    } else {
        wait_until_ready(&nodes[0]).await?;
    }
    let producer = bench_gateway(broker.bootstrap_servers())?;
    let gateway = tokio::spawn(async move {
        let started = Instant::now();
        produce_all(&producer, &records)
            .await
            .map(|_| started.elapsed())
    });
    let started = Instant::now();
    let mut first_read = None;
    loop {
        let received: u64 = nodes.iter().map(|n| n.metrics.accounting().received).sum();
        if received > 0 && first_read.is_none() {
            first_read = Some(Instant::now());
        }
        if received >= total && decided(&nodes) {
            break;
        }
        if started.elapsed() > RUN_AT_MOST {
            bail!("the nodes did not decide {total} observations within {RUN_AT_MOST:?} (read {received})");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = first_read.map_or(Duration::ZERO, |t| t.elapsed());
    let produced_in = gateway.await.context("gateway task")??;
    let received: u64 = nodes.iter().map(|n| n.metrics.accounting().received).sum();
    for node in nodes {
        node.stop().await?;
    }
    if received != total {
        bail!("{received} observations read as live for {total} produced");
    }
    println!(
        "throughput through {} node(s): {total} observations (every station, {} dry hours before the storm) decided in {:.2} s from the first read: {:.0} observations/s (the gateway produced them in {:.2} s, {:.0}/s)",
        options.nodes,
        options.dry_hours,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9),
        produced_in.as_secs_f64(),
        total as f64 / produced_in.as_secs_f64().max(1e-9),
    );
    Ok(())
}

/// The built-in storm with every station of the region reporting through it, after
/// `dry_hours` in which they report no rain.
pub(crate) fn every_station_reporting(dry_hours: u32) -> StormConfig {
    StormConfig {
        dry_before_ms: i64::from(dry_hours) * 3_600_000,
        gauge_reach_km: 10_000.0,
        weather_reach_km: 10_000.0,
        ..StormConfig::default()
    }
}

/// Whether every observation read so far is decided and, on a cluster, every basin fed.
fn decided(nodes: &[NodePipeline]) -> bool {
    if nodes.len() > 1 {
        return sharded_cluster_settled(nodes);
    }
    let node = &nodes[0];
    node.metrics.accounting().in_flight == 0 && node.metrics.is_caught_up()
}

async fn wait_until_ready(node: &NodePipeline) -> anyhow::Result<()> {
    let started = Instant::now();
    while !node.metrics.is_ready() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the node was not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn latency(mut config: Config, region: Arc<Region>, rate: u32) -> anyhow::Result<()> {
    let broker = broker_for(&mut config)?;
    config.kafka.sharded = false;
    let scenario = storm_scenario(&region, &every_station_reporting(0));
    let records = scenario_records(&scenario, &config.kafka.topics);
    let merged_at: Vec<i64> = scenario.messages.iter().map(merge_time_ms).collect();
    let total = records.len() as u64;
    let node = NodePipeline::start(&config.pipeline_settings(), region).await?;
    wait_until_ready(&node).await?;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let mut warnings = node.warnings.subscribe();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok(event) = warnings.recv().await {
                let arrived = Instant::now();
                let label = format!("{} v{} ({})", event.id, event.version, event.status.name());
                arrivals
                    .lock()
                    .expect("arrivals lock")
                    .push(((event.issued.millis(), arrived), label));
            }
        })
    };
    let producer = bench_gateway(broker.bootstrap_servers())?;
    let produced = produce_paced(&producer, &records, rate).await?;
    let started = Instant::now();
    while !(node.metrics.accounting().received >= total && decided(std::slice::from_ref(&node))) {
        if started.elapsed() > RUN_AT_MOST {
            bail!("the node did not decide the storm within {RUN_AT_MOST:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.flush().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    listener.abort();
    node.stop().await?;
    let (arrivals, labels): (Vec<_>, Vec<String>) =
        std::mem::take(&mut *arrivals.lock().expect("arrivals lock"))
            .into_iter()
            .unzip();
    let partitions = partitions_of(&records, &config.kafka.topics);
    let mut timed: Vec<(f64, &String)> =
        tick_latencies(&merged_at, &partitions, &produced, &arrivals)
            .into_iter()
            .zip(&labels)
            .filter_map(|(latency, label)| latency.map(|ms| (ms, label)))
            .collect();
    if timed.is_empty() {
        bail!("the storm issued no warnings");
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let latencies_ms: Vec<f64> = timed.iter().map(|(ms, _)| *ms).collect();
    println!(
        "latency at {rate} observations/s through one node, from the produce call of the observation that let a warning's tick close to the warning acknowledged on its topic: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} warning versions ({total} observations)",
        percentile(&latencies_ms, 0.50),
        percentile(&latencies_ms, 0.99),
        latencies_ms[latencies_ms.len() - 1],
        latencies_ms.len()
    );
    let slowest: Vec<String> = timed
        .iter()
        .rev()
        .take(3)
        .map(|(ms, label)| format!("{label} {ms:.1} ms"))
        .collect();
    println!("slowest: {}", slowest.join(", "));
    Ok(())
}

/// Produces `records` in order at `rate` per second without waiting for acknowledgements on
/// the way; returns when each was handed to the producer.
async fn produce_paced(
    producer: &FutureProducer,
    records: &[GatewayRecord],
    rate: u32,
) -> anyhow::Result<Vec<Instant>> {
    let per_millisecond = (rate as usize).div_ceil(1000).max(1);
    let interval = Duration::from_secs_f64(per_millisecond as f64 / f64::from(rate));
    let started = Instant::now();
    let mut sender = GatewaySender::new(producer);
    let mut produced = Vec::with_capacity(records.len());
    for (slot, chunk) in records.chunks(per_millisecond).enumerate() {
        let due = started + interval * u32::try_from(slot).context("too many records")?;
        tokio::time::sleep_until(due.into()).await;
        for record in chunk {
            produced.push(Instant::now());
            sender.send(record).await?;
        }
    }
    sender.finish().await?;
    Ok(produced)
}

/// The time the node's event-time merge orders a message by: its observation's event time, but
/// never after it was sent (the Kafka timestamp); a message that is no observation has none,
/// so it never shows its partition past a tick.
fn merge_time_ms(message: &ScenarioMessage) -> i64 {
    message
        .observation()
        .map_or(i64::MIN, |obs| obs.event_time.min(message.sent_at).millis())
}

/// For each warning that arrived, milliseconds since the produce call of the record that let
/// its tick close: a tick closes once every partition holds a record whose merge time
/// (`merged_at[i]`, see [`merge_time_ms`]) is after it, so that is the latest, across
/// partitions, of each partition's first such record past the warning's issue time.
/// `partitions[i]` is the partition record `i` went to. One entry per arrival, in order;
/// `None` for a warning whose tick no record passed (closed because the partitions went idle).
fn tick_latencies(
    merged_at: &[i64],
    partitions: &[usize],
    produced: &[Instant],
    arrivals: &[(i64, Instant)],
) -> Vec<Option<f64>> {
    // Per partition: its records' indices in produce order, and the newest time up to each.
    let mut by_partition: BTreeMap<usize, (Vec<usize>, Vec<i64>)> = BTreeMap::new();
    for (index, (time, partition)) in merged_at.iter().zip(partitions).enumerate() {
        let (indices, newest) = by_partition.entry(*partition).or_default();
        let before = newest.last().copied().unwrap_or(i64::MIN);
        indices.push(index);
        newest.push(before.max(*time));
    }
    arrivals
        .iter()
        .map(|(issued_ms, arrived)| {
            let closing = by_partition
                .values()
                .filter_map(|(indices, newest)| {
                    indices
                        .get(newest.partition_point(|t| t <= issued_ms))
                        .copied()
                })
                .max()?;
            Some(
                arrived
                    .saturating_duration_since(produced[closing])
                    .as_secs_f64()
                    * 1000.0,
            )
        })
        .collect()
}

/// The partition of every record, numbered across topics, as the gateway's producer picks it
/// (librdkafka's default partitioner, `consistent-random`, on the node topics' partitions).
fn partitions_of(records: &[GatewayRecord], topics: &TopicsConfig) -> Vec<usize> {
    let counts: BTreeMap<String, i32> = node_topics(topics).into_iter().collect();
    let mut numbered: BTreeMap<(String, i32), usize> = BTreeMap::new();
    records
        .iter()
        .map(|record| {
            let count = counts.get(&record.topic).copied().unwrap_or(1);
            let partition =
                KeyPartitioner::ConsistentRandom.partition_of(record.key.as_bytes(), count);
            let next = numbered.len();
            *numbered
                .entry((record.topic.clone(), partition))
                .or_insert(next)
        })
        .collect()
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tianshan_core::time::EventTime;

    fn record(at_ms: i64) -> GatewayRecord {
        GatewayRecord {
            topic: "rainfall".into(),
            key: "S1".into(),
            payload: Vec::new(),
            content_type: None,
            timestamp: EventTime(at_ms),
        }
    }

    #[test]
    fn a_warning_is_timed_from_the_record_that_let_every_partition_pass_its_issue_time() {
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        // Merge times in produce order, with the partition each went to; the record at 1,000 ms
        // of partition 0 is late (produced after 3,000).
        let merged_at = [0, 500, 2_000, 3_000, 1_000, 6_000, 4_000];
        let partitions = [0, 1, 0, 0, 0, 0, 1];
        let produced: Vec<_> = (0..7).map(|i| at(i * 10)).collect();
        // Issued at 3,000: partition 0 first passes it at index 5 (6,000), partition 1 at
        // index 6 (4,000), so index 6 lets the tick close. Issued at 1,500: partition 0 passes
        // at index 2, partition 1 at index 6. Issued at 5,000: partition 1 never passes it,
        // so partition 0's index 5 closes it. Issued at 7,000: no partition passes it.
        let arrivals = vec![
            (3_000, at(75)),
            (1_500, at(80)),
            (5_000, at(90)),
            (7_000, at(95)),
        ];
        assert_eq!(
            tick_latencies(&merged_at, &partitions, &produced, &arrivals),
            vec![Some(15.0), Some(20.0), Some(40.0), None]
        );
    }

    #[test]
    fn the_merge_orders_a_reading_by_its_event_time_not_its_later_sending() {
        use tianshan_core::ids::{GatewayId, StationId};
        use tianshan_core::observation::{Observation, Reading};
        use tianshan_core::scenario::{Anomaly, Encoding, ObservationTopic, ScenarioPayload};
        let message = |payload| ScenarioMessage {
            topic: ObservationTopic::Rainfall,
            key: "R00001".into(),
            sent_at: EventTime(320_000),
            encoding: Encoding::Protobuf,
            payload,
            anomaly: Anomaly::None,
        };
        let reading = Observation {
            station: StationId::new("R00001"),
            event_time: EventTime(300_000),
            gateway: GatewayId::new("g"),
            sequence: 1,
            reading: Reading::Rainfall {
                mm: 1.0,
                interval_s: 300,
            },
        };
        assert_eq!(
            merge_time_ms(&message(ScenarioPayload::Observation(reading.clone()))),
            300_000,
            "sent 20 s after the 5-minute tick, it still belongs to that tick"
        );
        let from_the_future = Observation {
            event_time: EventTime(900_000),
            ..reading
        };
        assert_eq!(
            merge_time_ms(&message(ScenarioPayload::Observation(from_the_future))),
            320_000
        );
        assert_eq!(
            merge_time_ms(&message(ScenarioPayload::Raw(vec![1, 2]))),
            i64::MIN
        );
    }

    #[test]
    fn records_keep_their_key_s_partition() {
        let topics = TopicsConfig::default();
        let keyed = |topic: &str, key: &str| GatewayRecord {
            topic: topic.into(),
            key: key.into(),
            ..record(0)
        };
        let records = [
            keyed(&topics.rainfall, "R00001"),
            keyed(&topics.weather, "W00001"),
            keyed(&topics.rainfall, "R00001"),
        ];
        let partitions = partitions_of(&records, &topics);
        assert_eq!(partitions[0], partitions[2]);
        assert_ne!(partitions[0], partitions[1]);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }
}
