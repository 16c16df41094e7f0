//! Forced acknowledgement (叫应) of one warning version: every targeted person is sent the
//! warning on their first channel, re-sent on the next channel each time the answer window
//! passes, and after the last try handed over to the responsible person one level up (village
//! → township → county → prefecture duty → region duty), who must acknowledge the handover in
//! turn. Everything is recorded as an event log.
//!
//! The state is plain data (serde), driven by explicit times: an actor schedules a timer at
//! [`ForcedAcknowledgement::next_deadline`], calls [`ForcedAcknowledgement::on_time`] when it
//! fires and performs the returned deliveries. Persisting the state and loading it after a
//! restart gives the same deadlines and the same next deliveries.
//!
//! # Default deadlines
//! The county practice in issue 4 is: call each responsible person within 3 minutes, try 3
//! times within 5 minutes, then hand the list of those not reached to the level above. The
//! first send goes out the moment the warning arrives, well within 3 minutes; the 5 minutes
//! are split into 3 answer windows of 100 s, so sends happen at 0 s, 100 s and 200 s and the
//! person is handed over at 300 s. Red and orange (evacuation actions) use this as is. Yellow
//! (monitor) still needs an answer but not within minutes: 3 tries 10 minutes apart, handed
//! over after 30 minutes. Blue (monitor, 一般) needs no acknowledgement: it is sent once on each
//! person's first channel and never escalated. A cancellation (all clear) needs none either.
//!
//! A person with fewer channels than tries is not re-sent on a channel already used (the
//! dedupe ledger would refuse it anyway), but still gets the full window before escalation.
//! A handover is its own delivery, subject [`Subject::Handover`], one per person not reached.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dissemination::recipients::{ChannelKind, Directory, Recipient};
use crate::ids::{RecipientId, WarningId};
use crate::time::{EventTime, HOUR_MS, MINUTE_MS, SECOND_MS};
use crate::warning::{Level, Status, WarningEvent};

/// Most tries before escalation a level may configure.
const MAX_ATTEMPTS: u32 = 10;

/// The acknowledgement rule of one warning level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LevelDeadlines {
    /// Whether persons must acknowledge; when false the warning is sent once on each person's
    /// first channel and never re-sent or escalated.
    pub acknowledge: bool,
    /// Sends before escalation, the first included, each on the person's next channel (1–10).
    pub attempts: u32,
    /// How long a person has to answer each send, in milliseconds, written as a duration such
    /// as `"100s"` (1 s to 1 h); after the last send's window the person is handed over.
    #[serde(rename = "answer-within", with = "crate::time::duration_text")]
    pub answer_within_ms: i64,
}

impl LevelDeadlines {
    /// Returns the time from the first send to the handover: `attempts × answer-within`.
    pub fn escalate_after_ms(&self) -> i64 {
        i64::from(self.attempts) * self.answer_within_ms
    }

    fn validate(&self, level: &str) -> Result<(), String> {
        if !(1..=MAX_ATTEMPTS).contains(&self.attempts) {
            return Err(format!(
                "acknowledgement.{level}.attempts must lie in 1..={MAX_ATTEMPTS}, got {}",
                self.attempts
            ));
        }
        if !(SECOND_MS..=HOUR_MS).contains(&self.answer_within_ms) {
            return Err(format!(
                "acknowledgement.{level}.answer-within must lie between 1s and 1h, got {} ms",
                self.answer_within_ms
            ));
        }
        Ok(())
    }
}

/// Acknowledgement rules per warning level (`[acknowledgement]`); defaults in the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AcknowledgementConfig {
    /// Red (I): 3 tries, 100 s each, handover at 5 min.
    pub red: LevelDeadlines,
    /// Orange (II): as red.
    pub orange: LevelDeadlines,
    /// Yellow (III): 3 tries, 10 min each, handover at 30 min.
    pub yellow: LevelDeadlines,
    /// Blue (IV): no acknowledgement, sent once.
    pub blue: LevelDeadlines,
}

impl Default for AcknowledgementConfig {
    fn default() -> Self {
        let county_practice = LevelDeadlines {
            acknowledge: true,
            attempts: 3,
            answer_within_ms: 100 * SECOND_MS,
        };
        Self {
            red: county_practice.clone(),
            orange: county_practice,
            yellow: LevelDeadlines {
                acknowledge: true,
                attempts: 3,
                answer_within_ms: 10 * MINUTE_MS,
            },
            blue: LevelDeadlines {
                acknowledge: false,
                attempts: 1,
                answer_within_ms: 100 * SECOND_MS,
            },
        }
    }
}

impl AcknowledgementConfig {
    /// Returns the rule of `level`.
    pub fn for_level(&self, level: Level) -> &LevelDeadlines {
        match level {
            Level::Red => &self.red,
            Level::Orange => &self.orange,
            Level::Yellow => &self.yellow,
            Level::Blue => &self.blue,
        }
    }

    /// Checks every level's rule.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.red.validate("red")?;
        self.orange.validate("orange")?;
        self.yellow.validate("yellow")?;
        self.blue.validate("blue")
    }
}

/// What a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Subject {
    /// The warning itself.
    Warning,
    /// The handover of a person who could not be reached, to act on in their place.
    Handover {
        /// The person first targeted and not reached.
        unreached: RecipientId,
    },
}

/// Identifies one delivery: the same key is never delivered twice.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeliveryKey {
    /// The warning thread.
    pub warning: WarningId,
    /// Its version.
    pub version: u32,
    /// Who receives it.
    pub recipient: RecipientId,
    /// What it is about.
    pub subject: Subject,
    /// Over which channel.
    pub channel: ChannelKind,
}

/// A delivery the caller must perform now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// What to deliver to whom over which channel.
    pub key: DeliveryKey,
    /// The 1-based try of this recipient and subject.
    pub attempt: u32,
}

/// What a channel reported for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryOutcome {
    /// The channel handed the message to the recipient.
    Delivered,
    /// The channel failed.
    Failed,
}

/// Where one (recipient, subject) stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObligationState {
    /// Sent; waiting for an answer until `deadline`, then re-send or hand over.
    AwaitingAnswer {
        /// When the current answer window closes.
        deadline: EventTime,
    },
    /// Sent once, no acknowledgement required.
    Informed,
    /// Acknowledged by the addressee in time.
    Acknowledged {
        /// When.
        at: EventTime,
    },
    /// Not answered after every try; handed over to `to`.
    Escalated {
        /// When.
        at: EventTime,
        /// The person who received the handover.
        to: RecipientId,
    },
    /// Not answered after every try, with nobody above to hand over to.
    GaveUp {
        /// When.
        at: EventTime,
    },
    /// Still unanswered when the warning version expired.
    Expired {
        /// When.
        at: EventTime,
    },
}

/// One (recipient, subject) of a warning version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    /// When it was opened (first send or handover).
    pub opened: EventTime,
    /// Whether the recipient must acknowledge.
    pub must_acknowledge: bool,
    /// Tries made so far (a try without an unused channel counts, but sends nothing).
    pub tries: u32,
    /// Where it stands.
    pub state: ObligationState,
}

/// What happened, for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum AckEventKind {
    /// First send.
    Sent {
        /// The channel.
        channel: ChannelKind,
    },
    /// A later send after an unanswered window.
    Resent {
        /// The channel.
        channel: ChannelKind,
        /// The 1-based try.
        attempt: u32,
    },
    /// The channel reported delivery.
    Delivered {
        /// The channel.
        channel: ChannelKind,
    },
    /// The channel reported failure.
    DeliveryFailed {
        /// The channel.
        channel: ChannelKind,
    },
    /// The addressee acknowledged; `late` when after escalation, give-up or expiry.
    Acknowledged {
        /// Whether it came too late to stop the escalation.
        late: bool,
    },
    /// Handed over to `to` after the last try.
    Escalated {
        /// The person receiving the handover.
        to: RecipientId,
    },
    /// Nobody above to hand over to.
    GaveUp,
    /// The warning version expired while waiting.
    Expired,
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckEvent {
    /// When it happened.
    pub at: EventTime,
    /// The recipient concerned.
    pub recipient: RecipientId,
    /// The subject concerned.
    pub subject: Subject,
    /// What happened.
    pub kind: AckEventKind,
}

/// What an acknowledgement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded; no more re-sends or escalation for it.
    InTime,
    /// Recorded as late: the escalation, give-up or expiry already happened.
    Late,
    /// It had already been acknowledged; nothing changed.
    AlreadyAcknowledged,
}

/// Why an acknowledgement or delivery report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Someone other than the addressee tried to acknowledge.
    #[error("{by} may not acknowledge {warning} v{version} addressed to {addressee}")]
    NotAddressee {
        /// The warning thread.
        warning: WarningId,
        /// Its version.
        version: u32,
        /// The addressee.
        addressee: RecipientId,
        /// Who tried.
        by: RecipientId,
    },
    /// The recipient was sent nothing on this subject.
    #[error("{recipient} has nothing to acknowledge for {warning} v{version} ({subject:?})")]
    NothingToAcknowledge {
        /// The warning thread.
        warning: WarningId,
        /// Its version.
        version: u32,
        /// The recipient.
        recipient: RecipientId,
        /// The subject.
        subject: Subject,
    },
    /// A public endpoint cannot acknowledge.
    #[error("{recipient} is a public endpoint, not a person, and cannot acknowledge")]
    NotAPerson {
        /// The endpoint.
        recipient: RecipientId,
    },
    /// A delivery report for a delivery this warning version never asked for.
    #[error("no delivery {key:?} was asked for by {warning} v{version}")]
    UnknownDelivery {
        /// The warning thread.
        warning: WarningId,
        /// Its version.
        version: u32,
        /// The reported key.
        key: DeliveryKey,
    },
}

/// How to reach a recipient, fixed when the warning version is opened so a reloaded directory
/// does not change a running escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Contact {
    person: bool,
    must_acknowledge: bool,
    channels: Vec<ChannelKind>,
    escalates_to: Option<RecipientId>,
}

/// The forced-acknowledgement state of one warning version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForcedAcknowledgement {
    warning: WarningId,
    version: u32,
    level: Level,
    opened: EventTime,
    expires: EventTime,
    deadlines: LevelDeadlines,
    contacts: BTreeMap<RecipientId, Contact>,
    #[serde(with = "super::map_as_pairs")]
    obligations: BTreeMap<(RecipientId, Subject), Obligation>,
    events: Vec<AckEvent>,
}

impl ForcedAcknowledgement {
    /// Opens the acknowledgement of `warning` at `now` for `targets` (from
    /// [`Directory::targets`]), taking the escalation chains from `directory`; returns the
    /// state and the first deliveries (one per target, on its first channel).
    ///
    /// People hold the version for its validity from `now` when its own expiry is earlier: live,
    /// event time and wall time agree and nothing changes; a replayed storm (the demo, a drill)
    /// gets the same answer windows as a live one instead of expiring at once.
    pub fn open(
        warning: &WarningEvent,
        targets: &[&Recipient],
        directory: &Directory,
        config: &AcknowledgementConfig,
        now: EventTime,
    ) -> (ForcedAcknowledgement, Vec<Delivery>) {
        let deadlines = config.for_level(warning.level).clone();
        let acknowledge = deadlines.acknowledge && warning.status != Status::Cancelled;
        let mut contacts = BTreeMap::new();
        for target in targets {
            let mut next = Some(*target);
            while let Some(recipient) = next {
                if contacts.contains_key(&recipient.id) {
                    break;
                }
                let must_acknowledge = acknowledge && recipient.is_person();
                let escalates_to = directory
                    .escalation_target(&recipient.id)
                    .filter(|_| must_acknowledge);
                contacts.insert(
                    recipient.id.clone(),
                    Contact {
                        person: recipient.is_person(),
                        must_acknowledge,
                        channels: recipient.channels.clone(),
                        escalates_to: escalates_to.map(|up| up.id.clone()),
                    },
                );
                next = escalates_to;
            }
        }
        let mut book = ForcedAcknowledgement {
            warning: warning.id.clone(),
            version: warning.version,
            level: warning.level,
            opened: now,
            expires: warning
                .expires
                .max(now.plus_ms(warning.expires.millis() - warning.issued.millis())),
            deadlines,
            contacts,
            obligations: BTreeMap::new(),
            events: Vec::new(),
        };
        let mut deliveries = Vec::new();
        for target in targets {
            book.open_obligation(target.id.clone(), Subject::Warning, now, &mut deliveries);
        }
        (book, deliveries)
    }

    /// Returns the warning thread.
    pub fn warning(&self) -> &WarningId {
        &self.warning
    }

    /// Returns the warning version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Returns the level of the version.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Returns when dissemination started.
    pub fn opened(&self) -> EventTime {
        self.opened
    }

    /// Returns when the version expires.
    pub fn expires(&self) -> EventTime {
        self.expires
    }

    /// Returns the event log in the order things happened.
    pub fn events(&self) -> &[AckEvent] {
        &self.events
    }

    /// Returns every (recipient, subject) with its obligation, by recipient then subject.
    pub fn obligations(&self) -> impl Iterator<Item = (&RecipientId, &Subject, &Obligation)> {
        self.obligations
            .iter()
            .map(|((recipient, subject), obligation)| (recipient, subject, obligation))
    }

    /// Returns the obligation of `recipient` on `subject`, if any.
    pub fn obligation(&self, recipient: &RecipientId, subject: &Subject) -> Option<&Obligation> {
        self.obligations.get(&(recipient.clone(), subject.clone()))
    }

    /// Returns whether nothing is waiting for an answer any more.
    pub fn is_settled(&self) -> bool {
        self.next_deadline().is_none()
    }

    /// Returns when [`ForcedAcknowledgement::on_time`] must next be called: the earliest
    /// answer window to close, or the expiry if sooner; `None` when nothing waits.
    pub fn next_deadline(&self) -> Option<EventTime> {
        self.obligations
            .values()
            .filter_map(|obligation| match obligation.state {
                ObligationState::AwaitingAnswer { deadline } => Some(deadline.min(self.expires)),
                _ => None,
            })
            .min()
    }

    /// Advances to `now`: at or after the expiry every waiting obligation expires; otherwise
    /// each obligation whose window closed is re-sent on its next channel or, after the last
    /// try, handed over (the handover is sent at once). Returns the deliveries to perform.
    pub fn on_time(&mut self, now: EventTime) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let due: Vec<(RecipientId, Subject)> = self
            .obligations
            .iter()
            .filter(|(_, obligation)| match obligation.state {
                ObligationState::AwaitingAnswer { deadline } => {
                    deadline <= now || self.expires <= now
                }
                _ => false,
            })
            .map(|(key, _)| key.clone())
            .collect();
        for (recipient, subject) in due {
            if self.expires <= now {
                self.set_state(&recipient, &subject, ObligationState::Expired { at: now });
                self.record(now, &recipient, &subject, AckEventKind::Expired);
            } else {
                self.try_next(recipient, subject, now, &mut deliveries);
            }
        }
        deliveries
    }

    /// Records an acknowledgement of `subject` by `by`, addressed to `addressee`, at `at`.
    ///
    /// # Errors
    /// [`AckError::NotAddressee`] when `by` is not the addressee, [`AckError::NotAPerson`] for
    /// a public endpoint, [`AckError::NothingToAcknowledge`] when the addressee was sent
    /// nothing on `subject`.
    pub fn acknowledge(
        &mut self,
        addressee: &RecipientId,
        subject: &Subject,
        by: &RecipientId,
        at: EventTime,
    ) -> Result<AckOutcome, AckError> {
        if by != addressee {
            return Err(AckError::NotAddressee {
                warning: self.warning.clone(),
                version: self.version,
                addressee: addressee.clone(),
                by: by.clone(),
            });
        }
        if self.contacts.get(addressee).is_some_and(|c| !c.person) {
            return Err(AckError::NotAPerson {
                recipient: addressee.clone(),
            });
        }
        let key = (addressee.clone(), subject.clone());
        let Some(obligation) = self.obligations.get_mut(&key) else {
            return Err(AckError::NothingToAcknowledge {
                warning: self.warning.clone(),
                version: self.version,
                recipient: addressee.clone(),
                subject: subject.clone(),
            });
        };
        let outcome = match obligation.state {
            ObligationState::Acknowledged { .. } => return Ok(AckOutcome::AlreadyAcknowledged),
            ObligationState::AwaitingAnswer { .. } | ObligationState::Informed => {
                obligation.state = ObligationState::Acknowledged { at };
                AckOutcome::InTime
            }
            ObligationState::Escalated { .. }
            | ObligationState::GaveUp { .. }
            | ObligationState::Expired { .. } => AckOutcome::Late,
        };
        let late = outcome == AckOutcome::Late;
        self.record(at, addressee, subject, AckEventKind::Acknowledged { late });
        Ok(outcome)
    }

    /// Records what the channel reported for `key` at `at`, and returns the re-send it calls for:
    /// a failed delivery to a recipient who need not answer (a public endpoint, or anyone at a
    /// level without acknowledgement) is sent again on the same channel, up to the level's
    /// `attempts` (1 for blue by default, so blue is never re-sent), since no answer window will
    /// bring a re-send for them [U] (our rule).
    ///
    /// # Errors
    /// [`AckError::UnknownDelivery`] when `key` is not of this version or names a recipient
    /// and subject it never sent to.
    pub fn record_delivery(
        &mut self,
        key: &DeliveryKey,
        outcome: DeliveryOutcome,
        at: EventTime,
    ) -> Result<Vec<Delivery>, AckError> {
        let who = (key.recipient.clone(), key.subject.clone());
        let Some(obligation) = self
            .obligations
            .get(&who)
            .filter(|_| key.warning == self.warning && key.version == self.version)
        else {
            return Err(AckError::UnknownDelivery {
                warning: self.warning.clone(),
                version: self.version,
                key: key.clone(),
            });
        };
        let resend = outcome == DeliveryOutcome::Failed
            && obligation.state == ObligationState::Informed
            && obligation.tries < self.deadlines.attempts
            && at < self.expires;
        let channel = key.channel;
        let kind = match outcome {
            DeliveryOutcome::Delivered => AckEventKind::Delivered { channel },
            DeliveryOutcome::Failed => AckEventKind::DeliveryFailed { channel },
        };
        self.record(at, &key.recipient, &key.subject, kind);
        if !resend {
            return Ok(Vec::new());
        }
        let obligation = self
            .obligations
            .get_mut(&who)
            .expect("the obligation was read above");
        obligation.tries += 1;
        let attempt = obligation.tries;
        self.record(
            at,
            &key.recipient,
            &key.subject,
            AckEventKind::Resent { channel, attempt },
        );
        Ok(vec![Delivery {
            key: key.clone(),
            attempt,
        }])
    }

    /// Takes over `journaled`, the state of this same book read back from the journal when
    /// this node comes to own its warning, and returns whether this book changed. The event
    /// log tells which of the two is further along (our rule):
    /// - `journaled`'s log is the start of this one's: it is an earlier state of this very
    ///   book (journaled here since), and this book stays as it is;
    /// - this book's log is the start of `journaled`'s: the journal is further along, and is
    ///   taken whole;
    /// - neither (both nodes kept the book while ownership moved): `journaled` is taken, and
    ///   the acknowledgements only this book recorded are recorded on it too, so nobody who
    ///   answered is asked again.
    pub fn take_over(&mut self, journaled: &ForcedAcknowledgement) -> bool {
        if self.events.starts_with(&journaled.events) {
            return false;
        }
        if journaled.events.starts_with(&self.events) {
            *self = journaled.clone();
            return true;
        }
        let answered_here: Vec<AckEvent> = self
            .events
            .iter()
            .filter(|event| {
                matches!(event.kind, AckEventKind::Acknowledged { .. })
                    && !journaled.events.contains(event)
            })
            .cloned()
            .collect();
        *self = journaled.clone();
        for answer in answered_here {
            // An obligation the journaled book does not have (it cannot: both were opened
            // for the same version and unit) has nothing to carry over.
            let _ = self.acknowledge(
                &answer.recipient,
                &answer.subject,
                &answer.recipient,
                answer.at,
            );
        }
        true
    }

    /// Opens (recipient, subject) at `now` and makes its first try.
    fn open_obligation(
        &mut self,
        recipient: RecipientId,
        subject: Subject,
        now: EventTime,
        deliveries: &mut Vec<Delivery>,
    ) {
        let key = (recipient.clone(), subject.clone());
        debug_assert!(
            !self.obligations.contains_key(&key),
            "opened twice: {key:?}"
        );
        let must_acknowledge = self.contacts[&recipient].must_acknowledge;
        self.obligations.insert(
            key,
            Obligation {
                opened: now,
                must_acknowledge,
                tries: 0,
                state: ObligationState::Informed,
            },
        );
        self.try_next(recipient, subject, now, deliveries);
    }

    /// Makes the next try of (recipient, subject) at `now`: a send on the next unused channel,
    /// or, when the tries are used up, the handover (or give-up at the top).
    fn try_next(
        &mut self,
        recipient: RecipientId,
        subject: Subject,
        now: EventTime,
        deliveries: &mut Vec<Delivery>,
    ) {
        let contact = &self.contacts[&recipient];
        let obligation = &self.obligations[&(recipient.clone(), subject.clone())];
        let tries = obligation.tries;
        let limit = if contact.must_acknowledge {
            self.deadlines.attempts
        } else {
            1
        };
        if tries < limit {
            let channel = contact.channels.get(tries as usize).copied();
            let state = if contact.must_acknowledge {
                let deadline = now.plus_ms(self.deadlines.answer_within_ms);
                ObligationState::AwaitingAnswer { deadline }
            } else {
                ObligationState::Informed
            };
            let key = (recipient.clone(), subject.clone());
            let obligation = self
                .obligations
                .get_mut(&key)
                .expect("the obligation was read above");
            obligation.tries += 1;
            obligation.state = state;
            if let Some(channel) = channel {
                let attempt = tries + 1;
                let kind = if attempt == 1 {
                    AckEventKind::Sent { channel }
                } else {
                    AckEventKind::Resent { channel, attempt }
                };
                self.record(now, &recipient, &subject, kind);
                deliveries.push(Delivery {
                    key: DeliveryKey {
                        warning: self.warning.clone(),
                        version: self.version,
                        recipient,
                        subject,
                        channel,
                    },
                    attempt,
                });
            }
            return;
        }
        match contact.escalates_to.clone() {
            Some(to) => {
                let handover = match &subject {
                    Subject::Warning => Subject::Handover {
                        unreached: recipient.clone(),
                    },
                    Subject::Handover { .. } => subject.clone(),
                };
                let state = ObligationState::Escalated {
                    at: now,
                    to: to.clone(),
                };
                self.set_state(&recipient, &subject, state);
                self.record(
                    now,
                    &recipient,
                    &subject,
                    AckEventKind::Escalated { to: to.clone() },
                );
                self.open_obligation(to, handover, now, deliveries);
            }
            None => {
                self.set_state(&recipient, &subject, ObligationState::GaveUp { at: now });
                self.record(now, &recipient, &subject, AckEventKind::GaveUp);
            }
        }
    }

    fn set_state(&mut self, recipient: &RecipientId, subject: &Subject, state: ObligationState) {
        let key = (recipient.clone(), subject.clone());
        self.obligations
            .get_mut(&key)
            .expect("only existing obligations change state")
            .state = state;
    }

    fn record(
        &mut self,
        at: EventTime,
        recipient: &RecipientId,
        subject: &Subject,
        kind: AckEventKind,
    ) {
        self.events.push(AckEvent {
            at,
            recipient: recipient.clone(),
            subject: subject.clone(),
            kind,
        });
    }
}

#[cfg(test)]
pub(super) mod tests;
