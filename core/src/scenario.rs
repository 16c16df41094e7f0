//! The built-in storm scenario: a convective cell crossing the densest basin cluster of a region,
//! as the sensor gateways would publish it, with a handful of each kind of bad message mixed in.
//!
//! The scenario is deterministic: the same region and [`StormConfig`] give the same messages. The
//! only randomness is a fixed-seed splitmix64 generator, and every map iterated is a `BTreeMap`.
//!
//! Timeline (defaults): one hour of dry reports, a 3.5 h storm, then nine dry hours so that every
//! 6 h window drains and every warning can be downgraded and cancelled before the end.
//!
//! - Rain gauges within [`StormConfig::gauge_reach_km`] of the track report every 5 min; the
//!   depth is the cell's rain rate integrated over the 5 min at the gauge, rounded to 0.1 mm.
//!   Other gauges stay silent.
//! - Water-level stations of every basin the storm touches report the stage every 5 min: base
//!   stage plus a linear-reservoir response to the basin's areal rain.
//! - Weather stations within [`StormConfig::weather_reach_km`] of the track report every 10 min.
//! - The lightning location network (`LLS-XJ`) reports a burst of cloud-to-ground strokes onto
//!   the fire zone [`LIGHTNING_ZONE`], dry forest under the storm's southern edge, over the middle
//!   hour of the rain; a region without that zone gets no strokes.
//! - The GNSS and crack-meter points of every monitored slope report every 10 min. Those of
//!   [`LANDSLIDE_SLOPE`], under the storm, creep at the slope's v0 until the rain starts, then
//!   accelerate by Fukuzono's α = 2 law (hazards.md §5.1), to over three times v0 by the rain
//!   peak and from there towards a failure [`FAILURE_AFTER_PEAK_MS`] after it, and fall silent
//!   at the failure: the slope has failed. The other slopes' points report noise about a fixed position. InSAR points never
//!   report: their revisit is days (hazards.md §5.4).
//!
//! Each message says in [`ScenarioMessage::anomaly`] what a correct consumer must do with it:
//! [`Anomaly::None`] and [`Anomaly::OutOfOrder`] are applied, every other kind is rejected with
//! the matching reason. Rejected readings replace the on-time send of the same reading (except
//! the extra [`Anomaly::Duplicate`] copies and the [`Anomaly::Malformed`] and
//! [`Anomaly::UnknownStation`] messages), so every applied reading is applied exactly once.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use crate::boundaries::polygon_contains;
use crate::ids::{AreaCode, BasinId, GatewayId, StationId};
use crate::landslide::SensorKind;
use crate::observation::{Observation, Reading};
use crate::region::{Basin, FireZoneSite, Region, SlopePoint, SoilState, Station, StationKind};
use crate::time::{EventTime, HOUR_MS, MINUTE_MS, SECOND_MS};

/// Interval of rain-gauge and water-level reports.
const RAIN_STEP_MS: i64 = 5 * MINUTE_MS;
/// `interval_s` of every rain report.
const RAIN_INTERVAL_S: u32 = 300;
/// Interval of weather-station reports.
const WEATHER_STEP_MS: i64 = 10 * MINUTE_MS;
/// Delay between the event time and the gateway's send of an on-time reading.
const SEND_DELAY_MS: i64 = 20 * SECOND_MS;
/// Delay of a withheld reading: far beyond the 30 min allowed lateness.
const LATE_DELAY_MS: i64 = 3 * HOUR_MS;
/// Delay of the retried copy of a duplicated reading.
const DUPLICATE_DELAY_MS: i64 = 90 * SECOND_MS;
/// How far ahead of its send time a future-stamped reading claims to be.
const FUTURE_SKEW_MS: i64 = 2 * HOUR_MS;
/// A 5-min depth far above the 50.8·√5 ≈ 113.6 mm plausibility bound (hazards.md, QC Q0).
const OUT_OF_RANGE_MM: f64 = 250.0;
/// The value the stuck gauge repeats.
const STUCK_MM: f64 = 1.5;
/// Identical non-zero repeats QC accepts before it calls a sensor stuck.
const STUCK_ACCEPTED: usize = 5;
/// Repeats of the stuck gauge beyond those QC accepts.
const STUCK_REJECTED: usize = 5;
/// Longest run of identical non-zero values left in a clean series, well below the QC limit.
const MAX_CLEAN_RUN: usize = 2;
// A rejected reading can join two clean runs; even then QC must not see a stuck sensor.
const _: () = assert!(2 * MAX_CLEAN_RUN < STUCK_ACCEPTED);
/// The station id no region holds.
const UNKNOWN_STATION: &str = "R99999";
/// Areal storm total above which a basin counts as touched and its water levels report.
const TOUCHED_MIN_MM: f64 = 1.0;
/// Exponent of stage against discharge (a rating curve Q ∝ h^1.67 inverted).
const RATING_EXPONENT: f64 = 0.6;
/// Readings withheld until too late.
const LATE_COUNT: usize = 6;
/// Readings sent 10–15 min after their event time.
const OUT_OF_ORDER_COUNT: usize = 8;
/// Readings sent twice.
const DUPLICATE_COUNT: usize = 8;
/// Readings replaced by an implausible depth.
const OUT_OF_RANGE_COUNT: usize = 5;
/// Readings stamped two hours ahead of their send time.
const FUTURE_COUNT: usize = 5;
/// Undecodable messages.
const MALFORMED_COUNT: usize = 6;
/// Readings from a station the region does not hold.
const UNKNOWN_COUNT: usize = 5;
/// The fire zone the lightning burst strikes: forest about 0.3° south of the default track.
pub const LIGHTNING_ZONE: &str = "FZ-GONGLIU-01";
/// Station id and Kafka key of the lightning location network.
const LIGHTNING_STATION: &str = "LLS-XJ";
/// Gateway of the lightning location network.
const LIGHTNING_GATEWAY: &str = "GW-LLS";
/// Strokes in the burst.
const LIGHTNING_STROKES: usize = 40;
/// Positive strokes among them (about a third; the rest are negative).
const LIGHTNING_POSITIVE: usize = 13;
/// The burst spans this long, centred on the middle of the rain.
const LIGHTNING_SPAN_MS: i64 = HOUR_MS;
/// Peak current range of positive strokes, kA.
const POSITIVE_KA: (f64, f64) = (40.0, 120.0);
/// Peak current range of negative strokes, kA.
const NEGATIVE_KA: (f64, f64) = (10.0, 40.0);
/// Delay between a stroke and the network's report: locators publish within seconds.
const LIGHTNING_SEND_DELAY_MS: i64 = 5 * SECOND_MS;
/// Candidate points tried per stroke before falling back to the ring's mean position.
const LIGHTNING_TRIES: usize = 1000;
/// The slope that accelerates towards failure: under the storm, in basin B0009 of 尼勒克县.
pub const LANDSLIDE_SLOPE: &str = "SL-NILKA-01";
/// The accelerating slope fails this long after the middle of the rain (the rain peak): late
/// enough for the landslide model, whose first velocity needs 80 % of a 6-h span of readings and
/// whose first failure time needs 6 h of those velocities (`landslide.rs`, [U] defaults), to
/// warn orange and then red before the failure, with the points reporting from the scenario start.
pub const FAILURE_AFTER_PEAK_MS: i64 = 10 * HOUR_MS;
/// While it rains, the accelerating slope first heads for a failure this long after the rain
/// starts; short, so that the slope moves at over three times v0 by the rain peak.
const FIRST_STAGE_FAILURE_MS: i64 = 2 * HOUR_MS + 30 * MINUTE_MS;
/// Interval of deformation reports.
const DEFORMATION_STEP_MS: i64 = 10 * MINUTE_MS;
/// Half-width of the uniform noise on each GNSS component, mm. Far below the millimetres of
/// real GNSS, so that the dozen millimetres the designated slope slides within the scenario's hours
/// stand clear of the noise; the landslide model's handling of ±2 mm over days is tested in
/// `landslide/tests.rs`.
const GNSS_NOISE_MM: f64 = 0.002;
/// Half-width of the uniform noise of a crack meter, mm.
const CRACK_NOISE_MM: f64 = 0.001;
/// Settlement of the GNSS antenna per mm of sliding.
const SETTLEMENT_PER_MM: f64 = 0.3;
/// Kilometres per degree of latitude.
const KM_PER_DEG_LAT: f64 = 110.574;
/// Kilometres per degree of longitude at the equator.
const KM_PER_DEG_LON: f64 = 111.320;

/// The Kafka topic an observation is published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObservationTopic {
    /// Rain-gauge readings.
    Rainfall,
    /// River and reservoir stages.
    WaterLevel,
    /// Surface weather.
    Weather,
    /// Located lightning strokes.
    Lightning,
    /// Slope deformation (GNSS, crack meters, InSAR).
    Deformation,
}

impl ObservationTopic {
    /// Returns the topic name.
    pub fn name(&self) -> &'static str {
        match self {
            ObservationTopic::Rainfall => "obs.rainfall",
            ObservationTopic::WaterLevel => "obs.water-level",
            ObservationTopic::Weather => "obs.weather",
            ObservationTopic::Lightning => "obs.lightning",
            ObservationTopic::Deformation => "obs.deformation",
        }
    }
}

/// The wire format a gateway chose for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encoding {
    /// Protobuf `tianshan.v1.Observation`.
    Protobuf,
    /// JSON with the protobuf field names.
    Json,
}

/// What a scenario message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioPayload {
    /// A well-formed observation, to be encoded in the message's [`Encoding`].
    Observation(Observation),
    /// Bytes that are not a valid message, sent as they are.
    Raw(Vec<u8>),
}

/// What is wrong with a message, and so what a correct consumer does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anomaly {
    /// A clean reading, sent 20 s after its event time: applied.
    None,
    /// A reading withheld and sent 3 h after its event time: rejected as too late.
    Late,
    /// A reading sent 10–15 min after its event time, within the allowed lateness: applied.
    OutOfOrder,
    /// The second copy of a reading already sent, same sequence: rejected as a duplicate.
    Duplicate,
    /// A gauge repeating the same non-zero value: these repeats come after the five identical
    /// ones QC accepts (which are marked [`Anomaly::None`]) and are rejected as stuck.
    StuckSensor,
    /// Bytes that decode neither as protobuf nor as JSON: rejected as malformed.
    Malformed,
    /// A reading from a station the region does not hold: rejected.
    UnknownStation,
    /// A physically implausible depth (250 mm in 5 min): rejected by QC.
    OutOfRange,
    /// A reading whose event time is 2 h after its send time: rejected by QC.
    FutureTimestamp,
}

impl Anomaly {
    /// All kinds, in a stable order.
    pub const ALL: [Anomaly; 9] = [
        Anomaly::None,
        Anomaly::Late,
        Anomaly::OutOfOrder,
        Anomaly::Duplicate,
        Anomaly::StuckSensor,
        Anomaly::Malformed,
        Anomaly::UnknownStation,
        Anomaly::OutOfRange,
        Anomaly::FutureTimestamp,
    ];
}

/// One message as a sensor gateway publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioMessage {
    /// Topic it is published to.
    pub topic: ObservationTopic,
    /// Kafka key: the station id.
    pub key: String,
    /// When the gateway sends it; becomes the Kafka timestamp.
    pub sent_at: EventTime,
    /// The gateway's wire format for this message.
    pub encoding: Encoding,
    /// The observation, or bytes that are not one.
    pub payload: ScenarioPayload,
    /// What is wrong with it, if anything.
    pub anomaly: Anomaly,
}

impl ScenarioMessage {
    /// Returns the observation carried, if the payload is one.
    pub fn observation(&self) -> Option<&Observation> {
        match &self.payload {
            ScenarioPayload::Observation(obs) => Some(obs),
            ScenarioPayload::Raw(_) => None,
        }
    }

    /// Returns the sort key of the message stream: send time, topic, key, sequence.
    fn sort_key(&self) -> (EventTime, ObservationTopic, &str, u64) {
        let sequence = self.observation().map_or(0, |obs| obs.sequence);
        (self.sent_at, self.topic, self.key.as_str(), sequence)
    }
}

/// A storm replay: every message of the gateways, sorted by `(sent_at, topic, key, sequence)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Start of the scenario; the first reports cover the 5 min after it.
    pub start: EventTime,
    /// Event time of the last regular reports.
    pub end: EventTime,
    /// The messages in send order.
    pub messages: Vec<ScenarioMessage>,
}

impl Scenario {
    /// Returns how many messages carry `anomaly`.
    pub fn count(&self, anomaly: Anomaly) -> usize {
        self.messages
            .iter()
            .filter(|m| m.anomaly == anomaly)
            .count()
    }

    /// Returns how many messages carry a well-formed observation (anomalous or not).
    pub fn observations(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.observation().is_some())
            .count()
    }
}

/// The storm: where and when the cell moves, how strong it is, and who reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StormConfig {
    /// Start of the scenario (default 2024-07-01T16:00:00+08:00).
    pub start: EventTime,
    /// Basin the track is centred on; `None` (or a basin the region lacks) picks the basin with
    /// the most other basins within `cluster_radius_km`.
    pub centre_basin: Option<BasinId>,
    /// Basins within this distance of the centre basin form the cluster the track crosses.
    pub cluster_radius_km: f64,
    /// Shift of the track to the left of its heading (north of an eastward track), in km, so the
    /// cluster sees a gradient from a direct hit to a glancing blow.
    pub track_offset_km: f64,
    /// Speed of the cell along its straight track, in km/h.
    pub speed_km_h: f64,
    /// e-folding radius of the Gaussian rain-rate field, in km.
    pub radius_km: f64,
    /// Rain rate at the cell centre, in mm/h.
    pub peak_mm_h: f64,
    /// Dry reports before the rain, in milliseconds.
    pub dry_before_ms: i64,
    /// How long the cell rains, in milliseconds; the track length is speed × duration.
    pub rain_ms: i64,
    /// Dry reports after the rain, in milliseconds (at least 8 h, so 6 h windows drain).
    pub dry_after_ms: i64,
    /// Rain gauges within this distance of the track report; the others stay silent.
    pub gauge_reach_km: f64,
    /// Weather stations within this distance of the track report.
    pub weather_reach_km: f64,
    /// Seed of the generator that picks anomalies and sensor noise.
    pub seed: u64,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            // 2024-07-01T16:00:00+08:00
            start: EventTime(1_719_820_800_000),
            centre_basin: None,
            cluster_radius_km: 20.0,
            track_offset_km: 8.0,
            speed_km_h: 20.0,
            radius_km: 15.0,
            peak_mm_h: 40.0,
            dry_before_ms: HOUR_MS,
            rain_ms: 3 * HOUR_MS + 30 * MINUTE_MS,
            dry_after_ms: 9 * HOUR_MS,
            gauge_reach_km: 120.0,
            weather_reach_km: 45.0,
            seed: 0x7469_616e_7368_616e,
        }
    }
}

/// Builds the storm scenario over `region`.
///
/// The track is a straight line along the principal axis of the cluster's basin centroids,
/// through their mean shifted by [`StormConfig::track_offset_km`], travelled west to east. A
/// region without basins gives a scenario without messages.
pub fn storm_scenario(region: &Region, cfg: &StormConfig) -> Scenario {
    let timeline = Timeline::new(cfg);
    let Some(track) = Track::choose(region, cfg) else {
        return Scenario {
            start: timeline.start,
            end: timeline.end(),
            messages: Vec::new(),
        };
    };
    let cell = Cell {
        track: &track,
        cfg,
        rain_start_ms: timeline.rain_start_ms(),
    };
    let mut rng = SplitMix64(cfg.seed);
    let gauges = reporting_gauges(region, &track, &cell, &timeline, cfg.gauge_reach_km);
    let plan = AnomalyPlan::choose(&gauges, &timeline, &mut rng);

    let mut messages = Vec::new();
    emit_rainfall(&gauges, &plan, &timeline, &mut messages);
    emit_water_levels(region, &gauges, &timeline, &mut rng, &mut messages);
    emit_weather(region, &track, &cell, &timeline, &mut rng, &mut messages);
    emit_malformed(&gauges, &timeline, &mut rng, &mut messages);
    emit_unknown_station(&timeline, &mut rng, &mut messages);
    // Last, so the strokes draw from the generator after everything else and leave every
    // earlier message as it was before the burst existed.
    emit_lightning(region, &timeline, &mut rng, &mut messages);
    // The slopes draw from a stream of their own, so they neither move the strokes nor depend
    // on whether the region holds the lightning zone.
    emit_deformation(
        region,
        &timeline,
        &mut SplitMix64(cfg.seed.wrapping_add(1)),
        &mut messages,
    );
    messages.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Scenario {
        start: timeline.start,
        end: timeline.end(),
        messages,
    }
}

/// The report grid: 5-min ticks after `start`.
struct Timeline {
    start: EventTime,
    dry_before_ms: i64,
    rain_ms: i64,
    ticks: usize,
}

impl Timeline {
    fn new(cfg: &StormConfig) -> Self {
        let total_ms = (cfg.dry_before_ms + cfg.rain_ms + cfg.dry_after_ms).max(0);
        Self {
            start: cfg.start,
            dry_before_ms: cfg.dry_before_ms.max(0),
            rain_ms: cfg.rain_ms.max(0),
            ticks: usize::try_from(total_ms / RAIN_STEP_MS).unwrap_or(0),
        }
    }

    /// Returns the event time of 5-min report `tick` (from 0): the end of its interval.
    fn tick_time(&self, tick: usize) -> EventTime {
        self.start.plus_ms((tick as i64 + 1) * RAIN_STEP_MS)
    }

    fn end(&self) -> EventTime {
        self.start.plus_ms(self.ticks as i64 * RAIN_STEP_MS)
    }

    fn rain_start_ms(&self) -> i64 {
        self.start.millis() + self.dry_before_ms
    }

    /// Returns the ticks whose interval overlaps the rain.
    fn rain_ticks(&self) -> std::ops::Range<usize> {
        let first = usize::try_from(self.dry_before_ms / RAIN_STEP_MS).unwrap_or(0);
        let last = usize::try_from((self.dry_before_ms + self.rain_ms) / RAIN_STEP_MS).unwrap_or(0);
        first.min(self.ticks)..last.min(self.ticks)
    }
}

/// A local equirectangular projection to kilometres, accurate enough within a few hundred km.
#[derive(Debug, Clone, Copy)]
struct Projection {
    lon0: f64,
    lat0: f64,
    km_per_deg_lon: f64,
}

impl Projection {
    fn centred_at(lon0: f64, lat0: f64) -> Self {
        Self {
            lon0,
            lat0,
            km_per_deg_lon: KM_PER_DEG_LON * lat0.to_radians().cos(),
        }
    }

    fn xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        (
            (lon - self.lon0) * self.km_per_deg_lon,
            (lat - self.lat0) * KM_PER_DEG_LAT,
        )
    }
}

/// Distance in km between two points given in degrees.
fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let projection = Projection::centred_at(a.0, (a.1 + b.1) / 2.0);
    let dx = (b.0 - a.0) * projection.km_per_deg_lon;
    let dy = (b.1 - a.1) * KM_PER_DEG_LAT;
    dx.hypot(dy)
}

/// The straight path of the cell centre, in projected km.
#[derive(Debug, Clone, Copy)]
struct Track {
    projection: Projection,
    from: (f64, f64),
    direction: (f64, f64),
    length_km: f64,
}

impl Track {
    /// Picks the cluster and lays the track through it, or `None` if the region has no basins.
    fn choose(region: &Region, cfg: &StormConfig) -> Option<Track> {
        let centre = cfg
            .centre_basin
            .as_ref()
            .and_then(|id| region.basins.get(id))
            .or_else(|| densest_basin(region, cfg.cluster_radius_km))?;
        let cluster: Vec<(f64, f64)> = region
            .basins
            .values()
            .map(|basin| (basin.lon, basin.lat))
            .filter(|&p| distance_km((centre.lon, centre.lat), p) <= cfg.cluster_radius_km)
            .collect();
        let n = cluster.len().max(1) as f64;
        let lon0 = cluster.iter().map(|p| p.0).sum::<f64>() / n;
        let lat0 = cluster.iter().map(|p| p.1).sum::<f64>() / n;
        let projection = Projection::centred_at(lon0, lat0);
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for &(lon, lat) in &cluster {
            let (x, y) = projection.xy(lon, lat);
            sxx += x * x;
            syy += y * y;
            sxy += x * y;
        }
        // Principal axis of the centroids; a round or single-basin cluster is crossed due east.
        let direction = if sxx + syy > 1e-6 {
            let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
            let (dx, dy) = (angle.cos(), angle.sin());
            if dx < 0.0 {
                (-dx, -dy)
            } else {
                (dx, dy)
            }
        } else {
            (1.0, 0.0)
        };
        let length_km = cfg.speed_km_h.max(0.0) * cfg.rain_ms.max(0) as f64 / HOUR_MS as f64;
        let left = (-direction.1, direction.0);
        let from = (
            -direction.0 * length_km / 2.0 + left.0 * cfg.track_offset_km,
            -direction.1 * length_km / 2.0 + left.1 * cfg.track_offset_km,
        );
        Some(Track {
            projection,
            from,
            direction,
            length_km,
        })
    }

    /// Returns the cell centre after `fraction` (0–1) of the track.
    fn at(&self, fraction: f64) -> (f64, f64) {
        let along = self.length_km * fraction.clamp(0.0, 1.0);
        (
            self.from.0 + self.direction.0 * along,
            self.from.1 + self.direction.1 * along,
        )
    }

    /// Returns the distance in km from the projected point `p` to the track segment.
    fn distance_km(&self, p: (f64, f64)) -> f64 {
        let (dx, dy) = (p.0 - self.from.0, p.1 - self.from.1);
        let along = (dx * self.direction.0 + dy * self.direction.1).clamp(0.0, self.length_km);
        let (cx, cy) = self.at(if self.length_km > 0.0 {
            along / self.length_km
        } else {
            0.0
        });
        (p.0 - cx).hypot(p.1 - cy)
    }

    fn station_xy(&self, station: &Station) -> (f64, f64) {
        self.projection.xy(station.lon, station.lat)
    }
}

/// Returns the basin with the most other basins within `radius_km` (the first by id on ties).
fn densest_basin(region: &Region, radius_km: f64) -> Option<&Basin> {
    let mut best: Option<(&Basin, usize)> = None;
    for basin in region.basins.values() {
        let neighbours = region
            .basins
            .values()
            .filter(|other| {
                distance_km((basin.lon, basin.lat), (other.lon, other.lat)) <= radius_km
            })
            .count();
        if best.is_none_or(|(_, most)| neighbours > most) {
            best = Some((basin, neighbours));
        }
    }
    best.map(|(basin, _)| basin)
}

/// The moving rain cell: a Gaussian rain-rate field along the track, ramped in and out.
struct Cell<'a> {
    track: &'a Track,
    cfg: &'a StormConfig,
    rain_start_ms: i64,
}

impl Cell<'_> {
    /// Returns the rain rate in mm/h at projected point `p` at `t_ms` (epoch milliseconds).
    fn rate_mm_h(&self, p: (f64, f64), t_ms: f64) -> f64 {
        let rain_ms = self.cfg.rain_ms as f64;
        let since = t_ms - self.rain_start_ms as f64;
        if rain_ms <= 0.0 || since < 0.0 || since > rain_ms {
            return 0.0;
        }
        // The cell grows over its first half hour and decays over its last, so no gauge sees
        // rain switch on or off in one step.
        let ramp_ms = (30 * MINUTE_MS) as f64;
        let ramp = (since.min(rain_ms - since) / ramp_ms).min(1.0);
        let envelope = (ramp * PI / 2.0).sin().powi(2);
        let (cx, cy) = self.track.at(since / rain_ms);
        let r = (p.0 - cx).hypot(p.1 - cy) / self.cfg.radius_km.max(0.1);
        self.cfg.peak_mm_h * envelope * (-r * r).exp()
    }

    /// Returns the depth in mm at `p` over the 5 min ending at `end`, by the midpoint rule.
    fn depth_mm(&self, p: (f64, f64), end: EventTime) -> f64 {
        const STEPS: i64 = 10;
        let step_ms = RAIN_STEP_MS / STEPS;
        (0..STEPS)
            .map(|k| {
                let mid = (end.millis() - RAIN_STEP_MS + k * step_ms) as f64 + step_ms as f64 / 2.0;
                self.rate_mm_h(p, mid) * step_ms as f64 / HOUR_MS as f64
            })
            .sum()
    }
}

/// A rain gauge that reports, with its clean 5-min series.
struct Gauge<'a> {
    station: &'a Station,
    gateway: GatewayId,
    encoding: Encoding,
    distance_km: f64,
    series: Vec<f64>,
}

impl Gauge<'_> {
    fn is_wet(&self) -> bool {
        self.series.iter().any(|&mm| mm > 0.0)
    }
}

/// Returns the gateway of a station's county, and its wire format (see [`county_gateway`]).
fn gateway_of(station: &Station) -> (GatewayId, Encoding) {
    county_gateway(&station.county)
}

/// Returns the gateway of a county, and its wire format: gateways of counties whose code ends in
/// an odd digit run older firmware that sends JSON.
fn county_gateway(county: &AreaCode) -> (GatewayId, Encoding) {
    let code = county.as_str();
    let odd = code
        .bytes()
        .last()
        .is_some_and(|digit| digit.is_ascii_digit() && (digit - b'0') % 2 == 1);
    let encoding = if odd {
        Encoding::Json
    } else {
        Encoding::Protobuf
    };
    (GatewayId::new(format!("GW-{code}")), encoding)
}

/// Rounds to one decimal.
fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Returns the rain gauges within `reach_km` of the track, with their clean series.
fn reporting_gauges<'a>(
    region: &'a Region,
    track: &Track,
    cell: &Cell<'_>,
    timeline: &Timeline,
    reach_km: f64,
) -> Vec<Gauge<'a>> {
    region
        .stations
        .values()
        .filter(|station| station.kind == StationKind::Rain)
        .filter_map(|station| {
            let p = track.station_xy(station);
            let distance_km = track.distance_km(p);
            if distance_km > reach_km {
                return None;
            }
            let mut series: Vec<f64> = (0..timeline.ticks)
                .map(|tick| round1(cell.depth_mm(p, timeline.tick_time(tick))))
                .collect();
            break_identical_runs(&mut series);
            let (gateway, encoding) = gateway_of(station);
            Some(Gauge {
                station,
                gateway,
                encoding,
                distance_km,
                series,
            })
        })
        .collect()
}

/// Nudges a clean series so no non-zero value repeats more than [`MAX_CLEAN_RUN`] times in a
/// row: a smooth field rounded to 0.1 mm would otherwise look like a stuck sensor to QC.
fn break_identical_runs(series: &mut [f64]) {
    let mut run = 0;
    let mut previous = f64::NAN;
    for value in series.iter_mut() {
        if *value > 0.0 && *value == previous {
            run += 1;
            if run > MAX_CLEAN_RUN {
                *value = round1(*value + 0.1);
                run = 1;
            }
        } else {
            run = 1;
        }
        previous = *value;
    }
}

/// What happens to one rain report instead of a clean on-time send.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    Late,
    OutOfOrder { delay_ms: i64 },
    Duplicate,
    OutOfRange,
    Future,
    Stuck(Anomaly),
}

/// The rain reports that are sent badly, by (gauge index, tick).
struct AnomalyPlan {
    fates: BTreeMap<(usize, usize), Fate>,
}

impl AnomalyPlan {
    /// Picks distinct gauges for each kind, so no gauge loses more than one report in an hour,
    /// except the stuck gauge, the farthest dry one from the track.
    fn choose(gauges: &[Gauge<'_>], timeline: &Timeline, rng: &mut SplitMix64) -> Self {
        let mut fates = BTreeMap::new();
        let stuck = gauges
            .iter()
            .enumerate()
            .filter(|(_, gauge)| !gauge.is_wet())
            .fold(
                None,
                |best: Option<(usize, f64)>, (index, gauge)| match best {
                    Some((_, far)) if far >= gauge.distance_km => best,
                    _ => Some((index, gauge.distance_km)),
                },
            )
            .map(|(index, _)| index);
        if let Some(index) = stuck {
            let first = timeline.rain_ticks().start;
            for (offset, tick) in (first..timeline.ticks)
                .take(STUCK_ACCEPTED + STUCK_REJECTED)
                .enumerate()
            {
                let anomaly = if offset < STUCK_ACCEPTED {
                    Anomaly::None
                } else {
                    Anomaly::StuckSensor
                };
                fates.insert((index, tick), Fate::Stuck(anomaly));
            }
        }

        let mut wet: Vec<usize> = (0..gauges.len()).filter(|&i| gauges[i].is_wet()).collect();
        rng.shuffle(&mut wet);
        let mut wet = wet.into_iter();
        let wet_kinds = [(LATE_COUNT, Fate::Late), (DUPLICATE_COUNT, Fate::Duplicate)];
        for (count, fate) in wet_kinds {
            for index in wet.by_ref().take(count) {
                fates.insert((index, wet_tick(&gauges[index], rng)), fate);
            }
        }
        for index in wet.by_ref().take(OUT_OF_ORDER_COUNT) {
            let delay_ms = (10 + rng.below(6) as i64) * MINUTE_MS;
            fates.insert(
                (index, wet_tick(&gauges[index], rng)),
                Fate::OutOfOrder { delay_ms },
            );
        }

        let mut dry: Vec<usize> = (0..gauges.len())
            .filter(|&i| !gauges[i].is_wet() && Some(i) != stuck)
            .collect();
        rng.shuffle(&mut dry);
        let mut dry = dry.into_iter();
        let rain_ticks = timeline.rain_ticks();
        let span = rain_ticks.len().max(1);
        for (count, fate) in [
            (OUT_OF_RANGE_COUNT, Fate::OutOfRange),
            (FUTURE_COUNT, Fate::Future),
        ] {
            for index in dry.by_ref().take(count) {
                let tick =
                    (rain_ticks.start + rng.below(span)).min(timeline.ticks.saturating_sub(1));
                fates.insert((index, tick), fate);
            }
        }
        Self { fates }
    }
}

/// Picks a tick at which `gauge` measured rain.
fn wet_tick(gauge: &Gauge<'_>, rng: &mut SplitMix64) -> usize {
    let wet: Vec<usize> = (0..gauge.series.len())
        .filter(|&tick| gauge.series[tick] > 0.0)
        .collect();
    wet[rng.below(wet.len())]
}

/// Appends the rain reports, clean or as their plan says.
fn emit_rainfall(
    gauges: &[Gauge<'_>],
    plan: &AnomalyPlan,
    timeline: &Timeline,
    out: &mut Vec<ScenarioMessage>,
) {
    for (index, gauge) in gauges.iter().enumerate() {
        for (tick, &mm) in gauge.series.iter().enumerate() {
            let event_time = timeline.tick_time(tick);
            let mut obs = Observation {
                station: gauge.station.id.clone(),
                event_time,
                gateway: gauge.gateway.clone(),
                sequence: tick as u64 + 1,
                reading: Reading::Rainfall {
                    mm,
                    interval_s: RAIN_INTERVAL_S,
                },
            };
            let on_time = event_time.plus_ms(SEND_DELAY_MS);
            let message =
                |obs: Observation, sent_at: EventTime, anomaly: Anomaly| ScenarioMessage {
                    topic: ObservationTopic::Rainfall,
                    key: gauge.station.id.to_string(),
                    sent_at,
                    encoding: gauge.encoding,
                    payload: ScenarioPayload::Observation(obs),
                    anomaly,
                };
            match plan.fates.get(&(index, tick)) {
                None => out.push(message(obs, on_time, Anomaly::None)),
                Some(Fate::Late) => out.push(message(
                    obs,
                    event_time.plus_ms(LATE_DELAY_MS),
                    Anomaly::Late,
                )),
                Some(Fate::OutOfOrder { delay_ms }) => {
                    out.push(message(
                        obs,
                        event_time.plus_ms(*delay_ms),
                        Anomaly::OutOfOrder,
                    ));
                }
                Some(Fate::Duplicate) => {
                    out.push(message(obs.clone(), on_time, Anomaly::None));
                    out.push(message(
                        obs,
                        on_time.plus_ms(DUPLICATE_DELAY_MS),
                        Anomaly::Duplicate,
                    ));
                }
                Some(Fate::OutOfRange) => {
                    obs.reading = Reading::Rainfall {
                        mm: OUT_OF_RANGE_MM,
                        interval_s: RAIN_INTERVAL_S,
                    };
                    out.push(message(obs, on_time, Anomaly::OutOfRange));
                }
                Some(Fate::Future) => {
                    obs.event_time = on_time.plus_ms(FUTURE_SKEW_MS);
                    out.push(message(obs, on_time, Anomaly::FutureTimestamp));
                }
                Some(Fate::Stuck(anomaly)) => {
                    obs.reading = Reading::Rainfall {
                        mm: STUCK_MM,
                        interval_s: RAIN_INTERVAL_S,
                    };
                    out.push(message(obs, on_time, *anomaly));
                }
            }
        }
    }
}

/// Returns the 5-min areal rain series of `basin` from the reporting gauges' clean series.
fn areal_series(
    basin: &Basin,
    series_by_station: &BTreeMap<&StationId, &[f64]>,
    ticks: usize,
) -> Vec<f64> {
    let mut areal = vec![0.0; ticks];
    for (station, weight) in &basin.gauges {
        if let Some(series) = series_by_station.get(station) {
            for (sum, mm) in areal.iter_mut().zip(series.iter()) {
                *sum += weight * mm;
            }
        }
    }
    areal
}

/// Appends the stage reports of every water-level station of a basin the storm touches.
///
/// The stage is the base stage plus a rise that grows with the outflow of a linear reservoir fed
/// by the basin's areal rain, as outflow^0.6 (the inverse of a power-law rating curve). The rise
/// reaches the prepare stage when the outflow equals the mean rate of the basin's longest dry
/// prepare threshold, so stage and rain warnings roughly agree.
fn emit_water_levels(
    region: &Region,
    gauges: &[Gauge<'_>],
    timeline: &Timeline,
    rng: &mut SplitMix64,
    out: &mut Vec<ScenarioMessage>,
) {
    let series_by_station: BTreeMap<&StationId, &[f64]> = gauges
        .iter()
        .map(|gauge| (&gauge.station.id, gauge.series.as_slice()))
        .collect();
    let mut reported: BTreeMap<&StationId, ()> = BTreeMap::new();
    for basin in region.basins.values() {
        let areal = areal_series(basin, &series_by_station, timeline.ticks);
        if areal.iter().sum::<f64>() < TOUCHED_MIN_MM {
            continue;
        }
        let Some(reference) = basin
            .rain_thresholds
            .get(&SoilState::Dry)
            .and_then(|thresholds| {
                thresholds
                    .iter()
                    .max_by_key(|threshold| threshold.duration_h)
            })
            .filter(|threshold| threshold.duration_h > 0 && threshold.prepare_mm > 0.0)
        else {
            continue;
        };
        let reference_mm_h = reference.prepare_mm / f64::from(reference.duration_h);
        // Larger basins respond more slowly.
        let lag_h = (0.3 * basin.area_km2.max(1.0).powf(0.35)).clamp(0.5, 3.0);
        let keep = (-(RAIN_STEP_MS as f64 / HOUR_MS as f64) / lag_h).exp();
        for stage in &basin.stage_thresholds {
            if reported.insert(&stage.station, ()).is_some() {
                continue;
            }
            let station = region.stations.get(&stage.station);
            let (gateway, encoding) = match station {
                Some(station) => gateway_of(station),
                None => (
                    GatewayId::new(format!("GW-{}", basin.county)),
                    Encoding::Protobuf,
                ),
            };
            let prepare_rise_m = stage.prepare_stage_m - stage.base_stage_m;
            let mut storage_mm = 0.0;
            let mut previous = f64::NAN;
            for (tick, &rain_mm) in areal.iter().enumerate() {
                storage_mm += rain_mm;
                let outflow_mm = storage_mm * (1.0 - keep);
                storage_mm -= outflow_mm;
                let outflow_mm_h = outflow_mm * HOUR_MS as f64 / RAIN_STEP_MS as f64;
                // ±3 mm of sensor noise, and never the same reading twice in a row, so QC's
                // stuck-sensor check never fires on a quiet river.
                let noise_m = (rng.next_f64() - 0.5) * 0.006;
                let rise_m = prepare_rise_m * (outflow_mm_h / reference_mm_h).powf(RATING_EXPONENT);
                let mut metres = stage.base_stage_m + rise_m + noise_m;
                metres = (metres * 1000.0).round() / 1000.0;
                if metres == previous {
                    metres += 0.001;
                }
                previous = metres;
                let event_time = timeline.tick_time(tick);
                out.push(ScenarioMessage {
                    topic: ObservationTopic::WaterLevel,
                    key: stage.station.to_string(),
                    sent_at: event_time.plus_ms(SEND_DELAY_MS),
                    encoding,
                    payload: ScenarioPayload::Observation(Observation {
                        station: stage.station.clone(),
                        event_time,
                        gateway: gateway.clone(),
                        sequence: tick as u64 + 1,
                        reading: Reading::WaterLevel { metres },
                    }),
                    anomaly: Anomaly::None,
                });
            }
        }
    }
}

/// Appends the 10-min reports of the weather stations near the track: a summer afternoon that
/// cools, moistens and gusts as the cell passes.
fn emit_weather(
    region: &Region,
    track: &Track,
    cell: &Cell<'_>,
    timeline: &Timeline,
    rng: &mut SplitMix64,
    out: &mut Vec<ScenarioMessage>,
) {
    let reports =
        usize::try_from((timeline.end().millis() - timeline.start.millis()) / WEATHER_STEP_MS)
            .unwrap_or(0);
    // Wind blows from behind the cell: the track heads east-ish, the wind comes from the west.
    let heading_deg = 90.0 - track.direction.1.atan2(track.direction.0).to_degrees();
    let from_deg = (heading_deg + 180.0).rem_euclid(360.0);
    for station in region
        .stations
        .values()
        .filter(|station| station.kind == StationKind::Weather)
    {
        let p = track.station_xy(station);
        if track.distance_km(p) > cell.cfg.weather_reach_km {
            continue;
        }
        let (gateway, encoding) = gateway_of(station);
        let mut previous = [f64::NAN; 4];
        for report in 0..reports {
            let event_time = timeline
                .start
                .plus_ms((report as i64 + 1) * WEATHER_STEP_MS);
            let t_ms = event_time.millis() as f64;
            let wetness = {
                let rate = cell.rate_mm_h(p, t_ms);
                rate / (rate + 5.0)
            };
            let local_h = ((event_time.millis() + 8 * HOUR_MS).rem_euclid(24 * HOUR_MS)) as f64
                / HOUR_MS as f64;
            let diurnal = ((local_h - 15.0) / 24.0 * 2.0 * PI).cos();
            let mut values = [
                24.0 + 6.0 * diurnal - 7.0 * wetness + rng.next_f64() * 0.4,
                (38.0 - 10.0 * diurnal + 55.0 * wetness + rng.next_f64() * 2.0).min(100.0),
                3.0 + 11.0 * wetness + rng.next_f64() * 1.5,
                (from_deg + (rng.next_f64() - 0.5) * 40.0).rem_euclid(360.0),
            ];
            for (value, last) in values.iter_mut().zip(previous.iter_mut()) {
                *value = round1(*value);
                if *value == *last {
                    *value = round1(*value - 0.1);
                }
                *last = *value;
            }
            let [air_temperature_c, relative_humidity_pct, wind_speed_m_s, wind_direction_deg] =
                values;
            out.push(ScenarioMessage {
                topic: ObservationTopic::Weather,
                key: station.id.to_string(),
                sent_at: event_time.plus_ms(SEND_DELAY_MS),
                encoding,
                payload: ScenarioPayload::Observation(Observation {
                    station: station.id.clone(),
                    event_time,
                    gateway: gateway.clone(),
                    sequence: report as u64 + 1,
                    reading: Reading::Weather {
                        air_temperature_c,
                        relative_humidity_pct,
                        wind_speed_m_s,
                        wind_direction_deg,
                    },
                }),
                anomaly: Anomaly::None,
            });
        }
    }
}

/// Appends undecodable messages from reporting gauges during the rain: half protobuf cut off
/// mid-field, half JSON cut off mid-value.
fn emit_malformed(
    gauges: &[Gauge<'_>],
    timeline: &Timeline,
    rng: &mut SplitMix64,
    out: &mut Vec<ScenarioMessage>,
) {
    if gauges.is_empty() {
        return;
    }
    let rain_ticks = timeline.rain_ticks();
    for k in 0..MALFORMED_COUNT {
        let gauge = &gauges[rng.below(gauges.len())];
        let tick = (rain_ticks.start + rng.below(rain_ticks.len().max(1)))
            .min(timeline.ticks.saturating_sub(1));
        let event_time = timeline.tick_time(tick);
        let station = gauge.station.id.as_str();
        let mm = gauge.series.get(tick).copied().unwrap_or(0.0);
        let (encoding, bytes) = if k % 2 == 0 {
            let mut bytes = protobuf_rainfall(
                station,
                event_time,
                gauge.gateway.as_str(),
                tick as u64 + 1,
                mm,
            );
            // Every second one loses its tail inside the rainfall field, the others inside the
            // station id (`R0`): either way a length prefix promises bytes that never come.
            let keep = if k % 4 == 0 { bytes.len() - 6 } else { 4 };
            bytes.truncate(keep);
            (Encoding::Protobuf, bytes)
        } else {
            let json = format!(
                "{{\"station_id\": \"{station}\", \"event_time_ms\": {}, \"gateway_id\": \"{}\", \
                 \"sequence\": {}, \"rainfall\": {{\"mm\": {mm:.1}, \"interval_s\": {RAIN_INTERVAL_S}}}}}",
                event_time.millis(),
                gauge.gateway,
                tick + 1,
            );
            let keep = if k % 4 == 1 {
                "{\"station_id\": \"R0".len()
            } else {
                json.len() - 12
            };
            (Encoding::Json, json.as_bytes()[..keep].to_vec())
        };
        out.push(ScenarioMessage {
            topic: ObservationTopic::Rainfall,
            key: station.to_string(),
            sent_at: event_time.plus_ms(SEND_DELAY_MS + 7 * SECOND_MS),
            encoding,
            payload: ScenarioPayload::Raw(bytes),
            anomaly: Anomaly::Malformed,
        });
    }
}

/// Encodes a rainfall observation as protobuf `tianshan.v1.Observation`, by hand: the core
/// crate has no protobuf dependency, and the bytes are only ever sent truncated.
fn protobuf_rainfall(
    station: &str,
    event_time: EventTime,
    gateway: &str,
    sequence: u64,
    mm: f64,
) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    fn delimited(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut rainfall = vec![0x09];
    rainfall.extend_from_slice(&mm.to_le_bytes());
    rainfall.push(0x10);
    varint(&mut rainfall, u64::from(RAIN_INTERVAL_S));
    let mut out = Vec::new();
    delimited(&mut out, 1, station.as_bytes());
    out.push(0x10);
    varint(&mut out, event_time.millis() as u64);
    delimited(&mut out, 3, gateway.as_bytes());
    out.push(0x20);
    varint(&mut out, sequence);
    delimited(&mut out, 10, &rainfall);
    out
}

/// Appends plausible rain readings from a station no region holds.
fn emit_unknown_station(timeline: &Timeline, rng: &mut SplitMix64, out: &mut Vec<ScenarioMessage>) {
    let rain_ticks = timeline.rain_ticks();
    if rain_ticks.is_empty() {
        return;
    }
    let step = (rain_ticks.len() / UNKNOWN_COUNT).max(1);
    for (k, tick) in rain_ticks.step_by(step).take(UNKNOWN_COUNT).enumerate() {
        let event_time = timeline.tick_time(tick);
        out.push(ScenarioMessage {
            topic: ObservationTopic::Rainfall,
            key: UNKNOWN_STATION.to_string(),
            sent_at: event_time.plus_ms(SEND_DELAY_MS),
            encoding: Encoding::Protobuf,
            payload: ScenarioPayload::Observation(Observation {
                station: StationId::new(UNKNOWN_STATION),
                event_time,
                gateway: GatewayId::new("GW-UNREGISTERED"),
                sequence: k as u64 + 1,
                reading: Reading::Rainfall {
                    mm: round1(0.2 + rng.next_f64() * 2.0),
                    interval_s: RAIN_INTERVAL_S,
                },
            }),
            anomaly: Anomaly::UnknownStation,
        });
    }
}

/// Appends the lightning burst onto [`LIGHTNING_ZONE`]: [`LIGHTNING_STROKES`] cloud-to-ground
/// strokes over the [`LIGHTNING_SPAN_MS`] centred on the middle of the rain, placed by rejection
/// sampling inside the zone's outer ring, [`LIGHTNING_POSITIVE`] of them positive. Sequence
/// numbers follow stroke time. Nothing when the region has no such zone.
fn emit_lightning(
    region: &Region,
    timeline: &Timeline,
    rng: &mut SplitMix64,
    out: &mut Vec<ScenarioMessage>,
) {
    let Some(site) = region
        .fire_zones
        .iter()
        .find(|site| site.zone.id.as_str() == LIGHTNING_ZONE)
    else {
        return;
    };
    let burst_start = timeline.rain_start_ms() + (timeline.rain_ms - LIGHTNING_SPAN_MS).max(0) / 2;
    let mut offsets: Vec<i64> = (0..LIGHTNING_STROKES)
        .map(|_| (rng.next_f64() * LIGHTNING_SPAN_MS as f64) as i64)
        .collect();
    offsets.sort_unstable();
    let mut positive: Vec<bool> = (0..LIGHTNING_STROKES)
        .map(|k| k < LIGHTNING_POSITIVE)
        .collect();
    rng.shuffle(&mut positive);
    for (k, (offset, positive)) in offsets.into_iter().zip(positive).enumerate() {
        let (lon, lat) = stroke_position(site, rng);
        let (low, high) = if positive { POSITIVE_KA } else { NEGATIVE_KA };
        let peak_current_ka = round1(low + rng.next_f64() * (high - low));
        let event_time = EventTime(burst_start + offset);
        out.push(ScenarioMessage {
            topic: ObservationTopic::Lightning,
            key: LIGHTNING_STATION.to_string(),
            sent_at: event_time.plus_ms(LIGHTNING_SEND_DELAY_MS),
            encoding: Encoding::Protobuf,
            payload: ScenarioPayload::Observation(Observation {
                station: StationId::new(LIGHTNING_STATION),
                event_time,
                gateway: GatewayId::new(LIGHTNING_GATEWAY),
                sequence: k as u64 + 1,
                reading: Reading::Lightning {
                    lon,
                    lat,
                    peak_current_ka,
                    positive,
                    cloud_to_ground: true,
                },
            }),
            anomaly: Anomaly::None,
        });
    }
}

/// Returns a point inside the zone's first polygon, at 5 decimals (about 1 m): uniform over its
/// bounding box, retried until inside. Falls back to the mean of the outer ring's positions,
/// inside the star-shaped rings of the region files.
fn stroke_position(site: &FireZoneSite, rng: &mut SplitMix64) -> (f64, f64) {
    let round5 = |value: f64| (value * 1e5).round() / 1e5;
    let Some(polygon) = site.zone.polygons.first() else {
        return (0.0, 0.0);
    };
    let outer = polygon.first().map_or(&[][..], Vec::as_slice);
    let empty = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    let (x0, y0, x1, y1) = outer.iter().fold(empty, |(x0, y0, x1, y1), &(x, y)| {
        (x0.min(x), y0.min(y), x1.max(x), y1.max(y))
    });
    for _ in 0..LIGHTNING_TRIES {
        let lon = round5(x0 + rng.next_f64() * (x1 - x0));
        let lat = round5(y0 + rng.next_f64() * (y1 - y0));
        if polygon_contains(polygon, lon, lat) {
            return (lon, lat);
        }
    }
    let n = outer.len().max(1) as f64;
    (
        round5(outer.iter().map(|p| p.0).sum::<f64>() / n),
        round5(outer.iter().map(|p| p.1).sum::<f64>() / n),
    )
}

/// The sliding of [`LANDSLIDE_SLOPE`]: creep at v0 until the rain starts, then two stages of
/// Fukuzono's α = 2 law (hazards.md §5.1), each v = v_s·(t_f − t_s)/(t_f − t) from the velocity
/// v_s at its start t_s, whose integral is v_s·(t_f − t_s)·ln((t_f − t_s)/(t_f − t)): while it
/// rains the slope heads for a failure [`FIRST_STAGE_FAILURE_MS`] after the rain starts; from the
/// rain peak the wet slope heads for the real failure, [`FAILURE_AFTER_PEAK_MS`] later. Times
/// are in days from the scenario start.
struct Acceleration {
    v0_mm_per_day: f64,
    onset_days: f64,
    first_failure_days: f64,
    peak_days: f64,
    failure_days: f64,
}

impl Acceleration {
    /// Returns the displacement in mm after `days`, `None` from the failure on.
    fn displacement_mm(&self, days: f64) -> Option<f64> {
        /// Displacement and velocity after `days` of a stage starting at (start, v_start).
        fn stage(start: f64, v_start: f64, failure: f64, days: f64) -> (f64, f64) {
            let lead = failure - start;
            (
                v_start * lead * (lead / (failure - days)).ln(),
                v_start * lead / (failure - days),
            )
        }
        if days >= self.failure_days {
            return None;
        }
        let creep = self.v0_mm_per_day * days.min(self.onset_days);
        if days <= self.onset_days {
            return Some(creep);
        }
        let first_end = days.min(self.peak_days);
        let (first, v_peak) = stage(
            self.onset_days,
            self.v0_mm_per_day,
            self.first_failure_days,
            first_end,
        );
        if days <= self.peak_days {
            return Some(creep + first);
        }
        let (second, _) = stage(self.peak_days, v_peak, self.failure_days, days);
        Some(creep + first + second)
    }
}

/// Appends the deformation reports of the GNSS and crack-meter points of every slope every
/// [`DEFORMATION_STEP_MS`]: [`LANDSLIDE_SLOPE`] accelerates (see [`Acceleration`]) and falls
/// silent at its failure, the others stay put. Readings carry uniform noise and are rounded to
/// 0.001 mm; a GNSS antenna also settles as it slides, a crack meter reports its opening along
/// its axis.
fn emit_deformation(
    region: &Region,
    timeline: &Timeline,
    rng: &mut SplitMix64,
    out: &mut Vec<ScenarioMessage>,
) {
    let day_ms = (24 * HOUR_MS) as f64;
    let reports = (timeline.end().millis() - timeline.start.millis()) / DEFORMATION_STEP_MS;
    let failure_ms = timeline.rain_start_ms() + timeline.rain_ms / 2 + FAILURE_AFTER_PEAK_MS;
    for slope in &region.slopes {
        let acceleration = (slope.id.as_str() == LANDSLIDE_SLOPE).then(|| Acceleration {
            v0_mm_per_day: slope.v0_mm_per_day,
            onset_days: timeline.dry_before_ms as f64 / day_ms,
            first_failure_days: (timeline.dry_before_ms + FIRST_STAGE_FAILURE_MS) as f64 / day_ms,
            peak_days: (timeline.dry_before_ms + timeline.rain_ms / 2) as f64 / day_ms,
            failure_days: (failure_ms - timeline.start.millis()) as f64 / day_ms,
        });
        let (gateway, encoding) = county_gateway(&slope.county);
        for point in slope
            .points
            .iter()
            .filter(|p| p.sensor != SensorKind::Insar)
        {
            for report in 1..=reports {
                let days = (report * DEFORMATION_STEP_MS) as f64 / day_ms;
                let slid_mm = match &acceleration {
                    Some(law) => match law.displacement_mm(days) {
                        Some(mm) => mm,
                        None => break,
                    },
                    None => 0.0,
                };
                let event_time = timeline.start.plus_ms(report * DEFORMATION_STEP_MS);
                out.push(ScenarioMessage {
                    topic: ObservationTopic::Deformation,
                    key: point.id.to_string(),
                    sent_at: event_time.plus_ms(SEND_DELAY_MS),
                    encoding,
                    payload: ScenarioPayload::Observation(Observation {
                        station: point.id.clone(),
                        event_time,
                        gateway: gateway.clone(),
                        sequence: report as u64,
                        reading: deformation_reading(point, slid_mm, rng),
                    }),
                    anomaly: Anomaly::None,
                });
            }
        }
    }
}

/// Returns the reading of `point` after `slid_mm` of sliding along its azimuth, with noise.
fn deformation_reading(point: &SlopePoint, slid_mm: f64, rng: &mut SplitMix64) -> Reading {
    let round3 = |value: f64| (value * 1000.0).round() / 1000.0;
    let (sin, cos) = point.azimuth_deg.to_radians().sin_cos();
    match point.sensor {
        SensorKind::CrackMeter => {
            let opening = slid_mm + (rng.next_f64() - 0.5) * 2.0 * CRACK_NOISE_MM;
            Reading::Deformation {
                east_mm: round3(opening * sin),
                north_mm: round3(opening * cos),
                up_mm: 0.0,
            }
        }
        SensorKind::Gnss | SensorKind::Insar => {
            let mut noise = || (rng.next_f64() - 0.5) * 2.0 * GNSS_NOISE_MM;
            Reading::Deformation {
                east_mm: round3(slid_mm * sin + noise()),
                north_mm: round3(slid_mm * cos + noise()),
                up_mm: round3(-SETTLEMENT_PER_MM * slid_mm + noise()),
            }
        }
    }
}

/// splitmix64 (Steele, Lea & Flood 2014): a tiny generator, good enough to pick test targets
/// and sensor noise, and the same on every platform.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a uniform value in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns a uniform index below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn xinjiang() -> Region {
        Region::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../regions/xinjiang"
        )))
        .unwrap()
    }

    fn default_scenario(region: &Region) -> Scenario {
        storm_scenario(region, &StormConfig::default())
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Level {
        Below,
        Blue,
        Yellow,
        Orange,
        Red,
    }

    /// One basin as the system would judge the storm from the applied rain reports.
    #[derive(Debug)]
    struct Judgement {
        basin: BasinId,
        /// Highest areal/prepare ratio over the 1, 3 and 6 h windows.
        peak_ratio: f64,
        level: Level,
        /// Last report time at which some window was still at or above 0.9 × 0.6 × prepare.
        last_above_cancel: Option<EventTime>,
    }

    /// Recomputes areal 1/3/6 h sums per basin from the readings a correct consumer applies
    /// (anomaly `None` or `OutOfOrder`), with the dry thresholds, on the 5-min report grid.
    fn judge(region: &Region, scenario: &Scenario) -> Vec<Judgement> {
        let ticks =
            usize::try_from((scenario.end.millis() - scenario.start.millis()) / RAIN_STEP_MS)
                .unwrap();
        let mut rain: BTreeMap<StationId, Vec<f64>> = BTreeMap::new();
        for message in &scenario.messages {
            if !matches!(message.anomaly, Anomaly::None | Anomaly::OutOfOrder) {
                continue;
            }
            let Some(obs) = message.observation() else {
                continue;
            };
            let Reading::Rainfall { mm, interval_s } = obs.reading else {
                continue;
            };
            assert_eq!(interval_s, RAIN_INTERVAL_S);
            let offset = obs.event_time.millis() - scenario.start.millis();
            assert_eq!(offset % RAIN_STEP_MS, 0, "{obs:?} is off the report grid");
            let tick = usize::try_from(offset / RAIN_STEP_MS - 1).unwrap();
            let series = rain
                .entry(obs.station.clone())
                .or_insert_with(|| vec![0.0; ticks]);
            assert_eq!(series[tick], 0.0, "{obs:?} applied twice");
            series[tick] = mm;
        }
        let mut judgements = Vec::new();
        for basin in region.basins.values() {
            let mut areal = vec![0.0; ticks];
            for (station, weight) in &basin.gauges {
                if let Some(series) = rain.get(station) {
                    for (sum, mm) in areal.iter_mut().zip(series) {
                        *sum += weight * mm;
                    }
                }
            }
            let mut prefix = vec![0.0; ticks + 1];
            for tick in 0..ticks {
                prefix[tick + 1] = prefix[tick] + areal[tick];
            }
            let mut judgement = Judgement {
                basin: basin.id.clone(),
                peak_ratio: 0.0,
                level: Level::Below,
                last_above_cancel: None,
            };
            for threshold in &basin.rain_thresholds[&SoilState::Dry] {
                let window =
                    usize::try_from(i64::from(threshold.duration_h) * HOUR_MS / RAIN_STEP_MS)
                        .unwrap();
                for tick in 0..ticks {
                    let sum = prefix[tick + 1] - prefix[(tick + 1).saturating_sub(window)];
                    judgement.peak_ratio = judgement.peak_ratio.max(sum / threshold.prepare_mm);
                    let level = if sum >= threshold.immediate_mm {
                        Level::Red
                    } else if sum >= threshold.prepare_mm {
                        Level::Orange
                    } else if sum >= 0.8 * threshold.prepare_mm {
                        Level::Yellow
                    } else if sum >= 0.6 * threshold.prepare_mm {
                        Level::Blue
                    } else {
                        Level::Below
                    };
                    judgement.level = judgement.level.max(level);
                    if sum >= 0.9 * 0.6 * threshold.prepare_mm {
                        let at = scenario.start.plus_ms((tick as i64 + 1) * RAIN_STEP_MS);
                        judgement.last_above_cancel = judgement.last_above_cancel.max(Some(at));
                    }
                }
            }
            judgements.push(judgement);
        }
        judgements
    }

    #[test]
    fn is_deterministic() {
        let region = xinjiang();
        assert_eq!(default_scenario(&region), default_scenario(&region));
    }

    #[test]
    fn messages_are_sorted_and_span_thirteen_hours() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        assert!(scenario
            .messages
            .windows(2)
            .all(|pair| pair[0].sort_key() <= pair[1].sort_key()));
        assert_eq!(
            scenario.start,
            EventTime::parse_rfc3339("2024-07-01T16:00:00+08:00").unwrap()
        );
        let hours = (scenario.end.millis() - scenario.start.millis()) as f64 / HOUR_MS as f64;
        assert!((13.0..=14.0).contains(&hours), "{hours} h");
        let first = scenario.messages.first().unwrap();
        assert_eq!(
            first.sent_at,
            scenario.start.plus_ms(RAIN_STEP_MS + SEND_DELAY_MS)
        );
    }

    #[test]
    fn volume_is_reasonable_and_silent_gauges_exist() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let stations = |topic: ObservationTopic| {
            scenario
                .messages
                .iter()
                .filter(|m| m.topic == topic)
                .map(|m| m.key.as_str())
                .collect::<BTreeSet<_>>()
        };
        let rain = stations(ObservationTopic::Rainfall);
        let levels = stations(ObservationTopic::WaterLevel);
        let weather = stations(ObservationTopic::Weather);
        assert_eq!(
            stations(ObservationTopic::Lightning),
            BTreeSet::from([LIGHTNING_STATION])
        );
        let reporting_points: BTreeSet<&str> = region
            .slopes
            .iter()
            .flat_map(|slope| &slope.points)
            .filter(|point| point.sensor != SensorKind::Insar)
            .map(|point| point.id.as_str())
            .collect();
        assert_eq!(stations(ObservationTopic::Deformation), reporting_points);
        println!(
            "{} messages ({} observations): {} rain gauges, {} water-level stations, {} weather stations",
            scenario.messages.len(),
            scenario.observations(),
            rain.len(),
            levels.len(),
            weather.len(),
        );
        assert!(scenario.messages.len() < 150_000);
        let all_gauges = region
            .stations
            .values()
            .filter(|s| s.kind == StationKind::Rain)
            .count();
        assert!(
            rain.len() > 40 && rain.len() < all_gauges,
            "{} of {all_gauges} gauges report",
            rain.len()
        );
        assert!(!levels.is_empty() && !weather.is_empty());
        let encodings: BTreeSet<Encoding> = scenario.messages.iter().map(|m| m.encoding).collect();
        assert_eq!(encodings.len(), 2, "both wire formats appear");
    }

    #[test]
    fn anomaly_counts_are_as_designed() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        for anomaly in Anomaly::ALL {
            println!("{anomaly:?}: {}", scenario.count(anomaly));
        }
        assert_eq!(scenario.count(Anomaly::Late), LATE_COUNT);
        assert_eq!(scenario.count(Anomaly::OutOfOrder), OUT_OF_ORDER_COUNT);
        assert_eq!(scenario.count(Anomaly::Duplicate), DUPLICATE_COUNT);
        assert_eq!(scenario.count(Anomaly::StuckSensor), STUCK_REJECTED);
        assert_eq!(scenario.count(Anomaly::Malformed), MALFORMED_COUNT);
        assert_eq!(scenario.count(Anomaly::UnknownStation), UNKNOWN_COUNT);
        assert_eq!(scenario.count(Anomaly::OutOfRange), OUT_OF_RANGE_COUNT);
        assert_eq!(scenario.count(Anomaly::FutureTimestamp), FUTURE_COUNT);
        assert_eq!(
            scenario.observations(),
            scenario.messages.len() - MALFORMED_COUNT
        );
    }

    #[test]
    fn anomalies_have_their_shapes() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let mut on_time: BTreeMap<(String, u64), &Observation> = BTreeMap::new();
        for message in &scenario.messages {
            let lag_ms = |obs: &Observation| message.sent_at.millis() - obs.event_time.millis();
            match (message.anomaly, &message.payload) {
                (Anomaly::Malformed, ScenarioPayload::Raw(bytes)) => {
                    assert!(!bytes.is_empty());
                    match message.encoding {
                        Encoding::Json => assert!(
                            bytes.starts_with(b"{\"station_id\": \"R0") && !bytes.ends_with(b"}")
                        ),
                        Encoding::Protobuf => assert_eq!(bytes[0], 0x0a),
                    }
                }
                (_, ScenarioPayload::Raw(_)) => panic!("raw bytes must be marked malformed"),
                (anomaly, ScenarioPayload::Observation(obs)) => {
                    assert_eq!(message.key, obs.station.as_str());
                    match anomaly {
                        Anomaly::Late => assert_eq!(lag_ms(obs), LATE_DELAY_MS),
                        Anomaly::OutOfOrder => {
                            assert!((10 * MINUTE_MS..=15 * MINUTE_MS).contains(&lag_ms(obs)))
                        }
                        Anomaly::FutureTimestamp => assert_eq!(lag_ms(obs), -FUTURE_SKEW_MS),
                        Anomaly::UnknownStation => {
                            assert_eq!(obs.station.as_str(), UNKNOWN_STATION);
                            assert!(!region.stations.contains_key(&obs.station));
                        }
                        Anomaly::OutOfRange => {
                            assert_eq!(
                                obs.reading,
                                Reading::Rainfall {
                                    mm: OUT_OF_RANGE_MM,
                                    interval_s: 300
                                }
                            );
                            assert!(OUT_OF_RANGE_MM > 50.8 * 5f64.sqrt());
                        }
                        Anomaly::None | Anomaly::StuckSensor => {
                            let delay_ms = if message.topic == ObservationTopic::Lightning {
                                LIGHTNING_SEND_DELAY_MS
                            } else {
                                SEND_DELAY_MS
                            };
                            assert_eq!(lag_ms(obs), delay_ms)
                        }
                        Anomaly::Duplicate => {
                            let first = on_time
                                .get(&(message.key.clone(), obs.sequence))
                                .expect("original sent first");
                            assert_eq!(*first, obs);
                            continue;
                        }
                        Anomaly::Malformed => unreachable!("observations are well-formed"),
                    }
                    // Apart from the duplicate copies, each (station, sequence) is sent once:
                    // late and out-of-order readings replace their on-time send.
                    let key = (message.key.clone(), obs.sequence);
                    assert!(on_time.insert(key, obs).is_none(), "{obs:?} sent twice");
                }
            }
        }
    }

    #[test]
    fn one_gauge_outside_the_storm_is_stuck() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let stuck: BTreeSet<&str> = scenario
            .messages
            .iter()
            .filter(|m| m.anomaly == Anomaly::StuckSensor)
            .map(|m| m.key.as_str())
            .collect();
        assert_eq!(stuck.len(), 1);
        let station = *stuck.first().unwrap();
        let readings: Vec<f64> = scenario
            .messages
            .iter()
            .filter(|m| m.key == station)
            .filter_map(|m| match m.observation()?.reading {
                Reading::Rainfall { mm, .. } => Some(mm),
                _ => None,
            })
            .collect();
        let repeats = readings.iter().filter(|&&mm| mm == STUCK_MM).count();
        assert!(repeats >= 8);
        assert!(
            readings.iter().all(|&mm| mm == 0.0 || mm == STUCK_MM),
            "{station} sees no real rain"
        );
        let first = readings.iter().position(|&mm| mm == STUCK_MM).unwrap();
        assert!(
            readings[first..first + repeats]
                .iter()
                .all(|&mm| mm == STUCK_MM),
            "consecutive"
        );
    }

    #[test]
    fn applied_series_never_look_stuck() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let stuck_station = scenario
            .messages
            .iter()
            .find(|m| m.anomaly == Anomaly::StuckSensor)
            .map(|m| &m.key);
        let mut by_station: BTreeMap<&str, BTreeMap<EventTime, f64>> = BTreeMap::new();
        for message in &scenario.messages {
            if !matches!(message.anomaly, Anomaly::None | Anomaly::OutOfOrder)
                || Some(&message.key) == stuck_station
            {
                continue;
            }
            if let Some(Observation {
                event_time,
                reading: Reading::Rainfall { mm, .. },
                ..
            }) = message.observation()
            {
                by_station
                    .entry(message.key.as_str())
                    .or_default()
                    .insert(*event_time, *mm);
            }
        }
        for (station, series) in by_station {
            let values: Vec<f64> = series.into_values().collect();
            let longest = values
                .chunk_by(|a, b| a == b)
                .filter(|run| run[0] > 0.0)
                .map(<[f64]>::len)
                .max()
                .unwrap_or(0);
            // One rejected reading can join two runs of the clean series.
            assert!(
                longest <= 2 * MAX_CLEAN_RUN,
                "{station} repeats {longest} times"
            );
        }
    }

    #[test]
    fn storm_reaches_orange_and_red_and_drains_before_the_end() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let judgements = judge(&region, &scenario);
        for judgement in judgements.iter().filter(|j| j.peak_ratio >= 0.3) {
            let last = judgement
                .last_above_cancel
                .map(|t| t.to_beijing_rfc3339())
                .unwrap_or_default();
            println!(
                "{} {:?} peak/prepare {:.2} last above cancel {last}",
                judgement.basin, judgement.level, judgement.peak_ratio
            );
        }
        let orange_or_red = judgements
            .iter()
            .filter(|j| j.level >= Level::Orange)
            .count();
        let red = judgements.iter().filter(|j| j.level == Level::Red).count();
        assert!(orange_or_red >= 3, "{orange_or_red} basins reach orange");
        assert!(red >= 1, "{red} basins reach red");
        let deadline = scenario.end.plus_ms(-90 * MINUTE_MS);
        for judgement in &judgements {
            assert!(
                judgement.last_above_cancel.is_none_or(|t| t <= deadline),
                "{} still wet at {:?}",
                judgement.basin,
                judgement.last_above_cancel
            );
        }
    }

    #[test]
    fn a_water_level_station_crosses_its_prepare_stage_and_recedes() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let mut peaks: BTreeMap<&str, f64> = BTreeMap::new();
        let mut last: BTreeMap<&str, f64> = BTreeMap::new();
        let mut fastest_m_per_h: f64 = 0.0;
        for message in &scenario.messages {
            if let Some(Observation {
                reading: Reading::WaterLevel { metres },
                ..
            }) = message.observation()
            {
                let peak = peaks.entry(message.key.as_str()).or_insert(f64::MIN);
                *peak = peak.max(*metres);
                if let Some(previous) = last.insert(message.key.as_str(), *metres) {
                    let rate = (metres - previous).abs() * (HOUR_MS / RAIN_STEP_MS) as f64;
                    fastest_m_per_h = fastest_m_per_h.max(rate);
                }
            }
        }
        let mut crossed = 0;
        for basin in region.basins.values() {
            for stage in &basin.stage_thresholds {
                if let Some(&peak) = peaks.get(stage.station.as_str()) {
                    println!(
                        "{} ({}) peak {peak:.3} m, base {} prepare {} immediate {}",
                        stage.station,
                        basin.id,
                        stage.base_stage_m,
                        stage.prepare_stage_m,
                        stage.immediate_stage_m
                    );
                    crossed += usize::from(peak >= stage.prepare_stage_m);
                    let halfway = (stage.base_stage_m + stage.prepare_stage_m) / 2.0;
                    assert!(
                        last[stage.station.as_str()] < halfway,
                        "{} still high at the end",
                        stage.station
                    );
                }
            }
        }
        println!(
            "{crossed} stations cross their prepare stage; fastest change {fastest_m_per_h:.2} m/h"
        );
        assert!(crossed >= 1);
        // QC rejects stages changing faster than 5 m/h (qc.rs, `max_stage_rate_m_per_h`).
        assert!(fastest_m_per_h < 4.0);
    }

    #[test]
    fn lightning_burst_strikes_the_gongliu_zone_as_designed() {
        let region = xinjiang();
        let scenario = default_scenario(&region);
        let zone = &region
            .fire_zones
            .iter()
            .find(|site| site.zone.id.as_str() == LIGHTNING_ZONE)
            .expect("the committed region holds the zone")
            .zone;
        let strokes: Vec<(&ScenarioMessage, &Observation)> = scenario
            .messages
            .iter()
            .filter(|m| m.topic == ObservationTopic::Lightning)
            .map(|m| (m, m.observation().expect("strokes are observations")))
            .collect();
        assert_eq!(strokes.len(), LIGHTNING_STROKES);
        let rain_start = scenario.start.plus_ms(StormConfig::default().dry_before_ms);
        let rain_ms = StormConfig::default().rain_ms;
        let (mut positive, mut sequence, mut last_time) = (0, 0, EventTime(i64::MIN));
        for (message, obs) in &strokes {
            assert_eq!(message.key, LIGHTNING_STATION);
            assert_eq!(message.anomaly, Anomaly::None);
            assert_eq!(obs.station.as_str(), LIGHTNING_STATION);
            assert_eq!(obs.gateway.as_str(), LIGHTNING_GATEWAY);
            assert_eq!(
                message.sent_at,
                obs.event_time.plus_ms(LIGHTNING_SEND_DELAY_MS)
            );
            // Sent in stroke order, numbered in stroke order.
            assert!(obs.sequence > sequence && obs.event_time >= last_time);
            (sequence, last_time) = (obs.sequence, obs.event_time);
            let since_rain = obs.event_time.millis() - rain_start.millis();
            let middle = (rain_ms - LIGHTNING_SPAN_MS) / 2;
            assert!((middle..middle + LIGHTNING_SPAN_MS).contains(&since_rain));
            let Reading::Lightning {
                lon,
                lat,
                peak_current_ka,
                positive: is_positive,
                cloud_to_ground,
            } = obs.reading
            else {
                panic!("{obs:?} is not a stroke");
            };
            assert!(cloud_to_ground);
            assert_eq!(zone.distance_km(lon, lat), 0.0, "({lon}, {lat}) inside");
            let (low, high) = if is_positive {
                POSITIVE_KA
            } else {
                NEGATIVE_KA
            };
            assert!((low..=high).contains(&peak_current_ka), "{peak_current_ka}");
            positive += usize::from(is_positive);
        }
        assert_eq!(sequence, LIGHTNING_STROKES as u64);
        assert_eq!(positive, LIGHTNING_POSITIVE);
    }

    #[test]
    fn lightning_burst_leaves_the_other_messages_unchanged() {
        let region = xinjiang();
        let with_burst = default_scenario(&region);
        let mut without_zones = region.clone();
        without_zones.fire_zones.clear();
        let without_burst = default_scenario(&without_zones);
        assert_eq!(
            without_burst.count(Anomaly::None) + LIGHTNING_STROKES,
            with_burst.count(Anomaly::None)
        );
        let others: Vec<&ScenarioMessage> = with_burst
            .messages
            .iter()
            .filter(|m| m.topic != ObservationTopic::Lightning)
            .collect();
        assert!(without_burst.messages.iter().eq(others));
        println!(
            "{} messages, {} of them lightning",
            with_burst.messages.len(),
            with_burst.messages.len() - without_burst.messages.len()
        );
    }

    #[test]
    fn lightning_zone_is_dry_ground_south_of_the_track() {
        let region = xinjiang();
        let cfg = StormConfig::default();
        let track = Track::choose(&region, &cfg).expect("the region has basins");
        let site = region
            .fire_zones
            .iter()
            .find(|site| site.zone.id.as_str() == LIGHTNING_ZONE)
            .expect("the committed region holds the zone");
        let ring = &site.zone.polygons[0][0];
        let corners = &ring[..ring.len() - 1];
        let n = corners.len() as f64;
        let centre = (
            corners.iter().map(|p| p.0).sum::<f64>() / n,
            corners.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let p = track.projection.xy(centre.0, centre.1);
        let distance_km = track.distance_km(p);
        println!("{LIGHTNING_ZONE} centre {centre:?}, {distance_km:.1} km from the track");
        // About 0.3° (33 km) off the track: under the cell's edge, not its core.
        assert!((25.0..45.0).contains(&distance_km), "{distance_km} km");
        let (_, y) = track.at(0.5);
        let track_lat = track.projection.lat0 + y / KM_PER_DEG_LAT;
        // The storm total at the centre stays below the 2.9 mm dry-stroke cut-off of
        // `LightningFireConfig`, so the strokes there are dry lightning.
        let timeline = Timeline::new(&cfg);
        let cell = Cell {
            track: &track,
            cfg: &cfg,
            rain_start_ms: timeline.rain_start_ms(),
        };
        let total_mm: f64 = (0..timeline.ticks)
            .map(|tick| cell.depth_mm(p, timeline.tick_time(tick)))
            .sum();
        println!("storm total at the centre {total_mm:.2} mm");
        assert!(total_mm < 2.9, "{total_mm} mm");
        assert!(centre.1 < track_lat - 0.2, "south of the track");
    }

    /// Returns the displacement along the slide of every report of `point`, in send order.
    fn slid_mm(scenario: &Scenario, point: &SlopePoint) -> Vec<(EventTime, f64)> {
        let (sin, cos) = point.azimuth_deg.to_radians().sin_cos();
        scenario
            .messages
            .iter()
            .filter(|m| m.key == point.id.as_str())
            .map(|m| {
                assert_eq!(m.topic, ObservationTopic::Deformation);
                let obs = m.observation().expect("deformation is an observation");
                let Reading::Deformation {
                    east_mm, north_mm, ..
                } = obs.reading
                else {
                    panic!("{obs:?} is not a deformation");
                };
                (obs.event_time, east_mm * sin + north_mm * cos)
            })
            .collect()
    }

    #[test]
    fn the_designated_slope_accelerates_to_failure_and_the_others_stay_put() {
        let region = xinjiang();
        let cfg = StormConfig::default();
        let scenario = default_scenario(&region);
        let failure = scenario
            .start
            .plus_ms(cfg.dry_before_ms + cfg.rain_ms / 2 + FAILURE_AFTER_PEAK_MS);
        assert!(
            failure < scenario.end,
            "the slope fails within the scenario"
        );
        let reports =
            ((scenario.end.millis() - scenario.start.millis()) / DEFORMATION_STEP_MS) as usize;
        let mut designated = 0;
        for slope in &region.slopes {
            for point in &slope.points {
                let series = slid_mm(&scenario, point);
                if point.sensor == SensorKind::Insar {
                    assert!(series.is_empty(), "{} reports", point.id);
                    continue;
                }
                if slope.id.as_str() != LANDSLIDE_SLOPE {
                    assert_eq!(series.len(), reports, "{}", point.id);
                    assert!(series.iter().all(|(_, mm)| mm.abs() < 0.01), "{}", point.id);
                    continue;
                }
                designated += 1;
                let (last, _) = *series.last().expect("reports before failing");
                assert!(last < failure && last.plus_ms(DEFORMATION_STEP_MS) >= failure);
                // Speed over the first hour (creep), the hour after the rain peak, and the last.
                let speed = |from: usize| {
                    let (t0, x0) = series[from];
                    let (t1, x1) = series[from + 6];
                    (x1 - x0) / ((t1.millis() - t0.millis()) as f64 / (24 * HOUR_MS) as f64)
                };
                let creep = speed(0);
                let peak =
                    usize::try_from((cfg.dry_before_ms + cfg.rain_ms / 2) / DEFORMATION_STEP_MS)
                        .expect("a small index");
                let (after_peak, final_hour) = (speed(peak), speed(series.len() - 7));
                println!(
                    "{}: {creep:.2} mm/d creeping, {after_peak:.2} after the peak, {final_hour:.2} in the last hour",
                    point.id
                );
                assert!((creep - slope.v0_mm_per_day).abs() < 0.2, "{creep}");
                assert!(after_peak > 1.1 * creep && final_hour > 5.0 * after_peak);
            }
        }
        assert_eq!(
            designated, 2,
            "the GNSS and the crack meter of {LANDSLIDE_SLOPE}"
        );
    }

    #[test]
    fn a_region_without_basins_gives_no_messages() {
        let mut region = xinjiang();
        region.basins.clear();
        let scenario = default_scenario(&region);
        assert!(scenario.messages.is_empty());
    }

    #[test]
    fn explicit_centre_basin_moves_the_storm() {
        let region = xinjiang();
        let far = region.basins.keys().last().unwrap().clone();
        let cfg = StormConfig {
            centre_basin: Some(far),
            ..StormConfig::default()
        };
        assert_ne!(storm_scenario(&region, &cfg), default_scenario(&region));
    }

    #[test]
    fn truncated_protobuf_promises_more_than_it_holds() {
        let full = protobuf_rainfall("R00001", EventTime(1_719_821_100_000), "GW-654024", 3, 1.5);
        assert_eq!(&full[..8], b"\x0a\x06R00001");
        assert_eq!(*full.last().unwrap(), 0x02, "interval 300 = varint ac 02");
    }
}
