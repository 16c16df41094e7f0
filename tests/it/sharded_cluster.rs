//! Three sharded nodes against the embedded broker: the storm gives exactly the warnings of one
//! node (the golden file: same ids, versions, levels, nothing twice), every observation is
//! decided once across the cluster, and the partitions are shared out; the dissemination tree
//! is sharded by prefecture (each node holds books only of the shards it owns, no obligation in
//! two nodes' books, and together they hold the very obligations one node holds: the books
//! golden file); each node's cluster
//! view (peer API) reports what Kafka assigned it, and SQL answers without a listed node that
//! is not running but not without one that owns partitions, with every gauge that reported in
//! `station_windows` once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::ask::ask;
use tianshan_actors::wall_clock::WallClock;
use tianshan_cluster::peer_gather::{PeerGather, PeerTransport};
use tianshan_cluster::peer_service::{NodeIdentity, PeerApi};
use tianshan_cluster::sql_engine::{SnapshotSource, SqlEngine};
use tianshan_core::dissemination::acknowledgement::Subject;
use tianshan_core::dissemination::shards::{every_shard, shard_of};
use tianshan_core::ids::StationId;
use tianshan_core::observation::Reading;
use tianshan_core::region::Region;
use tianshan_pipelines::node_pipeline::{
    sharded_cluster_settled, NodePipeline, Ownership, PipelineSettings,
};
use tianshan_pipelines::sql::NodeSources;
use tianshan_proto::codec::decode_observation;
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::{ClusterViewRequest, ClusterViewResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::deadline::{finishes_within, STORM_TEST_LIMIT};
use crate::scatter_gather::{tokens, PEER};

use crate::golden_warnings::{
    books_settled_text, golden_text, read_books_golden, read_golden, BOOKS_GOLDEN, GOLDEN,
};
use crate::storm_on_embedded_broker::{
    dead_letter_reasons, expected_rejections, produce, storm_fixture, warning_lines, StormFixture,
};

/// Starts `count` nodes of `settings` (sharded) and waits until they share the partitions.
pub(crate) async fn start_sharded_nodes(
    settings: &PipelineSettings,
    region: &Arc<Region>,
    count: usize,
) -> Vec<NodePipeline> {
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        nodes.push(
            NodePipeline::start(settings, region.clone())
                .await
                .expect("node starts"),
        );
    }
    wait_until_shared(&nodes).await;
    nodes
}

/// Waits until every node owns observation and basin-updates partitions, and every partition
/// has an owner: the group has settled on three members.
pub(crate) async fn wait_until_shared(nodes: &[NodePipeline]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owned: Vec<_> = nodes.iter().filter_map(NodePipeline::ownership).collect();
        let observation: usize = owned.iter().map(|o| o.observation_partitions.len()).sum();
        let basin: usize = owned.iter().map(|o| o.basin_partitions.len()).sum();
        if owned
            .iter()
            .all(|o| !o.observation_partitions.is_empty() && !o.basin_partitions.is_empty())
            && observation == 24
            && basin == 12
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not share the partitions: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the cluster has decided every one of `expected` observations and every node's
/// basins and chains have been fed the last tick any node finished.
async fn wait_until_settled(nodes: &[NodePipeline], expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut next_report = Instant::now();
    loop {
        if Instant::now() >= next_report {
            for (i, n) in nodes.iter().enumerate() {
                eprintln!(
                    "node {i}: ticks done {} fed {} caught up {} {:?}",
                    n.metrics.watermark_ms(),
                    n.metrics.basin_watermark_ms(),
                    n.metrics.is_caught_up(),
                    n.metrics.accounting()
                );
            }
            next_report += Duration::from_secs(10);
        }
        let accounts: Vec<_> = nodes.iter().map(|n| n.metrics.accounting()).collect();
        let received: u64 = accounts.iter().map(|a| a.received).sum();
        if received >= expected && sharded_cluster_settled(nodes) {
            assert_eq!(received, expected, "no observation is read twice as live");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster did not settle: received {received}/{expected}, {accounts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sharded_nodes_give_the_warnings_of_one() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            mut settings,
            region,
            scenario,
            records,
        } = storm_fixture();
        settings.kafka.sharded = true;
        let nodes = start_sharded_nodes(&settings, &region, 3).await;
        produce(&settings.kafka.bootstrap_servers, &records).await;
        wait_until_settled(&nodes, records.len() as u64).await;
        for node in &nodes {
            node.flush().await.expect("flush");
        }
        let ownership: Vec<_> = nodes
            .iter()
            .map(|n| n.ownership().expect("sharded nodes report ownership"))
            .collect();
        let accounts: Vec<_> = nodes.iter().map(|n| n.metrics.accounting()).collect();
        check_books_follow_shards(&nodes, &ownership).await;
        let trees: Vec<_> = nodes
            .iter()
            .map(|node| node.dissemination.region_unit.clone())
            .collect();
        let books_text = books_settled_text(move || {
            let trees = trees.clone();
            async move {
                let mut books = Vec::new();
                for tree in &trees {
                    books.extend(
                        ask(tree, AdminUnitMsg::Books, "acknowledgement books")
                            .await
                            .expect("the tree answers"),
                    );
                }
                books
            }
        })
        .await;
        for node in nodes {
            node.stop().await.expect("node stops");
        }

        // Each partition has exactly one owner, and the work is shared.
        let mut observation = BTreeSet::new();
        let mut basin = BTreeSet::new();
        for owned in &ownership {
            assert!(
                !owned.observation_partitions.is_empty() && !owned.basin_partitions.is_empty(),
                "every node owns some of the work: {ownership:?}"
            );
            for p in &owned.observation_partitions {
                assert!(observation.insert(p.clone()), "{p:?} has two owners");
            }
            for p in &owned.basin_partitions {
                assert!(basin.insert(*p), "basin partition {p} has two owners");
            }
        }
        assert_eq!(basin.len(), 12, "{ownership:?}");

        // in = applied + rejected across the cluster, rejections exactly the designed anomalies.
        let sum = |f: fn(&tianshan_pipelines::telemetry::Accounting) -> u64| -> u64 {
            accounts.iter().map(f).sum()
        };
        assert_eq!(
            sum(|a| a.received),
            sum(|a| a.applied) + sum(|a| a.rejected)
        );
        let expected = expected_rejections(&scenario);
        assert_eq!(dead_letter_reasons(&settings.kafka), expected);

        assert_eq!(
            books_text,
            read_books_golden(),
            "three nodes' books hold other people than one node's ({BOOKS_GOLDEN})"
        );
        let text = golden_text(warning_lines(&settings.kafka));
        assert_eq!(
            text,
            read_golden(),
            "three nodes differ from one node ({GOLDEN})"
        );
    })
    .await;
}

/// Checks that the dissemination tree is sharded by prefecture: each node holds acknowledgement
/// books only at the units of the shards it owns, and no obligation is in two nodes' books.
/// (The storm's warnings all lie in one prefecture, so one node may hold every book.)
async fn check_books_follow_shards(nodes: &[NodePipeline], ownership: &[Ownership]) {
    let mut held_by: BTreeMap<(String, u32, String, Subject), usize> = BTreeMap::new();
    for (index, (node, owned)) in nodes.iter().zip(ownership).enumerate() {
        let books = ask(
            &node.dissemination.region_unit,
            AdminUnitMsg::Books,
            "acknowledgement books",
        )
        .await
        .expect("the tree answers");
        let shared = &node.dissemination.shared;
        for book in &books {
            for (recipient, subject, _) in book.obligations() {
                let unit = &shared
                    .directory
                    .get(recipient)
                    .expect("a book's recipients are in the directory")
                    .unit;
                let shard = shard_of(&shared.tree, unit);
                assert!(
                    owned.shards.contains(&shard),
                    "node {index} holds a book of {recipient} in shard {shard}, which it does not own: {:?}",
                    owned.shards
                );
                let key = (
                    book.warning().to_string(),
                    book.version(),
                    recipient.to_string(),
                    subject.clone(),
                );
                if let Some(other) = held_by.insert(key.clone(), index) {
                    panic!("{key:?} is in the books of nodes {other} and {index}");
                }
            }
        }
    }
    assert!(!held_by.is_empty(), "the storm's warnings opened books");
}

/// Partitions of the embedded broker's basin-updates topic (`EmbeddedBroker::create_node_topics`).
const BASIN_UPDATE_PARTITIONS: i32 = 12;

/// Serves `node`'s peer API on a free port of 127.0.0.1; returns a client of it and its address.
async fn serve_peer_api(
    node: &NodePipeline,
    region: Arc<Region>,
) -> (PeerServiceClient<Channel>, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound").to_string();
    let source = SnapshotSource::Live {
        sources: NodeSources::of(node, region),
        clock: WallClock::system(),
    };
    let identity = NodeIdentity {
        node_id: format!("node-{address}"),
        grpc_address: address.clone(),
        peers: Vec::new(),
    };
    let router = tonic::transport::Server::builder()
        .add_service(PeerApi::new(identity, source, tokens()).into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    let client = PeerServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connects");
    (client, address)
}

async fn cluster_view(client: &mut PeerServiceClient<Channel>) -> ClusterViewResponse {
    let mut request = Request::new(ClusterViewRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {PEER}").parse().expect("ascii"),
    );
    client
        .cluster_view(request)
        .await
        .expect("a peer is answered")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_view_reports_what_each_node_owns() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            mut settings,
            region,
            records,
            ..
        } = storm_fixture();
        settings.kafka.sharded = true;
        // Some data in the log, so the consumers have positions and report their lag.
        produce(&settings.kafka.bootstrap_servers, &records[..3000]).await;
        let nodes = start_sharded_nodes(&settings, &region, 3).await;
        let mut clients = Vec::new();
        let mut addresses = Vec::new();
        for node in &nodes {
            let (client, address) = serve_peer_api(node, region.clone()).await;
            clients.push(client);
            addresses.push(address);
        }

        let mut observation = BTreeSet::new();
        let mut basin_partitions = BTreeSet::new();
        let mut basins = BTreeSet::new();
        let mut shards = BTreeSet::new();
        for (node, client) in nodes.iter().zip(&mut clients) {
            let view = cluster_view(client).await;
            let owned = node.ownership().expect("sharded nodes know what they own");
            let reported = view.ownership.expect("a sharded node reports what it owns");
            let reported_observation: Vec<(String, i32)> = reported
                .observation_partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition))
                .collect();
            assert_eq!(reported_observation, owned.observation_partitions);
            assert_eq!(reported.basin_update_partitions, owned.basin_partitions);
            // The basins are those whose key the basin-updates writer sends to the node's
            // partitions, and so are the shards of the dissemination tree (`shard:<area code>`).
            let lands_here = |key: &str| {
                let partition = settings
                    .kafka
                    .partitioner
                    .partition_of(key.as_bytes(), BASIN_UPDATE_PARTITIONS);
                owned.basin_partitions.contains(&partition)
            };
            let expected_basins: Vec<String> = region
                .basins
                .keys()
                .map(ToString::to_string)
                .filter(|basin| lands_here(basin))
                .collect();
            assert!(!expected_basins.is_empty(), "{owned:?}");
            assert_eq!(reported.basins, expected_basins);
            let expected_shards: Vec<String> = every_shard(&node.dissemination.shared.tree)
                .iter()
                .map(ToString::to_string)
                .filter(|shard| lands_here(&format!("shard:{shard}")))
                .collect();
            assert_eq!(reported.dissemination_shards, expected_shards);
            for shard in reported.dissemination_shards {
                assert!(shards.insert(shard.clone()), "shard {shard} reported twice");
            }
            for p in reported_observation {
                assert!(observation.insert(p.clone()), "{p:?} reported by two nodes");
            }
            for p in reported.basin_update_partitions {
                assert!(
                    basin_partitions.insert(p),
                    "basin partition {p} reported twice"
                );
            }
            for basin in reported.basins {
                assert!(basins.insert(basin.clone()), "basin {basin} reported twice");
            }
        }
        assert_eq!(observation.len(), 24);
        assert_eq!(
            shards.len(),
            27,
            "the region and its 26 units of prefecture level each have one owner"
        );
        assert_eq!(basin_partitions.len(), BASIN_UPDATE_PARTITIONS as usize);
        let all_basins: BTreeSet<String> = region.basins.keys().map(ToString::to_string).collect();
        assert_eq!(basins, all_basins, "every basin has exactly one owner");

        // Once the nodes have read what was produced, each reports its lag, and it is nothing.
        let deadline = Instant::now() + Duration::from_secs(60);
        for client in &mut clients {
            loop {
                let view = cluster_view(client).await;
                let lags: Vec<Option<i64>> = view
                    .ownership
                    .expect("still sharded")
                    .observation_partitions
                    .iter()
                    .map(|p| p.consumer_lag)
                    .collect();
                let reported: Vec<i64> = lags.iter().flatten().copied().collect();
                if !reported.is_empty() && reported.iter().all(|lag| *lag == 0) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not report a lag of 0: {lags:?}",
                    view.node_id
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        // SQL asked of node 0, once every node has rebuilt its state (a part still being
        // rebuilt is refused): a listed node that is not running (a StatefulSet below the
        // autoscaler's maximum) owns nothing, so the answer goes without it; leaving out a
        // running node leaves its partitions without an owner that answered, and is refused.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !nodes.iter().all(|node| node.metrics.is_ready()) {
            assert!(
                Instant::now() < deadline,
                "the nodes did not rebuild their state"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let absent = {
            let (closed, gone) = crate::scatter_gather::bind_listeners(1).await;
            drop(closed);
            gone[0].clone()
        };
        let sql_of_node_0 = |peers: &[&String]| {
            let peers: Vec<String> = peers.iter().map(|peer| (*peer).clone()).collect();
            let gather = PeerGather::new(
                &peers,
                tokens().peer_token(),
                Duration::from_secs(5),
                &PeerTransport::Plaintext,
            )
            .expect("peers");
            let source = SnapshotSource::Live {
                sources: NodeSources::of(&nodes[0], region.clone()),
                clock: WallClock::system(),
            };
            SqlEngine::new(source, gather)
        };
        let query = "SELECT count(*) AS stations FROM stations";
        let with_absent = sql_of_node_0(&[&addresses[1], &addresses[2], &absent])
            .query(query)
            .await
            .expect("the running nodes own every partition");
        assert_eq!(with_absent.1[0].num_rows(), 1);
        let without_node_2 = Status::from(
            sql_of_node_0(&[&addresses[1], &absent])
                .query(query)
                .await
                .expect_err("node 2's partitions have no owner that answered"),
        );
        assert_eq!(
            without_node_2.code(),
            Code::Unavailable,
            "{without_node_2:?}"
        );
        let (topic, partition) = nodes[2]
            .ownership()
            .expect("sharded")
            .observation_partitions[0]
            .clone();
        assert!(
            without_node_2
                .message()
                .contains(&format!("{topic}/{partition}")),
            "{without_node_2:?}"
        );
        assert!(
            without_node_2.message().contains(&absent),
            "{without_node_2:?}"
        );

        // Every rain gauge that reported is in station_windows once, from the node owning it,
        // with its seven windows: gauges that feed a basin from their owner's sharded ticks,
        // the others (most gauges of the region) summarized at the node's last tick.
        let reporting_gauges: BTreeSet<String> = records[..3000]
            .iter()
            .filter_map(|record| decode_observation(record.content_type, &record.payload).ok())
            .filter(|observation| matches!(observation.reading, Reading::Rainfall { .. }))
            .map(|observation| observation.station.to_string())
            .collect();
        let unticked = reporting_gauges
            .iter()
            .filter(|id| {
                region
                    .basins_of_station(&StationId::new(id.as_str()))
                    .is_empty()
            })
            .count();
        assert!(
            unticked > 0 && unticked < reporting_gauges.len(),
            "both kinds of gauge report: {unticked} of {}",
            reporting_gauges.len()
        );
        let (_, windows) = sql_of_node_0(&[&addresses[1], &addresses[2]])
            .query(
                "SELECT count(DISTINCT station) AS gauges, count(*) AS windows \
                 FROM station_windows WHERE last_observation IS NOT NULL",
            )
            .await
            .expect("the whole cluster answers");
        let counts: Vec<i64> = (0..2)
            .map(|column| {
                windows[0]
                    .column(column)
                    .as_primitive::<Int64Type>()
                    .value(0)
            })
            .collect();
        let gauges = reporting_gauges.len() as i64;
        assert_eq!(counts, [gauges, 7 * gauges]);

        for node in nodes {
            node.stop().await.expect("node stops");
        }
    })
    .await;
}

#[test]
fn a_sharded_node_dropped_without_stop_lets_its_runtime_shut_down() {
    let StormFixture {
        broker: _broker,
        mut settings,
        region,
        ..
    } = storm_fixture();
    settings.kafka.sharded = true;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let node = NodePipeline::start(&settings, region)
            .await
            .expect("node starts");
        wait_until_shared(std::slice::from_ref(&node)).await;
        drop(node);
    });
    let (done, shut_down) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = done.send(());
    });
    assert!(
        shut_down.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the runtime did not shut down: a source's threads outlived the dropped node"
    );
}
