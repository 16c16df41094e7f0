//! Configuration of what `pipelines` owns: the Kafka connection, topic names and batching.

use serde::{Deserialize, Serialize};
use tianshan_core::partitioner::KeyPartitioner;
use tianshan_core::time::{parse_duration_ms, MINUTE_MS};

/// Kafka connection and topics (`[kafka]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers. The demo replaces it with the embedded broker.
    pub bootstrap_servers: String,
    /// Consumer group of the observation consumers; nodes of one cluster share it.
    pub group_id: String,
    /// Consumer session timeout; a node that stops heart-beating this long loses its partitions.
    pub session_timeout: String,
    /// The `client.id` this node's consumers and producer give the broker, which names them in
    /// its logs, quotas and ACLs; give each node of a cluster its own (the Helm chart uses the
    /// pod name).
    pub client_id: String,
    /// Longest the broker may hold a fetch of partitions with nothing new (librdkafka's
    /// `fetch.wait.max.ms`). A broker answers as soon as data arrives, so this only paces idle
    /// fetches; librdkafka's mock broker (the embedded one) answers only once it is over, so on
    /// it this is also the delay of a record produced to a partition that had caught up.
    pub fetch_wait_max: String,
    /// Topic names.
    pub topics: TopicsConfig,
    /// Share the work with other nodes of the same group: each node keeps the stations of its
    /// observation partitions and sends their summaries on through `topics.basin-updates` to the
    /// owner of each basin and chain. Off: one node does everything.
    pub sharded: bool,
    /// How the gateways' Kafka client picks a station's partition (`consistent-random`,
    /// librdkafka's default, or `murmur2`, the Java client's), so a sharded node knows which
    /// stations its partitions carry.
    pub partitioner: KeyPartitioner,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "tianshan".into(),
            session_timeout: "6s".into(),
            client_id: "tianshan".into(),
            fetch_wait_max: "500ms".into(),
            topics: TopicsConfig::default(),
            sharded: false,
            partitioner: KeyPartitioner::default(),
        }
    }
}

/// Topic names (`[kafka.topics]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Rain-gauge observations.
    pub rainfall: String,
    /// Water-level observations.
    pub water_level: String,
    /// GNSS / crack-meter observations.
    pub deformation: String,
    /// Lightning strikes.
    pub lightning: String,
    /// Weather-station observations.
    pub weather: String,
    /// Warning versions (protobuf `tianshan.v1.Warning`, keyed by warning id).
    pub warnings: String,
    /// Rejected input with a `reason` header.
    pub dead_letters: String,
    /// Delivered (warning, version, recipient, subject, channel) keys, from which a starting
    /// node rebuilds its delivery dedupe. Must be created with `cleanup.policy=compact`.
    pub deliveries: String,
    /// Open acknowledgement books and the sign-off book, from which a starting node restores
    /// its escalation timers and drafts. Must be created with `cleanup.policy=compact`.
    pub state: String,
    /// CAP 1.2 alerts of other agencies (`agency_alerts`); empty: the node reads none.
    pub agency_alerts: String,
    /// Station summaries and chain inputs re-keyed by basin and chain, between the nodes of a
    /// sharded cluster (`kafka.sharded`); read by the consumer group `<group-id>.basins`.
    pub basin_updates: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            rainfall: "obs.rainfall".into(),
            water_level: "obs.water-level".into(),
            deformation: "obs.deformation".into(),
            lightning: "obs.lightning".into(),
            weather: "obs.weather".into(),
            warnings: "warnings".into(),
            dead_letters: "dead-letters".into(),
            deliveries: "dissemination.deliveries".into(),
            state: "dissemination.state".into(),
            agency_alerts: "alerts.in".into(),
            basin_updates: "basin-updates".into(),
        }
    }
}

impl TopicsConfig {
    /// Returns the observation topics the node consumes.
    pub fn observation_topics(&self) -> Vec<&str> {
        vec![
            &self.rainfall,
            &self.water_level,
            &self.deformation,
            &self.lightning,
            &self.weather,
        ]
    }
}

/// Stream processing settings (`[pipeline]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Evaluation period in event time; basins are assessed at every multiple of it (hazards.md
    /// §9.2 `tick_min` = 5 [U]). Must be a multiple of the window slot.
    pub tick: String,
    /// Most observations applied in one batch; bounds the work in flight.
    pub max_batch: usize,
    /// A partition that has caught up with its log this long (processing time) stops holding
    /// back event time for the others.
    pub partition_idle_after: String,
    /// Most observations buffered for the event-time merge across partitions; beyond it, silent
    /// partitions stop holding back event time.
    pub max_buffered: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            tick: "5m".into(),
            max_batch: 2_000,
            partition_idle_after: "1s".into(),
            max_buffered: 1_000_000,
        }
    }
}

impl PipelineConfig {
    /// Returns the tick period in milliseconds.
    ///
    /// # Errors
    /// Returns a message naming `pipeline.tick` when it is not a positive duration.
    pub fn tick_ms(&self) -> Result<i64, String> {
        match parse_duration_ms(&self.tick) {
            Ok(ms) if ms > 0 && ms % MINUTE_MS == 0 => Ok(ms),
            Ok(ms) => Err(format!(
                "pipeline.tick must be a positive whole number of minutes, got {ms} ms"
            )),
            Err(e) => Err(format!("pipeline.tick: {e}")),
        }
    }

    /// Returns the partition idleness delay in milliseconds.
    ///
    /// # Errors
    /// Returns a message naming `pipeline.partition-idle-after` when it is not a duration.
    pub fn partition_idle_after_ms(&self) -> Result<i64, String> {
        parse_duration_ms(&self.partition_idle_after)
            .map_err(|e| format!("pipeline.partition-idle-after: {e}"))
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.tick_ms()?;
        self.partition_idle_after_ms()?;
        if self.max_batch == 0 {
            return Err("pipeline.max-batch must be at least 1".into());
        }
        if self.max_buffered < self.max_batch {
            return Err(format!(
                "pipeline.max-buffered ({}) must be at least pipeline.max-batch ({})",
                self.max_buffered, self.max_batch
            ));
        }
        Ok(())
    }
}

impl KafkaConfig {
    /// Returns `fetch-wait-max` in milliseconds.
    ///
    /// # Errors
    /// Returns a message naming `kafka.fetch-wait-max` when it is not a duration.
    pub fn fetch_wait_max_ms(&self) -> Result<i64, String> {
        parse_duration_ms(&self.fetch_wait_max).map_err(|e| format!("kafka.fetch-wait-max: {e}"))
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err("kafka.bootstrap-servers must not be empty".into());
        }
        if self.group_id.trim().is_empty() {
            return Err("kafka.group-id must not be empty".into());
        }
        if self.client_id.trim().is_empty() {
            return Err("kafka.client-id must not be empty".into());
        }
        parse_duration_ms(&self.session_timeout)
            .map_err(|e| format!("kafka.session-timeout: {e}"))?;
        self.fetch_wait_max_ms()?;
        let t = &self.topics;
        for (field, name) in [
            ("rainfall", &t.rainfall),
            ("water-level", &t.water_level),
            ("deformation", &t.deformation),
            ("lightning", &t.lightning),
            ("weather", &t.weather),
            ("warnings", &t.warnings),
            ("dead-letters", &t.dead_letters),
            ("deliveries", &t.deliveries),
            ("state", &t.state),
        ] {
            if name.trim().is_empty() {
                return Err(format!("kafka.topics.{field} must not be empty"));
            }
        }
        Ok(())
    }
}
