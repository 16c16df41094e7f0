//! Replay: observations from a file through the same actors and models as the live path, in
//! event time and as fast as the actors go, without Kafka. The event-time merge and the ticks
//! are the live source's ([`EventClock`]), over a single ordered stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorRef};
use tianshan_actors::station::Envelope;
use tianshan_actors::station_supervisor::StationSupervisorMsg;
use tianshan_actors::warning_log::{WarningLog, WarningLogMsg};
use tianshan_core::event_clock::{EventClock, Release};
use tianshan_core::observation::{Observation, Outcome, Reading, RejectReason};
use tianshan_core::region::Region;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::EventTime;
use tianshan_core::warning::WarningEvent;

use tianshan_proto::codec::decode_observation;

use crate::error::PipelineError;
use crate::gateway::GatewayRecord;
use crate::model_actors::{actor_error, ask, ModelActors};
use crate::node_pipeline::PipelineSettings;

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Observations read.
    pub observations: u64,
    /// Observations the stations applied.
    pub applied: u64,
    /// Observations rejected, by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Event time and depth of every rejected rainfall reading, to reconcile rain totals.
    pub rejected_rainfall: Vec<(EventTime, f64)>,
    /// Every warning version issued, in order.
    pub warnings: Vec<WarningEvent>,
    /// Wall time from the first observation to the last warning.
    pub elapsed: Duration,
}

impl ReplayReport {
    /// Returns observations per second of wall time.
    pub fn observations_per_second(&self) -> f64 {
        self.observations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Returns an observation file's observations as the replay's ordered streams: one stream per
/// kind and station (as on Kafka), each observation received at its event time.
pub fn file_envelopes(observations: Vec<Observation>) -> Vec<(String, Envelope)> {
    observations
        .into_iter()
        .map(|observation| {
            let stream = format!("{}/{}", observation.reading.kind(), observation.station);
            let received_at = observation.event_time;
            (
                stream,
                Envelope {
                    observation,
                    received_at,
                },
            )
        })
        .collect()
}

/// Returns a gateway's records (the storm scenario's, say) as the replay's ordered streams: one
/// per topic and key, each observation received at the record's timestamp, as the live source
/// would see them; with the number of records that do not decode (the live path's dead letters).
pub fn record_envelopes(records: &[GatewayRecord]) -> (Vec<(String, Envelope)>, usize) {
    let mut malformed = 0;
    let mut envelopes = Vec::with_capacity(records.len());
    for record in records {
        match decode_observation(record.content_type, &record.payload) {
            Ok(observation) => envelopes.push((
                format!("{}/{}", record.topic, record.key),
                Envelope {
                    observation,
                    received_at: record.timestamp,
                },
            )),
            Err(_) => malformed += 1,
        }
    }
    (envelopes, malformed)
}

/// Runs `envelopes` through a fresh set of actors of `region` to the end and returns the report.
///
/// # Errors
/// Returns [`PipelineError`] for a bad setting or an actor that does not start or answer.
pub async fn replay_all(
    settings: &PipelineSettings,
    region: Arc<Region>,
    envelopes: Vec<(String, Envelope)>,
) -> Result<ReplayReport, PipelineError> {
    let mut replay = Replay::start(settings, region).await?;
    replay.push_file(envelopes).await?;
    let (report, _) = replay.finish(None).await?;
    Ok(report)
}

/// A running replay: push observations in file order, then [`Replay::finish`].
pub struct Replay {
    models: ModelActors,
    log: ActorRef<WarningLogMsg>,
    clock: EventClock<String, Envelope>,
    max_batch: usize,
    report: ReplayReport,
    started: Instant,
}

impl Replay {
    /// Starts the actors of `region` with the node's settings.
    ///
    /// # Errors
    /// Returns [`PipelineError`] for a bad tick setting or an actor that does not start.
    pub async fn start(
        settings: &PipelineSettings,
        region: Arc<Region>,
    ) -> Result<Self, PipelineError> {
        let tick_ms = settings.pipeline.tick_ms().map_err(PipelineError::Setup)?;
        let (log, _) = Actor::spawn(None, WarningLog, ())
            .await
            .map_err(|e| actor_error("start the warning log", e))?;
        let models = ModelActors::start(settings, region, log.get_derived()).await?;
        let max_batch = settings.pipeline.max_batch;
        Ok(Self {
            models,
            log,
            // Each stream is ordered; a stream only holds the others back while its buffer is
            // empty and the file is not over.
            clock: EventClock::new(tick_ms, 0, usize::MAX),
            max_batch,
            report: ReplayReport::default(),
            started: Instant::now(),
        })
    }

    /// Returns the running actors, to snapshot their state before [`Replay::finish`].
    pub fn models(&self) -> &ModelActors {
        &self.models
    }

    /// Adds the next observation of the file to its ordered `stream` (one per station and kind
    /// as on Kafka, where each station keeps its order; one for a file that is sorted as a
    /// whole); applies a batch whenever one is full and the streams allow it.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn push(&mut self, stream: &str, envelope: Envelope) -> Result<(), PipelineError> {
        if self.report.observations == 0 {
            self.started = Instant::now();
        }
        self.report.observations += 1;
        let event_time = envelope.observation.event_time.min(envelope.received_at);
        self.clock.push(stream, Some(event_time), envelope);
        if self.clock.buffered() >= self.max_batch {
            self.drain().await?;
        }
        Ok(())
    }

    /// Says that `stream` has no more records, so it stops holding the others back once its
    /// buffer is empty (without it, a stream that ends early holds everything until
    /// [`Replay::finish`]).
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn end_of_stream(&mut self, stream: &str) -> Result<(), PipelineError> {
        self.clock.reached_end(&stream.to_owned(), 0);
        self.drain().await
    }

    /// Pushes a whole file's observations in file order, each with its ordered stream, and
    /// ends every stream right after its last observation, so a stream that stops early never
    /// makes the replay buffer the rest of the file.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn push_file(
        &mut self,
        observations: Vec<(String, Envelope)>,
    ) -> Result<(), PipelineError> {
        let last_of_stream: HashMap<&str, usize> = observations
            .iter()
            .enumerate()
            .map(|(index, (stream, _))| (stream.as_str(), index))
            .collect();
        let ends: Vec<bool> = observations
            .iter()
            .enumerate()
            .map(|(index, (stream, _))| last_of_stream.get(stream.as_str()) == Some(&index))
            .collect();
        for ((stream, envelope), last) in observations.into_iter().zip(ends) {
            self.push(&stream, envelope).await?;
            if last {
                self.end_of_stream(&stream).await?;
            }
        }
        Ok(())
    }

    /// Applies what is buffered, runs the ticks to the end of the data and waits for every
    /// stage; the actors keep running (to snapshot them before [`Replay::finish`]).
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn settle(&mut self) -> Result<(), PipelineError> {
        self.clock.all_reached_end(0);
        self.drain().await?;
        self.models.flush().await
    }

    /// Applies what is buffered, runs the ticks to the end of the data, waits for every stage,
    /// and returns the report with the stations' summaries at `summarize_at`, if given.
    ///
    /// # Errors
    /// Returns [`PipelineError::Actor`] when an actor does not answer.
    pub async fn finish(
        mut self,
        summarize_at: Option<EventTime>,
    ) -> Result<(ReplayReport, Vec<StationSummary>), PipelineError> {
        self.settle().await?;
        self.report.warnings = ask(&self.log, WarningLogMsg::Take, "take warnings").await?;
        self.report.elapsed = self.started.elapsed();
        let summaries = match summarize_at {
            Some(time) => {
                ask(
                    &self.models.stations,
                    |port| StationSupervisorMsg::SummarizeAll(time, port),
                    "summarize stations",
                )
                .await?
            }
            None => Vec::new(),
        };
        self.models.stop();
        self.log.stop(None);
        Ok((self.report, summaries))
    }

    /// Applies everything the clock releases now as one span (see
    /// [`StationSupervisorMsg::ApplySpan`]): the batches and ticks in order, in one message.
    async fn drain(&mut self) -> Result<(), PipelineError> {
        let mut span = Vec::new();
        let mut rainfall: Vec<Option<(EventTime, f64)>> = Vec::new();
        while let Some(step) = self.clock.next(0, self.max_batch) {
            if let Release::Apply(batch) = &step {
                rainfall.extend(
                    batch
                        .iter()
                        .map(|envelope| match envelope.observation.reading {
                            Reading::Rainfall { mm, .. } => {
                                Some((envelope.observation.event_time, mm))
                            }
                            _ => None,
                        }),
                );
            }
            span.push(step);
        }
        if span.is_empty() {
            return Ok(());
        }
        let outcomes = ask(
            &self.models.stations,
            |port| StationSupervisorMsg::ApplySpan(span, port),
            "apply span",
        )
        .await?;
        for (outcome, rain) in outcomes.into_iter().zip(rainfall) {
            match outcome {
                Outcome::Applied => self.report.applied += 1,
                Outcome::Rejected { reason, .. } => {
                    *self.report.rejected.entry(reason).or_default() += 1;
                    self.report.rejected_rainfall.extend(rain);
                }
            }
        }
        Ok(())
    }
}
