//! The rain on monitored slopes: the areal rainfall of each slope's basin over the landslide
//! rain window (`[landslide.rain] window`, default 24 h), kept from the basin gauges' summaries
//! at every tick, for the landslide chain's rain aggravation (hazards.md §5 [U]).

use std::collections::{BTreeMap, BTreeSet};

use crate::areal::weighted_areal;
use crate::ids::{BasinId, StationId};
use crate::region::{Basin, MonitoredSlope};
use crate::station_windows::StationSummary;
use crate::time::{parse_duration_ms, MINUTE_MS};

/// The slope basins' gauges and the latest rain each had over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SlopeRain {
    window_min: u32,
    min_completeness: f64,
    basins: BTreeMap<BasinId, Vec<(StationId, f64)>>,
    latest: BTreeMap<StationId, (f64, f64)>,
}

impl SlopeRain {
    /// Collects the gauges of the basins of `slopes`, reading each gauge's window of `window`
    /// (a duration such as `"24h"`), which must be one of the station windows `durations_min`.
    /// A gauge window counts when at least `min_completeness` of its expected reports arrived,
    /// as for the flash-flood areal rain (`flash-flood.min-completeness`).
    ///
    /// # Errors
    /// Returns a message naming `landslide.rain.window` when the window is not a duration or not
    /// one the stations keep, or a slope's basin is unknown.
    pub fn try_new(
        window: &str,
        durations_min: &[u32],
        min_completeness: f64,
        slopes: &[MonitoredSlope],
        basins: &BTreeMap<BasinId, Basin>,
    ) -> Result<Self, String> {
        let window_ms = parse_duration_ms(window)
            .map_err(|e| format!("landslide.rain.window {window:?}: {e}"))?;
        let window_min = u32::try_from(window_ms / MINUTE_MS)
            .ok()
            .filter(|min| i64::from(*min) * MINUTE_MS == window_ms && durations_min.contains(min))
            .ok_or_else(|| {
                format!(
                    "landslide.rain.window {window:?} must be one of the station rain windows \
                     {durations_min:?} (minutes)"
                )
            })?;
        let mut slope_basins = BTreeMap::new();
        for slope in slopes {
            let basin = basins.get(&slope.basin).ok_or_else(|| {
                format!("slope {} lies in unknown basin {}", slope.id, slope.basin)
            })?;
            slope_basins.insert(basin.id.clone(), basin.gauges.clone());
        }
        Ok(Self {
            window_min,
            min_completeness,
            basins: slope_basins,
            latest: BTreeMap::new(),
        })
    }

    /// Returns the gauges whose summaries [`SlopeRain::observe`] reads, in station-id order.
    pub fn watched_stations(&self) -> BTreeSet<StationId> {
        self.basins
            .values()
            .flat_map(|gauges| gauges.iter().map(|(station, _)| station.clone()))
            .collect()
    }

    /// Keeps a gauge's rain over the window; other summaries are ignored.
    pub fn observe(&mut self, summary: &StationSummary) {
        let StationSummary::Rain(rain) = summary else {
            return;
        };
        if let Some(window) = rain
            .windows
            .iter()
            .find(|window| window.duration_min == self.window_min)
        {
            self.latest
                .insert(rain.station.clone(), (window.mm, window.completeness));
        }
    }

    /// Returns each slope basin's areal rain over the window from the latest gauge values; a
    /// basin none of whose gauges is complete enough is left out (the chain counts it as dry).
    pub fn rain_by_basin(&self) -> BTreeMap<BasinId, f64> {
        self.basins
            .iter()
            .filter_map(|(basin, gauges)| {
                let readings: Vec<(f64, Option<(f64, f64)>)> = gauges
                    .iter()
                    .map(|(station, weight)| (*weight, self.latest.get(station).copied()))
                    .collect();
                weighted_areal(&readings, self.min_completeness)
                    .map(|areal| (basin.clone(), areal.mm))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AreaCode;
    use crate::station_windows::{RainSummary, WindowValue};
    use crate::time::EventTime;

    fn basin(id: &str, gauges: &[(&str, f64)]) -> Basin {
        Basin {
            id: BasinId::new(id),
            name: id.to_owned(),
            county: AreaCode::new("654028"),
            townships: Vec::new(),
            lon: 82.0,
            lat: 43.0,
            area_km2: 10.0,
            wm_mm: 100.0,
            gauges: gauges
                .iter()
                .map(|(station, weight)| (StationId::new(*station), *weight))
                .collect(),
            rain_thresholds: BTreeMap::new(),
            stage_thresholds: Vec::new(),
        }
    }

    fn slope(basin: &str) -> MonitoredSlope {
        MonitoredSlope {
            id: crate::ids::SlopeId::new("SL-TEST"),
            name: "test".to_owned(),
            county: AreaCode::new("654028"),
            basin: BasinId::new(basin),
            townships: Vec::new(),
            lon: 82.0,
            lat: 43.0,
            v0_mm_per_day: 1.0,
            points: Vec::new(),
        }
    }

    fn rain(station: &str, mm_24h: f64, completeness: f64) -> StationSummary {
        StationSummary::Rain(RainSummary {
            station: StationId::new(station),
            tick: EventTime(0),
            windows: vec![
                WindowValue {
                    duration_min: 60,
                    mm: 99.0,
                    completeness: 1.0,
                },
                WindowValue {
                    duration_min: 1440,
                    mm: mm_24h,
                    completeness,
                },
            ],
            today_mm: 0.0,
            antecedent_mm: 0.0,
            last_observation: None,
        })
    }

    #[test]
    fn a_slope_gets_the_weighted_24h_rain_of_its_basin_gauges() {
        let basins = BTreeMap::from([(
            BasinId::new("B1"),
            basin("B1", &[("R1", 0.75), ("R2", 0.25)]),
        )]);
        let mut rain_on =
            SlopeRain::try_new("24h", &[60, 1440], 0.5, &[slope("B1")], &basins).unwrap();
        assert_eq!(
            rain_on.watched_stations().into_iter().collect::<Vec<_>>(),
            vec![StationId::new("R1"), StationId::new("R2")]
        );
        assert!(rain_on.rain_by_basin().is_empty(), "nothing reported yet");
        rain_on.observe(&rain("R1", 40.0, 1.0));
        rain_on.observe(&rain("R2", 8.0, 1.0));
        rain_on.observe(&rain("R9", 500.0, 1.0));
        let by_basin = rain_on.rain_by_basin();
        assert!(
            (by_basin[&BasinId::new("B1")] - 32.0).abs() < 1e-9,
            "{by_basin:?}"
        );
        // An incomplete gauge is dropped and the weights renormalised.
        rain_on.observe(&rain("R2", 8.0, 0.1));
        assert!((rain_on.rain_by_basin()[&BasinId::new("B1")] - 40.0).abs() < 1e-9);
    }

    #[test]
    fn a_window_the_stations_do_not_keep_is_refused_with_the_field_named() {
        let basins = BTreeMap::from([(BasinId::new("B1"), basin("B1", &[("R1", 1.0)]))]);
        let error =
            SlopeRain::try_new("48h", &[60, 1440], 0.5, &[slope("B1")], &basins).unwrap_err();
        assert!(error.contains("landslide.rain.window"), "{error}");
        let error =
            SlopeRain::try_new("24h", &[60, 1440], 0.5, &[slope("B9")], &basins).unwrap_err();
        assert!(error.contains("unknown basin B9"), "{error}");
    }
}
