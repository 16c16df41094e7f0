//! Three sharded nodes against the embedded broker, each serving its gRPC services on
//! 127.0.0.1: a duty officer's approval and rejection sent to a node that does not own the
//! warning reach the owner, once (its desk changes; the other nodes' do not; a second call
//! answers "already"); a responsible person's acknowledgement sent to nodes that do not hold
//! the books of the person's prefecture reaches the node that does, once (the warning's
//! owner, another node, holds none of its books); the owner's
//! refusals (not found, other department) reach the client as they are; a warning issued by
//! hand for a basin becomes the basin owner's draft; every node lists every node's active
//! warnings and drafts, and reads a warning as its owner's desk knows it (one of no basin, as
//! the node that issued it knows it); the peer API's
//! forwarding opens only to peer tokens; and with the owner's server down the call (and a
//! list, which would miss the owner's part) is UNAVAILABLE, naming it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_actors::wall_clock::WallClock;
use tianshan_cluster::cluster_config::ClusterConfig;
use tianshan_cluster::server::{node_services, serve_grpc_until, GrpcSettings};
use tianshan_cluster::warning_service::{WarningApiSettings, WarningsTopic};
use tianshan_core::access::TokenTable;
use tianshan_core::dissemination::acknowledgement::{
    AckEventKind, ForcedAcknowledgement, ObligationState, Subject,
};
use tianshan_core::ids::{AreaCode, BasinId, RecipientId, WarningId};
use tianshan_core::lifecycle::action_for;
use tianshan_core::region::Region;
use tianshan_core::signoff::DraftScope;
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::{warning_id, Hazard, Level, Status as WarningStatus, WarningEvent};
use tianshan_pipelines::config::KafkaConfig;
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_pipelines::warning_publisher::WarningPublisherMsg;
use tianshan_proto::peer::v1::peer_service_client::PeerServiceClient;
use tianshan_proto::peer::v1::{ForwardApproveRequest, ForwardedOfficer};
use tianshan_proto::v1;
use tianshan_proto::v1::warning_service_client::WarningServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::deadline::{finishes_within, STORM_TEST_LIMIT};
use crate::scatter_gather::PEER;
use crate::sharded_cluster::start_sharded_nodes;
use crate::storm_on_embedded_broker::{storm_fixture, StormFixture};

const WATER_OFFICER: &str = "0f1ce40f1ce40f1ce40f1ce40f1ce40f1ce40f1c";
const FORESTRY_OFFICER: &str = "f0e57f0e57f0e57f0e57f0e57f0e57f0e57f0e5";
const HEAD: &str = "4ead04ead04ead04ead04ead04ead04ead04ead0";
const WAIT: Duration = Duration::from_secs(30);

/// Sets `token` as the call's bearer token.
fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// An orange flash-flood warning of `basin`'s first township, version 1, starting a minute
/// ago by the wall clock the nodes' trees run on, derived as a model derives it: its owner is
/// the owner of the basin.
pub(crate) fn flash_flood(region: &Region, basin: &BasinId) -> WarningEvent {
    let onset = WallClock::system().now().plus_ms(-60_000);
    let basin_data = &region.basins[basin];
    let area = basin_data
        .townships
        .first()
        .cloned()
        .unwrap_or_else(|| basin_data.county.clone());
    WarningEvent {
        id: warning_id(Hazard::FlashFlood, basin.as_str(), onset),
        version: 1,
        hazard: Hazard::FlashFlood,
        level: Level::Orange,
        action: action_for(Hazard::FlashFlood, Level::Orange),
        status: WarningStatus::Issued,
        target: basin.to_string(),
        area_codes: vec![area],
        onset,
        issued: onset,
        expires: onset.plus_ms(6 * HOUR_MS),
        evidence: Vec::new(),
        caused_by: None,
    }
}

/// Returns the index of the node owning `basin`.
pub(crate) fn owner_of(nodes: &[NodePipeline], basin: &BasinId) -> usize {
    nodes
        .iter()
        .position(|node| {
            node.ownership()
                .expect("sharded nodes know what they own")
                .basins
                .contains(basin)
        })
        .expect("every basin has an owner")
}

async fn books(node: &NodePipeline) -> Vec<ForcedAcknowledgement> {
    ask(
        &node.dissemination.region_unit,
        AdminUnitMsg::Books,
        "acknowledgement books",
    )
    .await
    .expect("the tree answers")
}

/// The books of `warning` on `node`.
pub(crate) async fn books_of(
    node: &NodePipeline,
    warning: &WarningId,
) -> Vec<ForcedAcknowledgement> {
    books(node)
        .await
        .into_iter()
        .filter(|book| book.warning() == warning)
        .collect()
}

/// Publishes `event` on `nodes[owner]` (the warnings topic, then its desk, which releases an
/// orange draft to responsible persons at once, through the shard of the tree its township
/// lies in), waits for its acknowledgement books to open, and returns the node holding them.
pub(crate) async fn publish(nodes: &[NodePipeline], owner: usize, event: &WarningEvent) -> usize {
    let node = &nodes[owner];
    node.publisher
        .cast(WarningPublisherMsg::Publish(event.clone()))
        .expect("the publisher runs");
    node.flush().await.expect("flush");
    let deadline = Instant::now() + WAIT;
    loop {
        for (index, node) in nodes.iter().enumerate() {
            if !books_of(node, &event.id).await.is_empty() {
                return index;
            }
        }
        assert!(Instant::now() < deadline, "no book of {} opened", event.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns the index of the node owning the shard of the dissemination tree `unit` lies in.
pub(crate) fn shard_owner_of(nodes: &[NodePipeline], unit: &AreaCode) -> usize {
    let partition = nodes[0]
        .dissemination
        .shards
        .as_ref()
        .expect("sharded nodes shard the tree")
        .of_unit(unit)
        .expect("every unit lies in a shard");
    nodes
        .iter()
        .position(|node| {
            node.ownership()
                .expect("sharded nodes know what they own")
                .basin_partitions
                .contains(&partition)
        })
        .expect("every shard has an owner")
}

pub(crate) async fn signed_version(node: &NodePipeline, warning: &WarningId) -> Option<u32> {
    ask(
        &node.dissemination.desk,
        |port| SignOffDeskMsg::Approved(warning.clone(), port),
        "signed version",
    )
    .await
    .expect("the desk answers")
    .map(|released| released.event.version)
}

async fn pending(node: &NodePipeline, warning: &WarningId) -> bool {
    ask(
        &node.dissemination.desk,
        |port| SignOffDeskMsg::ListDrafts(DraftScope::AllDepartments, port),
        "list drafts",
    )
    .await
    .expect("the desk answers")
    .iter()
    .any(|draft| &draft.event.id == warning)
}

/// The state of `person`'s obligation to acknowledge `warning` in `node`'s books.
pub(crate) async fn obligation_state(
    node: &NodePipeline,
    warning: &WarningId,
    person: &RecipientId,
) -> Option<ObligationState> {
    books_of(node, warning).await.iter().find_map(|book| {
        book.obligation(person, &Subject::Warning)
            .map(|obligation| obligation.state.clone())
    })
}

/// A responsible person `node`'s books of `warning` wait on.
pub(crate) async fn responsible_person(node: &NodePipeline, warning: &WarningId) -> RecipientId {
    books_of(node, warning)
        .await
        .iter()
        .flat_map(|book| book.obligations())
        .find(|(_, subject, obligation)| {
            **subject == Subject::Warning && obligation.must_acknowledge
        })
        .map(|(recipient, _, _)| recipient.clone())
        .expect("someone must acknowledge an orange warning")
}

/// How often `recipient` acknowledged `warning` in `node`'s books.
pub(crate) async fn acknowledgements(
    node: &NodePipeline,
    warning: &WarningId,
    recipient: &RecipientId,
) -> usize {
    books_of(node, warning)
        .await
        .iter()
        .flat_map(|book| book.events())
        .filter(|event| {
            &event.recipient == recipient
                && event.subject == Subject::Warning
                && matches!(event.kind, AckEventKind::Acknowledged { .. })
        })
        .count()
}

/// A node's gRPC server, and how to stop it.
struct Served {
    address: String,
    stop: Option<oneshot::Sender<()>>,
}

/// Serves the gRPC services of every node, each calling the others as its peers.
async fn serve_all(
    nodes: &[NodePipeline],
    region: &Arc<Region>,
    tokens: &Arc<TokenTable>,
    topic: &WarningsTopic,
) -> Vec<Served> {
    let mut listeners = Vec::new();
    for _ in nodes {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("a free port"));
    }
    let addresses: Vec<String> = listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound").to_string())
        .collect();
    let mut served = Vec::new();
    for (index, (node, listener)) in nodes.iter().zip(listeners).enumerate() {
        let bound = listener.local_addr().expect("bound");
        let grpc = GrpcSettings {
            api: WarningApiSettings {
                sign_off_desk: node.dissemination.desk.clone(),
                region_unit: node.dissemination.region_unit.clone(),
                tokens: tokens.clone(),
                warnings_topic: topic.clone(),
            },
            cluster: ClusterConfig {
                node_id: format!("node-{index}"),
                peers: addresses
                    .iter()
                    .filter(|address| **address != addresses[index])
                    .cloned()
                    .collect(),
                peer_timeout: "5s".to_owned(),
            },
            tls: None,
        };
        let (services, _) =
            node_services(node, region.clone(), grpc, bound).expect("the node's services");
        let (stop, stopped) = oneshot::channel::<()>();
        serve_grpc_until(listener, services, None, async {
            let _ = stopped.await;
        })
        .await
        .expect("the node serves");
        served.push(Served {
            address: addresses[index].clone(),
            stop: Some(stop),
        });
    }
    served
}

async fn client(served: &Served) -> WarningServiceClient<Channel> {
    WarningServiceClient::connect(format!("http://{}", served.address))
        .await
        .expect("connects")
}

fn acknowledge(warning: &WarningId, head: &RecipientId) -> Request<v1::AcknowledgeRequest> {
    with_token(
        v1::AcknowledgeRequest {
            warning_id: warning.to_string(),
            version: 1,
            addressee: head.to_string(),
            handover_of: String::new(),
        },
        HEAD,
    )
}

fn approve(warning: &WarningId, token: &str) -> Request<v1::ApproveRequest> {
    with_token(
        v1::ApproveRequest {
            warning_id: warning.to_string(),
            version: 1,
            edit: None,
        },
        token,
    )
}

fn reject(warning: &WarningId) -> Request<v1::RejectRequest> {
    with_token(
        v1::RejectRequest {
            warning_id: warning.to_string(),
            version: 1,
            reason: "the gauge was under maintenance".to_owned(),
        },
        WATER_OFFICER,
    )
}

/// Has the water officer issue, at `client`'s node, an orange flash-flood warning for `target`
/// over `like`'s area, by hand; returns its id.
async fn issue_by_hand(
    client: &mut WarningServiceClient<Channel>,
    like: &WarningEvent,
    target: &str,
) -> WarningId {
    let issued = client
        .issue_warning(with_token(
            v1::IssueWarningRequest {
                hazard: v1::Hazard::FlashFlood.into(),
                level: v1::Level::Orange.into(),
                area_codes: like.area_codes.iter().map(ToString::to_string).collect(),
                target: target.to_owned(),
                message: "山洪预警：请立即转移沟道附近人员".to_owned(),
                expires_ms: WallClock::system().now().plus_ms(HOUR_MS).millis(),
            },
            WATER_OFFICER,
        ))
        .await
        .expect("issued")
        .into_inner();
    WarningId::new(&issued.warning_id)
}

/// The warning ids `client`'s node lists as active, for `token`.
async fn active_ids(client: &mut WarningServiceClient<Channel>, token: &str) -> Vec<String> {
    let listed = client
        .list_active(with_token(v1::ListActiveRequest::default(), token))
        .await
        .expect("active warnings are listed")
        .into_inner();
    listed.warnings.into_iter().map(|w| w.id).collect()
}

/// How often each warning id is among the drafts `client`'s node lists for `token`.
async fn draft_counts(
    client: &mut WarningServiceClient<Channel>,
    token: &str,
) -> BTreeMap<String, usize> {
    let listed = client
        .list_drafts(with_token(v1::ListDraftsRequest {}, token))
        .await
        .expect("drafts are listed")
        .into_inner();
    let mut counts = BTreeMap::new();
    for draft in listed.drafts {
        let id = draft.warning.expect("a draft has its warning").id;
        *counts.entry(id).or_default() += 1;
    }
    counts
}

/// `warning` as `client`'s node reads it: its version and the version signed.
async fn read_warning(
    client: &mut WarningServiceClient<Channel>,
    warning: &WarningId,
) -> Result<(u32, bool, u32), Status> {
    let read = client
        .get_warning(with_token(
            v1::GetWarningRequest {
                warning_id: warning.to_string(),
            },
            HEAD,
        ))
        .await?
        .into_inner();
    let version = read.warning.expect("the warning is returned").version;
    Ok((version, read.signed, read.signed_version))
}

fn outcome(response: Result<tonic::Response<v1::AcknowledgeResponse>, Status>) -> v1::AckOutcome {
    let response = response.expect("the acknowledgement is answered");
    v1::AckOutcome::try_from(response.into_inner().outcome).expect("a known outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_and_decisions_sent_to_any_node_reach_the_owner_once() {
    finishes_within(STORM_TEST_LIMIT, async {
        let StormFixture {
            broker: _broker,
            mut settings,
            region,
            ..
        } = storm_fixture();
        settings.kafka.sharded = true;
        let nodes = start_sharded_nodes(&settings, &region, 3).await;
        // The checks run in their own task so that the nodes stop even when one fails (a node not
        // stopped keeps the runtime from shutting down).
        let nodes = Arc::new(nodes);
        let checks = tokio::spawn(check_forwarding(
            nodes.clone(),
            region,
            settings.kafka.clone(),
        ));
        let outcome = checks.await;
        let nodes = Arc::try_unwrap(nodes)
            .unwrap_or_else(|_| panic!("the checks hold no node once finished"));
        for node in nodes {
            node.stop().await.expect("node stops");
        }
        if let Err(failed) = outcome {
            std::panic::resume_unwind(failed.into_panic());
        }
    })
    .await;
}

async fn check_forwarding(nodes: Arc<Vec<NodePipeline>>, region: Arc<Region>, kafka: KafkaConfig) {
    // Two warnings owned by two different nodes; the books of the first are held by a third
    // node, the owner of the shard of the tree its township lies in.
    let basin = region
        .basins
        .keys()
        .find(|basin| {
            let area = &flash_flood(&region, basin).area_codes[0];
            owner_of(&nodes, basin) != shard_owner_of(&nodes, area)
        })
        .expect("some basin's township lies in a shard another node owns")
        .clone();
    let owner = owner_of(&nodes, &basin);
    let holder = shard_owner_of(&nodes, &flash_flood(&region, &basin).area_codes[0]);
    let other_basin = region
        .basins
        .keys()
        .find(|other| ![owner, holder].contains(&owner_of(&nodes, other)))
        .expect("the third node owns some basin")
        .clone();
    let other_owner = owner_of(&nodes, &other_basin);
    let not_owners: Vec<usize> = (0..3).filter(|index| *index != owner).collect();
    let event = flash_flood(&region, &basin);
    let other_event = flash_flood(&region, &other_basin);
    assert_eq!(publish(&nodes, owner, &event).await, holder);
    publish(&nodes, other_owner, &other_event).await;

    // A responsible person the holder's book waits on.
    let head = responsible_person(&nodes[holder], &event.id).await;
    let head_unit = nodes[holder]
        .dissemination
        .shared
        .directory
        .get(&head)
        .expect("in the directory")
        .unit
        .clone();
    let tokens = Arc::new(
        TokenTable::from_csv(
            &format!(
                "token,principal,role,department,unit\n\
                 {WATER_OFFICER},duty-water,duty-officer,water-resources,\n\
                 {FORESTRY_OFFICER},duty-forest,duty-officer,forestry-and-grassland,\n\
                 {HEAD},{head},responsible-person,,{head_unit}\n\
                 {PEER},tianshan-nodes,peer,,\n"
            ),
            Path::new("tokens.csv"),
        )
        .expect("tokens"),
    );
    let mut served = serve_all(&nodes, &region, &tokens, &WarningsTopic::from_kafka(&kafka)).await;
    let mut first = client(&served[not_owners[0]]).await;
    let mut second = client(&served[not_owners[1]]).await;

    // Every node lists both warnings and both drafts (of water resources), once, and reads
    // the warning as its owner's desk knows it: not signed yet.
    for (index, served_node) in served.iter().enumerate() {
        let mut any = client(served_node).await;
        let active = active_ids(&mut any, HEAD).await;
        for id in [&event.id, &other_event.id] {
            assert!(active.contains(&id.to_string()), "node {index}: {active:?}");
        }
        let drafts = draft_counts(&mut any, WATER_OFFICER).await;
        for id in [&event.id, &other_event.id] {
            assert_eq!(
                drafts.get(id.as_str()),
                Some(&1),
                "node {index}: {drafts:?}"
            );
        }
        let forestry = draft_counts(&mut any, FORESTRY_OFFICER).await;
        assert!(forestry.is_empty(), "node {index}: {forestry:?}");
        assert_eq!(
            read_warning(&mut any, &event.id).await.expect("read"),
            (1, false, 0),
            "node {index}"
        );
    }

    // The acknowledgement, sent to the warning's owner, reaches the holder's book, and only it.
    let mut at_owner = client(&served[owner]).await;
    assert_eq!(
        outcome(at_owner.acknowledge(acknowledge(&event.id, &head)).await),
        v1::AckOutcome::InTime
    );
    let state = obligation_state(&nodes[holder], &event.id, &head)
        .await
        .expect("the holder's book holds the obligation");
    assert!(
        matches!(state, ObligationState::Acknowledged { .. }),
        "{state:?}"
    );
    for index in (0..3).filter(|index| *index != holder) {
        assert!(
            books_of(&nodes[index], &event.id).await.is_empty(),
            "node {index} holds no book of a shard it does not own"
        );
    }
    // Sent again through the third node: the same book answers, and records nothing more.
    let third = (0..3)
        .find(|index| ![owner, holder].contains(index))
        .expect("three nodes");
    let mut at_third = client(&served[third]).await;
    assert_eq!(
        outcome(at_third.acknowledge(acknowledge(&event.id, &head)).await),
        v1::AckOutcome::AlreadyAcknowledged
    );
    assert_eq!(acknowledgements(&nodes[holder], &event.id, &head).await, 1);

    // An officer of another department is refused by the owner, where the draft is.
    let denied = first
        .approve(approve(&event.id, FORESTRY_OFFICER))
        .await
        .expect_err("not the forestry department's draft");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(pending(&nodes[owner], &event.id).await);

    // The approval reaches the owner's desk, and only it, once.
    first
        .approve(approve(&event.id, WATER_OFFICER))
        .await
        .expect("the owner approves");
    assert_eq!(signed_version(&nodes[owner], &event.id).await, Some(1));
    for index in &not_owners {
        assert_eq!(signed_version(&nodes[*index], &event.id).await, None);
    }
    // Read at a node whose own desk never saw it, the warning is signed.
    assert_eq!(
        read_warning(&mut second, &event.id).await.expect("read"),
        (1, true, 1)
    );
    let drafts = draft_counts(&mut second, WATER_OFFICER).await;
    assert!(!drafts.contains_key(event.id.as_str()), "{drafts:?}");
    let again = second
        .approve(approve(&event.id, WATER_OFFICER))
        .await
        .expect_err("already approved");
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    // A rejection sent to the first warning's owner reaches the second warning's owner.
    assert!(pending(&nodes[other_owner], &other_event.id).await);
    at_owner
        .reject(reject(&other_event.id))
        .await
        .expect("the other owner rejects");
    assert!(!pending(&nodes[other_owner], &other_event.id).await);
    assert_eq!(
        signed_version(&nodes[other_owner], &other_event.id).await,
        None
    );

    // A warning issued by hand for the owner's basin, at another node, is the owner's draft.
    let manual = issue_by_hand(&mut first, &event, basin.as_str()).await;
    assert!(
        pending(&nodes[owner], &manual).await,
        "{manual} is the owner's draft"
    );
    for index in &not_owners {
        assert!(!pending(&nodes[*index], &manual).await);
    }

    // A warning issued by hand for a place that is no basin stays with the node it was issued
    // at; approved there, it reads signed at any other node, which asks its peers for it.
    let of_no_basin = issue_by_hand(&mut first, &event, "river-valley-camp").await;
    first
        .approve(approve(&of_no_basin, WATER_OFFICER))
        .await
        .expect("approved where it was issued");
    assert_eq!(
        read_warning(&mut second, &of_no_basin).await.expect("read"),
        (1, true, 1),
        "{of_no_basin} is read at a node that does not have it"
    );
    let nowhere = WarningId::new(of_no_basin.as_str().replace("river-valley-camp", "nowhere"));
    let status = read_warning(&mut second, &nowhere)
        .await
        .expect_err("no node has it");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // A warning of the owner's basin that does not exist: the owner says so.
    let unknown = warning_id(Hazard::FlashFlood, basin.as_str(), EventTime(HOUR_MS));
    let status = first
        .approve(approve(&unknown, WATER_OFFICER))
        .await
        .expect_err("no such draft");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = first
        .acknowledge(acknowledge(&unknown, &head))
        .await
        .expect_err("no such delivery");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Only peers may forward: an officer calling the owner's peer API directly is refused.
    let mut peer_api = PeerServiceClient::connect(format!("http://{}", served[owner].address))
        .await
        .expect("connects");
    let forged = ForwardApproveRequest {
        request: Some(approve(&other_event.id, WATER_OFFICER).into_inner()),
        officer: Some(ForwardedOfficer {
            officer_id: "duty-water".to_owned(),
            department: "water-resources".to_owned(),
        }),
        received_by: "nobody".to_owned(),
    };
    let status = peer_api
        .forward_approve(with_token(forged, WATER_OFFICER))
        .await
        .expect_err("officers may not call the peer API");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // The owner's server goes down (its pipeline still owns the basin): the call is
    // UNAVAILABLE, naming it.
    let owner_address = served[owner].address.clone();
    let _ = served[owner].stop.take().expect("serving").send(());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        let status = first
            .approve(approve(&unknown, WATER_OFFICER))
            .await
            .expect_err("nobody can approve it");
        if status.code() != Code::NotFound {
            break status;
        }
        assert!(Instant::now() < deadline, "the owner still answers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&owner_address), "{status:?}");
    // The books are the holder's: an acknowledgement still reaches them.
    assert_eq!(
        outcome(at_third.acknowledge(acknowledge(&event.id, &head)).await),
        v1::AckOutcome::AlreadyAcknowledged
    );
    let status = read_warning(&mut second, &event.id)
        .await
        .expect_err("the owner is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&owner_address), "{status:?}");
    // A list without the owner's part would miss its warnings and drafts.
    let status = first
        .list_drafts(with_token(v1::ListDraftsRequest {}, WATER_OFFICER))
        .await
        .expect_err("the owner's drafts are out of reach");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&owner_address), "{status:?}");
    let status = second
        .list_active(with_token(v1::ListActiveRequest::default(), HEAD))
        .await
        .expect_err("the owner's warnings are out of reach");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&owner_address), "{status:?}");
}
