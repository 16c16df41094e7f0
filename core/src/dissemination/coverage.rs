//! Coverage and timeliness of disseminated warnings: of the recipients a warning targeted, how
//! many it reached and how many persons acknowledged within their deadline, and how long first
//! delivery and acknowledgement took. Computed from the event logs of
//! [`ForcedAcknowledgement`], for one warning version or many together.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dissemination::acknowledgement::{
    AckEventKind, ForcedAcknowledgement, ObligationState, Subject,
};
use crate::ids::RecipientId;
use crate::time::EventTime;

/// The action plan's coverage goal: 96.5 % of targeted recipients reached.
pub const PLAN_COVERAGE_GOAL: f64 = 0.965;

/// Median and maximum of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// How many durations.
    pub count: usize,
    /// The median in ms; for an even count the mean of the two middle values, rounded down.
    pub median_ms: i64,
    /// The largest in ms.
    pub max_ms: i64,
}

impl LatencySummary {
    /// Summarises `durations_ms`; `None` when empty.
    pub fn of(mut durations_ms: Vec<i64>) -> Option<LatencySummary> {
        durations_ms.sort_unstable();
        let count = durations_ms.len();
        let max_ms = *durations_ms.last()?;
        let median_ms = if count % 2 == 1 {
            durations_ms[count / 2]
        } else {
            (durations_ms[count / 2 - 1] + durations_ms[count / 2]).div_euclid(2)
        };
        Some(LatencySummary {
            count,
            median_ms,
            max_ms,
        })
    }
}

/// Coverage and timeliness over one or more warning versions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    /// Warning versions counted.
    pub warnings: usize,
    /// Recipients targeted (persons and public endpoints; handovers not counted).
    pub targeted: usize,
    /// Targeted recipients with at least one delivery reported.
    pub delivered: usize,
    /// Targeted persons who had to acknowledge.
    pub must_acknowledge: usize,
    /// Of those, acknowledged before their last window closed.
    pub acknowledged_in_time: usize,
    /// Of those, handed over to the level above.
    pub escalated: usize,
    /// `delivered / targeted`; `None` when nothing was targeted.
    pub delivered_share: Option<f64>,
    /// `acknowledged_in_time / must_acknowledge`; `None` when nobody had to acknowledge.
    pub acknowledged_share: Option<f64>,
    /// Time from the start of dissemination to each targeted recipient's first delivery.
    pub first_delivery: Option<LatencySummary>,
    /// Time from the start of dissemination to each in-time acknowledgement.
    pub acknowledgement: Option<LatencySummary>,
}

impl CoverageReport {
    /// Computes the report over `books`.
    pub fn of<'a>(books: impl IntoIterator<Item = &'a ForcedAcknowledgement>) -> CoverageReport {
        let mut report = CoverageReport {
            warnings: 0,
            targeted: 0,
            delivered: 0,
            must_acknowledge: 0,
            acknowledged_in_time: 0,
            escalated: 0,
            delivered_share: None,
            acknowledged_share: None,
            first_delivery: None,
            acknowledgement: None,
        };
        let mut first_delivery_ms = Vec::new();
        let mut acknowledgement_ms = Vec::new();
        for book in books {
            report.warnings += 1;
            let opened = book.opened();
            let mut first_delivered: BTreeMap<&RecipientId, EventTime> = BTreeMap::new();
            for event in book.events() {
                let delivered = matches!(event.kind, AckEventKind::Delivered { .. });
                if delivered && event.subject == Subject::Warning {
                    first_delivered
                        .entry(&event.recipient)
                        .and_modify(|first| *first = (*first).min(event.at))
                        .or_insert(event.at);
                }
            }
            for (recipient, subject, obligation) in book.obligations() {
                if *subject != Subject::Warning {
                    continue;
                }
                report.targeted += 1;
                if let Some(at) = first_delivered.get(recipient) {
                    report.delivered += 1;
                    first_delivery_ms.push(at.millis() - opened.millis());
                }
                if !obligation.must_acknowledge {
                    continue;
                }
                report.must_acknowledge += 1;
                match obligation.state {
                    ObligationState::Acknowledged { at } => {
                        report.acknowledged_in_time += 1;
                        acknowledgement_ms.push(at.millis() - opened.millis());
                    }
                    ObligationState::Escalated { .. } => report.escalated += 1,
                    _ => {}
                }
            }
        }
        let share = |part: usize, whole: usize| (whole > 0).then(|| part as f64 / whole as f64);
        report.delivered_share = share(report.delivered, report.targeted);
        report.acknowledged_share = share(report.acknowledged_in_time, report.must_acknowledge);
        report.first_delivery = LatencySummary::of(first_delivery_ms);
        report.acknowledgement = LatencySummary::of(acknowledgement_ms);
        report
    }

    /// Returns whether the delivered share reaches `goal` (such as [`PLAN_COVERAGE_GOAL`]).
    pub fn reaches(&self, goal: f64) -> bool {
        self.delivered_share.is_some_and(|share| share >= goal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissemination::acknowledgement::tests::{book_for, id};
    use crate::dissemination::acknowledgement::DeliveryOutcome;
    use crate::time::SECOND_MS;
    use crate::warning::Level;

    #[test]
    fn latency_summaries_take_the_middle() {
        assert_eq!(LatencySummary::of(Vec::new()), None);
        let odd = LatencySummary::of(vec![30, 10, 20]).expect("three");
        assert_eq!((odd.count, odd.median_ms, odd.max_ms), (3, 20, 30));
        let even = LatencySummary::of(vec![40, 10, 25, 20]).expect("four");
        assert_eq!((even.median_ms, even.max_ms), (22, 40));
    }

    /// Three persons and one loudspeaker targeted by a red warning: p1 is delivered at 2 s and
    /// acknowledges at 40 s, p2 is delivered at 5 s (app failed, SMS at 105 s) and
    /// acknowledges at 150 s, p3 is never delivered and is handed over at 300 s, the
    /// loudspeaker is delivered at 1 s.
    #[test]
    fn coverage_is_counted_by_hand() {
        let (mut book, first) = book_for(Level::Red, &["p1", "p2", "p3"], &["speaker"]);
        let at = |seconds: i64| EventTime(seconds * SECOND_MS);
        let find = |who: &str| {
            first
                .iter()
                .find(|d| d.key.recipient == id(who))
                .expect("a first delivery for each target")
                .key
                .clone()
        };
        let reports = [
            ("speaker", DeliveryOutcome::Delivered, 1),
            ("p1", DeliveryOutcome::Delivered, 2),
            ("p2", DeliveryOutcome::Failed, 3),
            ("p3", DeliveryOutcome::Failed, 4),
        ];
        for (who, outcome, seconds) in reports {
            book.record_delivery(&find(who), outcome, at(seconds))
                .expect("asked for");
        }
        book.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(40))
            .expect("addressee");
        let resent = book.on_time(at(100));
        let p2_sms = resent
            .iter()
            .find(|d| d.key.recipient == id("p2"))
            .expect("p2 re-sent")
            .key
            .clone();
        book.record_delivery(&p2_sms, DeliveryOutcome::Delivered, at(105))
            .expect("asked for");
        book.acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(150))
            .expect("addressee");
        book.on_time(at(200));
        book.on_time(at(300));

        let coverage = CoverageReport::of([&book]);
        assert_eq!(coverage.warnings, 1);
        assert_eq!(coverage.targeted, 4);
        assert_eq!(coverage.delivered, 3);
        assert_eq!(coverage.must_acknowledge, 3);
        assert_eq!(coverage.acknowledged_in_time, 2);
        assert_eq!(coverage.escalated, 1);
        assert_eq!(coverage.delivered_share, Some(0.75));
        assert_eq!(coverage.acknowledged_share, Some(2.0 / 3.0));
        let first = coverage.first_delivery.expect("deliveries");
        // 1 s, 2 s, 105 s → median 2 s.
        assert_eq!(
            (first.count, first.median_ms, first.max_ms),
            (3, 2_000, 105_000)
        );
        let acks = coverage.acknowledgement.expect("acknowledgements");
        assert_eq!(
            (acks.count, acks.median_ms, acks.max_ms),
            (2, 95_000, 150_000)
        );
        assert!(!coverage.reaches(PLAN_COVERAGE_GOAL));
        assert!(coverage.reaches(0.75));
    }
}
