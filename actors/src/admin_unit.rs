//! One unit of the dissemination tree (region, prefecture, county or township). It passes a
//! released warning down to the child units on the way to its targets, opens the forced
//! acknowledgement (叫应) of the recipients filed under itself, hands each delivery to the courier,
//! re-sends and escalates when a deadline passes, and answers acknowledgements. The decisions
//! are `tianshan_core::dissemination`'s.
//!
//! ```text
//! AdminUnitActor(650000 region)            CAP feed, region duty
//!  ├── AdminUnitActor(650100 prefecture)    prefecture duty
//!  │    ├── AdminUnitActor(650102 county)   county head
//!  │    │    ├── AdminUnitActor(650102002)  township head, village heads, SMS list, loudspeakers
//!  │    │    └── …
//! ```
//! The region actor spawns the tree from the admin data at start: 1 region, 14 prefectures,
//! 108 counties and 1,405 townships for Xinjiang.
//!
//! Each unit reports every change of its open books (opened, delivery reported, acknowledged,
//! deadline step, closed) as a [`StateChange`] to the tree's state sink, when there is one. A
//! tree started from [`RestoredBooks`] takes them over: every unit holds its own books again,
//! withdrawals follow the units below that hold books of the version, and the next deadline is
//! scheduled from the books, so a step that fell due while the node was down happens at once.
//! A sharded node owns some shards of the tree (a prefecture's subtree, or the region's own
//! recipients; `tianshan_core::dissemination::shards`): releases reach it one shard at a time.
//! When it comes to own a shard another node held, it takes over the journaled books the same
//! way, unit by unit (`AdminUnitMsg::TakeOver`; a book this node went on with since it
//! journaled it is kept as it is), and a shard it gives up starts over empty
//! (`AdminUnitMsg::Forget`). An acknowledgement is answered once the state sink
//! confirms the book recording it is journaled (`answer_once_journaled`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ractor::{
    Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort, SupervisionEvent,
};
use tianshan_core::dissemination::acknowledgement::{
    AckError, AckOutcome, AcknowledgementConfig, Delivery, DeliveryKey, DeliveryOutcome,
    ForcedAcknowledgement, Subject,
};
use tianshan_core::dissemination::recipients::{Directory, Recipient};
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AreaCode, RecipientId, WarningId};
use tianshan_core::signoff::{Audience, ReleasedWarning};
use tianshan_core::time::EventTime;
use tracing::{error, warn};

use crate::ask::{await_reply, reply_port};
use crate::state_change::{answer_once_journaled, BookKey, RestoredBooks, SavedBook, StateChange};
use crate::wall_clock::WallClock;

/// What every unit of one tree shares.
pub struct Dissemination {
    /// The admin units.
    pub tree: AdminTree,
    /// Who is filed under which unit, with their channels and escalation chain.
    pub directory: Directory,
    /// Acknowledgement deadlines per level.
    pub acknowledgement: AcknowledgementConfig,
    /// The clock deadlines run on.
    pub clock: WallClock,
    /// Where deliveries go.
    pub courier: DerivedActorRef<DeliveryRequest>,
    /// Where the units and the sign-off desk report the state a restart must keep; `None` keeps
    /// nothing.
    pub state: Option<DerivedActorRef<StateChange>>,
}

/// A warning version on its way down the tree.
#[derive(Debug)]
pub struct Release {
    /// The version, as signed (or released early).
    pub warning: Arc<ReleasedWarning>,
    /// Who gets it.
    pub audience: Audience,
    /// The recipients to reach, by the unit they are filed under.
    pub targets: BTreeMap<AreaCode, Vec<RecipientId>>,
    /// The target units and every unit above them: where the release travels.
    pub path: BTreeSet<AreaCode>,
}

impl Release {
    /// The release of `warning` to `audience` reaching `targets` (recipients by the unit they
    /// are filed under), travelling down `tree` along the units above them.
    pub fn reaching(
        tree: &AdminTree,
        warning: Arc<ReleasedWarning>,
        audience: Audience,
        targets: BTreeMap<AreaCode, Vec<RecipientId>>,
    ) -> Self {
        let mut path = BTreeSet::new();
        for unit in targets.keys() {
            path.insert(unit.clone());
            path.extend(tree.ancestors(unit).into_iter().cloned());
        }
        Self {
            warning,
            audience,
            targets,
            path,
        }
    }
}

/// What the sign-off desk sends into dissemination: the tree's region unit on one node, the
/// release router of a sharded node (which sends each shard its part through Kafka).
#[derive(Debug)]
pub enum TreeEntry {
    /// A warning version to pass down and deliver.
    Release(Arc<Release>),
    /// A version released early and then rejected.
    Withdraw {
        /// The warning.
        warning: WarningId,
        /// The rejected version.
        version: u32,
    },
}

impl From<TreeEntry> for AdminUnitMsg {
    fn from(entry: TreeEntry) -> Self {
        match entry {
            TreeEntry::Release(release) => AdminUnitMsg::Release(release),
            TreeEntry::Withdraw { warning, version } => AdminUnitMsg::Withdraw { warning, version },
        }
    }
}

impl TryFrom<AdminUnitMsg> for TreeEntry {
    type Error = ();

    fn try_from(msg: AdminUnitMsg) -> Result<Self, ()> {
        match msg {
            AdminUnitMsg::Release(release) => Ok(TreeEntry::Release(release)),
            AdminUnitMsg::Withdraw { warning, version } => {
                Ok(TreeEntry::Withdraw { warning, version })
            }
            _ => Err(()),
        }
    }
}

/// One delivery for the courier, who reports the outcome back to `report_to`.
pub struct DeliveryRequest {
    /// What to deliver to whom over which channel.
    pub delivery: Delivery,
    /// The recipient.
    pub recipient: Recipient,
    /// The warning version.
    pub warning: Arc<ReleasedWarning>,
    /// Until when people hold the version (its book's expiry): the courier's dedupe ledger
    /// keeps the delivery that long.
    pub held_until: EventTime,
    /// The unit whose acknowledgement book asked for it.
    pub report_to: ActorRef<AdminUnitMsg>,
}

/// An acknowledgement by a person, routed to the unit holding the obligation.
#[derive(Debug, Clone)]
pub struct AckRequest {
    /// The warning thread.
    pub warning: WarningId,
    /// Its version.
    pub version: u32,
    /// The person the delivery was addressed to.
    pub addressee: RecipientId,
    /// The warning itself, or the handover of someone not reached.
    pub subject: Subject,
    /// Who acknowledges.
    pub by: RecipientId,
}

/// Messages of [`AdminUnitActor`].
pub enum AdminUnitMsg {
    /// A warning version to pass down and deliver.
    Release(Arc<Release>),
    /// A version released early and then rejected: stop re-sending and escalating it.
    Withdraw {
        /// The warning.
        warning: WarningId,
        /// The rejected version.
        version: u32,
    },
    /// An acknowledgement; the reply says whether it was in time.
    Acknowledge(AckRequest, RpcReplyPort<Result<AckOutcome, AckError>>),
    /// What the courier did with a delivery this unit asked for.
    Delivered {
        /// The delivery.
        key: DeliveryKey,
        /// Its outcome.
        outcome: DeliveryOutcome,
    },
    /// A deadline may have passed.
    Deadline,
    /// Replies with the acknowledgement books in force (of the newest version of each warning
    /// at each unit, not withdrawn) of this unit and every unit below.
    Books(RpcReplyPort<Vec<ForcedAcknowledgement>>),
    /// The books another node journaled of warnings this node has just come to own (a sharded
    /// node taking over basins): this unit and every unit below take over theirs
    /// ([`take_over_books`]); replies with how many books were taken over.
    TakeOver(Arc<RestoredBooks>, RpcReplyPort<usize>),
    /// Shards this node no longer owns, or is about to take over (a sharded node, sent to the
    /// region unit): their units start over without books (the region's own books when the
    /// region is one of them); replies with how many shards started over.
    Forget(Arc<BTreeSet<AreaCode>>, RpcReplyPort<usize>),
}

/// Start-up arguments of [`AdminUnitActor`].
pub struct AdminUnitArgs {
    /// The unit.
    pub code: AreaCode,
    /// The tree's shared data.
    pub shared: Arc<Dissemination>,
    /// The open books of the whole tree saved before a restart; each unit takes its own.
    pub restored: Arc<RestoredBooks>,
}

/// The acknowledgement book of one warning version at one unit.
struct Book {
    ack: ForcedAcknowledgement,
    warning: Arc<ReleasedWarning>,
    /// Its number among the books of the version at this unit (see [`BookKey`]).
    part: u32,
    /// A newer version or a withdrawal ended it: no more re-sends or escalations.
    closed: bool,
}

/// State of [`AdminUnitActor`].
pub struct AdminUnitState {
    code: AreaCode,
    shared: Arc<Dissemination>,
    children: BTreeMap<AreaCode, ActorRef<AdminUnitMsg>>,
    /// The books of each version: one per release that reached new targets here (a draft
    /// released early to responsible persons, then the signed version to everyone).
    books: BTreeMap<(WarningId, u32), Vec<Book>>,
    /// The children each version was passed to, so a withdrawal follows the same way.
    passed_to: BTreeMap<(WarningId, u32), Vec<AreaCode>>,
    /// The deadline a `Deadline` message is already scheduled for.
    wakeup: Option<EventTime>,
}

/// A unit of the dissemination tree.
pub struct AdminUnitActor;

impl Actor for AdminUnitActor {
    type Msg = AdminUnitMsg;
    type State = AdminUnitState;
    type Arguments = AdminUnitArgs;

    async fn pre_start(
        &self,
        me: ActorRef<AdminUnitMsg>,
        args: AdminUnitArgs,
    ) -> Result<AdminUnitState, ActorProcessingErr> {
        let mut children = BTreeMap::new();
        for child in args.shared.tree.children(&args.code) {
            let actor = spawn_unit(&me, child, &args.shared, args.restored.clone()).await?;
            children.insert(child.clone(), actor);
        }
        let mut books: BTreeMap<(WarningId, u32), Vec<Book>> = BTreeMap::new();
        for (key, saved) in args.restored.of_unit(&args.code) {
            books
                .entry((key.warning.clone(), key.version))
                .or_default()
                .push(Book {
                    ack: saved.ack.clone(),
                    warning: saved.warning.clone(),
                    part: key.part,
                    closed: false,
                });
        }
        let mut state = AdminUnitState {
            passed_to: restored_paths(&args.shared.tree, &args.code, &args.restored),
            code: args.code,
            shared: args.shared,
            children,
            books,
            wakeup: None,
        };
        schedule_deadline(&me, &mut state);
        Ok(state)
    }

    /// Stops the units below too: ractor leaves linked children running when their parent
    /// stops, and a stopped tree must not go on re-sending.
    async fn post_stop(
        &self,
        me: ActorRef<AdminUnitMsg>,
        _st: &mut AdminUnitState,
    ) -> Result<(), ActorProcessingErr> {
        me.stop_children_and_wait(None, None).await;
        Ok(())
    }

    /// Restarts a unit below that failed, so one failure never takes the tree down. Its books
    /// in memory are lost with it (their last saved state stays on the state topic for the next
    /// node start); the failure is logged as an error.
    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<AdminUnitMsg>,
        event: SupervisionEvent,
        st: &mut AdminUnitState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, reason) = event {
            let failed = st
                .children
                .iter()
                .find(|(_, actor)| actor.get_id() == cell.get_id())
                .map(|(code, _)| code.clone());
            if let Some(code) = failed {
                error!(unit = %code, %reason, "dissemination unit failed; restarting it without its books");
                let actor = spawn_unit(&me, &code, &st.shared, Arc::default()).await?;
                st.children.insert(code, actor);
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<AdminUnitMsg>,
        msg: AdminUnitMsg,
        st: &mut AdminUnitState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AdminUnitMsg::Release(release) => {
                let key = (
                    release.warning.event.id.clone(),
                    release.warning.event.version,
                );
                // Releases of one version add up: an early one and the signed one, or the parts
                // of one release sent to the shards of a sharded cluster.
                let passed = st.passed_to.entry(key).or_default();
                for (code, child) in &st.children {
                    if release.path.contains(code) {
                        child.cast(AdminUnitMsg::Release(release.clone()))?;
                        if !passed.contains(code) {
                            passed.push(code.clone());
                        }
                    }
                }
                open_book(&me, st, &release)?;
            }
            AdminUnitMsg::Withdraw { warning, version } => {
                let key = (warning, version);
                for book in st.books.get_mut(&key).into_iter().flatten() {
                    if !book.closed {
                        book.closed = true;
                        save(&st.shared, &st.code, &key, book);
                    }
                }
                for code in st.passed_to.get(&key).into_iter().flatten() {
                    if let Some(child) = st.children.get(code) {
                        child.cast(AdminUnitMsg::Withdraw {
                            warning: key.0.clone(),
                            version: key.1,
                        })?;
                    }
                }
            }
            AdminUnitMsg::Acknowledge(request, reply) => {
                let holder = holding_unit(&st.shared, &request);
                match next_step(&st.shared.tree, &st.code, holder.as_ref()) {
                    Step::Here => {
                        let now = st.shared.clock.now();
                        let key = (request.warning.clone(), request.version);
                        let holder = st.books.get_mut(&key).into_iter().flatten().find(|book| {
                            book.ack
                                .obligation(&request.addressee, &request.subject)
                                .is_some()
                        });
                        let result = match holder {
                            Some(book) => {
                                let result = book.ack.acknowledge(
                                    &request.addressee,
                                    &request.subject,
                                    &request.by,
                                    now,
                                );
                                if matches!(result, Ok(AckOutcome::InTime | AckOutcome::Late)) {
                                    save(&st.shared, &st.code, &key, book);
                                }
                                result
                            }
                            None => Err(nothing_to_acknowledge(&request)),
                        };
                        answer_once_journaled(st.shared.state.as_ref(), reply, result);
                    }
                    Step::Down(child) => match st.children.get(&child) {
                        Some(actor) => actor.cast(AdminUnitMsg::Acknowledge(request, reply))?,
                        None => {
                            let _ = reply.send(Err(nothing_to_acknowledge(&request)));
                        }
                    },
                    Step::NotBelow => {
                        let _ = reply.send(Err(nothing_to_acknowledge(&request)));
                    }
                }
            }
            AdminUnitMsg::Delivered { key, outcome } => {
                let now = st.shared.clock.now();
                let version = (key.warning.clone(), key.version);
                let holder = st
                    .books
                    .get_mut(&version)
                    .into_iter()
                    .flatten()
                    .find(|book| book.ack.obligation(&key.recipient, &key.subject).is_some());
                let resends = match holder {
                    Some(book) => match book.ack.record_delivery(&key, outcome, now) {
                        Ok(resends) if !book.closed => {
                            save(&st.shared, &st.code, &version, book);
                            Some((resends, book.warning.clone(), book.ack.expires()))
                        }
                        Ok(_) => None,
                        Err(e) => {
                            warn!(unit = %st.code, error = %e, "delivery report refused");
                            None
                        }
                    },
                    None => {
                        warn!(unit = %st.code, ?key, "delivery report for no delivery of this unit");
                        None
                    }
                };
                if let Some((resends, warning, held_until)) = resends {
                    for delivery in resends {
                        send_delivery(&me, &st.shared, delivery, warning.clone(), held_until)?;
                    }
                }
            }
            AdminUnitMsg::Deadline => {
                st.wakeup = None;
                let now = st.shared.clock.now();
                let mut due = Vec::new();
                for (key, books) in &mut st.books {
                    for book in books.iter_mut().filter(|book| !book.closed) {
                        // `on_time` changes a book exactly when a deadline of it has come.
                        if book.ack.next_deadline().is_none_or(|next| next > now) {
                            continue;
                        }
                        let deliveries = book.ack.on_time(now);
                        save(&st.shared, &st.code, key, book);
                        let (warning, held_until) = (book.warning.clone(), book.ack.expires());
                        due.extend(
                            deliveries
                                .into_iter()
                                .map(|delivery| (delivery, warning.clone(), held_until)),
                        );
                    }
                }
                for (delivery, warning, held_until) in due {
                    send_delivery(&me, &st.shared, delivery, warning, held_until)?;
                }
                schedule_deadline(&me, st);
            }
            AdminUnitMsg::Books(reply) => {
                let mut books: Vec<ForcedAcknowledgement> = st
                    .books
                    .values()
                    .flatten()
                    .filter(|book| !book.closed)
                    .map(|book| book.ack.clone())
                    .collect();
                for below in
                    ask_children(&st.children, "acknowledgement books", AdminUnitMsg::Books).await
                {
                    books.extend(below);
                }
                let _ = reply.send(books);
            }
            AdminUnitMsg::Forget(shards, reply) => {
                let mut forgotten = 0;
                if shards.contains(&st.code) {
                    st.books.clear();
                    forgotten += 1;
                }
                let children: Vec<AreaCode> = st
                    .children
                    .keys()
                    .filter(|code| shards.contains(*code))
                    .cloned()
                    .collect();
                for code in children {
                    if let Some(old) = st.children.remove(&code) {
                        // The unit starting over must not run beside the old one.
                        old.stop_and_wait(None, None).await?;
                    }
                    let actor = spawn_unit(&me, &code, &st.shared, Arc::default()).await?;
                    st.children.insert(code, actor);
                    forgotten += 1;
                }
                let _ = reply.send(forgotten);
            }
            AdminUnitMsg::TakeOver(journaled, reply) => {
                let mut taken = take_over_books(st, &journaled);
                // Journaled again now that this node owns them: a book opened here while no
                // node owned its warning was never journaled.
                for (key, books) in &st.books {
                    for book in books.iter().filter(|book| !book.closed) {
                        save(&st.shared, &st.code, key, book);
                    }
                }
                let below = ask_children(&st.children, "take over books", |port| {
                    AdminUnitMsg::TakeOver(journaled.clone(), port)
                })
                .await;
                taken += below.into_iter().sum::<usize>();
                schedule_deadline(&me, st);
                let _ = reply.send(taken);
            }
        }
        Ok(())
    }
}

/// Opens the book of this unit's own targets of `release` that no earlier release of the same
/// version reached (the signed version after an early release adds the public endpoints), closes
/// the books of older versions of the same warning, and sends the first deliveries.
fn open_book(
    me: &ActorRef<AdminUnitMsg>,
    st: &mut AdminUnitState,
    release: &Release,
) -> Result<(), ActorProcessingErr> {
    let event = &release.warning.event;
    close_older_versions(st, &event.id, event.version);
    let key = (event.id.clone(), event.version);
    let already = st.books.get(&key).map_or(&[][..], Vec::as_slice);
    let Some(ids) = release.targets.get(&st.code) else {
        return Ok(());
    };
    let directory = &st.shared.directory;
    let targets: Vec<&Recipient> = ids
        .iter()
        .filter_map(|id| directory.get(id))
        .filter(|recipient| release.audience == Audience::Everyone || recipient.is_person())
        .filter(|recipient| {
            already.iter().all(|book| {
                book.ack
                    .obligation(&recipient.id, &Subject::Warning)
                    .is_none()
            })
        })
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let now = st.shared.clock.now();
    let (ack, first) =
        ForcedAcknowledgement::open(event, &targets, directory, &st.shared.acknowledgement, now);
    let books = st.books.entry(key.clone()).or_default();
    let part = books.last().map_or(0, |book| book.part + 1);
    let book = Book {
        ack,
        warning: release.warning.clone(),
        part,
        closed: false,
    };
    save(&st.shared, &st.code, &key, &book);
    let held_until = book.ack.expires();
    books.push(book);
    for delivery in first {
        send_delivery(
            me,
            &st.shared,
            delivery,
            release.warning.clone(),
            held_until,
        )?;
    }
    schedule_deadline(me, st);
    Ok(())
}

/// Spawns the unit `code` (and, from its `pre_start`, the units below it), linked to `parent`.
async fn spawn_unit(
    parent: &ActorRef<AdminUnitMsg>,
    code: &AreaCode,
    shared: &Arc<Dissemination>,
    restored: Arc<RestoredBooks>,
) -> Result<ActorRef<AdminUnitMsg>, ActorProcessingErr> {
    let args = AdminUnitArgs {
        code: code.clone(),
        shared: shared.clone(),
        restored,
    };
    let (actor, _) = Actor::spawn_linked(None, AdminUnitActor, args, parent.get_cell()).await?;
    Ok(actor)
}

/// Hands one delivery to the courier.
fn send_delivery(
    me: &ActorRef<AdminUnitMsg>,
    shared: &Dissemination,
    delivery: Delivery,
    warning: Arc<ReleasedWarning>,
    held_until: EventTime,
) -> Result<(), ActorProcessingErr> {
    let Some(recipient) = shared.directory.get(&delivery.key.recipient).cloned() else {
        warn!(recipient = %delivery.key.recipient, "delivery to a recipient not in the directory");
        return Ok(());
    };
    shared
        .courier
        .send_message(DeliveryRequest {
            delivery,
            recipient,
            warning,
            held_until,
            report_to: me.clone(),
        })
        .map_err(|_| ActorProcessingErr::from("the courier is gone"))
}

/// Reports the state of `book` of version `key` at `unit` to the state sink, if any: the book
/// while it is open, its removal once closed. A sink that is gone loses the state a restart
/// would need, but deliveries go on.
fn save(shared: &Dissemination, unit: &AreaCode, key: &(WarningId, u32), book: &Book) {
    let Some(sink) = &shared.state else {
        return;
    };
    let book_key = BookKey {
        unit: unit.clone(),
        warning: key.0.clone(),
        version: key.1,
        part: book.part,
    };
    let saved = (!book.closed).then(|| SavedBook {
        ack: book.ack.clone(),
        warning: book.warning.clone(),
    });
    if sink
        .send_message(StateChange::Book(book_key, saved))
        .is_err()
    {
        error!(%unit, warning = %key.0, version = key.1, "the state journal is gone: a restart would lose this book");
    }
}

/// Returns, for each version with restored books below `here`, the children on the way to
/// them: where a withdrawal of the version must go, as the release went before the restart.
fn restored_paths(
    tree: &AdminTree,
    here: &AreaCode,
    restored: &RestoredBooks,
) -> BTreeMap<(WarningId, u32), Vec<AreaCode>> {
    let mut paths: BTreeMap<(WarningId, u32), Vec<AreaCode>> = BTreeMap::new();
    for (key, _) in restored.iter() {
        if let Step::Down(child) = next_step(tree, here, Some(&key.unit)) {
            let children = paths.entry((key.warning.clone(), key.version)).or_default();
            if !children.contains(&child) {
                children.push(child);
            }
        }
    }
    paths
}

/// Asks every unit in `children` at once with the message `make` builds around a reply port
/// and returns the replies that came. A unit being restarted answers nothing this time (logged,
/// naming `what`); the others still count.
async fn ask_children<T>(
    children: &BTreeMap<AreaCode, ActorRef<AdminUnitMsg>>,
    what: &str,
    make: impl Fn(RpcReplyPort<T>) -> AdminUnitMsg,
) -> Vec<T> {
    let mut pending = Vec::with_capacity(children.len());
    for (code, child) in children {
        let (port, receiver) = reply_port();
        match child.cast(make(port)) {
            Ok(()) => pending.push((code, receiver)),
            Err(e) => warn!(unit = %code, error = %e, "{what}: no answer from this unit"),
        }
    }
    let mut replies = Vec::with_capacity(pending.len());
    for (code, receiver) in pending {
        match await_reply(receiver, what).await {
            Ok(reply) => replies.push(reply),
            Err(e) => warn!(unit = %code, error = %e, "{what}: no answer from this unit"),
        }
    }
    replies
}

/// Closes this unit's open books of `warning` older than `version`: a newer version ends them.
fn close_older_versions(st: &mut AdminUnitState, warning: &WarningId, version: u32) {
    for (key, books) in &mut st.books {
        if key.0 == *warning && key.1 < version {
            for book in books.iter_mut().filter(|book| !book.closed) {
                book.closed = true;
                save(&st.shared, &st.code, key, book);
            }
        }
    }
}

/// Takes over this unit's books of `journaled` (another node's journaled books of warnings this
/// node has just come to own; the caller journals every open book again afterwards, and the
/// state journal keeps those of warnings this node owns): each is added, or taken over by this
/// unit's book of the same key ([`ForcedAcknowledgement::take_over`]: a journaled earlier state
/// of a book this node went on with changes nothing), so the acknowledgements, delivery
/// reports and escalation steps made there carry on here. A book this unit closed, or of a
/// version older than one it holds, stays as it is here. Returns how many books it took over.
fn take_over_books(st: &mut AdminUnitState, journaled: &RestoredBooks) -> usize {
    let mut taken = 0;
    for (key, saved) in journaled.of_unit(&st.code) {
        let superseded = st
            .books
            .keys()
            .any(|(warning, version)| *warning == key.warning && *version > key.version);
        if superseded {
            continue;
        }
        close_older_versions(st, &key.warning, key.version);
        let books = st
            .books
            .entry((key.warning.clone(), key.version))
            .or_default();
        match books.iter_mut().find(|book| book.part == key.part) {
            Some(book) if book.closed => continue,
            Some(book) => {
                if !book.ack.take_over(&saved.ack) {
                    continue;
                }
                book.warning = saved.warning.clone();
            }
            None => books.push(Book {
                ack: saved.ack.clone(),
                warning: saved.warning.clone(),
                part: key.part,
                closed: false,
            }),
        }
        taken += 1;
    }
    for (version, children) in restored_paths(&st.shared.tree, &st.code, journaled) {
        let passed = st.passed_to.entry(version).or_default();
        for child in children {
            if !passed.contains(&child) {
                passed.push(child);
            }
        }
    }
    taken
}

/// Schedules a `Deadline` message for the earliest open deadline, unless one is already due
/// by then.
fn schedule_deadline(me: &ActorRef<AdminUnitMsg>, st: &mut AdminUnitState) {
    let next = st
        .books
        .values()
        .flatten()
        .filter(|book| !book.closed)
        .filter_map(|book| book.ack.next_deadline())
        .min();
    if let Some(next) = next {
        if st.wakeup.is_none_or(|scheduled| next < scheduled) {
            st.wakeup = Some(next);
            me.send_after(st.shared.clock.until(next), || AdminUnitMsg::Deadline);
        }
    }
}

/// Returns the unit whose book holds the obligation: the addressee's own unit for the warning,
/// the unreached person's unit for a handover (the book that escalated it).
fn holding_unit(shared: &Dissemination, request: &AckRequest) -> Option<AreaCode> {
    let person = match &request.subject {
        Subject::Warning => &request.addressee,
        Subject::Handover { unreached } => unreached,
    };
    shared
        .directory
        .get(person)
        .map(|recipient| recipient.unit.clone())
}

/// Where an acknowledgement goes from unit `here`.
enum Step {
    Here,
    Down(AreaCode),
    NotBelow,
}

fn next_step(tree: &AdminTree, here: &AreaCode, holder: Option<&AreaCode>) -> Step {
    let Some(holder) = holder else {
        return Step::NotBelow;
    };
    if holder == here {
        return Step::Here;
    }
    let mut unit = holder;
    while let Some(parent) = tree.parent(unit) {
        if parent == here {
            return Step::Down(unit.clone());
        }
        unit = parent;
    }
    Step::NotBelow
}

fn nothing_to_acknowledge(request: &AckRequest) -> AckError {
    AckError::NothingToAcknowledge {
        warning: request.warning.clone(),
        version: request.version,
        recipient: request.addressee.clone(),
        subject: request.subject.clone(),
    }
}

/// Builds the release of `warning` to `audience`: the targets of its area by unit, and the path.
/// Returns the area codes that are no unit of the tree too, for the caller to report.
pub fn release_of(
    shared: &Dissemination,
    warning: Arc<ReleasedWarning>,
    audience: Audience,
) -> (Release, BTreeSet<AreaCode>) {
    let reach = shared.tree.reach_of_area_codes(&warning.event.area_codes);
    let mut targets: BTreeMap<AreaCode, Vec<RecipientId>> = BTreeMap::new();
    for recipient in shared.directory.targets(&reach, &shared.tree) {
        targets
            .entry(recipient.unit.clone())
            .or_default()
            .push(recipient.id.clone());
    }
    (
        Release::reaching(&shared.tree, warning, audience, targets),
        reach.unknown,
    )
}
