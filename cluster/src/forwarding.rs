//! Reads of one warning, acknowledgements, sign-off decisions and warnings issued by hand of a
//! sharded cluster reach the node that owns the warning, whichever node the client called. The
//! owner of a warning of a basin or chain is the node holding the basin-updates partition of
//! its thread (`warning_threads`): its desk has the drafts and the signed versions. An
//! acknowledgement goes to the owner of the shard of the dissemination tree the person's unit
//! lies in (`shard_dissemination`): its tree holds the person's books. A node receiving
//! such a request for a thread on a partition it does not hold asks its peers' cluster views
//! which of them holds it now, forwards the request there over the peer API (with the peer
//! token, in the name of the caller its own token table found) and answers with the owner's
//! answer. Who owns what is Kafka's current assignment, as each node reports it, so the lookup
//! follows rebalances, and an owner that is down is found unreachable rather than guessed.
//!
//! Deciding ([`partition_to_find`], [`owner_among`]) is plain code; [`Forwarder`] does the
//! calls.

use tianshan_core::ids::{RecipientId, WarningId};
use tianshan_core::signoff::DutyOfficer;
use tianshan_pipelines::node_pipeline::OwnershipReader;
use tianshan_proto::peer::v1::{
    ForwardAcknowledgeRequest, ForwardApproveRequest, ForwardGetWarningRequest,
    ForwardIssueWarningRequest, ForwardRejectRequest, ForwardedOfficer,
};
use tianshan_proto::v1;
use tonic::{Code, Status};
use tracing::info;

use crate::error::ClusterError;
use crate::peer_gather::PeerGather;
use crate::whole_answer::PartHere;

/// Where a request about one warning is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// On this node: it owns the warning, or the warning belongs to no basin or chain.
    Here,
    /// On the peer at this address, which owns the warning.
    Owner(String),
}

/// What one peer's cluster view said it owns, or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerClaim {
    /// The peer's address.
    pub peer: String,
    /// Its basin-updates partitions, or what went wrong asking it.
    pub partitions: Result<Vec<i32>, String>,
}

/// Returns the basin-updates partition whose owner must handle a request about a warning of
/// `thread_partition` (`None`: of no basin or chain), or `None` when this node, holding
/// `owned_here`, handles it.
pub fn partition_to_find(thread_partition: Option<i32>, owned_here: &[i32]) -> Option<i32> {
    thread_partition.filter(|partition| !owned_here.contains(partition))
}

/// Returns the peer that owns `partition` by `claims` (in configured order; the first claim
/// wins while a rebalance briefly leaves two).
///
/// # Errors
/// [`ClusterError::NoReachableOwner`] when no peer claims it, naming the peers that did not
/// answer (one of them is likely the owner); without such peers the partition is between
/// owners (a rebalance).
pub fn owner_among(
    warning: &WarningId,
    partition: i32,
    claims: &[PeerClaim],
) -> Result<String, ClusterError> {
    if let Some(claim) = claims.iter().find(|claim| {
        claim
            .partitions
            .as_ref()
            .is_ok_and(|owned| owned.contains(&partition))
    }) {
        return Ok(claim.peer.clone());
    }
    let unreachable = claims
        .iter()
        .filter_map(|claim| {
            let detail = claim.partitions.as_ref().err()?;
            Some(format!("{} ({detail})", claim.peer))
        })
        .collect();
    Err(ClusterError::NoReachableOwner {
        warning: warning.to_string(),
        partition,
        unreachable,
    })
}

/// Returns the first peer's answer (in configured order) that has the warning: a warning of no
/// basin or chain is known only to the node that has it.
///
/// # Errors
/// [`ClusterError::UnknownWarning`] when every peer answered without it;
/// [`ClusterError::WarningOutOfReach`] when none that answered has it and some did not answer.
pub fn found_among<T>(
    warning: &WarningId,
    answers: Vec<(String, Result<Option<T>, String>)>,
) -> Result<T, ClusterError> {
    let mut not_answering = Vec::new();
    for (peer, answer) in answers {
        match answer {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => {}
            Err(detail) => not_answering.push(format!("{peer} ({detail})")),
        }
    }
    if not_answering.is_empty() {
        Err(ClusterError::UnknownWarning(warning.to_string()))
    } else {
        Err(ClusterError::WarningOutOfReach {
            warning: warning.to_string(),
            not_answering,
        })
    }
}

/// Returns the person whose unit's books hold the obligation an acknowledgement answers: the
/// addressee for the warning, the unreached person for a handover.
pub(crate) fn obligation_holder(body: &v1::AcknowledgeRequest) -> RecipientId {
    match body.handover_of.trim() {
        "" => RecipientId::new(body.addressee.trim()),
        unreached => RecipientId::new(unreached),
    }
}

/// Returns the error of a forwarded call the owner answered with `status`: its own answer
/// (not found, denied, already decided, invalid) passes through; any other failure means the
/// owner could not handle it, and names it.
fn owner_error(warning: &WarningId, owner: &str, status: Status) -> ClusterError {
    match status.code() {
        Code::NotFound
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::InvalidArgument
        | Code::OutOfRange
        | Code::AlreadyExists => ClusterError::OwnerAnswered {
            owner: owner.to_owned(),
            code: status.code(),
            message: status.message().to_owned(),
        },
        code => ClusterError::OwnerUnavailable {
            warning: warning.to_string(),
            owner: owner.to_owned(),
            detail: format!("{code:?}: {}", status.message()),
        },
    }
}

/// Finds the owners of warnings and forwards requests to them.
#[derive(Clone)]
pub struct Forwarder {
    node_id: String,
    ownership: OwnershipReader,
    peers: PeerGather,
}

impl Forwarder {
    /// Forwards as node `node_id`, which owns what `ownership` says, to `peers`.
    pub fn new(node_id: String, ownership: OwnershipReader, peers: PeerGather) -> Self {
        Self {
            node_id,
            ownership,
            peers,
        }
    }

    /// Returns where a request about `warning` is handled.
    ///
    /// # Errors
    /// [`ClusterError::NoReachableOwner`] when no peer that answers owns it.
    pub async fn route(&self, warning: &WarningId) -> Result<Route, ClusterError> {
        self.route_to(warning, self.ownership.thread_partition(warning))
            .await
    }

    /// Returns where an acknowledgement of `warning` is handled: at the owner of the shard of
    /// the dissemination tree whose books hold `person`'s obligation (the addressee's for the
    /// warning, the unreached person's for a handover).
    ///
    /// # Errors
    /// [`ClusterError::NoReachableOwner`] when no peer that answers owns the shard.
    pub async fn route_acknowledgement(
        &self,
        warning: &WarningId,
        person: &RecipientId,
    ) -> Result<Route, ClusterError> {
        self.route_to(warning, self.ownership.book_partition(person))
            .await
    }

    async fn route_to(
        &self,
        warning: &WarningId,
        partition: Option<i32>,
    ) -> Result<Route, ClusterError> {
        let owned_here = self
            .ownership
            .read()
            .map(|owned| owned.basin_partitions)
            .unwrap_or_default();
        let Some(partition) = partition_to_find(partition, &owned_here) else {
            return Ok(Route::Here);
        };
        let claims = self.peers.ownership_claims().await;
        owner_among(warning, partition, &claims).map(Route::Owner)
    }

    /// The peers this node forwards to and gathers lists from.
    pub fn peers(&self) -> &PeerGather {
        &self.peers
    }

    /// What this node owns now and whether its state of it is rebuilt.
    pub fn part_here(&self) -> PartHere {
        PartHere {
            ownership: self.ownership.read(),
            ready: self.ownership.is_ready(),
        }
    }

    /// Whether `warning` belongs to no basin or chain, so only the node that has it knows it.
    pub fn is_of_no_thread(&self, warning: &WarningId) -> bool {
        self.ownership.is_sharded() && self.ownership.thread_partition(warning).is_none()
    }

    /// Asks every peer for the warning `body` names (one of no basin or chain, which only the
    /// node that has it knows) and returns the first that has it.
    ///
    /// # Errors
    /// As [`found_among`].
    #[tracing::instrument(skip_all)]
    pub async fn get_warning_from_any(
        &self,
        body: v1::GetWarningRequest,
    ) -> Result<v1::GetWarningResponse, ClusterError> {
        let warning = WarningId::new(body.warning_id.trim());
        let answers = self
            .peers
            .warning_anywhere(body, self.node_id.clone())
            .await;
        found_among(&warning, answers)
    }

    /// Asks `owner` for the warning `body` names, as its desk knows it.
    ///
    /// # Errors
    /// As [`Forwarder::acknowledge`].
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn get_warning(
        &self,
        owner: &str,
        body: v1::GetWarningRequest,
    ) -> Result<v1::GetWarningResponse, ClusterError> {
        let warning = WarningId::new(body.warning_id.trim());
        let message = ForwardGetWarningRequest {
            request: Some(body),
            received_by: self.node_id.clone(),
        };
        let (mut client, request) = self.peers.request_to(owner, message)?;
        client
            .forward_get_warning(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| owner_error(&warning, owner, status))
    }

    /// Has `owner` record the acknowledgement `body` of `by`.
    ///
    /// # Errors
    /// The owner's refusal as [`ClusterError::OwnerAnswered`];
    /// [`ClusterError::OwnerUnavailable`] when it cannot be asked or cannot answer.
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn acknowledge(
        &self,
        owner: &str,
        by: &RecipientId,
        body: v1::AcknowledgeRequest,
    ) -> Result<v1::AcknowledgeResponse, ClusterError> {
        let warning = WarningId::new(body.warning_id.trim());
        info!(%warning, version = body.version, "acknowledgement forwarded to the owning node");
        let message = ForwardAcknowledgeRequest {
            request: Some(body),
            by: by.to_string(),
            received_by: self.node_id.clone(),
        };
        let (mut client, request) = self.peers.request_to(owner, message)?;
        client
            .forward_acknowledge(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| owner_error(&warning, owner, status))
    }

    /// Has `owner` approve the draft `body` names as `officer`.
    ///
    /// # Errors
    /// As [`Forwarder::acknowledge`].
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn approve(
        &self,
        owner: &str,
        officer: &DutyOfficer,
        body: v1::ApproveRequest,
    ) -> Result<v1::ApproveResponse, ClusterError> {
        let warning = WarningId::new(body.warning_id.trim());
        info!(%warning, version = body.version, "approval forwarded to the owning node");
        let message = ForwardApproveRequest {
            request: Some(body),
            officer: Some(forwarded_officer(officer)),
            received_by: self.node_id.clone(),
        };
        let (mut client, request) = self.peers.request_to(owner, message)?;
        client
            .forward_approve(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| owner_error(&warning, owner, status))
    }

    /// Has `owner` reject the draft `body` names as `officer`.
    ///
    /// # Errors
    /// As [`Forwarder::acknowledge`].
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn reject(
        &self,
        owner: &str,
        officer: &DutyOfficer,
        body: v1::RejectRequest,
    ) -> Result<v1::RejectResponse, ClusterError> {
        let warning = WarningId::new(body.warning_id.trim());
        info!(%warning, version = body.version, "rejection forwarded to the owning node");
        let message = ForwardRejectRequest {
            request: Some(body),
            officer: Some(forwarded_officer(officer)),
            received_by: self.node_id.clone(),
        };
        let (mut client, request) = self.peers.request_to(owner, message)?;
        client
            .forward_reject(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| owner_error(&warning, owner, status))
    }
}

impl Forwarder {
    /// Has `owner` issue the warning `body` describes as `officer` (this node finds it gets
    /// the id `warning`).
    ///
    /// # Errors
    /// As [`Forwarder::acknowledge`].
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn issue(
        &self,
        owner: &str,
        officer: &DutyOfficer,
        warning: &WarningId,
        body: v1::IssueWarningRequest,
    ) -> Result<v1::IssueWarningResponse, ClusterError> {
        info!(%warning, "warning issued by hand forwarded to the owning node");
        let message = ForwardIssueWarningRequest {
            request: Some(body),
            officer: Some(forwarded_officer(officer)),
            received_by: self.node_id.clone(),
        };
        let (mut client, request) = self.peers.request_to(owner, message)?;
        client
            .forward_issue_warning(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| owner_error(warning, owner, status))
    }
}

fn forwarded_officer(officer: &DutyOfficer) -> ForwardedOfficer {
    ForwardedOfficer {
        officer_id: officer.id.to_string(),
        department: officer.department.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(peer: &str, partitions: &[i32]) -> PeerClaim {
        PeerClaim {
            peer: peer.to_owned(),
            partitions: Ok(partitions.to_vec()),
        }
    }

    fn silent(peer: &str) -> PeerClaim {
        PeerClaim {
            peer: peer.to_owned(),
            partitions: Err("Unavailable: connection refused".to_owned()),
        }
    }

    fn warning() -> WarningId {
        WarningId::new("FF-B0042-20240701T0000Z")
    }

    #[test]
    fn a_warning_of_no_thread_is_the_first_answering_peer_that_has_it() {
        let found =
            |answers: Vec<(String, Result<Option<u32>, String>)>| found_among(&warning(), answers);
        let down = || Err("Unavailable: connection refused".to_owned());
        assert_eq!(
            found(vec![
                ("a".into(), Ok(None)),
                ("b".into(), down()),
                ("c".into(), Ok(Some(3))),
                ("d".into(), Ok(Some(4))),
            ])
            .ok(),
            Some(3)
        );
        assert!(matches!(
            found(vec![("a".into(), Ok(None)), ("c".into(), Ok(None))]),
            Err(ClusterError::UnknownWarning(_))
        ));
        assert!(matches!(
            found(Vec::new()),
            Err(ClusterError::UnknownWarning(_))
        ));
        match found(vec![("a".into(), Ok(None)), ("b".into(), down())]) {
            Err(ClusterError::WarningOutOfReach { not_answering, .. }) => {
                assert_eq!(not_answering, ["b (Unavailable: connection refused)"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_node_handles_its_own_threads_and_warnings_of_no_thread() {
        assert_eq!(partition_to_find(Some(3), &[1, 3, 5]), None);
        assert_eq!(partition_to_find(None, &[1, 3, 5]), None);
        assert_eq!(partition_to_find(None, &[]), None);
        assert_eq!(partition_to_find(Some(4), &[1, 3, 5]), Some(4));
        // Before its partitions are assigned a node owns no thread.
        assert_eq!(partition_to_find(Some(0), &[]), Some(0));
    }

    #[test]
    fn the_peer_claiming_the_partition_owns_the_warning() {
        let claims = [claim("a:1", &[0, 1]), silent("b:1"), claim("c:1", &[4, 7])];
        assert_eq!(
            owner_among(&warning(), 7, &claims).expect("c owns 7"),
            "c:1"
        );
        // Two claims while a rebalance settles: the first in configured order.
        let claims = [claim("a:1", &[7]), claim("c:1", &[7])];
        assert_eq!(
            owner_among(&warning(), 7, &claims).expect("a claims 7"),
            "a:1"
        );
    }

    #[test]
    fn with_no_claim_the_peers_that_did_not_answer_are_named() {
        let claims = [claim("a:1", &[0, 1]), silent("b:1")];
        let error = owner_among(&warning(), 7, &claims).expect_err("nobody claims 7");
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("b:1"), "{status:?}");
        assert!(status.message().contains("FF-B0042"), "{status:?}");
        assert!(!status.message().contains("a:1"), "{status:?}");

        let error = owner_among(&warning(), 7, &[claim("a:1", &[0])]).expect_err("unowned");
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("rebalanc"), "{status:?}");
    }

    #[test]
    fn the_owners_refusals_pass_through_and_its_failures_name_it() {
        for code in [
            Code::NotFound,
            Code::PermissionDenied,
            Code::FailedPrecondition,
        ] {
            let status = Status::from(owner_error(
                &warning(),
                "c:1",
                Status::new(code, "the owner's words"),
            ));
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "the owner's words");
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unauthenticated,
        ] {
            let status = Status::from(owner_error(&warning(), "c:1", Status::new(code, "gone")));
            assert_eq!(status.code(), Code::Unavailable, "{code:?}");
            assert!(status.message().contains("c:1"), "{status:?}");
        }
    }
}
