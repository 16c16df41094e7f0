//! The dissemination tree on tokio's paused clock, over the real Xinjiang admin divisions with
//! the synthetic directory: a red warning reaches exactly its township's people, the county head
//! and the CAP feed; an acknowledgement in time stops re-sends; someone else's acknowledgement is
//! refused; a person who never answers is re-sent on the next channels and handed over to the
//! township head, whose acknowledgement of the handover is routed to the book that escalated it.
//! A tree stopped mid-escalation and started again from the books its units saved keeps the
//! original deadlines and acknowledgements, and a withdrawal still reaches the restored books.
//! A tree taking over a warning from its owner (another node) carries on from the owner's
//! journaled books: an acknowledgement made there is not asked again. An acknowledgement is
//! answered only once the state sink confirms it has journaled the book recording it. A release
//! sent shard by shard (as a sharded cluster does) opens the books of the whole release, and a
//! shard the tree forgets drops its books and re-sends nothing more.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tianshan_actors::admin_unit::{
    release_of, AckRequest, AdminUnitActor, AdminUnitArgs, AdminUnitMsg, DeliveryRequest,
    Dissemination, Release,
};
use tianshan_actors::ask::ask;
use tianshan_actors::state_change::{JournalReceipt, RestoredBooks, StateChange};
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::dissemination::acknowledgement::{
    AckError, AckEventKind, AckOutcome, AcknowledgementConfig, DeliveryKey, DeliveryOutcome,
    ObligationState, Subject,
};
use tianshan_core::dissemination::recipients::{ChannelKind, Directory};
use tianshan_core::dissemination::shards::split_by_shard;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AreaCode, RecipientId, WarningId};
use tianshan_core::lifecycle::action_for;
use tianshan_core::region::load_admin_units;
use tianshan_core::signoff::{Audience, Department, ReleasedWarning};
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::{Hazard, Level, Status, WarningEvent};

const START: EventTime = EventTime(1_719_820_800_000);
const TOWNSHIP: &str = "650102002";

/// What the courier was asked to deliver: seconds after the start, key, attempt.
type Sent = Arc<Mutex<Vec<(i64, DeliveryKey, u32)>>>;

/// A courier whose every delivery succeeds at once.
struct RecordingCourier;

impl Actor for RecordingCourier {
    type Msg = DeliveryRequest;
    type State = (Sent, WallClock);
    type Arguments = (Sent, WallClock);

    async fn pre_start(
        &self,
        _me: ActorRef<DeliveryRequest>,
        args: (Sent, WallClock),
    ) -> Result<(Sent, WallClock), ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<DeliveryRequest>,
        request: DeliveryRequest,
        (sent, clock): &mut (Sent, WallClock),
    ) -> Result<(), ActorProcessingErr> {
        let seconds = (clock.now().millis() - START.millis()) / 1000;
        sent.lock().expect("not poisoned").push((
            seconds,
            request.delivery.key.clone(),
            request.delivery.attempt,
        ));
        request.report_to.cast(AdminUnitMsg::Delivered {
            key: request.delivery.key,
            outcome: DeliveryOutcome::Delivered,
        })?;
        Ok(())
    }
}

fn red_warning() -> ReleasedWarning {
    let hazard = Hazard::FlashFlood;
    ReleasedWarning {
        event: WarningEvent {
            id: WarningId::new("FF-B9999-20240701T0800Z"),
            version: 1,
            hazard,
            level: Level::Red,
            action: action_for(hazard, Level::Red),
            status: Status::Issued,
            target: "B9999".to_owned(),
            area_codes: vec![AreaCode::new("650102"), AreaCode::new(TOWNSHIP)],
            onset: START,
            issued: START,
            expires: START.plus_ms(3 * HOUR_MS),
            evidence: Vec::new(),
            caused_by: None,
        },
        message: None,
        department: Department::WaterResources,
        signature: None,
    }
}

/// When, over which channel and at which attempt the warning itself was sent to `id`.
fn warning_sends(sent: &[(i64, DeliveryKey, u32)], id: &str) -> Vec<(i64, ChannelKind, u32)> {
    sent.iter()
        .filter(|(_, key, _)| key.recipient.as_str() == id && key.subject == Subject::Warning)
        .map(|(at, key, attempt)| (*at, key.channel, *attempt))
        .collect()
}

fn person(id: &str) -> RecipientId {
    RecipientId::new(id)
}

/// Starts the tree of the real admin divisions with the synthetic directory (two villages per
/// township), default deadlines, the clock at [`START`] and a recording courier.
async fn start_fresh_tree() -> (
    Arc<Dissemination>,
    ActorRef<AdminUnitMsg>,
    ActorRef<DeliveryRequest>,
    Sent,
) {
    let units = load_admin_units(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang/admin_units.csv"
    )))
    .expect("admin units load");
    let tree = AdminTree::try_from_units(&units).expect("tree builds");
    let directory = Directory::synthetic(&tree, 2);
    let clock = WallClock::starting_at(START);
    let sent: Sent = Arc::default();
    let (courier, _) = Actor::spawn(None, RecordingCourier, (sent.clone(), clock))
        .await
        .expect("courier starts");
    let shared = Arc::new(Dissemination {
        tree,
        directory,
        acknowledgement: AcknowledgementConfig::default(),
        clock,
        courier: courier.get_derived(),
        state: None,
    });
    let (region, _) = Actor::spawn(
        None,
        AdminUnitActor,
        AdminUnitArgs {
            code: shared.tree.region().clone(),
            shared: shared.clone(),
            restored: Arc::default(),
        },
    )
    .await
    .expect("tree starts");
    (shared, region, courier, sent)
}

#[tokio::test(start_paused = true)]
async fn a_red_warning_is_delivered_resent_escalated_and_acknowledged() {
    let (shared, region, courier, sent) = start_fresh_tree().await;

    let (release, unknown) = release_of(&shared, Arc::new(red_warning()), Audience::Everyone);
    assert!(unknown.is_empty());
    let units: Vec<&str> = release.targets.keys().map(AreaCode::as_str).collect();
    assert_eq!(
        units,
        ["650000", "650102", TOWNSHIP],
        "CAP feed, county, township"
    );
    region
        .cast(AdminUnitMsg::Release(Arc::new(release)))
        .expect("region takes the release");

    tokio::time::sleep(Duration::from_secs(50)).await;
    let first: Vec<(String, ChannelKind)> = sent
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(at, key, attempt)| {
            assert_eq!((*at, *attempt), (0, 1), "{key:?}");
            (key.recipient.to_string(), key.channel)
        })
        .collect();
    assert!(first.contains(&("650000-cap".to_owned(), ChannelKind::CapFeed)));
    assert!(first.contains(&("650102-head".to_owned(), ChannelKind::App)));
    assert!(first.contains(&("650102-002-head".to_owned(), ChannelKind::App)));
    assert!(first.contains(&("650102-002-v1".to_owned(), ChannelKind::App)));
    assert!(first.contains(&("650102-002-v2".to_owned(), ChannelKind::App)));
    assert!(first.contains(&("650102-002-v1-speaker".to_owned(), ChannelKind::Loudspeaker)));
    assert!(
        first.iter().all(|(id, _)| id == "650000-cap"
            || id.starts_with("650102-head")
            || id.starts_with("650102-002")),
        "nobody outside the warned area: {first:?}"
    );

    // v1 answers in time; v2 tries to answer for v1 and is refused.
    let ack = |addressee: &str, subject: Subject, by: &str| AckRequest {
        warning: WarningId::new("FF-B9999-20240701T0800Z"),
        version: 1,
        addressee: person(addressee),
        subject,
        by: person(by),
    };
    let outcome = ask(
        &region,
        |port| {
            AdminUnitMsg::Acknowledge(
                ack("650102-002-v1", Subject::Warning, "650102-002-v2"),
                port,
            )
        },
        "acknowledge",
    )
    .await
    .expect("answered");
    assert!(
        matches!(outcome, Err(AckError::NotAddressee { .. })),
        "{outcome:?}"
    );
    let outcome = ask(
        &region,
        |port| {
            AdminUnitMsg::Acknowledge(
                ack("650102-002-v1", Subject::Warning, "650102-002-v1"),
                port,
            )
        },
        "acknowledge",
    )
    .await
    .expect("answered");
    assert_eq!(outcome, Ok(AckOutcome::InTime));

    // Past the three answer windows (100 s each by default for red) and the handover at 300 s.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let sent_now = sent.lock().expect("not poisoned").clone();
    let to = |id: &str| warning_sends(&sent_now, id);
    assert_eq!(
        to("650102-002-v1"),
        [(0, ChannelKind::App, 1)],
        "acknowledged in time: never re-sent"
    );
    assert_eq!(
        to("650102-002-v2"),
        [
            (0, ChannelKind::App, 1),
            (100, ChannelKind::Sms, 2),
            (200, ChannelKind::Phone, 3)
        ],
        "re-sent on the next channel at each deadline"
    );
    let handover = Subject::Handover {
        unreached: person("650102-002-v2"),
    };
    let handed: Vec<(i64, String)> = sent_now
        .iter()
        .filter(|(_, key, _)| key.subject == handover)
        .map(|(at, key, _)| (*at, key.recipient.to_string()))
        .collect();
    assert_eq!(handed, [(300, "650102-002-head".to_owned())]);

    // The township head answers the handover; the township's book records it.
    let outcome = ask(
        &region,
        |port| {
            AdminUnitMsg::Acknowledge(
                ack("650102-002-head", handover.clone(), "650102-002-head"),
                port,
            )
        },
        "acknowledge",
    )
    .await
    .expect("answered");
    assert_eq!(outcome, Ok(AckOutcome::InTime));
    let books = ask(&region, AdminUnitMsg::Books, "books")
        .await
        .expect("books");
    let township_book = books
        .iter()
        .find(|book| {
            book.obligation(&person("650102-002-v2"), &Subject::Warning)
                .is_some()
        })
        .expect("the township's book");
    let escalated = township_book.events().iter().any(|event| {
        event.recipient.as_str() == "650102-002-v2"
            && matches!(event.kind, AckEventKind::Escalated { .. })
    });
    assert!(escalated, "{:?}", township_book.events());
    region.stop(None);
    courier.stop(None);
}

#[tokio::test(start_paused = true)]
async fn the_signed_version_after_an_early_release_reaches_only_the_public_anew() {
    let (shared, region, courier, sent) = start_fresh_tree().await;
    let warning = Arc::new(red_warning());
    let (early, _) = release_of(&shared, warning.clone(), Audience::ResponsiblePersons);
    region
        .cast(AdminUnitMsg::Release(Arc::new(early)))
        .expect("region takes the early release");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let outcome = ask(
        &region,
        |port| {
            AdminUnitMsg::Acknowledge(
                AckRequest {
                    warning: warning.event.id.clone(),
                    version: 1,
                    addressee: person("650102-002-v1"),
                    subject: Subject::Warning,
                    by: person("650102-002-v1"),
                },
                port,
            )
        },
        "acknowledge",
    )
    .await
    .expect("answered");
    assert_eq!(outcome, Ok(AckOutcome::InTime));
    let early_ids: Vec<String> = sent
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(_, key, _)| key.recipient.to_string())
        .collect();
    assert!(early_ids.contains(&"650102-002-v1".to_owned()));
    assert!(
        !early_ids
            .iter()
            .any(|id| id.ends_with("-cap") || id.ends_with("-speaker")),
        "the public waits for sign-off: {early_ids:?}"
    );

    let (signed, _) = release_of(&shared, warning, Audience::Everyone);
    region
        .cast(AdminUnitMsg::Release(Arc::new(signed)))
        .expect("region takes the signed release");
    tokio::time::sleep(Duration::from_secs(400)).await;
    let sent_now = sent.lock().expect("not poisoned").clone();
    let to_v1: Vec<u32> = sent_now
        .iter()
        .filter(|(_, key, _)| key.recipient.as_str() == "650102-002-v1")
        .map(|(_, _, attempt)| *attempt)
        .collect();
    assert_eq!(to_v1, [1], "acknowledged before sign-off: never sent again");
    assert!(sent_now
        .iter()
        .any(|(at, key, _)| *at >= 10 && key.recipient.as_str() == "650000-cap"));
    region.stop(None);
    courier.stop(None);
}

/// The books the units saved, compacted as the changelog topic keeps them.
type Saved = Arc<Mutex<RestoredBooks>>;

/// A state sink keeping the latest state of every book.
struct RecordingStateSink;

impl Actor for RecordingStateSink {
    type Msg = StateChange;
    type State = Saved;
    type Arguments = Saved;

    async fn pre_start(
        &self,
        _me: ActorRef<StateChange>,
        saved: Saved,
    ) -> Result<Saved, ActorProcessingErr> {
        Ok(saved)
    }

    async fn handle(
        &self,
        _me: ActorRef<StateChange>,
        change: StateChange,
        saved: &mut Saved,
    ) -> Result<(), ActorProcessingErr> {
        match change {
            StateChange::Book(key, book) => saved.lock().expect("not poisoned").apply(key, book),
            StateChange::SignOff(..) => {
                return Err("a tree without a desk saved a sign-off book".into())
            }
            StateChange::Receipt(receipt) => receipt.confirm(),
        }
        Ok(())
    }
}

/// Returns the tree's shared data over the Xinjiang divisions, saving to `state`.
fn xinjiang(
    clock: WallClock,
    courier: &ActorRef<DeliveryRequest>,
    state: &ActorRef<StateChange>,
) -> Arc<Dissemination> {
    let units = load_admin_units(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang/admin_units.csv"
    )))
    .expect("admin units load");
    let tree = AdminTree::try_from_units(&units).expect("tree builds");
    let directory = Directory::synthetic(&tree, 2);
    Arc::new(Dissemination {
        tree,
        directory,
        acknowledgement: AcknowledgementConfig::default(),
        clock,
        courier: courier.get_derived(),
        state: Some(state.get_derived()),
    })
}

/// Starts a tree of the real admin divisions whose courier records into `sent` and whose
/// state sink into `saved`, and releases the red warning to `audience` at once; returns the
/// tree, the courier and the sink.
async fn red_warning_released(
    clock: WallClock,
    sent: &Sent,
    saved: &Saved,
    audience: Audience,
) -> (
    ActorRef<AdminUnitMsg>,
    ActorRef<DeliveryRequest>,
    ActorRef<StateChange>,
) {
    let (courier, _) = Actor::spawn(None, RecordingCourier, (sent.clone(), clock))
        .await
        .expect("courier starts");
    let (sink, _) = Actor::spawn(None, RecordingStateSink, saved.clone())
        .await
        .expect("state sink starts");
    let shared = xinjiang(clock, &courier, &sink);
    let region = start_tree(&shared, RestoredBooks::default()).await;
    let (release, _) = release_of(&shared, Arc::new(red_warning()), audience);
    region
        .cast(AdminUnitMsg::Release(Arc::new(release)))
        .expect("region takes the release");
    (region, courier, sink)
}

/// `id` acknowledges version 1 of the red warning at `tree`, in time.
async fn acknowledge_in_time(tree: &ActorRef<AdminUnitMsg>, id: &str) {
    let acknowledge = AckRequest {
        warning: WarningId::new("FF-B9999-20240701T0800Z"),
        version: 1,
        addressee: person(id),
        subject: Subject::Warning,
        by: person(id),
    };
    let outcome = ask(
        tree,
        |port| AdminUnitMsg::Acknowledge(acknowledge, port),
        "acknowledge",
    )
    .await
    .expect("answered");
    assert_eq!(outcome, Ok(AckOutcome::InTime));
}

/// Starts a tree from `restored`.
async fn start_tree(
    shared: &Arc<Dissemination>,
    restored: RestoredBooks,
) -> ActorRef<AdminUnitMsg> {
    let (region, _) = Actor::spawn(
        None,
        AdminUnitActor,
        AdminUnitArgs {
            code: shared.tree.region().clone(),
            shared: shared.clone(),
            restored: Arc::new(restored),
        },
    )
    .await
    .expect("tree starts");
    region
}

#[tokio::test(start_paused = true)]
async fn a_restarted_tree_keeps_the_deadlines_and_acknowledgements_of_the_stopped_one() {
    let clock = WallClock::starting_at(START);
    let sent: Sent = Arc::default();
    let saved: Saved = Arc::default();
    let (region, courier, sink) =
        red_warning_released(clock, &sent, &saved, Audience::Everyone).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    acknowledge_in_time(&region, "650102-002-v1").await;

    // Stop at 150 s: v2 was sent at 0 s and re-sent at 100 s, and waits until 200 s.
    tokio::time::sleep(Duration::from_secs(140)).await;
    region
        .stop_and_wait(None, None)
        .await
        .expect("the tree stops");
    let restored = saved.lock().expect("not poisoned").clone();
    let units: Vec<&str> = restored.iter().map(|(key, _)| key.unit.as_str()).collect();
    assert_eq!(
        units,
        ["650000", "650102", TOWNSHIP],
        "one open book per unit"
    );

    // A new tree, sharing nothing with the stopped one but the saved books.
    let restarted = xinjiang(clock, &courier, &sink);
    let region = start_tree(&restarted, restored).await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    let sent_now = sent.lock().expect("not poisoned").clone();
    let to = |id: &str, subject: &Subject| -> Vec<(i64, ChannelKind, u32)> {
        sent_now
            .iter()
            .filter(|(_, key, _)| key.recipient.as_str() == id && key.subject == *subject)
            .map(|(at, key, attempt)| (*at, key.channel, *attempt))
            .collect()
    };
    assert!(
        sent_now.iter().all(|(at, _, _)| *at != 150),
        "nothing starts over at the restart: {sent_now:?}"
    );
    assert_eq!(
        to("650102-002-v1", &Subject::Warning),
        [(0, ChannelKind::App, 1)],
        "acknowledged before the stop: not asked again"
    );
    assert_eq!(
        to("650102-002-v2", &Subject::Warning),
        [
            (0, ChannelKind::App, 1),
            (100, ChannelKind::Sms, 2),
            (200, ChannelKind::Phone, 3)
        ],
        "the third try at the original deadline"
    );
    let handover = Subject::Handover {
        unreached: person("650102-002-v2"),
    };
    assert_eq!(
        to("650102-002-head", &handover),
        [(300, ChannelKind::App, 1)],
        "handed over 300 s after the original release"
    );

    // The restored book still holds the acknowledgement made before the stop, and takes the
    // handover's.
    let outcome = ask(
        &region,
        |port| {
            AdminUnitMsg::Acknowledge(
                AckRequest {
                    warning: WarningId::new("FF-B9999-20240701T0800Z"),
                    version: 1,
                    addressee: person("650102-002-head"),
                    subject: handover.clone(),
                    by: person("650102-002-head"),
                },
                port,
            )
        },
        "acknowledge",
    )
    .await
    .expect("answered");
    assert_eq!(outcome, Ok(AckOutcome::InTime));
    let books = ask(&region, AdminUnitMsg::Books, "books")
        .await
        .expect("books");
    let township_book = books
        .iter()
        .find(|book| {
            book.obligation(&person("650102-002-v1"), &Subject::Warning)
                .is_some()
        })
        .expect("the township's book");
    assert_eq!(
        township_book
            .obligation(&person("650102-002-v1"), &Subject::Warning)
            .map(|obligation| &obligation.state),
        Some(&ObligationState::Acknowledged {
            at: START.plus_ms(10_000)
        })
    );
    region.stop(None);
    courier.stop(None);
    sink.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_withdrawal_after_a_restart_reaches_the_restored_books() {
    let clock = WallClock::starting_at(START);
    let sent: Sent = Arc::default();
    let saved: Saved = Arc::default();
    // Released early, to responsible persons only.
    let (region, courier, sink) =
        red_warning_released(clock, &sent, &saved, Audience::ResponsiblePersons).await;
    tokio::time::sleep(Duration::from_secs(150)).await;
    region
        .stop_and_wait(None, None)
        .await
        .expect("the tree stops");
    let restored = saved.lock().expect("not poisoned").clone();
    assert!(!restored.is_empty(), "the early release opened books");

    let restarted = xinjiang(clock, &courier, &sink);
    let region = start_tree(&restarted, restored).await;
    region
        .cast(AdminUnitMsg::Withdraw {
            warning: WarningId::new("FF-B9999-20240701T0800Z"),
            version: 1,
        })
        .expect("region takes the withdrawal");
    tokio::time::sleep(Duration::from_secs(400)).await;
    let late: Vec<(i64, DeliveryKey, u32)> = sent
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|(at, _, _)| *at >= 150)
        .cloned()
        .collect();
    assert!(
        late.is_empty(),
        "withdrawn: no re-send or handover: {late:?}"
    );
    assert!(
        saved.lock().expect("not poisoned").is_empty(),
        "every withdrawn book is closed in the saved state"
    );
    region.stop(None);
    courier.stop(None);
    sink.stop(None);
}

#[tokio::test(start_paused = true)]
async fn a_tree_taking_over_a_warning_carries_on_from_the_owners_journaled_books() {
    let clock = WallClock::starting_at(START);
    // The owner and the node that takes over, each with its own courier and state sink.
    let (owner_sent, taker_sent): (Sent, Sent) = (Arc::default(), Arc::default());
    let (owner_saved, taker_saved): (Saved, Saved) = (Arc::default(), Arc::default());
    let (owner, owner_courier, owner_sink) =
        red_warning_released(clock, &owner_sent, &owner_saved, Audience::Everyone).await;
    let (taker, taker_courier, taker_sink) =
        red_warning_released(clock, &taker_sent, &taker_saved, Audience::Everyone).await;
    let (owner, taker) = (&owner, &taker);

    // v1 acknowledges at the owner only: a decision reaches only the owner.
    tokio::time::sleep(Duration::from_secs(10)).await;
    acknowledge_in_time(owner, "650102-002-v1").await;

    // At 150 s the owner is gone and the other node takes over what it journaled.
    tokio::time::sleep(Duration::from_secs(140)).await;
    owner
        .stop_and_wait(None, None)
        .await
        .expect("the owner stops");
    let journaled = Arc::new(owner_saved.lock().expect("not poisoned").clone());
    let taken = ask(
        taker,
        |port| AdminUnitMsg::TakeOver(journaled, port),
        "take over",
    )
    .await
    .expect("answered");
    assert_eq!(
        taken, 1,
        "the township's book, where v1 acknowledged; the region's and the county's went here as \
         they went at the owner (same clock, same courier replies), so they are kept as they are"
    );
    let journaled_here = taker_saved.lock().expect("not poisoned").clone();
    assert_eq!(
        journaled_here.len(),
        3,
        "the new owner journals the books it took over"
    );
    assert!(
        journaled_here.iter().any(|(_, saved)| saved
            .ack
            .obligation(&person("650102-002-v1"), &Subject::Warning)
            .is_some_and(|o| matches!(o.state, ObligationState::Acknowledged { .. }))),
        "as taken over, with the acknowledgement"
    );
    let sent_before = taker_sent.lock().expect("not poisoned").len();
    tokio::time::sleep(Duration::from_secs(200)).await;

    let sent_after: Vec<(i64, DeliveryKey, u32)> =
        taker_sent.lock().expect("not poisoned")[sent_before..].to_vec();
    let to = |id: &str| warning_sends(&sent_after, id);
    assert_eq!(
        to("650102-002-v1"),
        [],
        "acknowledged at the owner: the new owner does not ask again"
    );
    assert_eq!(
        to("650102-002-v2"),
        [(200, ChannelKind::Phone, 3)],
        "the third try at the owner's deadline"
    );
    let books = ask(taker, AdminUnitMsg::Books, "books")
        .await
        .expect("books");
    let acknowledged = books
        .iter()
        .filter_map(|book| book.obligation(&person("650102-002-v1"), &Subject::Warning))
        .map(|obligation| &obligation.state)
        .collect::<Vec<_>>();
    assert_eq!(
        acknowledged,
        [&ObligationState::Acknowledged {
            at: START.plus_ms(10_000)
        }]
    );
    taker.stop(None);
    for (courier, sink) in [(owner_courier, owner_sink), (taker_courier, taker_sink)] {
        courier.stop(None);
        sink.stop(None);
    }
}

/// What a [`HoldingStateSink`] was sent, in order; its receipts stay unconfirmed.
type Held = Arc<Mutex<Vec<StateChange>>>;

/// A state sink slower than the tree: it keeps every change it is sent and confirms no
/// receipt until the test does.
struct HoldingStateSink;

impl Actor for HoldingStateSink {
    type Msg = StateChange;
    type State = Held;
    type Arguments = Held;

    async fn pre_start(
        &self,
        _me: ActorRef<StateChange>,
        held: Held,
    ) -> Result<Held, ActorProcessingErr> {
        Ok(held)
    }

    async fn handle(
        &self,
        _me: ActorRef<StateChange>,
        change: StateChange,
        held: &mut Held,
    ) -> Result<(), ActorProcessingErr> {
        held.lock().expect("not poisoned").push(change);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_is_answered_only_once_the_journal_has_it() {
    let clock = WallClock::starting_at(START);
    let sent: Sent = Arc::default();
    let held: Held = Arc::default();
    let (courier, _) = Actor::spawn(None, RecordingCourier, (sent.clone(), clock))
        .await
        .expect("courier starts");
    let (sink, _) = Actor::spawn(None, HoldingStateSink, held.clone())
        .await
        .expect("state sink starts");
    let shared = xinjiang(clock, &courier, &sink);
    let region = start_tree(&shared, RestoredBooks::default()).await;
    let (release, _) = release_of(&shared, Arc::new(red_warning()), Audience::Everyone);
    region
        .cast(AdminUnitMsg::Release(Arc::new(release)))
        .expect("region takes the release");
    tokio::time::sleep(Duration::from_secs(10)).await;

    let acknowledging = tokio::spawn({
        let region = region.clone();
        async move { acknowledge_in_time(&region, "650102-002-v1").await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !acknowledging.is_finished(),
        "no answer while the journal has not confirmed"
    );
    let receipts: Vec<JournalReceipt> = {
        let held = held.lock().expect("not poisoned");
        let receipt_at = held
            .iter()
            .position(|change| matches!(change, StateChange::Receipt(_)))
            .expect("the tree asked for a receipt");
        let journaled_before = match &held[..receipt_at] {
            [.., StateChange::Book(_, Some(saved))] => saved
                .ack
                .obligation(&person("650102-002-v1"), &Subject::Warning)
                .map(|obligation| obligation.state.clone()),
            other => panic!("the acknowledged book is journaled first: {other:?}"),
        };
        assert_eq!(
            journaled_before,
            Some(ObligationState::Acknowledged {
                at: START.plus_ms(10_000)
            })
        );
        held.iter()
            .filter_map(|change| match change {
                StateChange::Receipt(receipt) => Some(receipt.clone()),
                _ => None,
            })
            .collect()
    };
    for receipt in &receipts {
        receipt.confirm();
    }
    acknowledging
        .await
        .expect("answered in time once journaled");
    region.stop(None);
    courier.stop(None);
    sink.stop(None);
}

/// The recipients and subjects the books in force wait on, sorted.
async fn obligations_in_books(tree: &ActorRef<AdminUnitMsg>) -> Vec<(String, Subject)> {
    let books = ask(tree, AdminUnitMsg::Books, "books")
        .await
        .expect("the tree answers");
    let mut held: Vec<(String, Subject)> = books
        .iter()
        .flat_map(|book| book.obligations())
        .map(|(recipient, subject, _)| (recipient.to_string(), subject.clone()))
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    held
}

#[tokio::test(start_paused = true)]
async fn a_release_sent_shard_by_shard_opens_the_books_of_the_whole_and_a_forgotten_shard_sends_no_more(
) {
    // The whole release on one tree, its parts per shard (region, Urumqi) on another.
    let (shared, whole_tree, _, _) = start_fresh_tree().await;
    let (release, _) = release_of(&shared, Arc::new(red_warning()), Audience::Everyone);
    let parts = split_by_shard(&shared.tree, &release.targets);
    assert_eq!(
        parts.keys().map(AreaCode::as_str).collect::<Vec<_>>(),
        ["650000", "650100"]
    );
    whole_tree
        .cast(AdminUnitMsg::Release(Arc::new(release)))
        .expect("the tree takes the release");
    let (shared, sharded_tree, _, sent) = start_fresh_tree().await;
    for targets in parts.into_values() {
        let part = Release::reaching(
            &shared.tree,
            Arc::new(red_warning()),
            Audience::Everyone,
            targets,
        );
        sharded_tree
            .cast(AdminUnitMsg::Release(Arc::new(part)))
            .expect("the tree takes the part");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let whole = obligations_in_books(&whole_tree).await;
    assert!(whole.len() > 3, "{whole:?}");
    assert_eq!(obligations_in_books(&sharded_tree).await, whole);

    // The node gives Urumqi's shard up: its units drop their books and re-send nothing more;
    // the region's own book (the CAP feed) stays.
    let forgotten = ask(
        &sharded_tree,
        |port| AdminUnitMsg::Forget(Arc::new([AreaCode::new("650100")].into()), port),
        "forget",
    )
    .await
    .expect("the tree answers");
    assert_eq!(forgotten, 1);
    assert_eq!(
        obligations_in_books(&sharded_tree).await,
        [("650000-cap".to_owned(), Subject::Warning)]
    );
    let sent_before = sent.lock().expect("not poisoned").len();
    // Past every answer window and handover of the red warning.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let sent_now = sent.lock().expect("not poisoned").clone();
    assert!(
        sent_now[sent_before..]
            .iter()
            .all(|(_, key, _)| !key.recipient.as_str().starts_with("650102")),
        "re-sent after the shard was forgotten: {:?}",
        &sent_now[sent_before..]
    );
    assert!(
        !warning_sends(&sent_now, "650102-002-v1").is_empty(),
        "delivered before the shard was forgotten"
    );
}
