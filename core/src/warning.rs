//! Warning vocabulary: hazards, the four levels, actions, lifecycle statuses and the warning event.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{AreaCode, WarningId};
use crate::time::EventTime;

/// The hazard a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    /// Flash flood (山洪).
    FlashFlood,
    /// Debris flow (泥石流).
    DebrisFlow,
    /// Landslide (滑坡).
    Landslide,
    /// Lightning-caused forest or grassland fire.
    LightningFire,
    /// Snowmelt or rain-on-snow flood.
    SnowmeltFlood,
}

impl Hazard {
    /// Every hazard, in the order of the enum.
    pub const ALL: [Hazard; 5] = [
        Hazard::FlashFlood,
        Hazard::DebrisFlow,
        Hazard::Landslide,
        Hazard::LightningFire,
        Hazard::SnowmeltFlood,
    ];

    /// Parses the snake_case name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|hazard| hazard.name() == name)
    }

    /// Returns the two-letter prefix used in warning ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Hazard::FlashFlood => "FF",
            Hazard::DebrisFlow => "DF",
            Hazard::Landslide => "LS",
            Hazard::LightningFire => "LF",
            Hazard::SnowmeltFlood => "SM",
        }
    }

    /// Returns the snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Hazard::FlashFlood => "flash_flood",
            Hazard::DebrisFlow => "debris_flow",
            Hazard::Landslide => "landslide",
            Hazard::LightningFire => "lightning_fire",
            Hazard::SnowmeltFlood => "snowmelt_flood",
        }
    }
}

/// The four-level scale (hazards.md §9.1): IV blue is the least severe, I red the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// IV 蓝色 一般.
    Blue,
    /// III 黄色 较重.
    Yellow,
    /// II 橙色 严重.
    Orange,
    /// I 红色 特别严重.
    Red,
}

impl Level {
    /// All levels from least to most severe.
    pub const ALL: [Level; 4] = [Level::Blue, Level::Yellow, Level::Orange, Level::Red];

    /// Parses the colour name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.name() == name)
    }

    /// Returns the colour name.
    pub fn name(self) -> &'static str {
        match self {
            Level::Blue => "blue",
            Level::Yellow => "yellow",
            Level::Orange => "orange",
            Level::Red => "red",
        }
    }

    /// Returns the Roman numeral of the Chinese level scale.
    pub fn roman(self) -> &'static str {
        match self {
            Level::Blue => "IV",
            Level::Yellow => "III",
            Level::Orange => "II",
            Level::Red => "I",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the people in the area are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Watch the situation (blue/yellow).
    Monitor,
    /// 准备转移: prepare to evacuate.
    PrepareToEvacuate,
    /// 立即转移: evacuate immediately.
    EvacuateImmediately,
    /// 加强巡护: send forest and grassland rangers to patrol the struck area for smoke (a
    /// lightning-fire watch at orange).
    PatrolStrikeArea,
    /// 扑火力量靠前驻防: firefighting crews on standby near the zone (a lightning-fire watch at
    /// red).
    StageFirefighters,
    /// The danger has passed.
    AllClear,
}

impl Action {
    /// Returns the snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Monitor => "monitor",
            Action::PrepareToEvacuate => "prepare_to_evacuate",
            Action::EvacuateImmediately => "evacuate_immediately",
            Action::PatrolStrikeArea => "patrol_strike_area",
            Action::StageFirefighters => "stage_firefighters",
            Action::AllClear => "all_clear",
        }
    }
}

/// The lifecycle event a warning version records (hazards.md §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// First version of a warning (CAP Alert).
    Issued,
    /// Level raised (CAP Update).
    Upgraded,
    /// Level lowered after hysteresis and hold (CAP Update).
    Downgraded,
    /// Same level, validity extended (CAP Update).
    Renewed,
    /// Condition cleared (CAP Cancel).
    Cancelled,
}

impl Status {
    /// Returns the snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Issued => "issued",
            Status::Upgraded => "upgraded",
            Status::Downgraded => "downgraded",
            Status::Renewed => "renewed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One threshold comparison that supports a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What was compared, e.g. `areal_rain_3h` or `water_level`.
    pub quantity: String,
    /// The observed value.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// Fraction of expected reports present (0..=1).
    pub completeness: f64,
    /// Stations that contributed.
    pub stations: Vec<String>,
}

/// One version of a warning, as it leaves for the warnings topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningEvent {
    /// Thread id, derived from (hazard, target, onset).
    pub id: WarningId,
    /// 1 for the first issue, +1 per update.
    pub version: u32,
    /// Hazard.
    pub hazard: Hazard,
    /// Level of this version (for a cancellation: the last active level).
    pub level: Level,
    /// Requested action.
    pub action: Action,
    /// Lifecycle event.
    pub status: Status,
    /// Basin, slope or zone.
    pub target: String,
    /// Areas to reach (county and township codes).
    pub area_codes: Vec<AreaCode>,
    /// Event time the warning thread started.
    pub onset: EventTime,
    /// Event time of this version.
    pub issued: EventTime,
    /// Event time after which this version lapses unless renewed.
    pub expires: EventTime,
    /// Threshold comparisons behind this version.
    pub evidence: Vec<Evidence>,
    /// The warning that raised this one through a hazard chain (a debris-flow warning raised
    /// by the flash-flood warning of its basin), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<WarningId>,
}

/// Derives the warning id of a thread: the same (hazard, target, onset) always gives the same id.
pub fn warning_id(hazard: Hazard, target: &str, onset: EventTime) -> WarningId {
    WarningId::new(format!(
        "{}-{}-{}",
        hazard.id_prefix(),
        target,
        onset.to_compact_utc()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic() {
        let onset = EventTime::parse_rfc3339("2024-07-01T08:30:00+08:00").unwrap();
        let id = warning_id(Hazard::FlashFlood, "B0042", onset);
        assert_eq!(id.as_str(), "FF-B0042-20240701T0030Z");
        assert_eq!(id, warning_id(Hazard::FlashFlood, "B0042", onset));
    }

    #[test]
    fn names_parse_back() {
        for hazard in Hazard::ALL {
            assert_eq!(Hazard::parse(hazard.name()), Some(hazard));
        }
        for level in Level::ALL {
            assert_eq!(Level::parse(level.name()), Some(level));
        }
        assert_eq!(Hazard::parse("flood"), None);
        assert_eq!(Level::parse("Red"), None);
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(
            Level::Red > Level::Orange
                && Level::Orange > Level::Yellow
                && Level::Yellow > Level::Blue
        );
    }
}
