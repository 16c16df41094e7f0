//! Fuel state of fire zones from weather observations (hazards.md §6.3–6.5): each zone takes the
//! weather station and the rain gauge nearest to its centre; once a day, at the update hour, the
//! FWI System codes of the zone are stepped from that station's reading and the gauge's 24-h rain,
//! and the zone's [`FuelState`] (FFMC, DMC, Chinese level) follows. It also gives the 24-h rain at
//! the gauge nearest to a lightning stroke.
//!
//! The daily update of a zone is driven by the summaries, not by the clock, so its result does
//! not depend on the order in which stations report: the update of day d uses the first summary
//! of the station and of the gauge stamped at or after the update time of day d, and runs once
//! both are there. A zone without a weather station in range gets no fuel state, and so counts
//! as receptive ([`crate::lightning_fire::is_receptive`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::boundaries::bounding_box;
use crate::fire_weather::{daily_update, FwiCodes, FwiConfig, NoonWeather};
use crate::ids::StationId;
use crate::lightning_fire::{distance_km, FireZone, FireZoneId, FuelState, StrokeRain};
use crate::region::{nearest_station, Station, StationKind};
use crate::station_windows::{RainSummary, StationSummary, WeatherSummary};
use crate::time::{parse_duration_ms, EventTime, BEIJING_OFFSET_MS, HOUR_MS};

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * HOUR_MS;

/// The rain window the FWI System and the dry-stroke test take, minutes.
const RAIN_24H_MIN: u32 = 24 * 60;

/// Kilometres per hour in one metre per second.
const KMH_PER_M_S: f64 = 3.6;

/// How zones find their weather and when the daily FWI update runs (`[lightning-fire.fuel-weather]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FuelWeatherConfig {
    /// FWI System settings. The codes start from `startup-ffmc` 85, `startup-dmc` 6 and
    /// `startup-dc` 15, the FWI System start-up values [C] (hazards.md §6.3, Van Wagner & Pickett
    /// 1985); set them to start from other codes.
    pub fwi: FwiConfig,
    /// Hour of the daily update, Beijing time (0..=23). Default 14 [U]: the FWI System takes its
    /// weather at local noon (§6.3); across Xinjiang (73–96° E) mean solar noon falls between
    /// 13:36 and 15:08 Beijing time, and 14:00 Beijing is 12:00 Xinjiang time (UTC+6) and the
    /// hour LY/T 1172 reads humidity and wind at (§6.4).
    pub update_hour_beijing: u8,
    /// A zone takes the weather station nearest to its centre within this distance, km.
    /// Default 30 [U].
    pub station_max_km: f64,
    /// A zone (for the FWI rain) and a stroke (for its 24-h rain) take the rain gauge nearest to
    /// them within this distance, km. Default 10 [U].
    pub gauge_max_km: f64,
    /// A reading or gauge summary further than this from the time it stands for counts as
    /// unknown. A duration string; default "1h" [U].
    pub max_age: String,
}

impl Default for FuelWeatherConfig {
    fn default() -> Self {
        Self {
            fwi: FwiConfig::default(),
            update_hour_beijing: 14,
            station_max_km: 30.0,
            gauge_max_km: 10.0,
            max_age: "1h".to_owned(),
        }
    }
}

impl FuelWeatherConfig {
    /// Checks the FWI settings, the hour, the distances and the age.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        self.fwi
            .validate()
            .map_err(|error| format!("fwi.{error}"))?;
        if self.update_hour_beijing > 23 {
            return Err(format!(
                "update-hour-beijing must be 0..=23, got {}",
                self.update_hour_beijing
            ));
        }
        for (field, km) in [
            ("station-max-km", self.station_max_km),
            ("gauge-max-km", self.gauge_max_km),
        ] {
            if !(km > 0.0 && km.is_finite()) {
                return Err(format!("{field} must be positive, got {km}"));
            }
        }
        self.max_age_ms().map(|_| ())
    }

    /// Returns `max-age` in milliseconds.
    ///
    /// # Errors
    /// Returns a message when it is not a duration string.
    pub fn max_age_ms(&self) -> Result<i64, String> {
        parse_duration_ms(&self.max_age).map_err(|error| format!("max-age: {error}"))
    }
}

/// The noon values of a weather reading, when complete.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NoonReading {
    temp_c: f64,
    rh_pct: f64,
    wind_kmh: f64,
}

/// The weather links and FWI codes of one zone.
#[derive(Debug, Clone, PartialEq)]
struct ZoneWeather {
    station: StationId,
    gauge: Option<StationId>,
    latitude: f64,
    /// The codes of the last update, or the start-up codes.
    codes: FwiCodes,
    /// The last day updated or skipped.
    done_day: Option<i64>,
    /// The station's first reading of a day: None when it was incomplete or too old.
    noon_weather: Option<(i64, Option<NoonReading>)>,
    /// The gauge's first 24-h rain of a day: None when unknown.
    noon_rain: Option<(i64, Option<f64>)>,
}

/// The latest 24-h rain of a gauge.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GaugeRain {
    tick: EventTime,
    mm: Option<f64>,
}

/// Daily fuel states of fire zones and the rain at strokes, from station summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct FuelWeather {
    fwi: FwiConfig,
    update_offset_ms: i64,
    max_age_ms: i64,
    gauge_max_km: f64,
    zones: BTreeMap<FireZoneId, ZoneWeather>,
    /// Every rain gauge with its position, in station-id order.
    gauges: Vec<(StationId, (f64, f64))>,
    /// The stations whose summaries this model reads: the zones' weather stations and gauges,
    /// and every gauge that can be nearest to a stroke in a zone.
    watched: BTreeSet<StationId>,
    rain_24h: BTreeMap<StationId, GaugeRain>,
}

impl FuelWeather {
    /// Links each of `zones` to the weather station and rain gauge of `stations` nearest to the
    /// centre of its bounding box; zones without a weather station in range are left out.
    ///
    /// # Errors
    /// Returns a message when `config` is invalid.
    pub fn try_new(
        config: &FuelWeatherConfig,
        zones: &[FireZone],
        stations: &BTreeMap<StationId, Station>,
    ) -> Result<Self, String> {
        config.validate()?;
        let mut linked = BTreeMap::new();
        for zone in zones {
            let (min_lon, min_lat, max_lon, max_lat) = bounding_box(&zone.polygons);
            let centre = ((min_lon + max_lon) / 2.0, (min_lat + max_lat) / 2.0);
            let near = |kind, max_km| nearest_station(stations, kind, centre, max_km);
            let Some((station, _)) = near(StationKind::Weather, config.station_max_km) else {
                continue;
            };
            let gauge = near(StationKind::Rain, config.gauge_max_km).map(|(gauge, _)| gauge);
            let weather = ZoneWeather {
                station,
                gauge,
                latitude: centre.1,
                codes: config.fwi.startup_codes(),
                done_day: None,
                noon_weather: None,
                noon_rain: None,
            };
            linked.insert(zone.id.clone(), weather);
        }
        let gauges: Vec<(StationId, (f64, f64))> = stations
            .values()
            .filter(|station| station.kind == StationKind::Rain)
            .map(|station| (station.id.clone(), (station.lon, station.lat)))
            .collect();
        let mut watched: BTreeSet<StationId> = linked
            .values()
            .flat_map(|weather: &ZoneWeather| {
                std::iter::once(weather.station.clone()).chain(weather.gauge.clone())
            })
            .collect();
        for zone in zones {
            // A stroke inside the zone is within half the box diagonal of its centre, so its
            // nearest gauge in range is within that plus the gauge range.
            let (min_lon, min_lat, max_lon, max_lat) = bounding_box(&zone.polygons);
            let centre = ((min_lon + max_lon) / 2.0, (min_lat + max_lat) / 2.0);
            let reach_km = distance_km(centre, (max_lon, max_lat)) + config.gauge_max_km;
            watched.extend(
                gauges
                    .iter()
                    .filter(|(_, place)| distance_km(centre, *place) <= reach_km)
                    .map(|(id, _)| id.clone()),
            );
        }
        Ok(Self {
            watched,
            fwi: config.fwi.clone(),
            update_offset_ms: i64::from(config.update_hour_beijing) * HOUR_MS,
            max_age_ms: config.max_age_ms()?,
            gauge_max_km: config.gauge_max_km,
            zones: linked,
            gauges,
            rain_24h: BTreeMap::new(),
        })
    }

    /// Returns the stations whose summaries this model reads, in station-id order: feed exactly
    /// these to [`FuelWeather::observe`] at every tick.
    pub fn watched_stations(&self) -> &BTreeSet<StationId> {
        &self.watched
    }

    /// Returns the weather station and rain gauge of `zone`, when it has a weather station.
    pub fn links(&self, zone: &FireZoneId) -> Option<(&StationId, Option<&StationId>)> {
        self.zones
            .get(zone)
            .map(|weather| (&weather.station, weather.gauge.as_ref()))
    }

    /// Takes one station summary (any kind, any station) and returns the zones whose daily update
    /// it completed, with their new fuel state, in zone order.
    pub fn observe(&mut self, summary: &StationSummary) -> Vec<(FireZoneId, FuelState)> {
        match summary {
            StationSummary::Weather(weather) => self.observe_weather(weather),
            StationSummary::Rain(rain) => self.observe_rain(rain),
            StationSummary::WaterLevel(_) => Vec::new(),
        }
    }

    /// Returns the rain at a stroke at `(lon, lat)` and `time`: the 24-h rain of the nearest gauge
    /// in range when its latest summary is within `max-age` of the stroke and the window holds a
    /// report. The 2-min rain rate is not known from gauges.
    pub fn stroke_rain(&self, lon: f64, lat: f64, time: EventTime) -> StrokeRain {
        let nearest = self
            .gauges
            .iter()
            .map(|(id, place)| (id, distance_km((lon, lat), *place)))
            .filter(|&(_, km)| km <= self.gauge_max_km)
            .fold(
                None,
                |best: Option<(&StationId, f64)>, (id, km)| match best {
                    Some((_, best_km)) if best_km <= km => best,
                    _ => Some((id, km)),
                },
            );
        let rain_24h_mm = nearest
            .and_then(|(id, _)| self.rain_24h.get(id))
            .filter(|rain| (rain.tick.millis() - time.millis()).abs() <= self.max_age_ms)
            .and_then(|rain| rain.mm);
        StrokeRain {
            rain_24h_mm,
            rain_rate_2min_mm_h: None,
        }
    }

    /// Returns the FWI day of `t`: day d runs from the update time of day d to that of day d + 1.
    fn fwi_day(&self, t: EventTime) -> i64 {
        (t.millis() + BEIJING_OFFSET_MS - self.update_offset_ms).div_euclid(DAY_MS)
    }

    fn observe_weather(&mut self, summary: &WeatherSummary) -> Vec<(FireZoneId, FuelState)> {
        let day = self.fwi_day(summary.tick);
        let noon = update_time(day, self.update_offset_ms);
        let recent = summary
            .last_observation
            .is_some_and(|at| (at.millis() - noon.millis()).abs() <= self.max_age_ms);
        let reading = match (
            summary.air_temperature_c,
            summary.relative_humidity_pct,
            summary.wind_speed_m_s,
        ) {
            (Some(temp_c), Some(rh_pct), Some(wind_m_s)) if recent => Some(NoonReading {
                temp_c,
                rh_pct,
                wind_kmh: wind_m_s * KMH_PER_M_S,
            }),
            _ => None,
        };
        let mut updated = Vec::new();
        for (zone, weather) in &mut self.zones {
            if weather.station != summary.station
                || weather.done_day.is_some_and(|done| done >= day)
                || weather.noon_weather.is_some_and(|(held, _)| held == day)
            {
                continue;
            }
            weather.noon_weather = Some((day, reading));
            if let Some(fuel) = complete(weather, &self.fwi, self.update_offset_ms) {
                updated.push((zone.clone(), fuel));
            }
        }
        updated
    }

    fn observe_rain(&mut self, summary: &RainSummary) -> Vec<(FireZoneId, FuelState)> {
        let mm = summary
            .windows
            .iter()
            .find(|window| window.duration_min == RAIN_24H_MIN && window.completeness > 0.0)
            .map(|window| window.mm);
        let newer = self
            .rain_24h
            .get(&summary.station)
            .is_none_or(|held| held.tick <= summary.tick);
        if newer {
            let rain = GaugeRain {
                tick: summary.tick,
                mm,
            };
            self.rain_24h.insert(summary.station.clone(), rain);
        }
        let day = self.fwi_day(summary.tick);
        let noon = update_time(day, self.update_offset_ms);
        let known = mm.filter(|_| summary.tick.millis() - noon.millis() <= self.max_age_ms);
        let mut updated = Vec::new();
        for (zone, weather) in &mut self.zones {
            if weather.gauge.as_ref() != Some(&summary.station)
                || weather.done_day.is_some_and(|done| done >= day)
                || weather.noon_rain.is_some_and(|(held, _)| held == day)
            {
                continue;
            }
            weather.noon_rain = Some((day, known));
            if let Some(fuel) = complete(weather, &self.fwi, self.update_offset_ms) {
                updated.push((zone.clone(), fuel));
            }
        }
        updated
    }
}

/// Returns the update time of FWI day `day`, `update_offset_ms` after Beijing midnight.
fn update_time(day: i64, update_offset_ms: i64) -> EventTime {
    EventTime(day * DAY_MS - BEIJING_OFFSET_MS + update_offset_ms)
}

/// Runs the update of a day once the zone holds that day's reading and (when it has
/// a gauge) rain, and returns the new fuel state. A day whose reading is incomplete or too old is
/// skipped, and so is one the FWI System refuses (a latitude outside its tables, an impossible
/// value): the codes carry over unchanged. Unknown rain counts as none, the drier reading [U].
fn complete(
    weather: &mut ZoneWeather,
    fwi: &FwiConfig,
    update_offset_ms: i64,
) -> Option<FuelState> {
    let (day, reading) = weather.noon_weather?;
    let rain_mm = match (&weather.gauge, weather.noon_rain) {
        (None, _) => None,
        (Some(_), Some((rain_day, mm))) if rain_day == day => mm,
        (Some(_), _) if reading.is_some() => return None,
        (Some(_), _) => None,
    };
    weather.done_day = Some(day);
    weather.noon_weather = None;
    weather.noon_rain = None;
    let reading = reading?;
    let noon_weather = NoonWeather {
        temp_c: reading.temp_c,
        rh_pct: reading.rh_pct,
        wind_kmh: reading.wind_kmh,
        rain_24h_mm: rain_mm.unwrap_or(0.0),
    };
    let today = daily_update(
        &weather.codes,
        &noon_weather,
        update_time(day, update_offset_ms).beijing_month(),
        weather.latitude,
        fwi,
    )
    .ok()?;
    weather.codes = today.codes();
    Some(FuelState {
        ffmc: today.ffmc,
        dmc: today.dmc,
        cn_level: fwi.cn_level(today.fwi),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fire_weather::FwiDay;
    use crate::ids::AreaCode;
    use crate::lightning_fire::FuelKind;
    use crate::station_windows::WindowValue;

    /// A square zone around (82.1° E, 43.1° N).
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

    /// WZ (weather) at the zone centre, RZ (rain) 2 km north of it, RF (rain) 160 km east.
    fn stations() -> BTreeMap<StationId, Station> {
        [
            ("WZ", StationKind::Weather, 82.1, 43.1),
            ("RZ", StationKind::Rain, 82.1, 43.118),
            ("RF", StationKind::Rain, 84.1, 43.1),
        ]
        .into_iter()
        .map(|(id, kind, lon, lat)| {
            let station = Station {
                id: StationId::new(id),
                kind,
                lon,
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

    fn reading(tick: EventTime, temp_c: f64, rh_pct: f64, wind_m_s: f64) -> StationSummary {
        StationSummary::Weather(WeatherSummary {
            station: StationId::new("WZ"),
            tick,
            air_temperature_c: Some(temp_c),
            relative_humidity_pct: Some(rh_pct),
            wind_speed_m_s: Some(wind_m_s),
            last_observation: Some(tick),
        })
    }

    fn rain(station: &str, tick: EventTime, mm_24h: f64) -> StationSummary {
        StationSummary::Rain(RainSummary {
            station: StationId::new(station),
            tick,
            windows: vec![WindowValue {
                duration_min: RAIN_24H_MIN,
                mm: mm_24h,
                completeness: 1.0,
            }],
            today_mm: 0.0,
            antecedent_mm: 0.0,
            last_observation: Some(tick),
        })
    }

    fn fuel_of(day: &FwiDay, fwi: &FwiConfig) -> FuelState {
        FuelState {
            ffmc: day.ffmc,
            dmc: day.dmc,
            cn_level: fwi.cn_level(day.fwi),
        }
    }

    /// The update takes the 14:00 reading (25 °C, 30 %, 5 m/s = 18 km/h) and the gauge's 24-h
    /// rain, starts from the FWI start-up codes FFMC 85, DMC 6, DC 15 (hazards.md §6.3) and gives
    /// exactly what `fire_weather::daily_update` gives on the same inputs; day 2 continues from
    /// day 1's codes, whichever of station and gauge reports first.
    #[test]
    fn the_daily_update_equals_fire_weathers_own_on_the_same_inputs() {
        let config = FuelWeatherConfig::default();
        let fwi = &config.fwi;
        let mut weather = FuelWeather::try_new(&config, &[zone()], &stations()).expect("valid");
        let id = FireZoneId::new("FZ-TEST");
        assert_eq!(
            weather.links(&id),
            Some((&StationId::new("WZ"), Some(&StationId::new("RZ"))))
        );
        let noon1 = at("2024-07-01T14:00:00+08:00");
        assert!(
            weather.observe(&reading(noon1, 25.0, 30.0, 5.0)).is_empty(),
            "waits for the gauge"
        );
        let updated = weather.observe(&rain("RZ", noon1, 1.2));
        let noon_weather = NoonWeather {
            temp_c: 25.0,
            rh_pct: 30.0,
            wind_kmh: 18.0,
            rain_24h_mm: 1.2,
        };
        let day1 = daily_update(&fwi.startup_codes(), &noon_weather, 7, 43.1, fwi).unwrap();
        assert_eq!(updated, [(id.clone(), fuel_of(&day1, fwi))]);
        // Later summaries of the same day change nothing.
        let later = noon1.plus_ms(HOUR_MS);
        assert!(weather.observe(&reading(later, 35.0, 5.0, 20.0)).is_empty());
        assert!(weather.observe(&rain("RZ", later, 0.0)).is_empty());

        let noon2 = at("2024-07-02T14:00:00+08:00");
        let mut rain_first = weather.clone();
        assert!(rain_first.observe(&rain("RZ", noon2, 0.0)).is_empty());
        let updated = rain_first.observe(&reading(noon2, 28.0, 20.0, 6.0));
        let noon_weather = NoonWeather {
            temp_c: 28.0,
            rh_pct: 20.0,
            wind_kmh: 6.0 * 3.6,
            rain_24h_mm: 0.0,
        };
        let day2 = daily_update(&day1.codes(), &noon_weather, 7, 43.1, fwi).unwrap();
        assert_eq!(updated, [(id.clone(), fuel_of(&day2, fwi))]);
        assert!(weather.observe(&reading(noon2, 28.0, 20.0, 6.0)).is_empty());
        assert_eq!(
            weather.observe(&rain("RZ", noon2, 0.0)),
            updated,
            "order does not matter"
        );
    }

    #[test]
    fn a_day_without_a_recent_noon_reading_is_skipped() {
        let config = FuelWeatherConfig::default();
        let mut weather = FuelWeather::try_new(&config, &[zone()], &stations()).expect("valid");
        // Starting at 16:00: the first summary of the day is two hours past the update time.
        let start = at("2024-07-01T16:00:00+08:00");
        assert!(weather.observe(&reading(start, 25.0, 30.0, 5.0)).is_empty());
        assert!(weather.observe(&rain("RZ", start, 0.0)).is_empty());
        // The next day's 14:00 summary carries a reading from 12:30, older than max-age 1h.
        let noon = at("2024-07-02T14:00:00+08:00");
        let StationSummary::Weather(mut stale) = reading(noon, 25.0, 30.0, 5.0) else {
            unreachable!()
        };
        stale.last_observation = Some(noon.plus_ms(-90 * 60_000));
        assert!(weather.observe(&StationSummary::Weather(stale)).is_empty());
        assert!(weather.observe(&rain("RZ", noon, 0.0)).is_empty());
        // Day 3 runs from the start-up codes.
        let noon3 = at("2024-07-03T14:00:00+08:00");
        weather.observe(&rain("RZ", noon3, 0.0));
        let updated = weather.observe(&reading(noon3, 25.0, 30.0, 5.0));
        let noon_weather = NoonWeather {
            temp_c: 25.0,
            rh_pct: 30.0,
            wind_kmh: 18.0,
            rain_24h_mm: 0.0,
        };
        let fwi = &config.fwi;
        let day = daily_update(&fwi.startup_codes(), &noon_weather, 7, 43.1, fwi).unwrap();
        assert_eq!(updated, [(FireZoneId::new("FZ-TEST"), fuel_of(&day, fwi))]);
    }

    #[test]
    fn zones_without_a_weather_station_in_range_are_not_linked() {
        let config = FuelWeatherConfig {
            station_max_km: 0.5,
            ..FuelWeatherConfig::default()
        };
        let far_zone = FireZone::new(
            FireZoneId::new("FZ-FAR"),
            FuelKind::Grassland,
            vec![vec![vec![
                (90.0, 46.0),
                (90.1, 46.0),
                (90.1, 46.1),
                (90.0, 46.0),
            ]]],
        );
        let mut weather =
            FuelWeather::try_new(&config, &[zone(), far_zone], &stations()).expect("valid");
        assert!(weather.links(&FireZoneId::new("FZ-FAR")).is_none());
        assert!(weather.links(&FireZoneId::new("FZ-TEST")).is_some());
        let noon = at("2024-07-01T14:00:00+08:00");
        weather.observe(&rain("RZ", noon, 0.0));
        let updated = weather.observe(&reading(noon, 25.0, 30.0, 5.0));
        let zones: Vec<&str> = updated.iter().map(|(zone, _)| zone.as_str()).collect();
        assert_eq!(zones, ["FZ-TEST"]);
    }

    #[test]
    fn a_stroke_takes_the_recent_24h_rain_of_its_nearest_gauge_in_range() {
        let config = FuelWeatherConfig::default();
        let mut weather = FuelWeather::try_new(&config, &[zone()], &stations()).expect("valid");
        let t = at("2024-07-01T15:00:00+08:00");
        assert_eq!(
            weather.stroke_rain(82.1, 43.12, t),
            StrokeRain::default(),
            "no summary yet"
        );
        weather.observe(&rain("RZ", t, 5.0));
        weather.observe(&rain("RF", t, 0.0));
        let near = weather.stroke_rain(82.1, 43.12, t.plus_ms(10 * 60_000));
        assert_eq!(near.rain_24h_mm, Some(5.0));
        assert_eq!(near.rain_rate_2min_mm_h, None);
        // 30 km from RZ and 130 km from RF: no gauge within 10 km.
        assert_eq!(weather.stroke_rain(82.5, 43.1, t).rain_24h_mm, None);
        // Two hours on, RZ's latest summary is too old to stand for the stroke.
        assert_eq!(
            weather
                .stroke_rain(82.1, 43.12, t.plus_ms(2 * HOUR_MS))
                .rain_24h_mm,
            None
        );
    }

    #[test]
    fn config_defaults_validate_and_name_bad_fields() {
        let config = FuelWeatherConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            config.fwi.startup_codes(),
            FwiCodes {
                ffmc: 85.0,
                dmc: 6.0,
                dc: 15.0
            }
        );
        let parsed: FuelWeatherConfig =
            toml::from_str("update-hour-beijing = 12\n[fwi]\nstartup-ffmc = 80.0").unwrap();
        assert_eq!(
            (parsed.update_hour_beijing, parsed.fwi.startup_ffmc),
            (12, 80.0)
        );
        let bad = FuelWeatherConfig {
            update_hour_beijing: 24,
            ..FuelWeatherConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("update-hour-beijing"));
        let bad = FuelWeatherConfig {
            gauge_max_km: 0.0,
            ..FuelWeatherConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("gauge-max-km"));
        let bad = FuelWeatherConfig {
            max_age: "soon".to_owned(),
            ..FuelWeatherConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("max-age"));
    }
}
