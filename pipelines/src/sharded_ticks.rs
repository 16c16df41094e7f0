//! The upstream half of a sharded node: which stations its observation partitions carry, and
//! what it sends on through the basin-updates topic — the chains' readings as they are applied,
//! and at each tick its stations' summaries followed by a marker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::ActorRef;
use tianshan_actors::ask::{await_reply, reply_port};
use tianshan_actors::station::Envelope;
use tianshan_actors::station_supervisor::StationSupervisorMsg;
use tianshan_core::ids::StationId;
use tianshan_core::observation::Reading;
use tianshan_core::partitioner::KeyPartitioner;
use tianshan_core::region::{Region, StationKind};
use tianshan_core::time::EventTime;

use crate::basin_updates::{BasinUpdate, BasinUpdatesWriter, ChainKey, SourcePartition};
use crate::config::TopicsConfig;
use crate::error::PipelineError;

/// Asks the brokers how many partitions each of `topics` has.
///
/// # Errors
/// [`PipelineError::Kafka`] when the brokers do not answer, [`PipelineError::Setup`] naming a
/// topic that does not exist.
pub fn partition_counts(
    bootstrap_servers: &str,
    topics: &[&str],
) -> Result<BTreeMap<String, i32>, PipelineError> {
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .map_err(|e| PipelineError::kafka("create a metadata client", e))?;
    let mut counts = BTreeMap::new();
    for topic in topics {
        let metadata = rdkafka::consumer::Consumer::fetch_metadata(
            &consumer,
            Some(topic),
            std::time::Duration::from_secs(10),
        )
        .map_err(|e| PipelineError::kafka("read topic metadata", e))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == *topic)
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            return Err(PipelineError::Setup(format!(
                "topic {topic} does not exist (a sharded node needs it created with its partitions)"
            )));
        }
        counts.insert((*topic).to_string(), partitions as i32);
    }
    Ok(counts)
}

/// Where each station's observations arrive, and what the node sends on.
pub struct ShardedTicks {
    region: Arc<Region>,
    writer: BasinUpdatesWriter,
    /// Per station: its observation partition, and whether it feeds a basin or a chain.
    partition_of_station: BTreeMap<StationId, (SourcePartition, bool)>,
    /// The stations each chain watches.
    chains: Vec<(ChainKey, BTreeSet<StationId>)>,
    /// The feeding stations of the partition sets last asked for (the kept ones and one being
    /// rebuilt beside them), newest first.
    owned: Vec<(Vec<SourcePartition>, Arc<Vec<StationId>>)>,
}

/// How many partition sets [`ShardedTicks::owned_stations`] remembers.
const OWNED_SETS_KEPT: usize = 2;

impl ShardedTicks {
    /// Maps every station to its partition, noting those that feed a basin or are watched by a
    /// chain.
    /// `partitions` holds the partition count of each observation topic.
    ///
    /// # Errors
    /// [`PipelineError::Setup`] when a topic's partition count is unknown.
    pub fn new(
        region: Arc<Region>,
        writer: BasinUpdatesWriter,
        topics: &TopicsConfig,
        partitioner: KeyPartitioner,
        partitions: &BTreeMap<String, i32>,
        chains: Vec<(ChainKey, BTreeSet<StationId>)>,
    ) -> Result<Self, PipelineError> {
        let mut partition_of_station = BTreeMap::new();
        for station in region.stations.values() {
            let watched = chains.iter().any(|(_, set)| set.contains(&station.id));
            let feeds = watched || !region.basins_of_station(&station.id).is_empty();
            let topic = match station.kind {
                StationKind::Rain => &topics.rainfall,
                StationKind::WaterLevel => &topics.water_level,
                StationKind::Weather => &topics.weather,
            };
            let count = *partitions.get(topic).ok_or_else(|| {
                PipelineError::Setup(format!("partition count of topic {topic} is unknown"))
            })?;
            let partition = partitioner.partition_of(station.id.as_str().as_bytes(), count);
            partition_of_station.insert(station.id.clone(), ((topic.clone(), partition), feeds));
        }
        Ok(Self {
            region,
            writer,
            partition_of_station,
            chains,
            owned: Vec::new(),
        })
    }

    /// The stations that feed a basin or chain and arrive on one of `assigned`, in id order;
    /// kept for the next calls with the same partitions.
    pub fn owned_stations(&mut self, assigned: &[SourcePartition]) -> Arc<Vec<StationId>> {
        if let Some(position) = self.owned.iter().position(|(seen, _)| seen == assigned) {
            let entry = self.owned.remove(position);
            let owned = entry.1.clone();
            self.owned.insert(0, entry);
            return owned;
        }
        let owned = Arc::new(self.stations_of(assigned, true));
        self.owned.insert(0, (assigned.to_vec(), owned.clone()));
        self.owned.truncate(OWNED_SETS_KEPT);
        owned
    }

    /// Every station that arrives on one of `partitions`, in id order: those to empty when the
    /// partitions move.
    pub fn all_stations_on(&self, partitions: &[SourcePartition]) -> Arc<Vec<StationId>> {
        Arc::new(self.stations_of(partitions, false))
    }

    /// The stations that arrive on one of `partitions` (only those feeding a basin or chain
    /// when `feeding_only`), in id order.
    fn stations_of(&self, partitions: &[SourcePartition], feeding_only: bool) -> Vec<StationId> {
        let set: BTreeSet<&SourcePartition> = partitions.iter().collect();
        self.partition_of_station
            .iter()
            .filter(|(_, (partition, feeds))| (*feeds || !feeding_only) && set.contains(partition))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The chain a reading belongs to, if it is a chain's.
    pub fn chain_of(reading: &Reading) -> Option<ChainKey> {
        match reading {
            Reading::Lightning { .. } => Some(ChainKey::Fire),
            Reading::Deformation { .. } => Some(ChainKey::Landslide),
            _ => None,
        }
    }

    /// Sends chain readings on, each with where it was read; returns once the broker holds them.
    ///
    /// # Errors
    /// [`PipelineError::Kafka`] when one is not acknowledged.
    pub async fn forward(
        &self,
        before_tick: EventTime,
        readings: Vec<(ChainKey, Envelope, SourcePartition, i64)>,
    ) -> Result<(), PipelineError> {
        let records: Vec<_> = readings
            .into_iter()
            .map(|(chain, envelope, source, source_offset)| {
                (
                    None,
                    chain.record_key().to_string(),
                    BasinUpdate::ChainReading {
                        chain,
                        before_tick,
                        observation: envelope.observation,
                        received_at: envelope.received_at,
                        source,
                        source_offset,
                    },
                )
            })
            .collect();
        self.writer.write(&records).await
    }

    /// Finishes `tick` for the stations of the `unfinished` partitions among `merged`: their
    /// summaries, the chains' watched summaries, then a marker for those partitions; returns
    /// once the broker holds them all. The stations of the other merged partitions, whose
    /// tick an earlier owner finished, are only advanced to it, later and without a message
    /// each.
    ///
    /// # Errors
    /// [`PipelineError::Actor`] when the stations do not answer, [`PipelineError::Kafka`] when a
    /// record is not acknowledged.
    pub async fn finish_tick(
        &mut self,
        tick: EventTime,
        merged: &[SourcePartition],
        unfinished: &[SourcePartition],
        stations: &ActorRef<StationSupervisorMsg>,
    ) -> Result<(), PipelineError> {
        let gone = |e| PipelineError::Actor(format!("station supervisor is gone: {e}"));
        if unfinished.len() < merged.len() {
            stations
                .cast(StationSupervisorMsg::AdvanceLater(
                    tick,
                    self.owned_stations(merged),
                ))
                .map_err(gone)?;
        }
        if unfinished.is_empty() {
            return Ok(());
        }
        let owned = if unfinished.len() == merged.len() {
            self.owned_stations(merged)
        } else {
            Arc::new(self.stations_of(unfinished, true))
        };
        let (port, receiver) = reply_port();
        stations
            .cast(StationSupervisorMsg::SummarizeSome(tick, owned, port))
            .map_err(gone)?;
        let summaries = await_reply(receiver, "summaries of a tick")
            .await
            .map_err(|e| PipelineError::Actor(e.to_string()))?;
        let chains: Vec<_> = self.chains.iter().map(|(key, set)| (*key, set)).collect();
        let records =
            self.writer
                .tick_records(&self.region, tick, &summaries, &chains, unfinished.to_vec());
        self.writer.write(&records).await
    }
}
