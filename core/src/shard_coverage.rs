//! Whether the nodes that answered a scatter-gather query hold the whole of a sharded cluster's
//! state between them: every partition owned by exactly one of them. An answer over nodes that
//! miss a partition (its owner did not answer, or it is between owners) or that both hold one
//! (a rebalance under way) would be wrong without saying so; one over every owner is whole,
//! however many listed nodes did not answer (a node that is not running owns nothing).

use std::collections::BTreeMap;
use std::fmt;

/// The partitions one node that answered says it owns, each named as `topic/n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The node, as the asker knows it.
    pub node: String,
    /// The partitions it owns.
    pub partitions: Vec<String>,
}

/// Why the nodes that answered do not hold the whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageGap {
    /// No node that answered owns these partitions.
    Unowned(Vec<String>),
    /// Two nodes that answered both own `partition`.
    OwnedTwice {
        /// The partition.
        partition: String,
        /// The node that claimed it first.
        first: String,
        /// The other node.
        second: String,
    },
}

/// How many unowned partitions a message names before it counts the rest.
const NAMED_AT_MOST: usize = 8;

impl fmt::Display for CoverageGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoverageGap::Unowned(partitions) => {
                let named = partitions[..partitions.len().min(NAMED_AT_MOST)].join(", ");
                write!(f, "no node that answered owns partitions {named}")?;
                if partitions.len() > NAMED_AT_MOST {
                    write!(f, " and {} more", partitions.len() - NAMED_AT_MOST)?;
                }
                Ok(())
            }
            CoverageGap::OwnedTwice {
                partition,
                first,
                second,
            } => write!(
                f,
                "partition {partition} is owned by both {first} and {second} (a rebalance is under way)"
            ),
        }
    }
}

/// Checks that `claims` own each of `every` partition exactly once between them.
///
/// # Errors
/// [`CoverageGap::OwnedTwice`] for the first partition two claims share, else
/// [`CoverageGap::Unowned`] listing, in the order of `every`, the partitions no claim holds.
pub fn check_coverage(every: &[String], claims: &[Claim]) -> Result<(), CoverageGap> {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for claim in claims {
        for partition in &claim.partitions {
            if let Some(first) = owners.insert(partition, &claim.node) {
                return Err(CoverageGap::OwnedTwice {
                    partition: partition.clone(),
                    first: first.to_owned(),
                    second: claim.node.clone(),
                });
            }
        }
    }
    let unowned: Vec<String> = every
        .iter()
        .filter(|partition| !owners.contains_key(partition.as_str()))
        .cloned()
        .collect();
    if unowned.is_empty() {
        Ok(())
    } else {
        Err(CoverageGap::Unowned(unowned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(node: &str, partitions: &[&str]) -> Claim {
        Claim {
            node: node.to_owned(),
            partitions: partitions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn every() -> Vec<String> {
        [
            "rainfall/0",
            "rainfall/1",
            "basin-updates/0",
            "basin-updates/1",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn owners_that_share_every_partition_once_hold_the_whole_state() {
        let claims = [
            claim("node-0", &["rainfall/0", "basin-updates/1"]),
            claim("node-1", &["rainfall/1", "basin-updates/0"]),
            claim("node-2 (running, owning nothing)", &[]),
        ];
        assert_eq!(check_coverage(&every(), &claims), Ok(()));
    }

    #[test]
    fn a_partition_no_answering_node_owns_is_named() {
        let claims = [claim("node-0", &["rainfall/0", "basin-updates/1"])];
        let gap = check_coverage(&every(), &claims).expect_err("node-1 did not answer");
        assert_eq!(
            gap,
            CoverageGap::Unowned(vec!["rainfall/1".into(), "basin-updates/0".into()])
        );
        assert_eq!(
            gap.to_string(),
            "no node that answered owns partitions rainfall/1, basin-updates/0"
        );
        let many: Vec<String> = (0..11).map(|p| format!("rainfall/{p}")).collect();
        assert!(check_coverage(&many, &[])
            .expect_err("nothing owned")
            .to_string()
            .ends_with("rainfall/7 and 3 more"));
    }

    #[test]
    fn a_partition_two_nodes_own_is_a_rebalance_under_way() {
        let claims = [
            claim("node-0", &["rainfall/0", "rainfall/1", "basin-updates/0"]),
            claim("node-1", &["rainfall/1", "basin-updates/1"]),
        ];
        assert_eq!(
            check_coverage(&every(), &claims),
            Err(CoverageGap::OwnedTwice {
                partition: "rainfall/1".into(),
                first: "node-0".into(),
                second: "node-1".into()
            })
        );
    }
}
