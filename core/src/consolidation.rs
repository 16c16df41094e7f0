//! Multi-hazard consolidation: one current warning per (hazard, target), and for every township
//! the active hazards with the highest level, the view a township head needs at once. Chain
//! links stay on each entry, so a reader sees why a warning fired.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::{AreaCode, WarningId};
use crate::region::{AdminLevel, Region};
use crate::time::EventTime;
use crate::warning::{Hazard, Level, Status, WarningEvent};

/// One active warning as a township sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveHazard {
    /// The hazard.
    pub hazard: Hazard,
    /// The warning thread.
    pub warning: WarningId,
    /// Basin, slope or zone the warning is for.
    pub target: String,
    /// Its current level.
    pub level: Level,
    /// The warning that raised it through a chain, if any.
    pub caused_by: Option<WarningId>,
}

/// Everything active over one township.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TownshipSummary {
    /// The township's code.
    pub township: AreaCode,
    /// Its name, when the region knows it.
    pub name: Option<String>,
    /// The highest level of its active warnings.
    pub highest: Level,
    /// Its active warnings, most severe first, then by hazard and id.
    pub hazards: Vec<ActiveHazard>,
}

/// Returns the current version of every active warning thread, one per (hazard, target): the
/// newest version of each thread, dropping threads whose newest version is a cancellation. When
/// a target has two live threads of one hazard (an old one not yet seen cancelled), the newer
/// onset wins.
pub fn current_warnings<'a>(
    versions: impl IntoIterator<Item = &'a WarningEvent>,
) -> Vec<WarningEvent> {
    let mut newest: BTreeMap<&WarningId, &WarningEvent> = BTreeMap::new();
    for event in versions {
        let slot = newest.entry(&event.id).or_insert(event);
        if event.version > slot.version {
            *slot = event;
        }
    }
    let mut current: BTreeMap<(Hazard, &str), &WarningEvent> = BTreeMap::new();
    for event in newest.into_values() {
        if event.status == Status::Cancelled {
            continue;
        }
        let slot = current
            .entry((event.hazard, event.target.as_str()))
            .or_insert(event);
        if event.onset > slot.onset {
            *slot = event;
        }
    }
    current.into_values().cloned().collect()
}

/// Keeps the warnings still valid at event time `now`: a version past its `expires` that was
/// neither renewed nor cancelled (its thread moved to another node, say) is not shown as active.
pub fn valid_at(warnings: Vec<WarningEvent>, now: EventTime) -> Vec<WarningEvent> {
    warnings.into_iter().filter(|w| w.expires > now).collect()
}

/// Returns, for every township reached by an active warning, its summary, by township code.
/// Area codes of other levels (counties) are skipped; a code the region does not know is kept
/// without a name.
pub fn township_summaries(active: &[WarningEvent], region: &Region) -> Vec<TownshipSummary> {
    let mut by_township: BTreeMap<&AreaCode, Vec<ActiveHazard>> = BTreeMap::new();
    for event in active {
        for code in &event.area_codes {
            let level = region.admin_units.get(code).map(|unit| unit.level);
            if level.is_some_and(|level| level != AdminLevel::Township) {
                continue;
            }
            by_township.entry(code).or_default().push(ActiveHazard {
                hazard: event.hazard,
                warning: event.id.clone(),
                target: event.target.clone(),
                level: event.level,
                caused_by: event.caused_by.clone(),
            });
        }
    }
    by_township
        .into_iter()
        .filter_map(|(code, mut hazards)| {
            hazards.sort_by(|a, b| {
                (b.level, a.hazard, &a.warning).cmp(&(a.level, b.hazard, &b.warning))
            });
            let highest = hazards.first()?.level;
            Some(TownshipSummary {
                township: code.clone(),
                name: region.area_name(code).map(str::to_owned),
                highest,
                hazards,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::lifecycle::{action_for, LifecyclePolicy};
    use crate::warning::warning_id;

    fn region() -> Region {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
        Region::load(Path::new(dir)).expect("the committed region loads")
    }

    fn version(
        hazard: Hazard,
        target: &str,
        version: u32,
        level: Level,
        status: Status,
        areas: &[AreaCode],
    ) -> WarningEvent {
        let onset = EventTime(0);
        WarningEvent {
            id: warning_id(hazard, target, onset),
            version,
            hazard,
            level,
            action: action_for(hazard, level),
            status,
            target: target.to_owned(),
            area_codes: areas.to_vec(),
            onset,
            issued: EventTime(i64::from(version) * 300_000),
            expires: EventTime(LifecyclePolicy::default().validity_ms),
            evidence: Vec::new(),
            caused_by: None,
        }
    }

    #[test]
    fn the_newest_version_of_each_thread_counts_and_cancelled_threads_drop_out() {
        let areas: Vec<AreaCode> = Vec::new();
        let versions = [
            version(
                Hazard::FlashFlood,
                "B0001",
                1,
                Level::Blue,
                Status::Issued,
                &areas,
            ),
            version(
                Hazard::FlashFlood,
                "B0001",
                2,
                Level::Red,
                Status::Upgraded,
                &areas,
            ),
            version(
                Hazard::FlashFlood,
                "B0002",
                1,
                Level::Blue,
                Status::Issued,
                &areas,
            ),
            version(
                Hazard::FlashFlood,
                "B0002",
                2,
                Level::Blue,
                Status::Cancelled,
                &areas,
            ),
        ];
        let current = current_warnings(versions.iter().rev());
        assert_eq!(current.len(), 1);
        assert_eq!(
            (current[0].target.as_str(), current[0].level),
            ("B0001", Level::Red)
        );
    }

    #[test]
    fn a_version_past_its_expiry_is_no_longer_active() {
        let areas: Vec<AreaCode> = Vec::new();
        let warning = version(
            Hazard::FlashFlood,
            "B0001",
            1,
            Level::Red,
            Status::Issued,
            &areas,
        );
        let expires = warning.expires;
        assert_eq!(
            valid_at(vec![warning.clone()], expires.plus_ms(-1)).len(),
            1
        );
        assert!(valid_at(vec![warning], expires).is_empty());
    }

    #[test]
    fn a_township_shows_every_hazard_over_it_with_the_highest_level_first() {
        let region = region();
        let basin = region.basins.values().next().expect("a basin");
        let areas = basin.area_codes();
        let township = areas
            .iter()
            .find(|code| region.admin_units[*code].level == AdminLevel::Township)
            .expect("a basin reaches a township")
            .clone();
        let flood = version(
            Hazard::FlashFlood,
            basin.id.as_str(),
            1,
            Level::Orange,
            Status::Issued,
            &areas,
        );
        let mut debris = version(
            Hazard::DebrisFlow,
            basin.id.as_str(),
            1,
            Level::Red,
            Status::Issued,
            &areas,
        );
        debris.caused_by = Some(flood.id.clone());

        let summaries = township_summaries(&[flood.clone(), debris.clone()], &region);
        let summary = summaries
            .iter()
            .find(|s| s.township == township)
            .expect("the township is summarised");
        assert_eq!(summary.highest, Level::Red);
        assert_eq!(
            summary.hazards.iter().map(|h| h.hazard).collect::<Vec<_>>(),
            vec![Hazard::DebrisFlow, Hazard::FlashFlood]
        );
        assert_eq!(summary.hazards[0].caused_by.as_ref(), Some(&flood.id));
        assert!(summary.name.is_some());
        assert!(
            summaries
                .iter()
                .all(|s| region.admin_units[&s.township].level == AdminLevel::Township),
            "county codes are not summarised as townships"
        );
    }
}
