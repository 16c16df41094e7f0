//! `tianshan bench kafka`: the end-to-end benchmark of the cluster issue on the embedded broker,
//! gateway, broker and nodes all in this process:
//! - throughput: a long storm in which every station reports (the storm preceded by dry hours)
//!   is produced as fast as the gateway goes while one node, or N sharded nodes, read it;
//!   observations/s from the first observation read to the last one decided;
//! - latency: the storm (every station reporting, no dry hours) produced at a fixed rate while
//!   one node runs; for every warning version, the time from the produce call of the last
//!   on-time reading of its tick to the warning acknowledged on the warnings topic, so the wait
//!   for the tick to close counts. The versions published are checked against a replay of the
//!   same records, so a latency bought by releasing ticks too early shows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::producer::FutureProducer;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, ScenarioMessage, StormConfig};
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{
    gateway_producer_config, produce_all, scenario_records, GatewayRecord, GatewaySender,
};
use tianshan_pipelines::node_pipeline::{sharded_cluster_settled, NodePipeline};
use tianshan_pipelines::replay::{record_envelopes, replay_all};

use crate::config::Config;
use crate::demo_cluster::share_out;

/// What `tianshan bench kafka` runs.
#[derive(Debug, Clone)]
pub struct KafkaBenchOptions {
    /// Nodes of the throughput run (more than one: sharded, in this process).
    pub nodes: usize,
    /// Dry hours before the storm in the throughput run; each adds one report per station and
    /// reporting interval.
    pub dry_hours: u32,
    /// Observations per second the gateway produces in the latency run.
    pub rate: u32,
    /// Overrides the nodes' `pipeline.partition-idle-after`.
    pub partition_idle_after: Option<String>,
}

/// The nodes' `kafka.fetch-wait-max` on the embedded broker.
const BENCH_FETCH_WAIT_MAX: &str = "5ms";

/// The longest a run may take before the benchmark gives up.
const RUN_AT_MOST: Duration = Duration::from_secs(600);

/// Runs the throughput run, then the latency run, and prints what they measured.
pub async fn run_kafka_bench(mut config: Config, options: KafkaBenchOptions) -> anyhow::Result<()> {
    if options.nodes == 0 || options.rate == 0 {
        bail!("--nodes and --rate must be at least 1");
    }
    if let Some(idle) = &options.partition_idle_after {
        config.pipeline.partition_idle_after.clone_from(idle);
        config
            .pipeline
            .partition_idle_after_ms()
            .map_err(|e| anyhow::anyhow!("--partition-idle-after: {e}"))?;
    }
    let region = Arc::new(config.load_region()?);
    throughput(config.clone(), region.clone(), &options).await?;
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
    options: &KafkaBenchOptions,
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
    nodes[0].metrics.has_decided(0)
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
    let sent_at: Vec<i64> = scenario
        .messages
        .iter()
        .map(|m| m.sent_at.millis())
        .collect();
    let tick_ms = config.pipeline.tick_ms().map_err(anyhow::Error::msg)?;
    let total = records.len() as u64;
    let node = NodePipeline::start(&config.pipeline_settings(), region.clone()).await?;
    wait_until_ready(&node).await?;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let mut warnings = node.warnings.subscribe();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok(event) = warnings.recv().await {
                let arrived = Instant::now();
                let label = version_label(&event);
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
    while !node.metrics.has_decided(total) {
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
    let mut timed: Vec<(f64, &String)> =
        last_reading_latencies(&merged_at, &sent_at, tick_ms, &produced, &arrivals)
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
        "latency at {rate} observations/s through one node (partition-idle-after {}), from the produce call of the last on-time reading of a warning's tick to the warning acknowledged on its topic: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} warning versions ({total} observations)",
        config.pipeline.partition_idle_after,
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
    let replayed = replay_all(
        &config.pipeline_settings(),
        region,
        record_envelopes(&records).0,
    )
    .await?
    .warnings
    .iter()
    .map(version_label)
    .collect::<Vec<_>>();
    println!("{}", compare_with_replay(&labels, &replayed));
    Ok(())
}

/// How the benchmark names a warning version.
fn version_label(event: &WarningEvent) -> String {
    format!("{} v{} ({})", event.id, event.version, event.status.name())
}

/// Says whether the warning versions the node published are exactly those the replay of the
/// same records issues (in any order): a latency bought with ticks released too early shows
/// here as versions that differ.
fn compare_with_replay(published: &[String], replayed: &[String]) -> String {
    let mut missing: Vec<&String> = replayed.iter().collect();
    let mut extra = Vec::new();
    for label in published {
        match missing.iter().position(|m| *m == label) {
            Some(found) => {
                missing.swap_remove(found);
            }
            None => extra.push(label),
        }
    }
    if missing.is_empty() && extra.is_empty() {
        return format!(
            "warnings: the {} versions published are those the replay of the same records issues",
            published.len()
        );
    }
    missing.sort();
    extra.sort();
    format!(
        "warnings DIFFER from the replay of the same records: {} missing ({}), {} not in the replay ({})",
        missing.len(),
        missing.iter().take(3).map(|l| l.as_str()).collect::<Vec<_>>().join(", "),
        extra.len(),
        extra.iter().take(3).map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
    )
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

/// For each warning that arrived, milliseconds since the produce call of the last reading its
/// tick decided on: the last record, in produce order, whose merge time lies in the tick (after
/// `issued - tick_ms`, at or before `issued`) and that was sent on time (within one tick after
/// it; readings sent later are judged at a later tick). So the wait for the tick to close
/// counts, whatever closed it: the next readings of every partition, or quiet partitions
/// turning idle (`pipeline.partition-idle-after`). `None` for a warning whose tick holds no such reading.
fn last_reading_latencies(
    merged_at: &[i64],
    sent_at: &[i64],
    tick_ms: i64,
    produced: &[Instant],
    arrivals: &[(i64, Instant)],
) -> Vec<Option<f64>> {
    arrivals
        .iter()
        .map(|(issued_ms, arrived)| {
            let last = merged_at.iter().zip(sent_at).rposition(|(merged, sent)| {
                *merged > issued_ms - tick_ms && merged <= issued_ms && *sent <= issued_ms + tick_ms
            })?;
            Some(
                arrived
                    .saturating_duration_since(produced[last])
                    .as_secs_f64()
                    * 1000.0,
            )
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

    #[test]
    fn a_warning_is_also_timed_from_the_last_on_time_reading_of_its_tick() {
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        // Tick 1,000 ms: readings of the tick merge in (0, 1,000]. Index 1 is the last on-time
        // one of tick 1,000 (index 3 was sent after 2,000, too late for it; index 2 belongs to
        // the next tick).
        let merged_at = [900, 1_000, 1_500, 950];
        let sent_at = [920, 1_020, 1_520, 2_500];
        let produced: Vec<_> = (0..4).map(|i| at(i * 10)).collect();
        let arrivals = vec![(1_000, at(45)), (3_000, at(60))];
        assert_eq!(
            last_reading_latencies(&merged_at, &sent_at, 1_000, &produced, &arrivals),
            vec![Some(35.0), None]
        );
    }

    #[test]
    fn published_versions_are_compared_with_the_replay_as_a_multiset() {
        let labels = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let replayed = labels(&["A v1 (issued)", "B v1 (issued)", "A v2 (upgraded)"]);
        let same = compare_with_replay(
            &labels(&["B v1 (issued)", "A v1 (issued)", "A v2 (upgraded)"]),
            &replayed,
        );
        assert!(same.starts_with("warnings: the 3 versions"), "{same}");
        let differ = compare_with_replay(
            &labels(&["A v1 (issued)", "A v1 (issued)", "B v1 (issued)"]),
            &replayed,
        );
        assert!(
            differ.contains("1 missing (A v2 (upgraded)), 1 not in the replay (A v1 (issued))"),
            "{differ}"
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
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }
}
