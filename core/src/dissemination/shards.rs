//! How a sharded cluster shares the dissemination tree out among its nodes: the subtree of each
//! unit right below the region (a prefecture, or a county-level city the region governs
//! directly) is one shard, and the region's own recipients (region duty, the CAP feed) are one
//! more. A release is split into one part per shard it reaches; a node that takes a shard over
//! reads the shard's releases back and replays only the newest version of each warning, so it
//! never sends an outdated version again.

use std::collections::BTreeMap;

use crate::dissemination::tree::AdminTree;
use crate::ids::{AreaCode, RecipientId, WarningId};

/// Returns the shard of `unit`: the unit right below the region it lies in (a prefecture is its
/// own shard), or the region for the region itself and for codes not in the tree.
pub fn shard_of(tree: &AdminTree, unit: &AreaCode) -> AreaCode {
    let mut shard = unit;
    while let Some(parent) = tree.parent(shard) {
        if parent == tree.region() {
            return shard.clone();
        }
        shard = parent;
    }
    tree.region().clone()
}

/// Returns every shard of `tree`: the region, then the units right below it, by code.
pub fn every_shard(tree: &AdminTree) -> Vec<AreaCode> {
    std::iter::once(tree.region().clone())
        .chain(tree.children(tree.region()).iter().cloned())
        .collect()
}

/// Splits the recipients of a release, by the unit they are filed under, into one part per
/// shard.
pub fn split_by_shard(
    tree: &AdminTree,
    targets: &BTreeMap<AreaCode, Vec<RecipientId>>,
) -> BTreeMap<AreaCode, BTreeMap<AreaCode, Vec<RecipientId>>> {
    let mut parts: BTreeMap<AreaCode, BTreeMap<AreaCode, Vec<RecipientId>>> = BTreeMap::new();
    for (unit, recipients) in targets {
        parts
            .entry(shard_of(tree, unit))
            .or_default()
            .insert(unit.clone(), recipients.clone());
    }
    parts
}

/// One entry of a shard's log of releases, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardLogEntry<'a> {
    /// A version released (to responsible persons early, or signed to everyone).
    Release(&'a WarningId, u32),
    /// A version withdrawn (released early, then rejected).
    Withdraw(&'a WarningId, u32),
}

/// Returns the positions in `log` of the releases a node taking the shard over replays, in log
/// order: for each warning, every release of its newest released version, unless that version
/// was withdrawn afterwards. Older versions were ended by the newer one, so sending them again
/// would only mislead.
pub fn releases_to_replay(log: &[ShardLogEntry<'_>]) -> Vec<usize> {
    let mut newest: BTreeMap<&WarningId, u32> = BTreeMap::new();
    for entry in log {
        if let ShardLogEntry::Release(warning, version) = entry {
            let seen = newest.entry(warning).or_insert(*version);
            *seen = (*seen).max(*version);
        }
    }
    let withdrawn_after = |position: usize, warning: &WarningId, version: u32| {
        log[position..].iter().any(|later| {
            matches!(later, ShardLogEntry::Withdraw(w, v) if *w == warning && *v == version)
        })
    };
    log.iter()
        .enumerate()
        .filter_map(|(position, entry)| match entry {
            ShardLogEntry::Release(warning, version)
                if newest.get(warning) == Some(version)
                    && !withdrawn_after(position, warning, *version) =>
            {
                Some(position)
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(code: &str) -> AreaCode {
        AreaCode::new(code)
    }

    #[test]
    fn a_unit_belongs_to_the_shard_of_its_prefecture_and_the_region_to_its_own() {
        let tree = AdminTree::xinjiang_for_test();
        // Urumqi (650100) → Tianshan district (650102) → a township of it.
        assert_eq!(shard_of(&tree, &code("650102002")), code("650100"));
        assert_eq!(shard_of(&tree, &code("650102")), code("650100"));
        assert_eq!(shard_of(&tree, &code("650100")), code("650100"));
        assert_eq!(shard_of(&tree, &code("650000")), code("650000"));
        assert_eq!(shard_of(&tree, &code("999999")), code("650000"));
    }

    #[test]
    fn the_region_and_each_unit_of_prefecture_level_are_the_shards() {
        let tree = AdminTree::xinjiang_for_test();
        let shards = every_shard(&tree);
        // 14 prefectures and 12 county-level cities the region governs directly (the tree
        // hangs them under the region, without their grouping code 659000).
        assert_eq!(shards.len(), 27);
        assert!(shards.contains(&code("659001")));
        assert!(!shards.contains(&code("659000")));
        assert_eq!(shards[0], code("650000"));
        assert!(shards.contains(&code("650100")));
    }

    #[test]
    fn a_release_is_split_into_one_part_per_shard_it_reaches() {
        let tree = AdminTree::xinjiang_for_test();
        let recipients = |id: &str| vec![RecipientId::new(id)];
        let targets: BTreeMap<AreaCode, Vec<RecipientId>> = [
            (code("650000"), recipients("region-duty")),
            (code("650102"), recipients("county-head")),
            (code("650102002"), recipients("township-head")),
            (code("650200"), recipients("karamay-duty")),
        ]
        .into();
        let parts = split_by_shard(&tree, &targets);
        assert_eq!(
            parts.keys().cloned().collect::<Vec<_>>(),
            [code("650000"), code("650100"), code("650200")]
        );
        assert_eq!(
            parts[&code("650100")].keys().cloned().collect::<Vec<_>>(),
            [code("650102"), code("650102002")]
        );
        let total: usize = parts.values().map(BTreeMap::len).sum();
        assert_eq!(total, targets.len(), "every unit lands in exactly one part");
    }

    #[test]
    fn a_takeover_replays_only_the_newest_version_of_each_warning_unless_withdrawn() {
        let (flood, fire, slide) = (
            WarningId::new("FF-B0001-1"),
            WarningId::new("LF-chain-2"),
            WarningId::new("LS-chain-3"),
        );
        let log = [
            ShardLogEntry::Release(&flood, 1),
            ShardLogEntry::Release(&fire, 1),
            ShardLogEntry::Release(&flood, 2),
            ShardLogEntry::Release(&slide, 1),
            // Version 2 of the flood went to responsible persons early, then was signed.
            ShardLogEntry::Release(&flood, 2),
            // Version 2 of the landslide was released early and then rejected.
            ShardLogEntry::Release(&slide, 2),
            ShardLogEntry::Withdraw(&slide, 2),
        ];
        assert_eq!(releases_to_replay(&log), [1, 2, 4]);
    }

    #[test]
    fn a_version_released_again_after_its_withdrawal_is_replayed() {
        let flood = WarningId::new("FF-B0001-1");
        let log = [
            ShardLogEntry::Release(&flood, 3),
            ShardLogEntry::Withdraw(&flood, 3),
            ShardLogEntry::Release(&flood, 3),
        ];
        assert_eq!(releases_to_replay(&log), [2]);
    }
}
