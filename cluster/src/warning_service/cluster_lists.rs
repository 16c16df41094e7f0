//! The active warnings and the pending drafts of the whole sharded cluster, whichever node the
//! client called: each node holds the warnings and drafts of the threads it owns, so the node
//! called asks every peer for its list while it takes its own, and answers with the merged
//! list once the nodes that answered own every basin-updates partition (every warning
//! thread) between them and have rebuilt their state ([`crate::whole_answer`]). While a
//! rebalance moves threads, a warning may be on two nodes' lists for a moment: the newest
//! version, or one copy of a draft, is listed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use tianshan_core::signoff::DraftScope;
use tianshan_proto::v1;

use super::ThisNode;
use crate::error::ClusterError;
use crate::forwarding::Forwarder;
use crate::peer_gather::PeerAnswers;
use crate::whole_answer::{answer_is_whole, Needed};

/// Returns the last version of every active warning of the cluster, in id order.
///
/// # Errors
/// [`ClusterError::PartialCluster`] when the nodes that answered do not own every warning
/// thread once between them, or one is rebuilding; [`ClusterError::Pipeline`] when this node's
/// publisher does not answer.
pub(super) async fn active_warnings(
    forwarder: &Forwarder,
    this_node: &ThisNode,
) -> Result<Vec<v1::Warning>, ClusterError> {
    let peers = forwarder.peers().clone();
    let lists = every_nodes_list(
        forwarder,
        async { Ok(this_node.active().await?.iter().map(Into::into).collect()) },
        async move { peers.active_warnings().await },
    )
    .await?;
    Ok(newest_versions(lists))
}

/// Returns the drafts of the cluster `scope` lets the caller see, oldest first.
///
/// # Errors
/// As [`active_warnings`], with the desk in place of the publisher.
pub(super) async fn drafts(
    forwarder: &Forwarder,
    this_node: &ThisNode,
    scope: DraftScope,
) -> Result<Vec<v1::Draft>, ClusterError> {
    let peers = forwarder.peers().clone();
    let department = match scope {
        DraftScope::AllDepartments => None,
        DraftScope::Department(department) => Some(department),
    };
    let lists = every_nodes_list(forwarder, this_node.drafts(scope), async move {
        peers.drafts(department).await
    })
    .await?;
    Ok(one_of_each_draft(lists))
}

/// Returns this node's list (`own`) and the list of every peer that answered (`ask_peers`,
/// asked while this node takes its own), once they are the whole cluster's.
async fn every_nodes_list<T: Send + 'static>(
    forwarder: &Forwarder,
    own: impl Future<Output = Result<Vec<T>, ClusterError>>,
    ask_peers: impl Future<Output = PeerAnswers<Vec<T>>> + Send + 'static,
) -> Result<Vec<Vec<T>>, ClusterError> {
    let asked = tokio::spawn(ask_peers);
    let here = forwarder.part_here();
    let own = own.await?;
    let answers = asked.await.map_err(ClusterError::actor)?;
    answer_is_whole(
        &here,
        &answers.parts(),
        &answers.failed,
        Needed::BasinUpdates,
    )?;
    Ok(std::iter::once(own)
        .chain(answers.answered.into_iter().map(|(_, list)| list))
        .collect())
}

/// Merges the nodes' lists of active warnings: one per id, its newest version, in id order.
fn newest_versions(lists: Vec<Vec<v1::Warning>>) -> Vec<v1::Warning> {
    let mut newest: BTreeMap<String, v1::Warning> = BTreeMap::new();
    for warning in lists.into_iter().flatten() {
        match newest.get(&warning.id) {
            Some(known) if known.version >= warning.version => {}
            _ => {
                newest.insert(warning.id.clone(), warning);
            }
        }
    }
    newest.into_values().collect()
}

/// Merges the nodes' lists of drafts: one per warning version, the oldest submitted first
/// (then by id and version).
fn one_of_each_draft(lists: Vec<Vec<v1::Draft>>) -> Vec<v1::Draft> {
    let mut drafts: BTreeMap<(i64, String, u32), v1::Draft> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for draft in lists.into_iter().flatten() {
        let Some(warning) = &draft.warning else {
            continue;
        };
        if seen.insert((warning.id.clone(), warning.version)) {
            let key = (draft.submitted_ms, warning.id.clone(), warning.version);
            drafts.insert(key, draft);
        }
    }
    drafts.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(id: &str, version: u32) -> v1::Warning {
        v1::Warning {
            id: id.to_owned(),
            version,
            ..v1::Warning::default()
        }
    }

    fn draft(id: &str, version: u32, submitted_ms: i64) -> v1::Draft {
        v1::Draft {
            warning: Some(warning(id, version)),
            submitted_ms,
            ..v1::Draft::default()
        }
    }

    fn ids_and_versions(warnings: &[v1::Warning]) -> Vec<(&str, u32)> {
        warnings
            .iter()
            .map(|w| (w.id.as_str(), w.version))
            .collect()
    }

    #[test]
    fn each_warning_is_listed_once_at_its_newest_version() {
        let here = vec![warning("FF-B0002", 1), warning("FF-B0001", 3)];
        // During a rebalance the previous owner still lists version 2 of FF-B0001.
        let peer = vec![warning("FF-B0001", 2), warning("LF-FIRE", 1)];
        let other_peer = vec![warning("FF-B0002", 2)];
        let merged = newest_versions(vec![here, peer, other_peer]);
        assert_eq!(
            ids_and_versions(&merged),
            [("FF-B0001", 3), ("FF-B0002", 2), ("LF-FIRE", 1)]
        );
        assert!(newest_versions(vec![Vec::new(), Vec::new()]).is_empty());
    }

    #[test]
    fn each_draft_is_listed_once_oldest_first() {
        let here = vec![draft("FF-B0002", 1, 3_000), draft("FF-B0001", 2, 5_000)];
        let peer = vec![
            draft("FF-B0001", 2, 5_000),
            draft("DF-CHAIN", 1, 1_000),
            draft("FF-B0001", 1, 1_000),
        ];
        let merged = one_of_each_draft(vec![here, peer]);
        let listed: Vec<(&str, u32)> = merged
            .iter()
            .map(|d| {
                let w = d.warning.as_ref().expect("a draft has its warning");
                (w.id.as_str(), w.version)
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("DF-CHAIN", 1),
                ("FF-B0001", 1),
                ("FF-B0002", 1),
                ("FF-B0001", 2)
            ]
        );
    }
}
