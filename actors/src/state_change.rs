//! The state that people's deadlines depend on, as the dissemination actors report it and take
//! it back after a restart: each unit's open acknowledgement books and the sign-off book. The
//! actors send a [`StateChange`] after every change that matters to an optional
//! `DerivedActorRef<StateChange>` (the state journal in `pipelines`, or a recorder in tests);
//! a starting tree takes its books from [`RestoredBooks`], the desk its `SignOffBook`. A
//! [`StateChange::Receipt`] asks the sink to confirm everything sent before it is journaled, so
//! an acknowledgement or a decision is answered only once a restart would find it
//! ([`answer_once_journaled`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ractor::{DerivedActorRef, RpcReplyPort};
use tianshan_core::dissemination::acknowledgement::ForcedAcknowledgement;
use tianshan_core::ids::{AreaCode, WarningId};
use tianshan_core::signoff::{ReleasedWarning, WarningSignOff};
use tokio::sync::oneshot;

/// Identifies one acknowledgement book: a unit may hold several books of one version (an early
/// release to responsible persons, then the signed version to the public), numbered by `part`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BookKey {
    /// The unit holding the book.
    pub unit: AreaCode,
    /// The warning thread.
    pub warning: WarningId,
    /// Its version.
    pub version: u32,
    /// The book's number among the books of this version at this unit, from 0.
    pub part: u32,
}

/// An open acknowledgement book with the version it delivers (re-sends and handovers need it).
#[derive(Debug, Clone, PartialEq)]
pub struct SavedBook {
    /// The acknowledgement state.
    pub ack: ForcedAcknowledgement,
    /// The version as released.
    pub warning: Arc<ReleasedWarning>,
}

/// A change of the state a restart must keep.
#[derive(Debug, Clone, PartialEq)]
pub enum StateChange {
    /// A book was opened or changed (`Some`), or closed by a newer version or a withdrawal
    /// (`None`).
    Book(BookKey, Option<SavedBook>),
    /// The sign-off of one warning after a change (`None`: the book forgot the closed warning).
    /// Journaled per warning, so nodes sharing one changelog each keep their own warnings.
    SignOff(WarningId, Option<Box<WarningSignOff>>),
    /// Asks for a receipt once every change sent before it has been journaled (or its write
    /// has failed, which the journal logs): what a person is told was recorded must be found
    /// again by a restart or by the node taking the warning over.
    Receipt(JournalReceipt),
}

/// The sender's half of a [`StateChange::Receipt`]: confirmed at most once, by whoever holds
/// it last; dropped unconfirmed, the receiver learns the journal is gone.
#[derive(Debug, Clone)]
pub struct JournalReceipt(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl JournalReceipt {
    /// A receipt and the receiver that learns when it is confirmed.
    pub fn new() -> (Self, oneshot::Receiver<()>) {
        let (sender, receiver) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(sender)))), receiver)
    }

    /// Confirms that every change sent before the receipt was journaled.
    pub fn confirm(&self) {
        let sender = self
            .0
            .lock()
            .expect("receipt lock is never poisoned: no panics under it")
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }
}

/// Answers `reply` with `answer` once `state` (the state sink, if any) has journaled every
/// change sent to it before: the caller is told a decision or an acknowledgement was recorded
/// only when a restart or the node taking the warning over would find it. Without a sink, or
/// with one that is gone (its loss was logged when the change was sent), at once.
pub fn answer_once_journaled<T: Send + 'static>(
    state: Option<&DerivedActorRef<StateChange>>,
    reply: RpcReplyPort<T>,
    answer: T,
) {
    let Some(sink) = state else {
        let _ = reply.send(answer);
        return;
    };
    let (receipt, journaled) = JournalReceipt::new();
    if sink.send_message(StateChange::Receipt(receipt)).is_err() {
        let _ = reply.send(answer);
        return;
    }
    tokio::spawn(async move {
        // A journal that stops before confirming drops the receipt: answered all the same.
        let _ = journaled.await;
        let _ = reply.send(answer);
    });
}

/// Receipts are equal when they are the same receipt.
impl PartialEq for JournalReceipt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The open books of a tree by unit, as a starting tree takes them over: the latest state of
/// every book not closed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoredBooks {
    by_unit: BTreeMap<AreaCode, BTreeMap<BookKey, SavedBook>>,
}

impl RestoredBooks {
    /// Applies one change of a book, later changes overriding earlier ones, as a compacted
    /// changelog does.
    pub fn apply(&mut self, key: BookKey, book: Option<SavedBook>) {
        match book {
            Some(book) => {
                self.by_unit
                    .entry(key.unit.clone())
                    .or_default()
                    .insert(key, book);
            }
            None => {
                if let Some(books) = self.by_unit.get_mut(&key.unit) {
                    books.remove(&key);
                    if books.is_empty() {
                        self.by_unit.remove(&key.unit);
                    }
                }
            }
        }
    }

    /// Keeps only the books `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&BookKey) -> bool) {
        for books in self.by_unit.values_mut() {
            books.retain(|key, _| keep(key));
        }
        self.by_unit.retain(|_, books| !books.is_empty());
    }

    /// Returns the books of `unit` in key order (warning, version, part).
    pub fn of_unit(&self, unit: &AreaCode) -> impl Iterator<Item = (&BookKey, &SavedBook)> {
        self.by_unit.get(unit).into_iter().flatten()
    }

    /// Returns every book, by unit then key.
    pub fn iter(&self) -> impl Iterator<Item = (&BookKey, &SavedBook)> {
        self.by_unit.values().flatten()
    }

    /// Returns how many books there are.
    pub fn len(&self) -> usize {
        self.by_unit.values().map(BTreeMap::len).sum()
    }

    /// Returns whether there are no books.
    pub fn is_empty(&self) -> bool {
        self.by_unit.is_empty()
    }
}
