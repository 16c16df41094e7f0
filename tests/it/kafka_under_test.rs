//! The Kafka the storm tests run against, one fresh broker per test:
//! - by default the embedded broker (librdkafka's mock cluster);
//! - with `TIANSHAN_TEST_TANSU=<tansu binary>`, a Tansu broker process, a second and independent
//!   Kafka implementation (`.ci/run` installs it from PyPI; shared/reference/kafka-in-tests.md);
//! - with `KAFKA_BOOTSTRAP=host:port,…`, any broker: each test then names its topics and consumer
//!   groups with a prefix of its own, so tests and runs do not meet.
//!
//! Asked for, a [`BrokerProxy`] stands in front of the broker (the broker advertises it, so every
//! client goes through it), which lets a test cut one node off. An external broker advertises
//! what it was configured with, so there is no proxy in front of it.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tianshan_cluster::node_probe::free_local_port;
use tianshan_pipelines::config::{KafkaConfig, TopicsConfig};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::topic_setup::create_node_topics;

use crate::broker_proxy::BrokerProxy;

/// A broker for one test; it stops when dropped.
pub(crate) enum KafkaUnderTest {
    Embedded(EmbeddedBroker),
    Tansu { process: Child, address: String },
    External { bootstrap: String },
}

/// Whether a test wants a proxy in front of the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proxy {
    InFront,
    None,
}

impl KafkaUnderTest {
    /// Starts the broker the environment asks for, with `kafka.topics` created, and returns it
    /// with the Kafka settings a node uses on it (bootstrap, topic names and group id), and the
    /// proxy in front of it if one was asked for and can be had.
    pub(crate) fn start(proxy: Proxy) -> (Self, KafkaConfig, Option<BrokerProxy>) {
        let mut kafka = KafkaConfig::default();
        if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
            static TESTS: AtomicU32 = AtomicU32::new(0);
            let prefix = format!(
                "tianshan-test-{}-{}-{}.",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                TESTS.fetch_add(1, Ordering::Relaxed)
            );
            kafka.topics = prefixed(&kafka.topics, &prefix);
            kafka.group_id = format!("{prefix}tianshan");
            kafka.bootstrap_servers = bootstrap.clone();
            create_topics_blocking(&kafka);
            return (Self::External { bootstrap }, kafka, None);
        }
        if let Ok(tansu) = std::env::var("TIANSHAN_TEST_TANSU") {
            let port = free_port();
            let address = format!("127.0.0.1:{port}");
            let front = (proxy == Proxy::InFront)
                .then(|| BrokerProxy::start(address.parse().expect("a socket address")));
            let advertised = front
                .as_ref()
                .map_or(address.clone(), |p| p.address().to_string());
            let process = Command::new(&tansu)
                .args(["broker", "--cluster-id", "tianshan-test"])
                .arg("--listener-url")
                .arg(format!("tcp://{address}"))
                .arg("--advertised-listener-url")
                .arg(format!("tcp://{advertised}"))
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("TIANSHAN_TEST_TANSU={tansu} does not start: {e}"));
            wait_until_listening(&address);
            kafka.bootstrap_servers = advertised;
            create_topics_blocking(&kafka);
            return (Self::Tansu { process, address }, kafka, front);
        }
        let broker = EmbeddedBroker::start(1).expect("embedded broker");
        broker
            .create_node_topics(&kafka.topics)
            .expect("topics on the embedded broker");
        kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
        let front = (proxy == Proxy::InFront).then(|| {
            let front = BrokerProxy::start(
                broker
                    .bootstrap_servers()
                    .parse()
                    .expect("one broker's address"),
            );
            broker
                .advertise(1, "127.0.0.1", front.address().port())
                .expect("the broker advertises the proxy");
            front
        });
        if let Some(front) = &front {
            kafka.bootstrap_servers = front.address().to_string();
        }
        (Self::Embedded(broker), kafka, front)
    }

    /// Which broker this is, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Embedded(broker) => format!("embedded broker at {}", broker.bootstrap_servers()),
            Self::Tansu { address, .. } => format!("Tansu at {address}"),
            Self::External { bootstrap } => format!("KAFKA_BOOTSTRAP={bootstrap}"),
        }
    }
}

impl Drop for KafkaUnderTest {
    fn drop(&mut self) {
        if let Self::Tansu { process, .. } = self {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// `topics` with every name prefixed.
fn prefixed(topics: &TopicsConfig, prefix: &str) -> TopicsConfig {
    let name = |topic: &String| {
        if topic.is_empty() {
            String::new()
        } else {
            format!("{prefix}{topic}")
        }
    };
    TopicsConfig {
        rainfall: name(&topics.rainfall),
        water_level: name(&topics.water_level),
        deformation: name(&topics.deformation),
        lightning: name(&topics.lightning),
        weather: name(&topics.weather),
        warnings: name(&topics.warnings),
        dead_letters: name(&topics.dead_letters),
        deliveries: name(&topics.deliveries),
        state: name(&topics.state),
        basin_updates: name(&topics.basin_updates),
        agency_alerts: name(&topics.agency_alerts),
    }
}

/// Creates the node's topics through the admin API, on a runtime of its own (callers may be on
/// one already).
fn create_topics_blocking(kafka: &KafkaConfig) {
    let kafka = kafka.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(create_node_topics(
                &kafka.bootstrap_servers,
                &kafka.topics,
                1,
            ))
    })
    .join()
    .expect("topic creation runs")
    .expect("the broker creates the node's topics");
}

/// A free port on 127.0.0.1 (bound, then released for a broker or node to take).
pub(crate) fn free_port() -> u16 {
    free_local_port().expect("a free port")
}

fn wait_until_listening(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "the broker does not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
