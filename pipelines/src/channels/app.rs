//! The one-key-call app's channel: deliveries go into a tokio broadcast that the gRPC
//! `Subscribe` streams of responsible persons read, each keeping the deliveries addressed to
//! its own person ([`AppDelivery::recipient`]).
//!
//! What "delivered" means here: the message was queued for every app subscription open at that
//! moment. It does not mean the person's phone received it: the subscription may be of someone
//! else (each stream filters by recipient), may lag so far behind that the broadcast drops the
//! message for it (`RecvError::Lagged`, which the stream must report), or may be cut before it
//! sends the message. The proof that a person got a warning is their acknowledgement, which the
//! forced-acknowledgement book waits for and, missing it, re-sends on the next channel.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tianshan_core::dissemination::recipients::ChannelKind;
use tianshan_core::ids::RecipientId;
use tokio::sync::broadcast;

use super::{Channel, ChannelError, ChannelFailure, OutboundMessage};
use crate::error::PipelineError;

/// Settings of the app's live stream (`[channels.app]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AppConfig {
    /// Deliveries the broadcast keeps for a slow subscription before it drops the oldest.
    pub buffer: usize,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self { buffer: 1_024 }
    }
}

impl AppConfig {
    /// Checks the settings; `section` names them in errors.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        if self.buffer == 0 {
            return Err(format!("{section}.buffer must be at least 1"));
        }
        Ok(())
    }
}

/// One delivery on the app's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDelivery {
    /// Whom it is for; a subscription passes on only its own person's deliveries.
    pub recipient: RecipientId,
    /// The message, shared by every subscription that reads it.
    pub message: Arc<OutboundMessage>,
}

/// The app channel: a broadcast of deliveries to the open app subscriptions.
pub struct AppChannel {
    sender: broadcast::Sender<AppDelivery>,
}

impl AppChannel {
    /// Returns an app channel with the buffer of `config`.
    ///
    /// # Errors
    /// Returns [`PipelineError::Setup`] for a zero buffer.
    pub fn new(config: &AppConfig) -> Result<Self, PipelineError> {
        config.validate("app").map_err(PipelineError::Setup)?;
        let (sender, _) = broadcast::channel(config.buffer);
        Ok(Self { sender })
    }

    /// Opens a subscription: it receives every delivery sent from now on, for every
    /// recipient; the gRPC stream keeps those of its person.
    pub fn subscribe(&self) -> broadcast::Receiver<AppDelivery> {
        self.sender.subscribe()
    }

    /// Returns how many subscriptions are open.
    pub fn subscriptions(&self) -> usize {
        self.sender.receiver_count()
    }
}

#[async_trait::async_trait]
impl Channel for AppChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::App
    }

    /// "Delivered" means queued for every subscription open now (see the module docs); with
    /// none open the delivery fails, retryable, since the person's app may connect.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        let delivery = AppDelivery {
            recipient: message.delivery.key.recipient.clone(),
            message: Arc::new(message.clone()),
        };
        self.sender
            .send(delivery)
            .map(|_| ())
            .map_err(|_| ChannelError::new(message, ChannelFailure::NoSubscriber))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RetryHint;

    #[tokio::test]
    async fn subscribers_receive_deliveries_sent_while_they_listen() {
        let app = AppChannel::new(&AppConfig::default()).expect("valid settings");
        let message = OutboundMessage::for_test(ChannelKind::App, "650102-002-v1");
        let error = app.deliver(&message).await.expect_err("nobody listens");
        assert_eq!(error.failure, ChannelFailure::NoSubscriber);
        assert_eq!(error.retry_hint(), RetryHint::Retry);

        let mut first = app.subscribe();
        let mut second = app.subscribe();
        assert_eq!(app.subscriptions(), 2);
        app.deliver(&message).await.expect("two subscriptions");
        for subscription in [&mut first, &mut second] {
            let delivery = subscription.recv().await.expect("queued");
            assert_eq!(delivery.recipient.as_str(), "650102-002-v1");
            assert_eq!(*delivery.message, message);
        }
        drop(first);
        drop(second);
        assert!(app.deliver(&message).await.is_err(), "all closed again");
    }

    #[tokio::test]
    async fn a_slow_subscription_learns_it_lost_deliveries() {
        let app = AppChannel::new(&AppConfig { buffer: 1 }).expect("valid settings");
        let mut slow = app.subscribe();
        let message = OutboundMessage::for_test(ChannelKind::App, "650102-002-v1");
        app.deliver(&message).await.expect("one subscription");
        app.deliver(&message).await.expect("one subscription");
        assert_eq!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(1))
        );
        assert!(slow.recv().await.is_ok(), "the newest is still there");
        assert!(AppChannel::new(&AppConfig { buffer: 0 }).is_err());
    }
}
