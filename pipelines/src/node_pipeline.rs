//! Starts one node's pipeline: the warning publisher, the warning manager, the basin and station
//! supervisors (downstream first, so nothing is sent to an actor that does not exist yet), and
//! the Kafka source; and stops it in the reverse order.

use std::sync::Arc;

use ractor::{Actor, ActorRef};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use tianshan_actors::basin_supervisor::{BasinSupervisor, BasinSupervisorArgs, BasinSupervisorMsg};
use tianshan_actors::debris_flow_chain::{
    DebrisFlowChainActor, DebrisFlowChainArgs, DebrisFlowChainMsg,
};
use tianshan_actors::lightning_fire_chain::{
    LightningFireChainActor, LightningFireChainArgs, LightningFireChainMsg,
};
use tianshan_actors::station_supervisor::{
    StationSupervisor, StationSupervisorArgs, StationSupervisorMsg,
};
use tianshan_actors::warning_manager::{WarningManager, WarningManagerArgs, WarningManagerMsg};
use tianshan_core::debris_flow::DebrisFlowConfig;
use tianshan_core::flash_flood::FlashFloodPolicy;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::lightning_fire::LightningFireConfig;
use tianshan_core::region::Region;
use tianshan_core::station_windows::WindowsConfig;
use tianshan_core::warning::WarningEvent;
use tokio::sync::broadcast;

use crate::config::{KafkaConfig, PipelineConfig};
use crate::dead_letters::DeadLetterWriter;
use crate::error::PipelineError;
use crate::observation_source::ObservationSource;
use crate::telemetry::Metrics;
use crate::warning_publisher::{
    read_published, WarningPublisher, WarningPublisherArgs, WarningPublisherMsg,
};

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
}

/// A running pipeline.
pub struct NodePipeline {
    /// The station supervisor (snapshots, flushes).
    pub stations: ActorRef<StationSupervisorMsg>,
    /// The basin supervisor.
    pub basins: ActorRef<BasinSupervisorMsg>,
    /// The warning manager.
    pub manager: ActorRef<WarningManagerMsg>,
    /// The debris-flow chain.
    pub debris_flow: ActorRef<DebrisFlowChainMsg>,
    /// The lightning → fire chain.
    pub lightning_fire: ActorRef<LightningFireChainMsg>,
    /// The warnings publisher.
    pub publisher: ActorRef<WarningPublisherMsg>,
    /// Metrics of this pipeline.
    pub metrics: Arc<Metrics>,
    /// Live fan-out of published warning versions.
    pub warnings: broadcast::Sender<WarningEvent>,
    source: ObservationSource,
}

fn actor_error(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Actor(format!("{what}: {e}"))
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
            .set("enable.idempotence", "true")
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
        let (warnings, _) = broadcast::channel(4096);
        let (publisher, _) = Actor::spawn(
            None,
            WarningPublisher,
            WarningPublisherArgs {
                producer: producer.clone(),
                topic: settings.kafka.topics.warnings.clone(),
                published,
                broadcast: warnings.clone(),
                metrics: metrics.clone(),
            },
        )
        .await
        .map_err(|e| actor_error("start the warning publisher", e))?;
        let debris_flow =
            spawn_debris_flow_chain(settings, &region, publisher.get_derived()).await?;
        let (manager, _) = Actor::spawn(
            None,
            WarningManager,
            WarningManagerArgs {
                region: region.clone(),
                policy: settings.lifecycle.clone(),
                warnings: publisher.get_derived(),
                chains: Some(debris_flow.get_derived()),
            },
        )
        .await
        .map_err(|e| actor_error("start the warning manager", e))?;
        let (basins, _) = Actor::spawn(
            None,
            BasinSupervisor,
            BasinSupervisorArgs {
                region: region.clone(),
                policy: settings.flash_flood.clone(),
                assessments: manager.get_derived(),
            },
        )
        .await
        .map_err(|e| actor_error("start the basin supervisor", e))?;
        let lightning_fire =
            spawn_lightning_fire_chain(settings, &region, publisher.get_derived()).await?;
        let (stations, _) = Actor::spawn(
            None,
            StationSupervisor,
            StationSupervisorArgs {
                region,
                windows: settings.windows.clone(),
                summaries: basins.get_derived(),
                lightning: Some(lightning_fire.clone()),
            },
        )
        .await
        .map_err(|e| actor_error("start the station supervisor", e))?;
        let dead_letters =
            DeadLetterWriter::new(producer, settings.kafka.topics.dead_letters.clone());
        let source = ObservationSource::start(
            &settings.kafka,
            &settings.pipeline,
            stations.clone(),
            dead_letters,
            metrics.clone(),
        )?;
        Ok(Self {
            stations,
            basins,
            manager,
            debris_flow,
            lightning_fire,
            publisher,
            metrics,
            warnings,
            source,
        })
    }

    /// Waits until everything read so far has gone through every stage and every warning
    /// version is acknowledged by the broker.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when a stage does not answer.
    pub async fn flush(&self) -> Result<(), PipelineError> {
        flush_stages(&self.stages()).await
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
        let stages = self.stages();
        self.source.stop().await?;
        let flushed = flush_stages(&stages).await;
        stages.stop();
        flushed
    }
}

/// The actors of a pipeline, in pipeline order.
struct Stages {
    stations: ActorRef<StationSupervisorMsg>,
    lightning_fire: ActorRef<LightningFireChainMsg>,
    basins: ActorRef<BasinSupervisorMsg>,
    manager: ActorRef<WarningManagerMsg>,
    debris_flow: ActorRef<DebrisFlowChainMsg>,
    publisher: ActorRef<WarningPublisherMsg>,
}

impl Stages {
    fn stop(&self) {
        self.stations.stop(None);
        self.lightning_fire.stop(None);
        self.basins.stop(None);
        self.manager.stop(None);
        self.debris_flow.stop(None);
        self.publisher.stop(None);
    }
}

impl NodePipeline {
    fn stages(&self) -> Stages {
        Stages {
            stations: self.stations.clone(),
            lightning_fire: self.lightning_fire.clone(),
            basins: self.basins.clone(),
            manager: self.manager.clone(),
            debris_flow: self.debris_flow.clone(),
            publisher: self.publisher.clone(),
        }
    }
}

/// Flushes the stages in pipeline order: each flush reply proves the stage has forwarded
/// everything it received before, so the next stage's flush comes after it.
async fn flush_stages(stages: &Stages) -> Result<(), PipelineError> {
    ask(
        &stages.stations,
        StationSupervisorMsg::Flush,
        "flush stations",
    )
    .await?;
    ask(
        &stages.lightning_fire,
        LightningFireChainMsg::Flush,
        "flush the lightning-fire chain",
    )
    .await?;
    ask(&stages.basins, BasinSupervisorMsg::Flush, "flush basins").await?;
    ask(&stages.manager, WarningManagerMsg::Flush, "flush warnings").await?;
    ask(
        &stages.debris_flow,
        DebrisFlowChainMsg::Flush,
        "flush the debris-flow chain",
    )
    .await?;
    ask(
        &stages.publisher,
        WarningPublisherMsg::Flush,
        "flush publisher",
    )
    .await
}

/// Starts the lightning → fire chain of the region's fire zones, emitting to `warnings`; a
/// zone's warnings reach its county.
pub(crate) async fn spawn_lightning_fire_chain(
    settings: &PipelineSettings,
    region: &Arc<Region>,
    warnings: ractor::DerivedActorRef<WarningEvent>,
) -> Result<ActorRef<LightningFireChainMsg>, PipelineError> {
    let zones = region
        .fire_zones
        .iter()
        .map(|site| (site.zone.clone(), vec![site.county.clone()]))
        .collect();
    let (chain, _) = Actor::spawn(
        None,
        LightningFireChainActor,
        LightningFireChainArgs {
            zones,
            config: settings.lightning_fire.clone(),
            policy: settings.lifecycle.clone(),
            warnings,
        },
    )
    .await
    .map_err(|e| actor_error("start the lightning-fire chain", e))?;
    Ok(chain)
}

/// Starts the debris-flow chain of the region's gullies, emitting to `warnings`.
pub(crate) async fn spawn_debris_flow_chain(
    settings: &PipelineSettings,
    region: &Arc<Region>,
    warnings: ractor::DerivedActorRef<WarningEvent>,
) -> Result<ActorRef<DebrisFlowChainMsg>, PipelineError> {
    let (chain, _) = Actor::spawn(
        None,
        DebrisFlowChainActor,
        DebrisFlowChainArgs {
            region: region.clone(),
            config: settings.debris_flow.clone(),
            policy: settings.lifecycle.clone(),
            warnings,
        },
    )
    .await
    .map_err(|e| actor_error("start the debris-flow chain", e))?;
    Ok(chain)
}

/// [`tianshan_actors::ask::ask`] with the error as a [`PipelineError`].
pub(crate) async fn ask<M: ractor::Message, T>(
    actor: &ActorRef<M>,
    make: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
    what: &str,
) -> Result<T, PipelineError> {
    tianshan_actors::ask::ask(actor, make, what)
        .await
        .map_err(|e| actor_error(what, e))
}
