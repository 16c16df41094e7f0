//! `tianshan.peer.v1.PeerService`, what one node answers the others: its identity and, when
//! sharded, what it owns (`ClusterView`), its parts of the partial SQL tables (`TableSnapshot`,
//! Arrow IPC), its active warnings and pending drafts (`ActiveHere`, `DraftsHere`), and the
//! reads, acknowledgements and sign-off decisions other nodes received for the warnings it owns
//! (`Forward*`), answered here in the name of the caller the receiving node authenticated. Only
//! tokens of role `peer` may call it.

use std::sync::Arc;

use tianshan_core::access::{Operation, TokenTable};
use tianshan_core::ids::{OfficerId, RecipientId, WarningId};
use tianshan_core::signoff::{Department, DraftScope, DutyOfficer};
use tianshan_pipelines::node_pipeline::{Ownership, OwnershipReader};
use tianshan_pipelines::sql::{tables, PARTIAL_TABLES};
use tianshan_proto::peer::v1::peer_service_server::{PeerService, PeerServiceServer};
use tianshan_proto::peer::v1::{
    self as peer, ActiveHereRequest, ActiveHereResponse, ArrowTable, ClusterViewRequest,
    ClusterViewResponse, DraftsHereRequest, DraftsHereResponse, ForwardAcknowledgeRequest,
    ForwardApproveRequest, ForwardGetWarningRequest, ForwardIssueWarningRequest,
    ForwardRejectRequest, ForwardedOfficer, ObservationPartition, TableSnapshotRequest,
    TableSnapshotResponse,
};
use tianshan_proto::v1;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::arrow_ipc;
use crate::bearer::authorize;
use crate::error::ClusterError;
use crate::forwarding::{obligation_holder, partition_to_find};
use crate::sql_engine::SnapshotSource;
use crate::warning_service::ThisNode;

/// Who this node is, as the cluster view reports it.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node's id.
    pub node_id: String,
    /// The gRPC address it listens on.
    pub grpc_address: String,
    /// The peers it gathers from.
    pub peers: Vec<String>,
}

/// The peer service of one node.
pub struct PeerApi {
    identity: NodeIdentity,
    source: SnapshotSource,
    tokens: Arc<TokenTable>,
    /// Where forwarded requests are applied; `None` takes none.
    warnings: Option<OwnedWarnings>,
}

/// The desk and tree forwarded requests are applied to, and what this node owns now.
struct OwnedWarnings {
    this_node: ThisNode,
    ownership: OwnershipReader,
}

impl OwnedWarnings {
    /// What this node owns now, as the cluster view reports it.
    fn ownership_now(&self) -> Option<peer::Ownership> {
        self.ownership.read().as_ref().map(ownership_message)
    }

    /// Checks that this node still owns `warning` (it may have moved since the peer looked).
    fn check_owned(&self, warning: &WarningId) -> Result<(), ClusterError> {
        self.check_partition(warning, self.ownership.thread_partition(warning))
    }

    /// Checks that this node still holds the books of `person`'s obligations to acknowledge
    /// `warning` (their shard may have moved since the peer looked).
    fn check_books_held(
        &self,
        warning: &WarningId,
        person: &RecipientId,
    ) -> Result<(), ClusterError> {
        self.check_partition(warning, self.ownership.book_partition(person))
    }

    fn check_partition(
        &self,
        warning: &WarningId,
        partition: Option<i32>,
    ) -> Result<(), ClusterError> {
        let owned_here = self
            .ownership
            .read()
            .map(|owned| owned.basin_partitions)
            .unwrap_or_default();
        match partition_to_find(partition, &owned_here) {
            None => Ok(()),
            Some(_) => Err(ClusterError::NotOwnedHere(warning.to_string())),
        }
    }
}

impl PeerApi {
    /// Answers as `identity` with the tables of `source`, to callers with a peer token.
    pub fn new(identity: NodeIdentity, source: SnapshotSource, tokens: Arc<TokenTable>) -> Self {
        Self {
            identity,
            source,
            tokens,
            warnings: None,
        }
    }

    /// Takes acknowledgements and decisions forwarded by peers for the warnings this node
    /// owns by `ownership`, and applies them to `this_node`.
    pub fn taking_forwarded(mut self, this_node: ThisNode, ownership: OwnershipReader) -> Self {
        self.warnings = Some(OwnedWarnings {
            this_node,
            ownership,
        });
        self
    }

    /// Authorizes a forwarded request from a peer and returns where to apply it.
    fn forwarded<T>(&self, request: &Request<T>) -> Result<&OwnedWarnings, Status> {
        authorize(&self.tokens, request.metadata(), Operation::PeerApi)?;
        self.warnings
            .as_ref()
            .ok_or_else(|| Status::unimplemented("this node takes no forwarded requests"))
    }

    /// Wraps the service for a tonic router.
    pub fn into_server(self) -> PeerServiceServer<Self> {
        PeerServiceServer::new(self)
    }
}

/// Writes what the node owns as the cluster view reports it.
pub(crate) fn ownership_message(owned: &Ownership) -> peer::Ownership {
    let observation_partitions = owned
        .observation_partitions
        .iter()
        .map(|(topic, partition)| ObservationPartition {
            consumer_lag: owned
                .observation_lag
                .get(&(topic.clone(), *partition))
                .copied(),
            topic: topic.clone(),
            partition: *partition,
        })
        .collect();
    peer::Ownership {
        observation_partitions,
        basin_update_partitions: owned.basin_partitions.clone(),
        basins: owned.basins.iter().map(ToString::to_string).collect(),
        dissemination_shards: owned.shards.iter().map(ToString::to_string).collect(),
    }
}

/// Returns the duty officer a peer forwarded a decision in the name of.
fn officer(forwarded: Option<ForwardedOfficer>) -> Result<DutyOfficer, ClusterError> {
    let forwarded =
        forwarded.ok_or_else(|| ClusterError::InvalidRequest("officer is missing".to_owned()))?;
    let department = Department::parse(&forwarded.department).ok_or_else(|| {
        ClusterError::InvalidRequest(format!(
            "officer.department {:?} is no department",
            forwarded.department
        ))
    })?;
    if forwarded.officer_id.trim().is_empty() {
        return Err(ClusterError::InvalidRequest(
            "officer.officer_id is empty".to_owned(),
        ));
    }
    Ok(DutyOfficer {
        id: OfficerId::new(forwarded.officer_id.trim()),
        department,
    })
}

fn missing_request() -> ClusterError {
    ClusterError::InvalidRequest("request is missing".to_owned())
}

#[tonic::async_trait]
impl PeerService for PeerApi {
    #[tracing::instrument(skip_all)]
    async fn forward_acknowledge(
        &self,
        request: Request<ForwardAcknowledgeRequest>,
    ) -> Result<Response<v1::AcknowledgeResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let forwarded = request.into_inner();
        let body = forwarded.request.ok_or_else(missing_request)?;
        warnings.check_books_held(
            &WarningId::new(body.warning_id.trim()),
            &obligation_holder(&body),
        )?;
        info!(warning = %body.warning_id, received_by = %forwarded.received_by, "forwarded acknowledgement");
        let by = RecipientId::new(forwarded.by.trim());
        Ok(Response::new(
            warnings.this_node.acknowledge(by, body).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn forward_approve(
        &self,
        request: Request<ForwardApproveRequest>,
    ) -> Result<Response<v1::ApproveResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let forwarded = request.into_inner();
        let body = forwarded.request.ok_or_else(missing_request)?;
        let officer = officer(forwarded.officer)?;
        warnings.check_owned(&WarningId::new(body.warning_id.trim()))?;
        info!(warning = %body.warning_id, received_by = %forwarded.received_by, "forwarded approval");
        Ok(Response::new(
            warnings.this_node.approve(officer, body).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn forward_reject(
        &self,
        request: Request<ForwardRejectRequest>,
    ) -> Result<Response<v1::RejectResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let forwarded = request.into_inner();
        let body = forwarded.request.ok_or_else(missing_request)?;
        let officer = officer(forwarded.officer)?;
        warnings.check_owned(&WarningId::new(body.warning_id.trim()))?;
        info!(warning = %body.warning_id, received_by = %forwarded.received_by, "forwarded rejection");
        Ok(Response::new(
            warnings.this_node.reject(officer, body).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn forward_issue_warning(
        &self,
        request: Request<ForwardIssueWarningRequest>,
    ) -> Result<Response<v1::IssueWarningResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let forwarded = request.into_inner();
        let body = forwarded.request.ok_or_else(missing_request)?;
        let officer = officer(forwarded.officer)?;
        warnings.check_owned(&ThisNode::manual_warning_id(&body)?)?;
        info!(target = %body.target, received_by = %forwarded.received_by, "forwarded warning issued by hand");
        Ok(Response::new(
            warnings.this_node.issue(officer, body).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn forward_get_warning(
        &self,
        request: Request<ForwardGetWarningRequest>,
    ) -> Result<Response<v1::GetWarningResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let forwarded = request.into_inner();
        let body = forwarded.request.ok_or_else(missing_request)?;
        warnings.check_owned(&WarningId::new(body.warning_id.trim()))?;
        info!(warning = %body.warning_id, received_by = %forwarded.received_by, "forwarded read of a warning");
        Ok(Response::new(warnings.this_node.get_warning(body).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn active_here(
        &self,
        request: Request<ActiveHereRequest>,
    ) -> Result<Response<ActiveHereResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let active = warnings.this_node.active().await?;
        Ok(Response::new(ActiveHereResponse {
            warnings: active.iter().map(Into::into).collect(),
            ownership: warnings.ownership_now(),
            ready: self.source.is_ready(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn drafts_here(
        &self,
        request: Request<DraftsHereRequest>,
    ) -> Result<Response<DraftsHereResponse>, Status> {
        let warnings = self.forwarded(&request)?;
        let department = request.into_inner().department;
        let scope = match department.trim() {
            "" => DraftScope::AllDepartments,
            name => DraftScope::Department(Department::parse(name).ok_or_else(|| {
                ClusterError::InvalidRequest(format!("department {name:?} is no department"))
            })?),
        };
        Ok(Response::new(DraftsHereResponse {
            drafts: warnings.this_node.drafts(scope).await?,
            ownership: warnings.ownership_now(),
            ready: self.source.is_ready(),
        }))
    }

    async fn cluster_view(
        &self,
        request: Request<ClusterViewRequest>,
    ) -> Result<Response<ClusterViewResponse>, Status> {
        authorize(&self.tokens, request.metadata(), Operation::PeerApi)?;
        Ok(Response::new(ClusterViewResponse {
            node_id: self.identity.node_id.clone(),
            grpc_address: self.identity.grpc_address.clone(),
            peers: self.identity.peers.clone(),
            ready: self.source.is_ready(),
            ownership: self.source.ownership().as_ref().map(ownership_message),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn table_snapshot(
        &self,
        request: Request<TableSnapshotRequest>,
    ) -> Result<Response<TableSnapshotResponse>, Status> {
        authorize(&self.tokens, request.metadata(), Operation::PeerApi)?;
        let mut wanted = request.into_inner().tables;
        if wanted.is_empty() {
            wanted = PARTIAL_TABLES
                .iter()
                .map(|name| (*name).to_owned())
                .collect();
        }
        if let Some(name) = wanted
            .iter()
            .find(|name| !PARTIAL_TABLES.contains(&name.as_str()))
        {
            return Err(ClusterError::InvalidRequest(format!(
                "tables: {name} is not a partial table (one of {PARTIAL_TABLES:?})"
            ))
            .into());
        }
        let snapshot = self.source.take().await?;
        let ownership = self
            .source
            .ownership()
            .map(|owned| ownership_message(&owned));
        let internal = |e: arrow::error::ArrowError| {
            tracing::error!(error = %e, "a table snapshot could not be encoded");
            Status::internal("internal error")
        };
        let mut answer = Vec::new();
        for (name, batch) in tables::all(&snapshot).map_err(internal)? {
            if wanted.iter().any(|wanted| wanted == name) {
                answer.push(ArrowTable {
                    name: name.to_owned(),
                    arrow_ipc_stream: arrow_ipc::encode(&batch).map_err(internal)?,
                });
            }
        }
        Ok(Response::new(TableSnapshotResponse {
            taken_at_ms: snapshot.taken_at.millis(),
            tables: answer,
            ownership,
            ready: self.source.is_ready(),
        }))
    }
}
