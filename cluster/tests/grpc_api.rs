//! The gRPC API end to end on 127.0.0.1:0 with a real tonic client: a real sign-off desk over a
//! real dissemination tree (the Xinjiang admin divisions, the synthetic directory, a courier that
//! records), the real warning publisher on the embedded Kafka broker, and a token table with a
//! water-resources officer, a forestry officer, a village head, a subscriber and an admin.
//! Covers each denial, sign-off, acknowledgement, subscription with resume from a cursor,
//! health and reflection.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tianshan_actors::admin_unit::{
    AdminUnitActor, AdminUnitArgs, AdminUnitMsg, DeliveryRequest, Dissemination,
};
use tianshan_actors::sign_off_desk::{SignOffDesk, SignOffDeskArgs, SignOffDeskMsg};
use tianshan_actors::wall_clock::WallClock;
use tianshan_cluster::server::{serve_grpc, GrpcServices};
use tianshan_cluster::warning_service::{WarningApi, WarningApiSettings, WarningsTopic};
use tianshan_core::access::TokenTable;
use tianshan_core::dissemination::acknowledgement::{
    AcknowledgementConfig, DeliveryKey, DeliveryOutcome, Subject,
};
use tianshan_core::dissemination::recipients::Directory;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AreaCode, WarningId};
use tianshan_core::lifecycle::action_for;
use tianshan_core::region::load_admin_units;
use tianshan_core::signoff::SignOffPolicy;
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::{Hazard, Level, Status, WarningEvent};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::telemetry::Metrics;
use tianshan_pipelines::warning_publisher::{
    WarningPublisher, WarningPublisherArgs, WarningPublisherMsg,
};
use tianshan_proto::v1;
use tianshan_proto::v1::warning_service_client::WarningServiceClient;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};

const WATER: &str = "water-officer-token-0123456789abcdef";
const FORESTRY: &str = "forestry-officer-token-0123456789abcd";
const VILLAGE_HEAD: &str = "village-head-token-0123456789abcdef0";
const SUBSCRIBER: &str = "subscriber-token-0123456789abcdef012";
const ADMIN: &str = "admin-token-0123456789abcdef01234567";
const VILLAGE_HEAD_ID: &str = "650102-002-v1";
const WARNING: &str = "FF-B9999-20240701T0800Z";
const WAIT: Duration = Duration::from_secs(30);

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

fn tokens() -> anyhow::Result<TokenTable> {
    let csv = format!(
        "token,principal,role,department,unit\n\
         {WATER},officer-water,duty-officer,water-resources,\n\
         {FORESTRY},officer-forestry,duty-officer,forestry-and-grassland,\n\
         {VILLAGE_HEAD},{VILLAGE_HEAD_ID},responsible-person,,650102002\n\
         {SUBSCRIBER},app-1,subscriber,,\n\
         {ADMIN},ops,admin,,\n"
    );
    Ok(TokenTable::from_csv(&csv, Path::new("tokens.csv"))?)
}

/// Version `version` of a red flash-flood warning over township 650102002 that started at
/// `start`, an hour per version.
fn red_warning(start: EventTime, version: u32) -> WarningEvent {
    WarningEvent {
        id: WarningId::new(WARNING),
        version,
        hazard: Hazard::FlashFlood,
        level: Level::Red,
        action: action_for(Hazard::FlashFlood, Level::Red),
        status: if version == 1 {
            Status::Issued
        } else {
            Status::Renewed
        },
        target: "B9999".to_owned(),
        area_codes: vec![AreaCode::new("650102"), AreaCode::new("650102002")],
        onset: start,
        issued: start.plus_ms(i64::from(version - 1) * HOUR_MS),
        expires: start.plus_ms(i64::from(version + 2) * HOUR_MS),
        evidence: Vec::new(),
        caused_by: None,
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .expect("ASCII header value");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Everything the server under test talks to.
struct Node {
    /// Kept alive while the publisher and the subscriptions use it.
    _broker: EmbeddedBroker,
    publisher: ActorRef<WarningPublisherMsg>,
    desk: ActorRef<SignOffDeskMsg>,
    deliveries: mpsc::UnboundedReceiver<DeliveryKey>,
    client: WarningServiceClient<Channel>,
    channel: Channel,
}

async fn start_node() -> anyhow::Result<Node> {
    let broker = EmbeddedBroker::start(1)?;
    broker.create_topic("warnings", 3)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()?;
    let (warnings, _) = broadcast::channel(16);
    let (publisher, _) = Actor::spawn(
        None,
        WarningPublisher,
        WarningPublisherArgs {
            producer,
            topic: "warnings".to_owned(),
            published: BTreeSet::new(),
            broadcast: warnings,
            // The tests hand model versions to the desk themselves.
            sign_off: None,
            metrics: Arc::new(Metrics::default()),
        },
    )
    .await?;

    let units = load_admin_units(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang/admin_units.csv"
    )))?;
    let tree = AdminTree::try_from_units(&units)?;
    let directory = Directory::synthetic(&tree, 2);
    let (sent, deliveries) = mpsc::unbounded_channel();
    let (courier, _) = Actor::spawn(None, RecordingCourier, sent).await?;
    let shared = Arc::new(Dissemination {
        tree,
        directory,
        acknowledgement: AcknowledgementConfig::default(),
        clock: WallClock::system(),
        courier: courier.get_derived(),
        state: None,
    });
    let (region, _) = Actor::spawn(
        None,
        AdminUnitActor,
        AdminUnitArgs {
            code: shared.tree.region().clone(),
            shared: shared.clone(),
            restored: Arc::default(),
        },
    )
    .await?;
    let (desk, _) = Actor::spawn(
        None,
        SignOffDesk,
        SignOffDeskArgs {
            policy: SignOffPolicy::default(),
            dissemination: shared,
            tree: region.get_derived(),
            restored: None,
        },
    )
    .await?;

    let api = WarningApi::new(
        publisher.clone(),
        WarningApiSettings {
            sign_off_desk: desk.clone(),
            region_unit: region,
            tokens: Arc::new(tokens()?),
            warnings_topic: WarningsTopic {
                bootstrap_servers: broker.bootstrap_servers().to_owned(),
                topic: "warnings".to_owned(),
            },
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let services = GrpcServices {
        warnings: api,
        flight_sql: None,
        peer: None,
    };
    serve_grpc(listener, services, None).await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    Ok(Node {
        _broker: broker,
        publisher,
        desk,
        deliveries,
        client: WarningServiceClient::new(channel.clone()),
        channel,
    })
}

impl Node {
    /// Publishes a model warning version: onto the warnings topic and to the sign-off desk.
    async fn publish(&self, event: WarningEvent) -> anyhow::Result<()> {
        self.desk.cast(SignOffDeskMsg::Published(event.clone()))?;
        self.publisher.cast(WarningPublisherMsg::Publish(event))?;
        tianshan_actors::ask::ask(&self.publisher, WarningPublisherMsg::Flush, "flush")
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// Waits for the courier to be handed the warning for `recipient`.
    async fn delivered_to(&mut self, recipient: &str) -> anyhow::Result<()> {
        loop {
            let key = tokio::time::timeout(WAIT, self.deliveries.recv())
                .await
                .context("no delivery in time")?
                .context("courier gone")?;
            if key.recipient.as_str() == recipient && key.subject == Subject::Warning {
                return Ok(());
            }
        }
    }

    async fn subscribe(
        &mut self,
        cursor: Option<v1::Cursor>,
    ) -> Result<Streaming<v1::SubscribeResponse>, tonic::Status> {
        let request = v1::SubscribeRequest {
            area_code_prefix: "6501".to_owned(),
            hazards: vec![v1::Hazard::FlashFlood.into()],
            min_level: v1::Level::Orange.into(),
            cursor,
        };
        Ok(self
            .client
            .subscribe(with_token(request, Some(SUBSCRIBER)))
            .await?
            .into_inner())
    }
}

async fn next_item(
    stream: &mut Streaming<v1::SubscribeResponse>,
) -> anyhow::Result<(u32, v1::Cursor)> {
    let item = tokio::time::timeout(WAIT, stream.next())
        .await
        .context("no warning streamed in time")?
        .context("stream ended")??;
    let warning = item.warning.context("item without warning")?;
    assert_eq!(warning.id, WARNING);
    Ok((warning.version, item.cursor.context("item without cursor")?))
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn approve(version: u32) -> v1::ApproveRequest {
    v1::ApproveRequest {
        warning_id: WARNING.to_owned(),
        version,
        edit: None,
    }
}

fn acknowledge(addressee: &str) -> v1::AcknowledgeRequest {
    v1::AcknowledgeRequest {
        warning_id: WARNING.to_owned(),
        version: 1,
        addressee: addressee.to_owned(),
        handover_of: String::new(),
    }
}

#[tokio::test]
async fn every_call_without_a_token_is_unauthenticated() -> anyhow::Result<()> {
    let node = start_node().await?;
    let mut client = node.client.clone();
    let unknown = Some("not-a-token-anyone-holds-0123456789");
    for token in [None, unknown] {
        let codes = [
            code(
                client
                    .list_active(with_token(v1::ListActiveRequest::default(), token))
                    .await,
            ),
            code(
                client
                    .subscribe(with_token(v1::SubscribeRequest::default(), token))
                    .await,
            ),
            code(
                client
                    .get_warning(with_token(
                        v1::GetWarningRequest {
                            warning_id: WARNING.into(),
                        },
                        token,
                    ))
                    .await,
            ),
            code(
                client
                    .acknowledge(with_token(acknowledge(VILLAGE_HEAD_ID), token))
                    .await,
            ),
            code(
                client
                    .list_drafts(with_token(v1::ListDraftsRequest {}, token))
                    .await,
            ),
            code(client.approve(with_token(approve(1), token)).await),
            code(
                client
                    .reject(with_token(
                        v1::RejectRequest {
                            warning_id: WARNING.into(),
                            version: 1,
                            reason: "x".into(),
                        },
                        token,
                    ))
                    .await,
            ),
            code(
                client
                    .issue_warning(with_token(v1::IssueWarningRequest::default(), token))
                    .await,
            ),
        ];
        assert_eq!(codes, [Code::Unauthenticated; 8], "token {token:?}");
    }
    Ok(())
}

#[tokio::test]
async fn sign_off_acknowledgement_and_resumed_subscription() -> anyhow::Result<()> {
    let mut node = start_node().await?;
    let mut client = node.client.clone();
    let mut live = node.subscribe(None).await?;
    // The tree runs on the wall clock: the warning must not have expired already.
    let start = WallClock::system().now();

    node.publish(red_warning(start, 1)).await?;
    let (version, after_first) = next_item(&mut live).await?;
    assert_eq!(version, 1);

    // Drafts: the water officer sees the flash-flood draft, the forestry officer does not, a
    // subscriber may not list drafts at all.
    let drafts = |token| with_token(v1::ListDraftsRequest {}, Some(token));
    let water_drafts = client.list_drafts(drafts(WATER)).await?.into_inner().drafts;
    let ids: Vec<&str> = water_drafts
        .iter()
        .filter_map(|d| d.warning.as_ref().map(|w| w.id.as_str()))
        .collect();
    assert_eq!(ids, [WARNING]);
    assert_eq!(water_drafts[0].department, "water-resources");
    assert!(client
        .list_drafts(drafts(FORESTRY))
        .await?
        .into_inner()
        .drafts
        .is_empty());
    assert_eq!(
        code(client.list_drafts(drafts(SUBSCRIBER)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        client
            .list_drafts(drafts(ADMIN))
            .await?
            .into_inner()
            .drafts
            .len(),
        1
    );

    // Approval: forestry may not sign water's draft; water may, once.
    let denied = client.approve(with_token(approve(1), Some(FORESTRY))).await;
    assert_eq!(code(denied), Code::PermissionDenied);
    assert_eq!(
        code(
            client
                .approve(with_token(approve(1), Some(SUBSCRIBER)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(client.approve(with_token(approve(2), Some(WATER))).await),
        Code::NotFound
    );
    client.approve(with_token(approve(1), Some(WATER))).await?;
    assert_eq!(
        code(client.approve(with_token(approve(1), Some(WATER))).await),
        Code::FailedPrecondition
    );
    let got = client
        .get_warning(with_token(
            v1::GetWarningRequest {
                warning_id: WARNING.into(),
            },
            Some(SUBSCRIBER),
        ))
        .await?
        .into_inner();
    assert!(got.signed, "{got:?}");
    assert_eq!(got.signed_version, 1);

    // Acknowledgement: only the addressed village head.
    node.delivered_to(VILLAGE_HEAD_ID).await?;
    assert_eq!(
        code(
            client
                .acknowledge(with_token(acknowledge(VILLAGE_HEAD_ID), Some(SUBSCRIBER)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            client
                .acknowledge(with_token(acknowledge("650102-002-v2"), Some(VILLAGE_HEAD)))
                .await
        ),
        Code::PermissionDenied
    );
    let outcome = client
        .acknowledge(with_token(acknowledge(VILLAGE_HEAD_ID), Some(VILLAGE_HEAD)))
        .await?
        .into_inner()
        .outcome();
    assert_eq!(outcome, v1::AckOutcome::InTime);

    // Versions 2 and 3 go out live; a subscriber that resumes after version 1 gets exactly 2
    // and 3 from the topic, then version 4 live.
    node.publish(red_warning(start, 2)).await?;
    node.publish(red_warning(start, 3)).await?;
    assert_eq!(next_item(&mut live).await?.0, 2);
    assert_eq!(next_item(&mut live).await?.0, 3);
    drop(live);
    let mut resumed = node.subscribe(Some(after_first)).await?;
    assert_eq!(next_item(&mut resumed).await?.0, 2);
    let (version, after_third) = next_item(&mut resumed).await?;
    assert_eq!(version, 3);
    node.publish(red_warning(start, 4)).await?;
    assert_eq!(next_item(&mut resumed).await?.0, 4);
    let mut from_third = node.subscribe(Some(after_third)).await?;
    assert_eq!(next_item(&mut from_third).await?.0, 4);

    let mut far = v1::Cursor::default();
    far.partitions.push(v1::PartitionOffset {
        partition: 0,
        next_offset: 1_000,
    });
    assert_eq!(code(node.subscribe(Some(far)).await), Code::OutOfRange);
    Ok(())
}

#[tokio::test]
async fn issue_warning_is_for_duty_officers() -> anyhow::Result<()> {
    let node = start_node().await?;
    let mut client = node.client.clone();
    let now_ms = WallClock::system().now().millis();
    let issue = |token| {
        with_token(
            v1::IssueWarningRequest {
                hazard: v1::Hazard::LightningFire.into(),
                level: v1::Level::Orange.into(),
                area_codes: vec!["650102002".into()],
                target: "ZONE-7".into(),
                message: "加强巡护".into(),
                expires_ms: now_ms + HOUR_MS,
            },
            Some(token),
        )
    };
    assert_eq!(
        code(client.issue_warning(issue(SUBSCRIBER)).await),
        Code::PermissionDenied
    );
    let issued = client.issue_warning(issue(FORESTRY)).await?.into_inner();
    assert_eq!(issued.version, 1);
    let drafts = client
        .list_drafts(with_token(v1::ListDraftsRequest {}, Some(FORESTRY)))
        .await?
        .into_inner()
        .drafts;
    assert_eq!(drafts.len(), 1);
    assert_eq!(
        (drafts[0].origin.as_str(), drafts[0].message.as_str()),
        ("manual", "加强巡护")
    );
    let reject = |token, reason: &str| {
        with_token(
            v1::RejectRequest {
                warning_id: issued.warning_id.clone(),
                version: 1,
                reason: reason.into(),
            },
            Some(token),
        )
    };
    assert_eq!(
        code(client.reject(reject(WATER, "not ours")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(client.reject(reject(FORESTRY, " ")).await),
        Code::InvalidArgument
    );
    client
        .reject(reject(FORESTRY, "duplicate of a county warning"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn health_is_serving_and_reflection_lists_the_service() -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::{v1 as reflection, v1alpha as reflection_alpha};

    let node = start_node().await?;
    let mut health = HealthClient::new(node.channel.clone());
    for service in ["", "tianshan.v1.WarningService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }

    let mut v1_client =
        reflection::server_reflection_client::ServerReflectionClient::new(node.channel.clone());
    let request = reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = v1_client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses.next().await.context("no reflection answer")??;
    let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        anyhow::bail!("not a service list: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tianshan.v1.WarningService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );

    let mut alpha_client = reflection_alpha::server_reflection_client::ServerReflectionClient::new(
        node.channel.clone(),
    );
    let request = reflection_alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection_alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = alpha_client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses
        .next()
        .await
        .context("no v1alpha reflection answer")??;
    let Some(reflection_alpha::server_reflection_response::MessageResponse::ListServicesResponse(
        list,
    )) = response.message_response
    else {
        anyhow::bail!("not a service list: {response:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "tianshan.v1.WarningService"),
        "{list:?}"
    );
    Ok(())
}
