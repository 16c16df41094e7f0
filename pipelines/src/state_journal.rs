//! The state journal: the state that people's deadlines depend on, kept on the compacted topic
//! `dissemination.state` so a restarted node carries on where the stopped one was. The
//! [`StateJournal`] actor receives the [`StateChange`]s of the dissemination tree's units and
//! the sign-off desk and writes one record per change, in the order they arrive:
//!
//! - an acknowledgement book: key `{unit}/{warning id}/{version}/{part}`, value the
//!   book with its key fields and released version as JSON; an empty value (a tombstone) once the book is closed;
//! - the sign-off of a warning: key `sign-off/{warning id}`, value its `WarningSignOff` as JSON;
//!   a tombstone once the desk forgot the closed warning. Every node journals its own warnings,
//!   so nodes sharing the topic never overwrite each other's. A record under the key `sign-off`
//!   (the whole book, as nodes wrote it before) is read as the base the per-warning records
//!   override.
//! - a receipt (`StateChange::Receipt`) writes nothing: it is confirmed once every change
//!   before it is written (or its failure logged), so the tree and the desk answer an
//!   acknowledgement or a decision only when a restart would find it.
//!
//! A sharded node journals only what it owns (after [`StateJournalMsg::OnlyOwned`]): the books
//! of the units of its shards of the tree and the sign-offs of the warnings whose threads it
//! owns. The owner's state is the one a restart or a takeover must find, so a node that no
//! longer owns it (its lease lapsed, or a rebalance moved it) must not overwrite it.
//! Tombstones are written by whoever closes a book or forgets a closed warning.
//!
//! [`rebuild_state`] reads the topic back at start, latest record per key winning, and returns
//! the books for the tree and the desk. Like the delivery journal's topic, this one must be
//! created with `cleanup.policy=compact`; the embedded broker never compacts and the reader
//! expects every record. Started by `DisseminationStage`, unsupervised.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use tianshan_actors::state_change::{BookKey, RestoredBooks, SavedBook, StateChange};
use tianshan_core::dissemination::acknowledgement::ForcedAcknowledgement;
use tianshan_core::ids::{AreaCode, WarningId};
use tianshan_core::signoff::{ReleasedWarning, SignOffBook, WarningSignOff};
use tracing::{debug, error};

use crate::delivery_courier::{OwnsUnit, OwnsWarning};
use crate::error::PipelineError;
use crate::warning_publisher::read_topic;

/// The record key of the whole sign-off book, as nodes journaled it before per-warning records.
const WHOLE_SIGN_OFF_KEY: &str = "sign-off";

/// The prefix of a warning's sign-off record key.
const SIGN_OFF_PREFIX: &str = "sign-off/";

/// One open acknowledgement book as the topic stores it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StoredBook {
    unit: AreaCode,
    warning: WarningId,
    version: u32,
    /// The book's number among the version's books at the unit.
    part: u32,
    ack: ForcedAcknowledgement,
    /// The version as released, for the re-sends and handovers still to come.
    released: Arc<ReleasedWarning>,
}

/// What a starting node takes over from the topic.
#[derive(Debug, Default)]
pub struct RestoredState {
    /// The open acknowledgement books, by unit.
    pub books: RestoredBooks,
    /// The sign-off book, if one was ever written.
    pub sign_off: Option<SignOffBook>,
}

/// Start-up arguments of [`StateJournal`].
pub struct StateJournalArgs {
    /// The producer to write with.
    pub producer: FutureProducer,
    /// The state topic.
    pub topic: String,
    /// What this node journals (until [`StateJournalMsg::OnlyOwned`] says otherwise); `None`
    /// journals all.
    pub owns: Option<JournaledHere>,
}

/// What a sharded node journals.
#[derive(Clone)]
pub struct JournaledHere {
    /// The sign-offs of the warnings whose threads it owns.
    pub warnings: OwnsWarning,
    /// The books of the units of the shards of the tree it owns.
    pub units: OwnsUnit,
}

/// Messages of [`StateJournal`].
pub enum StateJournalMsg {
    /// A change of the tree or the desk to journal.
    Change(StateChange),
    /// From now on journal only what this node owns (a sharded node).
    OnlyOwned(JournaledHere),
}

impl From<StateChange> for StateJournalMsg {
    fn from(change: StateChange) -> Self {
        StateJournalMsg::Change(change)
    }
}

impl TryFrom<StateJournalMsg> for StateChange {
    type Error = ();

    fn try_from(msg: StateJournalMsg) -> Result<Self, ()> {
        match msg {
            StateJournalMsg::Change(change) => Ok(change),
            StateJournalMsg::OnlyOwned(_) => Err(()),
        }
    }
}

/// The actor writing state changes to the state topic.
pub struct StateJournal;

impl Actor for StateJournal {
    type Msg = StateJournalMsg;
    type State = StateJournalArgs;
    type Arguments = StateJournalArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<StateJournalMsg>,
        args: StateJournalArgs,
    ) -> Result<StateJournalArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<StateJournalMsg>,
        msg: StateJournalMsg,
        st: &mut StateJournalArgs,
    ) -> Result<(), ActorProcessingErr> {
        let change = match msg {
            StateJournalMsg::OnlyOwned(owns) => {
                st.owns = Some(owns);
                return Ok(());
            }
            StateJournalMsg::Change(StateChange::Receipt(receipt)) => {
                // Changes are written one after another, each awaited: those before the
                // receipt are journaled (or their failure logged) by now.
                receipt.confirm();
                return Ok(());
            }
            StateJournalMsg::Change(change) => change,
        };
        if let Some(owns) = &st.owns {
            let owned = match &change {
                StateChange::Book(key, Some(_)) => (owns.units)(&key.unit),
                StateChange::SignOff(_, Some(sign_off)) => sign_off
                    .latest_event()
                    .is_none_or(|event| (owns.warnings)(event)),
                _ => true,
            };
            if !owned {
                debug!("state another node owns: not journaled");
                return Ok(());
            }
        }
        let Some((key, value)) = record_of(change) else {
            return Ok(());
        };
        if let Err(e) = write(st, &key, value.as_deref()).await {
            // A lost record leaves the previous state of the book on the topic: a restart
            // would repeat or miss what this change recorded.
            error!(key, error = %e, "dissemination state not journaled");
        }
        Ok(())
    }
}

/// Returns the record key and value (`None`: a tombstone) of `change`; `None` for a receipt,
/// which writes nothing.
fn record_of(change: StateChange) -> Option<(String, Option<String>)> {
    Some(match change {
        StateChange::Book(key, book) => {
            let record_key = book_record_key(&key);
            let value = book.map(|book| {
                let stored = StoredBook {
                    unit: key.unit,
                    warning: key.warning,
                    version: key.version,
                    part: key.part,
                    ack: book.ack,
                    released: book.warning,
                };
                serde_json::to_string(&stored).expect("a book encodes as JSON")
            });
            (record_key, value)
        }
        StateChange::SignOff(warning, sign_off) => (
            format!("{SIGN_OFF_PREFIX}{warning}"),
            sign_off.map(|sign_off| {
                serde_json::to_string(&sign_off).expect("a warning's sign-off encodes as JSON")
            }),
        ),
        StateChange::Receipt(_) => return None,
    })
}

fn book_record_key(key: &BookKey) -> String {
    format!("{}/{}/{}/{}", key.unit, key.warning, key.version, key.part)
}

/// Writes one record and returns once the broker acknowledged it.
async fn write(st: &StateJournalArgs, key: &str, value: Option<&str>) -> Result<(), PipelineError> {
    let headers = OwnedHeaders::new().insert(Header {
        key: "content-type",
        value: Some("application/json"),
    });
    let mut record = FutureRecord::<str, str>::to(&st.topic)
        .key(key)
        .headers(headers);
    if let Some(value) = value {
        record = record.payload(value);
    }
    st.producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|_| ())
        .map_err(|(e, _)| PipelineError::kafka("journal dissemination state", e))
}

/// Reads the state `topic` from the beginning and returns the open books and the sign-off
/// book it holds. Blocks while it reads (call it at start, or from `spawn_blocking`).
///
/// # Errors
/// Returns [`PipelineError::Kafka`] when the topic cannot be read, and
/// [`PipelineError::Setup`] for a record that is not a state record.
pub fn rebuild_state(bootstrap_servers: &str, topic: &str) -> Result<RestoredState, PipelineError> {
    let mut latest: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for record in read_topic(bootstrap_servers, topic)? {
        let key = record
            .key
            .as_deref()
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .ok_or_else(|| {
                PipelineError::Setup(format!(
                    "state topic {topic} partition {} holds a record without a key",
                    record.partition
                ))
            })?;
        if record.payload.is_empty() {
            latest.remove(&key);
        } else {
            latest.insert(key, record.payload);
        }
    }
    let bad = |key: &str, detail: String| {
        PipelineError::Setup(format!(
            "state topic {topic} holds a record {key} that is not dissemination state: {detail}"
        ))
    };
    let mut restored = RestoredState::default();
    let mut whole_sign_off: Option<SignOffBook> = None;
    let mut sign_offs = Vec::new();
    for (key, value) in latest {
        if key == WHOLE_SIGN_OFF_KEY {
            let book = serde_json::from_slice(&value).map_err(|e| bad(&key, e.to_string()))?;
            whole_sign_off = Some(book);
            continue;
        }
        if let Some(warning) = key.strip_prefix(SIGN_OFF_PREFIX) {
            let sign_off: WarningSignOff =
                serde_json::from_slice(&value).map_err(|e| bad(&key, e.to_string()))?;
            sign_offs.push((WarningId::new(warning), sign_off));
            continue;
        }
        let stored: StoredBook =
            serde_json::from_slice(&value).map_err(|e| bad(&key, e.to_string()))?;
        let book_key = BookKey {
            unit: stored.unit,
            warning: stored.warning,
            version: stored.version,
            part: stored.part,
        };
        if book_record_key(&book_key) != key {
            return Err(bad(&key, format!("its value is the book {book_key:?}")));
        }
        let book = SavedBook {
            ack: stored.ack,
            warning: stored.released,
        };
        restored.books.apply(book_key, Some(book));
    }
    if whole_sign_off.is_some() || !sign_offs.is_empty() {
        let base = whole_sign_off.unwrap_or_default();
        let mut merged: BTreeMap<WarningId, WarningSignOff> = base.into_sign_offs().collect();
        merged.extend(sign_offs);
        restored.sign_off = Some(SignOffBook::from_sign_offs(merged));
    }
    Ok(restored)
}

#[cfg(test)]
mod tests;
