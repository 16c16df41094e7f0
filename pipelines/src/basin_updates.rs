//! The internal `basin-updates` topic of a sharded cluster: what the node owning a station's
//! observation partition sends on to the node owning the station's basin or chain.
//!
//! Records are JSON (one [`BasinUpdate`] each):
//! - a station summary at a tick, once per basin the station feeds, keyed by the basin id;
//! - a chain's watched-station summaries at a tick and the lightning and deformation readings
//!   applied before a tick, keyed by the chain (`chain:fire`, `chain:landslide`);
//! - a tick marker ("these observation partitions finished tick T"), written to every partition
//!   after the tick's other records, so each downstream owner knows when a tick is complete;
//! - a warning version released to (or withdrawn from) one shard of the dissemination tree,
//!   keyed by the shard (`shard:650100`), so the node owning the shard's partition delivers it
//!   (`tianshan_core::dissemination::shards`). These wait for no tick.
//!
//! Records of one writer to one partition keep their order (Kafka keeps a partition's order for a
//! producer), so a marker always follows the records of its tick.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tianshan_core::ids::{AreaCode, BasinId, RecipientId, WarningId};
use tianshan_core::observation::Observation;
use tianshan_core::partitioner::KeyPartitioner;
use tianshan_core::region::Region;
use tianshan_core::signoff::{Audience, ReleasedWarning};
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;

use crate::error::PipelineError;

/// A chain whose inputs travel through the topic under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainKey {
    /// Lightning → fire.
    Fire,
    /// Deformation → landslide.
    Landslide,
}

impl ChainKey {
    /// The record key of the chain's inputs.
    pub fn record_key(self) -> &'static str {
        match self {
            ChainKey::Fire => "chain:fire",
            ChainKey::Landslide => "chain:landslide",
        }
    }
}

/// An observation partition: (topic, partition).
pub type SourcePartition = (String, i32);

/// One record of the basin-updates topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BasinUpdate {
    /// A member station's summary at a tick, for one basin.
    Summary {
        /// The basin.
        basin: BasinId,
        /// The summary (its tick is the tick).
        summary: StationSummary,
    },
    /// The summaries of the stations a chain watches, at a tick.
    ChainSummaries {
        /// The chain.
        chain: ChainKey,
        /// The tick.
        tick: EventTime,
        /// The summaries of the watched stations the writer owns.
        summaries: Vec<StationSummary>,
    },
    /// A reading a chain applies before `before_tick`.
    ChainReading {
        /// The chain.
        chain: ChainKey,
        /// The first tick after which the reading was applied upstream.
        before_tick: EventTime,
        /// The reading.
        observation: Observation,
        /// When the broker received the original record.
        received_at: EventTime,
        /// Where the original record was read, for its dead letter.
        source: SourcePartition,
        /// Its offset there.
        source_offset: i64,
    },
    /// Every record of `tick` from the writer of these observation partitions is written.
    Marker {
        /// The tick finished.
        tick: EventTime,
        /// The observation partitions the writer owned when it finished the tick.
        sources: Vec<SourcePartition>,
    },
    /// A warning version released to one shard of the dissemination tree.
    ShardRelease {
        /// The shard: the region, or a unit right below it.
        shard: AreaCode,
        /// The version, as signed (or released early).
        warning: ReleasedWarning,
        /// Who gets it.
        audience: Audience,
        /// The shard's recipients to reach, by the unit they are filed under.
        targets: BTreeMap<AreaCode, Vec<RecipientId>>,
    },
    /// A version released early and then rejected: the shard stops re-sending it.
    ShardWithdraw {
        /// The shard.
        shard: AreaCode,
        /// The warning.
        warning: WarningId,
        /// The rejected version.
        version: u32,
    },
}

/// The record key of the releases to `shard` of the dissemination tree.
pub fn shard_record_key(shard: &AreaCode) -> String {
    format!("shard:{shard}")
}

impl BasinUpdate {
    /// Decodes a record.
    ///
    /// # Errors
    /// Returns the JSON error's message.
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("basin updates are plain data and always serialize")
    }
}

/// Writes a node's basin updates and waits for the broker's acknowledgement.
#[derive(Clone)]
pub struct BasinUpdatesWriter {
    producer: FutureProducer,
    topic: String,
    partitions: i32,
    partitioner: KeyPartitioner,
}

impl BasinUpdatesWriter {
    /// A writer to `topic`, which has `partitions` partitions.
    pub fn new(
        producer: FutureProducer,
        topic: impl Into<String>,
        partitions: i32,
        partitioner: KeyPartitioner,
    ) -> Self {
        Self {
            producer,
            topic: topic.into(),
            partitions,
            partitioner,
        }
    }

    /// How many partitions the topic has.
    pub fn partition_count(&self) -> i32 {
        self.partitions
    }

    /// The partition of a record key.
    pub fn partition_of(&self, key: &str) -> i32 {
        self.partitioner
            .partition_of(key.as_bytes(), self.partitions)
    }

    /// Writes `updates` in order and returns once the broker holds every one.
    ///
    /// # Errors
    /// [`PipelineError::Kafka`] when one is not acknowledged.
    pub async fn write(
        &self,
        updates: &[(Option<i32>, String, BasinUpdate)],
    ) -> Result<(), PipelineError> {
        let mut deliveries = Vec::with_capacity(updates.len());
        for (partition, key, update) in updates {
            let payload = update.encode();
            let partition = partition.unwrap_or_else(|| self.partition_of(key));
            let record = FutureRecord::to(&self.topic)
                .key(key.as_str())
                .payload(&payload)
                .partition(partition);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| PipelineError::kafka("queue a basin update", e))?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match tokio::time::timeout(Duration::from_secs(30), delivery).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err((e, _)))) => return Err(PipelineError::kafka("write a basin update", e)),
                Ok(Err(_)) => {
                    return Err(PipelineError::Actor(
                        "the producer dropped a basin update".into(),
                    ))
                }
                Err(_) => {
                    return Err(PipelineError::Actor(
                        "a basin update was not acknowledged within 30 s".into(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The records of one finished tick: each summary once per basin of its station, the chains'
    /// watched summaries, then a marker to every partition.
    pub fn tick_records(
        &self,
        region: &Region,
        tick: EventTime,
        summaries: &[StationSummary],
        chains: &[(ChainKey, &BTreeSet<tianshan_core::ids::StationId>)],
        sources: Vec<SourcePartition>,
    ) -> Vec<(Option<i32>, String, BasinUpdate)> {
        let mut records = Vec::new();
        for summary in summaries {
            for basin in region.basins_of_station(summary.station()) {
                records.push((
                    None,
                    basin.to_string(),
                    BasinUpdate::Summary {
                        basin: basin.clone(),
                        summary: summary.clone(),
                    },
                ));
            }
        }
        for (chain, watched) in chains {
            let watched: Vec<StationSummary> = summaries
                .iter()
                .filter(|s| watched.contains(s.station()))
                .cloned()
                .collect();
            records.push((
                None,
                chain.record_key().to_string(),
                BasinUpdate::ChainSummaries {
                    chain: *chain,
                    tick,
                    summaries: watched,
                },
            ));
        }
        for partition in 0..self.partitions {
            records.push((
                Some(partition),
                String::new(),
                BasinUpdate::Marker {
                    tick,
                    sources: sources.clone(),
                },
            ));
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tianshan_core::ids::{GatewayId, StationId};
    use tianshan_core::observation::Reading;
    use tianshan_core::station_windows::{RainSummary, WindowValue};

    #[test]
    fn every_kind_of_update_survives_the_topic_unchanged() {
        let summary = StationSummary::Rain(RainSummary {
            station: StationId::from("RG-1"),
            tick: EventTime(1_720_000_200_000),
            windows: vec![WindowValue {
                duration_min: 60,
                mm: 12.345_678_901_234,
                completeness: 0.75,
            }],
            today_mm: 0.1 + 0.2,
            antecedent_mm: 3.0,
            last_observation: Some(EventTime(1_720_000_100_000)),
        });
        let updates = [
            BasinUpdate::Summary {
                basin: BasinId::from("B0001"),
                summary: summary.clone(),
            },
            BasinUpdate::ChainSummaries {
                chain: ChainKey::Fire,
                tick: EventTime(5),
                summaries: vec![summary],
            },
            BasinUpdate::ChainReading {
                chain: ChainKey::Landslide,
                before_tick: EventTime(300_000),
                observation: Observation {
                    station: StationId::from("GN-1"),
                    event_time: EventTime(299_000),
                    gateway: GatewayId::from("gw"),
                    sequence: 7,
                    reading: Reading::Rainfall {
                        mm: 0.2,
                        interval_s: 300,
                    },
                },
                received_at: EventTime(299_500),
                source: ("obs.deformation".into(), 2),
                source_offset: 41,
            },
            BasinUpdate::Marker {
                tick: EventTime(300_000),
                sources: vec![("obs.rainfall".into(), 0), ("obs.rainfall".into(), 1)],
            },
        ];
        for update in updates {
            assert_eq!(BasinUpdate::decode(&update.encode()), Ok(update));
        }
        assert!(BasinUpdate::decode(b"{\"kind\":\"nonsense\"}").is_err());
    }
}
