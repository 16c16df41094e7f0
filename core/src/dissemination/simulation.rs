//! Simulated channels and people for the demo and tests: seeded per-channel failure rates,
//! seeded answer delays, and a driver that runs one warning version's forced acknowledgement to
//! the end through the dedupe ledger. Deterministic: the same seed gives the same outcome for
//! the same delivery key, so no `rand` crate and no clock are involved.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dissemination::acknowledgement::{
    Delivery, DeliveryKey, DeliveryOutcome, ForcedAcknowledgement, Subject,
};
use crate::dissemination::ledger::{DeliveryLedger, LedgerError};
use crate::dissemination::recipients::ChannelKind;
use crate::ids::RecipientId;
use crate::time::EventTime;

/// Returns a uniform number in `[0, 1)` derived from `seed` and `text`: FNV-1a over the text,
/// mixed with the seed by the SplitMix64 finaliser.
fn uniform(seed: u64, text: &str) -> f64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = text.bytes().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    let mut mixed = hash ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^= mixed >> 31;
    // The top 53 bits fill an f64 mantissa exactly.
    (mixed >> 11) as f64 / (1_u64 << 53) as f64
}

/// Returns the text a delivery key is hashed by.
fn key_text(key: &DeliveryKey) -> String {
    let subject = match &key.subject {
        Subject::Warning => String::new(),
        Subject::Handover { unreached } => unreached.to_string(),
    };
    format!(
        "{}|{}|{}|{}|{}",
        key.warning, key.version, key.recipient, subject, key.channel
    )
}

/// Seeded channel failures: each channel fails a set share of its deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelFailures {
    seed: u64,
    rates: BTreeMap<ChannelKind, f64>,
}

impl ChannelFailures {
    /// Returns a simulator where no channel fails.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            rates: BTreeMap::new(),
        }
    }

    /// Returns the simulator with `channel` failing the share `rate` (clamped to 0..=1) of
    /// its deliveries.
    pub fn with_rate(mut self, channel: ChannelKind, rate: f64) -> Self {
        self.rates.insert(channel, rate.clamp(0.0, 1.0));
        self
    }

    /// Returns what the channel does with `key`; always the same for the same seed and key.
    pub fn outcome(&self, key: &DeliveryKey) -> DeliveryOutcome {
        self.outcome_of_attempt(key, 1)
    }

    /// Returns what the channel does with the `attempt`-th send of `key` (a re-send on the same
    /// channel draws anew); always the same for the same seed, key and attempt.
    pub fn outcome_of_attempt(&self, key: &DeliveryKey, attempt: u32) -> DeliveryOutcome {
        let rate = self.rates.get(&key.channel).copied().unwrap_or(0.0);
        let text = if attempt <= 1 {
            key_text(key)
        } else {
            format!("{}|attempt {attempt}", key_text(key))
        };
        if uniform(self.seed, &text) < rate {
            DeliveryOutcome::Failed
        } else {
            DeliveryOutcome::Delivered
        }
    }
}

/// Seeded answers of persons: a share never answers, the others answer a delivery after a
/// delay drawn uniformly from a range.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedAnswers {
    seed: u64,
    silent_share: f64,
    min_delay_ms: i64,
    max_delay_ms: i64,
}

impl SimulatedAnswers {
    /// Returns answers where the share `silent_share` (clamped to 0..=1) of (person, subject)
    /// never answers and the rest answer between `min_delay_ms` and `max_delay_ms` (swapped
    /// if given the wrong way round) after their first delivery.
    pub fn new(seed: u64, silent_share: f64, min_delay_ms: i64, max_delay_ms: i64) -> Self {
        Self {
            seed,
            silent_share: silent_share.clamp(0.0, 1.0),
            min_delay_ms: min_delay_ms.min(max_delay_ms),
            max_delay_ms: max_delay_ms.max(min_delay_ms),
        }
    }

    /// Returns after how long `recipient` answers a delivery on `subject`; `None` for never.
    pub fn answer_delay_ms(&self, recipient: &RecipientId, subject: &Subject) -> Option<i64> {
        let who = match subject {
            Subject::Warning => format!("answer|{recipient}"),
            Subject::Handover { unreached } => format!("answer|{recipient}|{unreached}"),
        };
        if uniform(self.seed, &who) < self.silent_share {
            return None;
        }
        let spread = (self.max_delay_ms - self.min_delay_ms) as f64;
        let delay = uniform(self.seed, &format!("delay|{who}")) * spread;
        Some(self.min_delay_ms + delay as i64)
    }
}

/// What a simulated run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SimulationTotals {
    /// Deliveries attempted on a channel.
    pub attempted: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Deliveries the ledger refused as already delivered.
    pub refused_as_duplicates: usize,
    /// Acknowledgements recorded (in time or late).
    pub acknowledgements: usize,
}

/// Runs `book` from its `first` deliveries until nothing waits: each delivery passes the
/// `ledger`, then `failures`; a person reached on a subject answers after
/// [`SimulatedAnswers::answer_delay_ms`]; deadlines fire in time order, an answer due at the
/// same instant as a deadline first.
///
/// # Errors
/// [`LedgerError::Full`] when the ledger has no room for a delivery.
pub fn run_to_settlement(
    book: &mut ForcedAcknowledgement,
    first: Vec<Delivery>,
    failures: &ChannelFailures,
    answers: &SimulatedAnswers,
    ledger: &mut DeliveryLedger,
) -> Result<SimulationTotals, LedgerError> {
    let mut totals = SimulationTotals::default();
    let mut answering: BTreeSet<(RecipientId, Subject)> = BTreeSet::new();
    let mut due_answers: BTreeSet<(EventTime, RecipientId, Subject)> = BTreeSet::new();
    let mut pending = (book.opened(), first);
    loop {
        let (at, mut deliveries) = pending;
        while let Some(delivery) = (!deliveries.is_empty()).then(|| deliveries.remove(0)) {
            let key = delivery.key;
            // As the courier: a key delivered before is not sent again; a failure is not
            // recorded, so the book's re-send of a failed endpoint delivery goes out.
            if ledger.delivered_at(&key).is_some() {
                totals.refused_as_duplicates += 1;
                continue;
            }
            totals.attempted += 1;
            let outcome = failures.outcome_of_attempt(&key, delivery.attempt);
            let resends = book
                .record_delivery(&key, outcome, at)
                .expect("the book asked for this delivery");
            deliveries.extend(resends);
            if outcome == DeliveryOutcome::Failed {
                totals.failed += 1;
                continue;
            }
            ledger.check_and_record(&key, at, book.expires())?;
            let must_acknowledge = book
                .obligation(&key.recipient, &key.subject)
                .is_some_and(|obligation| obligation.must_acknowledge);
            let who = (key.recipient, key.subject);
            if must_acknowledge && !answering.contains(&who) {
                if let Some(delay) = answers.answer_delay_ms(&who.0, &who.1) {
                    due_answers.insert((at.plus_ms(delay), who.0.clone(), who.1.clone()));
                }
                answering.insert(who);
            }
        }
        let next_answer = due_answers.first().map(|(time, _, _)| *time);
        let deadline = book.next_deadline();
        let answer_first = next_answer.is_some_and(|answer| deadline.is_none_or(|d| answer <= d));
        pending = if answer_first {
            let (time, recipient, subject) = due_answers.pop_first().expect("an answer is due");
            book.acknowledge(&recipient, &subject, &recipient, time)
                .expect("the addressee answers a subject they were sent");
            totals.acknowledgements += 1;
            (time, Vec::new())
        } else if let Some(deadline) = deadline {
            (deadline, book.on_time(deadline))
        } else {
            return Ok(totals);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissemination::acknowledgement::{AckEventKind, AcknowledgementConfig};
    use crate::dissemination::coverage::{CoverageReport, PLAN_COVERAGE_GOAL};
    use crate::dissemination::recipients::Directory;
    use crate::dissemination::tree::AdminTree;
    use crate::ids::{AreaCode, WarningId};
    use crate::lifecycle::action_for;
    use crate::time::{HOUR_MS, SECOND_MS};
    use crate::warning::{Hazard, Level, Status, WarningEvent};

    #[test]
    fn the_generator_is_deterministic_and_spread() {
        assert_eq!(uniform(7, "a"), uniform(7, "a"));
        assert_ne!(uniform(7, "a"), uniform(8, "a"));
        let draws: Vec<f64> = (0..10_000).map(|i| uniform(1, &i.to_string())).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let below_tenth = draws.iter().filter(|x| **x < 0.1).count();
        assert!((900..1100).contains(&below_tenth), "{below_tenth}");
    }

    fn county_warning(county: &str) -> WarningEvent {
        WarningEvent {
            id: WarningId::new(format!("FF-{county}-20240701T0000Z")),
            version: 1,
            hazard: Hazard::FlashFlood,
            level: Level::Red,
            action: action_for(Hazard::FlashFlood, Level::Red),
            status: Status::Issued,
            target: county.to_owned(),
            area_codes: vec![AreaCode::new(county)],
            onset: EventTime(0),
            issued: EventTime(0),
            expires: EventTime(3 * HOUR_MS),
            evidence: Vec::new(),
            caused_by: None,
        }
    }

    /// A red warning over 天山区 with every channel failing sometimes (app 10 %, SMS 5 %,
    /// phone 20 %, loudspeakers 3 %, SMS broadcast 2 %) still reaches the plan's 96.5 %.
    #[test]
    fn coverage_with_channel_failures_reaches_the_plan_goal() {
        let tree = AdminTree::xinjiang_for_test();
        let directory = Directory::synthetic(&tree, 3);
        let warning = county_warning("650102");
        let reach = tree.reach_of_area_codes(&warning.area_codes);
        let targets = directory.targets(&reach, &tree);
        let failures = ChannelFailures::none(2025)
            .with_rate(ChannelKind::App, 0.10)
            .with_rate(ChannelKind::Sms, 0.05)
            .with_rate(ChannelKind::Phone, 0.20)
            .with_rate(ChannelKind::Loudspeaker, 0.03)
            .with_rate(ChannelKind::SmsBroadcast, 0.02);
        let answers = SimulatedAnswers::new(2025, 0.05, 20 * SECOND_MS, 240 * SECOND_MS);
        let run = || {
            let config = AcknowledgementConfig::default();
            let (mut book, first) = ForcedAcknowledgement::open(
                &warning,
                &targets,
                &directory,
                &config,
                warning.issued,
            );
            let mut ledger = DeliveryLedger::new(100_000);
            let totals = run_to_settlement(&mut book, first, &failures, &answers, &mut ledger)
                .expect("the ledger has room");
            (book, totals)
        };
        let (book, totals) = run();
        assert!(book.is_settled());
        assert!(totals.failed > 0, "failures are switched on");
        assert_eq!(totals.refused_as_duplicates, 0);
        let report = CoverageReport::of([&book]);
        assert_eq!(report.targeted, targets.len());
        assert!(report.reaches(PLAN_COVERAGE_GOAL), "{report:?}");
        let endpoint_resent = book.events().iter().any(|event| {
            matches!(event.kind, AckEventKind::Resent { .. })
                && book
                    .obligation(&event.recipient, &event.subject)
                    .is_some_and(|obligation| !obligation.must_acknowledge)
        });
        assert!(endpoint_resent, "a failed endpoint delivery is sent again");
        assert!(report.escalated > 0, "silent persons are handed over");
        let (again, again_totals) = run();
        assert_eq!(again, book, "same seed, same run");
        assert_eq!(again_totals, totals);
    }
}
