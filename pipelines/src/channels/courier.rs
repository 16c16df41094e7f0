//! The courier: routes each delivery to the channel of its kind, at most once per delivery key.
//! It consults the dedupe ledger before sending, records a successful delivery in the ledger,
//! and journals it to Kafka so a restarted courier (rebuilt with
//! [`rebuild_ledger`](super::journal::rebuild_ledger)) suppresses it too.
//!
//! A failed delivery is not recorded: the acknowledgement book decides whether the same key is
//! tried again. The ledger entry of a delivery lives until its warning version expires.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tianshan_core::dissemination::acknowledgement::{DeliveryKey, DeliveryOutcome};
use tianshan_core::dissemination::ledger::{DeliveryLedger, LedgerEntry};
use tianshan_core::dissemination::recipients::ChannelKind;
use tianshan_core::time::EventTime;
use tracing::{debug, error, warn};

use super::journal::DeliveryJournal;
use super::{Channel, ChannelError, ChannelFailure, OutboundMessage};

/// What a courier did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CourierTotals {
    /// Deliveries a channel confirmed.
    pub delivered: u64,
    /// Deliveries a channel failed, or with no channel of their kind.
    pub failed: u64,
    /// Deliveries not sent because their key was delivered before.
    pub duplicates_suppressed: u64,
    /// Deliveries refused because the ledger was full of unexpired keys.
    pub refused_ledger_full: u64,
    /// Deliveries made but not journaled: a restart may send them again.
    pub journal_failures: u64,
}

/// One channel per kind, the dedupe ledger and the journal.
pub struct Courier {
    channels: BTreeMap<ChannelKind, Arc<dyn Channel>>,
    ledger: DeliveryLedger,
    journal: Option<DeliveryJournal>,
    totals: CourierTotals,
}

impl Courier {
    /// Returns a courier with no channels over `ledger` (empty, or rebuilt from the journal),
    /// journaling nothing.
    pub fn new(ledger: DeliveryLedger) -> Self {
        Self {
            channels: BTreeMap::new(),
            ledger,
            journal: None,
            totals: CourierTotals::default(),
        }
    }

    /// Records deliveries made elsewhere (another node's, read from the journal when this node
    /// takes over their warnings), so they are not made again. Entries already known are left
    /// as they are; when the ledger is full the rest are skipped and counted as refused.
    pub fn learn_delivered(
        &mut self,
        entries: impl IntoIterator<Item = (DeliveryKey, LedgerEntry)>,
    ) {
        for (key, entry) in entries {
            if self
                .ledger
                .check_and_record(&key, entry.delivered, entry.expires)
                .is_err()
            {
                self.totals.refused_ledger_full += 1;
                warn!(
                    capacity = self.ledger.capacity(),
                    "delivery ledger full: deliveries made elsewhere not all learned"
                );
                return;
            }
        }
    }

    /// Returns the courier journaling every delivery to `journal`.
    pub fn with_journal(mut self, journal: DeliveryJournal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Returns the courier sending deliveries of `channel.kind()` through `channel`, in place
    /// of the channel of that kind it had.
    pub fn with_channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.kind(), channel);
        self
    }

    /// Sends `message` at `at` unless its key was delivered before, and returns what the
    /// acknowledgement book should record:
    /// - key delivered before: [`DeliveryOutcome::Delivered`] without sending (the recipient
    ///   has it), counted in [`CourierTotals::duplicates_suppressed`];
    /// - the ledger full of unexpired keys: [`DeliveryOutcome::Failed`] without sending, since
    ///   a delivery that cannot be recorded could be repeated;
    /// - otherwise what the channel says; a success is recorded in the ledger until the
    ///   warning version expires, then journaled. A journal failure is logged and counted but
    ///   the outcome stays `Delivered`: the message did go out.
    #[tracing::instrument(skip_all, fields(
        warning = %message.delivery.key.warning,
        version = message.delivery.key.version,
        recipient = %message.delivery.key.recipient,
        channel = %message.delivery.key.channel,
    ))]
    pub async fn send(&mut self, message: &OutboundMessage, at: EventTime) -> DeliveryOutcome {
        let key = &message.delivery.key;
        debug_assert_eq!(key.recipient, message.recipient.id);
        if let Some(delivered_at) = self.ledger.delivered_at(key) {
            self.totals.duplicates_suppressed += 1;
            debug!(
                delivered_at = delivered_at.millis(),
                "delivery suppressed: already delivered"
            );
            return DeliveryOutcome::Delivered;
        }
        if self.ledger.len() >= self.ledger.capacity() {
            self.ledger.prune_expired(at);
        }
        if self.ledger.len() >= self.ledger.capacity() {
            self.totals.refused_ledger_full += 1;
            error!(
                capacity = self.ledger.capacity(),
                "delivery refused: the dedupe ledger is full of unexpired deliveries"
            );
            return DeliveryOutcome::Failed;
        }
        let result = match self.channels.get(&key.channel) {
            Some(channel) => channel.deliver(message).await,
            None => Err(ChannelError::new(message, ChannelFailure::NotConfigured)),
        };
        if let Err(e) = result {
            self.totals.failed += 1;
            warn!(error = %e, retry = ?e.retry_hint(), "delivery failed");
            return DeliveryOutcome::Failed;
        }
        self.totals.delivered += 1;
        let entry = LedgerEntry {
            delivered: at,
            expires: message.warning.expires,
        };
        if let Err(e) = self
            .ledger
            .check_and_record(key, entry.delivered, entry.expires)
        {
            // Unreachable after the room check above; logged rather than trusted.
            error!(error = %e, "delivered but not recorded in the dedupe ledger");
        }
        if let Some(journal) = &self.journal {
            if let Err(e) = journal.record(key, entry).await {
                self.totals.journal_failures += 1;
                error!(error = %e, "delivered but not journaled: a restart may send it again");
            }
        }
        debug!("delivered");
        DeliveryOutcome::Delivered
    }

    /// Returns what the courier did so far.
    pub fn totals(&self) -> CourierTotals {
        self.totals
    }

    /// Returns the dedupe ledger.
    pub fn ledger(&self) -> &DeliveryLedger {
        &self.ledger
    }
}

#[cfg(test)]
mod tests;
