//! A Kafka-protocol broker inside the process (librdkafka's mock cluster) for the demo and tests.
//! Any Kafka client can connect to its bootstrap address while the owner is alive.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::config::TopicsConfig;
use crate::error::PipelineError;
use crate::topic_setup::node_topics;

/// The embedded broker. Keep it alive as long as clients use it; it is owned by one thread.
pub struct EmbeddedBroker {
    owner: BaseProducer,
    bootstrap_servers: String,
}

impl EmbeddedBroker {
    /// Starts a mock cluster of `brokers` brokers on 127.0.0.1 with random ports.
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when librdkafka cannot create it.
    pub fn start(brokers: u8) -> Result<Self, PipelineError> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()
            .map_err(|e| PipelineError::kafka("start the embedded broker", e))?;
        disable_initial_rebalance_delay(&owner);
        let bootstrap_servers = owner
            .client()
            .mock_cluster()
            .ok_or_else(|| PipelineError::Setup("librdkafka did not create a mock cluster".into()))?
            .bootstrap_servers();
        Ok(Self {
            owner,
            bootstrap_servers,
        })
    }

    /// Returns the bootstrap address clients connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Creates a topic (the mock cluster has no admin API; this is its own call).
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when the mock cluster refuses.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), PipelineError> {
        let cluster = self
            .owner
            .client()
            .mock_cluster()
            .ok_or_else(|| PipelineError::Setup("the embedded broker is gone".into()))?;
        cluster
            .create_topic(name, partitions, 1)
            .map_err(|e| PipelineError::kafka("create a topic", e))
    }

    /// Makes broker `broker_id` (the first is 1) tell clients it is at `host:port`, such as a
    /// proxy in front of it, from the next metadata request on; it goes on listening where it
    /// was.
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] for a host with a NUL byte or a broker that is gone.
    #[allow(unsafe_code)]
    pub fn advertise(&self, broker_id: i32, host: &str, port: u16) -> Result<(), PipelineError> {
        let host = std::ffi::CString::new(host)
            .map_err(|_| PipelineError::Setup(format!("host {host:?} holds a NUL byte")))?;
        // SAFETY: `native_ptr` is the live client handle owned by `self.owner`; the mock cluster
        // it returns (or null) lives as long as that handle; the call copies `host`.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(self.owner.client().native_ptr());
            if cluster.is_null() {
                return Err(PipelineError::Setup("the embedded broker is gone".into()));
            }
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                cluster,
                broker_id,
                host.as_ptr(),
                i32::from(port),
            );
        }
        Ok(())
    }
}

impl EmbeddedBroker {
    /// Creates every topic a node uses ([`node_topics`]): rainfall, the busiest, gets 12
    /// partitions so each stays far below the mock broker's 5 MiB per-partition limit. The deliveries journal and the
    /// dissemination state would be `cleanup.policy=compact` on a real cluster; the mock cluster
    /// takes no topic configs and never compacts, so here they keep every record (their readers
    /// expect that).
    ///
    /// # Errors
    /// Returns [`PipelineError::Kafka`] when a topic cannot be created.
    pub fn create_node_topics(&self, topics: &TopicsConfig) -> Result<(), PipelineError> {
        for (name, partitions) in node_topics(topics) {
            self.create_topic(&name, partitions)?;
        }
        Ok(())
    }
}

/// The mock coordinator waits 3 s before the first group join by default; the demo and tests
/// want consumers to start at once (shared/reference/kafka-in-tests.md).
#[allow(unsafe_code)]
fn disable_initial_rebalance_delay(owner: &BaseProducer) {
    // SAFETY: `native_ptr` is the live client handle owned by `owner`; the mock cluster it
    // returns (or null) lives as long as that handle, and the call only sets an integer.
    unsafe {
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
        if !cluster.is_null() {
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
    }
}
