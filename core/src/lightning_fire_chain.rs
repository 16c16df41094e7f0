//! The lightning → forest/grassland fire chain of a node's fire zones: strokes from the lightning
//! location network placed in zones (hazards.md §6), the combined ignition-risk level per zone at
//! every tick, and one warning thread per zone. With [`LightningFireChain::with_fuel_weather`],
//! station summaries give each zone a daily fuel state and each stroke the 24-h rain of its
//! nearest gauge ([`crate::fuel_weather`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::fuel_weather::FuelWeather;
use crate::ids::{AreaCode, StationId};
use crate::lifecycle::{LifecyclePolicy, WarningThread};
use crate::lightning_fire::{
    FireZone, FireZoneId, FuelState, LightningFireConfig, LightningFireError, LightningFireTracker,
    Polarity, Stroke, StrokeRain,
};
use crate::observation::{Observation, Outcome, Reading, RejectReason};
use crate::region::Station;
use crate::station_windows::StationSummary;
use crate::time::EventTime;
use crate::warning::{Hazard, WarningEvent};

/// The fire warnings of a set of zones.
#[derive(Debug, Clone)]
pub struct LightningFireChain {
    tracker: LightningFireTracker,
    threads: BTreeMap<FireZoneId, WarningThread>,
    /// (event time ms, locator network, sequence) of the strokes taken within the retention, so
    /// a stroke read again (a re-send, a rewind after a rebalance) counts once.
    seen: BTreeSet<(i64, String, u64)>,
    retention_ms: i64,
    fuel_weather: Option<FuelWeather>,
}

impl LightningFireChain {
    /// Creates the chain of `zones`, each with the area codes its warnings reach.
    ///
    /// # Errors
    /// Returns [`LightningFireError`] for a bad configuration or a duplicate zone.
    pub fn try_new(
        config: LightningFireConfig,
        zones: Vec<(FireZone, Vec<AreaCode>)>,
    ) -> Result<Self, LightningFireError> {
        let threads = zones
            .iter()
            .map(|(zone, areas)| {
                let thread =
                    WarningThread::new(Hazard::LightningFire, zone.id.as_str(), areas.clone());
                (zone.id.clone(), thread)
            })
            .collect();
        let retention_ms = config.retention_ms();
        let tracker =
            LightningFireTracker::try_new(config, zones.into_iter().map(|(z, _)| z).collect())?;
        Ok(Self {
            tracker,
            threads,
            seen: BTreeSet::new(),
            retention_ms,
            fuel_weather: None,
        })
    }

    /// Links each zone to its nearest weather station and rain gauge of `stations`
    /// (`fuel-weather` of the config): from then on [`LightningFireChain::observe_summary`] gives
    /// zones a daily fuel state and strokes the 24-h rain of their nearest gauge. Zones without a
    /// weather station in range keep no fuel state, and so stay receptive.
    ///
    /// # Errors
    /// Returns [`LightningFireError::Config`] for an invalid `fuel-weather` config.
    pub fn with_fuel_weather(
        mut self,
        stations: &BTreeMap<StationId, Station>,
    ) -> Result<Self, LightningFireError> {
        let config = &self.tracker.config().fuel_weather;
        let weather = FuelWeather::try_new(config, self.tracker.zones(), stations)
            .map_err(LightningFireError::Config)?;
        self.fuel_weather = Some(weather);
        Ok(self)
    }

    /// Takes one station summary of any kind and station (a no-op without
    /// [`LightningFireChain::with_fuel_weather`]): keeps gauges' 24-h rain for strokes and runs
    /// the daily fuel update of the zones it completes. Later strokes are scored with the new
    /// fuel state; strokes already taken keep theirs.
    pub fn observe_summary(&mut self, summary: &StationSummary) {
        let Some(weather) = &mut self.fuel_weather else {
            return;
        };
        for (zone, fuel) in weather.observe(summary) {
            self.tracker
                .set_fuel(&zone, fuel)
                .expect("fuel-weather zones are the tracker's zones");
        }
    }

    /// Returns the stations whose summaries [`LightningFireChain::observe_summary`] reads at every
    /// tick (none without [`LightningFireChain::with_fuel_weather`]).
    pub fn watched_stations(&self) -> BTreeSet<StationId> {
        self.fuel_weather
            .as_ref()
            .map(|weather| weather.watched_stations().clone())
            .unwrap_or_default()
    }

    /// Returns the fuel state strokes in `zone` are scored with, if it has one.
    pub fn fuel(&self, zone: &FireZoneId) -> Option<FuelState> {
        self.tracker.fuel(zone).copied()
    }

    /// Takes one lightning observation: a stroke outside every zone is applied and kept by no
    /// zone; one already taken (same time, network and sequence) is rejected as a duplicate; an
    /// impossible one (position, current) is rejected as out of range. The rain at the stroke is
    /// the 24-h rain of its nearest gauge when [`LightningFireChain::with_fuel_weather`] knows it;
    /// otherwise the stroke counts as dry (the cautious reading of §6.5).
    pub fn observe(&mut self, observation: &Observation) -> Outcome {
        let Reading::Lightning {
            lon,
            lat,
            peak_current_ka,
            positive,
            cloud_to_ground,
        } = observation.reading
        else {
            return Outcome::rejected(
                RejectReason::Malformed,
                format!(
                    "a {} reading is not a lightning stroke",
                    observation.reading.kind()
                ),
            );
        };
        let stroke = Stroke {
            time: observation.event_time,
            lon,
            lat,
            peak_current_ka: peak_current_ka.abs(),
            polarity: if positive {
                Polarity::Positive
            } else {
                Polarity::Negative
            },
            cloud_to_ground,
        };
        let key = (
            observation.event_time.millis(),
            observation.station.to_string(),
            observation.sequence,
        );
        if self.seen.contains(&key) {
            return Outcome::rejected(
                RejectReason::Duplicate,
                format!(
                    "stroke {} #{} at {} already taken",
                    observation.station,
                    observation.sequence,
                    observation.event_time.to_beijing_rfc3339()
                ),
            );
        }
        let rain = self
            .fuel_weather
            .as_ref()
            .map_or_else(StrokeRain::default, |weather| {
                weather.stroke_rain(lon, lat, observation.event_time)
            });
        match self.tracker.observe_stroke(&stroke, &rain) {
            Ok(_) => {
                self.seen.insert(key);
                Outcome::Applied
            }
            Err(e) => Outcome::rejected(RejectReason::OutOfRange, e.to_string()),
        }
    }

    /// Assesses every zone at `tick` and returns the warning versions to emit, in zone order.
    pub fn on_tick(&mut self, tick: EventTime, policy: &LifecyclePolicy) -> Vec<WarningEvent> {
        let mut emitted = Vec::new();
        for assessment in self.tracker.assess_all(tick) {
            if let Some(thread) = self.threads.get_mut(&assessment.zone) {
                emitted.extend(thread.on_assessment(
                    tick,
                    assessment.level,
                    assessment.level,
                    &assessment.evidence,
                    policy,
                ));
            }
        }
        self.tracker.prune(tick);
        let oldest = tick.millis() - self.retention_ms;
        self.seen = self.seen.split_off(&(oldest, String::new(), 0));
        emitted
    }

    /// Returns the last version of every active fire warning, in zone order.
    pub fn active(&self) -> Vec<WarningEvent> {
        self.threads
            .values()
            .filter_map(|t| t.active().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::ids::GatewayId;
    use crate::lightning_fire::{is_receptive, FuelKind};
    use crate::region::{Region, StationKind};
    use crate::scenario::{storm_scenario, StormConfig, LIGHTNING_ZONE};
    use crate::station_windows::{
        RainSummary, StationWindows, WeatherSummary, WindowValue, WindowsConfig,
    };
    use crate::time::{HOUR_MS, MINUTE_MS};
    use crate::warning::Level;

    fn zone() -> FireZone {
        let ring = vec![
            (82.0, 43.0),
            (82.2, 43.0),
            (82.2, 43.2),
            (82.0, 43.2),
            (82.0, 43.0),
        ];
        FireZone::new(
            FireZoneId::new("FZ-TEST"),
            FuelKind::Forest,
            vec![vec![ring]],
        )
    }

    fn stroke(at: EventTime, lon: f64, ka: f64, positive: bool) -> Observation {
        Observation {
            station: StationId::new("LLS-XJ"),
            event_time: at,
            gateway: GatewayId::new("GW-LLS"),
            sequence: 1,
            reading: Reading::Lightning {
                lon,
                lat: 43.1,
                peak_current_ka: ka,
                positive,
                cloud_to_ground: true,
            },
        }
    }

    #[test]
    fn a_burst_of_strong_positive_strokes_on_a_dry_forest_warns_its_zone() {
        let mut chain = LightningFireChain::try_new(
            LightningFireConfig::default(),
            vec![(zone(), vec![AreaCode::new("654024")])],
        )
        .expect("valid chain");
        let t0 = EventTime(1_719_820_800_000);
        for i in 0..30 {
            let outcome = chain.observe(&stroke(t0.plus_ms(i * MINUTE_MS), 82.1, 80.0, true));
            assert_eq!(outcome, Outcome::Applied);
        }
        let emitted = chain.on_tick(t0.plus_ms(30 * MINUTE_MS), &LifecyclePolicy::default());
        assert_eq!(emitted.len(), 1, "{emitted:?}");
        let warning = &emitted[0];
        assert_eq!(warning.hazard, Hazard::LightningFire);
        assert_eq!(warning.target, "FZ-TEST");
        assert!(warning.level >= Level::Yellow, "{warning:?}");
        assert!(!warning.evidence.is_empty());
        assert_eq!(chain.active().len(), 1);
    }

    #[test]
    fn strokes_outside_every_zone_are_applied_and_warn_no_one() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let t0 = EventTime(1_719_820_800_000);
        assert_eq!(
            chain.observe(&stroke(t0, 85.0, 80.0, true)),
            Outcome::Applied
        );
        assert!(chain
            .on_tick(t0.plus_ms(5 * MINUTE_MS), &LifecyclePolicy::default())
            .is_empty());
    }

    #[test]
    fn a_stroke_read_twice_counts_once() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let once = stroke(EventTime(1_719_820_800_000), 82.1, 80.0, true);
        assert_eq!(chain.observe(&once), Outcome::Applied);
        assert!(matches!(
            chain.observe(&once),
            Outcome::Rejected {
                reason: RejectReason::Duplicate,
                ..
            }
        ));
    }

    #[test]
    fn an_impossible_stroke_is_rejected_with_the_reason() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain");
        let outcome = chain.observe(&stroke(EventTime(0), 182.0, 10.0, false));
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    reason: RejectReason::OutOfRange,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }

    /// Weather station WZ at the zone centre and rain gauge RZ 2 km north of it.
    fn stations() -> BTreeMap<StationId, Station> {
        [
            ("WZ", StationKind::Weather, 43.1),
            ("RZ", StationKind::Rain, 43.118),
        ]
        .into_iter()
        .map(|(id, kind, lat)| {
            let station = Station {
                id: StationId::new(id),
                kind,
                lon: 82.1,
                lat,
                county: AreaCode::new("654024"),
                report_interval_s: 300,
            };
            (station.id.clone(), station)
        })
        .collect()
    }

    fn at(text: &str) -> EventTime {
        EventTime::parse_rfc3339(text).expect("a valid timestamp")
    }

    fn noon_weather(tick: EventTime, temp_c: f64, rh_pct: f64, wind_m_s: f64) -> StationSummary {
        StationSummary::Weather(WeatherSummary {
            station: StationId::new("WZ"),
            tick,
            air_temperature_c: Some(temp_c),
            relative_humidity_pct: Some(rh_pct),
            wind_speed_m_s: Some(wind_m_s),
            last_observation: Some(tick),
        })
    }

    fn gauge_24h(tick: EventTime, mm: f64) -> StationSummary {
        StationSummary::Rain(RainSummary {
            station: StationId::new("RZ"),
            tick,
            windows: vec![WindowValue {
                duration_min: 1440,
                mm,
                completeness: 1.0,
            }],
            today_mm: 0.0,
            antecedent_mm: 0.0,
            last_observation: Some(tick),
        })
    }

    /// Runs two noon updates (day 1 as given, day 2 mild and rainless), then the burst of the
    /// first test at 15:00 on day 2 with the gauge dry over 24 h, and returns the chain and the
    /// warnings at 15:30.
    fn burst_after(day1: (f64, f64, f64, f64)) -> (LightningFireChain, Vec<WarningEvent>) {
        let mut chain = LightningFireChain::try_new(
            LightningFireConfig::default(),
            vec![(zone(), vec![AreaCode::new("654024")])],
        )
        .expect("valid chain")
        .with_fuel_weather(&stations())
        .expect("valid fuel-weather config");
        let (temp_c, rh_pct, wind_m_s, rain_mm) = day1;
        let noon1 = at("2024-07-01T14:00:00+08:00");
        chain.observe_summary(&noon_weather(noon1, temp_c, rh_pct, wind_m_s));
        chain.observe_summary(&gauge_24h(noon1, rain_mm));
        let noon2 = at("2024-07-02T14:00:00+08:00");
        chain.observe_summary(&noon_weather(noon2, 20.0, 60.0, 3.0));
        chain.observe_summary(&gauge_24h(noon2, 0.0));
        let t0 = at("2024-07-02T15:00:00+08:00");
        chain.observe_summary(&gauge_24h(t0, 0.0));
        for i in 0..30 {
            let outcome = chain.observe(&stroke(t0.plus_ms(i * MINUTE_MS), 82.1, 80.0, true));
            assert_eq!(outcome, Outcome::Applied);
        }
        let emitted = chain.on_tick(t0.plus_ms(30 * MINUTE_MS), &LifecyclePolicy::default());
        (chain, emitted)
    }

    /// A wet day (12 °C, 95 %, 25 mm) leaves FFMC, DMC and the Chinese level below the §6.5
    /// receptivity cut-offs a day later, so dry strokes no longer score; after a hot dry day
    /// the same burst warns.
    #[test]
    fn a_wet_day_makes_a_zone_unreceptive_and_its_burst_no_longer_warns() {
        let config = LightningFireConfig::default();
        let id = FireZoneId::new("FZ-TEST");
        let (wet, emitted) = burst_after((12.0, 95.0, 2.0, 25.0));
        let fuel = wet.fuel(&id).expect("two daily updates");
        assert!(!is_receptive(Some(&fuel), &config), "{fuel:?}");
        assert!(emitted.is_empty(), "{emitted:?}");
        assert!(wet.active().is_empty());

        let (dry, emitted) = burst_after((30.0, 15.0, 6.0, 0.0));
        let fuel = dry.fuel(&id).expect("two daily updates");
        assert!(is_receptive(Some(&fuel), &config), "{fuel:?}");
        assert_eq!(emitted.len(), 1, "{emitted:?}");
        assert!(emitted[0].level >= Level::Yellow);
    }

    #[test]
    fn a_stroke_on_rain_soaked_ground_does_not_score() {
        let mut chain =
            LightningFireChain::try_new(LightningFireConfig::default(), vec![(zone(), Vec::new())])
                .expect("valid chain")
                .with_fuel_weather(&stations())
                .expect("valid fuel-weather config");
        let t0 = at("2024-07-01T17:00:00+08:00");
        // 8.6 mm over 24 h: the median at strokes that started no fire (hazards.md §6.2).
        chain.observe_summary(&gauge_24h(t0, 8.6));
        for i in 0..30 {
            chain.observe(&stroke(t0.plus_ms(i * MINUTE_MS), 82.1, 80.0, true));
        }
        let emitted = chain.on_tick(t0.plus_ms(30 * MINUTE_MS), &LifecyclePolicy::default());
        assert!(emitted.is_empty(), "{emitted:?}");
        assert_eq!(chain.fuel(&FireZoneId::new("FZ-TEST")), None, "no noon yet");
    }

    /// Replays the storm scenario's weather, rain and strokes through station windows and the
    /// chain, ticking every 5 min, and returns the fire warnings.
    fn replay_scenario(region: &Region, with_weather: bool) -> Vec<WarningEvent> {
        let zones = region
            .fire_zones
            .iter()
            .map(|site| (site.zone.clone(), vec![site.county.clone()]))
            .collect();
        let mut chain = LightningFireChain::try_new(LightningFireConfig::default(), zones)
            .expect("valid chain");
        if with_weather {
            chain = chain
                .with_fuel_weather(&region.stations)
                .expect("valid fuel-weather config");
        }
        let scenario = storm_scenario(region, &StormConfig::default());
        let cfg = WindowsConfig::default();
        let mut windows: BTreeMap<StationId, StationWindows> = BTreeMap::new();
        let policy = LifecyclePolicy::default();
        let mut emitted = Vec::new();
        let step = 5 * MINUTE_MS;
        let mut next_tick = scenario.start.plus_ms(step);
        let mut tick_until = |until: EventTime,
                              windows: &mut BTreeMap<StationId, StationWindows>,
                              chain: &mut LightningFireChain,
                              emitted: &mut Vec<WarningEvent>| {
            while next_tick <= until {
                for station in windows.values_mut() {
                    station.advance_to(next_tick);
                    chain.observe_summary(&station.summary(next_tick));
                }
                emitted.extend(chain.on_tick(next_tick, &policy));
                next_tick = next_tick.plus_ms(step);
            }
        };
        for message in &scenario.messages {
            tick_until(message.sent_at, &mut windows, &mut chain, &mut emitted);
            let Some(obs) = message.observation() else {
                continue;
            };
            if matches!(obs.reading, Reading::Lightning { .. }) {
                chain.observe(obs);
                continue;
            }
            let Some(station) = region.stations.get(&obs.station) else {
                continue;
            };
            let state = windows
                .entry(station.id.clone())
                .or_insert_with(|| match station.kind {
                    StationKind::Rain => {
                        StationWindows::rain(station.id.clone(), station.report_interval_s, &cfg)
                    }
                    StationKind::WaterLevel => {
                        StationWindows::water_level(station.id.clone(), &cfg)
                    }
                    StationKind::Weather => StationWindows::weather(station.id.clone(), &cfg),
                });
            state.observe(obs, message.sent_at);
        }
        tick_until(
            scenario.end.plus_ms(HOUR_MS),
            &mut windows,
            &mut chain,
            &mut emitted,
        );
        emitted
    }

    /// The scenario runs 16:00–05:00, so no zone reaches its 14:00 update and the burst's zone
    /// keeps no fuel state (receptive). Its strokes now take the 24-h rain of their nearest
    /// gauges: where that reaches 2.9 mm they no longer score, so the ignition score is lower
    /// than with every stroke counted dry, but the burst still warns with the same warning
    /// versions (id, version, status, level, action and times, the lines of the golden file).
    #[test]
    fn scenario_burst_still_warns_with_fuel_weather() {
        let region = Region::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../regions/xinjiang"
        )))
        .expect("the committed region loads");
        let with_weather = replay_scenario(&region, true);
        let all_dry = replay_scenario(&region, false);
        let versions = |warnings: &[WarningEvent]| -> Vec<_> {
            warnings
                .iter()
                .map(|w| {
                    (
                        w.id.clone(),
                        w.version,
                        w.status,
                        w.level,
                        w.action,
                        w.issued,
                        w.expires,
                    )
                })
                .collect()
        };
        assert_eq!(versions(&with_weather), versions(&all_dry));
        assert!(
            with_weather
                .iter()
                .any(|w| w.target == LIGHTNING_ZONE && w.level >= Level::Yellow),
            "{with_weather:?}"
        );
        let score = |warnings: &[WarningEvent]| {
            warnings
                .iter()
                .flat_map(|w| &w.evidence)
                .filter(|e| e.quantity == "ignition_score")
                .map(|e| e.value)
                .fold(0.0, f64::max)
        };
        println!(
            "peak ignition score {} (all dry: {})",
            score(&with_weather),
            score(&all_dry)
        );
        assert!(score(&with_weather) < score(&all_dry));
        assert!(score(&with_weather) >= LightningFireConfig::default().score_levels[2]);
    }
}
