//! A sensor gateway: turns observation files (CSV or JSON lines) or the built-in storm scenario
//! into Kafka records, keyed by station id, timestamped with the time the gateway sent them.

use std::path::Path;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::scenario::{Encoding, ObservationTopic, Scenario, ScenarioPayload};
use tianshan_core::time::EventTime;
use tianshan_proto::codec::{decode_observation, encode_observation, WireFormat};

use crate::config::TopicsConfig;
use crate::error::PipelineError;

/// One record ready to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRecord {
    /// Destination topic.
    pub topic: String,
    /// Station id.
    pub key: String,
    /// Encoded observation (or, in the scenario, deliberately broken bytes).
    pub payload: Vec<u8>,
    /// `content-type` header, when the gateway sets one.
    pub content_type: Option<&'static str>,
    /// Kafka timestamp: when the gateway sent it.
    pub timestamp: EventTime,
}

/// Returns the observation topic a reading belongs on.
pub fn topic_for<'t>(reading: &Reading, topics: &'t TopicsConfig) -> &'t str {
    match reading {
        Reading::Rainfall { .. } => &topics.rainfall,
        Reading::WaterLevel { .. } => &topics.water_level,
        Reading::Deformation { .. } => &topics.deformation,
        Reading::Lightning { .. } => &topics.lightning,
        Reading::Weather { .. } => &topics.weather,
    }
}

/// Builds the records of an observation, encoded in `format`, sent `delay_ms` after its event time.
pub fn record_for(
    obs: &Observation,
    format: WireFormat,
    topics: &TopicsConfig,
    sent_at: EventTime,
) -> GatewayRecord {
    GatewayRecord {
        topic: topic_for(&obs.reading, topics).to_string(),
        key: obs.station.to_string(),
        payload: encode_observation(obs, format),
        content_type: Some(format.content_type()),
        timestamp: sent_at,
    }
}

/// Turns the storm scenario into records, in the order the gateways send them.
pub fn scenario_records(scenario: &Scenario, topics: &TopicsConfig) -> Vec<GatewayRecord> {
    scenario
        .messages
        .iter()
        .map(|message| {
            let topic = match message.topic {
                ObservationTopic::Rainfall => &topics.rainfall,
                ObservationTopic::WaterLevel => &topics.water_level,
                ObservationTopic::Weather => &topics.weather,
                ObservationTopic::Lightning => &topics.lightning,
                ObservationTopic::Deformation => &topics.deformation,
            };
            let format = match message.encoding {
                Encoding::Protobuf => WireFormat::Protobuf,
                Encoding::Json => WireFormat::Json,
            };
            let (payload, content_type) = match &message.payload {
                ScenarioPayload::Observation(obs) => {
                    (encode_observation(obs, format), Some(format.content_type()))
                }
                // Broken bytes travel without a header, as a misbehaving gateway would send them.
                ScenarioPayload::Raw(bytes) => (bytes.clone(), None),
            };
            GatewayRecord {
                topic: topic.clone(),
                key: message.key.clone(),
                payload,
                content_type,
                timestamp: message.sent_at,
            }
        })
        .collect()
}

/// Reads an observation file: JSON lines (`.jsonl`/`.json`, one observation object per line, the
/// protobuf field names), CSV with the header
/// `station_id,event_time,gateway_id,sequence,kind,value,interval_s` where `kind` is `rainfall`
/// (value mm over `interval_s`) or `water_level` (value m) and `event_time` is RFC 3339 or epoch
/// ms, or a Parquet archive of the same columns (`.parquet`, see [`crate::archive`]).
///
/// # Errors
/// Returns [`PipelineError::Input`] naming the line (or row and column) of the first bad row.
pub fn read_observation_file(path: &Path) -> Result<Vec<Observation>, PipelineError> {
    if path.extension().and_then(|e| e.to_str()) == Some("parquet") {
        return crate::archive::read_observations_parquet(path);
    }
    let input_error = |detail: String| PipelineError::Input {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input_error(e.to_string()))?;
    let is_json = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "json" | "ndjson")
    );
    let mut observations = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || (!is_json && number == 1) {
            continue;
        }
        let obs = if is_json {
            decode_observation(Some(WireFormat::Json.content_type()), line.as_bytes())
                .map_err(|e| input_error(format!("line {number}: {e}")))?
        } else {
            parse_csv_row(line).map_err(|e| input_error(format!("line {number}: {e}")))?
        };
        observations.push(obs);
    }
    Ok(observations)
}

fn parse_csv_row(line: &str) -> Result<Observation, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [station, time, gateway, sequence, kind, value, interval] = fields[..] else {
        return Err(format!("expected 7 fields, found {}", fields.len()));
    };
    let event_time = match time.parse::<i64>() {
        Ok(ms) => EventTime(ms),
        Err(_) => EventTime::parse_rfc3339(time).map_err(|e| format!("event_time: {e}"))?,
    };
    let value: f64 = value
        .parse()
        .map_err(|_| format!("value {value:?} is not a number"))?;
    let reading = match kind {
        "rainfall" => Reading::Rainfall {
            mm: value,
            interval_s: interval
                .parse()
                .map_err(|_| format!("interval_s {interval:?} is not a whole number"))?,
        },
        "water_level" => Reading::WaterLevel { metres: value },
        other => return Err(format!("kind {other:?} is not rainfall or water_level")),
    };
    Ok(Observation {
        station: StationId::new(station),
        event_time,
        gateway: GatewayId::new(gateway),
        sequence: sequence
            .parse()
            .map_err(|_| format!("sequence {sequence:?} is not a whole number"))?,
        reading,
    })
}

/// Creates the producer a gateway uses (idempotent, so retries never duplicate a record).
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the client cannot be created.
pub fn gateway_producer(bootstrap_servers: &str) -> Result<FutureProducer, PipelineError> {
    gateway_producer_config(bootstrap_servers)
        .create()
        .map_err(|e| PipelineError::kafka("create the gateway producer", e))
}

/// The settings of [`gateway_producer`], for a caller that changes some before creating it.
pub fn gateway_producer_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    config
}

/// Produces every record and waits until the broker acknowledged all of them.
///
/// # Errors
/// Returns [`PipelineError::Kafka`] on the first record the broker refuses.
pub async fn produce_all(
    producer: &FutureProducer,
    records: &[GatewayRecord],
) -> Result<usize, PipelineError> {
    let mut sender = GatewaySender::new(producer);
    for record in records {
        sender.send(record).await?;
    }
    sender.finish().await?;
    Ok(records.len())
}

/// Hands gateway records to the producer without waiting for each acknowledgement (a paced
/// gateway sends as it goes); [`GatewaySender::finish`] waits for all of them.
pub struct GatewaySender<'p> {
    producer: &'p FutureProducer,
    pending: std::collections::VecDeque<DeliveryFuture>,
}

/// Acknowledgements a sender leaves outstanding before it waits for the oldest.
const MAX_PENDING: usize = 50_000;

impl<'p> GatewaySender<'p> {
    /// A sender over `producer`.
    pub fn new(producer: &'p FutureProducer) -> Self {
        Self {
            producer,
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Hands `record` to the producer, waiting for older acknowledgements only while its queue
    /// is full.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when the producer refuses the record or the broker an
    /// older one.
    pub async fn send(&mut self, record: &GatewayRecord) -> Result<(), PipelineError> {
        let mut headers = OwnedHeaders::new();
        if let Some(content_type) = record.content_type {
            headers = headers.insert(Header {
                key: "content-type",
                value: Some(content_type),
            });
        }
        let mut future_record = FutureRecord::to(&record.topic)
            .key(&record.key)
            .payload(&record.payload)
            .timestamp(record.timestamp.millis())
            .headers(headers);
        loop {
            match self.producer.send_result(future_record) {
                Ok(delivery) => {
                    self.pending.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    future_record = returned;
                    match self.pending.pop_front() {
                        Some(delivery) => check_delivery(delivery.await)?,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((e, _)) => return Err(PipelineError::kafka("produce an observation", e)),
            }
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(delivery) = self.pending.pop_front() {
                check_delivery(delivery.await)?;
            }
        }
        Ok(())
    }

    /// Waits until the broker acknowledged every record sent.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] on the first record the broker refused.
    pub async fn finish(self) -> Result<(), PipelineError> {
        for delivery in self.pending {
            check_delivery(delivery.await)?;
        }
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(|e| PipelineError::kafka("flush the gateway producer", e))
    }
}

fn check_delivery<Canceled>(
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, Canceled>,
) -> Result<(), PipelineError> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(PipelineError::kafka("deliver an observation", e)),
        Err(_) => Err(PipelineError::Setup(
            "the producer dropped a delivery".into(),
        )),
    }
}
