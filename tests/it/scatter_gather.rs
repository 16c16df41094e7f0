//! SQL across nodes: three nodes in one process, each holding a different part of a known
//! state (stations, basins, the warning, its book and the dead letters spread over them), serve
//! the peer API on 127.0.0.1; the same query asked of every node gives the same answer, which
//! is the answer over the whole state. A peer that does not answer fails the query as
//! UNAVAILABLE naming it; the peer API opens only to peer tokens. Nodes that serve TLS call
//! each other over TLS (fixtures in `tests/it/tls/`, made by its `generate.sh`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tianshan_cluster::flight_sql::FlightSqlApi;
use tianshan_cluster::peer_gather::{PeerGather, PeerTransport};
use tianshan_cluster::peer_service::{NodeIdentity, PeerApi};
use tianshan_cluster::sql_engine::{SnapshotSource, SqlEngine};
use tianshan_core::access::TokenTable;
use tianshan_pipelines::sql::known_state::known_state;
use tianshan_pipelines::sql::{format_batches, NodeSnapshot, NodeSql, OutputFormat};
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::ClusterViewRequest;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Code, Request, Status};

const OFFICER: &str = "0f1ce40f1ce40f1ce40f1ce40f1ce40f1ce40f1c";
pub(crate) const PEER: &str = "9ee59ee59ee59ee59ee59ee59ee59ee59ee59ee5";

const QUERIES: [&str; 5] = [
    "SELECT station, duration_min, mm FROM station_windows WHERE mm > 0 \
     ORDER BY station, duration_min",
    "SELECT count(*) AS windows, count(DISTINCT station) AS stations FROM station_windows",
    "SELECT basin, raw_level, held_level FROM basin_state WHERE held_level IS NOT NULL \
     ORDER BY basin",
    // Township heads of red basins who have not acknowledged: deliveries, warnings and
    // basin_state each come from another node.
    "SELECT d.recipient FROM deliveries d JOIN warnings w ON w.id = d.warning \
     JOIN basin_state b ON b.basin = w.target AND b.held_level = 'red' \
     WHERE d.recipient LIKE '______-___-head' AND d.acknowledged IS NULL ORDER BY d.recipient",
    "SELECT reason, sum(count) AS n FROM dead_letters GROUP BY reason ORDER BY reason",
];

pub(crate) fn tokens() -> Arc<TokenTable> {
    Arc::new(
        TokenTable::from_csv(
            &format!(
                "token,principal,role,department,unit\n\
                 {OFFICER},duty-water,duty-officer,water-resources,\n\
                 {PEER},tianshan-nodes,peer,,\n"
            ),
            Path::new("tokens.csv"),
        )
        .expect("tokens"),
    )
}

/// Returns node `index`'s third of `whole`: every third station and basin, the warning (node
/// 0) or the books (node 1), and a third of the dead letters.
fn part(whole: &NodeSnapshot, index: usize) -> NodeSnapshot {
    let mine = |position: usize| position % 3 == index;
    let mut part = whole.clone();
    part.station_summaries = every_third(&whole.station_summaries, index);
    part.assessments = every_third(&whole.assessments, index);
    if !mine(0) {
        part.warnings.clear();
    }
    if !mine(1) {
        part.books.clear();
    }
    // Every node dead-lettered a share of each reason's count.
    for count in part.rejected.values_mut() {
        *count = *count / 3 + u64::from((index as u64) < *count % 3);
    }
    part
}

fn every_third<T: Clone>(items: &[T], index: usize) -> Vec<T> {
    items
        .iter()
        .enumerate()
        .filter(|(position, _)| position % 3 == index)
        .map(|(_, item)| item.clone())
        .collect()
}

/// Serves the peer API and Flight SQL of a node holding `snapshot` on `listener`; returns the
/// node's SQL engine, which gathers from `peers`.
fn start_node(
    listener: TcpListener,
    snapshot: NodeSnapshot,
    peers: &[String],
    timeout: Duration,
) -> SqlEngine {
    start_node_serving(listener, snapshot, peers, timeout, None)
}

/// Reads a file of the TLS fixtures.
fn tls_fixture(name: &str) -> Vec<u8> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tls")
        .join(name);
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// As [`start_node`]; with `tls`, the node serves TLS with the fixtures' node certificate and
/// calls its peers over `tls`.
fn start_node_serving(
    listener: TcpListener,
    snapshot: NodeSnapshot,
    peers: &[String],
    timeout: Duration,
    tls: Option<&PeerTransport>,
) -> SqlEngine {
    let address = listener.local_addr().expect("bound").to_string();
    let source = SnapshotSource::Fixed(Arc::new(snapshot));
    let transport = tls.unwrap_or(&PeerTransport::Plaintext);
    let gather = PeerGather::new(peers, tokens().peer_token(), timeout, transport).expect("peers");
    let engine = SqlEngine::new(source.clone(), gather);
    let identity = NodeIdentity {
        node_id: format!("node-{address}"),
        grpc_address: address,
        peers: peers.to_vec(),
    };
    let mut builder = tonic::transport::Server::builder();
    if tls.is_some() {
        let identity = Identity::from_pem(tls_fixture("node.pem"), tls_fixture("node.key"));
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .expect("the fixtures make a TLS identity");
    }
    let router = builder
        .add_service(PeerApi::new(identity, source, tokens()).into_server())
        .add_service(FlightSqlApi::new(engine.clone(), tokens()).into_server());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    engine
}

async fn csv(engine: &SqlEngine, query: &str) -> String {
    let (_, batches) = engine.query(query).await.expect("the query is answered");
    format_batches(&batches, OutputFormat::Csv).expect("csv")
}

pub(crate) async fn bind_listeners(count: usize) -> (Vec<TcpListener>, Vec<String>) {
    let mut listeners = Vec::new();
    for _ in 0..count {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("a free port"));
    }
    let addresses = listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").to_string())
        .collect();
    (listeners, addresses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_three_gives_the_answer_over_the_whole_state() {
    let whole = known_state().await.snapshot;
    let (listeners, addresses) = bind_listeners(3).await;
    let engines: Vec<SqlEngine> = listeners
        .into_iter()
        .enumerate()
        .map(|(index, listener)| {
            let peers: Vec<String> = addresses
                .iter()
                .filter(|address| **address != addresses[index])
                .cloned()
                .collect();
            start_node(
                listener,
                part(&whole, index),
                &peers,
                Duration::from_secs(5),
            )
        })
        .collect();
    let whole_sql = NodeSql::new(&whole).expect("tables");
    for query in QUERIES {
        let batches = whole_sql.query(query).await.expect("runs over the whole");
        let expected = format_batches(&batches, OutputFormat::Csv).expect("csv");
        assert!(expected.lines().count() > 1, "{query} has rows: {expected}");
        for (index, engine) in engines.iter().enumerate() {
            assert_eq!(csv(engine, query).await, expected, "node {index}: {query}");
        }
        // No node holds the answer alone.
        for index in 0..3 {
            let alone = NodeSql::new(&part(&whole, index)).expect("tables");
            let batches = alone.query(query).await.expect("runs");
            let local = format_batches(&batches, OutputFormat::Csv).expect("csv");
            if query.contains("JOIN") || query.contains("dead_letters") {
                assert_ne!(local, expected, "node {index} alone: {query}");
            }
        }
    }
    let totals = csv(&engines[0], QUERIES[1]).await;
    let alone = NodeSql::new(&part(&whole, 0)).expect("tables");
    let alone = format_batches(
        &alone.query(QUERIES[1]).await.expect("runs"),
        OutputFormat::Csv,
    )
    .expect("csv");
    assert_ne!(totals, alone, "node 0 gathered the other nodes' windows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serving_tls_call_each_other_over_tls() {
    let whole = known_state().await.snapshot;
    let query = QUERIES[3];
    let expected = format_batches(
        &NodeSql::new(&whole)
            .expect("tables")
            .query(query)
            .await
            .expect("runs"),
        OutputFormat::Csv,
    )
    .expect("csv");
    let tls = PeerTransport::Tls {
        ca_pem: tls_fixture("ca.pem"),
    };
    let (listeners, addresses) = bind_listeners(3).await;
    let engines: Vec<SqlEngine> = listeners
        .into_iter()
        .enumerate()
        .map(|(index, listener)| {
            let peers: Vec<String> = addresses
                .iter()
                .filter(|address| **address != addresses[index])
                .cloned()
                .collect();
            let part = part(&whole, index);
            start_node_serving(listener, part, &peers, Duration::from_secs(5), Some(&tls))
        })
        .collect();
    for (index, engine) in engines.iter().enumerate() {
        assert_eq!(csv(engine, query).await, expected, "node {index}");
    }

    // A node calling the same peers in plaintext is not answered.
    let (mut listeners, _) = bind_listeners(1).await;
    let plaintext = start_node(
        listeners.pop().expect("one listener"),
        part(&whole, 0),
        &addresses[1..],
        Duration::from_secs(5),
    );
    let status = Status::from(
        plaintext
            .query(query)
            .await
            .expect_err("a TLS peer does not answer plaintext"),
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&addresses[1]), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_answer_fails_the_query_naming_it() {
    let whole = known_state().await.snapshot;
    let (mut listeners, addresses) = bind_listeners(2).await;
    let silent = listeners.pop().expect("two listeners");
    let silent_address = addresses[1].clone();
    // The port stays bound but nobody accepts: calls time out.
    let engine = start_node(
        listeners.pop().expect("one listener"),
        part(&whole, 0),
        std::slice::from_ref(&silent_address),
        Duration::from_millis(500),
    );
    let error = engine
        .query("SELECT count(*) FROM station_windows")
        .await
        .expect_err("a silent peer fails the query");
    let status = Status::from(error);
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&silent_address), "{status:?}");
    drop(silent);

    // A peer that is gone altogether fails the same way.
    let (closed, addresses) = bind_listeners(1).await;
    let gone = addresses[0].clone();
    drop(closed);
    let (mut listeners, _) = bind_listeners(1).await;
    let engine = start_node(
        listeners.pop().expect("one listener"),
        part(&whole, 0),
        std::slice::from_ref(&gone),
        Duration::from_millis(500),
    );
    let status = Status::from(
        engine
            .query("SELECT count(*) FROM dead_letters")
            .await
            .expect_err("a gone peer fails the query"),
    );
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&gone), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_api_opens_to_peer_tokens_only() {
    let whole = known_state().await.snapshot;
    let (mut listeners, addresses) = bind_listeners(1).await;
    start_node(
        listeners.pop().expect("one listener"),
        part(&whole, 0),
        &[],
        Duration::from_secs(5),
    );
    let mut client = PeerServiceClient::connect(format!("http://{}", addresses[0]))
        .await
        .expect("connects");
    let call = |token: Option<&str>| {
        let mut request = Request::new(ClusterViewRequest {});
        if let Some(token) = token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii"),
            );
        }
        request
    };
    let anonymous = client.cluster_view(call(None)).await.expect_err("refused");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let officer = client
        .cluster_view(call(Some(OFFICER)))
        .await
        .expect_err("refused");
    assert_eq!(officer.code(), Code::PermissionDenied);
    let view = client
        .cluster_view(call(Some(PEER)))
        .await
        .expect("a peer is answered")
        .into_inner();
    assert_eq!(view.node_id, format!("node-{}", addresses[0]));
    assert_eq!(view.grpc_address, addresses[0]);
    assert!(view.peers.is_empty());
    assert!(view.ready);
    assert_eq!(view.ownership, None, "an unsharded node owns everything");
}
