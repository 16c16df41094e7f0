//! Answers the SQL of the node's API (`POST /sql` and Flight SQL): takes a fresh snapshot of
//! the node's actors and runs the query over it with DataFusion.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tianshan_actors::wall_clock::WallClock;
use tianshan_pipelines::sql::{NodeSnapshot, NodeSources, NodeSql};

use crate::error::ClusterError;

/// Where the node's SQL answers come from; cheap to clone.
#[derive(Clone)]
pub struct SqlEngine {
    sources: NodeSources,
    clock: WallClock,
}

impl SqlEngine {
    /// Answers over the actors of `sources`, snapshots stamped by `clock`.
    pub fn new(sources: NodeSources, clock: WallClock) -> Self {
        Self { sources, clock }
    }

    /// Returns a session over a fresh snapshot of the node.
    ///
    /// # Errors
    /// Returns [`ClusterError::Pipeline`] when an actor does not answer or a table cannot be
    /// built.
    pub async fn session(&self) -> Result<NodeSql, ClusterError> {
        let snapshot = NodeSnapshot::of_node(&self.sources, self.clock.now()).await?;
        Ok(NodeSql::new(&snapshot)?)
    }

    /// Runs `sql` over a fresh snapshot; returns the answer's schema and batches.
    ///
    /// # Errors
    /// As [`SqlEngine::session`], and [`ClusterError::Pipeline`] with
    /// [`tianshan_pipelines::error::PipelineError::Sql`] for a query that does not parse, plan
    /// or run.
    pub async fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ClusterError> {
        Ok(self.session().await?.query_with_schema(sql).await?)
    }
}
