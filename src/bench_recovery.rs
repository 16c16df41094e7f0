//! `tianshan bench recovery`: how long a sharded cluster takes to restore ownership and state
//! after one of its nodes is killed with SIGKILL. Node processes (`tianshan run`, this binary)
//! on the embedded broker of this process, over the region grown to `--stations` stations with
//! synthetic rain gauges; the storm (every station reporting) is read by all nodes, then one is
//! killed, and the survivors' cluster views are polled until they own every partition and have
//! rebuilt the state of those they took over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tianshan_cluster::node_probe::{free_local_port, scrape_metrics};
use tianshan_cluster::whole_answer::{claimed, every_partition};
use tianshan_core::scenario::storm_scenario;
use tianshan_core::shard_coverage::{check_coverage, Claim};
use tianshan_pipelines::basin_update_source::ClusterPartitions;
use tianshan_pipelines::config::TopicsConfig;
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{produce_all, scenario_records};
use tianshan_pipelines::topic_setup::node_topics;
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::{ClusterViewRequest, ClusterViewResponse};
use tonic::transport::Channel;

use crate::bench_kafka::{bench_gateway, every_station_reporting};
use crate::config::Config;

/// What `tianshan bench recovery` runs.
#[derive(Debug, Clone)]
pub struct RecoveryBenchOptions {
    /// Stations of the grown region (at least the region's own).
    pub stations: usize,
    /// Node processes (at least 2: one is killed).
    pub nodes: usize,
    /// Dry hours before the storm: each adds one report per station and reporting interval.
    pub dry_hours: u32,
    /// Runs, each on a fresh broker and fresh nodes.
    pub runs: usize,
    /// The nodes' log filter; when given, their logs are kept. Otherwise they log warnings
    /// only, and their folder is removed at the end.
    pub node_logs: Option<String>,
}

/// The nodes' Kafka session timeout: the group notices a killed node after it.
const SESSION_TIMEOUT: &str = "6s";

/// The token the benchmark asks the nodes' peer API with (role `peer`).
const PEER_TOKEN: &str = "bench-recovery-peer-token-0123456789";

/// The longest each step (start, storm, recovery) may take before the benchmark gives up.
const STEP_AT_MOST: Duration = Duration::from_secs(600);

/// Runs `options.runs` kills and prints each run's times and their medians.
pub async fn run_recovery_bench(
    config: Config,
    options: RecoveryBenchOptions,
) -> anyhow::Result<()> {
    if options.nodes < 2 || options.runs == 0 {
        bail!("--nodes must be at least 2 and --runs at least 1");
    }
    let work = std::env::temp_dir().join(format!("tianshan-bench-recovery-{}", std::process::id()));
    let region_dir = work.join("region");
    let added = grow_region(&config.region_dir(), &region_dir, options.stations)?;
    let mut config = config;
    config.node.region = region_dir;
    let region = Arc::new(config.load_region()?);
    println!(
        "region: {} stations ({added} synthetic rain gauges added), {} nodes, session timeout {SESSION_TIMEOUT}",
        region.stations.len(),
        options.nodes
    );
    let mut owned = Vec::new();
    let mut restored = Vec::new();
    for run in 1..=options.runs {
        let times = one_kill(&config, &region, &options, &work.join(format!("run-{run}"))).await?;
        println!(
            "run {run}: {} observations read by {} nodes; after the SIGKILL the survivors owned every partition in {:.2} s and had rebuilt their state in {:.2} s",
            times.observations,
            options.nodes,
            times.owned.as_secs_f64(),
            times.restored.as_secs_f64()
        );
        owned.push(times.owned.as_secs_f64());
        restored.push(times.restored.as_secs_f64());
    }
    println!(
        "median over {} run(s): every partition owned {:.2} s, state rebuilt {:.2} s after the kill",
        options.runs,
        median(&mut owned),
        median(&mut restored)
    );
    // Best effort: the files are only the nodes' logs and the grown region.
    if options.node_logs.is_some() {
        println!("the nodes' logs are kept in {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

/// Copies the region folder `from` to `to`, then appends synthetic rain gauges to its
/// stations.csv until it holds `stations` (each next to one of the region's own rain gauges,
/// in its county, reporting every 5 minutes, in no basin). Returns how many it added.
fn grow_region(from: &Path, to: &Path, stations: usize) -> anyhow::Result<usize> {
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().context("a file has a name")?;
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copy {}", path.display()))?;
        }
    }
    let file = to.join("stations.csv");
    let text = std::fs::read_to_string(&file).context("read stations.csv")?;
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    let own = rows.len();
    let rain: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|f| f.len() == 6 && f[1] == "rain")
        .collect();
    if rain.is_empty() {
        bail!(
            "{} has no rain gauge to place synthetic ones by",
            file.display()
        );
    }
    let added = stations.saturating_sub(own);
    let mut grown = text.trim_end().to_string();
    for i in 0..added {
        let next_to = &rain[i % rain.len()];
        let lon: f64 = next_to[2].parse().context("station lon")?;
        let lat: f64 = next_to[3].parse().context("station lat")?;
        // A few kilometres off, a different way for each copy of the same gauge.
        let ring = (i / rain.len() + 1) as f64;
        let angle = i as f64 * 2.399;
        grown.push_str(&format!(
            "\nX{:05},rain,{:.5},{:.5},{},300",
            i + 1,
            lon + 0.02 * ring * angle.cos(),
            lat + 0.02 * ring * angle.sin(),
            next_to[4]
        ));
    }
    grown.push('\n');
    std::fs::write(&file, grown).context("write stations.csv")?;
    Ok(added)
}

/// What one kill measured.
struct KillTimes {
    observations: u64,
    owned: Duration,
    restored: Duration,
}

/// One node process and its addresses.
struct NodeProcess {
    child: Child,
    log: PathBuf,
    http_port: u16,
    peer: PeerServiceClient<Channel>,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn one_kill(
    config: &Config,
    region: &Arc<tianshan_core::region::Region>,
    options: &RecoveryBenchOptions,
    dir: &Path,
) -> anyhow::Result<KillTimes> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::write(
        dir.join("tokens.csv"),
        format!("token,principal,role,department,unit\n{PEER_TOKEN},bench-recovery,peer,,\n"),
    )
    .context("write tokens.csv")?;
    let broker = EmbeddedBroker::start(3)?;
    broker.create_node_topics(&config.kafka.topics)?;
    let mut nodes = Vec::with_capacity(options.nodes);
    for index in 0..options.nodes {
        let log_filter = options.node_logs.as_deref().unwrap_or("warn");
        nodes.push(start_node(config, broker.bootstrap_servers(), dir, index, log_filter).await?);
    }
    let all = partitions_to_own(&config.kafka.topics);
    let started_nodes = nodes.len();
    wait_for(
        &mut nodes,
        "the nodes to share out every partition",
        |views| {
            views.len() == started_nodes && views.iter().all(|v| v.ready) && covers_all(views, &all)
        },
    )
    .await?;

    let storm = every_station_reporting(options.dry_hours);
    let records = scenario_records(&storm_scenario(region, &storm), &config.kafka.topics);
    let total = records.len() as u64;
    let producer = bench_gateway(broker.bootstrap_servers())?;
    produce_all(&producer, &records).await?;
    let started = Instant::now();
    loop {
        still_running(&mut nodes)?;
        let (received, in_flight) = progress(&nodes);
        if received >= total && in_flight == 0 {
            break;
        }
        if started.elapsed() > STEP_AT_MOST {
            bail!("the nodes read {received} of {total} observations within {STEP_AT_MOST:?}; logs in {}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut killed = nodes.remove(0);
    killed.child.kill().context("SIGKILL the first node")?;
    let killed_at = Instant::now();
    let _ = killed.child.wait();
    let mut owned = None;
    loop {
        still_running(&mut nodes)?;
        let views = cluster_views(&nodes).await;
        let survivors_own_all = views.len() == nodes.len() && covers_all(&views, &all);
        if survivors_own_all && owned.is_none() {
            owned = Some(killed_at.elapsed());
        }
        if survivors_own_all && views.iter().all(|v| v.ready) {
            let restored = killed_at.elapsed();
            return Ok(KillTimes {
                observations: total,
                owned: owned.unwrap_or(restored),
                restored,
            });
        }
        if killed_at.elapsed() > STEP_AT_MOST {
            bail!("the survivors did not restore ownership and state within {STEP_AT_MOST:?}; logs in {}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The partitions a sharded cluster shares out (those of the observation topics and of the
/// basin-updates topic, as `tianshan create-topics` makes them), named as the cluster's coverage
/// check names them.
fn partitions_to_own(topics: &TopicsConfig) -> Vec<String> {
    let counts: BTreeMap<String, i32> = node_topics(topics).into_iter().collect();
    let observation = topics
        .observation_topics()
        .into_iter()
        .flat_map(|topic| (0..counts[topic]).map(move |p| (topic.to_owned(), p)))
        .collect();
    every_partition(&ClusterPartitions {
        observation,
        basin_updates: counts[&topics.basin_updates],
    })
}

/// Whether the nodes' views own every partition of `all` exactly once between them, every node
/// owning (sharded, with its partitions assigned).
fn covers_all(views: &[ClusterViewResponse], all: &[String]) -> bool {
    let claims: Option<Vec<Claim>> = views
        .iter()
        .map(|view| {
            Some(Claim {
                node: view.node_id.clone(),
                partitions: claimed(view.ownership.as_ref()?),
            })
        })
        .collect();
    claims.is_some_and(|claims| check_coverage(all, &claims).is_ok())
}

/// Polls the nodes' cluster views until `done` holds for them.
async fn wait_for(
    nodes: &mut [NodeProcess],
    what: &str,
    done: impl Fn(&[ClusterViewResponse]) -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        still_running(nodes)?;
        if done(&cluster_views(nodes).await) {
            return Ok(());
        }
        if started.elapsed() > STEP_AT_MOST {
            bail!("gave up waiting {STEP_AT_MOST:?} for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails, naming the node's log, when a node process has exited.
fn still_running(nodes: &mut [NodeProcess]) -> anyhow::Result<()> {
    for node in nodes {
        if let Some(status) = node.child.try_wait()? {
            bail!("a node exited ({status}); see {}", node.log.display());
        }
    }
    Ok(())
}

/// The cluster views of the nodes that answer.
async fn cluster_views(nodes: &[NodeProcess]) -> Vec<ClusterViewResponse> {
    let authorization: tonic::metadata::MetadataValue<_> = format!("Bearer {PEER_TOKEN}")
        .parse()
        .expect("the bearer header of an ASCII token is a valid header value");
    let mut views = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut peer = node.peer.clone();
        let mut request = tonic::Request::new(ClusterViewRequest {});
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        if let Ok(view) = peer.cluster_view(request).await {
            views.push(view.into_inner());
        }
    }
    views
}

/// Live observations read by all nodes, and those still in flight, from their `/metrics`.
fn progress(nodes: &[NodeProcess]) -> (u64, u64) {
    let mut received = 0;
    let mut in_flight = 0;
    for node in nodes {
        let text = scrape_metrics(node.http_port).unwrap_or_default();
        for line in text.lines() {
            let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if line.starts_with("tianshan_observations_total{outcome=\"received\"}") {
                received += value().unwrap_or(0.0) as u64;
            } else if line.starts_with("tianshan_observations_in_flight ") {
                in_flight += value().unwrap_or(0.0) as u64;
            }
        }
    }
    (received, in_flight)
}

/// Starts `tianshan run` (this binary) as sharded node `index`, logging what `log_filter` lets
/// through to `dir`.
async fn start_node(
    config: &Config,
    bootstrap_servers: &str,
    dir: &Path,
    index: usize,
    log_filter: &str,
) -> anyhow::Result<NodeProcess> {
    let grpc_port = free_local_port()?;
    let http_port = free_local_port()?;
    let file = dir.join(format!("node-{index}.toml"));
    std::fs::write(
        &file,
        node_config(config, bootstrap_servers, dir, index, grpc_port, http_port)?,
    )
    .with_context(|| format!("write {}", file.display()))?;
    let log_file = dir.join(format!("node-{index}.log"));
    let log = std::fs::File::create(&log_file)?;
    let child = Command::new(std::env::current_exe().context("this binary's path")?)
        .arg("--config")
        .arg(&file)
        .arg("run")
        .env("RUST_LOG", log_filter)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start a node process")?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    Ok(NodeProcess {
        child,
        log: log_file,
        http_port,
        peer: PeerServiceClient::new(channel),
    })
}

/// The config file of node `index`: the benchmark's region and topics, sharded, on the given
/// broker and ports.
fn node_config(
    config: &Config,
    bootstrap_servers: &str,
    dir: &Path,
    index: usize,
    grpc_port: u16,
    http_port: u16,
) -> anyhow::Result<String> {
    let quoted = |path: &PathBuf| serde_json::to_string(&path.display().to_string());
    let mut text = format!(
        "[node]\ngrpc-addr = \"127.0.0.1:{grpc_port}\"\nhttp-addr = \"127.0.0.1:{http_port}\"\nregion = {}\ntokens = {}\n\
         [kafka]\nbootstrap-servers = \"{bootstrap_servers}\"\ngroup-id = \"bench-recovery\"\nsharded = true\n\
         session-timeout = \"{SESSION_TIMEOUT}\"\nclient-id = \"node-{index}\"\n\
         [pipeline]\npartition-idle-after = \"15s\"\n\
         [dissemination]\nlog-unconfigured-channels-to = {}\n\
         [kafka.topics]\n",
        quoted(&config.node.region)?,
        quoted(&dir.join("tokens.csv"))?,
        quoted(&dir.join(format!("deliveries-{index}.log")))?
    );
    let topics = serde_json::to_value(&config.kafka.topics)?;
    for (key, value) in topics.as_object().context("topics are a table")? {
        text.push_str(&format!("{key} = {value}\n"));
    }
    Ok(text)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grown_region_holds_the_asked_stations_and_loads() {
        let dir = std::env::temp_dir().join(format!("tianshan-grow-test-{}", std::process::id()));
        let mut config = Config::load(None).expect("the default config loads");
        // Absolute: the config tests change the working directory while they run.
        config.node.region = Path::new(env!("CARGO_MANIFEST_DIR")).join("regions/xinjiang");
        let own = config.load_region().expect("region loads").stations.len();
        let added = grow_region(&config.region_dir(), &dir, own + 25).expect("region grows");
        assert_eq!(added, 25);
        let mut grown = config.clone();
        grown.node.region = dir.clone();
        let region = grown.load_region().expect("the grown region loads");
        assert_eq!(region.stations.len(), own + 25);
        std::fs::remove_dir_all(&dir).expect("test folder removed");
    }

    #[test]
    fn ownership_counts_only_when_no_partition_is_owned_twice() {
        use tianshan_proto::peer::v1::{ObservationPartition, Ownership};
        let view = |partitions: &[i32], basins: &[i32]| ClusterViewResponse {
            ownership: Some(Ownership {
                observation_partitions: partitions
                    .iter()
                    .map(|p| ObservationPartition {
                        topic: "rainfall".into(),
                        partition: *p,
                        ..Default::default()
                    })
                    .collect(),
                basin_update_partitions: basins.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let all: Vec<String> = ["rainfall/0", "rainfall/1", "rainfall/2"]
            .into_iter()
            .chain(["basin-updates/0", "basin-updates/1"])
            .map(String::from)
            .collect();
        assert!(covers_all(&[view(&[0, 1], &[0]), view(&[2], &[1])], &all));
        assert!(!covers_all(&[view(&[0, 1], &[0]), view(&[1], &[1])], &all));
        assert!(!covers_all(&[view(&[0], &[0]), view(&[2], &[1])], &all));
        assert!(!covers_all(&[ClusterViewResponse::default()], &all));
    }

    #[test]
    fn a_cluster_shares_out_the_observation_and_basin_update_partitions() {
        let topics = TopicsConfig::default();
        let all = partitions_to_own(&topics);
        assert_eq!(all.len(), 12 + 4 * 3 + 12);
        assert!(all.contains(&format!("{}/11", topics.rainfall)));
        assert!(all.contains(&"basin-updates/11".to_owned()));
        assert!(!all
            .iter()
            .any(|p| p.starts_with(&format!("{}/", topics.warnings))));
    }
}
