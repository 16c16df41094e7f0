//! The downstream half of a sharded node: a member of the `<group>.basins` consumer group that
//! reads its partitions of the basin-updates topic, holds each partition's records of a tick
//! until every observation partition has finished the tick there ([`TickGate`], one per
//! partition), then feeds the basins and chains whose keys land on that partition: summaries to
//! their basins, chain readings (each applied once, by source offset) and watched summaries to
//! the chains, and the tick to the chains. Releases to the shards of the dissemination tree whose
//! keys land on its partitions wait for no tick: they go down its tree
//! ([`ShardReleases`], which holds those re-read from a gained partition until the re-read is
//! done and then replays the newest version of each warning).
//!
//! The group rebalances cooperatively (`cooperative-sticky`): partitions a node keeps go on
//! where they are. A partition it gains is rewound to the start of its retained log and read
//! again beside the kept ones, which rebuilds its basins and chains (reset first, as are those
//! of the partitions it gives up); warnings re-derived on the way are dropped by the publisher,
//! which first reads the warnings topic back to learn what the previous owner published; the
//! courier learns what it delivered from the delivery journal, the tree drops what it knew of
//! the moved partitions' shards and takes over the books journaled at the gained shards' units,
//! and the desk takes over the sign-offs journaled of the gained partitions' warnings. An
//! assignment is adopted as soon as it changes, records or not. Chain rejections of records
//! below the committed offset were dead-lettered before, so only live ones are written and
//! counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message};
use tianshan_actors::admin_unit::AdminUnitMsg;
use tianshan_actors::ask::{await_reply, reply_port};
use tianshan_actors::basin_supervisor::BasinSupervisorMsg;
use tianshan_actors::landslide_chain::LandslideChainMsg;
use tianshan_actors::lightning_fire_chain::LightningFireChainMsg;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_actors::station::Envelope;
use tianshan_core::ids::{AreaCode, BasinId, StationId, WarningId};
use tianshan_core::observation::Outcome;
use tianshan_core::region::Region;
use tianshan_core::signoff::{SignOffBook, WarningSignOff};
use tianshan_core::station_windows::StationSummary;
use tianshan_core::tick_gate::TickGate;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::assignment::{Assignment, RewindCheck, SharedAssignment, SourceContext};
use crate::basin_updates::{BasinUpdate, BasinUpdatesWriter, ChainKey, SourcePartition};
use crate::channels::journal::read_journal;
use crate::config::KafkaConfig;
use crate::dead_letters::{DeadLetter, DeadLetterWriter};
use crate::delivery_courier::{DeliveryCourierMsg, OwnsUnit, OwnsWarning};
use crate::error::PipelineError;
use crate::model_actors::{ask, ModelActors};
use crate::ownership_lease::{keep_lease, OwnershipLease};
use crate::shard_dissemination::{ShardPartitions, ShardRecord, ShardReleases};
use crate::state_journal::rebuild_state;
use crate::stop_signal::StopSignal;
use crate::telemetry::Metrics;
use crate::warning_publisher::{read_published, WarningPublisherMsg};
use crate::warning_threads::{thread_key, ThreadPartitions};

/// A basin-updates record as read, with the assignment generation it was read under.
struct UpdateRecord {
    partition: i32,
    offset: i64,
    payload: Vec<u8>,
    generation: u64,
}

/// What a tick holds until it is complete.
enum Held {
    Summary(BasinId, StationSummary),
    ChainSummaries(ChainKey, Vec<StationSummary>),
    ChainReading(HeldReading),
}

/// A chain reading held for its tick, with where it came from.
struct HeldReading {
    chain: ChainKey,
    envelope: Envelope,
    source: SourcePartition,
    source_offset: i64,
    /// Read for the first time by the group (not a rebuild re-read): only then is a rejection
    /// dead-lettered.
    live: bool,
}

/// Chain readings to apply, by chain.
type ReadingsByChain = BTreeMap<ChainKey, Vec<HeldReading>>;

/// Where a node taking over basins learns what their previous owner already published,
/// delivered and journaled, so that re-deriving their warnings neither publishes nor delivers
/// them again, and the acknowledgements, escalations and sign-offs made there carry on here.
pub struct PublishedWarnings {
    /// This node's publisher, told about versions published elsewhere.
    pub publisher: ActorRef<WarningPublisherMsg>,
    /// This node's courier, told about deliveries made elsewhere.
    pub courier: ActorRef<DeliveryCourierMsg>,
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// The warnings topic.
    pub topic: String,
    /// The delivery journal topic.
    pub deliveries_topic: String,
    /// The dissemination state topic (acknowledgement books and sign-offs).
    pub state_topic: String,
    /// The top of this node's dissemination tree, which takes the books of its shards over.
    pub tree: ActorRef<AdminUnitMsg>,
    /// This node's sign-off desk, which takes the sign-offs over.
    pub desk: ActorRef<SignOffDeskMsg>,
    /// Where each shard of the dissemination tree is carried.
    pub shards: ShardPartitions,
}

/// What the downstream half needs to know of the cluster's topics.
pub struct UpdateLayout {
    /// The basin-updates partition of each chain's key: the chain ticks where it is owned.
    pub chain_partitions: BTreeMap<ChainKey, i32>,
    /// Every observation partition of the cluster: a tick is complete once each finished it.
    pub sources: Vec<SourcePartition>,
    /// The tick period, in ms.
    pub tick_ms: i64,
    /// How many basin-updates partitions the cluster shares out.
    pub basin_partitions: i32,
    /// The basin-updates partition of every warning thread: whose state a node takes over.
    pub threads: Arc<ThreadPartitions>,
}

/// Every partition a sharded cluster shares out among its nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterPartitions {
    /// Every observation partition.
    pub observation: Vec<SourcePartition>,
    /// How many basin-updates partitions there are (numbered from 0).
    pub basin_updates: i32,
}

impl UpdateLayout {
    /// The layout of `writer`'s topic over `sources`.
    pub fn new(
        writer: &BasinUpdatesWriter,
        sources: Vec<SourcePartition>,
        tick_ms: i64,
        threads: Arc<ThreadPartitions>,
    ) -> Self {
        Self {
            chain_partitions: [ChainKey::Fire, ChainKey::Landslide]
                .into_iter()
                .map(|chain| (chain, writer.partition_of(chain.record_key())))
                .collect(),
            sources,
            tick_ms,
            basin_partitions: writer.partition_count(),
            threads,
        }
    }
}

/// A running basin-updates source; call [`BasinUpdateSource::stop`] to stop it.
pub struct BasinUpdateSource {
    stop: StopSignal,
    poll_thread: tokio::task::JoinHandle<()>,
    lease_thread: tokio::task::JoinHandle<()>,
    apply_task: tokio::task::JoinHandle<Result<(), PipelineError>>,
    assignment: SharedAssignment,
    lease: OwnershipLease,
    cluster: ClusterPartitions,
}

impl BasinUpdateSource {
    /// Joins `<group>.basins` and starts feeding `models`.
    ///
    /// # Errors
    /// [`PipelineError::Kafka`] when the consumer cannot be created or subscribe.
    pub fn start(
        kafka: &KafkaConfig,
        models: ModelActors,
        layout: UpdateLayout,
        published: PublishedWarnings,
        dead_letters: DeadLetterWriter,
        metrics: Arc<Metrics>,
    ) -> Result<Self, PipelineError> {
        let assignment = SharedAssignment::default();
        metrics.set_rebuilt("basin updates", false);
        let session_ms = tianshan_core::time::parse_duration_ms(&kafka.session_timeout)
            .map_err(PipelineError::Setup)?;
        let fetch_wait_ms = kafka.fetch_wait_max_ms().map_err(PipelineError::Setup)?;
        let lease = OwnershipLease::for_session(Duration::from_millis(
            u64::try_from(session_ms).unwrap_or_default(),
        ));
        let context = SourceContext::new("basin updates", assignment.clone(), metrics.clone())
            .confirming(lease.clone());
        let consumer: BaseConsumer<SourceContext> = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("client.id", &kafka.client_id)
            .set("group.id", format!("{}.basins", kafka.group_id))
            // Only the partitions that change hands move, and only they are re-read.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (session_ms / 3).max(100).to_string(),
            )
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            .create_with_context(context)
            .map_err(|e| PipelineError::kafka("create the basin-updates consumer", e))?;
        consumer
            .subscribe(&[kafka.topics.basin_updates.as_str()])
            .map_err(|e| PipelineError::kafka("subscribe to the basin-updates topic", e))?;
        let consumer = Arc::new(consumer);
        let stop = StopSignal::default();
        let (records, receiver) = mpsc::channel(4);
        let poll_thread = {
            let (consumer, stop, assignment) = (consumer.clone(), stop.flag(), assignment.clone());
            tokio::task::spawn_blocking(move || poll_loop(&consumer, &stop, &assignment, &records))
        };
        let lease_thread = {
            let (stop, assignment, lease, metrics) = (
                stop.flag(),
                assignment.clone(),
                lease.clone(),
                metrics.clone(),
            );
            tokio::task::spawn_blocking(move || {
                keep_lease(&consumer, &assignment, &lease, &metrics, &stop);
            })
        };
        let cluster = ClusterPartitions {
            observation: layout.sources.clone(),
            basin_updates: layout.basin_partitions,
        };
        let applier = UpdateApplier {
            models,
            dead_letters,
            metrics,
            topic: kafka.topics.basin_updates.clone(),
            assignment: assignment.clone(),
            current: Assignment::default(),
            gates: BTreeMap::new(),
            sources: layout.sources,
            chain_partitions: layout.chain_partitions,
            applied_upto: BTreeMap::new(),
            tick_ms: layout.tick_ms,
            threads: layout.threads,
            shard_releases: ShardReleases::new(published.shards.clone(), published.tree.clone()),
            live_shard_records: Vec::new(),
            published,
        };
        let apply_task = tokio::spawn(async move {
            let result = applier.run(receiver).await;
            if let Err(e) = &result {
                error!(error = %e, "basin-updates source stopped: this node no longer feeds its basins and chains");
            }
            result
        });
        Ok(Self {
            stop,
            poll_thread,
            lease_thread,
            apply_task,
            assignment,
            lease,
            cluster,
        })
    }

    /// Every partition of the cluster, owned here or elsewhere.
    pub fn cluster_partitions(&self) -> &ClusterPartitions {
        &self.cluster
    }

    /// The basin-updates partitions this node owns now.
    pub fn owned_partitions(&self) -> Vec<i32> {
        self.assignment.partition_numbers().into_iter().collect()
    }

    /// The node's ownership lease: whether its group coordinator answered within half a
    /// session.
    pub fn lease(&self) -> OwnershipLease {
        self.lease.clone()
    }

    /// Whether this node owns a warning now: the thread of a basin, or of a chain, whose
    /// basin-updates key lands on one of its partitions, while its ownership lease holds (the
    /// coordinator answered within half a session). Warnings of no basin or chain (issued by
    /// hand, other agencies') belong to the node that has them.
    pub fn owns_warning(&self, writer: &BasinUpdatesWriter, region: &Region) -> OwnsWarning {
        let assignment = self.assignment.clone();
        let lease = self.lease.clone();
        let writer = writer.clone();
        let basins = basin_names(region);
        Arc::new(move |event: &WarningEvent| {
            let Some(key) = thread_key(event, &basins) else {
                return true;
            };
            lease.holds()
                && assignment
                    .partition_numbers()
                    .contains(&writer.partition_of(&key))
        })
    }

    /// Whether this node owns the shard of the dissemination tree an admin unit lies in now:
    /// the shard's key lands on one of its partitions while its ownership lease holds.
    pub fn owns_unit(&self, shards: &ShardPartitions) -> OwnsUnit {
        let assignment = self.assignment.clone();
        let lease = self.lease.clone();
        let shards = shards.clone();
        Arc::new(move |unit: &AreaCode| {
            lease.holds()
                && shards
                    .of_unit(unit)
                    .is_some_and(|partition| assignment.partition_numbers().contains(&partition))
        })
    }

    /// Stops reading and lets the records in hand finish.
    ///
    /// # Errors
    /// The error that stopped the apply loop, if any.
    pub async fn stop(self) -> Result<(), PipelineError> {
        self.stop.raise();
        let _ = self.poll_thread.await;
        let _ = self.lease_thread.await;
        match self.apply_task.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Actor(format!(
                "basin-updates loop panicked: {e}"
            ))),
        }
    }
}

fn poll_loop(
    consumer: &BaseConsumer<SourceContext>,
    stop: &AtomicBool,
    assignment: &SharedAssignment,
    records: &mpsc::Sender<Vec<UpdateRecord>>,
) {
    let mut batch = Vec::new();
    let mut rewind = RewindCheck::default();
    let mut handed_over_generation = assignment.generation();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                let (topic, partition, offset) =
                    (message.topic(), message.partition(), message.offset());
                if !rewind.admit(consumer, assignment, topic, partition, offset) {
                    continue;
                }
                if assignment.is_live(topic, partition, offset) {
                    // Only live records move the committed offset: a rebuild re-read would
                    // move it back.
                    let _ = consumer.store_offset(topic, partition, offset);
                }
                batch.push(UpdateRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    generation: assignment.generation(),
                });
                if batch.len() < 1_000 {
                    continue;
                }
            }
            Some(Err(e)) => warn!(error = %e, "basin-updates consumer error"),
            None => {}
        }
        // A new assignment is handed over even while no record comes, so the applier adopts
        // it (and takes over the dissemination state of the gained warnings) at once.
        let generation = assignment.generation();
        if (!batch.is_empty() || generation != handed_over_generation)
            && records.blocking_send(std::mem::take(&mut batch)).is_err()
        {
            return;
        }
        handed_over_generation = generation;
    }
    let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
}

/// What a sharded node owns before its basin-updates partitions are assigned: no thread of a
/// basin or chain, only warnings of neither (issued by hand, other agencies').
pub fn owns_no_thread_yet(region: &Region) -> OwnsWarning {
    let basins = basin_names(region);
    Arc::new(move |event: &WarningEvent| thread_key(event, &basins).is_none())
}

fn basin_names(region: &Region) -> BTreeSet<String> {
    region.basins.keys().map(ToString::to_string).collect()
}

/// The async half: gates records by tick and feeds the actors.
struct UpdateApplier {
    models: ModelActors,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    topic: String,
    /// The consumer's assignment, changed by rebalances inside `poll`.
    assignment: SharedAssignment,
    /// The assignment the gate and the models follow now.
    current: Assignment,
    /// One gate per owned basin-updates partition, counting its markers per observation
    /// partition: a marker read in one partition says nothing of the records still on their
    /// way in another. A partition's records concern only the basins and chains whose keys land
    /// there, so each releases its ticks on its own, and a partition gained in a rebalance
    /// re-reads its log beside the kept ones.
    gates: BTreeMap<i32, TickGate<SourcePartition, Held>>,
    /// Every observation partition of the cluster.
    sources: Vec<SourcePartition>,
    /// The basin-updates partition of each chain's key: the chain ticks where it is owned.
    chain_partitions: BTreeMap<ChainKey, i32>,
    /// Per chain and observation partition, the highest offset whose chain reading was applied
    /// here, so a reading re-read or forwarded twice (a failover) is applied once.
    applied_upto: BTreeMap<(ChainKey, SourcePartition), i64>,
    tick_ms: i64,
    /// The basin-updates partition of every warning thread.
    threads: Arc<ThreadPartitions>,
    published: PublishedWarnings,
    /// The releases of the shards of the tree this node owns.
    shard_releases: ShardReleases,
    /// Shard records read live in the batch at hand, applied once it is read.
    live_shard_records: Vec<(i32, ShardRecord)>,
}

impl UpdateApplier {
    async fn run(
        mut self,
        mut receiver: mpsc::Receiver<Vec<UpdateRecord>>,
    ) -> Result<(), PipelineError> {
        while let Some(batch) = receiver.recv().await {
            self.follow_assignment().await?;
            let generation = self.current.generation;
            let taken_in = batch
                .iter()
                .filter(|record| record.generation == generation)
                .map(|record| (self.topic.as_str(), record.partition, record.offset));
            let rebuilt = self.assignment.took_in(generation, taken_in);
            for record in batch {
                let partition = (self.topic.clone(), record.partition);
                if !self.current.holds(&partition, record.generation) {
                    // Read before its partition was taken away, or given again and rewound.
                    continue;
                }
                let live = self
                    .current
                    .is_live(&self.topic, record.partition, record.offset);
                self.hold(record, live);
            }
            for (partition, record) in std::mem::take(&mut self.live_shard_records) {
                self.shard_releases.apply(partition, record)?;
            }
            if rebuilt {
                self.shard_releases.replay_held()?;
                info!("basin-updates partitions rebuilt: this node's basins, chains and shards of the tree are up to date");
                self.metrics.set_rebuilt("basin updates", true);
            }
            self.release().await?;
        }
        Ok(())
    }

    /// Adopts the consumer's assignment when it changed. State follows ownership: the basins
    /// and chains of the partitions that moved (taken away, or gained and rewound to the start
    /// of their log) are reset, each gained partition gets a gate of its own that waits for
    /// every observation partition's markers in it, and the books and sign-offs journaled of
    /// the gained warnings are taken over. Partitions kept through a cooperative rebalance go
    /// on as they were; with none kept, everything downstream starts over.
    async fn follow_assignment(&mut self) -> Result<(), PipelineError> {
        let now = self.assignment.snapshot();
        if now.generation == self.current.generation {
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.current, now);
        let before = previous.partition_numbers();
        let kept: BTreeSet<i32> = before
            .iter()
            .copied()
            .filter(|partition| previous.kept_in(&self.current, &(self.topic.clone(), *partition)))
            .collect();
        let owned = self.owned();
        let gained: BTreeSet<i32> = owned.difference(&kept).copied().collect();
        let moved: BTreeSet<i32> = before.difference(&kept).chain(&gained).copied().collect();
        self.gates.retain(|partition, _| kept.contains(partition));
        for partition in &gained {
            self.gates
                .insert(*partition, TickGate::new(self.sources.iter().cloned()));
        }
        let moved_chains: BTreeSet<ChainKey> = self
            .chain_partitions
            .iter()
            .filter(|(_, partition)| moved.contains(partition))
            .map(|(chain, _)| *chain)
            .collect();
        self.applied_upto
            .retain(|(chain, _), _| !moved_chains.contains(chain));
        if kept.is_empty() {
            info!(?owned, "basin-updates partitions assigned; rebuilding");
            self.models.reset_downstream().await?;
        } else if !moved.is_empty() {
            let moved_basins: BTreeSet<BasinId> = self
                .threads
                .basins()
                .filter(|(_, partition)| moved.contains(partition))
                .map(|(basin, _)| BasinId::new(basin))
                .collect();
            info!(?kept, ?gained, ?moved, basins_reset = moved_basins.len(), "basin-updates partitions changed hands; the kept ones go on, the gained ones are rebuilt beside them");
            self.models.reset_some(&moved_basins, &moved_chains).await?;
        }
        self.shard_releases.forget(&moved).await?;
        if !gained.is_empty() {
            self.learn_published_elsewhere().await?;
            if let Err(e) = self.take_over_journaled_state(&gained).await {
                // The basins still run; only what people did at the previous owner is lost.
                error!(error = %e, "the journaled dissemination state of the gained warnings was not taken over: acknowledgements and sign-offs made at their previous owner are asked for again");
            }
        }
        Ok(())
    }

    /// Reads the dissemination state topic back and hands the tree the books journaled at the
    /// units of the shards that land on `gained`, and the desk the sign-offs of the warnings
    /// whose threads land there, so a node taking over carries on from where the previous owner
    /// was: acknowledgements made there are not asked again, escalations keep their deadlines,
    /// signed versions stay signed.
    async fn take_over_journaled_state(&self, gained: &BTreeSet<i32>) -> Result<(), PipelineError> {
        let journaled = self
            .read_off_runtime(
                "read the dissemination state",
                &self.published.state_topic,
                rebuild_state,
            )
            .await?;
        let owned_here = |warning: &WarningId| {
            self.threads
                .of_warning(warning)
                .is_some_and(|partition| gained.contains(&partition))
        };
        let mut books = journaled.books;
        let shards = &self.published.shards;
        books.retain(|key| {
            shards
                .of_unit(&key.unit)
                .is_some_and(|partition| gained.contains(&partition))
        });
        let sign_offs: Vec<(WarningId, WarningSignOff)> = journaled
            .sign_off
            .into_iter()
            .flat_map(SignOffBook::into_sign_offs)
            .filter(|(warning, _)| owned_here(warning))
            .collect();
        let sign_offs = ask(
            &self.published.desk,
            |port| SignOffDeskMsg::TakeOver(sign_offs, port),
            "take over sign-offs",
        )
        .await?;
        let books = ask(
            &self.published.tree,
            |port| AdminUnitMsg::TakeOver(Arc::new(books), port),
            "take over acknowledgement books",
        )
        .await?;
        info!(
            books,
            sign_offs, "took over the journaled books of the gained shards and sign-offs of the gained warnings"
        );
        Ok(())
    }

    /// Reads the warnings topic and the delivery journal back so that versions the previous
    /// owner of a gained basin published, and the deliveries it made, are not made again when
    /// the rebuild re-derives them.
    async fn learn_published_elsewhere(&self) -> Result<(), PipelineError> {
        let delivered = self
            .read_off_runtime(
                "read the delivery journal",
                &self.published.deliveries_topic,
                read_journal,
            )
            .await?;
        ask(
            &self.published.courier,
            |port| DeliveryCourierMsg::LearnDelivered(delivered.into_iter().collect(), port),
            "learn deliveries made elsewhere",
        )
        .await?;
        let published = self
            .read_off_runtime(
                "read published warnings",
                &self.published.topic,
                read_published,
            )
            .await?;
        ask(
            &self.published.publisher,
            |port| WarningPublisherMsg::PublishedElsewhere(published, port),
            "merge published warnings",
        )
        .await
    }

    /// Reads `topic` with the blocking `read` on a blocking thread; `what` names it in errors.
    async fn read_off_runtime<T: Send + 'static>(
        &self,
        what: &'static str,
        topic: &str,
        read: fn(&str, &str) -> Result<T, PipelineError>,
    ) -> Result<T, PipelineError> {
        let (bootstrap, topic) = (self.published.bootstrap_servers.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || read(&bootstrap, &topic))
            .await
            .map_err(|e| PipelineError::Actor(format!("{what}: {e}")))?
    }

    /// The basin-updates partitions of the adopted assignment.
    fn owned(&self) -> BTreeSet<i32> {
        self.current.partition_numbers()
    }

    fn hold(&mut self, record: UpdateRecord, live: bool) {
        let Some(gate) = self.gates.get_mut(&record.partition) else {
            return;
        };
        let update = match BasinUpdate::decode(&record.payload) {
            Ok(update) => update,
            Err(e) => {
                // Only nodes write this topic: a record they cannot read is a version mismatch.
                warn!(partition = record.partition, offset = record.offset, error = %e, "unreadable basin update skipped");
                return;
            }
        };
        match update {
            BasinUpdate::Summary { basin, summary } => {
                gate.push(summary.tick(), Held::Summary(basin, summary));
            }
            BasinUpdate::ChainSummaries {
                chain,
                tick,
                summaries,
            } => {
                gate.push(tick, Held::ChainSummaries(chain, summaries));
            }
            BasinUpdate::ChainReading {
                chain,
                before_tick,
                observation,
                received_at,
                source,
                source_offset,
            } => {
                let envelope = Envelope {
                    observation,
                    received_at,
                };
                gate.push(
                    before_tick,
                    Held::ChainReading(HeldReading {
                        chain,
                        envelope,
                        source,
                        source_offset,
                        live,
                    }),
                );
            }
            BasinUpdate::Marker { tick, sources } => {
                for source in sources {
                    gate.mark(&source, tick);
                }
            }
            BasinUpdate::ShardRelease {
                shard: _,
                warning,
                audience,
                targets,
            } => {
                let release = ShardRecord::Release {
                    warning: Arc::new(warning),
                    audience,
                    targets,
                };
                self.take_shard_record(record.partition, release, live);
            }
            BasinUpdate::ShardWithdraw {
                shard: _,
                warning,
                version,
            } => {
                let withdrawal = ShardRecord::Withdraw { warning, version };
                self.take_shard_record(record.partition, withdrawal, live);
            }
        }
    }

    /// A shard record read live is applied once the batch is read; one re-read is held until
    /// the re-read is done, and then replayed with the others.
    fn take_shard_record(&mut self, partition: i32, record: ShardRecord, live: bool) {
        if live {
            self.live_shard_records.push((partition, record));
        } else {
            self.shard_releases.hold(partition, record);
        }
    }

    /// Releases every gate's complete ticks to the basins and chains of its partition, then
    /// the chain readings that may go early; the basin watermark is the last tick every owned
    /// partition has released.
    async fn release(&mut self) -> Result<(), PipelineError> {
        let partitions: Vec<i32> = self.gates.keys().copied().collect();
        for partition in partitions {
            let Some(gate) = self.gates.get_mut(&partition) else {
                continue;
            };
            debug!(
                partition,
                complete_through = ?gate.complete_through(),
                released = ?gate.released(),
                buffered = gate.buffered(),
                "basin updates held"
            );
            let ticks = gate.release();
            // Upstream nodes apply readings as soon as the previous tick is done; so do the
            // chains.
            let early = gate.take_early(self.tick_ms, |held| matches!(held, Held::ChainReading(_)));
            for (tick, items) in ticks {
                self.release_tick(partition, tick, items).await?;
            }
            self.apply_early_readings(early).await?;
        }
        let released: Option<Vec<EventTime>> =
            self.gates.values().map(TickGate::released).collect();
        if let Some(watermark) = released.and_then(|ticks| ticks.into_iter().min()) {
            self.metrics.set_basin_watermark_ms(watermark.millis());
        }
        Ok(())
    }

    /// Feeds one complete tick of `partition` to its basins and chains.
    async fn release_tick(
        &mut self,
        partition: i32,
        tick: EventTime,
        items: Vec<Held>,
    ) -> Result<(), PipelineError> {
        let mut summaries: BTreeMap<(BasinId, StationId), StationSummary> = BTreeMap::new();
        let mut chain_summaries: BTreeMap<ChainKey, BTreeMap<StationId, StationSummary>> =
            BTreeMap::new();
        let mut readings = ReadingsByChain::new();
        for item in items {
            match item {
                Held::Summary(basin, summary) => {
                    summaries.insert((basin, summary.station().clone()), summary);
                }
                Held::ChainSummaries(chain, list) => {
                    let held = chain_summaries.entry(chain).or_default();
                    for summary in list {
                        held.insert(summary.station().clone(), summary);
                    }
                }
                Held::ChainReading(reading) => self.collect_first_time(&mut readings, reading),
            }
        }
        debug!(
            partition,
            ?tick,
            summaries = summaries.len(),
            chains = chain_summaries.len(),
            readings = readings.values().map(Vec::len).sum::<usize>(),
            "tick released to the basins and chains"
        );
        for ((basin, _), summary) in summaries {
            self.models
                .basins
                .cast(BasinSupervisorMsg::SummaryFor(basin, summary))
                .map_err(|e| PipelineError::Actor(format!("basin supervisor is gone: {e}")))?;
        }
        self.apply_chain_readings(readings).await?;
        let chains_here: Vec<ChainKey> = self
            .chain_partitions
            .iter()
            .filter(|(_, on)| **on == partition)
            .map(|(chain, _)| *chain)
            .collect();
        for chain in chains_here {
            let watched: Vec<StationSummary> = chain_summaries
                .remove(&chain)
                .unwrap_or_default()
                .into_values()
                .collect();
            self.tick_chain(chain, tick, watched)?;
        }
        Ok(())
    }

    /// Applies chain readings taken from a gate before their tick is complete.
    async fn apply_early_readings(&mut self, early: Vec<Held>) -> Result<(), PipelineError> {
        let mut readings = ReadingsByChain::new();
        for held in early {
            if let Held::ChainReading(reading) = held {
                self.collect_first_time(&mut readings, reading);
            }
        }
        self.apply_chain_readings(readings).await
    }

    /// Adds `reading` to `readings` unless its chain has applied it already.
    fn collect_first_time(&mut self, readings: &mut ReadingsByChain, reading: HeldReading) {
        if self.first_time(reading.chain, &reading.source, reading.source_offset) {
            readings.entry(reading.chain).or_default().push(reading);
        }
    }

    /// Records that `chain`'s reading at `offset` of `source` is applied; false when it was
    /// already (read again while rebuilding, or forwarded twice around a failover).
    fn first_time(&mut self, chain: ChainKey, source: &SourcePartition, offset: i64) -> bool {
        let key = (chain, source.clone());
        if self
            .applied_upto
            .get(&key)
            .is_some_and(|done| offset <= *done)
        {
            return false;
        }
        self.applied_upto.insert(key, offset);
        true
    }

    fn tick_chain(
        &self,
        chain: ChainKey,
        tick: EventTime,
        watched: Vec<StationSummary>,
    ) -> Result<(), PipelineError> {
        let gone = |e: String| PipelineError::Actor(format!("{chain:?} chain is gone: {e}"));
        match chain {
            ChainKey::Fire => {
                let actor = &self.models.lightning_fire;
                actor
                    .cast(LightningFireChainMsg::Summaries(watched))
                    .map_err(|e| gone(e.to_string()))?;
                actor
                    .cast(LightningFireChainMsg::Tick(tick))
                    .map_err(|e| gone(e.to_string()))
            }
            ChainKey::Landslide => {
                let actor = &self.models.landslide;
                actor
                    .cast(LandslideChainMsg::Summaries(watched))
                    .map_err(|e| gone(e.to_string()))?;
                actor
                    .cast(LandslideChainMsg::Tick(tick))
                    .map_err(|e| gone(e.to_string()))
            }
        }
    }

    /// Applies each chain's readings in event time (upstream nodes applied them so; the sort
    /// is stable, so readings of one station keep their log order) and dead-letters the live
    /// ones the chain rejects.
    async fn apply_chain_readings(&self, readings: ReadingsByChain) -> Result<(), PipelineError> {
        for (chain, mut list) in readings {
            list.sort_by_key(|reading| reading.envelope.observation.event_time);
            self.apply_readings_of(chain, list).await?;
        }
        Ok(())
    }

    async fn apply_readings_of(
        &self,
        chain: ChainKey,
        list: Vec<HeldReading>,
    ) -> Result<(), PipelineError> {
        let (envelopes, origins): (Vec<Envelope>, Vec<_>) = list
            .into_iter()
            .map(|reading| {
                let payload = serde_json::to_vec(&reading.envelope.observation).unwrap_or_default();
                (
                    reading.envelope,
                    (reading.source, reading.source_offset, reading.live, payload),
                )
            })
            .unzip();
        let (port, receiver) = reply_port();
        let sent = match chain {
            ChainKey::Fire => self
                .models
                .lightning_fire
                .cast(LightningFireChainMsg::Strokes(envelopes, port))
                .is_ok(),
            ChainKey::Landslide => self
                .models
                .landslide
                .cast(LandslideChainMsg::Readings(envelopes, port))
                .is_ok(),
        };
        if !sent {
            return Err(PipelineError::Actor(format!("{chain:?} chain is gone")));
        }
        let outcomes = await_reply(receiver, "chain readings")
            .await
            .map_err(|e| PipelineError::Actor(e.to_string()))?;
        let mut letters = Vec::new();
        let mut decided = Vec::new();
        for ((source, offset, live, payload), outcome) in origins.into_iter().zip(outcomes) {
            if !live {
                continue;
            }
            match outcome {
                Outcome::Applied => decided.push(None),
                Outcome::Rejected { reason, detail } => {
                    decided.push(Some(reason));
                    letters.push(DeadLetter {
                        reason,
                        detail,
                        source_topic: source.0,
                        source_partition: source.1,
                        source_offset: offset,
                        key: None,
                        payload,
                    });
                }
            }
        }
        self.dead_letters.write_all(&letters).await?;
        for rejected in decided {
            self.metrics.forwarded_decided(rejected);
        }
        Ok(())
    }
}
