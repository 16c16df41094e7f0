//! Courier dedupe, and the journal restart on the embedded broker (librdkafka's mock cluster).

use std::sync::Mutex;

use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use tianshan_core::dissemination::acknowledgement::DeliveryKey;
use tianshan_core::time::HOUR_MS;

use super::*;
use crate::channels::journal::rebuild_ledger;
use crate::embedded_broker::EmbeddedBroker;
use crate::warning_publisher::read_topic;

const JOURNAL: &str = "dissemination.deliveries";

/// A channel that records the keys it delivered and fails the first `fail_first` deliveries.
struct Recorder {
    kind: ChannelKind,
    fail_first: Mutex<u32>,
    delivered: Mutex<Vec<DeliveryKey>>,
}

impl Recorder {
    fn new(kind: ChannelKind, fail_first: u32) -> Arc<Self> {
        Arc::new(Self {
            kind,
            fail_first: Mutex::new(fail_first),
            delivered: Mutex::default(),
        })
    }

    fn delivered(&self) -> Vec<DeliveryKey> {
        self.delivered.lock().expect("not poisoned").clone()
    }
}

#[async_trait::async_trait]
impl Channel for Recorder {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        let mut fail_first = self.fail_first.lock().expect("not poisoned");
        if *fail_first > 0 {
            *fail_first -= 1;
            return Err(ChannelError::new(
                message,
                ChannelFailure::Timeout { waited_ms: 1 },
            ));
        }
        let key = message.delivery.key.clone();
        self.delivered.lock().expect("not poisoned").push(key);
        Ok(())
    }
}

fn message(channel: ChannelKind, version: u32) -> OutboundMessage {
    let mut message = OutboundMessage::for_test(channel, "650102-002-v1");
    message.warning.version = version;
    message.delivery.key.version = version;
    message
}

#[tokio::test]
async fn a_key_is_delivered_once_and_failures_do_not_block_it() {
    let sms = Recorder::new(ChannelKind::Sms, 1);
    let app = Recorder::new(ChannelKind::App, 0);
    let mut courier = Courier::new(DeliveryLedger::new(100))
        .with_channel(sms.clone())
        .with_channel(app.clone());
    let at = EventTime(1_719_792_000_000);
    let first = message(ChannelKind::Sms, 1);

    assert_eq!(courier.send(&first, at).await, DeliveryOutcome::Failed);
    assert!(courier.ledger().is_empty(), "a failure is not recorded");
    assert_eq!(courier.send(&first, at).await, DeliveryOutcome::Delivered);
    assert_eq!(
        courier.send(&first, at.plus_ms(1_000)).await,
        DeliveryOutcome::Delivered,
        "the recipient has it"
    );
    assert_eq!(sms.delivered(), vec![first.delivery.key.clone()]);
    assert_eq!(courier.ledger().delivered_at(&first.delivery.key), Some(at));

    let on_app = message(ChannelKind::App, 1);
    let next_version = message(ChannelKind::Sms, 2);
    assert_eq!(courier.send(&on_app, at).await, DeliveryOutcome::Delivered);
    assert_eq!(
        courier.send(&next_version, at).await,
        DeliveryOutcome::Delivered
    );
    assert_eq!(app.delivered().len(), 1);
    assert_eq!(sms.delivered().len(), 2);

    let by_phone = message(ChannelKind::Phone, 1);
    assert_eq!(
        courier.send(&by_phone, at).await,
        DeliveryOutcome::Failed,
        "no phone channel"
    );
    assert_eq!(
        courier.totals(),
        CourierTotals {
            delivered: 3,
            failed: 2,
            duplicates_suppressed: 1,
            refused_ledger_full: 0,
            journal_failures: 0,
        }
    );
}

#[tokio::test]
async fn a_full_ledger_refuses_until_a_warning_expires() {
    let sms = Recorder::new(ChannelKind::Sms, 0);
    let mut courier = Courier::new(DeliveryLedger::new(1)).with_channel(sms.clone());
    let first = message(ChannelKind::Sms, 1);
    let expires = first.warning.expires;
    let second = message(ChannelKind::Sms, 2);
    assert_eq!(
        courier.send(&first, first.warning.issued).await,
        DeliveryOutcome::Delivered
    );
    assert_eq!(
        courier.send(&second, first.warning.issued).await,
        DeliveryOutcome::Failed
    );
    assert_eq!(sms.delivered().len(), 1, "refused before sending");
    assert_eq!(courier.totals().refused_ledger_full, 1);
    assert_eq!(
        courier.send(&second, expires).await,
        DeliveryOutcome::Delivered,
        "the first warning version expired and made room"
    );
}

fn producer(bootstrap_servers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .expect("a producer for the embedded broker")
}

async fn rebuild(bootstrap_servers: &str, now: EventTime) -> DeliveryLedger {
    let bootstrap_servers = bootstrap_servers.to_owned();
    tokio::task::spawn_blocking(move || rebuild_ledger(&bootstrap_servers, JOURNAL, 100, now))
        .await
        .expect("the reader does not panic")
        .expect("the journal is readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_courier_suppresses_what_the_journal_holds() {
    let broker = EmbeddedBroker::start(1).expect("the mock cluster starts");
    broker.create_topic(JOURNAL, 3).expect("create the journal");
    let bootstrap = broker.bootstrap_servers().to_owned();
    let first = message(ChannelKind::Sms, 1);
    let delivered_at = first.warning.issued.plus_ms(5_000);

    let before = Recorder::new(ChannelKind::Sms, 0);
    let mut courier = Courier::new(DeliveryLedger::new(100))
        .with_channel(before.clone())
        .with_journal(DeliveryJournal::new(producer(&bootstrap), JOURNAL));
    assert_eq!(
        courier.send(&first, delivered_at).await,
        DeliveryOutcome::Delivered
    );
    assert_eq!(courier.totals().journal_failures, 0);
    drop(courier);

    let journal = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, JOURNAL))
            .await
            .expect("the reader does not panic")
            .expect("the journal is readable")
    };
    assert_eq!(journal.len(), 1);
    let key: Value =
        serde_json::from_slice(journal[0].key.as_deref().expect("keyed")).expect("the key is JSON");
    assert_eq!(
        key,
        json!({
            "warning": "FF-B650102-20240701T0000Z",
            "version": 1,
            "recipient": "650102-002-v1",
            "subject": {"kind": "warning"},
            "channel": "sms",
        })
    );
    let value: Value = serde_json::from_slice(&journal[0].payload).expect("the value is JSON");
    assert_eq!(
        value,
        json!({"delivered": delivered_at.millis(), "expires": first.warning.expires.millis()})
    );

    let after = Recorder::new(ChannelKind::Sms, 0);
    let ledger = rebuild(&bootstrap, delivered_at.plus_ms(HOUR_MS)).await;
    assert_eq!(ledger.delivered_at(&first.delivery.key), Some(delivered_at));
    let mut restarted = Courier::new(ledger)
        .with_channel(after.clone())
        .with_journal(DeliveryJournal::new(producer(&bootstrap), JOURNAL));
    assert_eq!(
        restarted.send(&first, delivered_at.plus_ms(HOUR_MS)).await,
        DeliveryOutcome::Delivered
    );
    assert!(
        after.delivered().is_empty(),
        "not sent again after the restart"
    );
    assert_eq!(restarted.totals().duplicates_suppressed, 1);
    let next_version = message(ChannelKind::Sms, 2);
    assert_eq!(
        restarted.send(&next_version, delivered_at).await,
        DeliveryOutcome::Delivered
    );
    assert_eq!(after.delivered(), vec![next_version.delivery.key.clone()]);

    let after_expiry = rebuild(&bootstrap, first.warning.expires).await;
    assert!(
        after_expiry.is_empty(),
        "expired versions are not loaded: {after_expiry:?}"
    );
}
