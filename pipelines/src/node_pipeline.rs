//! Starts one node's pipeline: the warning publisher, the model actors ([`ModelActors`],
//! downstream first, so nothing is sent to an actor that does not exist yet), the agency-alert
//! consumer (when its topic is set) and the Kafka source; and stops it in the reverse order.
//! While it runs, an [`OwnershipReader`] tells any task what a sharded node owns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorRef};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::debris_flow::DebrisFlowConfig;
use tianshan_core::flash_flood::FlashFloodPolicy;
use tianshan_core::ids::{AreaCode, BasinId, RecipientId, WarningId};
use tianshan_core::landslide::LandslidePolicy;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::lightning_fire::LightningFireConfig;
use tianshan_core::region::Region;
use tianshan_core::snowmelt::SnowmeltConfig;
use tianshan_core::station_windows::WindowsConfig;
use tianshan_core::warning::WarningEvent;
use tokio::sync::broadcast;

use crate::agency_alerts::{AgencyAlerts, AgencyAlertsConfig};
use crate::basin_update_source::{
    BasinUpdateSource, ClusterPartitions, PublishedWarnings, UpdateLayout,
};
use crate::basin_updates::BasinUpdatesWriter;
use crate::config::{KafkaConfig, PipelineConfig};
use crate::dead_letters::DeadLetterWriter;
use crate::delivery_courier::{DeliveryCourierMsg, OwnsWarning};
use crate::dissemination_stage::{DisseminationConfig, DisseminationStage};
use crate::error::PipelineError;
use crate::model_actors::{actor_error, ask, ModelActors};
use crate::observation_source::ObservationSource;
use crate::shard_dissemination::ShardPartitions;
use crate::sharded_ticks::{partition_counts, ShardedTicks};
use crate::state_journal::{JournaledHere, StateJournalMsg};
use crate::telemetry::Metrics;
use crate::warning_publisher::{
    read_published, OwnerCheck, WarningPublisher, WarningPublisherArgs, WarningPublisherMsg,
};
use crate::warning_threads::ThreadPartitions;

/// Everything a node's pipeline needs.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Ticks and batching.
    pub pipeline: PipelineConfig,
    /// Station windows and QC.
    pub windows: WindowsConfig,
    /// Flash-flood levels.
    pub flash_flood: FlashFloodPolicy,
    /// Warning lifecycle timing.
    pub lifecycle: LifecyclePolicy,
    /// Debris-flow models and the flash-flood chain step.
    pub debris_flow: DebrisFlowConfig,
    /// Lightning stroke windows, ignition-risk scoring and holdover.
    pub lightning_fire: LightningFireConfig,
    /// Deformation windows, failure-time forecast, tangent-angle levels and rain on slopes.
    pub landslide: LandslidePolicy,
    /// Snowpack melt and rain on snow.
    pub snowmelt: SnowmeltConfig,
    /// Directory, channels, acknowledgement deadlines and sign-off.
    pub dissemination: DisseminationConfig,
    /// Other agencies' CAP alerts: departments per sender, statuses taken.
    pub agency_alerts: AgencyAlertsConfig,
}

/// A running pipeline.
pub struct NodePipeline {
    /// The actors from observations to warning versions.
    pub models: ModelActors,
    /// The warnings publisher.
    pub publisher: ActorRef<WarningPublisherMsg>,
    /// Metrics of this pipeline.
    pub metrics: Arc<Metrics>,
    /// Live fan-out of published warning versions.
    pub warnings: broadcast::Sender<WarningEvent>,
    /// Sign-off, the dissemination tree and the channels.
    pub dissemination: DisseminationStage,
    /// Other agencies' CAP alerts into the sign-off desk; `None` when the topic is unset.
    pub agency_alerts: Option<AgencyAlerts>,
    ownership: OwnershipReader,
}

/// The node's Kafka sources. They sit behind the [`OwnershipReader`]'s lock so that readers on
/// other tasks can ask them what they own until [`NodePipeline::stop`] takes them out.
struct KafkaSources {
    observations: ObservationSource,
    /// Sharded: the basin-updates source feeding the basins and chains this node owns.
    basin_updates: Option<BasinUpdateSource>,
}

/// What one node of a sharded cluster owns now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Observation partitions (topic, partition): their stations' windows live here.
    pub observation_partitions: Vec<(String, i32)>,
    /// Basin-updates partitions: the basins and chains whose keys land there live here.
    pub basin_partitions: Vec<i32>,
    /// The region's basins whose ids land on `basin_partitions`, in id order.
    pub basins: Vec<BasinId>,
    /// The shards of the dissemination tree (the region's own recipients, and each prefecture)
    /// whose releases land on `basin_partitions`: this node delivers to their recipients and
    /// holds their acknowledgement books.
    pub shards: Vec<AreaCode>,
    /// Messages behind the partition end of the owned observation partitions, as librdkafka
    /// last reported it (every few seconds); a partition not reported yet is missing.
    pub observation_lag: BTreeMap<(String, i32), i64>,
    /// Every partition of the cluster, owned here or elsewhere.
    pub cluster: ClusterPartitions,
}

/// Tells what the node owns now, from any task (the peer API's cluster view); cheap to clone.
#[derive(Clone)]
pub struct OwnershipReader {
    sources: Arc<Mutex<Option<KafkaSources>>>,
    /// The basin-updates partition of every thread of the region; `None` when unsharded.
    threads: Option<Arc<ThreadPartitions>>,
    /// The basin-updates partition of every shard of the tree; `None` when unsharded.
    shards: Option<ShardPartitions>,
    metrics: Arc<Metrics>,
}

impl OwnershipReader {
    /// Returns what the node owns now; `None` when it runs unsharded or has stopped.
    pub fn read(&self) -> Option<Ownership> {
        let sources = self
            .sources
            .lock()
            .expect("sources lock is never poisoned: no panics under it");
        let sources = sources.as_ref()?;
        let basin_updates = sources.basin_updates.as_ref()?;
        let observation_partitions = sources.observations.assigned_partitions();
        let basin_partitions = basin_updates.owned_partitions();
        let basins = self
            .threads
            .iter()
            .flat_map(|threads| threads.basins())
            .filter(|(_, partition)| basin_partitions.contains(partition))
            .map(|(basin, _)| BasinId::new(basin))
            .collect();
        let shards = self
            .shards
            .iter()
            .flat_map(|shards| shards.shards_on(&basin_partitions.iter().copied().collect()))
            .collect();
        let lags = self.metrics.consumer_lags();
        let observation_lag = observation_partitions
            .iter()
            .filter_map(|owned| Some((owned.clone(), *lags.get(owned)?)))
            .collect();
        Some(Ownership {
            observation_partitions,
            basin_partitions,
            basins,
            shards,
            observation_lag,
            cluster: basin_updates.cluster_partitions().clone(),
        })
    }

    /// Returns whether the node has its partitions assigned and its state of them rebuilt
    /// (as `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.metrics.is_ready()
    }

    /// Returns whether the node runs sharded, owning only some warning threads.
    pub fn is_sharded(&self) -> bool {
        self.threads.is_some()
    }

    /// Returns the basin-updates partition deciding who owns the warning with id `warning`;
    /// `None` when the node runs unsharded or the warning belongs to no basin or chain (it
    /// belongs to the node that has it).
    pub fn thread_partition(&self, warning: &WarningId) -> Option<i32> {
        self.threads.as_ref()?.of_warning(warning)
    }

    /// Returns the basin-updates partition deciding who holds `recipient`'s obligations (the
    /// owner of the shard of the tree their unit lies in); `None` when the node runs unsharded
    /// or the recipient is not in the directory.
    pub fn book_partition(&self, recipient: &RecipientId) -> Option<i32> {
        self.shards.as_ref()?.of_recipient(recipient)
    }
}

impl NodePipeline {
    /// Starts the pipeline against the configured Kafka.
    ///
    /// # Errors
    /// Returns [`PipelineError`] when Kafka cannot be reached or an actor fails to start.
    pub async fn start(
        settings: &PipelineSettings,
        region: Arc<Region>,
    ) -> Result<Self, PipelineError> {
        let metrics = Arc::new(Metrics::default());
        metrics.set_topology(region.stations.len(), region.basins.len());
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.kafka.bootstrap_servers)
            .set("client.id", &settings.kafka.client_id)
            .set("enable.idempotence", "true")
            // The basin-updates topic carries every station summary of every tick, as JSON;
            // compressed it is a fraction of the size (the embedded broker keeps only the last
            // 5 MB of each partition, so uncompressed the start of a storm falls off the log).
            .set("compression.type", "lz4")
            // Most writes are awaited one after another (a warning version, a tick's records,
            // a journal entry), so librdkafka's default 5 ms linger would be added to each;
            // records produced while a request is in flight are still batched together.
            .set("linger.ms", "0")
            .create()
            .map_err(|e| PipelineError::kafka("create the node producer", e))?;
        let published = {
            let (bootstrap, topic) = (
                settings.kafka.bootstrap_servers.clone(),
                settings.kafka.topics.warnings.clone(),
            );
            tokio::task::spawn_blocking(move || read_published(&bootstrap, &topic))
                .await
                .map_err(|e| actor_error("read published warnings", e))??
        };
        let layout = if settings.kafka.sharded {
            Some(TopicLayout::read(settings, producer.clone()).await?)
        } else {
            None
        };
        let dissemination = DisseminationStage::start(
            &settings.dissemination,
            region.clone(),
            &settings.kafka,
            producer.clone(),
            WallClock::system(),
            metrics.clone(),
            layout.as_ref().map(|layout| layout.writer.clone()),
        )
        .await?;
        let (warnings, _) = broadcast::channel(4096);
        let (publisher, _) = Actor::spawn(
            None,
            WarningPublisher,
            WarningPublisherArgs {
                producer: producer.clone(),
                topic: settings.kafka.topics.warnings.clone(),
                published,
                broadcast: warnings.clone(),
                sign_off: Some(dissemination.desk.get_derived()),
                metrics: metrics.clone(),
            },
        )
        .await
        .map_err(|e| actor_error("start the warning publisher", e))?;
        let agency_alerts = AgencyAlerts::start_if_configured(
            &settings.kafka,
            &settings.agency_alerts,
            &region,
            dissemination.desk.clone(),
            producer.clone(),
        )?;
        let models = ModelActors::start(settings, region.clone(), publisher.get_derived()).await?;
        let dead_letters =
            DeadLetterWriter::new(producer.clone(), settings.kafka.topics.dead_letters.clone());
        let (sharded, basin_updates, threads, shards) = if let Some(layout) = layout {
            let shards = dissemination
                .shards
                .clone()
                .ok_or_else(|| actor_error("the dissemination stage", "started without shards"))?;
            let (ticks, updates, threads, owns) = start_sharding(
                settings,
                layout,
                region,
                &models,
                PublishedWarnings {
                    publisher: publisher.clone(),
                    courier: dissemination.courier.clone(),
                    bootstrap_servers: settings.kafka.bootstrap_servers.clone(),
                    topic: settings.kafka.topics.warnings.clone(),
                    deliveries_topic: settings.kafka.topics.deliveries.clone(),
                    state_topic: settings.kafka.topics.state.clone(),
                    tree: dissemination.region_unit.clone(),
                    desk: dissemination.desk.clone(),
                    shards: shards.clone(),
                },
                dead_letters.clone(),
                metrics.clone(),
            )
            .await?;
            publisher
                .cast(WarningPublisherMsg::OnlyOwned(OwnerCheck {
                    owns: owns.clone(),
                    lease: updates.lease(),
                }))
                .map_err(|e| actor_error("the warning publisher", e))?;
            let owns_unit = updates.owns_unit(&shards);
            dissemination
                .courier
                .cast(DeliveryCourierMsg::OnlyOwned(owns_unit.clone()))
                .map_err(|e| actor_error("the courier", e))?;
            dissemination
                .state_journal
                .cast(StateJournalMsg::OnlyOwned(JournaledHere {
                    warnings: owns,
                    units: owns_unit,
                }))
                .map_err(|e| actor_error("the state journal", e))?;
            (Some(ticks), Some(updates), Some(threads), Some(shards))
        } else {
            (None, None, None, None)
        };
        let observations = ObservationSource::start(
            &settings.kafka,
            &settings.pipeline,
            models.stations.clone(),
            dead_letters,
            metrics.clone(),
            sharded,
        )?;
        let ownership = OwnershipReader {
            sources: Arc::new(Mutex::new(Some(KafkaSources {
                observations,
                basin_updates,
            }))),
            threads,
            shards,
            metrics: metrics.clone(),
        };
        Ok(Self {
            models,
            publisher,
            metrics,
            warnings,
            dissemination,
            agency_alerts,
            ownership,
        })
    }

    /// The partitions and basins this node owns now (sharded), or `None` when it runs
    /// unsharded.
    pub fn ownership(&self) -> Option<Ownership> {
        self.ownership.read()
    }

    /// Returns a reader of [`NodePipeline::ownership`] for other tasks.
    pub fn ownership_reader(&self) -> OwnershipReader {
        self.ownership.clone()
    }

    /// Waits until everything read so far has gone through every stage and every warning
    /// version is acknowledged by the broker.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when a stage does not answer.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        self.models.flush().await?;
        ask(
            &self.publisher,
            WarningPublisherMsg::Flush,
            "flush publisher",
        )
        .await
    }

    /// Returns the last version of every active warning.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when the publisher does not answer.
    pub async fn active_warnings(&self) -> Result<Vec<WarningEvent>, PipelineError> {
        ask(
            &self.publisher,
            WarningPublisherMsg::Active,
            "list active warnings",
        )
        .await
    }

    /// Stops reading, commits offsets, drains every stage and stops the actors.
    ///
    /// # Errors
    /// Returns the first error met while stopping.
    pub async fn stop(self) -> Result<(), PipelineError> {
        let NodePipeline {
            models,
            publisher,
            dissemination,
            agency_alerts,
            ownership,
            ..
        } = self;
        let KafkaSources {
            observations,
            basin_updates,
        } = ownership
            .sources
            .lock()
            .expect("sources lock is never poisoned: no panics under it")
            .take()
            .expect("only stop takes the sources, and it takes the pipeline");
        observations.stop().await?;
        if let Some(basin_updates) = basin_updates {
            basin_updates.stop().await?;
        }
        if let Some(agency_alerts) = agency_alerts {
            agency_alerts.stop().await?;
        }
        let flushed = match models.flush().await {
            Ok(()) => ask(&publisher, WarningPublisherMsg::Flush, "flush publisher").await,
            Err(e) => Err(e),
        };
        models.stop();
        publisher.stop(None);
        dissemination.stop().await;
        flushed
    }
}

/// Starts a sharded node's two halves: what its observation source sends on, and the source of
/// the basin updates it owns; also returns the basin-updates partition of every thread, and
/// whether the node owns a warning (for the courier and the state journal).
async fn start_sharding(
    settings: &PipelineSettings,
    layout: TopicLayout,
    region: Arc<Region>,
    models: &ModelActors,
    published: PublishedWarnings,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
) -> Result<
    (
        ShardedTicks,
        BasinUpdateSource,
        Arc<ThreadPartitions>,
        OwnsWarning,
    ),
    PipelineError,
> {
    let topics = &settings.kafka.topics;
    let TopicLayout { counts, writer } = layout;
    let threads = Arc::new(ThreadPartitions::new(&writer, &region));
    let ticks = ShardedTicks::new(
        region.clone(),
        writer.clone(),
        topics,
        settings.kafka.partitioner,
        &counts,
        models.chain_watched.clone(),
    )?;
    let sources = topics
        .observation_topics()
        .into_iter()
        .flat_map(|topic| (0..counts[topic]).map(move |p| (topic.to_string(), p)))
        .collect();
    let updates = BasinUpdateSource::start(
        &settings.kafka,
        models.clone(),
        UpdateLayout::new(
            &writer,
            sources,
            settings.pipeline.tick_ms().map_err(PipelineError::Setup)?,
            threads.clone(),
        ),
        published,
        dead_letters,
        metrics,
    )?;
    let owns = updates.owns_warning(&writer, &region);
    Ok((ticks, updates, threads, owns))
}

/// The partitions of a sharded cluster's topics, and the writer of its basin-updates topic.
struct TopicLayout {
    /// Partitions of each observation topic and of the basin-updates topic.
    counts: BTreeMap<String, i32>,
    writer: BasinUpdatesWriter,
}

impl TopicLayout {
    /// Reads the topics' partition counts from the broker.
    async fn read(
        settings: &PipelineSettings,
        producer: FutureProducer,
    ) -> Result<Self, PipelineError> {
        let topics = &settings.kafka.topics;
        let mut names: Vec<String> = topics
            .observation_topics()
            .into_iter()
            .map(str::to_string)
            .collect();
        names.push(topics.basin_updates.clone());
        let counts = {
            let bootstrap = settings.kafka.bootstrap_servers.clone();
            tokio::task::spawn_blocking(move || {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                partition_counts(&bootstrap, &names)
            })
            .await
            .map_err(|e| actor_error("read topic metadata", e))??
        };
        let writer = BasinUpdatesWriter::new(
            producer,
            topics.basin_updates.clone(),
            counts[&topics.basin_updates],
            settings.kafka.partitioner,
        );
        Ok(Self { counts, writer })
    }
}

/// True when the nodes of one sharded cluster have nothing in hand: no observation in flight,
/// every source caught up with its log, every forwarded chain reading decided by its owner, and
/// every node's basins and chains fed the last tick that every node has finished.
pub fn sharded_cluster_settled(nodes: &[NodePipeline]) -> bool {
    let accounts: Vec<_> = nodes.iter().map(|n| n.metrics.accounting()).collect();
    let forwarded: u64 = accounts.iter().map(|a| a.forwarded).sum();
    let settled: u64 = accounts.iter().map(|a| a.settled).sum();
    let last_tick = nodes.iter().map(|n| n.metrics.watermark_ms()).min();
    accounts.iter().all(|a| a.in_flight == 0)
        && nodes.iter().all(|n| n.metrics.is_caught_up())
        && forwarded == settled
        && last_tick > Some(0)
        && nodes
            .iter()
            .all(|n| Some(n.metrics.basin_watermark_ms()) >= last_tick)
}
