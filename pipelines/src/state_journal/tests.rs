//! The state journal on the embedded broker (librdkafka's mock cluster): what the actor writes
//! is what a starting node reads back, the latest state of each book winning and a closed book
//! gone.

use std::path::Path;

use rdkafka::ClientConfig;
use tianshan_core::dissemination::acknowledgement::{AcknowledgementConfig, Subject};
use tianshan_core::dissemination::recipients::Directory;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::RecipientId;
use tianshan_core::lifecycle::action_for;
use tianshan_core::region::load_admin_units;
use tianshan_core::signoff::{Department, DraftOrigin, SignOffPolicy, Submission};
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::{Hazard, Level, Status, WarningEvent};

use super::*;
use crate::embedded_broker::EmbeddedBroker;
use crate::warning_publisher::TopicRecord;
use tianshan_actors::state_change::JournalReceipt;

const TOPIC: &str = "dissemination.state";
const START: EventTime = EventTime(1_719_820_800_000);

fn red_warning() -> WarningEvent {
    let hazard = Hazard::FlashFlood;
    WarningEvent {
        id: WarningId::new("FF-B9999-20240701T0800Z"),
        version: 1,
        hazard,
        level: Level::Red,
        action: action_for(hazard, Level::Red),
        status: Status::Issued,
        target: "B9999".to_owned(),
        area_codes: vec![AreaCode::new("650102"), AreaCode::new("650102002")],
        onset: START,
        issued: START,
        expires: START.plus_ms(3 * HOUR_MS),
        evidence: Vec::new(),
        caused_by: None,
    }
}

/// Returns the book of `event` at `unit` for the given people, opened at the start.
fn book(unit: &str, people: &[&str], event: &WarningEvent) -> (BookKey, SavedBook) {
    let units = load_admin_units(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regions/xinjiang/admin_units.csv"
    )))
    .expect("admin units load");
    let tree = AdminTree::try_from_units(&units).expect("tree builds");
    let directory = Directory::synthetic(&tree, 2);
    let targets: Vec<_> = people
        .iter()
        .map(|id| {
            directory
                .get(&RecipientId::new(id))
                .expect("in the directory")
        })
        .collect();
    let (ack, _) = ForcedAcknowledgement::open(
        event,
        &targets,
        &directory,
        &AcknowledgementConfig::default(),
        START,
    );
    let key = BookKey {
        unit: AreaCode::new(unit),
        warning: event.id.clone(),
        version: event.version,
        part: 0,
    };
    let warning = ReleasedWarning {
        event: event.clone(),
        message: None,
        department: Department::WaterResources,
        signature: None,
    };
    (
        key,
        SavedBook {
            ack,
            warning: Arc::new(warning),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_topic_gives_back_the_latest_open_books_and_the_sign_offs() {
    let (_broker, bootstrap, producer) = state_topic();
    // A node of an earlier release journaled its whole sign-off book under one key.
    let written_before = drafted(&WarningEvent {
        id: WarningId::new("FF-B8888-20240701T0700Z"),
        ..red_warning()
    });
    let whole_book = serde_json::to_string(&written_before).expect("the book encodes");
    producer
        .send(
            FutureRecord::to(TOPIC).key("sign-off").payload(&whole_book),
            Duration::from_secs(10),
        )
        .await
        .expect("the whole book is written");
    let journal = start_journal(producer).await;

    let event = red_warning();
    let (township, opened) = book("650102002", &["650102-002-v1", "650102-002-v2"], &event);
    let mut acknowledged = opened.clone();
    let v1 = RecipientId::new("650102-002-v1");
    acknowledged
        .ack
        .acknowledge(&v1, &Subject::Warning, &v1, START.plus_ms(10_000))
        .expect("v1 acknowledges");
    let (county, county_book) = book("650102", &["650102-head"], &event);
    let sign_off = drafted(&event);
    let forgotten = WarningId::new("FF-B7777-20240701T0600Z");
    let forgotten_sign_off = drafted(&WarningEvent {
        id: forgotten.clone(),
        ..event.clone()
    });
    journal_all(
        journal,
        [
            StateChange::Book(township.clone(), Some(opened)),
            StateChange::Book(county.clone(), Some(county_book)),
            sign_off_change(&sign_off, &event.id),
            StateChange::Book(township.clone(), Some(acknowledged.clone())),
            StateChange::Book(county.clone(), None),
            sign_off_change(&forgotten_sign_off, &forgotten),
            StateChange::SignOff(forgotten.clone(), None),
        ],
    )
    .await;

    let records = records_of(&bootstrap).await;
    let keys: Vec<String> = records
        .iter()
        .filter_map(|record| record.key.as_deref())
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect();
    assert!(
        keys.contains(&"650102002/FF-B9999-20240701T0800Z/1/0".to_owned()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"sign-off/FF-B9999-20240701T0800Z".to_owned()),
        "{keys:?}"
    );
    assert_eq!(
        records.len(),
        8,
        "the whole book a node wrote before, then one record per change"
    );

    let restored = tokio::task::spawn_blocking(move || rebuild_state(&bootstrap, TOPIC))
        .await
        .expect("the reader does not panic")
        .expect("the state is readable");
    let books: Vec<(&BookKey, &SavedBook)> = restored.books.iter().collect();
    assert_eq!(
        books,
        [(&township, &acknowledged)],
        "the latest state of the open book; the closed one is gone"
    );
    let sign_offs = [&written_before, &sign_off]
        .into_iter()
        .flat_map(|book| book.clone().into_sign_offs());
    assert_eq!(
        restored.sign_off,
        Some(SignOffBook::from_sign_offs(sign_offs)),
        "the warnings of the whole book written before and of the per-warning records, without \
         the forgotten one"
    );
}

/// Starts an embedded broker with the state topic; returns it (keep it alive), its bootstrap
/// servers and a producer for it.
fn state_topic() -> (EmbeddedBroker, String, FutureProducer) {
    let broker = EmbeddedBroker::start(1).expect("the mock cluster starts");
    broker
        .create_topic(TOPIC, 3)
        .expect("create the state topic");
    let bootstrap = broker.bootstrap_servers().to_owned();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("a producer for the embedded broker");
    (broker, bootstrap, producer)
}

/// Starts a journal of the state topic that journals every warning.
async fn start_journal(producer: FutureProducer) -> ActorRef<StateJournalMsg> {
    let (journal, _) = Actor::spawn(
        None,
        StateJournal,
        StateJournalArgs {
            producer,
            topic: TOPIC.to_owned(),
            owns: None,
        },
    )
    .await
    .expect("the journal starts");
    journal
}

/// Hands `changes` to `journal` in order and waits until it has written them and stopped.
async fn journal_all(
    journal: ActorRef<StateJournalMsg>,
    changes: impl IntoIterator<Item = StateChange>,
) {
    for change in changes {
        journal
            .send_message(StateJournalMsg::Change(change))
            .expect("the journal takes it");
    }
    journal
        .drain_and_wait(None)
        .await
        .expect("the journal writes everything and stops");
}

/// Reads every record of the state topic.
async fn records_of(bootstrap: &str) -> Vec<TopicRecord> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || read_topic(&bootstrap, TOPIC))
        .await
        .expect("the reader does not panic")
        .expect("the topic is readable")
}

/// The change a desk sends for `warning` as `book` holds it.
fn sign_off_change(book: &SignOffBook, warning: &WarningId) -> StateChange {
    StateChange::SignOff(
        warning.clone(),
        book.sign_off_of(warning).cloned().map(Box::new),
    )
}

/// Returns a sign-off book holding the model draft of `event`.
fn drafted(event: &WarningEvent) -> SignOffBook {
    let mut book = SignOffBook::new();
    book.submit(
        Submission {
            event: event.clone(),
            origin: DraftOrigin::Model,
            message: None,
        },
        START,
        &SignOffPolicy::default(),
    )
    .expect("the draft is taken");
    book
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_node_journals_the_sign_offs_of_its_warnings_and_the_books_of_its_units() {
    let (_broker, bootstrap, producer) = state_topic();
    let owned = red_warning();
    let other = WarningEvent {
        id: WarningId::new("FF-B8888-20240701T0700Z"),
        target: "B8888".to_owned(),
        ..red_warning()
    };
    let owned_id = owned.id.clone();
    let warnings: OwnsWarning = Arc::new(move |event: &WarningEvent| event.id == owned_id);
    let units: OwnsUnit = Arc::new(|unit: &AreaCode| unit.as_str() == "650102002");
    let journal = start_journal(producer).await;
    journal
        .send_message(StateJournalMsg::OnlyOwned(JournaledHere {
            warnings,
            units,
        }))
        .expect("the journal takes it");
    let sign_off = |event: &WarningEvent| sign_off_change(&drafted(event), &event.id);
    // A book of an owned unit is journaled whoever owns its warning; one of another unit is
    // not, even of an owned warning.
    let (owned_unit_key, owned_unit_book) = book("650102002", &["650102-002-v1"], &other);
    let (other_unit_key, other_unit_book) = book("650103001", &["650103-001-v1"], &owned);
    journal_all(
        journal,
        [
            sign_off(&owned),
            sign_off(&other),
            StateChange::Book(owned_unit_key, Some(owned_unit_book)),
            StateChange::Book(other_unit_key.clone(), Some(other_unit_book)),
            StateChange::Book(other_unit_key, None),
        ],
    )
    .await;

    let records = records_of(&bootstrap).await;
    let mut written: Vec<(String, bool)> = records
        .iter()
        .map(|record| {
            let key = record.key.as_deref().unwrap_or_default();
            (
                String::from_utf8_lossy(key).into_owned(),
                record.payload.is_empty(),
            )
        })
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            ("650102002/FF-B8888-20240701T0700Z/1/0".to_owned(), false),
            ("650103001/FF-B9999-20240701T0800Z/1/0".to_owned(), true),
            ("sign-off/FF-B9999-20240701T0800Z".to_owned(), false),
        ],
        "the owned warning's sign-off, the owned unit's book, and the tombstone whoever closes \
         a book writes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_confirmed_once_the_changes_before_it_are_on_the_topic() {
    let (_broker, bootstrap, producer) = state_topic();
    let journal = start_journal(producer).await;
    let event = red_warning();
    let (township, opened) = book("650102002", &["650102-002-v1"], &event);
    let (receipt, confirmed) = JournalReceipt::new();
    for change in [
        StateChange::Book(township, Some(opened)),
        StateChange::Receipt(receipt),
    ] {
        journal
            .send_message(StateJournalMsg::Change(change))
            .expect("the journal takes it");
    }
    tokio::time::timeout(Duration::from_secs(30), confirmed)
        .await
        .expect("confirmed in time")
        .expect("confirmed, not dropped");
    let keys: Vec<Vec<u8>> = records_of(&bootstrap)
        .await
        .into_iter()
        .filter_map(|record| record.key)
        .collect();
    assert_eq!(
        keys,
        [b"650102002/FF-B9999-20240701T0800Z/1/0".to_vec()],
        "the book, and nothing written for the receipt"
    );
    journal.stop(None);
}
