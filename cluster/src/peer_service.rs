//! `tianshan.peer.v1.PeerService`, what one node answers the others: its identity and, when
//! sharded, what it owns (`ClusterView`), and its parts of the partial SQL tables (`TableSnapshot`, Arrow IPC). Only
//! tokens of role `peer` may call it.

use std::sync::Arc;

use tianshan_core::access::{Operation, TokenTable};
use tianshan_pipelines::node_pipeline::Ownership;
use tianshan_pipelines::sql::{tables, PARTIAL_TABLES};
use tianshan_proto::peer::v1::peer_service_server::{PeerService, PeerServiceServer};
use tianshan_proto::peer::v1::{
    self as peer, ArrowTable, ClusterViewRequest, ClusterViewResponse, ObservationPartition,
    TableSnapshotRequest, TableSnapshotResponse,
};
use tonic::{Request, Response, Status};

use crate::arrow_ipc;
use crate::bearer::authorize;
use crate::error::ClusterError;
use crate::sql_engine::SnapshotSource;

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
}

impl PeerApi {
    /// Answers as `identity` with the tables of `source`, to callers with a peer token.
    pub fn new(identity: NodeIdentity, source: SnapshotSource, tokens: Arc<TokenTable>) -> Self {
        Self {
            identity,
            source,
            tokens,
        }
    }

    /// Wraps the service for a tonic router.
    pub fn into_server(self) -> PeerServiceServer<Self> {
        PeerServiceServer::new(self)
    }
}

/// Writes what the node owns as the cluster view reports it.
fn ownership_message(owned: Ownership) -> peer::Ownership {
    let observation_partitions = owned
        .observation_partitions
        .into_iter()
        .map(|(topic, partition)| ObservationPartition {
            consumer_lag: owned
                .observation_lag
                .get(&(topic.clone(), partition))
                .copied(),
            topic,
            partition,
        })
        .collect();
    peer::Ownership {
        observation_partitions,
        basin_update_partitions: owned.basin_partitions,
        basins: owned.basins.iter().map(ToString::to_string).collect(),
    }
}

#[tonic::async_trait]
impl PeerService for PeerApi {
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
            ownership: self.source.ownership().map(ownership_message),
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
        }))
    }
}
