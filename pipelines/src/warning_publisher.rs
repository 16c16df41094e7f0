//! Publishes warning versions to the warnings topic, exactly once per (id, version) even across
//! restarts and replays: at start it reads the ids already on the topic and skips those. Receives
//! `WarningEvent`s from the `WarningManager`; fans them out to live subscribers (gRPC, the demo's
//! printer) through a broadcast channel. Top-level actor of the node.
//!
//! A sharded node publishes a version of a basin's or chain's warning only as its owner
//! ([`WarningPublisherMsg::OnlyOwned`]): while its ownership lease has lapsed (the group
//! coordinator has not answered for half a session) it holds the version, and everything after
//! it, and publishes them in order once the lease holds again; a version of a thread the node
//! no longer owns is not published (the new owner derives it from the basin-updates log). So a
//! node cut off from its coordinator does not publish a version the thread's next owner, which
//! read the topic back when it took over, publishes too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tianshan_core::warning::{Status, WarningEvent};
use tianshan_proto::v1;
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use crate::delivery_courier::OwnsWarning;
use crate::error::PipelineError;
use crate::ownership_lease::OwnershipLease;
use crate::telemetry::Metrics;

/// Messages of [`WarningPublisher`].
pub enum WarningPublisherMsg {
    /// A new warning version.
    Publish(WarningEvent),
    /// Replies once every earlier version is acknowledged by the broker.
    Flush(RpcReplyPort<()>),
    /// Replies with the last version of every active warning.
    Active(RpcReplyPort<Vec<WarningEvent>>),
    /// (id, version) pairs another node has published (read back from the topic when this
    /// node takes over basins): never published again here. Versions held for the lease are
    /// looked at again: those of threads kept through the rebalance go out, in order, unless
    /// they are among these; the others are another node's. Replies once merged.
    PublishedElsewhere(BTreeSet<(String, u32)>, RpcReplyPort<()>),
    /// From now on publish a warning version only while this node owns its thread (a sharded
    /// node).
    OnlyOwned(OwnerCheck),
    /// Looks again at the versions held while the lease had lapsed.
    RetryHeld,
}

/// Whether this node may publish a warning version now (a sharded node).
#[derive(Clone)]
pub struct OwnerCheck {
    /// Whether the node owns the version's thread now, lease included.
    pub owns: OwnsWarning,
    /// The node's ownership lease.
    pub lease: OwnershipLease,
}

/// What to do with a version now, as [`OwnerCheck`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Publish it.
    Publish,
    /// Keep it (and everything after it) until the lease holds again.
    Hold,
    /// Another node owns its thread: it is that node's to publish.
    NotOurs,
}

impl OwnerCheck {
    fn turn(&self, event: &WarningEvent) -> Turn {
        if (self.owns)(event) {
            Turn::Publish
        } else if self.lease.holds() {
            Turn::NotOurs
        } else {
            Turn::Hold
        }
    }
}

/// How long held versions wait before the lease is looked at again.
const HELD_RETRY: Duration = Duration::from_millis(200);

impl From<WarningEvent> for WarningPublisherMsg {
    fn from(event: WarningEvent) -> Self {
        WarningPublisherMsg::Publish(event)
    }
}

impl TryFrom<WarningPublisherMsg> for WarningEvent {
    type Error = ();

    fn try_from(msg: WarningPublisherMsg) -> Result<Self, ()> {
        match msg {
            WarningPublisherMsg::Publish(event) => Ok(event),
            _ => Err(()),
        }
    }
}

/// Start-up arguments of [`WarningPublisher`].
pub struct WarningPublisherArgs {
    /// Producer for the warnings topic.
    pub producer: FutureProducer,
    /// Warnings topic.
    pub topic: String,
    /// (id, version) pairs already on the topic.
    pub published: BTreeSet<(String, u32)>,
    /// Live fan-out.
    pub broadcast: broadcast::Sender<WarningEvent>,
    /// The sign-off desk, which takes every version published.
    pub sign_off: Option<DerivedActorRef<WarningEvent>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// State of [`WarningPublisher`].
pub struct WarningPublisherState {
    args: WarningPublisherArgs,
    active: BTreeMap<String, WarningEvent>,
    /// Sharded: who may publish what; `None` publishes everything.
    owner_check: Option<OwnerCheck>,
    /// Versions held while the lease had lapsed, in the order they came.
    held: VecDeque<WarningEvent>,
    /// Whether a [`WarningPublisherMsg::RetryHeld`] is on its way.
    retry_due: bool,
    /// Whether versions wait for the lease (logged once per lapse).
    holding: bool,
}

/// The actor that writes warnings to Kafka.
pub struct WarningPublisher;

impl Actor for WarningPublisher {
    type Msg = WarningPublisherMsg;
    type State = WarningPublisherState;
    type Arguments = WarningPublisherArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<WarningPublisherMsg>,
        args: WarningPublisherArgs,
    ) -> Result<WarningPublisherState, ActorProcessingErr> {
        Ok(WarningPublisherState {
            args,
            active: BTreeMap::new(),
            owner_check: None,
            held: VecDeque::new(),
            retry_due: false,
            holding: false,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<WarningPublisherMsg>,
        msg: WarningPublisherMsg,
        st: &mut WarningPublisherState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WarningPublisherMsg::Publish(event) => {
                st.held.push_back(event);
                publish_in_turn(&me, st).await?;
            }
            WarningPublisherMsg::RetryHeld => {
                st.retry_due = false;
                publish_in_turn(&me, st).await?;
            }
            WarningPublisherMsg::OnlyOwned(check) => st.owner_check = Some(check),
            WarningPublisherMsg::Flush(reply) => {
                st.args
                    .producer
                    .flush(Duration::from_secs(30))
                    .map_err(|e| PipelineError::kafka("flush warnings", e))?;
                let _ = reply.send(());
            }
            WarningPublisherMsg::Active(reply) => {
                let _ = reply.send(st.active.values().cloned().collect());
            }
            WarningPublisherMsg::PublishedElsewhere(published, reply) => {
                st.args.published.extend(published);
                publish_in_turn(&me, st).await?;
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

/// Publishes the versions in `st.held`, in order, as far as the owner check lets it: a version
/// of a thread another node owns is dropped; while the lease has lapsed the rest stay held,
/// and a retry is scheduled.
async fn publish_in_turn(
    me: &ActorRef<WarningPublisherMsg>,
    st: &mut WarningPublisherState,
) -> Result<(), PipelineError> {
    while let Some(event) = st.held.front() {
        let turn = st
            .owner_check
            .as_ref()
            .map_or(Turn::Publish, |check| check.turn(event));
        match turn {
            Turn::Hold => {
                if !st.holding {
                    st.holding = true;
                    warn!(warning = %event.id, version = event.version, "ownership lease lapsed: warning versions held until the coordinator answers again");
                }
                if !st.retry_due {
                    st.retry_due = true;
                    me.send_after(HELD_RETRY, || WarningPublisherMsg::RetryHeld);
                }
                break;
            }
            Turn::NotOurs => {
                info!(warning = %event.id, version = event.version, "version of a thread another node owns now: not published here, its owner derives it");
                st.held.pop_front();
            }
            Turn::Publish => {
                let event = st.held.pop_front().expect("the front was just seen");
                publish_now(st, event).await?;
            }
        }
    }
    if st.holding && st.held.is_empty() {
        st.holding = false;
        info!("no warning version held any more");
    }
    st.args.metrics.set_warnings_held(st.held.len());
    Ok(())
}

/// Publishes `event` unless it is on the topic already, and hands it to the desk either way.
async fn publish_now(
    st: &mut WarningPublisherState,
    event: WarningEvent,
) -> Result<(), PipelineError> {
    if event.status == Status::Cancelled {
        st.active.remove(event.id.as_str());
    } else {
        st.active.insert(event.id.to_string(), event.clone());
    }
    let key = (event.id.to_string(), event.version);
    let first_time = !st.args.published.contains(&key);
    if first_time {
        publish(&st.args.producer, &st.args.topic, &event).await?;
        st.args.published.insert(key);
        st.args.metrics.warning_published(&event);
        info!(warning = %event.id, version = event.version, level = %event.level, status = event.status.name(), "warning published");
    } else {
        st.args.metrics.warning_deduplicated();
    }
    // Also a version already on the topic: a node that died between publishing and
    // the desk's journal must still hand it over; the desk refuses versions it has.
    if let Some(desk) = &st.args.sign_off {
        if desk.send_message(event.clone()).is_err() {
            error!(warning = %event.id, version = event.version, "the sign-off desk is gone: this version reaches no one");
        }
    }
    if first_time {
        let _ = st.args.broadcast.send(event);
    }
    Ok(())
}

async fn publish(
    producer: &FutureProducer,
    topic: &str,
    event: &WarningEvent,
) -> Result<(), PipelineError> {
    let payload = v1::Warning::from(event).encode_to_vec();
    let version = event.version.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "content-type",
            value: Some("application/x-protobuf"),
        })
        .insert(Header {
            key: "warning-version",
            value: Some(version.as_str()),
        });
    let record = FutureRecord::to(topic)
        .key(event.id.as_str())
        .payload(&payload)
        .headers(headers);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(e, _)| PipelineError::kafka("publish a warning", e))
}

/// Reads every warning on `topic` (from the beginning to the current end) and returns the
/// (id, version) pairs, so a restarted node does not send them again.
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the topic cannot be read.
pub fn read_published(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<BTreeSet<(String, u32)>, PipelineError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "tianshan-warnings-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| PipelineError::kafka("create the warnings reader", e))?;
    read_all(&consumer, topic)?
        .into_iter()
        .map(|record| {
            v1::Warning::decode(record.payload.as_slice())
                .map(|w| (w.id, w.version))
                .map_err(|e| {
                    PipelineError::Setup(format!(
                        "warnings topic {topic} holds a record that is not a warning: {e}"
                    ))
                })
        })
        .collect()
}

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Partition it was on.
    pub partition: i32,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Its headers (UTF-8 values).
    pub headers: BTreeMap<String, String>,
}

/// Reads every record of `topic` from the beginning to the end seen now (for tests, audits and
/// the restart path).
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the topic cannot be read.
pub fn read_topic(bootstrap_servers: &str, topic: &str) -> Result<Vec<TopicRecord>, PipelineError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "tianshan-topic-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| PipelineError::kafka("create a topic reader", e))?;
    read_all(&consumer, topic)
}

/// Reads all records of a topic from the beginning to the end seen now, in partition order.
/// A partition is read once its last record came or its end was reported (`consumer` must be
/// created with `enable.partition.eof`): on a compacted topic the last offsets may hold no
/// record any more (a tombstone removed after `delete.retention.ms`).
fn read_all(consumer: &BaseConsumer, topic: &str) -> Result<Vec<TopicRecord>, PipelineError> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| PipelineError::kafka("read topic metadata", e))?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), timeout)
            .map_err(|e| PipelineError::kafka("read topic watermarks", e))?;
        if high > low {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Offset(low))
                .map_err(|e| PipelineError::kafka("assign a partition", e))?;
            ends.insert(partition.id(), high);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| PipelineError::kafka("assign partitions", e))?;
    let mut done = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while done.len() < ends.len() {
        if std::time::Instant::now() > deadline {
            return Err(PipelineError::Setup(format!(
                "timed out reading topic {topic}"
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match message {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                if ends.contains_key(&partition) {
                    done.insert(partition);
                }
                continue;
            }
            Err(e) => return Err(PipelineError::kafka("read a record", e)),
        };
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|header| {
                        (
                            header.key.to_string(),
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(TopicRecord {
            partition: message.partition(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            done.insert(message.partition());
        }
    }
    Ok(records)
}
