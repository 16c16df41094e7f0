use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::dissemination::ledger::DeliveryLedger;
use crate::dissemination::simulation::{run_to_settlement, ChannelFailures, SimulatedAnswers};
use crate::dissemination::tree::AdminTree;
use crate::ids::AreaCode;
use crate::lifecycle::action_for;
use crate::warning::Hazard;

/// A township of 天山区 with three village heads, one reachable by SMS only, its chain of
/// heads up to the region duty officer (who has a phone only), and a loudspeaker.
const PEOPLE: &str = "recipient_id,role,unit_code,name,channels\n\
    p1,village,650102002,村一,app;sms;phone\n\
    p2,village,650102002,村二,app;sms;phone\n\
    p3,village,650102002,村三,app;sms;phone\n\
    sms-only,village,650102002,村四,sms\n\
    t1,township,650102002,镇长,app;sms;phone\n\
    c1,county,650102,县长,app;sms;phone\n\
    d1,prefecture-duty,650100,州值班,app;sms;phone\n\
    r1,region-duty,650000,区值班,phone\n\
    speaker,public,650102002,广播,loudspeaker\n";

pub(crate) fn id(text: &str) -> RecipientId {
    RecipientId::new(text)
}

fn at(seconds: i64) -> EventTime {
    EventTime(seconds * SECOND_MS)
}

fn warning(level: Level, expires: EventTime) -> WarningEvent {
    WarningEvent {
        id: WarningId::new("FF-B0001-20240701T0000Z"),
        version: 1,
        hazard: Hazard::FlashFlood,
        level,
        action: action_for(Hazard::FlashFlood, level),
        status: Status::Issued,
        target: "B0001".to_owned(),
        area_codes: vec![AreaCode::new("650102"), AreaCode::new("650102002")],
        onset: EventTime(0),
        issued: EventTime(0),
        expires,
        evidence: Vec::new(),
        caused_by: None,
    }
}

fn directory() -> Directory {
    let tree = AdminTree::xinjiang_for_test();
    Directory::read_csv(PEOPLE.as_bytes(), Path::new("people.csv"), &tree).expect("test people")
}

fn open_with(
    warning: &WarningEvent,
    targets: &[&str],
    config: &AcknowledgementConfig,
) -> (ForcedAcknowledgement, Vec<Delivery>) {
    let directory = directory();
    let targets: Vec<&Recipient> = targets
        .iter()
        .map(|name| directory.get(&id(name)).expect("a test recipient"))
        .collect();
    ForcedAcknowledgement::open(warning, &targets, &directory, config, EventTime(0))
}

/// Opens a warning of `level` (expiring after 3 h) at time 0 for `persons` and `publics`.
pub(crate) fn book_for(
    level: Level,
    persons: &[&str],
    publics: &[&str],
) -> (ForcedAcknowledgement, Vec<Delivery>) {
    let targets: Vec<&str> = persons.iter().chain(publics).copied().collect();
    let warning = warning(level, at(3 * 3600));
    open_with(&warning, &targets, &AcknowledgementConfig::default())
}

fn handover(unreached: &str) -> Subject {
    Subject::Handover {
        unreached: id(unreached),
    }
}

/// Returns the log as `(seconds, recipient, subject, kind)` rows.
fn timeline(book: &ForcedAcknowledgement) -> Vec<(i64, String, Subject, AckEventKind)> {
    book.events()
        .iter()
        .map(|e| {
            let seconds = e.at.millis() / SECOND_MS;
            (
                seconds,
                e.recipient.to_string(),
                e.subject.clone(),
                e.kind.clone(),
            )
        })
        .collect()
}

#[test]
fn an_unanswered_red_warning_escalates_on_the_default_timeline() {
    let (mut book, first) = book_for(Level::Red, &["p1"], &[]);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].key.channel, ChannelKind::App);
    let mut deadlines = Vec::new();
    while let Some(deadline) = book.next_deadline() {
        deadlines.push(deadline.millis() / SECOND_MS);
        book.on_time(deadline);
    }
    assert_eq!(
        deadlines,
        [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500]
    );
    use AckEventKind::{Escalated, GaveUp, Resent, Sent};
    use ChannelKind::{App, Phone, Sms};
    let w = Subject::Warning;
    let h = handover("p1");
    let row =
        |s: i64, who: &str, subject: &Subject, kind| (s, who.to_owned(), subject.clone(), kind);
    let expected = vec![
        row(0, "p1", &w, Sent { channel: App }),
        row(
            100,
            "p1",
            &w,
            Resent {
                channel: Sms,
                attempt: 2,
            },
        ),
        row(
            200,
            "p1",
            &w,
            Resent {
                channel: Phone,
                attempt: 3,
            },
        ),
        row(300, "p1", &w, Escalated { to: id("t1") }),
        row(300, "t1", &h, Sent { channel: App }),
        row(
            400,
            "t1",
            &h,
            Resent {
                channel: Sms,
                attempt: 2,
            },
        ),
        row(
            500,
            "t1",
            &h,
            Resent {
                channel: Phone,
                attempt: 3,
            },
        ),
        row(600, "t1", &h, Escalated { to: id("c1") }),
        row(600, "c1", &h, Sent { channel: App }),
        row(
            700,
            "c1",
            &h,
            Resent {
                channel: Sms,
                attempt: 2,
            },
        ),
        row(
            800,
            "c1",
            &h,
            Resent {
                channel: Phone,
                attempt: 3,
            },
        ),
        row(900, "c1", &h, Escalated { to: id("d1") }),
        row(900, "d1", &h, Sent { channel: App }),
        row(
            1000,
            "d1",
            &h,
            Resent {
                channel: Sms,
                attempt: 2,
            },
        ),
        row(
            1100,
            "d1",
            &h,
            Resent {
                channel: Phone,
                attempt: 3,
            },
        ),
        row(1200, "d1", &h, Escalated { to: id("r1") }),
        // r1 has a phone only: no second or third channel, but the same window.
        row(1200, "r1", &h, Sent { channel: Phone }),
        row(1500, "r1", &h, GaveUp),
    ];
    assert_eq!(timeline(&book), expected);
    assert_eq!(
        book.obligation(&id("p1"), &Subject::Warning)
            .map(|o| &o.state),
        Some(&ObligationState::Escalated {
            at: at(300),
            to: id("t1")
        })
    );
    assert!(book.is_settled());
}

#[test]
fn an_acknowledgement_before_the_deadline_stops_resends() {
    let (mut book, _) = book_for(Level::Orange, &["p1", "p2"], &[]);
    let outcome = book.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(50));
    assert_eq!(outcome, Ok(AckOutcome::InTime));
    let resent = book.on_time(at(100));
    let who: Vec<&str> = resent.iter().map(|d| d.key.recipient.as_str()).collect();
    assert_eq!(who, ["p2"]);
    book.acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(150))
        .expect("addressee");
    assert_eq!(book.next_deadline(), None);
    assert!(book.on_time(at(1000)).is_empty());
    assert_eq!(
        book.acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(160)),
        Ok(AckOutcome::AlreadyAcknowledged)
    );
    let acknowledgements = book
        .events()
        .iter()
        .filter(|e| matches!(e.kind, AckEventKind::Acknowledged { late: false }))
        .count();
    assert_eq!(acknowledgements, 2);
}

fn state_of(book: &ForcedAcknowledgement, person: &str) -> ObligationState {
    book.obligation(&id(person), &Subject::Warning)
        .expect("an obligation of the person")
        .state
        .clone()
}

#[test]
fn taking_over_an_earlier_journaled_state_of_the_same_book_keeps_what_happened_since() {
    let (mut book, _) = book_for(Level::Orange, &["p1", "p2"], &[]);
    let journaled = book.clone();
    book.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(50))
        .expect("addressee");
    let before = book.clone();
    assert!(!book.take_over(&journaled));
    assert_eq!(book, before);
    assert_eq!(
        book.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(60)),
        Ok(AckOutcome::AlreadyAcknowledged)
    );
}

#[test]
fn a_journaled_state_further_along_is_taken_whole() {
    let (mut book, _) = book_for(Level::Orange, &["p1", "p2"], &[]);
    let mut journaled = book.clone();
    journaled.on_time(at(100));
    journaled
        .acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(150))
        .expect("addressee");
    assert!(book.take_over(&journaled));
    assert_eq!(book, journaled);
}

#[test]
fn diverged_books_keep_the_journal_and_the_answers_given_here() {
    let (base, _) = book_for(Level::Orange, &["p1", "p2"], &[]);
    let mut here = base.clone();
    here.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(50))
        .expect("addressee");
    let mut journaled = base;
    journaled.on_time(at(100));
    journaled
        .acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(150))
        .expect("addressee");
    assert!(here.take_over(&journaled));
    assert_eq!(
        state_of(&here, "p1"),
        ObligationState::Acknowledged { at: at(50) }
    );
    assert_eq!(
        state_of(&here, "p2"),
        ObligationState::Acknowledged { at: at(150) }
    );
    // The journal's log comes first, then the answer carried over from here.
    assert!(here.events().starts_with(journaled.events()));
    assert_eq!(here.events().len(), journaled.events().len() + 1);
    assert_eq!(here.next_deadline(), None);
}

#[test]
fn only_the_addressed_person_may_acknowledge() {
    let (mut book, _) = book_for(Level::Red, &["p1"], &["speaker"]);
    let before = book.clone();
    assert_eq!(
        book.acknowledge(&id("p1"), &Subject::Warning, &id("t1"), at(10)),
        Err(AckError::NotAddressee {
            warning: book.warning().clone(),
            version: 1,
            addressee: id("p1"),
            by: id("t1"),
        })
    );
    assert!(matches!(
        book.acknowledge(&id("speaker"), &Subject::Warning, &id("speaker"), at(10)),
        Err(AckError::NotAPerson { .. })
    ));
    assert!(matches!(
        book.acknowledge(&id("t1"), &handover("p1"), &id("t1"), at(10)),
        Err(AckError::NothingToAcknowledge { .. })
    ));
    assert_eq!(book, before, "refused acknowledgements change nothing");
    let message = book
        .acknowledge(&id("p1"), &Subject::Warning, &id("p2"), at(10))
        .expect_err("wrong person")
        .to_string();
    assert_eq!(
        message,
        "p2 may not acknowledge FF-B0001-20240701T0000Z v1 addressed to p1"
    );
}

#[test]
fn a_restored_state_gives_the_same_next_actions() {
    let (mut book, _) = book_for(Level::Red, &["p1", "p2", "sms-only"], &["speaker"]);
    book.acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(30))
        .expect("addressee");
    book.on_time(at(100));
    let json = serde_json::to_string(&book).expect("serialise");
    let mut restored: ForcedAcknowledgement = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(restored, book);
    assert_eq!(restored.next_deadline(), Some(at(200)));
    for step in [200, 300, 400] {
        assert_eq!(
            restored.on_time(at(step)),
            book.on_time(at(step)),
            "at {step} s"
        );
        assert_eq!(restored.next_deadline(), book.next_deadline());
    }
    assert_eq!(restored, book);
}

#[test]
fn blue_and_cancellations_are_sent_once_without_acknowledgement() {
    let config = AcknowledgementConfig::default();
    let mut cancelled = warning(Level::Red, at(3600));
    cancelled.status = Status::Cancelled;
    for warning in [warning(Level::Blue, at(3600)), cancelled] {
        let (book, first) = open_with(&warning, &["p1", "sms-only"], &config);
        let channels: Vec<ChannelKind> = first.iter().map(|d| d.key.channel).collect();
        assert_eq!(channels, [ChannelKind::App, ChannelKind::Sms]);
        assert_eq!(book.next_deadline(), None);
        let states: Vec<&ObligationState> = book.obligations().map(|(_, _, o)| &o.state).collect();
        assert_eq!(
            states,
            [&ObligationState::Informed, &ObligationState::Informed]
        );
    }
}

#[test]
fn a_single_channel_person_gets_the_whole_window_before_escalation() {
    let (mut book, first) = book_for(Level::Red, &["sms-only"], &[]);
    assert_eq!(first[0].key.channel, ChannelKind::Sms);
    assert!(book.on_time(at(100)).is_empty());
    assert!(book.on_time(at(200)).is_empty());
    let handover_sent = book.on_time(at(300));
    assert_eq!(handover_sent.len(), 1);
    assert_eq!(handover_sent[0].key.recipient, id("t1"));
    assert_eq!(handover_sent[0].key.subject, handover("sms-only"));
}

#[test]
fn expiry_closes_what_still_waits_and_late_answers_are_recorded() {
    let expires = at(450);
    let (mut book, _) = open_with(
        &warning(Level::Red, expires),
        &["p1", "p2"],
        &AcknowledgementConfig::default(),
    );
    book.acknowledge(&id("p2"), &Subject::Warning, &id("p2"), at(20))
        .expect("addressee");
    for step in [100, 200, 300, 400] {
        book.on_time(at(step));
    }
    assert_eq!(
        book.next_deadline(),
        Some(expires),
        "t1's window ends after expiry"
    );
    assert_eq!(
        book.acknowledge(&id("p1"), &Subject::Warning, &id("p1"), at(420)),
        Ok(AckOutcome::Late),
        "p1 answers after the handover"
    );
    assert!(book.on_time(expires).is_empty());
    assert_eq!(
        book.obligation(&id("t1"), &handover("p1"))
            .map(|o| &o.state),
        Some(&ObligationState::Expired { at: expires })
    );
    assert!(book.is_settled());
    let last: Vec<AckEventKind> = book
        .events()
        .iter()
        .rev()
        .take(2)
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(
        last,
        [
            AckEventKind::Expired,
            AckEventKind::Acknowledged { late: true }
        ]
    );
}

#[test]
fn deliveries_are_reported_into_the_log_and_strangers_are_refused() {
    let (mut book, first) = book_for(Level::Red, &["p1"], &[]);
    book.record_delivery(&first[0].key, DeliveryOutcome::Failed, at(1))
        .expect("asked for");
    let mut stranger = first[0].key.clone();
    stranger.version = 2;
    assert!(matches!(
        book.record_delivery(&stranger, DeliveryOutcome::Delivered, at(2)),
        Err(AckError::UnknownDelivery { .. })
    ));
    assert_eq!(
        book.events().last().map(|e| &e.kind),
        Some(&AckEventKind::DeliveryFailed {
            channel: ChannelKind::App
        })
    );
}

#[test]
fn the_config_reads_kebab_case_durations_and_is_validated() {
    let config: AcknowledgementConfig =
        toml::from_str("[yellow]\nacknowledge = true\nattempts = 2\nanswer-within = \"5m\"\n")
            .expect("valid config");
    assert_eq!(config.yellow.escalate_after_ms(), 10 * MINUTE_MS);
    assert_eq!(config.red, AcknowledgementConfig::default().red);
    assert_eq!(config.red.escalate_after_ms(), 5 * MINUTE_MS);
    assert_eq!(config.validate(), Ok(()));
    let text = toml::to_string(&AcknowledgementConfig::default()).expect("serialise");
    assert!(text.contains("answer-within = \"100s\""), "{text}");

    let mut broken = AcknowledgementConfig::default();
    broken.orange.attempts = 0;
    assert!(broken
        .validate()
        .unwrap_err()
        .contains("acknowledgement.orange.attempts"));
    let mut broken = AcknowledgementConfig::default();
    broken.blue.answer_within_ms = 2 * HOUR_MS;
    assert!(broken
        .validate()
        .unwrap_err()
        .contains("acknowledgement.blue.answer-within"));
    let unknown = toml::from_str::<AcknowledgementConfig>(
        "[red]\nacknowledge = true\nattempts = 3\nanswer-within = \"100s\"\ntries = 4\n",
    );
    assert!(unknown.is_err());
}

/// Follows the handovers of `unreached` from `recipient` and returns the last obligation's
/// state; panics if a handover was recorded but not opened, or an ending not logged.
fn end_of_chain<'a>(
    book: &'a ForcedAcknowledgement,
    recipient: &RecipientId,
    subject: &Subject,
) -> &'a ObligationState {
    let obligation = book
        .obligation(recipient, subject)
        .unwrap_or_else(|| panic!("{recipient} {subject:?} was handed over but never opened"));
    let logged = |kind: &AckEventKind, at: EventTime| {
        book.events().iter().any(|e| {
            e.recipient == *recipient && e.subject == *subject && e.kind == *kind && e.at == at
        })
    };
    match &obligation.state {
        ObligationState::Escalated { at, to } => {
            assert!(logged(&AckEventKind::Escalated { to: to.clone() }, *at));
            let next = match subject {
                Subject::Warning => Subject::Handover {
                    unreached: recipient.clone(),
                },
                Subject::Handover { .. } => subject.clone(),
            };
            end_of_chain(book, to, &next)
        }
        ObligationState::Acknowledged { at } => {
            assert!(logged(&AckEventKind::Acknowledged { late: false }, *at));
            &obligation.state
        }
        ObligationState::GaveUp { at } => {
            assert!(logged(&AckEventKind::GaveUp, *at));
            &obligation.state
        }
        ObligationState::Expired { at } => {
            assert!(logged(&AckEventKind::Expired, *at));
            &obligation.state
        }
        state @ (ObligationState::AwaitingAnswer { .. } | ObligationState::Informed) => state,
    }
}

proptest! {
    /// Whatever fails and whoever stays silent, every targeted person ends acknowledged, or
    /// handed over along a recorded chain that ends acknowledged, given up or expired, and no
    /// delivery is made twice.
    #[test]
    fn nobody_targeted_is_lost(
        seed in any::<u64>(),
        app in 0.0..1.0_f64,
        sms in 0.0..1.0_f64,
        phone in 0.0..1.0_f64,
        silent in 0.0..1.0_f64,
        expires_s in 60_i64..4_000,
        level in prop::sample::select(vec![Level::Red, Level::Orange, Level::Yellow]),
    ) {
        let targets = ["p1", "p2", "p3", "sms-only", "t1", "speaker"];
        let (mut book, first) = open_with(
            &warning(level, at(expires_s)),
            &targets,
            &AcknowledgementConfig::default(),
        );
        let failures = ChannelFailures::none(seed)
            .with_rate(ChannelKind::App, app)
            .with_rate(ChannelKind::Sms, sms)
            .with_rate(ChannelKind::Phone, phone)
            .with_rate(ChannelKind::Loudspeaker, app);
        let answers = SimulatedAnswers::new(seed, silent, 5 * SECOND_MS, 900 * SECOND_MS);
        let mut ledger = DeliveryLedger::new(1_000);
        let totals = run_to_settlement(&mut book, first, &failures, &answers, &mut ledger)
            .expect("room in the ledger");
        prop_assert!(book.is_settled());
        prop_assert_eq!(totals.refused_as_duplicates, 0);
        let sends = book
            .events()
            .iter()
            .filter(|e| matches!(e.kind, AckEventKind::Sent { .. } | AckEventKind::Resent { .. }))
            .count();
        prop_assert_eq!(sends, totals.attempted);
        for name in targets {
            let recipient = id(name);
            let end = end_of_chain(&book, &recipient, &Subject::Warning);
            let person = name != "speaker";
            let closed = matches!(
                end,
                ObligationState::Acknowledged { .. }
                    | ObligationState::GaveUp { .. }
                    | ObligationState::Expired { .. }
            );
            prop_assert!(if person { closed } else { *end == ObligationState::Informed }, "{name}: {end:?}");
        }
    }
}

#[test]
fn a_failed_delivery_to_a_public_endpoint_is_sent_again_on_its_channel_up_to_the_attempts() {
    let (mut book, first) = book_for(Level::Red, &[], &["speaker"]);
    assert_eq!(first.len(), 1);
    let key = first[0].key.clone();
    let again = book
        .record_delivery(&key, DeliveryOutcome::Failed, at(1))
        .expect("asked for");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].key.clone(), again[0].attempt), (key.clone(), 2));
    let third = book
        .record_delivery(&key, DeliveryOutcome::Failed, at(2))
        .expect("asked for");
    assert_eq!(third[0].attempt, 3);
    let none = book
        .record_delivery(&key, DeliveryOutcome::Failed, at(3))
        .expect("asked for");
    assert!(none.is_empty(), "three tries for red, then no more");
    // A delivered endpoint is never re-sent.
    let (mut book, first) = book_for(Level::Red, &[], &["speaker"]);
    let after_success = book
        .record_delivery(&first[0].key, DeliveryOutcome::Delivered, at(1))
        .expect("asked for");
    assert!(after_success.is_empty());
    // A person who must answer is re-sent by the answer window, not by the failure report.
    let (mut book, first) = book_for(Level::Red, &["p1"], &[]);
    let person = book
        .record_delivery(&first[0].key, DeliveryOutcome::Failed, at(1))
        .expect("asked for");
    assert!(person.is_empty());
}
