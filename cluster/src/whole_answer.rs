//! Whether an answer put together from this node and the peers that answered covers the whole
//! cluster: SQL over every node's partial tables, and the active warnings and pending drafts
//! any node lists. Unsharded nodes each hold a part no other node has, so every peer must
//! answer. Sharded, the nodes that answered must own every partition the answer needs once
//! between them, and each must have rebuilt its state of what it owns.

use tianshan_core::shard_coverage::{check_coverage, Claim};
use tianshan_pipelines::basin_update_source::ClusterPartitions;
use tianshan_pipelines::node_pipeline::Ownership;
use tianshan_proto::peer::v1 as peer;

use crate::error::ClusterError;
use crate::peer_gather::PeerPart;
use crate::peer_service::ownership_message;

/// The state this node's own part was taken in.
#[derive(Debug, Clone)]
pub struct PartHere {
    /// What it owned (`None` when it runs unsharded).
    pub ownership: Option<Ownership>,
    /// Whether its state of what it owns was rebuilt.
    pub ready: bool,
}

/// Which partitions' owners an answer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// Every observation and basin-updates partition (SQL: station windows and basin state).
    EveryPartition,
    /// Every basin-updates partition: the owners of the warning threads (their published
    /// warnings and their drafts).
    BasinUpdates,
}

/// Checks that this node (`here`) and the peers that `answered` hold the whole cluster's part
/// of the state `needed`; `failed` lists the peers that did not answer, with what went wrong. A
/// listed peer that is not running (a StatefulSet scaled below the pods `[cluster] peers`
/// lists) owns nothing and is not missed.
///
/// # Errors
/// [`ClusterError::PeerFailed`] naming the first peer that did not answer an unsharded node;
/// [`ClusterError::PartialCluster`] when a sharded node's answer would miss or double a
/// partition, or take a part still being rebuilt after a rebalance.
pub fn answer_is_whole(
    here: &PartHere,
    answered: &[PeerPart],
    failed: &[(String, String)],
    needed: Needed,
) -> Result<(), ClusterError> {
    let Some(owned_here) = &here.ownership else {
        return match failed.first() {
            Some((peer, detail)) => Err(ClusterError::PeerFailed {
                peer: peer.clone(),
                detail: detail.clone(),
            }),
            None => Ok(()),
        };
    };
    const THIS_NODE: &str = "this node";
    let claim_of = |owned: &peer::Ownership| match needed {
        Needed::EveryPartition => claimed(owned),
        Needed::BasinUpdates => claimed_basin_updates(owned).collect(),
    };
    let mut claims = vec![Claim {
        node: THIS_NODE.to_owned(),
        partitions: claim_of(&ownership_message(owned_here)),
    }];
    claims.extend(answered.iter().map(|part| Claim {
        node: part.peer.clone(),
        partitions: part.ownership.as_ref().map(claim_of).unwrap_or_default(),
    }));
    let not_answering = || {
        let peers: Vec<String> = failed
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
    let every = match needed {
        Needed::EveryPartition => every_partition(&owned_here.cluster),
        Needed::BasinUpdates => every_basin_update_partition(&owned_here.cluster).collect(),
    };
    check_coverage(&every, &claims).map_err(|gap| partial(gap.to_string()))?;
    let rebuilding: Vec<&str> = (!here.ready)
        .then_some(THIS_NODE)
        .into_iter()
        .chain(
            answered
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
    if !failed.is_empty() {
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
    owned
        .observation_partitions
        .iter()
        .map(|p| partition_label(&p.topic, p.partition))
        .chain(claimed_basin_updates(owned))
        .collect()
}

/// Every partition of the cluster, named as [`claimed`] names them.
pub fn every_partition(cluster: &ClusterPartitions) -> Vec<String> {
    cluster
        .observation
        .iter()
        .map(|(topic, partition)| partition_label(topic, *partition))
        .chain(every_basin_update_partition(cluster))
        .collect()
}

fn claimed_basin_updates(owned: &peer::Ownership) -> impl Iterator<Item = String> + '_ {
    owned
        .basin_update_partitions
        .iter()
        .map(|p| partition_label(BASIN_UPDATES, *p))
}

fn every_basin_update_partition(cluster: &ClusterPartitions) -> impl Iterator<Item = String> {
    (0..cluster.basin_updates).map(|p| partition_label(BASIN_UPDATES, p))
}

/// How partitions of the basin-updates topic are named, whatever the topic is called.
const BASIN_UPDATES: &str = "basin-updates";

fn partition_label(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

#[cfg(test)]
mod tests {
    use tianshan_proto::peer::v1::ObservationPartition;

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
            dissemination_shards: Vec::new(),
        };
        PeerPart {
            peer: peer.to_owned(),
            ownership: Some(owned),
            ready: true,
        }
    }

    /// This node, ready, owning `observation` and `basin_updates`.
    fn here(observation: &[i32], basin_updates: &[i32]) -> PartHere {
        PartHere {
            ownership: Some(owning(observation, basin_updates)),
            ready: true,
        }
    }

    fn failed(peer: &str) -> (String, String) {
        (peer.to_owned(), "Unavailable: dns error".to_owned())
    }

    /// What a gather brought back: the peers that answered and those that did not.
    #[derive(Default)]
    struct Gathered {
        answered: Vec<PeerPart>,
        failed: Vec<(String, String)>,
    }

    /// Whether an SQL answer over `here` and `gathered` is whole.
    fn sql_whole(here: &PartHere, gathered: &Gathered) -> Result<(), ClusterError> {
        answer_is_whole(
            here,
            &gathered.answered,
            &gathered.failed,
            Needed::EveryPartition,
        )
    }

    #[test]
    fn an_unsharded_node_needs_every_peer() {
        let gathered = Gathered {
            failed: vec![failed("tianshan-2:50051")],
            ..Gathered::default()
        };
        let unsharded = PartHere {
            ownership: None,
            ready: true,
        };
        let error = sql_whole(&unsharded, &gathered).expect_err("a peer is missing");
        assert!(
            matches!(&error, ClusterError::PeerFailed { peer, .. } if peer == "tianshan-2:50051"),
            "{error}"
        );
        assert!(sql_whole(&unsharded, &Gathered::default()).is_ok());
    }

    #[test]
    fn a_sharded_answer_goes_without_peers_that_are_not_running() {
        let gathered = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2, 3], &[1])],
            // Listed up to the autoscaler's maximum, never started.
            failed: vec![failed("tianshan-2:50051"), failed("tianshan-3:50051")],
        };
        assert!(sql_whole(&here(&[0, 1], &[0]), &gathered).is_ok());
    }

    #[test]
    fn a_sharded_answer_missing_or_doubling_a_partition_is_refused() {
        let owner_silent = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2], &[1])],
            failed: vec![failed("tianshan-2:50051")],
        };
        let error =
            sql_whole(&here(&[0, 1], &[0]), &owner_silent).expect_err("rainfall/3 is missing");
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
        let message = sql_whole(&here(&[0, 1], &[0]), &rebalancing)
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
        let message = sql_whole(&here(&[0, 1], &[0]), &gathered)
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
        let message = sql_whole(&starting, &all_ready)
            .expect_err("this node is rebuilding")
            .to_string();
        assert!(message.contains("this node still rebuilding"), "{message}");
    }

    #[test]
    fn a_list_of_warnings_needs_only_the_owners_of_every_thread() {
        // rainfall/3's owner is silent, but this node and tianshan-1 hold both basin-updates
        // partitions: every warning thread's owner answered.
        let observation_owner_silent = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2], &[1])],
            failed: vec![failed("tianshan-2:50051")],
        };
        let here = here(&[0, 1], &[0]);
        assert!(sql_whole(&here, &observation_owner_silent).is_err());
        let lists = |gathered: &Gathered| {
            answer_is_whole(
                &here,
                &gathered.answered,
                &gathered.failed,
                Needed::BasinUpdates,
            )
        };
        assert!(lists(&observation_owner_silent).is_ok());

        let thread_owner_silent = Gathered {
            answered: vec![answered("tianshan-1:50051", &[2, 3], &[])],
            failed: vec![failed("tianshan-2:50051")],
        };
        let message = lists(&thread_owner_silent)
            .expect_err("basin-updates/1 is missing")
            .to_string();
        assert!(message.contains("basin-updates/1"), "{message}");
        assert!(!message.contains("rainfall"), "{message}");
        assert!(
            message.contains("tianshan-2:50051 (Unavailable"),
            "{message}"
        );
    }
}
