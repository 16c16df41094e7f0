//! Simulated channel failures for the demo's coverage run: wraps any channel and fails the
//! deliveries that core's seeded [`ChannelFailures`] picks. The pick depends only on the seed
//! and the delivery key, so a run is repeatable, and a retry of the same key fails again.

use tianshan_core::dissemination::acknowledgement::DeliveryOutcome;
use tianshan_core::dissemination::recipients::ChannelKind;
use tianshan_core::dissemination::simulation::ChannelFailures;

use super::{Channel, ChannelError, ChannelFailure, OutboundMessage};

/// A channel that fails the deliveries `failures` picks and passes the others to `inner`.
pub struct FlakyChannel<C> {
    inner: C,
    failures: ChannelFailures,
}

impl<C: Channel> FlakyChannel<C> {
    /// Wraps `inner`; the rate `failures` sets for `inner`'s kind applies.
    pub fn new(inner: C, failures: ChannelFailures) -> Self {
        Self { inner, failures }
    }
}

#[async_trait::async_trait]
impl<C: Channel> Channel for FlakyChannel<C> {
    fn kind(&self) -> ChannelKind {
        self.inner.kind()
    }

    /// A picked delivery fails with [`ChannelFailure::Simulated`] and never reaches the inner
    /// channel; the others are the inner channel's.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        match self
            .failures
            .outcome_of_attempt(&message.delivery.key, message.delivery.attempt)
        {
            DeliveryOutcome::Failed => Err(ChannelError::new(message, ChannelFailure::Simulated)),
            DeliveryOutcome::Delivered => self.inner.deliver(message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::log::LogChannel;
    use crate::error::RetryHint;

    #[tokio::test]
    async fn the_seeded_share_fails_and_the_rest_reaches_the_inner_channel() {
        let failures = ChannelFailures::none(2025).with_rate(ChannelKind::Sms, 0.25);
        let flaky = FlakyChannel::new(LogChannel::new(ChannelKind::Sms, Vec::new()), failures);
        assert_eq!(flaky.kind(), ChannelKind::Sms);
        let mut failed = Vec::new();
        for village in 0..400 {
            let recipient = format!("650102-002-v{village}");
            let message = OutboundMessage::for_test(ChannelKind::Sms, &recipient);
            if let Err(error) = flaky.deliver(&message).await {
                assert_eq!(error.failure, ChannelFailure::Simulated);
                assert_eq!(error.retry_hint(), RetryHint::DoNotRetry);
                assert!(
                    flaky.deliver(&message).await.is_err(),
                    "the same key fails again"
                );
                failed.push(recipient);
            }
        }
        assert!((70..130).contains(&failed.len()), "{}", failed.len());
        let lines = String::from_utf8(flaky.inner.into_writer()).expect("utf-8");
        assert_eq!(lines.lines().count(), 400 - failed.len());
        assert!(failed
            .iter()
            .all(|recipient| !lines.contains(&format!(" to {recipient} "))));
    }
}
