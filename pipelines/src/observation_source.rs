//! The Kafka source of observations: a consumer-group member that reads the observation topics,
//! decodes each record, has the station actors apply it, routes rejections to the dead-letter
//! topic, advances event time, and only then stores the offsets to commit.
//!
//! On every partition assignment the source rewinds to the beginning of the retained log and
//! replays up to the committed offset silently (no dead letters, no double counting) to rebuild
//! the windows of the stations it now owns; warnings that replay re-derives are dropped by the
//! publisher because their (id, version) is already on the warnings topic. A blocking thread
//! polls librdkafka and hands batches over a channel of capacity one, so at most one batch is
//! decoded and one applied at a time: when the actors are slow, polling stops and librdkafka's
//! bounded fetch queue fills, which pauses fetching.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tianshan_actors::ask::{await_reply, reply_port};
use tianshan_actors::station::Envelope;
use tianshan_actors::station_supervisor::StationSupervisorMsg;
use tianshan_core::observation::{Outcome, RejectReason};
use tianshan_core::time::EventTime;
use tianshan_proto::codec::decode_observation;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::{KafkaConfig, PipelineConfig};
use crate::dead_letters::{DeadLetter, DeadLetterWriter};
use crate::error::PipelineError;
use crate::event_clock::EventClock;
use crate::telemetry::Metrics;

/// What the source learned about a partition when it was assigned.
#[derive(Debug, Clone, Copy)]
struct AssignedPartition {
    /// Records below this offset are re-read to rebuild state (the committed offset).
    live_from: i64,
    /// The partition held no records when assigned; `None` until the source has asked the broker
    /// (not from the rebalance callback, where broker requests are not served).
    empty: Option<bool>,
}

/// The current assignment, per (topic, partition).
type LiveFrom = Arc<Mutex<BTreeMap<(String, i32), AssignedPartition>>>;

/// Consumer callbacks: rewind on assignment, lag from statistics.
pub struct SourceContext {
    live_from: LiveFrom,
    metrics: Arc<Metrics>,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .set_consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut live_from = self
            .live_from
            .lock()
            .expect("live-from lock is never poisoned: no panics under it");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)).unwrap_or_else(|e| {
                    warn!(error = %e, "could not read committed offsets; treating the whole log as live");
                    TopicPartitionList::new()
                });
                for element in tpl.elements() {
                    let boundary = committed
                        .find_partition(element.topic(), element.partition())
                        .and_then(|c| match c.offset() {
                            Offset::Offset(offset) => Some(offset),
                            _ => None,
                        })
                        .unwrap_or(0);
                    live_from.insert(
                        (element.topic().to_string(), element.partition()),
                        AssignedPartition {
                            live_from: boundary,
                            empty: None,
                        },
                    );
                }
                let mut rewound = TopicPartitionList::new();
                for element in tpl.elements() {
                    let _ = rewound.add_partition_offset(
                        element.topic(),
                        element.partition(),
                        Offset::Beginning,
                    );
                }
                info!(
                    partitions = rewound.count(),
                    "partitions assigned; rebuilding from the start of the log"
                );
                if let Err(e) = consumer.assign(&rewound) {
                    warn!(error = %e, "assigning partitions failed");
                }
                self.metrics.set_ready(true);
            }
            _ => {
                info!(partitions = tpl.count(), "partitions revoked");
                for element in tpl.elements() {
                    live_from.remove(&(element.topic().to_string(), element.partition()));
                }
                let _ = consumer.unassign();
                self.metrics.set_ready(false);
            }
        }
    }
}

/// One record as read from Kafka.
struct RawRecord {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    content_type: Option<String>,
    timestamp_ms: Option<i64>,
}

/// Records polled together.
struct PolledBatch {
    records: Vec<RawRecord>,
}

/// A running source; dropping it does not stop it, call [`ObservationSource::stop`].
pub struct ObservationSource {
    stop: Arc<AtomicBool>,
    poll_thread: tokio::task::JoinHandle<()>,
    apply_task: tokio::task::JoinHandle<Result<(), PipelineError>>,
}

impl ObservationSource {
    /// Joins the consumer group and starts reading.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when the consumer cannot be created or subscribe.
    pub fn start(
        kafka: &KafkaConfig,
        pipeline: &PipelineConfig,
        stations: ActorRef<StationSupervisorMsg>,
        dead_letters: DeadLetterWriter,
        metrics: Arc<Metrics>,
    ) -> Result<Self, PipelineError> {
        let live_from: LiveFrom = Arc::default();
        let context = SourceContext {
            live_from: live_from.clone(),
            metrics: metrics.clone(),
        };
        let session_ms = tianshan_core::time::parse_duration_ms(&kafka.session_timeout)
            .map_err(PipelineError::Setup)?;
        let consumer: BaseConsumer<SourceContext> = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("group.id", &kafka.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (session_ms / 3).max(100).to_string(),
            )
            .set("statistics.interval.ms", "5000")
            .set("queued.max.messages.kbytes", "16384")
            .create_with_context(context)
            .map_err(|e| PipelineError::kafka("create the observation consumer", e))?;
        consumer
            .subscribe(&kafka.topics.observation_topics())
            .map_err(|e| PipelineError::kafka("subscribe to the observation topics", e))?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let (batches, receiver) = mpsc::channel(1);
        let poll_thread = {
            let (consumer, stop, max_batch) = (consumer.clone(), stop.clone(), pipeline.max_batch);
            tokio::task::spawn_blocking(move || poll_loop(&consumer, &stop, max_batch, &batches))
        };
        let tick_ms = pipeline.tick_ms().map_err(PipelineError::Setup)?;
        let applier = Applier {
            consumer,
            stations,
            dead_letters,
            metrics,
            live_from,
            clock: EventClock::new(tick_ms),
        };
        let apply_task = tokio::spawn(applier.run(receiver));
        Ok(Self {
            stop,
            poll_thread,
            apply_task,
        })
    }

    /// Stops polling, lets the batch in hand finish, and commits the stored offsets.
    ///
    /// # Errors
    /// Returns the error that stopped the apply loop, if any.
    pub async fn stop(self) -> Result<(), PipelineError> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.poll_thread.await;
        match self.apply_task.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Actor(format!("apply loop panicked: {e}"))),
        }
    }
}

fn poll_loop(
    consumer: &BaseConsumer<SourceContext>,
    stop: &AtomicBool,
    max_batch: usize,
    batches: &mpsc::Sender<PolledBatch>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                let content_type = message
                    .headers()
                    .and_then(|h| {
                        h.iter()
                            .find(|header| header.key.eq_ignore_ascii_case("content-type"))
                    })
                    .and_then(|header| header.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                batch.push(RawRecord {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    content_type,
                    timestamp_ms: message.timestamp().to_millis(),
                });
                if batch.len() < max_batch {
                    continue;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => warn!(error = %e, "kafka consumer error"),
            None => {}
        }
        if !batch.is_empty() {
            let records = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
            if batches.blocking_send(PolledBatch { records }).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(PolledBatch { records: batch });
    }
}

/// The async half: applies batches in order.
struct Applier {
    consumer: Arc<BaseConsumer<SourceContext>>,
    stations: ActorRef<StationSupervisorMsg>,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    live_from: LiveFrom,
    clock: EventClock,
}

impl Applier {
    async fn run(mut self, mut receiver: mpsc::Receiver<PolledBatch>) -> Result<(), PipelineError> {
        while let Some(polled) = receiver.recv().await {
            self.sync_assignment();
            self.apply(polled.records).await?;
        }
        self.consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .or_else(|e| match e {
                KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset) => Ok(()),
                other => Err(other),
            })
            .map_err(|e| PipelineError::kafka("commit offsets at shutdown", e))
    }

    async fn apply(&mut self, batch: Vec<RawRecord>) -> Result<(), PipelineError> {
        let started = Instant::now();
        let live: Vec<bool> = {
            let live_from = self
                .live_from
                .lock()
                .expect("live-from lock is never poisoned: no panics under it");
            batch
                .iter()
                .map(|r| {
                    r.offset
                        >= live_from
                            .get(&(r.topic.clone(), r.partition))
                            .map_or(0, |p| p.live_from)
                })
                .collect()
        };
        self.metrics
            .observations_received(live.iter().filter(|l| **l).count());
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::new();
        let mut envelope_slots = Vec::new();
        for (index, record) in batch.iter().enumerate() {
            match decode_observation(record.content_type.as_deref(), &record.payload) {
                Ok(observation) => {
                    let received_at = EventTime(
                        record
                            .timestamp_ms
                            .unwrap_or(observation.event_time.millis()),
                    );
                    envelopes.push(Envelope {
                        observation,
                        received_at,
                    });
                    envelope_slots.push(index);
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Outcome::rejected(
                    RejectReason::Malformed,
                    e.to_string(),
                ))),
            }
        }
        let event_times: Vec<EventTime> =
            envelopes.iter().map(|e| e.observation.event_time).collect();
        let (port, receiver) = reply_port();
        self.stations
            .cast(StationSupervisorMsg::ApplyBatch(envelopes, port))
            .map_err(|e| PipelineError::Actor(format!("station supervisor is gone: {e}")))?;
        let applied = await_reply(receiver, "apply batch")
            .await
            .map_err(|e| PipelineError::Actor(e.to_string()))?;
        let mut partition_times: Vec<(String, i32, EventTime)> = Vec::new();
        for ((slot, outcome), event_time) in
            envelope_slots.into_iter().zip(applied).zip(event_times)
        {
            if outcome == Outcome::Applied {
                partition_times.push((
                    batch[slot].topic.clone(),
                    batch[slot].partition,
                    event_time,
                ));
            }
            outcomes[slot] = Some(outcome);
        }
        let mut letters = Vec::new();
        for ((record, outcome), is_live) in batch.iter().zip(outcomes).zip(&live) {
            let outcome = outcome
                .ok_or_else(|| PipelineError::Actor("an observation got no outcome".into()))?;
            if !is_live {
                self.metrics.observation_rebuilt();
                continue;
            }
            match outcome {
                Outcome::Applied => self.metrics.observation_applied(),
                Outcome::Rejected { reason, detail } => {
                    letters.push(DeadLetter {
                        reason,
                        detail,
                        source_topic: record.topic.clone(),
                        source_partition: record.partition,
                        source_offset: record.offset,
                        key: record.key.clone(),
                        payload: record.payload.clone(),
                    });
                }
            }
        }
        self.dead_letters.write_all(&letters).await?;
        for letter in &letters {
            self.metrics.dead_letter_written();
            self.metrics.observation_rejected(letter.reason);
        }
        for record in &batch {
            self.clock.delivered(&record.topic, record.partition);
        }
        for (topic, partition, event_time) in partition_times {
            self.clock.observe(&topic, partition, event_time);
        }
        self.release_ticks()?;
        for record in &batch {
            self.consumer
                .store_offset(&record.topic, record.partition, record.offset + 1)
                .map_err(|e| PipelineError::kafka("store an offset", e))?;
        }
        self.metrics
            .observe_batch_latency(started.elapsed().as_secs_f64());
        debug!(
            records = batch.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch applied"
        );
        Ok(())
    }

    /// Tells the clock about the current assignment, asking the broker which new partitions are empty.
    fn sync_assignment(&mut self) {
        let mut live_from = self
            .live_from
            .lock()
            .expect("live-from lock is never poisoned: no panics under it");
        for ((topic, partition), assigned) in live_from.iter_mut() {
            if assigned.empty.is_none() {
                let watermarks = tokio::task::block_in_place(|| {
                    self.consumer
                        .fetch_watermarks(topic, *partition, Duration::from_secs(10))
                });
                assigned.empty = Some(watermarks.map(|(low, high)| high <= low).unwrap_or_else(|e| {
                    warn!(topic = %topic, partition, error = %e, "could not read partition bounds; treating it as non-empty");
                    false
                }));
            }
        }
        self.clock.sync_assignment(
            live_from
                .iter()
                .map(|(key, p)| (key, p.empty.unwrap_or(false))),
        );
    }

    /// Sends the stations every tick the watermark has passed.
    fn release_ticks(&mut self) -> Result<(), PipelineError> {
        if let Some(watermark) = self.clock.watermark() {
            self.metrics.set_watermark_ms(watermark.millis());
            for tick in self.clock.ticks_through(watermark) {
                self.stations
                    .cast(StationSupervisorMsg::Tick(tick))
                    .map_err(|e| {
                        PipelineError::Actor(format!("station supervisor is gone: {e}"))
                    })?;
            }
        }
        Ok(())
    }
}
