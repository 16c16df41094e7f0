//! Answers the SQL of the node's API (`POST /sql` and Flight SQL): takes a fresh snapshot of
//! the node, gathers the other nodes' parts of the partial tables when the node has peers
//! ([`PeerGather`]), and runs the query over the union with DataFusion, once the nodes that
//! answered hold the whole cluster's state ([`crate::whole_answer`]).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tianshan_actors::wall_clock::WallClock;
use tianshan_pipelines::node_pipeline::Ownership;
use tianshan_pipelines::sql::{NodeSnapshot, NodeSources, NodeSql};

use crate::error::ClusterError;
use crate::peer_gather::PeerGather;
use crate::whole_answer::{answer_is_whole, Needed, PartHere};

/// Where a node's tables come from.
#[derive(Clone)]
pub enum SnapshotSource {
    /// The actors of a running node, asked afresh for every snapshot, stamped by `clock`.
    Live {
        /// The actors.
        sources: NodeSources,
        /// The clock that stamps snapshots.
        clock: WallClock,
    },
    /// One snapshot taken before, such as the end of a replay.
    Fixed(Arc<NodeSnapshot>),
}

impl SnapshotSource {
    /// Returns the node's state now.
    ///
    /// # Errors
    /// Returns [`ClusterError::Pipeline`] when an actor does not answer.
    pub async fn take(&self) -> Result<NodeSnapshot, ClusterError> {
        match self {
            SnapshotSource::Live { sources, clock } => {
                Ok(NodeSnapshot::of_node(sources, clock.now()).await?)
            }
            SnapshotSource::Fixed(snapshot) => Ok(snapshot.as_ref().clone()),
        }
    }

    /// Returns whether the node is ready (a fixed snapshot always is).
    pub fn is_ready(&self) -> bool {
        match self {
            SnapshotSource::Live { sources, .. } => sources.is_ready(),
            SnapshotSource::Fixed(_) => true,
        }
    }

    /// Returns what the node owns now; `None` when it runs unsharded or answers from a fixed
    /// snapshot.
    pub fn ownership(&self) -> Option<Ownership> {
        match self {
            SnapshotSource::Live { sources, .. } => sources.ownership(),
            SnapshotSource::Fixed(_) => None,
        }
    }
}

/// Where the node's SQL answers come from; cheap to clone.
#[derive(Clone)]
pub struct SqlEngine {
    source: SnapshotSource,
    peers: PeerGather,
}

impl SqlEngine {
    /// Answers over `source`, with the parts `peers` gathers.
    pub fn new(source: SnapshotSource, peers: PeerGather) -> Self {
        Self { source, peers }
    }

    /// Returns a session over a fresh snapshot of the node and its peers' parts.
    ///
    /// # Errors
    /// Returns [`ClusterError::Pipeline`] when an actor does not answer or a table cannot be
    /// built, [`ClusterError::PeerFailed`] naming a peer that did not answer.
    pub async fn session(&self) -> Result<NodeSql, ClusterError> {
        // Peers are asked while this node takes its own snapshot.
        let gathered = {
            let peers = self.peers.clone();
            tokio::spawn(async move { peers.gather().await })
        };
        let snapshot = self.source.take().await?;
        let here = PartHere {
            ownership: self.source.ownership(),
            ready: self.source.is_ready(),
        };
        let gathered = gathered.await.map_err(ClusterError::actor)?;
        answer_is_whole(
            &here,
            &gathered.answered,
            &gathered.failed,
            Needed::EveryPartition,
        )?;
        Ok(NodeSql::with_parts(&snapshot, gathered.parts)?)
    }

    /// Returns a session over this node's snapshot alone, to plan a query (the tables' schemas
    /// are the same on every node).
    ///
    /// # Errors
    /// As [`SqlEngine::session`], without peers.
    pub async fn local_session(&self) -> Result<NodeSql, ClusterError> {
        Ok(NodeSql::new(&self.source.take().await?)?)
    }

    /// Runs `sql` over a fresh snapshot; returns the answer's schema and batches.
    ///
    /// # Errors
    /// As [`SqlEngine::session`], and [`ClusterError::Pipeline`] with
    /// [`tianshan_pipelines::error::PipelineError::Sql`] for a query that does not parse, plan
    /// or run.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ClusterError> {
        self.query_bound(sql, None).await
    }

    /// Runs `sql` with `parameters` bound (one row, one value per placeholder) over a fresh
    /// snapshot; returns the answer's schema and batches.
    ///
    /// # Errors
    /// As [`SqlEngine::query`], and [`ClusterError::Pipeline`] with
    /// [`tianshan_pipelines::error::PipelineError::Sql`] for parameters that do not fit.
    pub async fn query_bound(
        &self,
        sql: &str,
        parameters: Option<&RecordBatch>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), ClusterError> {
        Ok(self.session().await?.query_bound(sql, parameters).await?)
    }
}
