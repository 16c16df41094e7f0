//! The snowpack of one flash-flood basin, stepped at every assessment tick by the weather of its
//! snow station and the basin's own areal rain (hazards.md §7.1 degree-day melt, §7.2 rain heat),
//! and the water it releases beyond the rain itself, kept per tick so that each rain-duration
//! window of the flash-flood model can add the melt of its own span.
//!
//! The station's temperature is used as the basin temperature, with no lapse-rate correction for
//! the height between station and snow [U]. A tick whose weather is missing or older than
//! `max-weather-age` holds the pack: no melt is claimed without a measurement.

use std::collections::VecDeque;

use crate::ids::StationId;
use crate::region::SnowpackSite;
use crate::snowmelt::{BasinSnowpack, MeltStep, SnowmeltConfig, StepWeather};
use crate::station_windows::WeatherSummary;
use crate::time::{EventTime, HOUR_MS, MINUTE_MS};

/// A basin snowpack with its snow station's latest weather and the melt of recent ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct BasinSnow {
    pack: BasinSnowpack,
    station: StationId,
    cfg: SnowmeltConfig,
    max_weather_age_ms: i64,
    /// Ticks of melt kept: the longest rain duration the basin is assessed over.
    keep_ms: i64,
    weather: Option<WeatherSummary>,
    /// The last tick the pack was stepped to.
    stepped_to: Option<EventTime>,
    /// `(tick, melt mm)` of each step, oldest first, within `keep_ms` of the last tick.
    melt: VecDeque<(EventTime, f64)>,
}

impl BasinSnow {
    /// Creates the pack of `site`, keeping the melt of the last `keep_h` hours.
    ///
    /// # Errors
    /// Returns a message when `cfg.max_weather_age` is not a duration.
    pub fn try_new(site: &SnowpackSite, cfg: &SnowmeltConfig, keep_h: u32) -> Result<Self, String> {
        Ok(Self {
            pack: BasinSnowpack::new(site.basin.clone(), site.range, site.swe_mm),
            station: site.station.clone(),
            max_weather_age_ms: cfg.max_weather_age_ms()?,
            cfg: cfg.clone(),
            keep_ms: i64::from(keep_h) * HOUR_MS,
            weather: None,
            stepped_to: None,
            melt: VecDeque::new(),
        })
    }

    /// Returns the weather station that drives the pack.
    pub fn station(&self) -> &StationId {
        &self.station
    }

    /// Returns the current snow water equivalent, mm.
    pub fn swe_mm(&self) -> f64 {
        self.pack.swe_mm()
    }

    /// Keeps `summary` when it is the snow station's and not older than the one held.
    pub fn update(&mut self, summary: &WeatherSummary) {
        if summary.station != self.station
            || self
                .weather
                .as_ref()
                .is_some_and(|held| held.tick > summary.tick)
        {
            return;
        }
        self.weather = Some(summary.clone());
    }

    /// Returns true when the snow station has a summary for `tick` or later.
    pub fn ready(&self, tick: EventTime) -> bool {
        self.weather.as_ref().is_some_and(|held| held.tick >= tick)
    }

    /// Steps the pack from the last tick to `tick` and returns the step, or None for the first
    /// tick (which only starts the clock), a tick not after the last one, or missing weather.
    ///
    /// `areal_windows` are the basin's `(duration min, areal mm)` rain windows at `tick`,
    /// ascending. The rain of the step is the shortest window at least as long as the step,
    /// prorated to the step: with windows a multiple of the tick, the prorated rains of
    /// consecutive ticks add up to the rain that fell. A step longer than every window is cut to
    /// the longest one.
    pub fn advance(&mut self, tick: EventTime, areal_windows: &[(u32, f64)]) -> Option<MeltStep> {
        let previous = self.stepped_to;
        if previous.is_some_and(|last| tick <= last) {
            return None;
        }
        self.stepped_to = Some(tick);
        let oldest_kept = tick.millis() - self.keep_ms;
        while self
            .melt
            .front()
            .is_some_and(|&(at, _)| at.millis() <= oldest_kept)
        {
            self.melt.pop_front();
        }
        let step_ms = tick.millis() - previous?.millis();
        let temperature = self.fresh_temperature(tick);
        let window = areal_windows
            .iter()
            .find(|(duration_min, _)| i64::from(*duration_min) * MINUTE_MS >= step_ms)
            .or(areal_windows.last());
        let (step_ms, rain_mm) = match window {
            Some(&(duration_min, mm)) => {
                let window_ms = i64::from(duration_min) * MINUTE_MS;
                let step_ms = step_ms.min(window_ms);
                (step_ms, mm * step_ms as f64 / window_ms as f64)
            }
            None => (step_ms, 0.0),
        };
        let weather = StepWeather {
            air_temp_c: temperature?,
            precip_mm: rain_mm,
            step_h: step_ms as f64 / HOUR_MS as f64,
        };
        // The pack is unchanged when the step is refused (a non-finite areal value).
        let step = self.pack.step(weather, &self.cfg).ok()?;
        self.melt.push_back((tick, step.melt_mm));
        Some(step)
    }

    /// Returns the melt of the ticks in `(tick − duration_h, tick]`, mm: the water the pack
    /// released beyond the rain itself (degree-day melt plus rain-on-snow melt).
    pub fn extra_mm(&self, tick: EventTime, duration_h: u32) -> f64 {
        let start = tick.millis() - i64::from(duration_h) * HOUR_MS;
        self.melt
            .iter()
            .filter(|(at, _)| at.millis() > start && *at <= tick)
            .map(|(_, mm)| mm)
            .sum()
    }

    /// Returns the station's temperature at `tick` when its newest reading is recent enough.
    fn fresh_temperature(&self, tick: EventTime) -> Option<f64> {
        let weather = self.weather.as_ref().filter(|held| held.tick >= tick)?;
        let reading = weather.last_observation?;
        if tick.millis() - reading.millis() > self.max_weather_age_ms {
            return None;
        }
        weather.air_temperature_c
    }
}
