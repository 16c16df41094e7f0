//! The dead-letter topic: every rejected input goes there with its reason, so nothing is lost.
//! The record keeps the original key and bytes; headers carry `reason`, `detail` and where the
//! input came from (`source-topic`, `source-partition`, `source-offset`), which also lets a
//! consumer drop the duplicate a redelivery after a failed commit can cause.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tianshan_core::agency_alert::AgencyAlertError;
use tianshan_core::observation::RejectReason;

use crate::error::PipelineError;

/// A reason a record is rejected for: its code goes to the `reason` header.
pub trait DeadLetterReason {
    /// Returns the machine-readable code.
    fn code(&self) -> &'static str;
}

impl DeadLetterReason for RejectReason {
    fn code(&self) -> &'static str {
        RejectReason::code(*self)
    }
}

impl DeadLetterReason for AgencyAlertError {
    fn code(&self) -> &'static str {
        AgencyAlertError::code(self)
    }
}

/// One rejected input: an observation's by default, an agency alert's with [`AgencyAlertError`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter<R = RejectReason> {
    /// Machine-readable reason.
    pub reason: R,
    /// Human-readable explanation.
    pub detail: String,
    /// Topic it was read from.
    pub source_topic: String,
    /// Partition it was read from.
    pub source_partition: i32,
    /// Offset it was read from.
    pub source_offset: i64,
    /// Original key.
    pub key: Option<Vec<u8>>,
    /// Original bytes.
    pub payload: Vec<u8>,
}

/// Writes dead letters and waits for the broker's acknowledgement.
#[derive(Clone)]
pub struct DeadLetterWriter {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterWriter {
    /// Creates a writer to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
        }
    }

    /// Sends the dead letters and returns once every one is acknowledged.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when the broker does not acknowledge one; the caller must
    /// then not commit the source offsets.
    pub async fn write_all<R: DeadLetterReason>(
        &self,
        letters: &[DeadLetter<R>],
    ) -> Result<(), PipelineError> {
        let mut deliveries = Vec::with_capacity(letters.len());
        for letter in letters {
            let partition = letter.source_partition.to_string();
            let offset = letter.source_offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reason",
                    value: Some(letter.reason.code()),
                })
                .insert(Header {
                    key: "detail",
                    value: Some(letter.detail.as_str()),
                })
                .insert(Header {
                    key: "source-topic",
                    value: Some(letter.source_topic.as_str()),
                })
                .insert(Header {
                    key: "source-partition",
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: "source-offset",
                    value: Some(offset.as_str()),
                });
            let mut record = FutureRecord::to(&self.topic)
                .payload(&letter.payload)
                .headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(key);
            }
            deliveries.push(self.producer.send(record, Duration::from_secs(30)));
        }
        for delivery in deliveries {
            delivery
                .await
                .map_err(|(e, _)| PipelineError::kafka("write a dead letter", e))?;
        }
        Ok(())
    }
}
