//! Answers the SQL of the node's API (`POST /sql` and Flight SQL): takes a fresh snapshot of
//! the node, gathers the other nodes' parts of the partial tables when the node has peers
//! ([`PeerGather`]), and runs the query over the union with DataFusion.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tianshan_actors::wall_clock::WallClock;
use tianshan_core::shard_coverage::{check_coverage, Claim};
use tianshan_pipelines::basin_update_source::ClusterPartitions;
use tianshan_pipelines::node_pipeline::Ownership;
use tianshan_pipelines::sql::{NodeSnapshot, NodeSources, NodeSql};
use tianshan_proto::peer::v1 as peer;

use crate::error::ClusterError;
use crate::peer_gather::{Gathered, PeerGather};
use crate::peer_service::ownership_message;

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
        let here = ThisNode {
            ownership: self.source.ownership(),
            ready: self.source.is_ready(),
        };
        let gathered = gathered.await.map_err(ClusterError::actor)??;
        answer_is_whole(&here, &gathered)?;
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

/// The state this node's own part was taken in.
struct ThisNode {
    /// What it owned (`None` when it runs unsharded).
    ownership: Option<Ownership>,
    /// Whether its state of what it owns was rebuilt.
    ready: bool,
}

/// Whether an answer over this node and the peers that answered covers the whole cluster.
/// Unsharded nodes each hold a part no other node has, so every peer must answer. Sharded, the
/// answer is whole when this node and the peers that answered own every partition once between
/// them ([`check_coverage`]) and every one of them has rebuilt its state of what it owns: a
/// listed peer that is not running (a StatefulSet scaled below the pods `[cluster] peers`
/// lists) owns nothing and is not missed.
///
/// # Errors
/// [`ClusterError::PeerFailed`] naming the first peer that did not answer an unsharded node;
/// [`ClusterError::PartialCluster`] when a sharded node's answer would miss or double a
/// partition, or take a part still being rebuilt after a rebalance.
fn answer_is_whole(here: &ThisNode, gathered: &Gathered) -> Result<(), ClusterError> {
    let Some(owned_here) = &here.ownership else {
        return match gathered.failed.first() {
            Some((peer, detail)) => Err(ClusterError::PeerFailed {
                peer: peer.clone(),
                detail: detail.clone(),
            }),
            None => Ok(()),
        };
    };
    const THIS_NODE: &str = "this node";
    let mut claims = vec![Claim {
        node: THIS_NODE.to_owned(),
        partitions: claimed(&ownership_message(owned_here)),
    }];
    claims.extend(gathered.answered.iter().map(|part| Claim {
        node: part.peer.clone(),
        partitions: part.ownership.as_ref().map(claimed).unwrap_or_default(),
    }));
    let not_answering = || {
        let peers: Vec<String> = gathered
            .failed
            .iter()
            .map(|(peer, detail)| format!("{peer} ({detail})"))
            .collect();
        if peers.is_empty() {
            "none".to_owned()
        } else {
            peers.join(", ")
        }
    };
    let partial = |gap: String| ClusterError::PartialCluster {
        gap,
        not_answering: not_answering(),
    };
    check_coverage(&every_partition(&owned_here.cluster), &claims)
        .map_err(|gap| partial(gap.to_string()))?;
    let rebuilding: Vec<&str> = (!here.ready)
        .then_some(THIS_NODE)
        .into_iter()
        .chain(
            gathered
                .answered
                .iter()
                .filter(|part| !part.ready)
                .map(|part| part.peer.as_str()),
        )
        .collect();
    if !rebuilding.is_empty() {
        return Err(partial(format!(
            "{} still rebuilding the state of partitions gained in a rebalance",
            rebuilding.join(", ")
        )));
    }
    if !gathered.failed.is_empty() {
        tracing::debug!(
            not_answering = not_answering(),
            "answered without peers that own no partition"
        );
    }
    Ok(())
}

/// The partitions `owned` names, as `topic/n` (basin updates as `basin-updates/n`): what
/// [`check_coverage`] compares.
pub fn claimed(owned: &peer::Ownership) -> Vec<String> {
    let observation = owned
        .observation_partitions
        .iter()
        .map(|p| partition_label(&p.topic, p.partition));
    let basin_updates = owned
        .basin_update_partitions
        .iter()
        .map(|p| partition_label(BASIN_UPDATES, *p));
    observation.chain(basin_updates).collect()
}

/// Every partition of the cluster, named as [`claimed`] names them.
pub fn every_partition(cluster: &ClusterPartitions) -> Vec<String> {
    let observation = cluster
        .observation
        .iter()
        .map(|(topic, partition)| partition_label(topic, *partition));
    let basin_updates = (0..cluster.basin_updates).map(|p| partition_label(BASIN_UPDATES, p));
    observation.chain(basin_updates).collect()
}

/// How partitions of the basin-updates topic are named, whatever the topic is called.
const BASIN_UPDATES: &str = "basin-updates";

fn partition_label(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

#[cfg(test)]
mod tests {
    use tianshan_proto::peer::v1::ObservationPartition;

    use crate::peer_gather::PeerPart;

    use super::*;

    /// A sharded node of a cluster of `rainfall/0..4` and basin-updates `0..2` that owns
    /// `observation` and `basin_updates`.
    fn owning(observation: &[i32], basin_updates: &[i32]) -> Ownership {
        Ownership {
            observation_partitions: observation
                .iter()
                .map(|p| ("rainfall".to_owned(), *p))
                .collect(),
            basin_partitions: basin_updates.to_vec(),
            cluster: ClusterPartitions {
                observation: (0..4).map(|p| ("rainfall".to_owned(), p)).collect(),
                basin_updates: 2,
            },
            ..Ownership::default()
        }
    }

    fn answered(peer: &str, observation: &[i32], basin_updates: &[i32]) -> PeerPart {
        let owned = peer::Ownership {
            observation_partitions: observation
                .iter()
                .map(|p| ObservationPartition {
                    topic: "rainfall".into(),
                    partition: *p,
                    consumer_lag: None,
                })
                .collect(),
            basin_update_partitions: basin_updates.to_vec(),
            basins: Vec::new(),
        };
        PeerPart {
            peer: peer.to_owned(),
            ownership: Some(owned),
            ready: true,
        }
    }

    /// This node, ready, owning `observation` and `basin_updates`.
    fn here(observation: &[i32], basin_updates: &[i32]) -> ThisNode {
        ThisNode {
            ownership: Some(owning(observation, basin_updates)),
            ready: true,
        }
    }

    fn failed(peer: &str) -> (String, String) {
        (peer.to_owned(), "Unavailable: dns error".to_owned())
    }

    #[test]
    fn an_unsharded_node_needs_every_peer() {
        let gathered = Gathered {
            failed: vec![failed("tianshan-2:50051")],
            ..Gathered::default()
        };
        let unsharded = ThisNode {
            ownership: None,
            ready: true,
        };
        let error = answer_is_whole(&unsharded, &gathered).expect_err("a peer is missing");
        assert!(
            matches!(&error, ClusterError::PeerFailed { peer, .. } if peer == "tianshan-2:50051"),
            "{error}"
        );
        assert!(answer_is_whole(&unsharded, &Gathered::default()).is_ok());
    }

    #[test]
    fn a_sharded_answer_goes_without_peers_that_are_not_running() {
        let gathered = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2, 3], &[1])],
            // Listed up to the autoscaler's maximum, never started.
            failed: vec![failed("tianshan-2:50051"), failed("tianshan-3:50051")],
            ..Gathered::default()
        };
        assert!(answer_is_whole(&here(&[0, 1], &[0]), &gathered).is_ok());
    }

    #[test]
    fn a_sharded_answer_missing_or_doubling_a_partition_is_refused() {
        let owner_silent = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2], &[1])],
            failed: vec![failed("tianshan-2:50051")],
            ..Gathered::default()
        };
        let error = answer_is_whole(&here(&[0, 1], &[0]), &owner_silent)
            .expect_err("rainfall/3 is missing");
        let message = error.to_string();
        assert!(message.contains("owns partitions rainfall/3;"), "{message}");
        assert!(
            message.contains("tianshan-2:50051 (Unavailable"),
            "{message}"
        );
        assert_eq!(tonic::Status::from(error).code(), tonic::Code::Unavailable);

        let rebalancing = Gathered {
            answered: vec![answered("tianshan-1:50051", &[1, 2, 3], &[1])],
            ..Gathered::default()
        };
        let message = answer_is_whole(&here(&[0, 1], &[0]), &rebalancing)
            .expect_err("rainfall/1 is owned twice")
            .to_string();
        assert!(
            message.contains("rainfall/1 is owned by both this node and tianshan-1:50051"),
            "{message}"
        );
        assert!(message.contains("peers not answering: none"), "{message}");
    }
    #[test]
    fn a_sharded_answer_waits_for_parts_still_being_rebuilt() {
        let mut peer = answered("tianshan-1:50051", &[2, 3], &[1]);
        peer.ready = false;
        let gathered = Gathered {
            answered: vec![peer],
            ..Gathered::default()
        };
        let message = answer_is_whole(&here(&[0, 1], &[0]), &gathered)
            .expect_err("tianshan-1 is rebuilding")
            .to_string();
        assert!(
            message.contains("tianshan-1:50051 still rebuilding"),
            "{message}"
        );
        let mut starting = here(&[0, 1], &[0]);
        starting.ready = false;
        let all_ready = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2, 3], &[1])],
            ..Gathered::default()
        };
        let message = answer_is_whole(&starting, &all_ready)
            .expect_err("this node is rebuilding")
            .to_string();
        assert!(message.contains("this node still rebuilding"), "{message}");
    }
}
