//! The log channel of the demo: every delivery becomes one line on a writer (stdout in the
//! demo, a buffer in tests), so a run shows who was reached, over which channel, with what text.

use std::io::Write;
use std::sync::Mutex;

use tianshan_core::dissemination::recipients::ChannelKind;

use super::{Channel, ChannelError, ChannelFailure, OutboundMessage};

/// Writes one line per delivery, standing in for the channel `kind`.
pub struct LogChannel<W> {
    kind: ChannelKind,
    writer: Mutex<W>,
}

impl<W: Write + Send> LogChannel<W> {
    /// Returns a log channel standing in for `kind`, writing to `writer`.
    pub fn new(kind: ChannelKind, writer: W) -> Self {
        Self {
            kind,
            writer: Mutex::new(writer),
        }
    }

    /// Returns the writer, for reading back what was written.
    pub fn into_writer(self) -> W {
        self.writer
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Returns the line of one delivery: `delivered <channel> to <recipient> (<unit>): <warning>
/// v<version> <level> try <attempt>: "<text>"`. The text is quoted with Rust string escapes so
/// a newline in it cannot split the line.
fn line(message: &OutboundMessage) -> String {
    let key = &message.delivery.key;
    format!(
        "delivered {} to {} ({}): {} v{} {} try {}: {:?}\n",
        key.channel,
        key.recipient,
        message.recipient.unit,
        key.warning,
        key.version,
        message.warning.level,
        message.delivery.attempt,
        message.text
    )
}

#[async_trait::async_trait]
impl<W: Write + Send> Channel for LogChannel<W> {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// "Delivered" means the line was written and the writer flushed.
    async fn deliver(&self, message: &OutboundMessage) -> Result<(), ChannelError> {
        let text = line(message);
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush())
            .map_err(|e| {
                ChannelError::new(
                    message,
                    ChannelFailure::Write {
                        detail: e.to_string(),
                    },
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RetryHint;

    #[tokio::test]
    async fn each_delivery_is_one_line() {
        let channel = LogChannel::new(ChannelKind::Sms, Vec::new());
        let mut message = OutboundMessage::for_test(ChannelKind::Sms, "650102-002-v1");
        channel
            .deliver(&message)
            .await
            .expect("a vec accepts writes");
        message.text = "第二行\n不换行".to_owned();
        message.delivery.attempt = 2;
        channel
            .deliver(&message)
            .await
            .expect("a vec accepts writes");
        assert_eq!(channel.kind(), ChannelKind::Sms);
        let written = String::from_utf8(channel.into_writer()).expect("utf-8");
        assert_eq!(
            written,
            "delivered sms to 650102-002-v1 (650102002): FF-B650102-20240701T0000Z v1 red try 1: \
             \"【红色山洪预警】天山区：请立即组织人员转移。\"\n\
             delivered sms to 650102-002-v1 (650102002): FF-B650102-20240701T0000Z v1 red try 2: \
             \"第二行\\n不换行\"\n"
        );
    }

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_writer_is_a_retryable_error() {
        let channel = LogChannel::new(ChannelKind::Phone, Broken);
        let message = OutboundMessage::for_test(ChannelKind::Phone, "650102-head");
        let error = channel.deliver(&message).await.expect_err("writes fail");
        assert_eq!(
            error.failure,
            ChannelFailure::Write {
                detail: "disk full".into()
            }
        );
        assert_eq!(error.retry_hint(), RetryHint::Retry);
    }
}
