//! Flash-flood assessment of one basin per evaluation tick (hazards.md §2.1): basin areal rainfall
//! per duration against the critical rainfall of the current soil state, plus water level against
//! stage thresholds, giving a raw level (face-value thresholds) and a held level (thresholds
//! lowered by the deadband) for the warning lifecycle.
//!
//! Levels (hazards.md §9.1 mapping [U]): red = immediate 立即转移, orange = prepare 准备转移,
//! yellow and blue = watch levels at a fraction of the prepare threshold.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::areal::{is_usable, weighted_areal};
use crate::basin_snow::BasinSnow;
use crate::ids::{BasinId, StationId};
use crate::region::{Basin, RainThreshold, SnowpackSite, SoilState, StageThreshold};
use crate::snowmelt::SnowmeltConfig;
use crate::station_windows::{RainSummary, StageSummary, StationSummary};
use crate::time::EventTime;
use crate::warning::{Evidence, Level};

/// Flash-flood assessment policy (`[flash_flood]` and `[lifecycle]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FlashFloodPolicy {
    /// Blue is reached when areal rain reaches this fraction of the prepare threshold.
    /// Default 0.6 [U] (hazards.md §9.1).
    pub watch_ratio_blue: f64,
    /// Yellow is reached when areal rain reaches this fraction of the prepare threshold.
    /// Default 0.8 [U] (hazards.md §9.1).
    pub watch_ratio_yellow: f64,
    /// The held level uses every threshold × (1 − deadband-frac). Default 0.10:
    /// `[lifecycle] deadband_frac` [U] (hazards.md §9.2).
    pub deadband_frac: f64,
    /// Gauge windows less complete than this are dropped from the areal value. Default 0.5 [U]
    /// (hazards.md §2.4 renormalisation policy).
    pub min_completeness: f64,
    /// Pa/Wm below the first bound is dry, below the second normal, else wet. Default
    /// [0.35, 0.65]: midpoints of `soil_state_pa_over_wm` [0.2, 0.5, 0.8] [U] (hazards.md §2.1).
    pub soil_state_bounds: [f64; 2],
    /// Every critical rainfall (prepare and immediate, so the watch levels too) is multiplied by
    /// this: below 1 warns on less rain. For threshold research and `tianshan backtest --sweep`;
    /// stage thresholds are not scaled. Default 1.0.
    pub rain_threshold_factor: f64,
}

impl Default for FlashFloodPolicy {
    fn default() -> Self {
        Self {
            watch_ratio_blue: 0.6,
            watch_ratio_yellow: 0.8,
            deadband_frac: 0.10,
            min_completeness: 0.5,
            soil_state_bounds: [0.35, 0.65],
            rain_threshold_factor: 1.0,
        }
    }
}

impl FlashFloodPolicy {
    /// Checks that the fractions are in range and ordered.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.watch_ratio_blue > 0.0 && self.watch_ratio_blue <= self.watch_ratio_yellow) {
            return Err(format!(
                "watch-ratio-blue must be positive and at most watch-ratio-yellow ({}), got {}",
                self.watch_ratio_yellow, self.watch_ratio_blue
            ));
        }
        if !(0.0..=1.0).contains(&self.watch_ratio_yellow) {
            return Err(format!(
                "watch-ratio-yellow must be at most 1, got {}",
                self.watch_ratio_yellow
            ));
        }
        if !(0.0..1.0).contains(&self.deadband_frac) {
            return Err(format!(
                "deadband-frac must be in [0, 1), got {}",
                self.deadband_frac
            ));
        }
        if !(0.0..=1.0).contains(&self.min_completeness) {
            return Err(format!(
                "min-completeness must be in [0, 1], got {}",
                self.min_completeness
            ));
        }
        if !(self.rain_threshold_factor.is_finite() && self.rain_threshold_factor > 0.0) {
            return Err(format!(
                "rain-threshold-factor must be positive, got {}",
                self.rain_threshold_factor
            ));
        }
        let [dry_below, normal_below] = self.soil_state_bounds;
        if !(0.0 <= dry_below && dry_below <= normal_below && normal_below <= 1.0) {
            return Err(format!(
                "soil-state-bounds must be ordered within [0, 1], got [{dry_below}, {normal_below}]"
            ));
        }
        Ok(())
    }

    /// Returns the factor applied to thresholds for the held level: 1 − deadband.
    pub fn held_scale(&self) -> f64 {
        1.0 - self.deadband_frac
    }
}

/// Classifies the antecedent soil state from Pa and the basin tension-water capacity Wm, with Pa
/// capped at Wm (hazards.md §3). A basin without a positive Wm counts as wet.
pub fn soil_state(pa_mm: f64, wm_mm: f64, policy: &FlashFloodPolicy) -> SoilState {
    let saturation = if wm_mm > 0.0 {
        pa_mm.clamp(0.0, wm_mm) / wm_mm
    } else {
        1.0
    };
    let [dry_below, normal_below] = policy.soil_state_bounds;
    if saturation < dry_below {
        SoilState::Dry
    } else if saturation < normal_below {
        SoilState::Normal
    } else {
        SoilState::Wet
    }
}

/// One rung of a rainfall level ladder: rain over `duration_h` hours reaching `mm` sets `level`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RainStep {
    /// Accumulation duration in hours.
    pub duration_h: u32,
    /// Level set when the threshold is met.
    pub level: Level,
    /// Threshold in millimetres.
    pub mm: f64,
}

/// Returns the highest level of `ladder` met by any duration's value, each threshold multiplied
/// by `scale`: any one duration meeting its value sets the level (hazards.md §2.2, TV2.2 rule).
pub fn ladder_level(
    value_mm_by_duration: &[(u32, f64)],
    ladder: &[RainStep],
    scale: f64,
) -> Option<Level> {
    ladder
        .iter()
        .filter(|step| {
            value_mm_by_duration
                .iter()
                .any(|&(duration_h, mm)| duration_h == step.duration_h && mm >= step.mm * scale)
        })
        .map(|step| step.level)
        .max()
}

/// Returns the four-level ladder of prepare/immediate thresholds: blue and yellow at the watch
/// ratios of prepare, orange at prepare, red at immediate; each × the rain-threshold factor.
pub fn rain_ladder(thresholds: &[RainThreshold], policy: &FlashFloodPolicy) -> Vec<RainStep> {
    thresholds
        .iter()
        .flat_map(|threshold| {
            let step = |level, mm: f64| RainStep {
                duration_h: threshold.duration_h,
                level,
                mm: mm * policy.rain_threshold_factor,
            };
            [
                step(Level::Blue, threshold.prepare_mm * policy.watch_ratio_blue),
                step(
                    Level::Yellow,
                    threshold.prepare_mm * policy.watch_ratio_yellow,
                ),
                step(Level::Orange, threshold.prepare_mm),
                step(Level::Red, threshold.immediate_mm),
            ]
        })
        .collect()
}

/// Returns the level that `(duration_h, mm)` rainfall values reach against prepare/immediate
/// thresholds, each multiplied by `scale` (1 for raising, 1 − deadband for the held level).
pub fn rain_level(
    value_mm_by_duration: &[(u32, f64)],
    thresholds: &[RainThreshold],
    policy: &FlashFloodPolicy,
    scale: f64,
) -> Option<Level> {
    ladder_level(
        value_mm_by_duration,
        &rain_ladder(thresholds, policy),
        scale,
    )
}

/// Returns the level a stage reaches: prepare stage → orange, immediate stage → red.
///
/// `scale` applies to the height above the base stage, not to the stage itself, since stages are
/// measured from an arbitrary datum: the scaled threshold is `base + (threshold − base) × scale`.
pub fn stage_level(stage_m: f64, threshold: &StageThreshold, scale: f64) -> Option<Level> {
    let scaled = |stage: f64| threshold.base_stage_m + (stage - threshold.base_stage_m) * scale;
    if stage_m >= scaled(threshold.immediate_stage_m) {
        Some(Level::Red)
    } else if stage_m >= scaled(threshold.prepare_stage_m) {
        Some(Level::Orange)
    } else {
        None
    }
}

/// The flash-flood assessment of one basin at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The basin assessed.
    pub basin: BasinId,
    /// The evaluation tick.
    pub tick: EventTime,
    /// Level reached with thresholds at face value.
    pub raw_level: Option<Level>,
    /// Level reached with thresholds × (1 − deadband): the level the data still sustains.
    pub held_level: Option<Level>,
    /// Antecedent soil state used to pick the rain thresholds.
    pub soil_state: SoilState,
    /// Basin antecedent precipitation index Pa in mm (weighted areal of the gauges' Pa).
    pub antecedent_mm: f64,
    /// One entry per rain duration (`areal_rain_1h`, …), followed in a basin with a snowpack by
    /// the pack's melt over the same duration (`snowmelt_extra_1h`, …), and one per stage station
    /// (`water_level`). With a snowpack the rain level compares areal rain plus melt with the
    /// threshold both entries carry.
    pub evidence: Vec<Evidence>,
}

/// Collects station summaries for one basin and assesses it per tick.
#[derive(Debug, Clone)]
pub struct BasinAssessor {
    basin: Basin,
    policy: FlashFloodPolicy,
    rain: BTreeMap<StationId, RainSummary>,
    stage: BTreeMap<StationId, StageSummary>,
    snow: Option<BasinSnow>,
}

impl BasinAssessor {
    /// Creates an assessor for `basin` with no summaries yet.
    pub fn new(basin: &Basin, policy: FlashFloodPolicy) -> Self {
        Self {
            basin: basin.clone(),
            policy,
            rain: BTreeMap::new(),
            stage: BTreeMap::new(),
            snow: None,
        }
    }

    /// Gives the basin the snowpack of `site`: from then on the assessor also takes the weather
    /// summaries of the pack's snow station, waits for them in [`BasinAssessor::ready`], steps
    /// the pack at each assessment and adds its melt to the rain of every duration.
    ///
    /// # Errors
    /// Returns a message when `cfg` is invalid.
    pub fn with_snowpack(
        mut self,
        site: &SnowpackSite,
        cfg: &SnowmeltConfig,
    ) -> Result<Self, String> {
        cfg.validate()?;
        let longest_h = self
            .basin
            .rain_thresholds
            .values()
            .flatten()
            .map(|threshold| threshold.duration_h)
            .max()
            .unwrap_or(0);
        self.snow = Some(BasinSnow::try_new(site, cfg, longest_h)?);
        Ok(self)
    }

    /// Returns the basin's snowpack, if it has one.
    pub fn snow(&self) -> Option<&BasinSnow> {
        self.snow.as_ref()
    }

    /// Returns the basin assessed.
    pub fn basin(&self) -> &Basin {
        &self.basin
    }

    /// Keeps `summary` as the latest of its station when the station is a member of the basin
    /// (a gauge for rain, a stage station for water level, the snow station of its snowpack for
    /// weather) and it is not older than the one held. Any summary may be given.
    pub fn update(&mut self, summary: &StationSummary) {
        match summary {
            StationSummary::Weather(weather) => {
                if let Some(snow) = &mut self.snow {
                    snow.update(weather);
                }
            }
            StationSummary::Rain(rain) if self.is_gauge(&rain.station) => {
                keep_latest(&mut self.rain, &rain.station, rain, |rain| rain.tick);
            }
            StationSummary::WaterLevel(stage) if self.is_stage_station(&stage.station) => {
                keep_latest(&mut self.stage, &stage.station, stage, |stage| stage.tick);
            }
            _ => {}
        }
    }

    /// Returns true when every member station (gauges, stage stations and the snow station of a
    /// snowpack) has a summary for `tick` or later.
    pub fn ready(&self, tick: EventTime) -> bool {
        let gauges_ready = self
            .basin
            .gauges
            .iter()
            .all(|(station, _)| self.fresh_rain(station, tick).is_some());
        let stages_ready = self
            .basin
            .stage_thresholds
            .iter()
            .all(|threshold| self.fresh_stage(&threshold.station, tick).is_some());
        let snow_ready = self.snow.as_ref().is_none_or(|snow| snow.ready(tick));
        gauges_ready && stages_ready && snow_ready
    }

    /// Assesses the basin at `tick` from each member's latest summary. Summaries older than
    /// `tick` count as missing, so their gauges are dropped and the weights renormalised.
    ///
    /// Pa is the weighted areal of the gauges' antecedent index (0 when no gauge is fresh); the
    /// soil state it gives picks the rain thresholds. Rainfall is assessed for each duration of
    /// those thresholds from the gauges' windows of the same length.
    ///
    /// A snowpack is first stepped to `tick` (once per tick; see [`BasinSnow::advance`]), and its
    /// melt over each duration is added to that duration's areal rain.
    pub fn assess(&mut self, tick: EventTime) -> Assessment {
        if self.snow.is_some() {
            let windows = self.areal_windows(tick);
            if let Some(snow) = &mut self.snow {
                snow.advance(tick, &windows);
            }
        }
        let held_scale = self.policy.held_scale();
        let gauges: Vec<(&StationId, f64, Option<&RainSummary>)> = self
            .basin
            .gauges
            .iter()
            .map(|(station, weight)| (station, *weight, self.fresh_rain(station, tick)))
            .collect();

        let antecedent: Vec<(f64, Option<(f64, f64)>)> = gauges
            .iter()
            .map(|(_, weight, summary)| (*weight, summary.map(|rain| (rain.antecedent_mm, 1.0))))
            .collect();
        let antecedent_mm = weighted_areal(&antecedent, 0.0).map_or(0.0, |areal| areal.mm);
        let soil = soil_state(antecedent_mm, self.basin.wm_mm, &self.policy);
        let thresholds = self
            .basin
            .rain_thresholds
            .get(&soil)
            .map_or(&[][..], Vec::as_slice);

        let ladder = rain_ladder(thresholds, &self.policy);
        let mut values = Vec::with_capacity(thresholds.len());
        let mut evidence = Vec::with_capacity(thresholds.len() + self.basin.stage_thresholds.len());
        for threshold in thresholds {
            let duration_min = threshold.duration_h * 60;
            let readings: Vec<(f64, Option<(f64, f64)>)> = gauges
                .iter()
                .map(|(_, weight, summary)| {
                    (*weight, summary.and_then(|rain| window(rain, duration_min)))
                })
                .collect();
            let Some(areal) = weighted_areal(&readings, self.policy.min_completeness) else {
                continue;
            };
            let melt_mm = self
                .snow
                .as_ref()
                .map(|snow| snow.extra_mm(tick, threshold.duration_h));
            let effective_mm = melt_mm.map_or(areal.mm, |melt_mm| areal.mm + melt_mm);
            values.push((threshold.duration_h, effective_mm));
            // The threshold of the level this duration reaches, or the prepare threshold.
            let reached = ladder_level(&[(threshold.duration_h, effective_mm)], &ladder, 1.0);
            let compared = ladder
                .iter()
                .find(|step| step.duration_h == threshold.duration_h && Some(step.level) == reached)
                .map_or(threshold.prepare_mm, |step| step.mm);
            let stations = gauges
                .iter()
                .zip(&readings)
                .filter(|(_, (_, reading))| {
                    reading.is_some_and(|(_, completeness)| {
                        is_usable(completeness, self.policy.min_completeness)
                    })
                })
                .map(|((station, _, _), _)| station.to_string())
                .collect();
            evidence.push(Evidence {
                quantity: format!("areal_rain_{}h", threshold.duration_h),
                value: areal.mm,
                threshold: compared,
                completeness: areal.completeness,
                stations,
            });
            if let (Some(melt_mm), Some(snow)) = (melt_mm, &self.snow) {
                evidence.push(Evidence {
                    quantity: format!("snowmelt_extra_{}h", threshold.duration_h),
                    value: melt_mm,
                    threshold: compared,
                    completeness: 1.0,
                    stations: vec![snow.station().to_string()],
                });
            }
        }
        let mut raw_level = ladder_level(&values, &ladder, 1.0);
        let mut held_level = ladder_level(&values, &ladder, held_scale);

        for threshold in &self.basin.stage_thresholds {
            let Some(stage_m) = self
                .fresh_stage(&threshold.station, tick)
                .and_then(|stage| stage.latest_m)
            else {
                continue;
            };
            let raw = stage_level(stage_m, threshold, 1.0);
            raw_level = raw_level.max(raw);
            held_level = held_level.max(stage_level(stage_m, threshold, held_scale));
            evidence.push(Evidence {
                quantity: "water_level".to_owned(),
                value: stage_m,
                threshold: if raw == Some(Level::Red) {
                    threshold.immediate_stage_m
                } else {
                    threshold.prepare_stage_m
                },
                completeness: 1.0,
                stations: vec![threshold.station.to_string()],
            });
        }

        Assessment {
            basin: self.basin.id.clone(),
            tick,
            raw_level,
            held_level,
            soil_state: soil,
            antecedent_mm,
            evidence,
        }
    }

    fn is_gauge(&self, station: &StationId) -> bool {
        self.basin.gauges.iter().any(|(gauge, _)| gauge == station)
    }

    fn is_stage_station(&self, station: &StationId) -> bool {
        self.basin
            .stage_thresholds
            .iter()
            .any(|threshold| &threshold.station == station)
    }

    /// Returns the basin's `(duration min, areal mm)` rain windows at `tick`, ascending, over the
    /// windows its fresh gauges report.
    fn areal_windows(&self, tick: EventTime) -> Vec<(u32, f64)> {
        let gauges: Vec<(f64, Option<&RainSummary>)> = self
            .basin
            .gauges
            .iter()
            .map(|(station, weight)| (*weight, self.fresh_rain(station, tick)))
            .collect();
        let durations: BTreeSet<u32> = gauges
            .iter()
            .filter_map(|(_, summary)| *summary)
            .flat_map(|rain| rain.windows.iter().map(|window| window.duration_min))
            .collect();
        durations
            .into_iter()
            .filter_map(|duration_min| {
                let readings: Vec<(f64, Option<(f64, f64)>)> = gauges
                    .iter()
                    .map(|(weight, summary)| {
                        (*weight, summary.and_then(|rain| window(rain, duration_min)))
                    })
                    .collect();
                weighted_areal(&readings, self.policy.min_completeness)
                    .map(|areal| (duration_min, areal.mm))
            })
            .collect()
    }

    /// Returns the gauge's rain summary when it is for `tick` or later.
    fn fresh_rain(&self, station: &StationId, tick: EventTime) -> Option<&RainSummary> {
        self.rain.get(station).filter(|rain| rain.tick >= tick)
    }

    /// Returns the stage station's summary when it is for `tick` or later.
    fn fresh_stage(&self, station: &StationId, tick: EventTime) -> Option<&StageSummary> {
        self.stage.get(station).filter(|stage| stage.tick >= tick)
    }
}

/// Stores `summary` under `station` unless the one held is for a later tick.
fn keep_latest<T: Clone>(
    held: &mut BTreeMap<StationId, T>,
    station: &StationId,
    summary: &T,
    tick_of: impl Fn(&T) -> EventTime,
) {
    if held
        .get(station)
        .is_some_and(|current| tick_of(current) > tick_of(summary))
    {
        return;
    }
    held.insert(station.clone(), summary.clone());
}

/// Returns a gauge's `(mm, completeness)` for the window of `duration_min` minutes, if it has one.
fn window(rain: &RainSummary, duration_min: u32) -> Option<(f64, f64)> {
    rain.windows
        .iter()
        .find(|window| window.duration_min == duration_min)
        .map(|window| (window.mm, window.completeness))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::AreaCode;
    use crate::snowmelt::MountainRange;
    use crate::station_windows::{WeatherSummary, WindowValue};
    use crate::time::MINUTE_MS;

    fn threshold(duration_h: u32, prepare_mm: f64, immediate_mm: f64) -> RainThreshold {
        RainThreshold {
            duration_h,
            prepare_mm,
            immediate_mm,
        }
    }

    /// TV2.1 (hazards.md §2.2, Li Qing et al. 2017 Table 1, Shuanghe Group 1): the single-level
    /// indicator is the prepare threshold; the table has no immediate value.
    fn shuanghe(state: SoilState) -> Vec<RainThreshold> {
        let [h1, h3, h6] = match state {
            SoilState::Dry => [40.0, 65.0, 95.0],
            SoilState::Normal => [35.0, 60.0, 90.0],
            SoilState::Wet => [30.0, 50.0, 80.0],
        };
        vec![
            threshold(1, h1, f64::INFINITY),
            threshold(3, h3, f64::INFINITY),
            threshold(6, h6, f64::INFINITY),
        ]
    }

    #[test]
    fn tv2_1_shuanghe_indicators() {
        let policy = FlashFloodPolicy::default();
        // Soil normal, S_3h 62 ≥ 60 → warn.
        assert_eq!(
            rain_level(&[(3, 62.0)], &shuanghe(SoilState::Normal), &policy, 1.0),
            Some(Level::Orange)
        );
        // Soil wet, S_1h 30.0 ≥ 30 → warn.
        assert_eq!(
            rain_level(&[(1, 30.0)], &shuanghe(SoilState::Wet), &policy, 1.0),
            Some(Level::Orange)
        );
        // Soil dry, S_1h 36 < 40 → no warning; 36 ≥ 0.8 × 40 only reaches the yellow watch.
        assert_eq!(
            rain_level(&[(1, 36.0)], &shuanghe(SoilState::Dry), &policy, 1.0),
            Some(Level::Yellow)
        );
        assert_eq!(
            rain_level(&[(1, 20.0)], &shuanghe(SoilState::Dry), &policy, 1.0),
            None
        );
    }

    /// TV2.2 (hazards.md §2.2, Jianghua County four-colour table): any one duration meeting its
    /// value sets the level; the highest wins.
    #[test]
    fn tv2_2_jianghua_four_colour_table() {
        let rows = [
            (Level::Blue, [35.0, 55.0, 70.0, 100.0]),
            (Level::Yellow, [45.0, 75.0, 95.0, 130.0]),
            (Level::Orange, [60.0, 100.0, 120.0, 160.0]),
            (Level::Red, [80.0, 120.0, 150.0, 200.0]),
        ];
        let ladder: Vec<RainStep> = rows
            .iter()
            .flat_map(|&(level, row)| {
                [1, 3, 6, 24]
                    .into_iter()
                    .zip(row)
                    .map(move |(duration_h, mm)| RainStep {
                        duration_h,
                        level,
                        mm,
                    })
            })
            .collect();
        assert_eq!(
            ladder_level(&[(1, 50.0)], &ladder, 1.0),
            Some(Level::Yellow)
        );
        assert_eq!(ladder_level(&[(3, 70.0)], &ladder, 1.0), Some(Level::Blue));
        assert_eq!(ladder_level(&[(6, 80.0)], &ladder, 1.0), Some(Level::Blue));
        assert_eq!(
            ladder_level(&[(1, 50.0), (3, 70.0), (6, 80.0)], &ladder, 1.0),
            Some(Level::Yellow)
        );
        assert_eq!(ladder_level(&[(1, 10.0), (24, 99.0)], &ladder, 1.0), None);
        assert_eq!(ladder_level(&[(24, 201.0)], &ladder, 1.0), Some(Level::Red));
    }

    #[test]
    fn rain_level_maps_prepare_and_immediate_to_colours() {
        let policy = FlashFloodPolicy::default();
        let thresholds = [threshold(1, 30.0, 50.0), threshold(3, 60.0, 90.0)];
        let level = |values: &[(u32, f64)], scale| rain_level(values, &thresholds, &policy, scale);
        assert_eq!(level(&[(1, 17.9), (3, 35.9)], 1.0), None);
        assert_eq!(level(&[(1, 18.0)], 1.0), Some(Level::Blue));
        assert_eq!(level(&[(3, 48.0)], 1.0), Some(Level::Yellow));
        assert_eq!(level(&[(1, 30.0)], 1.0), Some(Level::Orange));
        assert_eq!(level(&[(1, 10.0), (3, 90.0)], 1.0), Some(Level::Red));
        // Held level: 55 mm over 3 h is yellow at face value but still sustains orange (≥ 54).
        assert_eq!(level(&[(3, 55.0)], 1.0), Some(Level::Yellow));
        assert_eq!(
            level(&[(3, 55.0)], policy.held_scale()),
            Some(Level::Orange)
        );
        // A duration without a threshold is ignored.
        assert_eq!(level(&[(24, 500.0)], 1.0), None);
    }

    #[test]
    fn stage_level_scales_the_height_above_base() {
        let threshold = StageThreshold {
            station: StationId::new("W1"),
            base_stage_m: 100.0,
            prepare_stage_m: 102.0,
            immediate_stage_m: 103.0,
        };
        assert_eq!(stage_level(101.9, &threshold, 1.0), None);
        assert_eq!(stage_level(102.5, &threshold, 1.0), Some(Level::Orange));
        assert_eq!(stage_level(103.0, &threshold, 1.0), Some(Level::Red));
        // Held: prepare 100 + 2 × 0.9 = 101.8, immediate 100 + 3 × 0.9 = 102.7.
        assert_eq!(stage_level(101.9, &threshold, 0.9), Some(Level::Orange));
        assert_eq!(stage_level(102.7, &threshold, 0.9), Some(Level::Red));
    }

    /// Soil-state bounds [0.35, 0.65] of Pa/Wm, midpoints of `soil_state_pa_over_wm` (thresholds.toml).
    #[test]
    fn soil_state_classification() {
        let policy = FlashFloodPolicy::default();
        assert_eq!(soil_state(16.0, 80.0, &policy), SoilState::Dry); // 0.2
        assert_eq!(soil_state(27.9, 80.0, &policy), SoilState::Dry);
        assert_eq!(soil_state(28.0, 80.0, &policy), SoilState::Normal); // 0.35
        assert_eq!(soil_state(40.0, 80.0, &policy), SoilState::Normal); // 0.5
        assert_eq!(soil_state(52.0, 80.0, &policy), SoilState::Wet); // 0.65
        assert_eq!(soil_state(64.0, 80.0, &policy), SoilState::Wet); // 0.8
        assert_eq!(soil_state(500.0, 80.0, &policy), SoilState::Wet); // capped at Wm
        assert_eq!(soil_state(-3.0, 80.0, &policy), SoilState::Dry);
        assert_eq!(soil_state(0.0, 0.0, &policy), SoilState::Wet);
    }

    #[test]
    fn policy_defaults_validate_and_parse() {
        let policy = FlashFloodPolicy::default();
        assert_eq!(policy.validate(), Ok(()));
        let parsed: FlashFloodPolicy =
            toml::from_str("deadband-frac = 0.2\nsoil-state-bounds = [0.3, 0.6]").unwrap();
        assert_eq!(parsed.deadband_frac, 0.2);
        assert_eq!(parsed.soil_state_bounds, [0.3, 0.6]);
        assert_eq!(parsed.watch_ratio_blue, 0.6);
        assert!(toml::from_str::<FlashFloodPolicy>("deadband = 0.2").is_err());

        let bad = FlashFloodPolicy {
            watch_ratio_blue: 0.9,
            ..FlashFloodPolicy::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("watch-ratio-blue"));
        let bad = FlashFloodPolicy {
            deadband_frac: 1.0,
            ..FlashFloodPolicy::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("deadband-frac"));
        let bad = FlashFloodPolicy {
            min_completeness: f64::NAN,
            ..FlashFloodPolicy::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("min-completeness"));
        let bad = FlashFloodPolicy {
            soil_state_bounds: [0.7, 0.4],
            ..FlashFloodPolicy::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("soil-state-bounds"));
        for factor in [0.0, -0.5, f64::NAN] {
            let bad = FlashFloodPolicy {
                rain_threshold_factor: factor,
                ..FlashFloodPolicy::default()
            };
            assert!(bad
                .validate()
                .unwrap_err()
                .starts_with("rain-threshold-factor"));
        }
    }

    #[test]
    fn the_rain_threshold_factor_scales_every_step_of_the_ladder() {
        let thresholds = [threshold(1, 30.0, 50.0)];
        let policy = FlashFloodPolicy {
            rain_threshold_factor: 0.5,
            ..FlashFloodPolicy::default()
        };
        // Prepare 30 → 15, immediate 50 → 25; watch steps 0.6 and 0.8 of prepare: 9 and 12.
        let mm: Vec<f64> = rain_ladder(&thresholds, &policy)
            .iter()
            .map(|step| step.mm)
            .collect();
        assert_eq!(mm, vec![9.0, 12.0, 15.0, 25.0]);
        // 20 mm in 1 h: orange (≥ 15, < 25) at factor 0.5; at factor 1 only blue (≥ 18 = 30 ×
        // 0.6, < 24 = 30 × 0.8).
        assert_eq!(
            rain_level(&[(1, 20.0)], &thresholds, &policy, 1.0),
            Some(Level::Orange)
        );
        assert_eq!(
            rain_level(&[(1, 20.0)], &thresholds, &FlashFloodPolicy::default(), 1.0),
            Some(Level::Blue)
        );
    }

    /// A basin with gauges G1 (weight 0.6) and G2 (0.4), stage station W1, Wm 100 mm.
    fn test_basin() -> Basin {
        let rain_thresholds = BTreeMap::from([
            (
                SoilState::Dry,
                vec![threshold(1, 40.0, 60.0), threshold(3, 70.0, 100.0)],
            ),
            (
                SoilState::Normal,
                vec![threshold(1, 30.0, 50.0), threshold(3, 60.0, 90.0)],
            ),
            (
                SoilState::Wet,
                vec![threshold(1, 25.0, 40.0), threshold(3, 50.0, 80.0)],
            ),
        ]);
        Basin {
            id: BasinId::new("B0042"),
            name: "test basin".to_owned(),
            county: AreaCode::new("653125"),
            townships: vec![AreaCode::new("653125100")],
            lon: 80.0,
            lat: 40.0,
            area_km2: 50.0,
            wm_mm: 100.0,
            gauges: vec![(StationId::new("G1"), 0.6), (StationId::new("G2"), 0.4)],
            rain_thresholds,
            stage_thresholds: vec![StageThreshold {
                station: StationId::new("W1"),
                base_stage_m: 100.0,
                prepare_stage_m: 102.0,
                immediate_stage_m: 103.0,
            }],
        }
    }

    fn rain(
        station: &str,
        tick: EventTime,
        h1: (f64, f64),
        h3: (f64, f64),
        antecedent_mm: f64,
    ) -> StationSummary {
        let window = |duration_min, (mm, completeness)| WindowValue {
            duration_min,
            mm,
            completeness,
        };
        StationSummary::Rain(RainSummary {
            station: StationId::new(station),
            tick,
            windows: vec![window(10, (0.0, 1.0)), window(60, h1), window(180, h3)],
            today_mm: h3.0,
            antecedent_mm,
            last_observation: Some(tick),
        })
    }

    fn stage(station: &str, tick: EventTime, latest_m: f64) -> StationSummary {
        StationSummary::WaterLevel(StageSummary {
            station: StationId::new(station),
            tick,
            latest_m: Some(latest_m),
            max_1h_m: Some(latest_m),
            rise_m_per_h: Some(0.0),
            last_observation: Some(tick),
        })
    }

    #[test]
    fn assessor_waits_for_every_member() {
        let t = EventTime(1_719_792_000_000);
        let mut assessor = BasinAssessor::new(&test_basin(), FlashFloodPolicy::default());
        assert!(!assessor.ready(t));
        assessor.update(&rain("G1", t, (32.0, 1.0), (40.0, 1.0), 50.0));
        assessor.update(&rain("X9", t, (0.0, 1.0), (0.0, 1.0), 0.0)); // not a member
        assert!(!assessor.ready(t));
        assessor.update(&rain("G2", t, (20.0, 1.0), (30.0, 1.0), 50.0));
        assert!(!assessor.ready(t));
        assessor.update(&stage("W1", t, 100.5));
        assert!(assessor.ready(t));
        // A rain summary for a stage-only station does not count as one.
        assessor.update(&rain(
            "W1",
            t.plus_ms(5 * MINUTE_MS),
            (0.0, 1.0),
            (0.0, 1.0),
            0.0,
        ));
        assert!(!assessor.ready(t.plus_ms(5 * MINUTE_MS)));
        // An older summary does not replace a newer one.
        assessor.update(&stage("W1", t.plus_ms(-5 * MINUTE_MS), 100.5));
        assert!(assessor.ready(t));
    }

    #[test]
    fn assessor_levels_evidence_and_deadband() {
        let t = EventTime(1_719_792_000_000);
        let mut assessor = BasinAssessor::new(&test_basin(), FlashFloodPolicy::default());
        assessor.update(&rain("G1", t, (32.0, 1.0), (40.0, 1.0), 50.0));
        assessor.update(&rain("G2", t, (20.0, 1.0), (25.0, 0.9), 50.0));
        assessor.update(&stage("W1", t, 100.5));
        let assessment = assessor.assess(t);

        // Pa 50 / Wm 100 = 0.5 → normal: 1 h prepare 30, 3 h prepare 60.
        assert_eq!(assessment.soil_state, SoilState::Normal);
        assert!((assessment.antecedent_mm - 50.0).abs() < 1e-9);
        // S_1h = 0.6 × 32 + 0.4 × 20 = 27.2: yellow (≥ 24) at face value, orange held (≥ 27).
        assert_eq!(assessment.raw_level, Some(Level::Yellow));
        assert_eq!(assessment.held_level, Some(Level::Orange));

        let quantities: Vec<&str> = assessment
            .evidence
            .iter()
            .map(|e| e.quantity.as_str())
            .collect();
        assert_eq!(
            quantities,
            ["areal_rain_1h", "areal_rain_3h", "water_level"]
        );
        let h1 = &assessment.evidence[0];
        assert!((h1.value - 27.2).abs() < 1e-9);
        assert!(
            (h1.threshold - 24.0).abs() < 1e-9,
            "threshold of the level reached (yellow)"
        );
        assert_eq!(h1.stations, ["G1", "G2"]);
        let h3 = &assessment.evidence[1];
        assert!((h3.value - 34.0).abs() < 1e-9);
        assert!(
            (h3.threshold - 60.0).abs() < 1e-9,
            "no level reached: the prepare threshold"
        );
        assert!((h3.completeness - 0.96).abs() < 1e-9);
        assert_eq!(assessment.evidence[2].value, 100.5);
    }

    #[test]
    fn assessor_renormalises_without_a_gauge() {
        let t = EventTime(1_719_792_000_000);
        let mut assessor = BasinAssessor::new(&test_basin(), FlashFloodPolicy::default());
        assessor.update(&rain("G1", t, (32.0, 1.0), (40.0, 1.0), 70.0));
        assessor.update(&rain("G2", t, (0.0, 0.2), (0.0, 0.2), 70.0)); // too incomplete
        assessor.update(&stage("W1", t, 100.5));
        let assessment = assessor.assess(t);
        // Pa 70 → wet: 1 h prepare 25, immediate 40; G1 alone gives 32 → orange.
        assert_eq!(assessment.soil_state, SoilState::Wet);
        assert_eq!(assessment.raw_level, Some(Level::Orange));
        let h1 = &assessment.evidence[0];
        assert_eq!((h1.value, h1.threshold), (32.0, 25.0));
        assert!((h1.completeness - 0.6).abs() < 1e-9);
        assert_eq!(h1.stations, ["G1"]);

        // Next tick only G1 and W1 report: G2 is stale, so it is missing; the stage reaches red.
        let next = t.plus_ms(5 * MINUTE_MS);
        assessor.update(&rain("G1", next, (20.0, 1.0), (45.0, 1.0), 70.0));
        assessor.update(&stage("W1", next, 103.2));
        assert!(!assessor.ready(next));
        let assessment = assessor.assess(next);
        assert_eq!(assessment.evidence[0].stations, ["G1"]);
        assert_eq!(assessment.raw_level, Some(Level::Red));
        let water = &assessment.evidence[2];
        assert_eq!(
            (water.quantity.as_str(), water.threshold),
            ("water_level", 103.0)
        );
    }

    #[test]
    fn assessor_without_fresh_data_reports_nothing() {
        let t = EventTime(1_719_792_000_000);
        let mut assessor = BasinAssessor::new(&test_basin(), FlashFloodPolicy::default());
        let assessment = assessor.assess(t);
        assert_eq!((assessment.raw_level, assessment.held_level), (None, None));
        assert_eq!(assessment.soil_state, SoilState::Dry);
        assert!(assessment.evidence.is_empty());
    }

    /// A Tianshan pack of `swe_mm` on the test basin, driven by weather station WS1.
    fn snowy_assessor(swe_mm: f64, cfg: &SnowmeltConfig) -> BasinAssessor {
        let site = SnowpackSite {
            basin: BasinId::new("B0042"),
            range: MountainRange::Tianshan,
            swe_mm,
            station: StationId::new("WS1"),
            station_km: 4.0,
        };
        BasinAssessor::new(&test_basin(), FlashFloodPolicy::default())
            .with_snowpack(&site, cfg)
            .expect("valid snowmelt config")
    }

    fn weather(station: &str, tick: EventTime, air_temperature_c: f64) -> StationSummary {
        StationSummary::Weather(WeatherSummary {
            station: StationId::new(station),
            tick,
            air_temperature_c: Some(air_temperature_c),
            relative_humidity_pct: Some(80.0),
            wind_speed_m_s: Some(2.0),
            last_observation: Some(tick),
        })
    }

    /// Rain of both gauges with `mm_10` in the 10-min window, `h1` and `h3` in the others, Pa 50.
    fn rain_10(station: &str, tick: EventTime, mm_10: f64, h1: f64, h3: f64) -> StationSummary {
        let window = |duration_min, mm| WindowValue {
            duration_min,
            mm,
            completeness: 1.0,
        };
        StationSummary::Rain(RainSummary {
            station: StationId::new(station),
            tick,
            windows: vec![window(10, mm_10), window(60, h1), window(180, h3)],
            today_mm: h3,
            antecedent_mm: 50.0,
            last_observation: Some(tick),
        })
    }

    /// Feeds every member (gauges G1 and G2 alike, W1 at base, WS1 at `temp_c`) and assesses.
    fn tick_with(
        assessor: &mut BasinAssessor,
        tick: EventTime,
        temp_c: f64,
        (mm_10, h1, h3): (f64, f64, f64),
    ) -> Assessment {
        for gauge in ["G1", "G2"] {
            assessor.update(&rain_10(gauge, tick, mm_10, h1, h3));
        }
        assessor.update(&stage("W1", tick, 100.5));
        assessor.update(&weather("WS1", tick, temp_c));
        assert!(assessor.ready(tick));
        assessor.assess(tick)
    }

    fn evidence_value(assessment: &Assessment, quantity: &str) -> f64 {
        assessment
            .evidence
            .iter()
            .find(|e| e.quantity == quantity)
            .unwrap_or_else(|| panic!("no {quantity} in {:?}", assessment.evidence))
            .value
    }

    /// TV7.1 (hazards.md §7.1, [D]): DDF 2.9 mm/(d·°C) at 5 °C melts 14.5 mm/d. Sub-daily
    /// `M_Δt = DDF · (T − T_b) · Δt/24` over 5-min ticks: 14.5/24 = 0.6042 mm per hour, so the
    /// 1 h window adds 0.6042 mm and the 3 h window 1.8125 mm, with no rain at all.
    #[test]
    fn warm_spell_on_a_deep_pack_adds_degree_day_melt_per_duration() {
        let cfg = SnowmeltConfig {
            ddf_tianshan_mm_per_degday: 2.9,
            ..SnowmeltConfig::default()
        };
        let mut assessor = snowy_assessor(500.0, &cfg);
        let t0 = EventTime(1_711_929_600_000);
        let first = tick_with(&mut assessor, t0, 5.0, (0.0, 0.0, 0.0));
        assert_eq!(
            evidence_value(&first, "snowmelt_extra_1h"),
            0.0,
            "the first tick starts the clock"
        );
        let mut last = first;
        for k in 1..=36 {
            last = tick_with(
                &mut assessor,
                t0.plus_ms(k * 5 * MINUTE_MS),
                5.0,
                (0.0, 0.0, 0.0),
            );
        }
        let quantities: Vec<&str> = last.evidence.iter().map(|e| e.quantity.as_str()).collect();
        assert_eq!(
            quantities,
            [
                "areal_rain_1h",
                "snowmelt_extra_1h",
                "areal_rain_3h",
                "snowmelt_extra_3h",
                "water_level"
            ]
        );
        assert!((evidence_value(&last, "snowmelt_extra_1h") - 14.5 / 24.0).abs() < 1e-9);
        assert!((evidence_value(&last, "snowmelt_extra_3h") - 14.5 / 8.0).abs() < 1e-9);
        assert_eq!(evidence_value(&last, "areal_rain_3h"), 0.0);
        let melt = last
            .evidence
            .iter()
            .find(|e| e.quantity == "snowmelt_extra_3h")
            .unwrap();
        assert_eq!(melt.stations, ["WS1"]);
        let swe = assessor.snow().expect("a pack").swe_mm();
        assert!((swe - (500.0 - 14.5 / 8.0)).abs() < 1e-9, "{swe}");
    }

    /// Rain on a pack at 0 °C falls as snow (SFTMP 1 °C, §7.1) and its heat is nil (§7.2): the
    /// assessment matches the basin without a pack. At 10 °C the same rain melts the pack:
    /// TV7.1 M_rain = 0.01255 · 20 mm · 10 °C = 2.51 mm, plus 3.0 · 10 · (5/60)/24 = 0.1042 mm of
    /// degree-day melt over the 5-min step, which lifts 1 h rain of 28 mm (yellow, prepare 30)
    /// to 30.61 mm: orange.
    #[test]
    fn rain_on_a_pack_at_zero_and_at_ten_degrees_against_no_pack() {
        let cfg = SnowmeltConfig::default();
        let t0 = EventTime(1_711_929_600_000);
        let t1 = t0.plus_ms(5 * MINUTE_MS);
        // 40 mm in the 10-min window: 20 mm over the 5-min step.
        let storm = (40.0, 28.0, 40.0);
        let run = |assessor: &mut BasinAssessor, temp_c: f64| {
            tick_with(assessor, t0, temp_c, (0.0, 0.0, 0.0));
            tick_with(assessor, t1, temp_c, storm)
        };
        let mut bare = BasinAssessor::new(&test_basin(), FlashFloodPolicy::default());
        for gauge in ["G1", "G2"] {
            bare.update(&rain_10(gauge, t1, storm.0, storm.1, storm.2));
        }
        bare.update(&stage("W1", t1, 100.5));
        let without = bare.assess(t1);
        assert_eq!(without.raw_level, Some(Level::Yellow));

        let mut cold = snowy_assessor(200.0, &cfg);
        let at_zero = run(&mut cold, 0.0);
        assert_eq!(
            (at_zero.raw_level, at_zero.held_level),
            (without.raw_level, without.held_level)
        );
        assert_eq!(evidence_value(&at_zero, "snowmelt_extra_1h"), 0.0);
        assert_eq!(evidence_value(&at_zero, "areal_rain_1h"), 28.0);
        assert!(
            (cold.snow().unwrap().swe_mm() - 220.0).abs() < 1e-9,
            "the rain fell as snow"
        );

        let mut warm = snowy_assessor(200.0, &cfg);
        let at_ten = run(&mut warm, 10.0);
        let expected = 0.01255 * 20.0 * 10.0 + 3.0 * 10.0 * (5.0 / 60.0) / 24.0;
        assert!((evidence_value(&at_ten, "snowmelt_extra_1h") - expected).abs() < 1e-9);
        assert_eq!(at_ten.raw_level, Some(Level::Orange));
        let h1 = &at_ten.evidence[0];
        assert_eq!(
            (h1.quantity.as_str(), h1.value, h1.threshold),
            ("areal_rain_1h", 28.0, 30.0)
        );
    }

    #[test]
    fn a_pack_waits_for_its_snow_station_and_holds_without_fresh_weather() {
        let cfg = SnowmeltConfig::default();
        let mut assessor = snowy_assessor(100.0, &cfg);
        let t0 = EventTime(1_711_929_600_000);
        for gauge in ["G1", "G2"] {
            assessor.update(&rain_10(gauge, t0, 0.0, 0.0, 0.0));
        }
        assessor.update(&stage("W1", t0, 100.5));
        assessor.update(&weather("WS9", t0, 20.0)); // another station
        assert!(!assessor.ready(t0));
        assessor.update(&weather("WS1", t0, 20.0));
        assert!(assessor.ready(t0));
        assessor.assess(t0);
        // Two hours later the station's newest reading is from t0: older than max-weather-age.
        let t1 = t0.plus_ms(120 * MINUTE_MS);
        for gauge in ["G1", "G2"] {
            assessor.update(&rain_10(gauge, t1, 0.0, 0.0, 0.0));
        }
        assessor.update(&stage("W1", t1, 100.5));
        let StationSummary::Weather(mut stale) = weather("WS1", t1, 20.0) else {
            unreachable!()
        };
        stale.last_observation = Some(t0);
        assessor.update(&StationSummary::Weather(stale));
        let held = assessor.assess(t1);
        assert_eq!(evidence_value(&held, "snowmelt_extra_3h"), 0.0);
        assert_eq!(assessor.snow().unwrap().swe_mm(), 100.0);
    }

    proptest! {
        /// More rain at a tick never lowers the level of a basin with a snowpack, whatever the
        /// pack, the weather before and the temperature now (hazards.md issue 3, monotonicity).
        #[test]
        fn more_rain_never_lowers_a_snowy_basins_level(
            swe_mm in 0.0..300.0f64,
            history in proptest::collection::vec((-10.0..20.0f64, 0.0..10.0f64), 0..24),
            temp_c in -10.0..20.0f64,
            rain in (0.0..20.0f64, 0.0..30.0f64, 0.0..60.0f64),
            more in 0.0..20.0f64,
        ) {
            let cfg = SnowmeltConfig::default();
            let mut assessor = snowy_assessor(swe_mm, &cfg);
            let t0 = EventTime(1_711_929_600_000);
            for (k, &(temp, mm)) in history.iter().enumerate() {
                let tick = t0.plus_ms(k as i64 * 5 * MINUTE_MS);
                tick_with(&mut assessor, tick, temp, (mm, mm * 3.0, mm * 6.0));
            }
            let now = t0.plus_ms(history.len() as i64 * 5 * MINUTE_MS);
            let (mm_10, h1, h3) = (rain.0, rain.0 + rain.1, rain.0 + rain.1 + rain.2);
            let less = tick_with(&mut assessor.clone(), now, temp_c, (mm_10, h1, h3));
            let wetter = (mm_10 + more, h1 + more, h3 + more);
            let more_rain = tick_with(&mut assessor, now, temp_c, wetter);
            prop_assert!(more_rain.raw_level >= less.raw_level);
            prop_assert!(more_rain.held_level >= less.held_level);
        }
    }
}
