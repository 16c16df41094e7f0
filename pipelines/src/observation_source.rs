//! The Kafka source of observations: a consumer-group member that reads the observation topics,
//! decodes each record, merges the partitions in event time, has the station actors apply the
//! records, routes rejections to the dead-letter topic, releases evaluation ticks, and only then
//! stores the offsets to commit.
//!
//! The group rebalances cooperatively (`cooperative-sticky`): a member joining or leaving moves
//! only the partitions that change hands, and the others keep flowing. Each partition a node is
//! given is rewound to the beginning of its retained log and replayed up to the committed offset
//! silently (no dead letters, no double counting) to rebuild the windows of its stations;
//! warnings that replay re-derives are dropped by the publisher because their (id, version) is
//! already on the warnings topic. Sharded, the stations of partitions that move are emptied, and
//! partitions gained beside kept ones are merged by a clock of their own, capped at the kept
//! clock's last tick, until they have caught up and join it. A blocking thread
//! polls librdkafka, decodes the records and hands them, and the partitions that caught up with
//! their log, over a channel of capacity one; the applier buffers them in [`EventClock`], which
//! decides what to apply and when a tick is due, and bounds the buffer. Unsharded, up to
//! `IN_FLIGHT_BATCHES` batches are with the stations while the applier merges the next ones;
//! their outcomes are settled (dead letters, offsets, counts) in order.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::concurrency::OneshotReceiver;
use ractor::ActorRef;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::topic_partition_list::TopicPartitionListElem;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tianshan_actors::ask::{await_reply, reply_port};
use tianshan_actors::station::Envelope;
use tianshan_actors::station_supervisor::StationSupervisorMsg;
use tianshan_core::event_clock::{EventClock, Release};
use tianshan_core::observation::{Observation, Outcome, RejectReason};
use tianshan_core::time::EventTime;
use tianshan_proto::codec::decode_observation;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::assignment::{Assignment, RewindCheck, SharedAssignment, SourceContext, TopicPartition};
use crate::config::{KafkaConfig, PipelineConfig};
use crate::dead_letters::{DeadLetter, DeadLetterWriter};
use crate::error::PipelineError;
use crate::final_commit::commit_at_shutdown;
use crate::sharded_ticks::ShardedTicks;
use crate::stop_signal::StopSignal;
use crate::telemetry::Metrics;

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

/// What the poll thread saw, in order.
enum Polled {
    /// A record, decoded, and the assignment generation it was read under.
    Record(PendingRecord, u64),
    /// The partition is caught up with its log, seen under that assignment generation.
    End(TopicPartition, u64),
}

/// The event-time merge of some of the source's partitions.
type Clock = EventClock<TopicPartition, PendingRecord>;

/// A record waiting in the event-time merge, decoded once by the poll thread (in parallel with
/// the applier).
struct PendingRecord {
    raw: RawRecord,
    decoded: Result<Observation, String>,
}

impl PendingRecord {
    fn decode(raw: RawRecord) -> Self {
        let decoded = decode_observation(raw.content_type.as_deref(), &raw.payload)
            .map_err(|e| e.to_string());
        Self { raw, decoded }
    }

    /// Where the record goes in the event-time merge: its observation's time, or `None` when it
    /// is malformed. A reading cannot be ordered after it was sent: a clock far ahead must not
    /// hold its partition back (its station rejects it anyway).
    fn event_time(&self) -> Option<EventTime> {
        self.decoded
            .as_ref()
            .ok()
            .map(|o| match self.raw.timestamp_ms {
                Some(sent) => o.event_time.min(EventTime(sent)),
                None => o.event_time,
            })
    }
}

/// A running source; [`ObservationSource::stop`] stops it and commits, dropping it only stops its
/// polling.
pub struct ObservationSource {
    assignment: SharedAssignment,
    stop: StopSignal,
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
        sharded: Option<ShardedTicks>,
    ) -> Result<Self, PipelineError> {
        let assignment = SharedAssignment::default();
        metrics.set_rebuilt("observations", false);
        let context = SourceContext::new("observations", assignment.clone(), metrics.clone());
        let session_ms = tianshan_core::time::parse_duration_ms(&kafka.session_timeout)
            .map_err(PipelineError::Setup)?;
        let fetch_wait_ms = kafka.fetch_wait_max_ms().map_err(PipelineError::Setup)?;
        let consumer: BaseConsumer<SourceContext> = ClientConfig::new()
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("client.id", &kafka.client_id)
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
            .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
            .set("statistics.interval.ms", "5000")
            .set("queued.max.messages.kbytes", "16384")
            // librdkafka's default stops fetching a partition for 1 s once that queue is full,
            // which left the applier starved half of a busy run (BENCHMARKS.md, Kafka end to end).
            .set("fetch.queue.backoff.ms", "10")
            .set("enable.partition.eof", "true")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(context)
            .map_err(|e| PipelineError::kafka("create the observation consumer", e))?;
        consumer
            .subscribe(&kafka.topics.observation_topics())
            .map_err(|e| PipelineError::kafka("subscribe to the observation topics", e))?;
        let consumer = Arc::new(consumer);
        let stop = StopSignal::default();
        let (batches, receiver) = mpsc::channel(1);
        let poll_thread = {
            let (consumer, stop, max_batch) = (consumer.clone(), stop.flag(), pipeline.max_batch);
            let assignment = assignment.clone();
            tokio::task::spawn_blocking(move || {
                poll_loop(&consumer, &stop, max_batch, &assignment, &batches)
            })
        };
        let tick_ms = pipeline.tick_ms().map_err(PipelineError::Setup)?;
        let idle_after_ms = pipeline
            .partition_idle_after_ms()
            .map_err(PipelineError::Setup)?;
        let applier = Applier {
            consumer,
            stations,
            dead_letters,
            metrics,
            assignment: assignment.clone(),
            current: Assignment::default(),
            clock: EventClock::new(tick_ms, idle_after_ms, pipeline.max_buffered),
            rebuilds: Vec::new(),
            tick_ms,
            sharded,
            max_batch: pipeline.max_batch,
            in_flight: VecDeque::new(),
            started: Instant::now(),
        };
        let apply_task = tokio::spawn(async move {
            let result = applier.run(receiver).await;
            if let Err(e) = &result {
                error!(error = %e, "observation source stopped: this node no longer applies observations");
            }
            result
        });
        Ok(Self {
            assignment,
            stop,
            poll_thread,
            apply_task,
        })
    }

    /// The observation partitions assigned to this node now, in order.
    pub fn assigned_partitions(&self) -> Vec<TopicPartition> {
        self.assignment.partitions()
    }

    /// Stops polling, lets the batch in hand finish, and commits the stored offsets.
    ///
    /// # Errors
    /// Returns the error that stopped the apply loop, if any.
    pub async fn stop(self) -> Result<(), PipelineError> {
        self.stop.raise();
        let _ = self.poll_thread.await;
        match self.apply_task.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Actor(format!("apply loop panicked: {e}"))),
        }
    }
}

/// Processing time between two empty hand-overs when nothing arrives, so the applier can notice
/// partitions turning idle.
const HEARTBEAT: Duration = Duration::from_millis(100);

fn poll_loop(
    consumer: &BaseConsumer<SourceContext>,
    stop: &AtomicBool,
    max_batch: usize,
    assignment: &SharedAssignment,
    batches: &mpsc::Sender<Vec<Polled>>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut last_handover = Instant::now();
    let mut last_full_check = Instant::now();
    let mut rewind = RewindCheck::default();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message))
                if !rewind.admit(
                    consumer,
                    assignment,
                    message.topic(),
                    message.partition(),
                    message.offset(),
                ) => {}
            Some(Ok(message)) => {
                let content_type = message
                    .headers()
                    .and_then(|h| {
                        h.iter()
                            .find(|header| header.key.eq_ignore_ascii_case("content-type"))
                    })
                    .and_then(|header| header.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                // A rebalance runs inside `poll`, so this is the generation of this record.
                let read_under = assignment.generation();
                let raw = RawRecord {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    content_type,
                    timestamp_ms: message.timestamp().to_millis(),
                };
                batch.push(Polled::Record(PendingRecord::decode(raw), read_under));
                if batch.len() < max_batch {
                    continue;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                report_ended(consumer, assignment, Some(partition), &mut batch);
            }
            Some(Err(e)) => warn!(error = %e, "kafka consumer error"),
            None => {}
        }
        if last_full_check.elapsed() >= HEARTBEAT {
            report_ended(consumer, assignment, None, &mut batch);
            last_full_check = Instant::now();
        }
        if !batch.is_empty() {
            let polled = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
            if batches.blocking_send(polled).is_err() {
                return;
            }
            last_handover = Instant::now();
        } else if last_handover.elapsed() >= HEARTBEAT {
            if let Err(mpsc::error::TrySendError::Closed(_)) = batches.try_send(Vec::new()) {
                return;
            }
            last_handover = Instant::now();
        }
    }
    if !batch.is_empty() {
        let _ = batches.blocking_send(batch);
    }
}

/// Adds an end to `batch` for every assigned partition numbered `number` (every one with `None`)
/// that is read to its end. The end-of-partition event names no topic, so it checks each
/// topic's partition of that number. A node's partitions of one number need not be of every
/// topic (the cooperative assignor does not keep topics co-partitioned), and a partition that
/// ended before the stream started is judged again from the first record (see [`EventClock`]),
/// so every partition is also checked every [`HEARTBEAT`].
fn report_ended(
    consumer: &BaseConsumer<SourceContext>,
    assignment: &SharedAssignment,
    number: Option<i32>,
    batch: &mut Vec<Polled>,
) {
    let read_under = assignment.generation();
    let (Ok(assigned), Ok(positions)) = (consumer.assignment(), consumer.position()) else {
        return;
    };
    for element in assigned.elements() {
        if number.is_none_or(|n| n == element.partition()) && at_end(consumer, &positions, &element)
        {
            batch.push(Polled::End(
                (element.topic().to_string(), element.partition()),
                read_under,
            ));
        }
    }
}

/// Returns whether the application has read everything the broker holds in this partition:
/// its position is at the high watermark librdkafka cached from the latest fetch.
/// `positions` are the consumer's positions.
fn at_end(
    consumer: &BaseConsumer<SourceContext>,
    positions: &TopicPartitionList,
    element: &TopicPartitionListElem<'_>,
) -> bool {
    let Ok(topic) = CString::new(element.topic()) else {
        return false;
    };
    let position = positions
        .find_partition(element.topic(), element.partition())
        .map(|p| p.offset());
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the client pointer is valid while `consumer` is borrowed, `topic` is a
    // NUL-terminated string that outlives the call, and `low`/`high` are valid out-pointers.
    // rd_kafka_get_watermark_offsets only reads librdkafka's local cache (no broker request).
    #[allow(unsafe_code)]
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            element.partition(),
            &raw mut low,
            &raw mut high,
        )
    };
    if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
        return false;
    }
    // Nothing consumed yet: the source rewound to the beginning, so it stands at the low mark.
    let position = match position {
        Some(Offset::Offset(offset)) => offset,
        _ => low,
    };
    position >= high
}

/// Per partition of `current` holding records in `clock`, whether the next one it applies is a
/// re-read one (below the committed offset): whoever first read it applied it, so every tick
/// before it was finished then.
fn next_is_reread<'a>(
    current: &'a Assignment,
    clock: &'a Clock,
) -> impl Iterator<Item = (&'a TopicPartition, bool)> {
    current
        .live_from
        .iter()
        .filter_map(|(partition, live_from)| {
            let next = clock.head(partition)?;
            Some((partition, next.raw.offset < *live_from))
        })
}

/// Whether every partition of `clock` holding records holds a re-read one next (and one does):
/// the ticks those wait for were finished by whoever first read them, so partitions at their end
/// need not hold them back for `partition-idle-after`.
fn only_rereads_buffered(current: &Assignment, clock: &Clock) -> bool {
    let mut any = false;
    for (_, reread) in next_is_reread(current, clock) {
        if !reread {
            return false;
        }
        any = true;
    }
    any
}

/// Unsettled batches kept after a dispatch while the applier merges the next ones (one more is
/// briefly out before the oldest is settled); the supervisor applies them one at a time, in
/// order.
const IN_FLIGHT_BATCHES: usize = 4;

/// A batch handed to the stations whose outcomes are still to come.
struct InFlight {
    /// The assignment generation it was applied under.
    generation: u64,
    records: Vec<RawRecord>,
    /// Per record: read past the committed offset (not a rebuild re-read).
    live: Vec<bool>,
    /// Per record: forwarded to a chain's owner (sharded).
    forwarded: Vec<bool>,
    /// Per record: decided already (malformed, forwarded), or to come from the stations.
    outcomes: Vec<Option<Outcome>>,
    /// The records the stations decide, in the order of their reply.
    envelope_slots: Vec<usize>,
    reply: OneshotReceiver<Vec<Outcome>>,
    started: Instant,
}

/// The async half: merges partitions in event time, applies records and releases ticks.
struct Applier {
    consumer: Arc<BaseConsumer<SourceContext>>,
    stations: ActorRef<StationSupervisorMsg>,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    /// The consumer's assignment, changed by rebalances inside `poll`.
    assignment: SharedAssignment,
    /// The assignment the clocks and the stations follow now.
    current: Assignment,
    /// The merge of the partitions this node kept (all of them, unless some are being rebuilt).
    clock: Clock,
    /// Sharded: merges of partitions gained beside kept ones, each re-reading its partitions'
    /// logs capped at `clock`'s last tick, until it stands there and hands them over to `clock`.
    rebuilds: Vec<Clock>,
    tick_ms: i64,
    /// Sharded: chain readings and tick summaries go on through Kafka instead of to local actors.
    sharded: Option<ShardedTicks>,
    max_batch: usize,
    /// Batches handed to the stations, oldest first.
    in_flight: VecDeque<InFlight>,
    started: Instant,
}

impl Applier {
    async fn run(mut self, mut receiver: mpsc::Receiver<Vec<Polled>>) -> Result<(), PipelineError> {
        loop {
            // New records first: the stations apply the batches in flight meanwhile. With
            // nothing to read, settle the oldest batch in flight, then look again.
            let polled = if self.in_flight.is_empty() {
                receiver.recv().await
            } else {
                match receiver.try_recv() {
                    Ok(polled) => Some(polled),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.settle_oldest().await?;
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            let Some(polled) = polled else { break };
            self.follow_assignment().await?;
            let now_ms = self.now_ms();
            for event in polled {
                match event {
                    Polled::Record(record, read_under) => {
                        let key = (record.raw.topic.clone(), record.raw.partition);
                        if self.current.holds(&key, read_under) {
                            let event_time = record.event_time();
                            self.clock_of(&key).push(&key, event_time, record);
                        }
                    }
                    Polled::End(partition, read_under) => {
                        if self.current.holds(&partition, read_under) {
                            self.clock_of(&partition).reached_end(&partition, now_ms);
                        }
                    }
                }
                // Otherwise read before its partition was rewound (the record comes again) or
                // taken away by a rebalance.
            }
            self.drain().await?;
        }
        self.settle_all().await?;
        commit_at_shutdown(self.consumer.as_ref(), "commit offsets at shutdown")
    }

    /// The clock that merges `partition`: a rebuilding one, or else the kept one.
    fn clock_of(&mut self, partition: &TopicPartition) -> &mut Clock {
        match self.rebuilds.iter().position(|c| c.tracks(partition)) {
            Some(index) => &mut self.rebuilds[index],
            None => &mut self.clock,
        }
    }

    /// Adopts the consumer's assignment when it changed. The partitions kept through the change
    /// keep their place and what they buffered; those revoked are dropped with what they
    /// buffered (their new owner reads it), and those given are rewound, so they come from the
    /// start of their log. Sharded, the stations' state follows the assignment too: the
    /// stations of every partition that moved are emptied, and the given partitions are merged
    /// by a rebuilding clock of their own until they catch up with the kept ones; their ticks
    /// are released again (whose summaries and markers rebuild the basins' owners). With
    /// nothing kept, everything starts over from the start of the log.
    async fn follow_assignment(&mut self) -> Result<(), PipelineError> {
        let now = self.assignment.snapshot();
        if now.generation == self.current.generation {
            return Ok(());
        }
        // The outcomes of what was applied under the old assignment still count; a revoked
        // partition's offsets are left to its new owner.
        self.settle_all().await?;
        let before = self.current.partitions();
        let kept: Vec<TopicPartition> = before
            .iter()
            .filter(|p| self.current.kept_in(&now, p))
            .cloned()
            .collect();
        let gained: Vec<TopicPartition> = now
            .partitions()
            .into_iter()
            .filter(|p| !kept.contains(p))
            .collect();
        let moved: Vec<TopicPartition> = before
            .into_iter()
            .filter(|p| !kept.contains(p))
            .chain(gained.iter().cloned())
            .collect();
        let mut dropped = 0;
        for clock in std::iter::once(&mut self.clock).chain(&mut self.rebuilds) {
            let staying: Vec<TopicPartition> = clock
                .partitions()
                .into_iter()
                .filter(|p| kept.contains(p))
                .collect();
            dropped += clock.assign(&staying).len();
        }
        self.rebuilds.retain(|clock| !clock.partitions().is_empty());
        debug!(
            records = dropped,
            kept = kept.len(),
            moved = moved.len(),
            generation = now.generation,
            "assignment changed: records buffered for moved partitions dropped"
        );
        if let Some(sharded) = &self.sharded {
            // The stations to empty: every one with nothing kept, else those that moved.
            let only = if kept.is_empty() {
                self.clock.restart();
                self.clock.assign(&gained);
                None
            } else {
                let stations = sharded.all_stations_on(&moved);
                if !gained.is_empty() {
                    if self.clock.last_tick().is_some() {
                        let mut rebuild = self.clock.new_like();
                        rebuild.assign(&gained);
                        self.rebuilds.push(rebuild);
                    } else {
                        // Nothing ticked yet: merged from the start, as if given together.
                        let mut all = self.clock.partitions();
                        all.extend(gained.iter().cloned());
                        self.clock.assign(&all);
                    }
                }
                Some(stations)
            };
            if !moved.is_empty() {
                let (port, receiver) = reply_port();
                let reset = match only {
                    Some(stations) => StationSupervisorMsg::ResetSome(stations, port),
                    None => StationSupervisorMsg::Reset(port),
                };
                self.stations.cast(reset).map_err(|e| {
                    PipelineError::Actor(format!("station supervisor is gone: {e}"))
                })?;
                await_reply(receiver, "reset stations")
                    .await
                    .map_err(|e| PipelineError::Actor(e.to_string()))?;
            }
        } else {
            self.clock.assign(&now.partitions());
        }
        if !gained.is_empty() {
            info!(
                kept = kept.len(),
                gained = gained.len(),
                rebuilding_beside_kept = self.rebuilds.len(),
                "observation partitions gained; re-reading their logs"
            );
        }
        self.current = now;
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Applies and ticks as far as the merges allow: the rebuilding clocks up to the kept
    /// clock's last tick (handing their partitions over once they stand there), then the kept
    /// clock, and again while the kept clock's ticks let a rebuilding one go further.
    async fn drain(&mut self) -> Result<(), PipelineError> {
        loop {
            let cap = self.clock.last_tick();
            let mut rebuilds = std::mem::take(&mut self.rebuilds);
            for rebuild in &mut rebuilds {
                let ran = self.run_clock(rebuild, cap).await;
                if ran.is_err() {
                    self.rebuilds = rebuilds;
                    return ran;
                }
            }
            rebuilds.retain_mut(|rebuild| {
                if rebuild.last_tick() != cap {
                    return true;
                }
                info!(
                    partitions = rebuild.partitions().len(),
                    tick = ?cap,
                    "gained observation partitions caught up with the kept ones; merged with them"
                );
                rebuild.hand_over_to(&mut self.clock);
                false
            });
            self.rebuilds = rebuilds;
            let placeholder = self.clock.new_like();
            let mut kept = std::mem::replace(&mut self.clock, placeholder);
            let ran = self.run_clock(&mut kept, None).await;
            self.clock = kept;
            ran?;
            if self.rebuilds.is_empty() || self.clock.last_tick() == cap {
                break;
            }
        }
        let buffered =
            self.clock.buffered() + self.rebuilds.iter().map(Clock::buffered).sum::<usize>();
        self.metrics.set_buffered(buffered);
        self.metrics
            .set_caught_up(self.rebuilds.is_empty() && self.clock.caught_up(self.now_ms()));
        Ok(())
    }

    /// Applies and ticks `clock` as far as its merge allows, releasing no tick past `cap` (a
    /// rebuilding clock's).
    async fn run_clock(
        &mut self,
        clock: &mut Clock,
        cap: Option<EventTime>,
    ) -> Result<(), PipelineError> {
        loop {
            if only_rereads_buffered(&self.current, clock) {
                clock.idle_ended_partitions(self.now_ms());
            }
            let Some(step) = clock.next_capped(self.now_ms(), self.max_batch, cap) else {
                if tracing::enabled!(tracing::Level::TRACE) {
                    let waiting: Vec<_> = clock.holding_back(self.now_ms()).collect();
                    tracing::trace!(?waiting, buffered = clock.buffered(), ?cap, "waiting");
                }
                return Ok(());
            };
            match step {
                Release::Apply(batch) => {
                    let before_tick = clock
                        .last_tick()
                        .map_or(EventTime(0), |last| last.plus_ms(self.tick_ms));
                    self.dispatch(batch, before_tick).await?;
                    // Sharded, forwarded readings and tick markers leave through Kafka in order,
                    // so each batch is settled before the next step; otherwise the supervisor's
                    // mailbox keeps batches and ticks in order while outcomes come back.
                    let depth = if self.sharded.is_some() {
                        0
                    } else {
                        IN_FLIGHT_BATCHES
                    };
                    while self.in_flight.len() > depth {
                        self.settle_oldest().await?;
                    }
                }
                Release::Tick(tick) => {
                    debug!(%tick, rebuilding = cap.is_some(), "tick released");
                    if let Some(sharded) = &mut self.sharded {
                        // The marker speaks for the partitions this clock merges, never for
                        // ones another clock is rebuilding.
                        let merged = clock.partitions();
                        // Whoever first read a partition's next record, a re-read one lying
                        // past this tick, finished the tick for that partition before applying
                        // it; the tick is only still to finish for the other partitions.
                        let finished: BTreeSet<&TopicPartition> =
                            next_is_reread(&self.current, clock)
                                .filter_map(|(partition, reread)| reread.then_some(partition))
                                .collect();
                        let unfinished: Vec<TopicPartition> = merged
                            .iter()
                            .filter(|partition| !finished.contains(partition))
                            .cloned()
                            .collect();
                        sharded
                            .finish_tick(tick, &merged, &unfinished, &self.stations)
                            .await?;
                    } else {
                        self.stations
                            .cast(StationSupervisorMsg::Tick(tick))
                            .map_err(|e| {
                                PipelineError::Actor(format!("station supervisor is gone: {e}"))
                            })?;
                    }
                    if cap.is_none() {
                        self.metrics.set_watermark_ms(tick.millis());
                    }
                }
            }
        }
    }

    /// Hands a batch to the stations (and, sharded, forwards its chain readings) without
    /// waiting for the outcomes: [`Applier::settle_oldest`] takes them in order.
    async fn dispatch(
        &mut self,
        batch: Vec<PendingRecord>,
        before_tick: EventTime,
    ) -> Result<(), PipelineError> {
        let started = Instant::now();
        let live: Vec<bool> = batch
            .iter()
            .map(|r| {
                self.current
                    .is_live(&r.raw.topic, r.raw.partition, r.raw.offset)
            })
            .collect();
        self.metrics
            .observations_received(live.iter().filter(|l| **l).count());
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::new();
        let mut envelope_slots = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        // Sharded: chain readings go on to the chain's owner, which decides them.
        let mut forwarded = vec![false; batch.len()];
        let mut to_forward = Vec::new();
        for (index, pending) in batch.into_iter().enumerate() {
            match pending.decoded {
                Ok(observation) => {
                    let received_at = EventTime(
                        pending
                            .raw
                            .timestamp_ms
                            .unwrap_or(observation.event_time.millis()),
                    );
                    let envelope = Envelope {
                        observation,
                        received_at,
                    };
                    let chain = self
                        .sharded
                        .as_ref()
                        .and_then(|_| ShardedTicks::chain_of(&envelope.observation.reading));
                    if let Some(chain) = chain {
                        // A rebuild re-read needs no forwarding: the chain's owner rebuilds
                        // from the basin-updates topic.
                        if live[index] {
                            forwarded[index] = true;
                            let source = (pending.raw.topic.clone(), pending.raw.partition);
                            to_forward.push((chain, envelope, source, pending.raw.offset));
                        }
                        outcomes.push(Some(Outcome::Applied));
                    } else {
                        envelopes.push(envelope);
                        envelope_slots.push(index);
                        outcomes.push(None);
                    }
                }
                Err(e) => outcomes.push(Some(Outcome::rejected(RejectReason::Malformed, e))),
            }
            records.push(pending.raw);
        }
        let (port, reply) = reply_port();
        self.stations
            .cast(StationSupervisorMsg::ApplyBatch(envelopes, port))
            .map_err(|e| PipelineError::Actor(format!("station supervisor is gone: {e}")))?;
        if let (Some(sharded), false) = (&self.sharded, to_forward.is_empty()) {
            sharded.forward(before_tick, to_forward).await?;
        }
        self.in_flight.push_back(InFlight {
            generation: self.current.generation,
            records,
            live,
            forwarded,
            outcomes,
            envelope_slots,
            reply,
            started,
        });
        Ok(())
    }

    /// Settles every batch in flight.
    async fn settle_all(&mut self) -> Result<(), PipelineError> {
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    /// Awaits the outcomes of the oldest batch in flight, sends its rejections to the dead
    /// letters, stores its offsets and counts it.
    async fn settle_oldest(&mut self) -> Result<(), PipelineError> {
        let Some(batch) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let InFlight {
            generation,
            records,
            live,
            forwarded,
            mut outcomes,
            envelope_slots,
            reply,
            started,
        } = batch;
        let applied = await_reply(reply, "apply batch")
            .await
            .map_err(|e| PipelineError::Actor(e.to_string()))?;
        for (slot, outcome) in envelope_slots.into_iter().zip(applied) {
            outcomes[slot] = Some(outcome);
        }
        let taken_in = records
            .iter()
            .map(|r| (r.topic.as_str(), r.partition, r.offset));
        if self.assignment.took_in(generation, taken_in) {
            info!("observation partitions rebuilt: this node's stations are up to date");
            self.metrics.set_rebuilt("observations", true);
        }
        let mut letters = Vec::new();
        let mut applied_live = 0;
        let mut forwarded_live = 0;
        let mut rebuilt = 0;
        // The offset after the last live record of each partition, for the next commit.
        let mut newest_live: Vec<&RawRecord> = Vec::new();
        for (((record, outcome), is_live), is_forwarded) in
            records.iter().zip(outcomes).zip(&live).zip(&forwarded)
        {
            let outcome = outcome
                .ok_or_else(|| PipelineError::Actor("an observation got no outcome".into()))?;
            if !is_live {
                // Rebuild records lie below the committed offset: storing theirs would move it
                // back.
                rebuilt += 1;
                continue;
            }
            match newest_live
                .iter_mut()
                .find(|r| r.partition == record.partition && r.topic == record.topic)
            {
                Some(newest) => *newest = record,
                None => newest_live.push(record),
            }
            if *is_forwarded {
                forwarded_live += 1;
                continue;
            }
            match outcome {
                Outcome::Applied => applied_live += 1,
                Outcome::Rejected { reason, detail } => {
                    debug!(topic = %record.topic, partition = record.partition, offset = record.offset, reason = reason.code(), detail = %detail, "observation rejected");
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
        for record in newest_live {
            self.store_offset(record)?;
        }
        self.metrics.observations_rebuilt(rebuilt);
        self.metrics.observations_applied(applied_live);
        self.metrics.observations_forwarded(forwarded_live);
        for letter in &letters {
            self.metrics.dead_letter_written();
            self.metrics.observation_rejected(letter.reason);
        }
        self.metrics
            .observe_batch_latency(started.elapsed().as_secs_f64());
        debug!(
            records = records.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch applied"
        );
        Ok(())
    }

    /// Stores the offset after `record` for the next commit. A partition revoked while its batch
    /// was being applied is no longer ours: its new owner reads the record again, so that is
    /// not an error.
    fn store_offset(&self, record: &RawRecord) -> Result<(), PipelineError> {
        // librdkafka's rd_kafka_offset_store commits the given offset + 1 (the next to read).
        match self
            .consumer
            .store_offset(&record.topic, record.partition, record.offset)
        {
            Ok(()) => Ok(()),
            Err(KafkaError::StoreOffset(
                RDKafkaErrorCode::State | RDKafkaErrorCode::UnknownPartition,
            )) => {
                debug!(topic = %record.topic, partition = record.partition, "partition revoked during its batch; offset left to the new owner");
                Ok(())
            }
            Err(e) => Err(PipelineError::kafka("store an offset", e)),
        }
    }
}
