//! Dissemination channels: one [`Channel`] trait over every way a warning reaches people, the
//! channels themselves (one per file), and the [`Courier`](courier::Courier) that sends each
//! delivery at most once per (warning id, version, recipient, subject, channel), also across
//! restarts, by journaling what it delivered to a compacted Kafka topic.
//!
//! A delivery comes from the forced-acknowledgement book of `tianshan-core`
//! ([`Delivery`]); the caller turns it into an [`OutboundMessage`] (the recipient, the warning
//! version, a short zh-CN text and, for the CAP feed, the CAP XML) and hands it to the courier.
//!
//! # Layout
//! - [`log`]: one line per delivery to a writer (the demo).
//! - [`webhook`]: HTTP POST of a JSON body to an SMS (or voice) gateway.
//! - [`mqtt`]: MQTT QoS 1 publish to village loudspeakers.
//! - [`cap_feed`]: the latest CAP messages, served as an Atom feed over HTTP.
//! - [`app`]: the one-key-call app: a broadcast read by the gRPC subscriptions.
//! - [`flaky`]: seeded simulated failures around any channel.
//! - [`journal`]: the `dissemination.deliveries` topic the ledger is rebuilt from.
//! - [`courier`]: one channel per kind, the dedupe ledger and the journal.

pub mod app;
pub mod cap_feed;
pub mod courier;
pub mod flaky;
pub mod journal;
pub mod log;
pub mod mqtt;
pub mod webhook;

use serde::{Deserialize, Serialize};
use tianshan_core::dissemination::acknowledgement::Delivery;
use tianshan_core::dissemination::recipients::{ChannelKind, Recipient};
use tianshan_core::ids::RecipientId;
use tianshan_core::warning::WarningEvent;

use crate::error::{ErrorDomain, RetryHint};

/// One delivery ready to go out: who, what, and over which channel (`delivery.key.channel`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// The delivery asked for by the acknowledgement book; its key is what dedupe is keyed by.
    pub delivery: Delivery,
    /// The recipient of `delivery.key.recipient`, from the directory.
    pub recipient: Recipient,
    /// The warning version the delivery is about.
    pub warning: WarningEvent,
    /// The short zh-CN message read by people (SMS text, loudspeaker announcement, app card).
    pub text: String,
    /// The CAP 1.2 rendering of the warning version; the CAP feed needs it, others ignore it.
    pub cap_xml: Option<String>,
}

impl OutboundMessage {
    /// Returns the channel the delivery is for.
    pub fn channel(&self) -> ChannelKind {
        self.delivery.key.channel
    }
}

/// A way to hand a message to a recipient.
///
/// Implementations are protocol adapters: they do not dedupe (the
/// [`Courier`](courier::Courier) does) and do not retry (the acknowledgement book decides
/// whether to try again, and on which channel). `deliver` returns once the channel's own
/// notion of "handed over" is reached, which each implementation documents: an HTTP 2xx from
/// the gateway, an MQTT PUBACK from the broker, the message stored in the feed, the message
/// queued for the app's live subscriptions.
///
/// The trait is object-safe (`Arc<dyn Channel>`), so one courier holds channels of different
/// types.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// Returns the kind of channel this is; the courier routes deliveries of that kind here.
    fn kind(&self) -> ChannelKind;

    /// Hands `message` to its recipient.
    ///
    /// # Errors
    /// Returns a [`ChannelError`] naming the channel, the recipient and why it failed;
    /// [`ChannelError::retry_hint`] says whether trying the same channel again can help.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError>;
}

/// A shared channel is a channel, so wrappers such as
/// [`FlakyChannel`](flaky::FlakyChannel) take `Arc<dyn Channel>` too.
#[async_trait::async_trait]
impl<C: Channel + ?Sized> Channel for std::sync::Arc<C> {
    fn kind(&self) -> ChannelKind {
        (**self).kind()
    }

    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        (**self).deliver(message).await
    }
}

/// Why a channel failed one delivery.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{channel} delivery to {recipient} failed: {failure}")]
pub struct ChannelError {
    /// The channel that failed.
    pub channel: ChannelKind,
    /// Whom the delivery was for.
    pub recipient: RecipientId,
    /// What went wrong.
    pub failure: ChannelFailure,
}

/// What went wrong in a channel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelFailure {
    /// The courier has no channel of this kind.
    #[error("no channel of this kind is configured")]
    NotConfigured,
    /// The message cannot be sent on this channel as it is (no CAP rendering for the feed, an
    /// id that cannot be part of an MQTT topic).
    #[error("unsendable message: {detail}")]
    Unsendable {
        /// What is missing or wrong.
        detail: String,
    },
    /// The HTTP request could not be made or its answer not read (connection refused, reset).
    #[error("http request to {url} failed: {detail}")]
    Http {
        /// The gateway URL.
        url: String,
        /// The client error.
        detail: String,
    },
    /// The gateway answered with a status other than 2xx.
    #[error("gateway {url} answered {status}: {body}")]
    Status {
        /// The gateway URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body, for the operator.
        body: String,
    },
    /// The remote side did not confirm the delivery in time.
    #[error("no confirmation within {waited_ms} ms")]
    Timeout {
        /// How long the channel waited.
        waited_ms: u64,
    },
    /// The MQTT client or connection failed.
    #[error("mqtt: {detail}")]
    Mqtt {
        /// The client or connection error.
        detail: String,
    },
    /// Nobody is listening on the app's live stream.
    #[error("no app subscription is open")]
    NoSubscriber,
    /// The log writer failed.
    #[error("cannot write the log line: {detail}")]
    Write {
        /// The I/O error.
        detail: String,
    },
    /// The failure simulator chose to fail this delivery key.
    #[error("simulated failure")]
    Simulated,
}

impl ChannelError {
    /// Returns the error of a delivery of `message` that failed with `failure`.
    pub fn new(message: &OutboundMessage, failure: ChannelFailure) -> Self {
        Self {
            channel: message.channel(),
            recipient: message.delivery.key.recipient.clone(),
            failure,
        }
    }

    /// Returns whether trying the same channel again can help: yes for transient transport
    /// failures, timeouts, 5xx, 408 and 429 answers and a missing app subscriber (one may
    /// connect); no for anything that would fail the same way (a missing channel or CAP
    /// rendering, a 4xx answer, a simulated failure: the simulator is seeded by the key).
    pub fn retry_hint(&self) -> RetryHint {
        match &self.failure {
            ChannelFailure::Http { .. }
            | ChannelFailure::Timeout { .. }
            | ChannelFailure::Mqtt { .. }
            | ChannelFailure::NoSubscriber
            | ChannelFailure::Write { .. } => RetryHint::Retry,
            ChannelFailure::Status { status, .. } => {
                if *status >= 500 || *status == 408 || *status == 429 {
                    RetryHint::Retry
                } else {
                    RetryHint::DoNotRetry
                }
            }
            ChannelFailure::NotConfigured
            | ChannelFailure::Unsendable { .. }
            | ChannelFailure::Simulated => RetryHint::DoNotRetry,
        }
    }

    /// Returns where the fault lies.
    pub fn domain(&self) -> ErrorDomain {
        match &self.failure {
            ChannelFailure::NotConfigured | ChannelFailure::Unsendable { .. } => ErrorDomain::User,
            ChannelFailure::Http { .. }
            | ChannelFailure::Status { .. }
            | ChannelFailure::Timeout { .. }
            | ChannelFailure::Mqtt { .. }
            | ChannelFailure::NoSubscriber
            | ChannelFailure::Write { .. }
            | ChannelFailure::Simulated => ErrorDomain::External,
        }
    }
}

/// Settings of the dissemination channels (`[channels]`). A channel whose section is absent
/// is not started, and deliveries of its kind fail as not configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Most delivery keys the dedupe ledger keeps; entries leave it when their warning version
    /// expires. A full ledger refuses new deliveries rather than forget what it sent.
    pub ledger_capacity: usize,
    /// The SMS gateway (personal SMS and SMS broadcast lists).
    pub sms_gateway: Option<webhook::WebhookConfig>,
    /// The MQTT broker of the village loudspeakers.
    pub loudspeakers: Option<mqtt::MqttConfig>,
    /// The CAP Atom feed.
    pub cap_feed: cap_feed::CapFeedConfig,
    /// The one-key-call app's live stream.
    pub app: app::AppConfig,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            ledger_capacity: 1_000_000,
            sms_gateway: None,
            loudspeakers: None,
            cap_feed: cap_feed::CapFeedConfig::default(),
            app: app::AppConfig::default(),
        }
    }
}

impl ChannelsConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.ledger_capacity == 0 {
            return Err("channels.ledger-capacity must be at least 1".into());
        }
        if let Some(gateway) = &self.sms_gateway {
            gateway.validate("channels.sms-gateway")?;
        }
        if let Some(loudspeakers) = &self.loudspeakers {
            loudspeakers.validate("channels.loudspeakers")?;
        }
        self.cap_feed.validate("channels.cap-feed")?;
        self.app.validate("channels.app")
    }
}

/// Returns the duration setting `field` in milliseconds, which must be positive.
fn positive_duration_ms(field: &str, text: &str) -> Result<u64, String> {
    match tianshan_core::time::parse_duration_ms(text) {
        Ok(ms) if ms > 0 => Ok(ms.unsigned_abs()),
        Ok(_) => Err(format!("{field} must be a positive duration, got {text:?}")),
        Err(e) => Err(format!("{field}: {e}")),
    }
}

#[cfg(test)]
impl OutboundMessage {
    /// Returns a message of version 1 of a red flash-flood warning over 天山区 for
    /// `recipient` (a village head of township 650102-002) over `channel`.
    pub(crate) fn for_test(channel: ChannelKind, recipient: &str) -> Self {
        use tianshan_core::dissemination::acknowledgement::{DeliveryKey, Subject};
        use tianshan_core::dissemination::recipients::Role;
        use tianshan_core::ids::{AreaCode, WarningId};
        use tianshan_core::lifecycle::action_for;
        use tianshan_core::time::{EventTime, HOUR_MS};
        use tianshan_core::warning::{Hazard, Level, Status};

        let onset = EventTime(1_719_792_000_000);
        let warning = WarningEvent {
            id: WarningId::new("FF-B650102-20240701T0000Z"),
            version: 1,
            hazard: Hazard::FlashFlood,
            level: Level::Red,
            action: action_for(Hazard::FlashFlood, Level::Red),
            status: Status::Issued,
            target: "B650102".to_owned(),
            area_codes: vec![AreaCode::new("650102")],
            onset,
            issued: onset,
            expires: onset.plus_ms(3 * HOUR_MS),
            evidence: Vec::new(),
            caused_by: None,
        };
        Self {
            delivery: Delivery {
                key: DeliveryKey {
                    warning: warning.id.clone(),
                    version: warning.version,
                    recipient: RecipientId::new(recipient),
                    subject: Subject::Warning,
                    channel,
                },
                attempt: 1,
            },
            recipient: Recipient {
                id: RecipientId::new(recipient),
                name: "synthetic head of village 1".to_owned(),
                role: Role::Village,
                unit: AreaCode::new("650102002"),
                channels: vec![channel],
            },
            warning,
            text: "【红色山洪预警】天山区：请立即组织人员转移。".to_owned(),
            cap_xml: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_hints_follow_the_failure() {
        let message = OutboundMessage::for_test(ChannelKind::Sms, "650102-002-v1");
        let hint = |failure| ChannelError::new(&message, failure).retry_hint();
        let status = |status| ChannelFailure::Status {
            url: "http://gateway/sms".into(),
            status,
            body: String::new(),
        };
        assert_eq!(hint(status(503)), RetryHint::Retry);
        assert_eq!(hint(status(429)), RetryHint::Retry);
        assert_eq!(hint(status(400)), RetryHint::DoNotRetry);
        assert_eq!(hint(ChannelFailure::Simulated), RetryHint::DoNotRetry);
        assert_eq!(hint(ChannelFailure::NoSubscriber), RetryHint::Retry);
        let error = ChannelError::new(&message, status(404));
        assert_eq!(
            error.to_string(),
            "sms delivery to 650102-002-v1 failed: gateway http://gateway/sms answered 404: "
        );
    }

    #[test]
    fn the_default_config_is_valid_and_bad_values_are_named() {
        let config = ChannelsConfig::default();
        assert_eq!(config.validate(), Ok(()));
        let empty_ledger = ChannelsConfig {
            ledger_capacity: 0,
            ..ChannelsConfig::default()
        };
        assert_eq!(
            empty_ledger.validate(),
            Err("channels.ledger-capacity must be at least 1".into())
        );
        assert_eq!(
            positive_duration_ms("x.timeout", "0s"),
            Err("x.timeout must be a positive duration, got \"0s\"".into())
        );
        assert_eq!(positive_duration_ms("x.timeout", "2s"), Ok(2_000));
    }
}
