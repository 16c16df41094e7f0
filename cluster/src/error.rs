//! Errors of the node's services, and their one conversion into `tonic::Status`.
//!
//! | error | status |
//! |---|---|
//! | no or unknown bearer token | `UNAUTHENTICATED` |
//! | other access denials, `WrongDepartment`, `NotAddressee` | `PERMISSION_DENIED`, with the reason |
//! | `UnknownDraft`, `NothingToAcknowledge`, no such warning | `NOT_FOUND` |
//! | `AlreadyDecided`, `StaleVersion`, `ClosedWarning` | `FAILED_PRECONDITION` |
//! | a SQL query that does not parse, plan or run | `INVALID_ARGUMENT`, with DataFusion's message |
//! | bad input, `EmptyEdit`, `EmptyArea`, `BlankMessage`, `BlankReason`, `NotAPerson` | `INVALID_ARGUMENT` |
//! | a cursor before the topic's retention or past its end | `OUT_OF_RANGE` |
//! | Kafka unreachable | `UNAVAILABLE` |
//! | a peer that does not answer a scatter-gather query (unsharded nodes) | `UNAVAILABLE`, naming the peer |
//! | sharded: the nodes that answered miss a partition, both own one, or still rebuild one | `UNAVAILABLE`, naming the partitions or nodes and the peers not answering |
//! | a request forwarded to the warning's owner: the owner's refusal | the owner's status |
//! | …the owner does not answer, or no reachable node owns the warning | `UNAVAILABLE`, naming the owner or the peers not answering |
//! | a forwarded request reaching a node that no longer owns the warning | `UNAVAILABLE` |
//! | anything else | `INTERNAL`, details only in the log |

use std::path::PathBuf;

use tianshan_core::access::Denied;
use tianshan_core::dissemination::acknowledgement::AckError;
use tianshan_core::signoff::SignOffError;
use tianshan_pipelines::error::{ErrorDomain, PipelineError};
use tonic::Status;

/// Errors a gRPC or HTTP handler can meet.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The caller may not make the call.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The sign-off desk refused the step.
    #[error(transparent)]
    SignOff(#[from] SignOffError),
    /// The dissemination tree refused the acknowledgement.
    #[error(transparent)]
    Acknowledgement(#[from] AckError),
    /// The warning asked for is not known.
    #[error("no warning {0}")]
    UnknownWarning(String),
    /// A subscription cursor points outside what the warnings topic holds.
    #[error("cursor out of range: {0}")]
    CursorOutOfRange(String),
    /// The pipeline behind the service failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A TLS certificate or key file could not be read.
    #[error("cannot read TLS file {}: {detail}", file.display())]
    TlsFile {
        /// The file.
        file: PathBuf,
        /// What failed.
        detail: String,
    },
    /// A peer did not answer a table snapshot, refused it, or sent what does not decode.
    #[error("peer {peer} did not answer: {detail}")]
    PeerFailed {
        /// The peer's address.
        peer: String,
        /// What went wrong.
        detail: String,
    },
    /// The nodes of a sharded cluster that answered a scatter-gather query do not own every
    /// partition once between them, or one still rebuilds its part: the answer would miss or
    /// double part of the state.
    #[error(
        "the nodes that answered do not hold the whole cluster's state: {gap}; peers not \
         answering: {not_answering}; ask again once the cluster has rebalanced"
    )]
    PartialCluster {
        /// What is missing or doubled.
        gap: String,
        /// The peers that did not answer, each with what went wrong, or `none`.
        not_answering: String,
    },
    /// No node that answered owns the warning a request is about: the owner is among the peers
    /// that did not answer, or the cluster is rebalancing.
    #[error(
        "no reachable node owns warning {warning} (basin-updates partition {partition}){}",
        if unreachable.is_empty() {
            "; the cluster is rebalancing, retry".to_owned()
        } else {
            format!("; not answering: {}", unreachable.join(", "))
        }
    )]
    NoReachableOwner {
        /// The warning.
        warning: String,
        /// The partition deciding its owner.
        partition: i32,
        /// Each peer that did not answer, with what went wrong.
        unreachable: Vec<String>,
    },
    /// A warning of no basin or chain is neither on this node nor on any peer that answered;
    /// one of the peers that did not answer may have it.
    #[error(
        "warning {warning} is on no node that answered; not answering: {}",
        not_answering.join(", ")
    )]
    WarningOutOfReach {
        /// The warning.
        warning: String,
        /// Each peer that did not answer, with what went wrong.
        not_answering: Vec<String>,
    },
    /// The node owning the warning could not handle a request forwarded to it.
    #[error("the node owning warning {warning}, {owner}, is unavailable: {detail}")]
    OwnerUnavailable {
        /// The warning.
        warning: String,
        /// The owner's address.
        owner: String,
        /// What went wrong.
        detail: String,
    },
    /// The node owning the warning refused a request forwarded to it; the client gets its answer.
    #[error("{owner} answered {code:?}: {message}")]
    OwnerAnswered {
        /// The owner's address.
        owner: String,
        /// The owner's status code.
        code: tonic::Code,
        /// The owner's status message.
        message: String,
    },
    /// A request forwarded here is about a warning this node no longer owns (it moved since
    /// the peer looked).
    #[error("this node no longer owns warning {0}; retry")]
    NotOwnedHere(String),
    /// The node's configuration does not allow the service.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A server could not bind or serve.
    #[error("could not serve on {addr}: {detail}")]
    Serve {
        /// The address.
        addr: String,
        /// What failed.
        detail: String,
    },
}

impl ClusterError {
    /// Wraps the failure of an actor the service asked.
    pub(crate) fn actor(error: impl std::fmt::Display) -> Self {
        ClusterError::Pipeline(PipelineError::Actor(error.to_string()))
    }
}

fn sign_off_status(error: &SignOffError) -> Status {
    let message = error.to_string();
    match error {
        SignOffError::UnknownDraft { .. } => Status::not_found(message),
        SignOffError::AlreadyDecided { .. }
        | SignOffError::StaleVersion { .. }
        | SignOffError::ClosedWarning { .. } => Status::failed_precondition(message),
        SignOffError::WrongDepartment { .. } => Status::permission_denied(message),
        SignOffError::EmptyEdit { .. }
        | SignOffError::EmptyArea { .. }
        | SignOffError::BlankMessage { .. }
        | SignOffError::BlankReason { .. } => Status::invalid_argument(message),
    }
}

fn acknowledgement_status(error: &AckError) -> Status {
    let message = error.to_string();
    match error {
        AckError::NothingToAcknowledge { .. } => Status::not_found(message),
        AckError::NotAddressee { .. } => Status::permission_denied(message),
        AckError::NotAPerson { .. } => Status::invalid_argument(message),
        AckError::UnknownDelivery { .. } => {
            tracing::error!(error = %error, "delivery report error answered to an acknowledgement");
            Status::internal("internal error")
        }
    }
}

impl From<ClusterError> for Status {
    fn from(error: ClusterError) -> Self {
        match error {
            ClusterError::InvalidRequest(detail) => Status::invalid_argument(detail),
            ClusterError::Denied(Denied::Unauthenticated { problem }) => {
                Status::unauthenticated(problem.to_string())
            }
            ClusterError::Denied(Denied::PermissionDenied { reason }) => {
                Status::permission_denied(reason.to_string())
            }
            ClusterError::SignOff(e) => sign_off_status(&e),
            ClusterError::Acknowledgement(e) => acknowledgement_status(&e),
            ClusterError::UnknownWarning(id) => Status::not_found(format!("no warning {id}")),
            ClusterError::CursorOutOfRange(detail) => Status::out_of_range(detail),
            // A stage that did not answer in time (busy or restarting): the client may retry.
            ClusterError::Pipeline(PipelineError::Actor(detail)) => {
                tracing::warn!(%detail, "a pipeline stage did not answer a request");
                Status::unavailable("the node is busy; retry later")
            }
            // DataFusion's own words: they say what in the query is wrong.
            ClusterError::Pipeline(e @ PipelineError::Sql(_)) => {
                Status::invalid_argument(e.to_string())
            }
            ClusterError::Pipeline(e) => match e.domain() {
                ErrorDomain::External => {
                    Status::unavailable("the message broker is unavailable; retry later")
                }
                ErrorDomain::User | ErrorDomain::Internal => {
                    tracing::error!(error = %e, "request failed inside the pipeline");
                    Status::internal("internal error")
                }
            },
            // The answer would miss that node's part: the client may retry once it is back.
            e @ (ClusterError::PeerFailed { .. } | ClusterError::PartialCluster { .. }) => {
                Status::unavailable(e.to_string())
            }
            // Who owns the warning could not take the request now: retry once it is back, or
            // once the cluster has rebalanced.
            e @ (ClusterError::NoReachableOwner { .. }
            | ClusterError::WarningOutOfReach { .. }
            | ClusterError::OwnerUnavailable { .. }
            | ClusterError::NotOwnedHere(_)) => Status::unavailable(e.to_string()),
            ClusterError::OwnerAnswered { code, message, .. } => Status::new(code, message),
            ClusterError::TlsFile { .. } | ClusterError::Serve { .. } | ClusterError::Config(_) => {
                Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tianshan_core::access::{DenialReason, TokenProblem};
    use tianshan_core::ids::{RecipientId, WarningId};
    use tianshan_core::signoff::{Decision, Department};
    use tonic::Code;

    use super::*;

    fn code(error: impl Into<ClusterError>) -> Code {
        Status::from(error.into()).code()
    }

    #[test]
    fn denials_become_unauthenticated_or_permission_denied() {
        let missing = Denied::Unauthenticated {
            problem: TokenProblem::Missing,
        };
        assert_eq!(code(missing), Code::Unauthenticated);
        let denied = Denied::PermissionDenied {
            reason: DenialReason::NotTheAddressee,
        };
        let status = Status::from(ClusterError::from(denied));
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(status.message().contains("addressed"), "{status:?}");
    }

    #[test]
    fn sign_off_and_acknowledgement_errors_keep_their_meaning() {
        let warning = WarningId::new("FF-B1-20240701T0000Z");
        assert_eq!(
            code(SignOffError::UnknownDraft {
                warning: warning.clone(),
                version: 2
            }),
            Code::NotFound
        );
        assert_eq!(
            code(SignOffError::AlreadyDecided {
                warning: warning.clone(),
                version: 1,
                decision: Decision::Approved
            }),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(SignOffError::WrongDepartment {
                warning: warning.clone(),
                responsible: Department::WaterResources,
                acting: Department::ForestryAndGrassland
            }),
            Code::PermissionDenied
        );
        assert_eq!(
            code(SignOffError::BlankReason {
                warning: warning.clone()
            }),
            Code::InvalidArgument
        );
        assert_eq!(
            code(AckError::NotAddressee {
                warning: warning.clone(),
                version: 1,
                addressee: RecipientId::new("a"),
                by: RecipientId::new("b")
            }),
            Code::PermissionDenied
        );
        assert_eq!(
            code(AckError::NothingToAcknowledge {
                warning,
                version: 1,
                recipient: RecipientId::new("a"),
                subject: tianshan_core::dissemination::acknowledgement::Subject::Warning
            }),
            Code::NotFound
        );
    }
}
