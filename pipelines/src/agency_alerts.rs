//! The Kafka source of other agencies' warnings: a consumer-group member that reads CAP 1.2 XML
//! alerts from the agency-alerts topic (`alerts.in` by default), makes each a warning version by
//! the rules of `tianshan_core::agency_alert` and issues it to the sign-off desk as a draft of
//! the department configured for its sender, so it goes through the same sign-off and tree as
//! the models' warnings.
//!
//! # Accounting
//! Every record read ends as exactly one of: **submitted** (the desk took the draft),
//! **duplicate** (a message taken before, or a record below the committed offset re-read after
//! an assignment), or **dead-lettered** with the reason code of
//! [`AgencyAlertError::code`] and its detail (the CAP field path for malformed CAP, the unknown
//! codes, the sender, the stale thread). [`AgencyAlerts::accounting`] shows the totals.
//!
//! # Offsets and restarts
//! Records are handled one at a time; a record's offset is stored for the next commit only
//! after the desk answered or the broker acknowledged its dead letter, so a crash re-reads it.
//! The group rebalances cooperatively: a member joining or leaving moves only the partitions
//! it takes or gives. A partition newly assigned is rewound to the start of the retained log,
//! and what lies below the committed offset is re-read silently, only to rebuild the threads
//! (which message is which version of which warning): an update arriving after a restart or a
//! move still finds its thread. The partitions a member keeps go on from where they were.
//! Nothing re-read is issued again; like the models' replayed versions, drafts the desk held
//! before a node restart are not restored.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::agency_alert::{AgencyAlertError, AgencyRules, AgencyThreads, Intake};
use tianshan_core::cap::{CapAlert, CapError, CapStatus};
use tianshan_core::ids::AgencyId;
use tianshan_core::region::Region;
use tianshan_core::signoff::Department;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use crate::assignment::{assign_given, unassign_revoked};
use crate::config::KafkaConfig;
use crate::dead_letters::{DeadLetter, DeadLetterWriter};
use crate::error::PipelineError;
use crate::final_commit::commit_at_shutdown;

/// Settings of the agency-alert consumer (`[agency-alerts]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AgencyAlertsConfig {
    /// The department that answers here for each agency's warnings, by CAP `sender`
    /// (`"ews@example.invalid" = "natural-resources"`). Alerts of other senders are
    /// dead-lettered as `unknown_agency`.
    pub departments: BTreeMap<String, Department>,
    /// The CAP statuses taken; others are dead-lettered as `status_not_taken`. `Actual` in
    /// production; a drill node adds `Exercise`, a test system `Test`.
    pub statuses: Vec<CapStatus>,
}

impl Default for AgencyAlertsConfig {
    fn default() -> Self {
        Self {
            departments: BTreeMap::new(),
            statuses: vec![CapStatus::Actual],
        }
    }
}

impl AgencyAlertsConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.statuses.is_empty() {
            return Err("agency-alerts.statuses must name at least one CAP status".into());
        }
        for sender in self.departments.keys() {
            if sender.is_empty() || sender.contains(|c: char| c.is_whitespace() || c == ',') {
                return Err(format!(
                    "agency-alerts.departments: `{sender}` is no CAP sender (empty, or with whitespace or a comma)"
                ));
            }
        }
        Ok(())
    }

    /// Returns the rules of `tianshan_core::agency_alert` for `region`.
    fn rules(&self, region: &Region) -> AgencyRules {
        AgencyRules {
            departments: self
                .departments
                .iter()
                .map(|(sender, department)| (AgencyId::new(sender), *department))
                .collect(),
            statuses: self.statuses.iter().copied().collect(),
            areas: region.admin_units.keys().cloned().collect(),
        }
    }
}

/// What became of the records read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyAlertAccounting {
    /// Records read, re-reads included.
    pub read: u64,
    /// Drafts the desk took.
    pub submitted: u64,
    /// Messages taken before, and records re-read below the committed offset.
    pub duplicates: u64,
    /// Dead letters acknowledged by the broker, by reason code.
    pub dead_lettered: BTreeMap<&'static str, u64>,
}

impl AgencyAlertAccounting {
    /// Returns the records decided: every one read once the consumer is idle.
    pub fn decided(&self) -> u64 {
        self.submitted + self.duplicates + self.dead_lettered.values().sum::<u64>()
    }
}

/// Where the live records of each assigned partition start (the committed offset).
type LiveFrom = Arc<Mutex<BTreeMap<i32, i64>>>;

/// Consumer callbacks: rewind each newly assigned partition to the start of its log.
struct RewindContext {
    live_from: LiveFrom,
}

impl ClientContext for RewindContext {}

impl ConsumerContext for RewindContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        // Cooperative (the group's protocol, `cooperative-sticky`): `tpl` holds only the
        // partitions that move, and the others keep being read where they are.
        let mut live_from = self
            .live_from
            .lock()
            .expect("live-from lock is never poisoned: no panics under it");
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            info!(partitions = tpl.count(), "agency-alert partitions revoked");
            for element in tpl.elements() {
                live_from.remove(&element.partition());
            }
            if let Err(e) = unassign_revoked(consumer, tpl) {
                warn!(error = %e, "unassigning agency-alert partitions failed");
            }
            return;
        }
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .unwrap_or_else(|e| {
                warn!(error = %e, "could not read committed agency-alert offsets; treating the whole log as new");
                TopicPartitionList::new()
            });
        let mut rewound = TopicPartitionList::new();
        for element in tpl.elements() {
            let boundary = committed
                .find_partition(element.topic(), element.partition())
                .and_then(|c| match c.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                })
                .unwrap_or(0);
            live_from.insert(element.partition(), boundary);
            let _ = rewound.add_partition_offset(
                element.topic(),
                element.partition(),
                Offset::Beginning,
            );
        }
        info!(
            partitions = rewound.count(),
            "agency-alert partitions assigned; re-reading their threads"
        );
        if let Err(e) = assign_given(consumer, &rewound) {
            warn!(error = %e, "assigning agency-alert partitions failed");
        }
    }
}

/// A running agency-alert consumer; call [`AgencyAlerts::stop`] to stop it.
pub struct AgencyAlerts {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), PipelineError>>,
    accounting: watch::Receiver<AgencyAlertAccounting>,
}

impl AgencyAlerts {
    /// Joins the consumer group `<kafka.group-id>.agency-alerts` on the agency-alerts topic and
    /// starts issuing to `desk`.
    ///
    /// # Errors
    /// [`PipelineError::Setup`] for bad settings, [`PipelineError::Kafka`] when the consumer
    /// cannot be created or subscribe.
    pub fn start(
        kafka: &KafkaConfig,
        config: &AgencyAlertsConfig,
        region: &Region,
        desk: ActorRef<SignOffDeskMsg>,
        dead_letters: DeadLetterWriter,
    ) -> Result<Self, PipelineError> {
        config.validate().map_err(PipelineError::Setup)?;
        let session_ms = tianshan_core::time::parse_duration_ms(&kafka.session_timeout)
            .map_err(PipelineError::Setup)?;
        let live_from = LiveFrom::default();
        let consumer: StreamConsumer<RewindContext> = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("client.id", &kafka.client_id)
            .set("group.id", format!("{}.agency-alerts", kafka.group_id))
            // Incremental: a member joining or leaving moves only the partitions it takes or
            // gives, and only those are re-read. Every member of the group must use it.
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
            .create_with_context(RewindContext {
                live_from: live_from.clone(),
            })
            .map_err(|e| PipelineError::kafka("create the agency-alert consumer", e))?;
        consumer
            .subscribe(&[kafka.topics.agency_alerts.as_str()])
            .map_err(|e| PipelineError::kafka("subscribe to the agency-alert topic", e))?;
        let (accounting_tx, accounting) = watch::channel(AgencyAlertAccounting::default());
        let intake = AlertIntake {
            consumer,
            live_from,
            rules: config.rules(region),
            threads: AgencyThreads::new(),
            desk,
            dead_letters,
            accounting: accounting_tx,
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(intake.run(stopped));
        Ok(Self {
            stop,
            task,
            accounting,
        })
    }

    /// Starts the consumer when `kafka.topics.agency-alerts` is set, dead-lettering to
    /// `kafka.topics.dead-letters` through `producer`; returns `None` when it is empty.
    ///
    /// # Errors
    /// As [`AgencyAlerts::start`].
    pub fn start_if_configured(
        kafka: &KafkaConfig,
        config: &AgencyAlertsConfig,
        region: &Region,
        desk: ActorRef<SignOffDeskMsg>,
        producer: FutureProducer,
    ) -> Result<Option<Self>, PipelineError> {
        if kafka.topics.agency_alerts.is_empty() {
            return Ok(None);
        }
        let dead_letters = DeadLetterWriter::new(producer, kafka.topics.dead_letters.clone());
        Self::start(kafka, config, region, desk, dead_letters).map(Some)
    }

    /// Returns a live view of what became of the records read so far.
    pub fn accounting(&self) -> watch::Receiver<AgencyAlertAccounting> {
        self.accounting.clone()
    }

    /// Stops reading after the record in hand and commits the stored offsets.
    ///
    /// # Errors
    /// Returns the error that stopped the consumer, if any.
    pub async fn stop(self) -> Result<(), PipelineError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Actor(format!(
                "agency-alert consumer panicked: {e}"
            ))),
        }
    }
}

/// What became of one record.
enum Decided {
    Submitted,
    Duplicate,
    DeadLettered(&'static str),
}

/// The consuming half: decides each record, issues or dead-letters it, stores its offset.
struct AlertIntake {
    consumer: StreamConsumer<RewindContext>,
    live_from: LiveFrom,
    rules: AgencyRules,
    threads: AgencyThreads,
    desk: ActorRef<SignOffDeskMsg>,
    dead_letters: DeadLetterWriter,
    accounting: watch::Sender<AgencyAlertAccounting>,
}

impl AlertIntake {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), PipelineError> {
        loop {
            let record = tokio::select! {
                _ = &mut stop => break,
                received = self.consumer.recv() => match received {
                    Ok(message) => message.detach(),
                    Err(e) => {
                        warn!(error = %e, "agency-alert consumer error");
                        continue;
                    }
                },
            };
            let decided = self.handle(&record).await?;
            self.accounting.send_modify(|totals| {
                totals.read += 1;
                match decided {
                    Decided::Submitted => totals.submitted += 1,
                    Decided::Duplicate => totals.duplicates += 1,
                    Decided::DeadLettered(code) => {
                        *totals.dead_lettered.entry(code).or_default() += 1
                    }
                }
            });
        }
        commit_at_shutdown(&self.consumer, "commit agency-alert offsets at shutdown")
    }

    /// Decides one record and acts on it; stores its offset once that is done.
    #[tracing::instrument(skip_all, fields(partition = record.partition(), offset = record.offset()))]
    async fn handle(&mut self, record: &OwnedMessage) -> Result<Decided, PipelineError> {
        let live = record.offset()
            >= self
                .live_from
                .lock()
                .expect("live-from lock is never poisoned: no panics under it")
                .get(&record.partition())
                .copied()
                .unwrap_or(0);
        let payload = record.payload().unwrap_or_default();
        let intake = std::str::from_utf8(payload)
            .map_err(|e| CapError::Xml {
                reason: format!("not UTF-8: {e}"),
            })
            .and_then(CapAlert::parse)
            .map_err(AgencyAlertError::from)
            .and_then(|alert| self.threads.prepare(&alert, &self.rules));
        let decided = match intake {
            Ok(Intake::Duplicate { warning, version }) => {
                debug!(%warning, version, "agency alert taken before");
                Decided::Duplicate
            }
            Ok(Intake::New(version)) if !live => {
                self.threads.record(&version);
                Decided::Duplicate
            }
            Err(_) if !live => Decided::Duplicate,
            Ok(Intake::New(version)) => {
                let submission = version.submission.clone();
                let (warning, number) = (submission.event.id.clone(), submission.event.version);
                let answer = ask(
                    &self.desk,
                    |port| SignOffDeskMsg::Issue(submission, port),
                    "issue an agency warning",
                )
                .await
                .map_err(|e| PipelineError::Actor(e.to_string()))?;
                match answer {
                    Ok(()) => {
                        self.threads.record(&version);
                        info!(%warning, version = number, "agency warning drafted for sign-off");
                        Decided::Submitted
                    }
                    Err(refused) => self.dead_letter(record, refused.into()).await?,
                }
            }
            Err(error) => self.dead_letter(record, error).await?,
        };
        if live {
            self.store_offset(record)?;
        }
        Ok(decided)
    }

    /// Writes `error` to the dead-letter topic and waits for the broker.
    async fn dead_letter(
        &self,
        record: &OwnedMessage,
        error: AgencyAlertError,
    ) -> Result<Decided, PipelineError> {
        let code = error.code();
        warn!(reason = code, detail = %error, "agency alert dead-lettered");
        self.dead_letters
            .write_all(&[DeadLetter {
                detail: error.to_string(),
                reason: error,
                source_topic: record.topic().to_owned(),
                source_partition: record.partition(),
                source_offset: record.offset(),
                key: record.key().map(<[u8]>::to_vec),
                payload: record.payload().unwrap_or_default().to_vec(),
            }])
            .await?;
        Ok(Decided::DeadLettered(code))
    }

    /// Stores the offset after `record` for the next commit. A partition revoked meanwhile is
    /// no longer ours: its new owner reads the record again, so that is not an error.
    fn store_offset(&self, record: &OwnedMessage) -> Result<(), PipelineError> {
        match self
            .consumer
            .store_offset(record.topic(), record.partition(), record.offset())
        {
            Ok(())
            | Err(KafkaError::StoreOffset(
                RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
            )) => Ok(()),
            Err(e) => Err(PipelineError::kafka("store an agency-alert offset", e)),
        }
    }
}
