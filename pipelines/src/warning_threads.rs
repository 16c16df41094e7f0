//! Which warning thread a warning belongs to, and where its owner is decided. In a sharded
//! cluster a warning of a basin (flash flood, debris flow, snowmelt flood) or of a chain
//! (lightning fire, landslide) belongs to the node whose basin-updates partitions hold that
//! basin's or chain's record key: that node's models derive its versions, its desk holds its
//! drafts and its tree holds its acknowledgement books. A warning of neither (issued by hand
//! for a place that is no basin, another agency's) belongs to the node that has it.
//!
//! The thread is read from the event ([`thread_key`], for the courier) or from the id alone
//! ([`thread_key_of_id`], for a request naming only the id): ids of a thread are derived as
//! `{hazard prefix}-{target}-{onset}` (`tianshan_core::warning::warning_id`), the onset written
//! without `-`, so the two agree on every derived id.

use std::collections::{BTreeMap, BTreeSet};

use tianshan_core::ids::WarningId;
use tianshan_core::region::Region;
use tianshan_core::warning::{Hazard, WarningEvent};

use crate::basin_updates::{BasinUpdatesWriter, ChainKey};

/// The basin-updates record key of `hazard`'s thread for `target`: the basin for the hazards
/// of a basin (when `target` is one of `basins`), the chain otherwise.
fn key_of(hazard: Hazard, target: &str, basins: &BTreeSet<String>) -> Option<String> {
    match hazard {
        Hazard::FlashFlood | Hazard::DebrisFlow | Hazard::SnowmeltFlood => {
            basins.contains(target).then(|| target.to_owned())
        }
        Hazard::LightningFire => Some(ChainKey::Fire.record_key().to_owned()),
        Hazard::Landslide => Some(ChainKey::Landslide.record_key().to_owned()),
    }
}

/// Returns the basin-updates key of the thread a warning belongs to: its basin for flash
/// floods, debris flows and snowmelt floods, its chain for lightning fires and landslides;
/// none for a warning whose id was not derived from such a thread.
pub fn thread_key(event: &WarningEvent, basins: &BTreeSet<String>) -> Option<String> {
    let derived =
        event
            .id
            .as_str()
            .starts_with(&format!("{}-{}-", event.hazard.id_prefix(), event.target));
    if !derived {
        return None;
    }
    key_of(event.hazard, &event.target, basins)
}

/// Returns the basin-updates key of the thread of the warning with id `id`, read from the id
/// alone; none when the id is not `{hazard prefix}-{target}-{onset}` or names no thread.
pub fn thread_key_of_id(id: &WarningId, basins: &BTreeSet<String>) -> Option<String> {
    let (prefix, rest) = id.as_str().split_once('-')?;
    let hazard = Hazard::ALL
        .into_iter()
        .find(|hazard| hazard.id_prefix() == prefix)?;
    // The onset has no '-'; a target issued by hand may.
    let (target, onset) = rest.rsplit_once('-')?;
    if target.is_empty() || onset.is_empty() {
        return None;
    }
    key_of(hazard, target, basins)
}

/// The basin-updates partition of every thread of a region: the partition whose owner owns
/// the thread's warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPartitions {
    basins: BTreeSet<String>,
    /// By record key: each basin's id and each chain's key.
    partitions: BTreeMap<String, i32>,
}

impl ThreadPartitions {
    /// The partitions `writer` sends the threads of `region` to.
    pub fn new(writer: &BasinUpdatesWriter, region: &Region) -> Self {
        Self::from_partition_of(region.basins.keys().map(ToString::to_string), |key| {
            writer.partition_of(key)
        })
    }

    /// The partitions `partition_of` gives the threads of `basins` and of every chain.
    pub fn from_partition_of(
        basins: impl IntoIterator<Item = String>,
        partition_of: impl Fn(&str) -> i32,
    ) -> Self {
        let basins: BTreeSet<String> = basins.into_iter().collect();
        let partitions = basins
            .iter()
            .map(String::as_str)
            .chain([ChainKey::Fire, ChainKey::Landslide].map(ChainKey::record_key))
            .map(|key| (key.to_owned(), partition_of(key)))
            .collect();
        Self { basins, partitions }
    }

    /// Returns the partition of the thread of the warning with id `id`; none for a warning of
    /// no thread (it belongs to the node that has it).
    pub fn of_warning(&self, id: &WarningId) -> Option<i32> {
        let key = thread_key_of_id(id, &self.basins)?;
        self.partitions.get(&key).copied()
    }

    /// Returns the partition of each of the region's basins, by basin id.
    pub fn basins(&self) -> impl Iterator<Item = (&str, i32)> {
        self.basins
            .iter()
            .filter_map(|basin| Some((basin.as_str(), *self.partitions.get(basin)?)))
    }
}

#[cfg(test)]
mod tests {
    use tianshan_core::ids::AreaCode;
    use tianshan_core::lifecycle::action_for;
    use tianshan_core::time::EventTime;
    use tianshan_core::warning::{warning_id, Level, Status};

    use super::*;

    fn basins() -> BTreeSet<String> {
        ["B0001", "B0042"].map(str::to_owned).into()
    }

    fn event(hazard: Hazard, target: &str, id: WarningId) -> WarningEvent {
        let onset = EventTime(1_719_792_000_000);
        WarningEvent {
            id,
            version: 1,
            hazard,
            level: Level::Orange,
            action: action_for(hazard, Level::Orange),
            status: Status::Issued,
            target: target.to_owned(),
            area_codes: vec![AreaCode::new("650102")],
            onset,
            issued: onset,
            expires: onset.plus_ms(3_600_000),
            evidence: Vec::new(),
            caused_by: None,
        }
    }

    #[test]
    fn the_id_names_the_same_thread_as_the_event() {
        let onset = EventTime(1_719_792_000_000);
        let targets = [
            "B0042",
            "B9999",
            "slope-7",
            "zone_3",
            "place-with-many-dashes",
        ];
        for hazard in Hazard::ALL {
            for target in targets {
                let derived = event(hazard, target, warning_id(hazard, target, onset));
                assert_eq!(
                    thread_key_of_id(&derived.id, &basins()),
                    thread_key(&derived, &basins()),
                    "{}",
                    derived.id
                );
            }
        }
    }

    #[test]
    fn basins_and_chains_have_threads_other_ids_none() {
        let key = |id: &str| thread_key_of_id(&WarningId::new(id), &basins());
        assert_eq!(key("FF-B0042-20240701T0000Z").as_deref(), Some("B0042"));
        assert_eq!(key("DF-B0001-20240701T0000Z").as_deref(), Some("B0001"));
        assert_eq!(key("SM-B0042-20240701T0000Z").as_deref(), Some("B0042"));
        assert_eq!(
            key("LF-zone-3-20240701T0000Z").as_deref(),
            Some("chain:fire")
        );
        assert_eq!(
            key("LS-S12-20240701T0000Z").as_deref(),
            Some("chain:landslide")
        );
        // A flood of a place that is no basin (issued by hand), another agency's alert, junk.
        assert_eq!(key("FF-Urumqi-south-20240701T0000Z"), None);
        assert_eq!(key("CAP-cma-2024-0001"), None);
        assert_eq!(key("FF-B0042"), None);
        assert_eq!(key("FF--20240701T0000Z"), None);
        assert_eq!(key("FF-B0042-"), None);
        assert_eq!(key(""), None);
    }

    #[test]
    fn a_thread_is_decided_by_the_partition_of_its_key() {
        let partitions = ThreadPartitions::from_partition_of(basins(), |key| match key {
            "B0001" => 0,
            "B0042" => 5,
            "chain:fire" => 7,
            _ => 11,
        });
        let of = |id: &str| partitions.of_warning(&WarningId::new(id));
        assert_eq!(of("FF-B0042-20240701T0000Z"), Some(5));
        assert_eq!(of("DF-B0001-20240701T0000Z"), Some(0));
        assert_eq!(of("LF-zone-3-20240701T0000Z"), Some(7));
        assert_eq!(of("LS-S12-20240701T0000Z"), Some(11));
        assert_eq!(of("FF-B7777-20240701T0000Z"), None);
        assert_eq!(
            partitions.basins().collect::<Vec<_>>(),
            vec![("B0001", 0), ("B0042", 5)]
        );
    }
}
