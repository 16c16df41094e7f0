//! `tianshan demo --nodes N`: N sharded nodes in this process against the embedded broker. The
//! consumer groups share out the observation partitions (stations) and the basin-updates
//! partitions (basins and chains, and the shards of the dissemination tree); the demo prints
//! which node owns what, the warnings each node issues, what each node delivered to the
//! recipients of its shards, and the totals, which are those of a single node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::ask::ask;
use tianshan_core::dissemination::coverage::CoverageReport;
use tianshan_core::scenario::{storm_scenario, StormConfig};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{gateway_producer, produce_all, scenario_records};
use tianshan_pipelines::node_pipeline::{sharded_cluster_settled, NodePipeline, Ownership};

use crate::config::Config;
use crate::demo::{demo_dissemination, print_coverage, warning_header, warning_line};
use crate::OutputFormat;

/// Partitions of the embedded broker's basin-updates topic (`EmbeddedBroker::create_node_topics`).
const BASIN_PARTITIONS: i32 = 12;
/// The nodes must agree on who owns what within this long.
const SHARE_OUT_AT_MOST: Duration = Duration::from_secs(60);

/// Runs `nodes` sharded nodes over the storm; with `once`, returns when the cluster has settled.
pub async fn run_cluster_demo(
    mut config: Config,
    nodes: usize,
    once: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(3)?;
    broker.create_node_topics(&config.kafka.topics)?;
    config.kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
    config.kafka.sharded = true;
    eprintln!(
        "embedded Kafka-protocol broker (librdkafka mock cluster): bootstrap.servers={}; {nodes} sharded nodes in this process",
        broker.bootstrap_servers()
    );
    let region = Arc::new(config.load_region()?);
    let scenario = storm_scenario(&region, &StormConfig::default());
    let records = scenario_records(&scenario, &config.kafka.topics);
    let deliveries_log = std::env::temp_dir().join("tianshan-demo-cluster-deliveries.log");
    demo_dissemination(&mut config, None, &deliveries_log);
    let settings = config.pipeline_settings();
    let mut cluster = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        cluster.push(NodePipeline::start(&settings, region.clone()).await?);
    }
    let owned = share_out(&cluster).await?;
    print_ownership(&owned);
    if let Some(header) = warning_header(format) {
        println!("node    {header}");
    }
    let printers: Vec<_> = cluster
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let mut warnings = node.warnings.subscribe();
            let region = region.clone();
            tokio::spawn(async move {
                while let Ok(event) = warnings.recv().await {
                    let line = warning_line(&event, format, &region);
                    match format {
                        OutputFormat::Table => println!("node-{index}  {line}"),
                        OutputFormat::Json => println!("{line}"),
                    }
                }
            })
        })
        .collect();
    let producer = gateway_producer(broker.bootstrap_servers())?;
    let total = records.len() as u64;
    let gateway = tokio::spawn(async move { produce_all(&producer, &records).await });
    let started = Instant::now();
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = progress.tick() => {}
            _ = tokio::signal::ctrl_c(), if !once => break,
        }
        let received: u64 = cluster
            .iter()
            .map(|n| n.metrics.accounting().received)
            .sum();
        let published: Vec<u64> = cluster
            .iter()
            .map(|n| n.metrics.warnings_published())
            .collect();
        eprintln!(
            "progress: {received}/{total} observations read, {:.0}/s; warning versions per node {published:?}",
            received as f64 / started.elapsed().as_secs_f64().max(0.001)
        );
        if once && received >= total && sharded_cluster_settled(&cluster) {
            break;
        }
    }
    gateway.await??;
    for node in &cluster {
        node.flush().await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for printer in printers {
        printer.abort();
    }
    let mut totals = (0, 0, 0, 0);
    for (index, node) in cluster.iter().enumerate() {
        let a = node.metrics.accounting();
        let published = node.metrics.warnings_published();
        eprintln!(
            "node-{index}: {} observations read, {} applied, {} rejected, {} chain readings sent on, {} decided for other nodes; {published} warning versions",
            a.received, a.applied, a.rejected, a.forwarded, a.settled
        );
        totals.0 += a.received;
        totals.1 += a.applied;
        totals.2 += a.rejected;
        totals.3 += published;
    }
    eprintln!(
        "cluster: {} observations in = {} applied + {} rejected; {} warning versions",
        totals.0, totals.1, totals.2, totals.3
    );
    print_dissemination(&cluster).await?;
    for node in cluster {
        node.stop().await?;
    }
    drop(broker);
    Ok(())
}

/// Waits until every node owns part of both topics and every partition has an owner.
pub(crate) async fn share_out(cluster: &[NodePipeline]) -> anyhow::Result<Vec<Ownership>> {
    let started = Instant::now();
    loop {
        let owned: Vec<Ownership> = cluster.iter().filter_map(NodePipeline::ownership).collect();
        let basin: usize = owned.iter().map(|o| o.basin_partitions.len()).sum();
        let everyone = owned.len() == cluster.len()
            && owned
                .iter()
                .all(|o| !o.observation_partitions.is_empty() && !o.basin_partitions.is_empty());
        if everyone && basin == BASIN_PARTITIONS as usize {
            return Ok(owned);
        }
        if started.elapsed() > SHARE_OUT_AT_MOST {
            bail!("the nodes did not share out the partitions within {SHARE_OUT_AT_MOST:?}: {owned:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints what each node's courier delivered to the recipients of its shards of the tree, and
/// the coverage of the books of every node together (each book is held by one node only).
async fn print_dissemination(cluster: &[NodePipeline]) -> anyhow::Result<()> {
    let mut books = Vec::new();
    let mut suppressed = 0;
    for (index, node) in cluster.iter().enumerate() {
        let courier = node.dissemination.courier_totals().await?;
        let held = ask(
            &node.dissemination.region_unit,
            AdminUnitMsg::Books,
            "acknowledgement books",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let shards = node.ownership().map_or(0, |owned| owned.shards.len());
        eprintln!(
            "node-{index}: delivered {} and failed {} deliveries to the recipients of its {shards} dissemination shards; {} acknowledgement books",
            courier.delivered,
            courier.failed,
            held.len()
        );
        suppressed += courier.duplicates_suppressed;
        books.extend(held);
    }
    eprintln!(
        "nobody signs or answers in the cluster demo: what went out are the orange and red drafts released early to responsible persons, each delivered by the node owning the shard of the person's prefecture, without the re-sends an answer deadline brings"
    );
    print_coverage(&CoverageReport::of(&books), suppressed);
    Ok(())
}

fn print_ownership(owned: &[Ownership]) {
    for (index, ownership) in owned.iter().enumerate() {
        let basins = ownership.basins.len();
        let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
        for (topic, partition) in &ownership.observation_partitions {
            by_topic.entry(topic.as_str()).or_default().push(*partition);
        }
        let observation: Vec<String> = by_topic
            .iter()
            .map(|(topic, partitions)| format!("{topic} {partitions:?}"))
            .collect();
        let shards: Vec<String> = ownership.shards.iter().map(ToString::to_string).collect();
        eprintln!(
            "node-{index} owns observation partitions {}; basin-updates partitions {:?} ({basins} basins; dissemination shards {})",
            observation.join(", "),
            ownership.basin_partitions,
            shards.join(" ")
        );
    }
}
