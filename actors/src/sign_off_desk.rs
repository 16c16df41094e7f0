//! The sign-off desk (谁发布、谁负责): every published model warning version, every warning issued
//! by hand and every warning of another agency becomes a draft of its responsible department;
//! duty officers list, approve (optionally edited) or reject drafts; what the policy releases
//! goes down the dissemination tree. The decisions are `tianshan_core::signoff`'s.
//!
//! After every step that changes the sign-off book the desk sends the sign-off of each warning
//! the step changed as a [`StateChange::SignOff`] to the tree's state sink, when there is one
//! (and a tombstone for each closed warning it forgets); a desk started with a restored book
//! carries on from it (pending drafts, signatures, auto-approval times), and a desk taking over
//! warnings from another node carries on from their journaled sign-offs the same way (unless
//! its own is further along). An officer's decision is answered once the state sink confirms
//! what it changed is journaled.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tianshan_core::ids::WarningId;
use tianshan_core::signoff::{
    Dispatch, Draft, DraftOrigin, DraftScope, DutyOfficer, Edit, ReleasedWarning, SignOffBook,
    SignOffError, SignOffOutcome, SignOffPolicy, Submission, WarningSignOff,
};
use tianshan_core::time::{EventTime, HOUR_MS};
use tianshan_core::warning::WarningEvent;
use tracing::{debug, error, info, warn};

use crate::admin_unit::{release_of, Dissemination, TreeEntry};
use crate::state_change::{answer_once_journaled, StateChange};

/// Messages of [`SignOffDesk`].
pub enum SignOffDeskMsg {
    /// A warning version a model published.
    Published(WarningEvent),
    /// A warning issued by hand or received from another agency.
    Issue(Submission, RpcReplyPort<Result<(), SignOffError>>),
    /// Replies with the pending drafts in `scope`, by warning id.
    ListDrafts(DraftScope, RpcReplyPort<Vec<Draft>>),
    /// A duty officer approves a draft, optionally edited.
    Approve {
        /// The warning.
        warning: WarningId,
        /// The draft's version.
        version: u32,
        /// Who approves.
        officer: DutyOfficer,
        /// Changes before approving.
        edit: Option<Edit>,
        /// The result.
        reply: RpcReplyPort<Result<(), SignOffError>>,
    },
    /// A duty officer rejects a draft.
    Reject {
        /// The warning.
        warning: WarningId,
        /// The draft's version.
        version: u32,
        /// Who rejects.
        officer: DutyOfficer,
        /// Why.
        reason: String,
        /// The result.
        reply: RpcReplyPort<Result<(), SignOffError>>,
    },
    /// Replies with the signed version of a warning, if any.
    Approved(WarningId, RpcReplyPort<Option<ReleasedWarning>>),
    /// An auto-approval may be due.
    AutoApprove,
    /// The sign-offs another node journaled of warnings this node has just come to own (a
    /// sharded node taking over basins), so its officers' decisions and the auto-approval
    /// times carry over; replies with how many the desk took over.
    TakeOver(Vec<(WarningId, WarningSignOff)>, RpcReplyPort<usize>),
}

impl From<WarningEvent> for SignOffDeskMsg {
    fn from(event: WarningEvent) -> Self {
        SignOffDeskMsg::Published(event)
    }
}

impl TryFrom<SignOffDeskMsg> for WarningEvent {
    type Error = ();

    fn try_from(msg: SignOffDeskMsg) -> Result<Self, ()> {
        match msg {
            SignOffDeskMsg::Published(event) => Ok(event),
            _ => Err(()),
        }
    }
}

/// Start-up arguments of [`SignOffDesk`].
pub struct SignOffDeskArgs {
    /// Departments, early release and auto-approval.
    pub policy: SignOffPolicy,
    /// The tree's shared data (clock, tree, directory).
    pub dissemination: Arc<Dissemination>,
    /// Where releases and withdrawals go: the region unit at the top of the tree, or a
    /// sharded node's release router.
    pub tree: DerivedActorRef<TreeEntry>,
    /// The sign-off book saved before a restart; `None` starts an empty one.
    pub restored: Option<SignOffBook>,
}

/// State of [`SignOffDesk`].
pub struct SignOffDeskState {
    args: SignOffDeskArgs,
    book: SignOffBook,
    /// The auto-approval a message is already scheduled for.
    wakeup: Option<EventTime>,
}

/// The actor holding the sign-off book of the node.
pub struct SignOffDesk;

impl Actor for SignOffDesk {
    type Msg = SignOffDeskMsg;
    type State = SignOffDeskState;
    type Arguments = SignOffDeskArgs;

    async fn pre_start(
        &self,
        me: ActorRef<SignOffDeskMsg>,
        mut args: SignOffDeskArgs,
    ) -> Result<SignOffDeskState, ActorProcessingErr> {
        let book = args.restored.take().unwrap_or_default();
        let mut state = SignOffDeskState {
            args,
            book,
            wakeup: None,
        };
        schedule_auto_approval(&me, &mut state);
        Ok(state)
    }

    async fn handle(
        &self,
        me: ActorRef<SignOffDeskMsg>,
        msg: SignOffDeskMsg,
        st: &mut SignOffDeskState,
    ) -> Result<(), ActorProcessingErr> {
        let now = st.args.dissemination.clock.now();
        match msg {
            SignOffDeskMsg::Published(event) => {
                // Closed warnings leave the book after a week, so it (and its saved copy) stays
                // bounded.
                let forgotten = st.book.forget_closed_before(now.plus_ms(-CLOSED_KEPT_MS));
                save(st, forgotten);
                let submission = Submission {
                    event,
                    origin: DraftOrigin::Model,
                    message: None,
                };
                match st.book.submit(submission, now, &st.args.policy) {
                    Ok(outcome) => {
                        save(st, outcome.warnings_changed());
                        dispatch(st, outcome)?;
                    }
                    // A version the book already has (handed over again after a restart) changes
                    // nothing.
                    Err(e @ SignOffError::StaleVersion { .. }) => {
                        debug!(error = %e, "model warning version already with the sign-off desk")
                    }
                    Err(e) => {
                        warn!(error = %e, "model warning version not taken by the sign-off desk")
                    }
                }
            }
            SignOffDeskMsg::Issue(submission, reply) => {
                let result = st.book.submit(submission, now, &st.args.policy);
                let answer = settle(st, result)?;
                answer_once_journaled(st.args.dissemination.state.as_ref(), reply, answer);
            }
            SignOffDeskMsg::ListDrafts(scope, reply) => {
                let _ = reply.send(st.book.pending_drafts(scope).cloned().collect());
            }
            SignOffDeskMsg::Approve {
                warning,
                version,
                officer,
                edit,
                reply,
            } => {
                let result = st.book.approve(&warning, version, &officer, edit, now);
                if result.is_ok() {
                    info!(%warning, version, officer = %officer.id, "draft approved");
                }
                let answer = settle(st, result)?;
                answer_once_journaled(st.args.dissemination.state.as_ref(), reply, answer);
            }
            SignOffDeskMsg::Reject {
                warning,
                version,
                officer,
                reason,
                reply,
            } => {
                let result = st.book.reject(&warning, version, &officer, &reason, now);
                let answer = settle(st, result)?;
                answer_once_journaled(st.args.dissemination.state.as_ref(), reply, answer);
            }
            SignOffDeskMsg::Approved(warning, reply) => {
                let _ = reply.send(st.book.approved(&warning).cloned());
            }
            SignOffDeskMsg::TakeOver(sign_offs, reply) => {
                let mut taken = 0;
                for (warning, sign_off) in sign_offs {
                    taken += usize::from(st.book.take_over(warning, sign_off));
                }
                // Journaled again now that this node owns them (the state journal keeps those
                // of warnings it owns): a version taken in here while no node owned its warning
                // was never journaled.
                let versioned: Vec<WarningId> = st
                    .book
                    .warning_ids()
                    .filter(|warning| {
                        st.book
                            .sign_off_of(warning)
                            .is_some_and(|sign_off| sign_off.latest_event().is_some())
                    })
                    .cloned()
                    .collect();
                save(st, versioned);
                let _ = reply.send(taken);
            }
            SignOffDeskMsg::AutoApprove => {
                st.wakeup = None;
                let outcome = st.book.auto_approve_due(now);
                save(st, outcome.warnings_changed());
                dispatch(st, outcome)?;
            }
        }
        schedule_auto_approval(&me, st);
        Ok(())
    }
}

/// How long a closed warning stays in the book (for GetWarning and the audit trail).
const CLOSED_KEPT_MS: i64 = 7 * 24 * HOUR_MS;

/// Saves the book after a successful step, dispatches its releases and returns the caller's
/// result.
fn settle(
    st: &SignOffDeskState,
    result: Result<SignOffOutcome, SignOffError>,
) -> Result<Result<(), SignOffError>, ActorProcessingErr> {
    match result {
        Ok(outcome) => {
            save(st, outcome.warnings_changed());
            dispatch(st, outcome).map(Ok)
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Sends the sign-off of each of `warnings` as the book holds it now (none: forgotten) to the
/// state sink, if any. A sink that is gone loses what a restart would need, but the desk goes on.
fn save(st: &SignOffDeskState, warnings: impl IntoIterator<Item = WarningId>) {
    let Some(sink) = &st.args.dissemination.state else {
        return;
    };
    for warning in warnings {
        let sign_off = st.book.sign_off_of(&warning).cloned().map(Box::new);
        if sink
            .send_message(StateChange::SignOff(warning, sign_off))
            .is_err()
        {
            error!("the state journal is gone: a restart would lose the sign-off book");
            return;
        }
    }
}

/// Sends releases and withdrawals down the tree.
fn dispatch(st: &SignOffDeskState, outcome: SignOffOutcome) -> Result<(), ActorProcessingErr> {
    for step in outcome.dispatches {
        match step {
            Dispatch::Release { audience, warning } => {
                let (release, unknown) =
                    release_of(&st.args.dissemination, Arc::new(warning), audience);
                if !unknown.is_empty() {
                    warn!(warning = %release.warning.event.id, ?unknown, "area codes that are no unit of the tree reach no one");
                }
                st.args
                    .tree
                    .send_message(TreeEntry::Release(Arc::new(release)))
                    .map_err(|_| ActorProcessingErr::from("dissemination is gone"))?;
            }
            Dispatch::Withdraw {
                warning, version, ..
            } => {
                st.args
                    .tree
                    .send_message(TreeEntry::Withdraw { warning, version })
                    .map_err(|_| ActorProcessingErr::from("dissemination is gone"))?;
            }
        }
    }
    Ok(())
}

/// Schedules an `AutoApprove` for the earliest pending auto-approval.
fn schedule_auto_approval(me: &ActorRef<SignOffDeskMsg>, st: &mut SignOffDeskState) {
    if let Some(next) = st.book.next_auto_approval() {
        if st.wakeup.is_none_or(|scheduled| next < scheduled) {
            st.wakeup = Some(next);
            me.send_after(st.args.dissemination.clock.until(next), || {
                SignOffDeskMsg::AutoApprove
            });
        }
    }
}
