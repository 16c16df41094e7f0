//! Village loudspeakers over MQTT 3.1.1: each delivery is a QoS 1 publish of the text (UTF-8)
//! to `tianshan/loudspeaker/<unit code>/<recipient id>`, where the loudspeaker's controller
//! subscribes and reads it out. A delivery succeeds when the broker's PUBACK for that publish
//! arrives.
//!
//! rumqttc gives no per-publish acknowledgement, only an event stream; a driver task polls it
//! and matches acknowledgements to deliveries. Publishes leave the client in the order they
//! were queued, so each `Outgoing::Publish(pkid)` event belongs to the oldest queued delivery,
//! and the `PubAck` with that packet id completes it. The session is clean: when the connection
//! drops, rumqttc forgets unacknowledged publishes, so every waiting delivery fails (retryable)
//! and the driver reconnects.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use tianshan_core::dissemination::recipients::ChannelKind;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{positive_duration_ms, Channel, ChannelError, ChannelFailure, OutboundMessage};
use crate::error::PipelineError;

/// How many publishes may wait in the client's queue before deliveries are refused.
const REQUEST_QUEUE: usize = 256;

/// Settings of the loudspeakers' broker (`[channels.loudspeakers]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 for plain MQTT).
    pub port: u16,
    /// MQTT client id; unique per node, since a broker drops the older of two equal ids.
    pub client_id: String,
    /// Keep-alive interval, e.g. `"30s"`.
    pub keep_alive: String,
    /// How long a delivery waits for the broker's PUBACK, e.g. `"5s"`.
    pub publish_timeout: String,
    /// Pause before reconnecting after the connection failed, e.g. `"1s"`.
    pub reconnect_after: String,
}

impl MqttConfig {
    /// Checks the settings; `section` names them in errors.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        self.durations(section).map(|_| ())?;
        if self.host.trim().is_empty() {
            return Err(format!("{section}.host must not be empty"));
        }
        if self.client_id.trim().is_empty() {
            return Err(format!("{section}.client-id must not be empty"));
        }
        Ok(())
    }

    /// Returns keep-alive, publish timeout and reconnect pause.
    fn durations(&self, section: &str) -> Result<(Duration, Duration, Duration), String> {
        let ms = |field: &str, text: &str| {
            positive_duration_ms(&format!("{section}.{field}"), text).map(Duration::from_millis)
        };
        Ok((
            ms("keep-alive", &self.keep_alive)?,
            ms("publish-timeout", &self.publish_timeout)?,
            ms("reconnect-after", &self.reconnect_after)?,
        ))
    }
}

/// Returns the topic of a loudspeaker, or why its ids cannot form one: MQTT topic levels must
/// not contain `/`, `+`, `#` or NUL, and must not be empty.
pub fn loudspeaker_topic(unit: &str, recipient: &str) -> Result<String, String> {
    for (what, level) in [("unit code", unit), ("recipient id", recipient)] {
        if level.is_empty() || level.contains(['/', '+', '#', '\0']) {
            return Err(format!(
                "{what} {level:?} cannot be an MQTT topic level (empty, or with / + # NUL)"
            ));
        }
    }
    Ok(format!("tianshan/loudspeaker/{unit}/{recipient}"))
}

/// The answer a waiting delivery gets: `Err` holds the reason.
type Confirmation = Result<(), String>;

/// Deliveries waiting for the broker, shared by the channel and its driver.
#[derive(Default)]
struct Waiting {
    /// Queued in the client, not yet given a packet id, oldest first.
    queued: VecDeque<oneshot::Sender<Confirmation>>,
    /// Sent, waiting for the PUBACK of their packet id.
    sent: BTreeMap<u16, oneshot::Sender<Confirmation>>,
}

impl Waiting {
    /// Fails every waiting delivery with `reason`.
    fn fail_all(&mut self, reason: &str) {
        let sent = std::mem::take(&mut self.sent).into_values();
        for waiter in self.queued.drain(..).chain(sent) {
            let _ = waiter.send(Err(reason.to_owned()));
        }
    }
}

/// Publishes deliveries to the loudspeakers' broker.
pub struct MqttChannel {
    client: AsyncClient,
    waiting: Arc<Mutex<Waiting>>,
    publish_timeout: Duration,
    driver: JoinHandle<()>,
}

impl MqttChannel {
    /// Starts the client and its driver task; the connection is made in the background and
    /// re-made after failures, so the broker may come up later.
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] for a bad setting.
    pub fn connect(config: &MqttConfig) -> Result<Self, PipelineError> {
        config
            .validate("loudspeakers")
            .map_err(PipelineError::Setup)?;
        let (keep_alive, publish_timeout, reconnect_after) = config
            .durations("loudspeakers")
            .map_err(PipelineError::Setup)?;
        let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
        options.set_keep_alive(keep_alive).set_clean_session(true);
        let (client, event_loop) = AsyncClient::new(options, REQUEST_QUEUE);
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let driver = tokio::spawn(drive(event_loop, waiting.clone(), reconnect_after));
        Ok(Self {
            client,
            waiting,
            publish_timeout,
            driver,
        })
    }

    /// Queues the publish and returns the receiver of its confirmation.
    fn queue(
        &self,
        topic: String,
        text: &str,
    ) -> Result<oneshot::Receiver<Confirmation>, ChannelFailure> {
        let (confirm, confirmation) = oneshot::channel();
        // Queuing the waiter and the publish under one lock, without awaiting, keeps the
        // waiters in the order the driver will see the publishes.
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.queued.push_back(confirm);
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, text.as_bytes())
        {
            waiting.queued.pop_back();
            return Err(ChannelFailure::Mqtt {
                detail: format!("cannot queue the publish: {e}"),
            });
        }
        Ok(confirmation)
    }
}

impl Drop for MqttChannel {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Polls the event loop until the client is dropped, confirming deliveries on PUBACK and
/// failing them when the connection fails.
async fn drive(mut event_loop: EventLoop, waiting: Arc<Mutex<Waiting>>, reconnect_after: Duration) {
    loop {
        let event = event_loop.poll().await;
        let failed = {
            let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                Ok(Event::Outgoing(Outgoing::Publish(packet_id))) => {
                    if let Some(waiter) = waiting.queued.pop_front() {
                        waiting.sent.insert(packet_id, waiter);
                    }
                    None
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(waiter) = waiting.sent.remove(&ack.pkid) {
                        let _ = waiter.send(Ok(()));
                    }
                    None
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    debug!("loudspeaker broker connected");
                    None
                }
                Ok(_) => None,
                Err(ConnectionError::RequestsDone) => return,
                Err(e) => {
                    waiting.fail_all(&format!("connection to the broker failed: {e}"));
                    Some(e)
                }
            }
        };
        if let Some(e) = failed {
            warn!(error = %e, "loudspeaker broker connection failed; reconnecting");
            tokio::time::sleep(reconnect_after).await;
        }
    }
}

#[async_trait::async_trait]
impl Channel for MqttChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Loudspeaker
    }

    /// "Delivered" means the broker acknowledged the QoS 1 publish (PUBACK) within the
    /// publish timeout: it holds the message for the loudspeaker's subscription. A delivery
    /// that timed out may still reach the broker afterwards.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        let topic = loudspeaker_topic(
            message.recipient.unit.as_str(),
            message.delivery.key.recipient.as_str(),
        )
        .map_err(|detail| ChannelError::new(message, ChannelFailure::Unsendable { detail }))?;
        let confirmation = self
            .queue(topic, &message.text)
            .map_err(|failure| ChannelError::new(message, failure))?;
        let failure = match tokio::time::timeout(self.publish_timeout, confirmation).await {
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(detail))) => ChannelFailure::Mqtt { detail },
            Ok(Err(_)) => ChannelFailure::Mqtt {
                detail: "the mqtt driver stopped".into(),
            },
            Err(_) => ChannelFailure::Timeout {
                waited_ms: u64::try_from(self.publish_timeout.as_millis()).unwrap_or(u64::MAX),
            },
        };
        Err(ChannelError::new(message, failure))
    }
}

#[cfg(test)]
mod tests;
