//! Delivery dedupe: the ledger a channel consults before delivering, so that no (warning,
//! version, recipient, subject, channel) is ever delivered twice, also after a replay or a
//! restart (the ledger is serde-serialisable). Entries live until their warning version
//! expires; [`DeliveryLedger::prune_expired`] drops them, and a capacity bounds the rest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dissemination::acknowledgement::DeliveryKey;
use crate::time::EventTime;

/// When a key was first delivered and when its warning version expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// When it was delivered.
    pub delivered: EventTime,
    /// When the warning version expires (the entry may be pruned after).
    pub expires: EventTime,
}

/// What the ledger said about a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerCheck {
    /// Not delivered before: now recorded; deliver it.
    FirstDelivery,
    /// Already delivered at `at`: do not deliver again.
    AlreadyDelivered {
        /// When it was delivered.
        at: EventTime,
    },
}

/// Why the ledger refused to record a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The ledger holds `capacity` unexpired entries; prune or raise the capacity.
    #[error("delivery ledger is full ({capacity} unexpired entries)")]
    Full {
        /// The capacity.
        capacity: usize,
    },
}

/// Delivered keys with their expiry, bounded by a capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLedger {
    capacity: usize,
    #[serde(with = "super::map_as_pairs")]
    delivered: BTreeMap<DeliveryKey, LedgerEntry>,
    /// The same keys ordered by expiry, for pruning.
    by_expiry: BTreeSet<(EventTime, DeliveryKey)>,
}

impl DeliveryLedger {
    /// Returns an empty ledger holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            delivered: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Checks `key` and, if it was not delivered before, records it as delivered at `at`
    /// until `expires`. A full ledger first drops entries expired at `at`.
    ///
    /// # Errors
    /// [`LedgerError::Full`] when the key is new and the ledger still holds `capacity`
    /// unexpired entries: refusing is safer than forgetting what was delivered.
    pub fn check_and_record(
        &mut self,
        key: &DeliveryKey,
        at: EventTime,
        expires: EventTime,
    ) -> Result<LedgerCheck, LedgerError> {
        if let Some(entry) = self.delivered.get(key) {
            return Ok(LedgerCheck::AlreadyDelivered {
                at: entry.delivered,
            });
        }
        if self.delivered.len() >= self.capacity {
            self.prune_expired(at);
        }
        if self.delivered.len() >= self.capacity {
            return Err(LedgerError::Full {
                capacity: self.capacity,
            });
        }
        self.delivered.insert(
            key.clone(),
            LedgerEntry {
                delivered: at,
                expires,
            },
        );
        self.by_expiry.insert((expires, key.clone()));
        Ok(LedgerCheck::FirstDelivery)
    }

    /// Returns when `key` was delivered, if it was.
    pub fn delivered_at(&self, key: &DeliveryKey) -> Option<EventTime> {
        self.delivered.get(key).map(|entry| entry.delivered)
    }

    /// Drops every entry whose warning version expired at or before `now`; returns how many.
    pub fn prune_expired(&mut self, now: EventTime) -> usize {
        let mut pruned = 0;
        while let Some((expires, _)) = self.by_expiry.first() {
            if *expires > now {
                break;
            }
            let (_, key) = self.by_expiry.pop_first().expect("first entry exists");
            self.delivered.remove(&key);
            pruned += 1;
        }
        debug_assert_eq!(self.delivered.len(), self.by_expiry.len());
        pruned
    }

    /// Returns the most entries the ledger holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.delivered.len()
    }

    /// Returns whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.delivered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissemination::acknowledgement::Subject;
    use crate::dissemination::recipients::ChannelKind;
    use crate::ids::{RecipientId, WarningId};

    fn key(warning: &str, version: u32, channel: ChannelKind) -> DeliveryKey {
        DeliveryKey {
            warning: WarningId::new(warning),
            version,
            recipient: RecipientId::new("650102-002-v1"),
            subject: Subject::Warning,
            channel,
        }
    }

    #[test]
    fn a_key_is_delivered_once_and_other_channels_or_versions_are_not_blocked() {
        let mut ledger = DeliveryLedger::new(10);
        let sms = key("FF-B1", 1, ChannelKind::Sms);
        let expires = EventTime(1_000);
        assert_eq!(
            ledger.check_and_record(&sms, EventTime(10), expires),
            Ok(LedgerCheck::FirstDelivery)
        );
        assert_eq!(
            ledger.check_and_record(&sms, EventTime(20), expires),
            Ok(LedgerCheck::AlreadyDelivered { at: EventTime(10) })
        );
        for other in [
            key("FF-B1", 1, ChannelKind::App),
            key("FF-B1", 2, ChannelKind::Sms),
        ] {
            assert_eq!(
                ledger.check_and_record(&other, EventTime(30), expires),
                Ok(LedgerCheck::FirstDelivery)
            );
        }
        assert_eq!(ledger.len(), 3);
        assert_eq!(ledger.capacity(), 10);
        assert_eq!(ledger.delivered_at(&sms), Some(EventTime(10)));
    }

    #[test]
    fn the_ledger_survives_a_restart_and_prunes_by_expiry() {
        let mut ledger = DeliveryLedger::new(2);
        let early = key("FF-B1", 1, ChannelKind::Sms);
        let late = key("FF-B2", 1, ChannelKind::Sms);
        ledger
            .check_and_record(&early, EventTime(0), EventTime(100))
            .expect("room");
        ledger
            .check_and_record(&late, EventTime(0), EventTime(500))
            .expect("room");
        let json = serde_json::to_string(&ledger).expect("serialise");
        let mut restored: DeliveryLedger = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(restored, ledger);
        assert_eq!(
            restored.check_and_record(&early, EventTime(50), EventTime(100)),
            Ok(LedgerCheck::AlreadyDelivered { at: EventTime(0) })
        );
        let third = key("FF-B3", 1, ChannelKind::Sms);
        assert_eq!(
            restored.check_and_record(&third, EventTime(50), EventTime(900)),
            Err(LedgerError::Full { capacity: 2 }),
            "nothing has expired at 50"
        );
        assert_eq!(
            restored.check_and_record(&third, EventTime(100), EventTime(900)),
            Ok(LedgerCheck::FirstDelivery),
            "the entry expiring at 100 made room"
        );
        assert_eq!(restored.delivered_at(&early), None);
        assert_eq!(restored.prune_expired(EventTime(500)), 1);
        assert_eq!(restored.len(), 1);
    }
}
