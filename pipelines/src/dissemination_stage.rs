//! The dissemination stage of a node: the recipient directory, the channels behind the courier
//! (with the delivery ledger rebuilt from its Kafka journal), the state journal, the
//! dissemination tree of admin units and the sign-off desk (both restored from the state topic),
//! started in that order and stopped together. Published warning versions enter through the
//! desk; gRPC calls reach the desk and the tree's region unit. On a sharded node the desk's
//! releases go through the release router to the shards of the tree, each delivered by the
//! node owning it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use rdkafka::producer::FutureProducer;
use serde::{Deserialize, Serialize};
use tianshan_actors::admin_unit::{
    AdminUnitActor, AdminUnitArgs, AdminUnitMsg, Dissemination, TreeEntry,
};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::{SignOffDesk, SignOffDeskArgs, SignOffDeskMsg};
use tianshan_actors::state_change::RestoredBooks;
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::cap::{CapSettings, CapStatus};
use tianshan_core::dissemination::acknowledgement::AcknowledgementConfig;
use tianshan_core::dissemination::coverage::CoverageReport;
use tianshan_core::dissemination::recipients::{ChannelKind, Directory};
use tianshan_core::dissemination::simulation::ChannelFailures;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::AreaCode;
use tianshan_core::region::Region;
use tianshan_core::signoff::SignOffPolicy;
use tokio::task::JoinHandle;
use tracing::info;

use crate::basin_update_source::owns_no_thread_yet;
use crate::basin_updates::BasinUpdatesWriter;
use crate::channels::app::AppChannel;
use crate::channels::cap_feed::CapFeed;
use crate::channels::courier::{Courier, CourierTotals};
use crate::channels::flaky::FlakyChannel;
use crate::channels::journal::{rebuild_ledger, DeliveryJournal};
use crate::channels::log::LogChannel;
use crate::channels::mqtt::MqttChannel;
use crate::channels::webhook::WebhookChannel;
use crate::channels::{Channel, ChannelsConfig};
use crate::config::KafkaConfig;
use crate::delivery_courier::{DeliveryCourier, DeliveryCourierArgs, DeliveryCourierMsg, OwnsUnit};
use crate::error::PipelineError;
use crate::model_actors::actor_error;
use crate::release_router::{ReleaseRouter, ReleaseRouterArgs};
use crate::shard_dissemination::ShardPartitions;
use crate::state_journal::{
    rebuild_state, JournaledHere, StateJournal, StateJournalArgs, StateJournalMsg,
};
use crate::telemetry::Metrics;

/// Settings of dissemination (`[dissemination]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DisseminationConfig {
    /// CSV file of responsible persons and public endpoints (columns in
    /// `core/src/dissemination/recipients.rs`); without it the node builds a synthetic directory
    /// from the admin divisions and says so.
    pub directory: Option<PathBuf>,
    /// Village heads per township in the synthetic directory.
    pub synthetic_villages_per_township: u32,
    /// Acknowledgement deadlines per level.
    pub acknowledgement: AcknowledgementConfig,
    /// Departments, early release and auto-approval.
    pub sign_off: SignOffPolicy,
    /// The CAP sender and names.
    pub cap: CapSettings,
    /// Channels, ledger and feed.
    pub channels: ChannelsConfig,
    /// Channels without a configured gateway (SMS, phone, loudspeakers) write one line per
    /// delivery to this file instead of failing; for demos and drills.
    pub log_unconfigured_channels_to: Option<PathBuf>,
    /// Simulated channel failures (drills and the demo's coverage run); off by default.
    pub simulated_failures: Option<SimulatedFailures>,
    /// Also write every rendered CAP message to this folder, one `.xml` file per message.
    pub cap_dir: Option<PathBuf>,
}

/// Seeded failures of every channel at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SimulatedFailures {
    /// Seed of the failure draws.
    pub seed: u64,
    /// Share of deliveries each channel fails, 0..=1.
    pub rate: f64,
}

impl Default for DisseminationConfig {
    fn default() -> Self {
        Self {
            directory: None,
            synthetic_villages_per_township: 2,
            acknowledgement: AcknowledgementConfig::default(),
            sign_off: SignOffPolicy::default(),
            cap: CapSettings {
                sender: "tianshan@xj-ews.example.invalid".to_owned(),
                sender_name: "天山山洪地质灾害预警系统".to_owned(),
                sender_name_en: "Tianshan hazard early-warning system".to_owned(),
                status: CapStatus::Actual,
                web: None,
                contact: None,
                english: false,
            },
            channels: ChannelsConfig::default(),
            log_unconfigured_channels_to: None,
            simulated_failures: None,
            cap_dir: None,
        }
    }
}

impl DisseminationConfig {
    /// Checks every part; the message names the field.
    ///
    /// # Errors
    /// Returns the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        self.acknowledgement
            .validate()
            .map_err(|e| format!("dissemination.acknowledgement: {e}"))?;
        self.sign_off
            .validate()
            .map_err(|e| format!("dissemination.sign-off: {e}"))?;
        self.cap
            .validate()
            .map_err(|e| format!("dissemination.cap: {e}"))?;
        self.channels
            .validate()
            .map_err(|e| format!("dissemination.{e}"))?;
        if let Some(failures) = &self.simulated_failures {
            if !(0.0..=1.0).contains(&failures.rate) {
                return Err(format!(
                    "dissemination.simulated-failures.rate must be within 0..=1, got {}",
                    failures.rate
                ));
            }
        }
        Ok(())
    }
}

/// The running dissemination stage.
pub struct DisseminationStage {
    /// The sign-off desk: published versions in, officers' decisions in.
    pub desk: ActorRef<SignOffDeskMsg>,
    /// The region unit at the top of the dissemination tree (acknowledgements, coverage).
    pub region_unit: ActorRef<AdminUnitMsg>,
    /// The courier.
    pub courier: ActorRef<DeliveryCourierMsg>,
    /// The writer of the state topic.
    pub state_journal: ActorRef<StateJournalMsg>,
    /// The tree's shared data (directory, clock).
    pub shared: Arc<Dissemination>,
    /// The app channel's live stream of deliveries.
    pub app: Arc<AppChannel>,
    /// The CAP Atom feed.
    pub cap_feed: Arc<CapFeed>,
    /// Whether the directory is the synthetic one.
    pub synthetic_directory: bool,
    /// Sharded: where each shard of the tree is carried; `None` on one node.
    pub shards: Option<ShardPartitions>,
    /// Sharded: the router sending the desk's releases to the shards.
    router: Option<ActorRef<TreeEntry>>,
    coverage_gauges: JoinHandle<()>,
}

impl DisseminationStage {
    /// Starts the stage for `region`, journaling deliveries to the deliveries topic of `kafka`
    /// and the open books to its state topic through `producer`; the tree and the desk start
    /// from the books the state topic holds. A sharded node (`shard_writer` given) sends what
    /// its desk releases to the shards of the tree through the basin-updates topic, and its
    /// tree starts with no books and delivers nothing until its partitions are assigned.
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] naming the directory file, a channel, the journal or
    /// the state topic when they cannot be used, [`PipelineError::Kafka`] when a topic cannot
    /// be read, and [`PipelineError::Actor`] when an actor does not start.
    pub async fn start(
        config: &DisseminationConfig,
        region: Arc<Region>,
        kafka: &KafkaConfig,
        producer: FutureProducer,
        clock: WallClock,
        metrics: Arc<Metrics>,
        shard_writer: Option<BasinUpdatesWriter>,
    ) -> Result<Self, PipelineError> {
        config.validate().map_err(PipelineError::Setup)?;
        let tree = AdminTree::try_from_units(&region.admin_units)
            .map_err(|e| PipelineError::Setup(format!("dissemination tree: {e}")))?;
        let directory = match &config.directory {
            Some(file) => Directory::load_csv(file, &tree)
                .map_err(|e| PipelineError::Setup(format!("dissemination.directory: {e}")))?,
            None => Directory::synthetic(&tree, config.synthetic_villages_per_township),
        };
        let synthetic_directory = directory.is_synthetic();
        let ledger = {
            let (bootstrap, topic, capacity, now) = (
                kafka.bootstrap_servers.clone(),
                kafka.topics.deliveries.clone(),
                config.channels.ledger_capacity,
                clock.now(),
            );
            tokio::task::spawn_blocking(move || rebuild_ledger(&bootstrap, &topic, capacity, now))
                .await
                .map_err(|e| actor_error("rebuild the delivery ledger", e))??
        };
        let restored = {
            let (bootstrap, topic) = (kafka.bootstrap_servers.clone(), kafka.topics.state.clone());
            tokio::task::spawn_blocking(move || rebuild_state(&bootstrap, &topic))
                .await
                .map_err(|e| actor_error("restore the dissemination state", e))??
        };
        info!(
            books = restored.books.len(),
            sign_off = restored.sign_off.is_some(),
            "dissemination state restored"
        );
        // A sharded node takes the books of its shards and the sign-offs of its threads over
        // once its basin-updates partitions are assigned, and journals and delivers nothing of
        // what it does not own.
        let sharded = shard_writer.is_some();
        let owns_no_unit: OwnsUnit = Arc::new(|_: &AreaCode| false);
        let (state_journal, _) = Actor::spawn(
            None,
            StateJournal,
            StateJournalArgs {
                producer: producer.clone(),
                topic: kafka.topics.state.clone(),
                owns: sharded.then(|| JournaledHere {
                    warnings: owns_no_thread_yet(&region),
                    units: owns_no_unit.clone(),
                }),
            },
        )
        .await
        .map_err(|e| actor_error("start the state journal", e))?;
        let app = Arc::new(AppChannel::new(&config.channels.app)?);
        let cap_feed = Arc::new(CapFeed::new(&config.channels.cap_feed)?);
        let mut courier = Courier::new(ledger).with_journal(DeliveryJournal::new(
            producer,
            kafka.topics.deliveries.clone(),
        ));
        for channel in channels(config, &app, &cap_feed)? {
            courier = courier.with_channel(channel);
        }
        let (courier, _) = Actor::spawn(
            None,
            DeliveryCourier,
            DeliveryCourierArgs {
                courier,
                cap: config.cap.clone(),
                region: region.clone(),
                cap_dir: config.cap_dir.clone(),
                clock,
                metrics: metrics.clone(),
                owns: sharded.then_some(owns_no_unit),
            },
        )
        .await
        .map_err(|e| actor_error("start the courier", e))?;
        let shared = Arc::new(Dissemination {
            tree,
            directory,
            acknowledgement: config.acknowledgement.clone(),
            clock,
            courier: courier.get_derived(),
            state: Some(state_journal.get_derived()),
        });
        let (region_unit, _) = Actor::spawn(
            None,
            AdminUnitActor,
            AdminUnitArgs {
                code: shared.tree.region().clone(),
                shared: shared.clone(),
                restored: Arc::new(if sharded {
                    RestoredBooks::default()
                } else {
                    restored.books
                }),
            },
        )
        .await
        .map_err(|e| actor_error("start the dissemination tree", e))?;
        let (router, shards) = match shard_writer {
            Some(writer) => {
                let shards = ShardPartitions::new(&writer, shared.clone());
                let (router, _) = Actor::spawn(
                    None,
                    ReleaseRouter,
                    ReleaseRouterArgs {
                        shared: shared.clone(),
                        writer,
                    },
                )
                .await
                .map_err(|e| actor_error("start the release router", e))?;
                (Some(router), Some(shards))
            }
            None => (None, None),
        };
        let releases_to = match &router {
            Some(router) => router.get_derived(),
            None => region_unit.get_derived(),
        };
        let (desk, _) = Actor::spawn(
            None,
            SignOffDesk,
            SignOffDeskArgs {
                policy: config.sign_off.clone(),
                dissemination: shared.clone(),
                tree: releases_to,
                restored: restored.sign_off,
            },
        )
        .await
        .map_err(|e| actor_error("start the sign-off desk", e))?;
        let coverage_gauges = tokio::spawn(export_coverage(region_unit.clone(), metrics));
        Ok(Self {
            desk,
            region_unit,
            courier,
            state_journal,
            shared,
            app,
            cap_feed,
            synthetic_directory,
            shards,
            router,
            coverage_gauges,
        })
    }

    /// Returns the coverage and timeliness of every warning version delivered so far.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when the tree does not answer.
    pub async fn coverage(&self) -> Result<CoverageReport, PipelineError> {
        coverage_of(&self.region_unit).await
    }

    /// Returns what the courier did so far.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when the courier does not answer.
    pub async fn courier_totals(&self) -> Result<CourierTotals, PipelineError> {
        ask(&self.courier, DeliveryCourierMsg::Totals, "courier totals")
            .await
            .map_err(|e| PipelineError::Actor(e.to_string()))
    }

    /// Stops the desk, then the tree (each unit stops the units below it), and only then the
    /// courier the units hand deliveries to; the state journal writes the changes already sent
    /// to it, then stops.
    pub async fn stop(&self) {
        self.coverage_gauges.abort();
        // An actor that already stopped has nothing left to wait for.
        let _ = self.desk.stop_and_wait(None, Some(STOP_WAIT)).await;
        if let Some(router) = &self.router {
            let _ = router.stop_and_wait(None, Some(STOP_WAIT)).await;
        }
        let _ = self.region_unit.stop_and_wait(None, Some(STOP_WAIT)).await;
        self.courier.stop(None);
        // A journal that already stopped has nothing left to write.
        let _ = self.state_journal.drain();
    }
}

/// The longest the stop waits for the desk, and then the tree, to stop.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How often the coverage of the warnings in force is exported as metrics.
const COVERAGE_EVERY: Duration = Duration::from_secs(10);

/// Returns the coverage of the acknowledgement books in force in the tree under `region_unit`.
///
/// # Errors
/// Returns [`PipelineError::Actor`] when the tree does not answer.
async fn coverage_of(
    region_unit: &ActorRef<AdminUnitMsg>,
) -> Result<CoverageReport, PipelineError> {
    let books = ask(region_unit, AdminUnitMsg::Books, "acknowledgement books")
        .await
        .map_err(|e| PipelineError::Actor(e.to_string()))?;
    Ok(CoverageReport::of(&books))
}

/// Exports the coverage of the warnings in force every [`COVERAGE_EVERY`] until the tree stops.
async fn export_coverage(region_unit: ActorRef<AdminUnitMsg>, metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(COVERAGE_EVERY);
    loop {
        every.tick().await;
        match coverage_of(&region_unit).await {
            Ok(report) => metrics.set_coverage(report),
            Err(_) => return,
        }
    }
}

/// Builds one channel per kind: the app stream and the CAP feed always; SMS, phone and
/// loudspeakers through their gateways when configured, otherwise to the log file when one is
/// set (and otherwise not at all: their deliveries fail as not configured). Every channel fails
/// at the simulated rate when one is set.
fn channels(
    config: &DisseminationConfig,
    app: &Arc<AppChannel>,
    cap_feed: &Arc<CapFeed>,
) -> Result<Vec<Arc<dyn Channel>>, PipelineError> {
    let mut built: Vec<Arc<dyn Channel>> = vec![app.clone(), cap_feed.clone()];
    let log_file = match &config.log_unconfigured_channels_to {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    PipelineError::Setup(format!(
                        "dissemination.log-unconfigured-channels-to {}: {e}",
                        path.display()
                    ))
                })?,
        ),
        None => None,
    };
    let logged = |kind: ChannelKind| -> Result<Option<Arc<dyn Channel>>, PipelineError> {
        match &log_file {
            Some(file) => {
                let writer = file
                    .try_clone()
                    .map_err(|e| PipelineError::Setup(format!("dissemination log file: {e}")))?;
                Ok(Some(Arc::new(LogChannel::new(kind, writer))))
            }
            None => Ok(None),
        }
    };
    for kind in [ChannelKind::Sms, ChannelKind::SmsBroadcast] {
        let channel: Option<Arc<dyn Channel>> = match &config.channels.sms_gateway {
            Some(gateway) => Some(Arc::new(WebhookChannel::new(kind, gateway)?)),
            None => logged(kind)?,
        };
        built.extend(channel);
    }
    built.extend(logged(ChannelKind::Phone)?);
    let loudspeakers: Option<Arc<dyn Channel>> = match &config.channels.loudspeakers {
        Some(broker) => Some(Arc::new(MqttChannel::connect(broker)?)),
        None => logged(ChannelKind::Loudspeaker)?,
    };
    built.extend(loudspeakers);
    if let Some(failures) = &config.simulated_failures {
        built = built
            .into_iter()
            .map(|channel| {
                let rates =
                    ChannelFailures::none(failures.seed).with_rate(channel.kind(), failures.rate);
                Arc::new(FlakyChannel::new(channel, rates)) as Arc<dyn Channel>
            })
            .collect();
    }
    Ok(built)
}
