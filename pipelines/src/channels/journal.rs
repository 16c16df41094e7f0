//! The delivery journal: every successful delivery is written to the compacted topic
//! `dissemination.deliveries` (key: the [`DeliveryKey`] as JSON, value: the [`LedgerEntry`] as
//! JSON, `{"delivered":<ms>,"expires":<ms>}`), and a starting courier rebuilds its dedupe
//! ledger from it, so no (warning id, version, recipient, subject, channel) is delivered twice
//! across restarts and failovers.
//!
//! The topic must be created with `cleanup.policy=compact`: the latest value per key is all a
//! rebuild needs. An empty value (a tombstone) removes its key. librdkafka's mock cluster
//! neither takes topic configs nor compacts, so the embedded broker keeps every record and the
//! rebuild reads them all, latest per key winning, which is what compaction would leave.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tianshan_core::dissemination::acknowledgement::DeliveryKey;
use tianshan_core::dissemination::ledger::{DeliveryLedger, LedgerEntry};
use tianshan_core::time::EventTime;

use crate::error::PipelineError;
use crate::warning_publisher::read_topic;

/// Writes delivered keys to the journal topic.
#[derive(Clone)]
pub struct DeliveryJournal {
    producer: FutureProducer,
    topic: String,
}

impl DeliveryJournal {
    /// Returns a journal writing to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }

    /// Records that `key` was delivered, and returns once the broker acknowledged it.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when the broker does not acknowledge the record.
    pub async fn record(&self, key: &DeliveryKey, entry: LedgerEntry) -> Result<(), PipelineError> {
        let record_key = serde_json::to_string(key).expect("a delivery key encodes as JSON");
        let value = serde_json::to_string(&entry).expect("a ledger entry encodes as JSON");
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
        let record = FutureRecord::to(&self.topic)
            .key(&record_key)
            .payload(&value)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| PipelineError::kafka("journal a delivery", e))
    }
}

/// Reads the journal `topic` from the beginning and returns a ledger of `capacity` holding
/// every key still unexpired at `now`. Blocks while it reads (call it at start, or from
/// `spawn_blocking`).
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the topic cannot be read, and
/// [`PipelineError::Setup`] for a record that is not a journal entry or for more unexpired
/// keys than `capacity`.
pub fn rebuild_ledger(
    bootstrap_servers: &str,
    topic: &str,
    capacity: usize,
    now: EventTime,
) -> Result<DeliveryLedger, PipelineError> {
    let mut ledger = DeliveryLedger::new(capacity);
    for (key, entry) in read_journal(bootstrap_servers, topic)? {
        if entry.expires <= now {
            continue;
        }
        ledger
            .check_and_record(&key, entry.delivered, entry.expires)
            .map_err(|e| {
                PipelineError::Setup(format!(
                    "cannot rebuild the delivery ledger from {topic}: {e}"
                ))
            })?;
    }
    Ok(ledger)
}

/// Reads the journal `topic` from the beginning: every delivery any node journaled, the
/// latest entry per key (what compaction leaves). Blocks while it reads.
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the topic cannot be read, and
/// [`PipelineError::Setup`] for a record that is not a journal entry.
pub fn read_journal(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<BTreeMap<DeliveryKey, LedgerEntry>, PipelineError> {
    let mut latest: BTreeMap<DeliveryKey, LedgerEntry> = BTreeMap::new();
    for record in read_topic(bootstrap_servers, topic)? {
        let bad = |what: &str, detail: String| {
            PipelineError::Setup(format!(
                "journal topic {topic} partition {} holds a record whose {what} is not a journal \
                 entry: {detail}",
                record.partition
            ))
        };
        let key_bytes = record
            .key
            .as_deref()
            .ok_or_else(|| bad("key", "missing".into()))?;
        let key: DeliveryKey =
            serde_json::from_slice(key_bytes).map_err(|e| bad("key", e.to_string()))?;
        if record.payload.is_empty() {
            latest.remove(&key);
            continue;
        }
        let entry: LedgerEntry =
            serde_json::from_slice(&record.payload).map_err(|e| bad("value", e.to_string()))?;
        latest.insert(key, entry);
    }
    Ok(latest)
}
