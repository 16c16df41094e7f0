//! Subscribe's source: the warnings topic, read by a consumer assigned to every partition from a
//! cursor (or from the topic's end), which catches up and then follows the topic live. One
//! ordered read per partition means no gap and no duplicate across a reconnect, and the topic
//! holds every node's warnings, so a subscriber sees the whole cluster's.

use std::collections::BTreeMap;
use std::time::Duration;

use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tianshan_pipelines::config::KafkaConfig;
use tianshan_pipelines::error::PipelineError;
use tianshan_proto::v1;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::warn;

use crate::error::ClusterError;

/// How long metadata and watermark look-ups may take when a subscription opens.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Items buffered per subscriber before the reader waits for the client.
const BUFFERED_ITEMS: usize = 64;

/// Where the warnings topic is.
#[derive(Debug, Clone)]
pub struct WarningsTopic {
    /// Comma-separated `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// The warnings topic.
    pub topic: String,
}

impl WarningsTopic {
    /// Returns the warnings topic of the pipeline's Kafka settings.
    pub fn from_kafka(kafka: &KafkaConfig) -> Self {
        Self {
            bootstrap_servers: kafka.bootstrap_servers.clone(),
            topic: kafka.topics.warnings.clone(),
        }
    }
}

/// What a subscriber asked to see.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    /// Area code prefix; empty for all.
    pub(crate) area_code_prefix: String,
    /// Protobuf hazard values; empty for all.
    pub(crate) hazards: Vec<i32>,
    /// Protobuf level value; 0 for all.
    pub(crate) min_level: i32,
}

impl Filter {
    fn accepts(&self, warning: &v1::Warning) -> bool {
        let in_area = self.area_code_prefix.is_empty()
            || warning
                .area_codes
                .iter()
                .any(|code| code.starts_with(&self.area_code_prefix));
        let hazard = self.hazards.is_empty() || self.hazards.contains(&warning.hazard);
        in_area && hazard && warning.level >= self.min_level
    }
}

/// The stream Subscribe returns.
pub(crate) type Subscription = ReceiverStream<Result<v1::SubscribeResponse, Status>>;

/// Opens a consumer at `cursor` (absent: the topic's end now) and streams the matching warnings
/// from there on, each with the cursor right after it.
///
/// # Errors
/// [`ClusterError::InvalidRequest`] for a cursor naming a partition the topic lacks,
/// [`ClusterError::CursorOutOfRange`] for an offset the topic no longer or not yet holds, and
/// [`ClusterError::Pipeline`] when Kafka cannot be reached.
pub(crate) async fn subscribe(
    topic: WarningsTopic,
    cursor: Option<v1::Cursor>,
    filter: Filter,
) -> Result<Subscription, ClusterError> {
    let (consumer, positions) = tokio::task::spawn_blocking(move || open(&topic, cursor))
        .await
        .map_err(ClusterError::actor)??;
    let (sender, receiver) = mpsc::channel(BUFFERED_ITEMS);
    tokio::spawn(follow(consumer, positions, filter, sender));
    Ok(ReceiverStream::new(receiver))
}

/// Creates the consumer and assigns it every partition at its start offset; returns the start
/// offsets by partition. Blocking: it looks up metadata and watermarks.
fn open(
    topic: &WarningsTopic,
    cursor: Option<v1::Cursor>,
) -> Result<(StreamConsumer, BTreeMap<i32, i64>), ClusterError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &topic.bootstrap_servers)
        .set("group.id", "tianshan-grpc-subscribers")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .map_err(|e| PipelineError::kafka("create a subscription consumer", e))?;
    let metadata = consumer
        .fetch_metadata(Some(&topic.topic), KAFKA_TIMEOUT)
        .map_err(|e| PipelineError::kafka("read the warnings topic metadata", e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| p.id())
        .collect();
    if partitions.is_empty() {
        return Err(PipelineError::Setup(format!(
            "warnings topic {} has no partitions",
            topic.topic
        ))
        .into());
    }
    let asked: BTreeMap<i32, i64> = cursor
        .map(|c| {
            c.partitions
                .iter()
                .map(|p| (p.partition, p.next_offset))
                .collect()
        })
        .unwrap_or_default();
    if let Some(unknown) = asked.keys().find(|p| !partitions.contains(p)) {
        return Err(ClusterError::InvalidRequest(format!(
            "cursor names partition {unknown}, which the warnings topic does not have"
        )));
    }
    let resume = !asked.is_empty();
    let mut positions = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic.topic, partition, KAFKA_TIMEOUT)
            .map_err(|e| PipelineError::kafka("read the warnings topic watermarks", e))?;
        // A partition a cursor does not name had nothing when the cursor was handed out.
        let start = match asked.get(&partition) {
            Some(&next) if next < low || next > high => {
                return Err(ClusterError::CursorOutOfRange(format!(
                    "partition {partition} holds offsets {low}..{high}, the cursor asks for {next}"
                )))
            }
            Some(&next) => next,
            None if resume => low,
            None => high,
        };
        assignment
            .add_partition_offset(&topic.topic, partition, Offset::Offset(start))
            .map_err(|e| PipelineError::kafka("assign a warnings partition", e))?;
        positions.insert(partition, start);
    }
    consumer
        .assign(&assignment)
        .map_err(|e| PipelineError::kafka("assign the warnings partitions", e))?;
    Ok((consumer, positions))
}

fn cursor_of(positions: &BTreeMap<i32, i64>) -> v1::Cursor {
    v1::Cursor {
        partitions: positions
            .iter()
            .map(|(&partition, &next_offset)| v1::PartitionOffset {
                partition,
                next_offset,
            })
            .collect(),
    }
}

/// Reads the topic and sends the matching warnings until the subscriber goes away.
async fn follow(
    consumer: StreamConsumer,
    mut positions: BTreeMap<i32, i64>,
    filter: Filter,
    sender: mpsc::Sender<Result<v1::SubscribeResponse, Status>>,
) {
    loop {
        let received = tokio::select! {
            () = sender.closed() => return,
            received = consumer.recv() => received.map(|m| (m.partition(), m.offset(), m.payload().map(<[u8]>::to_vec))),
        };
        let (partition, offset, payload) = match received {
            Ok(record) => record,
            Err(e) => {
                warn!(error = %e, "subscription lost the warnings topic");
                let _ = sender
                    .send(Err(Status::unavailable(
                        "the warnings topic is unavailable; subscribe again with the last cursor",
                    )))
                    .await;
                return;
            }
        };
        positions.insert(partition, offset + 1);
        let warning = match v1::Warning::decode(payload.unwrap_or_default().as_slice()) {
            Ok(warning) => warning,
            Err(e) => {
                warn!(partition, offset, error = %e, "record on the warnings topic is not a warning");
                continue;
            }
        };
        if !filter.accepts(&warning) {
            continue;
        }
        let item = v1::SubscribeResponse {
            warning: Some(warning),
            cursor: Some(cursor_of(&positions)),
        };
        if sender.send(Ok(item)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(hazard: v1::Hazard, level: v1::Level, area: &str) -> v1::Warning {
        v1::Warning {
            hazard: hazard.into(),
            level: level.into(),
            area_codes: vec![area.to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn filters_by_area_prefix_hazard_and_minimum_level() {
        let filter = Filter {
            area_code_prefix: "6501".into(),
            hazards: vec![v1::Hazard::FlashFlood.into()],
            min_level: v1::Level::Orange.into(),
        };
        assert!(filter.accepts(&warning(v1::Hazard::FlashFlood, v1::Level::Red, "650102")));
        assert!(!filter.accepts(&warning(
            v1::Hazard::FlashFlood,
            v1::Level::Yellow,
            "650102"
        )));
        assert!(!filter.accepts(&warning(v1::Hazard::Landslide, v1::Level::Red, "650102")));
        assert!(!filter.accepts(&warning(v1::Hazard::FlashFlood, v1::Level::Red, "654025")));
        let everything = Filter {
            area_code_prefix: String::new(),
            hazards: Vec::new(),
            min_level: 0,
        };
        assert!(everything.accepts(&warning(v1::Hazard::Landslide, v1::Level::Blue, "654025")));
    }

    #[test]
    fn a_cursor_lists_every_partition_in_order() {
        let positions = BTreeMap::from([(2, 7), (0, 3), (1, 0)]);
        let cursor = cursor_of(&positions);
        let pairs: Vec<(i32, i64)> = cursor
            .partitions
            .iter()
            .map(|p| (p.partition, p.next_offset))
            .collect();
        assert_eq!(pairs, [(0, 3), (1, 0), (2, 7)]);
    }
}
