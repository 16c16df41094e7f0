//! Lightning ignition risk per fire zone (hazards.md §6.1, §6.2, §6.5): cloud-to-ground strokes are
//! placed in forest/grassland zones (point-in-polygon with a buffer in km), counted by polarity and
//! peak current over sliding windows, scored by the §6.5 design — dry stroke × receptive fuel ×
//! polarity weight — and kept under a holdover watch for days after a qualifying stroke.
//!
//! The priors (2.9 mm, 1.7 mm/h, 1.6 / 5.86 km, 14 days, ~4× LCC for positive flashes) are [C];
//! how §6.5 combines them is an engineering proposal [U], so every cut-off is configurable.
//! Strokes are scored one by one: grouping strokes into flashes (≤ 1 s, ≤ 10 km [U]) is not done.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::boundaries::{bounding_box, polygon_contains, Polygon};
use crate::fire_weather::CnFireLevel;
use crate::fuel_weather::FuelWeatherConfig;
use crate::time::{EventTime, HOUR_MS};
use crate::warning::{Evidence, Level};

/// Kilometres per degree of latitude on a sphere of radius 6371 km (6371 · π / 180) [D].
const KM_PER_DEGREE: f64 = 6371.0 * std::f64::consts::PI / 180.0;

/// Milliseconds in a day.
const DAY_MS: i64 = 24 * HOUR_MS;

/// A forest or grassland fire zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FireZoneId(Arc<str>);

impl FireZoneId {
    /// Wraps an identifier string.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// Returns the identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FireZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lightning ignition-risk policy (`[fire.lightning]` in thresholds.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LightningFireConfig {
    /// A stroke is dry when 24-h rain at its place is below this. Default 2.9 mm: median at
    /// fire-starting flashes [C] (hazards.md §6.2); as a cut-off [U] (§6.5).
    pub dry_rain_24h_mm: f64,
    /// ... and the 2-min rain rate is below this. Default 1.7 mm/h: median at fire-starting
    /// flashes [C] (§6.2); as a cut-off [U] (§6.5).
    pub dry_rain_rate_2min_mm_h: f64,
    /// Zone buffer: strokes within this distance of a zone count for it. Default 1.6 km: P75
    /// flash→fire-start distance [C] (§6.2).
    pub match_radius_km: f64,
    /// A hotspot confirms a zone's qualifying stroke within this distance. Default 5.86 km: P95
    /// [C] (§6.2); red on confirmation [U] (§6.5).
    pub confirm_radius_km: f64,
    /// A zone stays under watch this many days after a qualifying stroke. Default 14: 81–88 % of
    /// lightning fires had a flash within 14 d [C] (§6.2).
    pub holdover_days: u32,
    /// Strokes older than the primary window count half per this many days. Default 3.0 [U] (§6.5).
    pub holdover_half_life_days: f64,
    /// Strokes count in full within this many hours. Default 72 [U] (§6.5).
    pub primary_window_h: u32,
    /// Score weight of a positive stroke (negative: 1). Default 4.0: positive flashes are ~4×
    /// more likely to carry long continuing current [C]; as a weight [U] (§6.2, §6.5).
    pub positive_polarity_weight: f64,
    /// Fuel is receptive when FFMC reaches this. Default 86 [U] (§6.5).
    pub fuel_ffmc_min: f64,
    /// ... or DMC reaches this. Default 20 [U] (§6.5).
    pub fuel_dmc_min: f64,
    /// ... or the Chinese fire-danger level (1..=5) reaches this. Default 3 [U] (§6.5).
    pub fuel_cn_level_min: u8,
    /// Score bounds of blue, yellow and orange. Default [1, 3, 5]: WFAS "extreme" ≈ 1 ignition
    /// per ≤ 5 discharges [C]; as bounds [U] (§6.5).
    pub score_levels: [f64; 3],
    /// The least level of a zone under holdover watch; none keeps the score level. Default blue
    /// [U]: §6.5 keeps cells "hot" for the holdover, the half-life alone would drop them sooner.
    pub holdover_level: Option<Level>,
    /// Sliding windows, in hours, of the stroke counts. Default [1, 24, 72] [U].
    pub count_windows_h: Vec<u32>,
    /// Lower bounds (kA, absolute) of the peak-current classes after the first. Default
    /// [10, 30, 60] [U]: peak current separates fire starters only for positive CG [C] (§6.2).
    pub current_bins_ka: Vec<f64>,
    /// How zones take their fuel state from weather stations and strokes their 24-h rain from
    /// rain gauges.
    pub fuel_weather: FuelWeatherConfig,
}

impl Default for LightningFireConfig {
    fn default() -> Self {
        Self {
            dry_rain_24h_mm: 2.9,
            dry_rain_rate_2min_mm_h: 1.7,
            match_radius_km: 1.6,
            confirm_radius_km: 5.86,
            holdover_days: 14,
            holdover_half_life_days: 3.0,
            primary_window_h: 72,
            positive_polarity_weight: 4.0,
            fuel_ffmc_min: 86.0,
            fuel_dmc_min: 20.0,
            fuel_cn_level_min: 3,
            score_levels: [1.0, 3.0, 5.0],
            holdover_level: Some(Level::Blue),
            count_windows_h: vec![1, 24, 72],
            current_bins_ka: vec![10.0, 30.0, 60.0],
            fuel_weather: FuelWeatherConfig::default(),
        }
    }
}

/// Returns `Err` naming `field` unless `value` is finite and positive.
fn require_positive(field: &str, value: f64) -> Result<(), String> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(format!("{field} must be positive, got {value}"))
    }
}

/// Returns whether `values` increase strictly.
fn increasing(values: &[f64]) -> bool {
    values.windows(2).all(|pair| pair[0] < pair[1])
}

impl LightningFireConfig {
    /// Checks ranges and orderings.
    ///
    /// # Errors
    /// Returns a message naming the first offending field.
    pub fn validate(&self) -> Result<(), String> {
        require_positive("dry-rain-24h-mm", self.dry_rain_24h_mm)?;
        require_positive("dry-rain-rate-2min-mm-h", self.dry_rain_rate_2min_mm_h)?;
        require_positive("match-radius-km", self.match_radius_km)?;
        require_positive("confirm-radius-km", self.confirm_radius_km)?;
        require_positive("holdover-half-life-days", self.holdover_half_life_days)?;
        require_positive("positive-polarity-weight", self.positive_polarity_weight)?;
        if self.primary_window_h == 0
            || i64::from(self.primary_window_h) * HOUR_MS > self.holdover_ms()
        {
            return Err(format!(
                "primary-window-h must be in 1..=24·holdover-days, got {}",
                self.primary_window_h
            ));
        }
        if !(1..=5).contains(&self.fuel_cn_level_min) {
            return Err(format!(
                "fuel-cn-level-min must be 1..=5, got {}",
                self.fuel_cn_level_min
            ));
        }
        if !(self.score_levels[0] > 0.0 && increasing(&self.score_levels)) {
            return Err(format!(
                "score-levels must be positive and increasing, got {:?}",
                self.score_levels
            ));
        }
        if self.count_windows_h.is_empty() || self.count_windows_h.contains(&0) {
            return Err(format!(
                "count-windows-h must be non-empty and positive, got {:?}",
                self.count_windows_h
            ));
        }
        if !(self.current_bins_ka.iter().all(|bound| *bound > 0.0)
            && increasing(&self.current_bins_ka))
        {
            return Err(format!(
                "current-bins-ka must be positive and increasing, got {:?}",
                self.current_bins_ka
            ));
        }
        self.fuel_weather
            .validate()
            .map_err(|error| format!("fuel-weather.{error}"))
    }

    fn holdover_ms(&self) -> i64 {
        i64::from(self.holdover_days) * DAY_MS
    }

    fn primary_ms(&self) -> i64 {
        i64::from(self.primary_window_h) * HOUR_MS
    }

    /// How long strokes are kept: the holdover or the longest count window.
    pub(crate) fn retention_ms(&self) -> i64 {
        let longest = self.count_windows_h.iter().max().copied().unwrap_or(0);
        self.holdover_ms().max(i64::from(longest) * HOUR_MS)
    }

    /// Returns the level of a score: blue/yellow/orange at `score-levels` (§6.5) [U].
    pub fn score_level(&self, score: f64) -> Option<Level> {
        let reached = self
            .score_levels
            .iter()
            .filter(|&&bound| score >= bound)
            .count();
        [Level::Blue, Level::Yellow, Level::Orange]
            .get(reached.checked_sub(1)?)
            .copied()
    }
}

/// Why a stroke, hotspot or zone set was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LightningFireError {
    /// A stroke or hotspot field is out of range or not finite.
    #[error("field {field} out of range: {value}")]
    InvalidField {
        /// The kebab-case field name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// Two zones share an id.
    #[error("duplicate fire zone {zone}")]
    DuplicateZone {
        /// The repeated id.
        zone: FireZoneId,
    },
    /// The zone is not known.
    #[error("unknown fire zone {zone}")]
    UnknownZone {
        /// The id given.
        zone: FireZoneId,
    },
    /// The configuration is invalid.
    #[error("invalid lightning-fire config: {0}")]
    Config(String),
}

/// Checks `(lon, lat)` for a stroke or hotspot.
fn check_position(lon: f64, lat: f64) -> Result<(), LightningFireError> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(LightningFireError::InvalidField {
            field: "lon",
            value: lon,
        });
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(LightningFireError::InvalidField {
            field: "lat",
            value: lat,
        });
    }
    Ok(())
}

/// The fuel of a fire zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FuelKind {
    /// Forest (森林).
    Forest,
    /// Grassland (草原).
    Grassland,
}

/// A forest or grassland polygon set, coordinates `(lon, lat)` WGS84 degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct FireZone {
    /// The zone id.
    pub id: FireZoneId,
    /// Forest or grassland.
    pub fuel: FuelKind,
    /// Polygons, each the outer ring first, then holes.
    pub polygons: Vec<Polygon>,
    bbox: (f64, f64, f64, f64),
}

impl FireZone {
    /// Builds a zone and its bounding box.
    pub fn new(id: FireZoneId, fuel: FuelKind, polygons: Vec<Polygon>) -> Self {
        let bbox = bounding_box(&polygons);
        Self {
            id,
            fuel,
            polygons,
            bbox,
        }
    }

    /// Returns whether `(lon, lat)` is inside the zone or within `buffer_km` of its edge.
    pub fn covers(&self, lon: f64, lat: f64, buffer_km: f64) -> bool {
        let (min_lon, min_lat, max_lon, max_lat) = self.bbox;
        let pad_lat = buffer_km / KM_PER_DEGREE;
        let pad_lon = pad_lat / lat.to_radians().cos().max(1e-6);
        if lon < min_lon - pad_lon
            || lon > max_lon + pad_lon
            || lat < min_lat - pad_lat
            || lat > max_lat + pad_lat
        {
            return false;
        }
        self.distance_km(lon, lat) <= buffer_km
    }

    /// Returns the distance in km from `(lon, lat)` to the zone: 0 inside, else to the nearest
    /// edge (equirectangular projection around the point, fine at buffer scales).
    pub fn distance_km(&self, lon: f64, lat: f64) -> f64 {
        if self
            .polygons
            .iter()
            .any(|polygon| polygon_contains(polygon, lon, lat))
        {
            return 0.0;
        }
        let project = |(x, y): (f64, f64)| {
            (
                (x - lon) * KM_PER_DEGREE * lat.to_radians().cos(),
                (y - lat) * KM_PER_DEGREE,
            )
        };
        self.polygons
            .iter()
            .flatten()
            .flat_map(|ring| ring_edges(ring))
            .map(|(a, b)| origin_to_segment(project(a), project(b)))
            .fold(f64::INFINITY, f64::min)
    }
}

/// Returns the edges of a ring, closing it if it is open.
fn ring_edges(ring: &[(f64, f64)]) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
    let closing = ring
        .last()
        .zip(ring.first())
        .map(|(&last, &first)| (last, first));
    ring.windows(2)
        .map(|pair| (pair[0], pair[1]))
        .chain(closing)
}

/// Returns the distance from the origin to the segment `a`–`b` (planar km).
fn origin_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let along = if length2 > 0.0 {
        (-(a.0 * dx + a.1 * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + along * dx).hypot(a.1 + along * dy)
}

/// Returns the kilometres between two points (equirectangular; for distances of tens of km).
pub(crate) fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let mid_lat = ((a.1 + b.1) / 2.0).to_radians();
    ((b.0 - a.0) * mid_lat.cos() * KM_PER_DEGREE).hypot((b.1 - a.1) * KM_PER_DEGREE)
}

/// The polarity of a stroke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Positive charge lowered to ground.
    Positive,
    /// Negative charge lowered to ground.
    Negative,
}

/// One located lightning stroke (hazards.md §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Stroke {
    /// Stroke time.
    pub time: EventTime,
    /// Longitude, degrees east.
    pub lon: f64,
    /// Latitude, degrees north.
    pub lat: f64,
    /// Absolute peak current, kA.
    pub peak_current_ka: f64,
    /// Polarity.
    pub polarity: Polarity,
    /// Cloud-to-ground (true) or intra-cloud (false).
    pub cloud_to_ground: bool,
}

impl Stroke {
    /// Builds a stroke from a signed peak current, as locator networks report it.
    pub fn from_signed_ka(
        time: EventTime,
        lon: f64,
        lat: f64,
        signed_ka: f64,
        cloud_to_ground: bool,
    ) -> Self {
        let polarity = if signed_ka > 0.0 {
            Polarity::Positive
        } else {
            Polarity::Negative
        };
        Self {
            time,
            lon,
            lat,
            peak_current_ka: signed_ka.abs(),
            polarity,
            cloud_to_ground,
        }
    }

    fn validate(&self) -> Result<(), LightningFireError> {
        check_position(self.lon, self.lat)?;
        if !(self.peak_current_ka >= 0.0 && self.peak_current_ka.is_finite()) {
            return Err(LightningFireError::InvalidField {
                field: "peak-current-ka",
                value: self.peak_current_ka,
            });
        }
        Ok(())
    }
}

/// Rain at a stroke's place and time; unknown values count as dry (conservative) [U].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StrokeRain {
    /// Rain over the 24 h before the stroke, mm.
    pub rain_24h_mm: Option<f64>,
    /// Rain rate over the 2 min around the stroke, mm/h.
    pub rain_rate_2min_mm_h: Option<f64>,
}

/// The fuel state of a zone, from the fire-weather models of the day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FuelState {
    /// Fine Fuel Moisture Code.
    pub ffmc: f64,
    /// Duff Moisture Code.
    pub dmc: f64,
    /// Chinese fire-danger level.
    pub cn_level: CnFireLevel,
}

/// A confirmed smoke or satellite hotspot report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Hotspot {
    /// Report time.
    pub time: EventTime,
    /// Longitude, degrees east.
    pub lon: f64,
    /// Latitude, degrees north.
    pub lat: f64,
}

/// Returns whether a stroke is dry: 24-h rain and 2-min rate both below the cut-offs (§6.5) [U].
pub fn is_dry(rain: &StrokeRain, config: &LightningFireConfig) -> bool {
    let below = |value: Option<f64>, cut: f64| value.is_none_or(|mm| mm < cut);
    below(rain.rain_24h_mm, config.dry_rain_24h_mm)
        && below(rain.rain_rate_2min_mm_h, config.dry_rain_rate_2min_mm_h)
}

/// Returns whether fuel is receptive: FFMC, DMC or the Chinese level at its cut-off (§6.5) [U].
/// A zone without a fuel state counts as receptive (conservative) [U].
pub fn is_receptive(fuel: Option<&FuelState>, config: &LightningFireConfig) -> bool {
    fuel.is_none_or(|fuel| {
        fuel.ffmc >= config.fuel_ffmc_min
            || fuel.dmc >= config.fuel_dmc_min
            || fuel.cn_level.number() >= config.fuel_cn_level_min
    })
}

/// Returns risk(s) = w · dry · fuel of §6.5 [U]: 0 for intra-cloud strokes.
pub fn stroke_risk(
    stroke: &Stroke,
    rain: &StrokeRain,
    fuel: Option<&FuelState>,
    config: &LightningFireConfig,
) -> f64 {
    if !stroke.cloud_to_ground || !is_dry(rain, config) || !is_receptive(fuel, config) {
        return 0.0;
    }
    match stroke.polarity {
        Polarity::Positive => config.positive_polarity_weight,
        Polarity::Negative => 1.0,
    }
}

/// Stroke counts of one zone over one sliding window `(now − window, now]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StrokeCounts {
    /// Window length, hours.
    pub window_h: u32,
    /// Positive CG strokes per peak-current class (below the first bound, then each bound up).
    pub positive_by_current: Vec<u32>,
    /// Negative CG strokes per peak-current class.
    pub negative_by_current: Vec<u32>,
    /// Intra-cloud strokes.
    pub intra_cloud: u32,
}

impl StrokeCounts {
    /// Returns the positive CG strokes of all classes.
    pub fn positive(&self) -> u32 {
        self.positive_by_current.iter().sum()
    }

    /// Returns the negative CG strokes of all classes.
    pub fn negative(&self) -> u32 {
        self.negative_by_current.iter().sum()
    }
}

/// The lightning ignition-risk assessment of one zone at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ZoneAssessment {
    /// The zone.
    pub zone: FireZoneId,
    /// The warning level, if any.
    pub level: Option<Level>,
    /// Σ risk, in full within the primary window, halved per half-life after it.
    pub score: f64,
    /// End of the holdover watch, when a qualifying stroke lies within the holdover.
    pub watch_until: Option<EventTime>,
    /// Whether a hotspot confirmed a qualifying stroke within the primary window (red).
    pub hotspot_confirmed: bool,
    /// Counts per configured window.
    pub counts: Vec<StrokeCounts>,
    /// The comparisons behind the level.
    pub evidence: Vec<Evidence>,
}

/// A stroke as a zone keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ZoneStroke {
    stroke: Stroke,
    risk: f64,
}

/// What one zone remembers.
#[derive(Debug, Clone, Default, PartialEq)]
struct ZoneState {
    /// Strokes in time order (equal times in arrival order).
    strokes: Vec<ZoneStroke>,
    fuel: Option<FuelState>,
    confirmed_at: Option<EventTime>,
}

/// Places strokes in zones and assesses the combined ignition risk (§6.5) per zone.
#[derive(Debug, Clone, PartialEq)]
pub struct LightningFireTracker {
    config: LightningFireConfig,
    zones: Vec<FireZone>,
    states: BTreeMap<FireZoneId, ZoneState>,
}

impl LightningFireTracker {
    /// Builds a tracker over `zones`.
    ///
    /// # Errors
    /// Returns an error for an invalid config or a repeated zone id.
    pub fn try_new(
        config: LightningFireConfig,
        zones: Vec<FireZone>,
    ) -> Result<Self, LightningFireError> {
        config.validate().map_err(LightningFireError::Config)?;
        let mut states = BTreeMap::new();
        for zone in &zones {
            if states
                .insert(zone.id.clone(), ZoneState::default())
                .is_some()
            {
                return Err(LightningFireError::DuplicateZone {
                    zone: zone.id.clone(),
                });
            }
        }
        Ok(Self {
            config,
            zones,
            states,
        })
    }

    /// Returns the policy.
    pub fn config(&self) -> &LightningFireConfig {
        &self.config
    }

    /// Returns the zones, in the order given at construction.
    pub fn zones(&self) -> &[FireZone] {
        &self.zones
    }

    /// Returns the fuel state `zone` is scored with, if it has one.
    pub fn fuel(&self, zone: &FireZoneId) -> Option<&FuelState> {
        self.states.get(zone)?.fuel.as_ref()
    }

    /// Returns the zones covering `(lon, lat)` with the match-radius buffer, in zone order.
    pub fn zones_at(&self, lon: f64, lat: f64) -> Vec<FireZoneId> {
        let buffer = self.config.match_radius_km;
        self.zones
            .iter()
            .filter(|zone| zone.covers(lon, lat, buffer))
            .map(|zone| zone.id.clone())
            .collect()
    }

    /// Sets the fuel state that later strokes in `zone` are scored with.
    ///
    /// # Errors
    /// Returns [`LightningFireError::UnknownZone`] for a zone not given at construction.
    pub fn set_fuel(
        &mut self,
        zone: &FireZoneId,
        fuel: FuelState,
    ) -> Result<(), LightningFireError> {
        let state = self
            .states
            .get_mut(zone)
            .ok_or_else(|| LightningFireError::UnknownZone { zone: zone.clone() })?;
        state.fuel = Some(fuel);
        Ok(())
    }

    /// Adds a stroke to every zone covering it, scored with the rain at the stroke and each zone's
    /// fuel state, and returns those zones.
    ///
    /// # Errors
    /// Returns [`LightningFireError::InvalidField`] for a position or current out of range.
    pub fn observe_stroke(
        &mut self,
        stroke: &Stroke,
        rain: &StrokeRain,
    ) -> Result<Vec<FireZoneId>, LightningFireError> {
        stroke.validate()?;
        let zones = self.zones_at(stroke.lon, stroke.lat);
        for zone in &zones {
            if let Some(state) = self.states.get_mut(zone) {
                let risk = stroke_risk(stroke, rain, state.fuel.as_ref(), &self.config);
                let at = state
                    .strokes
                    .partition_point(|kept| kept.stroke.time <= stroke.time);
                state.strokes.insert(
                    at,
                    ZoneStroke {
                        stroke: *stroke,
                        risk,
                    },
                );
            }
        }
        Ok(zones)
    }

    /// Marks as confirmed every zone with a qualifying stroke within `confirm-radius-km` of the
    /// hotspot and within the holdover before it, and returns those zones (§6.5 red) [U].
    ///
    /// # Errors
    /// Returns [`LightningFireError::InvalidField`] for a position out of range.
    pub fn observe_hotspot(
        &mut self,
        hotspot: &Hotspot,
    ) -> Result<Vec<FireZoneId>, LightningFireError> {
        check_position(hotspot.lon, hotspot.lat)?;
        let (radius, holdover) = (self.config.confirm_radius_km, self.config.holdover_ms());
        let mut confirmed = Vec::new();
        for (zone, state) in &mut self.states {
            let matches = state.strokes.iter().any(|kept| {
                let age = hotspot.time.millis() - kept.stroke.time.millis();
                kept.risk > 0.0
                    && (0..holdover).contains(&age)
                    && distance_km(
                        (kept.stroke.lon, kept.stroke.lat),
                        (hotspot.lon, hotspot.lat),
                    ) <= radius
            });
            if matches {
                state.confirmed_at = Some(
                    state
                        .confirmed_at
                        .map_or(hotspot.time, |at| at.max(hotspot.time)),
                );
                confirmed.push(zone.clone());
            }
        }
        Ok(confirmed)
    }

    /// Drops strokes older than both the holdover and the longest count window before `now`.
    pub fn prune(&mut self, now: EventTime) {
        let oldest_kept = now.millis() - self.config.retention_ms();
        for state in self.states.values_mut() {
            let stale = state
                .strokes
                .partition_point(|kept| kept.stroke.time.millis() <= oldest_kept);
            state.strokes.drain(..stale);
        }
    }

    /// Assesses every zone at `now`, in zone-id order.
    pub fn assess_all(&self, now: EventTime) -> Vec<ZoneAssessment> {
        self.states
            .iter()
            .map(|(zone, state)| assess_zone(zone, state, now, &self.config))
            .collect()
    }

    /// Assesses one zone at `now`; `None` for an unknown zone.
    pub fn assess(&self, zone: &FireZoneId, now: EventTime) -> Option<ZoneAssessment> {
        let state = self.states.get(zone)?;
        Some(assess_zone(zone, state, now, &self.config))
    }
}

/// Returns the decayed weight of a stroke `age_ms` old: 1 in the primary window, halved per
/// half-life after it, 0 past the holdover (§6.5) [U].
fn age_weight(age_ms: i64, config: &LightningFireConfig) -> f64 {
    if !(0..config.holdover_ms()).contains(&age_ms) {
        return 0.0;
    }
    let beyond_primary_days = (age_ms - config.primary_ms()).max(0) as f64 / DAY_MS as f64;
    0.5_f64.powf(beyond_primary_days / config.holdover_half_life_days)
}

fn assess_zone(
    zone: &FireZoneId,
    state: &ZoneState,
    now: EventTime,
    config: &LightningFireConfig,
) -> ZoneAssessment {
    let past = state.strokes.iter().filter(|kept| kept.stroke.time <= now);
    let score: f64 = past
        .clone()
        .map(|kept| kept.risk * age_weight(now.millis() - kept.stroke.time.millis(), config))
        .sum();
    // Strokes are in time order, so the last qualifying one is the latest.
    let last_qualifying = past
        .filter(|kept| kept.risk > 0.0)
        .map(|kept| kept.stroke.time)
        .next_back();
    let watch_until = last_qualifying
        .map(|time| time.plus_ms(config.holdover_ms()))
        .filter(|until| now < *until);
    let hotspot_confirmed = watch_until.is_some()
        && state
            .confirmed_at
            .is_some_and(|at| at <= now && now.millis() - at.millis() < config.primary_ms());
    let level = combined_level(score, watch_until.is_some(), hotspot_confirmed, config);
    let counts = config
        .count_windows_h
        .iter()
        .map(|&hours| count_window(&state.strokes, now, hours, config))
        .collect();
    ZoneAssessment {
        zone: zone.clone(),
        level,
        score,
        watch_until,
        hotspot_confirmed,
        counts,
        evidence: evidence(score, level, watch_until, now, config),
    }
}

/// Red on a confirmed hotspot, else the score level raised to the holdover level under watch.
fn combined_level(
    score: f64,
    under_watch: bool,
    confirmed: bool,
    config: &LightningFireConfig,
) -> Option<Level> {
    if confirmed {
        return Some(Level::Red);
    }
    let floor = config.holdover_level.filter(|_| under_watch);
    config.score_level(score).max(floor)
}

fn count_window(
    strokes: &[ZoneStroke],
    now: EventTime,
    hours: u32,
    config: &LightningFireConfig,
) -> StrokeCounts {
    let classes = config.current_bins_ka.len() + 1;
    let mut counts = StrokeCounts {
        window_h: hours,
        positive_by_current: vec![0; classes],
        negative_by_current: vec![0; classes],
        intra_cloud: 0,
    };
    let start = now.millis() - i64::from(hours) * HOUR_MS;
    for kept in strokes
        .iter()
        .map(|kept| kept.stroke)
        .filter(|s| s.time <= now && s.time.millis() > start)
    {
        let class = config
            .current_bins_ka
            .iter()
            .filter(|&&bound| kept.peak_current_ka >= bound)
            .count();
        match (kept.cloud_to_ground, kept.polarity) {
            (false, _) => counts.intra_cloud += 1,
            (true, Polarity::Positive) => counts.positive_by_current[class] += 1,
            (true, Polarity::Negative) => counts.negative_by_current[class] += 1,
        }
    }
    counts
}

fn evidence(
    score: f64,
    level: Option<Level>,
    watch_until: Option<EventTime>,
    now: EventTime,
    config: &LightningFireConfig,
) -> Vec<Evidence> {
    let rank = match level {
        Some(Level::Yellow) => 1,
        Some(Level::Orange | Level::Red) => 2,
        _ => 0,
    };
    let item = |quantity: &str, value: f64, threshold: f64| Evidence {
        quantity: quantity.to_owned(),
        value,
        threshold,
        completeness: 1.0,
        stations: Vec::new(),
    };
    let mut out = vec![item("ignition_score", score, config.score_levels[rank])];
    if let Some(until) = watch_until {
        let days_left = (until.millis() - now.millis()) as f64 / DAY_MS as f64;
        out.push(item(
            "holdover_days_left",
            days_left,
            f64::from(config.holdover_days),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
