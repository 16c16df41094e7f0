//! Per-station state owned by the station actor: deduplication, lateness, quality control, rainfall
//! windows, daily totals for the antecedent index, recent stages and the latest weather.
//!
//! Every kind of station shares one intake: an observation is checked for its reading kind, then
//! for duplicates (same event time and sequence already applied), lateness (older than the newest
//! event time or watermark minus the allowed lateness), and a future timestamp, then the
//! kind-specific QC of [`crate::qc`] (range, rate, persistence). Only then does it change state.
//!
//! Windows follow hazards.md Conventions: the value at `t` sums observations stamped in
//! `(t − W, t]`, so an observation at `t` ms falls in slot `(t − 1) div slot_ms`, and the windows at
//! a tick `T` are the state with head slot `T / slot_ms − 1`. Nothing reads a clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::mem::size_of;

use serde::{Deserialize, Serialize};

use crate::antecedent::{met_day, pa_start_of_day};
use crate::ids::StationId;
use crate::observation::{Observation, Outcome, Reading, RejectReason};
use crate::qc::{self, QcConfig, StuckRun};
use crate::slot_windows::SlotWindows;
use crate::time::{parse_duration_ms, EventTime, HOUR_MS, MINUTE_MS};

/// How many stored bytes one B-tree entry costs at most, relative to its key and value: nodes
/// are allocated whole and may be half empty.
const BTREE_OVERHEAD_FACTOR: usize = 3;

/// Most past days the antecedent index may span.
const MAX_API_DAYS: u32 = 31;

/// Configuration of the per-station windows; defaults follow hazards.md §1.1 and §3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct WindowsConfig {
    /// Slot length of the rainfall windows, a duration string ("5m") [U].
    pub slot: String,
    /// Rainfall window lengths in minutes, each a multiple of the slot
    /// ([10, 30, 60, 180, 360, 720, 1440]) [C] hazards.md §1.1.
    pub rain_durations_min: Vec<u32>,
    /// How far behind the newest event time or watermark an observation may still arrive, a
    /// multiple of the slot ("30m") [U].
    pub allowed_lateness: String,
    /// How far an event time may lie ahead of the time it was received ("5m") [U].
    pub max_future: String,
    /// Daily decay factor of the antecedent precipitation index (0.9) [C] hydroBE via hazards.md §3.
    pub api_k: f64,
    /// Number of past meteorological days in the antecedent index (15) [U] thresholds.toml
    /// `[windows] antecedent_days`.
    pub api_days: u32,
    /// Quality-control tunables.
    pub qc: QcConfig,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        Self {
            slot: "5m".to_owned(),
            rain_durations_min: vec![10, 30, 60, 180, 360, 720, 1440],
            allowed_lateness: "30m".to_owned(),
            max_future: "5m".to_owned(),
            api_k: 0.9,
            api_days: 15,
            qc: QcConfig::default(),
        }
    }
}

/// The numbers of a validated [`WindowsConfig`].
#[derive(Debug, Clone, Copy)]
struct Resolved {
    slot_ms: i64,
    lateness_ms: i64,
    max_future_ms: i64,
}

impl WindowsConfig {
    /// Checks that every field is usable.
    ///
    /// # Errors
    /// Returns a message naming the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        self.resolve().map(|_| ())
    }

    fn resolve(&self) -> Result<Resolved, String> {
        let duration = |name: &str, text: &str| {
            parse_duration_ms(text).map_err(|error| format!("windows.{name}: {error}"))
        };
        let slot_ms = duration("slot", &self.slot)?;
        if slot_ms <= 0 {
            return Err(format!(
                "windows.slot must be positive, got {:?}",
                self.slot
            ));
        }
        if self.rain_durations_min.is_empty() {
            return Err("windows.rain-durations-min must not be empty".to_owned());
        }
        for &minutes in &self.rain_durations_min {
            if minutes == 0 || (i64::from(minutes) * MINUTE_MS) % slot_ms != 0 {
                return Err(format!(
                    "windows.rain-durations-min: {minutes} is not a positive multiple of the slot {:?}",
                    self.slot
                ));
            }
        }
        let lateness_ms = duration("allowed-lateness", &self.allowed_lateness)?;
        if lateness_ms % slot_ms != 0 {
            return Err(format!(
                "windows.allowed-lateness {:?} is not a multiple of the slot {:?}",
                self.allowed_lateness, self.slot
            ));
        }
        let max_future_ms = duration("max-future", &self.max_future)?;
        if !(self.api_k > 0.0 && self.api_k <= 1.0) {
            return Err(format!(
                "windows.api-k must lie in (0, 1], got {}",
                self.api_k
            ));
        }
        // Daily totals are kept per station; the bound keeps a rain station's state small.
        if self.api_days > MAX_API_DAYS {
            return Err(format!(
                "windows.api-days must be at most {MAX_API_DAYS}, got {}",
                self.api_days
            ));
        }
        self.qc
            .validate()
            .map_err(|error| format!("windows.{error}"))?;
        Ok(Resolved {
            slot_ms,
            lateness_ms,
            max_future_ms,
        })
    }

    fn resolved(&self) -> Resolved {
        self.resolve()
            .expect("windows config is validated once at start")
    }
}

/// The shared intake: duplicates, lateness, future timestamps and the event-time frontier.
#[derive(Debug, Clone)]
struct Intake {
    station: StationId,
    lateness_ms: i64,
    max_future_ms: i64,
    /// Newest event time applied or watermark advanced to; lateness counts back from here.
    frontier: Option<EventTime>,
    /// Newest event time applied.
    last_observation: Option<EventTime>,
    /// `(event time ms, sequence)` of applied observations no older than the lateness.
    seen: BTreeSet<(i64, u64)>,
}

impl Intake {
    fn new(station: StationId, resolved: Resolved) -> Self {
        Self {
            station,
            lateness_ms: resolved.lateness_ms,
            max_future_ms: resolved.max_future_ms,
            frontier: None,
            last_observation: None,
            seen: BTreeSet::new(),
        }
    }

    /// Runs the checks every kind shares, in order: station, duplicate, lateness, future timestamp.
    fn screen(&self, obs: &Observation, received_at: EventTime) -> Result<(), Outcome> {
        if obs.station != self.station {
            return Err(Outcome::rejected(
                RejectReason::UnknownStation,
                format!(
                    "observation of station {} reached station {}",
                    obs.station, self.station
                ),
            ));
        }
        let key = (obs.event_time.millis(), obs.sequence);
        if self.seen.contains(&key) {
            return Err(Outcome::rejected(
                RejectReason::Duplicate,
                format!(
                    "event time {} sequence {} already applied",
                    obs.event_time, obs.sequence
                ),
            ));
        }
        if let Some(frontier) = self.frontier {
            let oldest = frontier.plus_ms(-self.lateness_ms);
            if obs.event_time < oldest {
                return Err(Outcome::rejected(
                    RejectReason::TooLate,
                    format!("event time {} is older than {oldest}", obs.event_time),
                ));
            }
        }
        qc::check_future(obs.event_time, received_at, self.max_future_ms)?;
        Ok(())
    }

    /// Records an applied observation.
    fn record(&mut self, obs: &Observation) {
        self.seen.insert((obs.event_time.millis(), obs.sequence));
        self.last_observation = self.last_observation.max(Some(obs.event_time));
        self.advance_to(obs.event_time);
    }

    /// Moves the frontier forward and forgets keys that can no longer pass the lateness check.
    fn advance_to(&mut self, t: EventTime) {
        let frontier = self.frontier.map_or(t, |frontier| frontier.max(t));
        self.frontier = Some(frontier);
        let cutoff = frontier.millis() - self.lateness_ms;
        // One key at a time: the frontier usually moves by one reading, and popping the oldest
        // key costs less than splitting the set into a new one.
        while self
            .seen
            .first()
            .is_some_and(|&(oldest, _)| oldest < cutoff)
        {
            self.seen.pop_first();
        }
    }

    fn heap_bytes(&self) -> usize {
        self.station.as_str().len()
            + self.seen.len() * size_of::<(i64, u64)>() * BTREE_OVERHEAD_FACTOR
    }
}

/// Rainfall windows, daily totals and QC state of one rain gauge.
#[derive(Debug, Clone)]
pub struct RainStation {
    intake: Intake,
    qc: QcConfig,
    report_interval_s: u32,
    slot_ms: i64,
    durations_min: Box<[u32]>,
    windows: SlotWindows,
    /// Rain per meteorological day in micrometres, for the last `api_days + 1` days.
    daily: BTreeMap<i64, i64>,
    api_k: f64,
    api_days: u32,
    stuck: StuckRun,
}

impl RainStation {
    fn slot_of(&self, t: EventTime) -> i64 {
        (t.millis() - 1).div_euclid(self.slot_ms)
    }

    fn observe(&mut self, obs: &Observation, received_at: EventTime) -> Outcome {
        let Reading::Rainfall { mm, interval_s } = obs.reading else {
            return wrong_kind(obs, "rain");
        };
        if let Err(outcome) = self.intake.screen(obs, received_at) {
            return outcome;
        }
        let checked = qc::check_rain_range(&self.qc, mm, interval_s)
            .and_then(|()| qc::check_rain_intensity(&self.qc, mm, interval_s))
            .and_then(|()| {
                // In range, so the micrometres fit an i32 for any interval a u32 of seconds can
                // hold. Micrometres, not tenths: a 0.01-inch bucket tips 0.254 mm, which tenths
                // would round to 0.3 mm and hundredths to 0.25 mm on every record (the USGS
                // gauges of core/tests/real_rain_gauges.rs).
                let micrometres = (mm * qc::MICROMETRES_PER_MM).round() as i32;
                self.stuck
                    .next(micrometres, &self.qc)
                    .map(|run| (micrometres, run))
            });
        let (micrometres, run) = match checked {
            Ok(accepted) => accepted,
            Err(error) => return error.into(),
        };
        if let Err(late) = self.windows.add(self.slot_of(obs.event_time), micrometres) {
            // The intake's lateness check is the same bound in slots; this is a safety net.
            return Outcome::rejected(RejectReason::TooLate, late.to_string());
        }
        self.stuck = run;
        *self.daily.entry(met_day(obs.event_time)).or_insert(0) += i64::from(micrometres);
        self.intake.record(obs);
        self.prune_days();
        Outcome::Applied
    }

    fn advance_to(&mut self, watermark: EventTime) {
        self.windows.advance_to(self.slot_of(watermark));
        self.intake.advance_to(watermark);
        self.prune_days();
    }

    /// Keeps the days the antecedent index of the frontier's day needs: that day and `api_days` before.
    fn prune_days(&mut self) {
        let Some(frontier) = self.intake.frontier else {
            return;
        };
        let first_kept = met_day(frontier) - i64::from(self.api_days);
        if self
            .daily
            .first_key_value()
            .is_some_and(|(&day, _)| day < first_kept)
        {
            self.daily = self.daily.split_off(&first_kept);
        }
    }

    fn summary(&self, tick: EventTime) -> RainSummary {
        debug_assert!(
            self.windows
                .head()
                .is_none_or(|head| head >= self.slot_of(tick)),
            "summary called before advance_to(tick)"
        );
        let windows = self
            .durations_min
            .iter()
            .zip(self.windows.totals())
            .map(|(&duration_min, total)| {
                let expected = f64::from(duration_min) * 60.0 / f64::from(self.report_interval_s);
                WindowValue {
                    duration_min,
                    mm: total.sum as f64 / qc::MICROMETRES_PER_MM,
                    completeness: (f64::from(total.reports) / expected).min(1.0),
                }
            })
            .collect();
        let today = met_day(tick);
        let mm_of_day = |day: i64| {
            self.daily.get(&day).map_or(0.0, |&micrometres| {
                micrometres as f64 / qc::MICROMETRES_PER_MM
            })
        };
        let before_today: Vec<f64> = (today - i64::from(self.api_days)..today)
            .map(mm_of_day)
            .collect();
        RainSummary {
            station: self.intake.station.clone(),
            tick,
            windows,
            today_mm: mm_of_day(today),
            antecedent_mm: pa_start_of_day(&before_today, self.api_k, f64::INFINITY),
            last_observation: self.intake.last_observation,
        }
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + self.intake.heap_bytes()
            + self.windows.state_bytes()
            + self.durations_min.len() * size_of::<u32>()
            + self.daily.len() * size_of::<(i64, i64)>() * BTREE_OVERHEAD_FACTOR
    }
}

/// Recent stages of one water-level gauge, sorted by event time.
#[derive(Debug, Clone)]
pub struct StageStation {
    intake: Intake,
    qc: QcConfig,
    /// Readings no older than one hour plus the lateness before the frontier.
    readings: VecDeque<(EventTime, f64)>,
}

impl StageStation {
    fn observe(&mut self, obs: &Observation, received_at: EventTime) -> Outcome {
        let Reading::WaterLevel { metres } = obs.reading else {
            return wrong_kind(obs, "water-level");
        };
        if let Err(outcome) = self.intake.screen(obs, received_at) {
            return outcome;
        }
        let at = self.readings.partition_point(|&(t, _)| t <= obs.event_time);
        let reading = (obs.event_time, metres);
        // Out-of-order readings are checked against both accepted neighbours in event time.
        let checked = qc::check_stage_range(&self.qc, metres)
            .and_then(|()| match at.checked_sub(1).map(|i| self.readings[i]) {
                Some(before) => qc::check_stage_rate(&self.qc, before, reading),
                None => Ok(()),
            })
            .and_then(|()| match self.readings.get(at) {
                Some(&after) => qc::check_stage_rate(&self.qc, after, reading),
                None => Ok(()),
            });
        if let Err(error) = checked {
            return error.into();
        }
        self.readings.insert(at, reading);
        self.intake.record(obs);
        self.prune();
        Outcome::Applied
    }

    fn advance_to(&mut self, watermark: EventTime) {
        self.intake.advance_to(watermark);
        self.prune();
    }

    fn prune(&mut self) {
        let Some(frontier) = self.intake.frontier else {
            return;
        };
        let oldest = frontier.plus_ms(-(HOUR_MS + self.intake.lateness_ms));
        while self.readings.front().is_some_and(|&(t, _)| t < oldest) {
            self.readings.pop_front();
        }
    }

    fn summary(&self, tick: EventTime) -> StageSummary {
        let upto = self.readings.partition_point(|&(t, _)| t <= tick);
        let known = self.readings.range(..upto);
        let latest = known.clone().next_back().copied();
        let hour_ago = tick.plus_ms(-HOUR_MS);
        let max_1h_m = known
            .clone()
            .filter(|&&(t, _)| t > hour_ago)
            .map(|&(_, metres)| metres)
            .reduce(f64::max);
        let rise_m_per_h = latest.and_then(|(latest_t, latest_m)| {
            let target = latest_t.millis() - HOUR_MS;
            // The earlier reading closest to one hour before the latest; ties go to the older one.
            known
                .clone()
                .filter(|&&(t, _)| t < latest_t)
                .min_by_key(|&&(t, _)| (t.millis() - target).abs())
                .map(|&(t, metres)| {
                    (latest_m - metres) * HOUR_MS as f64 / (latest_t.millis() - t.millis()) as f64
                })
        });
        StageSummary {
            station: self.intake.station.clone(),
            tick,
            latest_m: latest.map(|(_, metres)| metres),
            max_1h_m,
            rise_m_per_h,
            last_observation: self.intake.last_observation,
        }
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>()
            + self.intake.heap_bytes()
            + self.readings.capacity() * size_of::<(EventTime, f64)>()
    }
}

/// Latest surface weather of one weather station.
#[derive(Debug, Clone)]
pub struct WeatherStation {
    intake: Intake,
    /// The newest applied reading.
    latest: Option<LatestWeather>,
}

/// The values of a weather station's newest reading.
#[derive(Debug, Clone, Copy)]
struct LatestWeather {
    at: EventTime,
    air_temperature_c: f64,
    relative_humidity_pct: f64,
    wind_speed_m_s: f64,
}

impl WeatherStation {
    fn observe(&mut self, obs: &Observation, received_at: EventTime) -> Outcome {
        let Reading::Weather {
            air_temperature_c,
            relative_humidity_pct,
            wind_speed_m_s,
            ..
        } = obs.reading
        else {
            return wrong_kind(obs, "weather");
        };
        if let Err(outcome) = self.intake.screen(obs, received_at) {
            return outcome;
        }
        if !(air_temperature_c.is_finite()
            && relative_humidity_pct.is_finite()
            && wind_speed_m_s.is_finite())
        {
            return Outcome::rejected(
                RejectReason::OutOfRange,
                format!("weather values {air_temperature_c} °C, {relative_humidity_pct} %, {wind_speed_m_s} m/s are not numbers"),
            );
        }
        if self.latest.is_none_or(|latest| obs.event_time >= latest.at) {
            self.latest = Some(LatestWeather {
                at: obs.event_time,
                air_temperature_c,
                relative_humidity_pct,
                wind_speed_m_s,
            });
        }
        self.intake.record(obs);
        Outcome::Applied
    }

    fn summary(&self, tick: EventTime) -> WeatherSummary {
        WeatherSummary {
            station: self.intake.station.clone(),
            tick,
            air_temperature_c: self.latest.map(|latest| latest.air_temperature_c),
            relative_humidity_pct: self.latest.map(|latest| latest.relative_humidity_pct),
            wind_speed_m_s: self.latest.map(|latest| latest.wind_speed_m_s),
            last_observation: self.intake.last_observation,
        }
    }

    fn state_bytes(&self) -> usize {
        size_of::<Self>() + self.intake.heap_bytes()
    }
}

fn wrong_kind(obs: &Observation, station_kind: &str) -> Outcome {
    Outcome::rejected(
        RejectReason::WrongReadingKind,
        format!(
            "{} reading sent to {station_kind} station {}",
            obs.reading.kind(),
            obs.station
        ),
    )
}

/// The state of one station, by kind.
#[derive(Debug, Clone)]
pub enum StationWindows {
    /// A rain gauge.
    Rain(RainStation),
    /// A river or reservoir water-level gauge.
    WaterLevel(StageStation),
    /// A surface weather station.
    Weather(WeatherStation),
}

impl StationWindows {
    /// Creates the state of a rain gauge that reports every `report_interval_s` seconds (a zero
    /// interval counts as one second).
    ///
    /// # Panics
    /// Panics when `cfg` fails [`WindowsConfig::validate`], which the root runs once at start.
    pub fn rain(id: StationId, report_interval_s: u32, cfg: &WindowsConfig) -> Self {
        let resolved = cfg.resolved();
        let to_slots =
            |ms: i64| u32::try_from(ms / resolved.slot_ms).expect("window fits u32 slots");
        let slots: Vec<u32> = cfg
            .rain_durations_min
            .iter()
            .map(|&minutes| to_slots(i64::from(minutes) * MINUTE_MS))
            .collect();
        StationWindows::Rain(RainStation {
            intake: Intake::new(id, resolved),
            qc: cfg.qc.clone(),
            report_interval_s: report_interval_s.max(1),
            slot_ms: resolved.slot_ms,
            durations_min: cfg.rain_durations_min.clone().into_boxed_slice(),
            windows: SlotWindows::new(&slots, to_slots(resolved.lateness_ms)),
            daily: BTreeMap::new(),
            api_k: cfg.api_k,
            api_days: cfg.api_days,
            stuck: StuckRun::default(),
        })
    }

    /// Creates the state of a water-level gauge.
    ///
    /// # Panics
    /// Panics when `cfg` fails [`WindowsConfig::validate`], which the root runs once at start.
    pub fn water_level(id: StationId, cfg: &WindowsConfig) -> Self {
        StationWindows::WaterLevel(StageStation {
            intake: Intake::new(id, cfg.resolved()),
            qc: cfg.qc.clone(),
            readings: VecDeque::new(),
        })
    }

    /// Creates the state of a weather station.
    ///
    /// # Panics
    /// Panics when `cfg` fails [`WindowsConfig::validate`], which the root runs once at start.
    pub fn weather(id: StationId, cfg: &WindowsConfig) -> Self {
        StationWindows::Weather(WeatherStation {
            intake: Intake::new(id, cfg.resolved()),
            latest: None,
        })
    }

    /// Applies one observation received by the broker at `received_at`, or says why not: wrong
    /// reading kind, another station's observation, duplicate, too late, future timestamp, then
    /// the QC of the kind. A rejected observation changes nothing.
    pub fn observe(&mut self, obs: &Observation, received_at: EventTime) -> Outcome {
        match self {
            StationWindows::Rain(station) => station.observe(obs, received_at),
            StationWindows::WaterLevel(station) => station.observe(obs, received_at),
            StationWindows::Weather(station) => station.observe(obs, received_at),
        }
    }

    /// Moves event time forward to `watermark`, so windows drain while the station is silent.
    pub fn advance_to(&mut self, watermark: EventTime) {
        match self {
            StationWindows::Rain(station) => station.advance_to(watermark),
            StationWindows::WaterLevel(station) => station.advance_to(watermark),
            StationWindows::Weather(station) => station.intake.advance_to(watermark),
        }
    }

    /// Returns the summary at `tick`; call it after [`StationWindows::advance_to`]`(tick)`.
    ///
    /// Rainfall windows end at the newest slot reached, which is the tick's slot unless
    /// observations stamped after the tick were applied already. Stage values only use readings
    /// stamped at or before the tick.
    pub fn summary(&self, tick: EventTime) -> StationSummary {
        match self {
            StationWindows::Rain(station) => StationSummary::Rain(station.summary(tick)),
            StationWindows::WaterLevel(station) => {
                StationSummary::WaterLevel(station.summary(tick))
            }
            StationWindows::Weather(station) => StationSummary::Weather(station.summary(tick)),
        }
    }

    /// Returns the summary at `tick` without moving the windows: what [`StationWindows::summary`]
    /// gives after [`StationWindows::advance_to`]`(tick)`, worked out on a copy when the windows
    /// have not reached the tick yet. A snapshot taken for a reader must not change what later
    /// readings do (a window advanced early would reject a late reading the log still brings).
    pub fn summary_at(&self, tick: EventTime) -> StationSummary {
        let reached = match self {
            StationWindows::Rain(station) => station
                .windows
                .head()
                .is_some_and(|head| head >= station.slot_of(tick)),
            StationWindows::WaterLevel(_) | StationWindows::Weather(_) => false,
        };
        if reached {
            return self.summary(tick);
        }
        let mut advanced = self.clone();
        advanced.advance_to(tick);
        advanced.summary(tick)
    }

    /// Returns the event time of the newest observation applied, if any.
    pub fn last_observation(&self) -> Option<EventTime> {
        match self {
            StationWindows::Rain(station) => station.intake.last_observation,
            StationWindows::WaterLevel(station) => station.intake.last_observation,
            StationWindows::Weather(station) => station.intake.last_observation,
        }
    }

    /// Returns an estimate of the bytes of state held, for sizing deployments.
    pub fn state_bytes(&self) -> usize {
        match self {
            StationWindows::Rain(station) => station.state_bytes(),
            StationWindows::WaterLevel(station) => station.state_bytes(),
            StationWindows::Weather(station) => station.state_bytes(),
        }
    }
}

/// What a station emits at each tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StationSummary {
    /// Rainfall windows and antecedent rain of a rain gauge.
    Rain(RainSummary),
    /// Recent stages of a water-level gauge.
    WaterLevel(StageSummary),
    /// Latest values of a weather station.
    Weather(WeatherSummary),
}

impl StationSummary {
    /// Returns the station the summary is about.
    pub fn station(&self) -> &StationId {
        match self {
            StationSummary::Rain(summary) => &summary.station,
            StationSummary::WaterLevel(summary) => &summary.station,
            StationSummary::Weather(summary) => &summary.station,
        }
    }

    /// Returns the tick the summary was taken at.
    pub fn tick(&self) -> EventTime {
        match self {
            StationSummary::Rain(summary) => summary.tick,
            StationSummary::WaterLevel(summary) => summary.tick,
            StationSummary::Weather(summary) => summary.tick,
        }
    }
}

/// Rainfall of one gauge at a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RainSummary {
    /// The gauge.
    pub station: StationId,
    /// The tick.
    pub tick: EventTime,
    /// One value per configured window, in configuration order.
    pub windows: Vec<WindowValue>,
    /// Rain so far in the tick's meteorological day (20:00 → 20:00 Beijing time), in mm.
    pub today_mm: f64,
    /// Pa at the start of the tick's meteorological day (hazards.md §3 form (c)) over the last
    /// `api_days` daily totals, uncapped: the basin applies its own `Wm`.
    pub antecedent_mm: f64,
    /// Newest event time applied, if any.
    pub last_observation: Option<EventTime>,
}

/// One rainfall window at a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowValue {
    /// Window length in minutes.
    pub duration_min: u32,
    /// Rain in the window, in mm.
    pub mm: f64,
    /// Reports in the window over the reports expected (duration / report interval), capped at 1.
    pub completeness: f64,
}

/// Stages of one water-level gauge at a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// The gauge.
    pub station: StationId,
    /// The tick.
    pub tick: EventTime,
    /// Newest stage at or before the tick within the last hour plus the lateness, in m.
    pub latest_m: Option<f64>,
    /// Highest stage stamped in `(tick − 1 h, tick]`, in m.
    pub max_1h_m: Option<f64>,
    /// Latest stage minus the earlier stage closest to one hour before it, per hour, in m/h.
    pub rise_m_per_h: Option<f64>,
    /// Newest event time applied, if any.
    pub last_observation: Option<EventTime>,
}

/// Surface weather of one station at a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeatherSummary {
    /// The station.
    pub station: StationId,
    /// The tick.
    pub tick: EventTime,
    /// Air temperature of the newest reading, in °C.
    pub air_temperature_c: Option<f64>,
    /// Relative humidity of the newest reading, in percent.
    pub relative_humidity_pct: Option<f64>,
    /// Wind speed of the newest reading, in m/s.
    pub wind_speed_m_s: Option<f64>,
    /// Newest event time applied, if any.
    pub last_observation: Option<EventTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::GatewayId;

    const STATION: &str = "R001";

    fn at(hh_mm: &str) -> EventTime {
        EventTime::parse_rfc3339(&format!("2024-07-01T{hh_mm}:00+08:00")).unwrap()
    }

    /// Parses a fixture table: one `hh:mm value` row per line (Beijing time on 2024-07-01),
    /// blank lines and `#` comments ignored.
    fn table(text: &str) -> Vec<(EventTime, f64)> {
        text.lines()
            .map(|line| line.split('#').next().unwrap().trim())
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (time, value) = line.split_once(char::is_whitespace).unwrap();
                (at(time), value.trim().parse().unwrap())
            })
            .collect()
    }

    fn obs(event_time: EventTime, sequence: u64, reading: Reading) -> Observation {
        Observation {
            station: StationId::new(STATION),
            event_time,
            gateway: GatewayId::new("G1"),
            sequence,
            reading,
        }
    }

    fn rain(event_time: EventTime, sequence: u64, mm: f64, interval_s: u32) -> Observation {
        obs(event_time, sequence, Reading::Rainfall { mm, interval_s })
    }

    fn stage(event_time: EventTime, sequence: u64, metres: f64) -> Observation {
        obs(event_time, sequence, Reading::WaterLevel { metres })
    }

    fn rain_station(report_interval_s: u32) -> StationWindows {
        StationWindows::rain(
            StationId::new(STATION),
            report_interval_s,
            &WindowsConfig::default(),
        )
    }

    /// Feeds 5-minute rain rows in the given order, each received when stamped.
    fn feed(station: &mut StationWindows, rows: &[(EventTime, f64)]) {
        for (index, &(t, mm)) in rows.iter().enumerate() {
            let sequence = t.millis() as u64 / 1000;
            assert_eq!(
                station.observe(&rain(t, sequence, mm, 300), t),
                Outcome::Applied,
                "row {index}"
            );
        }
    }

    fn rain_summary(station: &mut StationWindows, tick: EventTime) -> RainSummary {
        station.advance_to(tick);
        match station.summary(tick) {
            StationSummary::Rain(summary) => summary,
            other => panic!("not a rain summary: {other:?}"),
        }
    }

    fn window_mm(summary: &RainSummary) -> Vec<(u32, f64)> {
        summary
            .windows
            .iter()
            .map(|w| (w.duration_min, w.mm))
            .collect()
    }

    fn reason(outcome: Outcome) -> RejectReason {
        match outcome {
            Outcome::Rejected { reason, .. } => reason,
            Outcome::Applied => panic!("expected a rejection"),
        }
    }

    const MORNING: &str = "
        08:05 1.2
        08:10 0.0
        08:15 2.5
        08:20 0.4
        08:25 0.0
        08:30 3.1   # 30-min window at 09:00 starts after this row
        08:35 0.7
        08:40 1.9
        08:45 0.0
        08:50 2.2   # 10-min window at 09:00 starts after this row
        08:55 0.3
        09:00 4.0
    ";

    /// Hand sums at 09:00: 10 min = 0.3 + 4.0; 30 min = 0.7 + 1.9 + 0 + 2.2 + 0.3 + 4.0;
    /// 60 min and longer = all twelve rows.
    #[test]
    fn windows_at_a_tick_equal_hand_sums() {
        let mut station = rain_station(300);
        feed(&mut station, &table(MORNING));
        let summary = rain_summary(&mut station, at("09:00"));
        assert_eq!(
            window_mm(&summary),
            vec![
                (10, 4.3),
                (30, 9.1),
                (60, 16.3),
                (180, 16.3),
                (360, 16.3),
                (720, 16.3),
                (1440, 16.3)
            ]
        );
        assert_eq!(summary.today_mm, 16.3);
        assert_eq!(summary.antecedent_mm, 0.0);
        assert_eq!(summary.last_observation, Some(at("09:00")));
        assert!(summary.windows[..3].iter().all(|w| w.completeness == 1.0));
        assert_eq!(summary.windows[3].completeness, 12.0 / 36.0);
        // At 09:10 the 10-min window is empty and the 30-min one lost 08:35 and 08:40.
        let later = rain_summary(&mut station, at("09:10"));
        assert_eq!(later.windows[0].mm, 0.0);
        assert_eq!(later.windows[1].mm, 6.5);
    }

    #[test]
    fn out_of_order_within_lateness_gives_the_in_order_sums() {
        let rows = table(MORNING);
        let mut in_order = rain_station(300);
        feed(&mut in_order, &rows);
        let mut shuffled = rain_station(300);
        // Reverse each run of four rows: arrivals up to 15 minutes behind the newest.
        let reordered: Vec<_> = rows
            .chunks(4)
            .flat_map(|chunk| chunk.iter().rev().copied())
            .collect();
        feed(&mut shuffled, &reordered);
        assert_eq!(
            rain_summary(&mut shuffled, at("09:00")),
            rain_summary(&mut in_order, at("09:00"))
        );
    }

    #[test]
    fn too_late_is_rejected_at_the_lateness_boundary() {
        let mut station = rain_station(300);
        feed(&mut station, &table("09:00 1.0"));
        let late = station.observe(&rain(at("08:25"), 1, 5.0, 300), at("09:01"));
        assert_eq!(reason(late), RejectReason::TooLate);
        // Exactly the allowed lateness (30 min) behind the newest is still accepted.
        assert_eq!(
            station.observe(&rain(at("08:30"), 2, 5.0, 300), at("09:01")),
            Outcome::Applied
        );
        // A watermark also moves the boundary while the station is silent.
        station.advance_to(at("09:20"));
        let late = station.observe(&rain(at("08:45"), 3, 5.0, 300), at("09:20"));
        assert_eq!(reason(late), RejectReason::TooLate);
        assert_eq!(rain_summary(&mut station, at("09:20")).windows[2].mm, 6.0);
    }

    #[test]
    fn duplicate_is_rejected_and_counted_once() {
        let mut station = rain_station(300);
        let first = rain(at("08:05"), 7, 1.5, 300);
        assert_eq!(station.observe(&first, at("08:05")), Outcome::Applied);
        assert_eq!(
            reason(station.observe(&first, at("08:06"))),
            RejectReason::Duplicate
        );
        // Same event time, another sequence: a different reading.
        assert_eq!(
            station.observe(&rain(at("08:05"), 8, 0.5, 300), at("08:06")),
            Outcome::Applied
        );
        let summary = rain_summary(&mut station, at("08:05"));
        assert_eq!(summary.windows[0].mm, 2.0);
    }

    /// Q5 (hazards.md §8): the 6th identical non-zero increment is rejected, a different one resets.
    #[test]
    fn stuck_sensor_rejects_the_sixth_identical_increment() {
        let mut station = rain_station(300);
        feed(
            &mut station,
            &table("08:05 1.5\n08:10 1.5\n08:15 1.5\n08:20 1.5\n08:25 1.5"),
        );
        let sixth = station.observe(&rain(at("08:30"), 1, 1.5, 300), at("08:30"));
        assert_eq!(reason(sixth), RejectReason::StuckSensor);
        let seventh = station.observe(&rain(at("08:35"), 2, 1.5, 300), at("08:35"));
        assert_eq!(reason(seventh), RejectReason::StuckSensor);
        feed(&mut station, &table("08:40 1.6\n08:45 1.5"));
        assert_eq!(rain_summary(&mut station, at("08:45")).windows[2].mm, 10.6);
    }

    #[test]
    fn future_timestamp_is_rejected() {
        let mut station = rain_station(300);
        let received = at("08:00");
        let ahead = station.observe(&rain(at("08:06"), 1, 1.0, 300), received);
        assert_eq!(reason(ahead), RejectReason::FutureTimestamp);
        assert_eq!(
            station.observe(&rain(at("08:05"), 2, 1.0, 300), received),
            Outcome::Applied
        );
    }

    #[test]
    fn qc_range_and_intensity_reach_the_outcome() {
        let mut station = rain_station(300);
        let huge = station.observe(&rain(at("08:10"), 1, 200.0, 600), at("08:10"));
        assert_eq!(reason(huge), RejectReason::OutOfRange);
        let burst = station.observe(&rain(at("08:11"), 2, 45.0, 60), at("08:11"));
        assert_eq!(reason(burst), RejectReason::RateOfChange);
        assert_eq!(
            rain_summary(&mut station, at("08:15")).last_observation,
            None
        );
    }

    #[test]
    fn wrong_reading_kind_is_rejected() {
        let mut station = rain_station(300);
        let level = station.observe(&stage(at("08:05"), 1, 2.0), at("08:05"));
        assert_eq!(reason(level), RejectReason::WrongReadingKind);
        let mut gauge =
            StationWindows::water_level(StationId::new(STATION), &WindowsConfig::default());
        let rainfall = gauge.observe(&rain(at("08:05"), 1, 1.0, 300), at("08:05"));
        assert_eq!(reason(rainfall), RejectReason::WrongReadingKind);
        let mut weather =
            StationWindows::weather(StationId::new(STATION), &WindowsConfig::default());
        let deformation = Reading::Deformation {
            east_mm: 1.0,
            north_mm: 0.0,
            up_mm: 0.0,
        };
        assert_eq!(
            reason(weather.observe(&obs(at("08:05"), 1, deformation), at("08:05"))),
            RejectReason::WrongReadingKind
        );
        let reading = Reading::Weather {
            air_temperature_c: 21.5,
            relative_humidity_pct: 40.0,
            wind_speed_m_s: 3.0,
            wind_direction_deg: 270.0,
        };
        assert_eq!(
            weather.observe(&obs(at("08:05"), 2, reading), at("08:05")),
            Outcome::Applied
        );
        weather.advance_to(at("08:10"));
        let StationSummary::Weather(summary) = weather.summary(at("08:10")) else {
            panic!("weather")
        };
        assert_eq!(
            (
                summary.air_temperature_c,
                summary.relative_humidity_pct,
                summary.wind_speed_m_s
            ),
            (Some(21.5), Some(40.0), Some(3.0))
        );
    }

    #[test]
    fn another_stations_observation_is_rejected() {
        let mut station =
            StationWindows::rain(StationId::new("R002"), 300, &WindowsConfig::default());
        assert_eq!(
            reason(station.observe(&rain(at("08:05"), 1, 1.0, 300), at("08:05"))),
            RejectReason::UnknownStation
        );
    }

    #[test]
    fn completeness_counts_a_missing_report() {
        let mut station = rain_station(300);
        // 08:45 is missing: 5 of the 6 reports the 30-min window at 09:00 expects.
        feed(
            &mut station,
            &table("08:35 0.0\n08:40 0.2\n08:50 0.0\n08:55 1.0\n09:00 0.0"),
        );
        let summary = rain_summary(&mut station, at("09:00"));
        assert_eq!(summary.windows[0].completeness, 1.0);
        assert_eq!(summary.windows[1].completeness, 5.0 / 6.0);
        assert_eq!(summary.windows[2].completeness, 5.0 / 12.0);
    }

    #[test]
    fn a_silent_station_drains_to_zero() {
        let mut station = rain_station(300);
        feed(&mut station, &table(MORNING));
        let next_day = at("09:00").plus_ms(25 * HOUR_MS);
        let summary = rain_summary(&mut station, next_day);
        assert!(summary
            .windows
            .iter()
            .all(|w| w.mm == 0.0 && w.completeness == 0.0));
        assert_eq!(summary.today_mm, 0.0);
        assert_eq!(summary.last_observation, Some(at("09:00")));
    }

    /// TV3.1 (hazards.md §3) through the station: 10, 0, 20 mm on three met days, then Pa at the
    /// start of each day is 9.0, 8.1 and 25.29 mm.
    #[test]
    fn antecedent_after_three_met_days() {
        let mut station = rain_station(3600);
        let day1 = at("10:00");
        let day_ms = 24 * HOUR_MS;
        for (sequence, (t, mm)) in [
            (day1, 6.0),
            (day1.plus_ms(HOUR_MS), 4.0),
            (day1.plus_ms(2 * day_ms), 20.0),
        ]
        .into_iter()
        .enumerate()
        {
            station.advance_to(t);
            assert_eq!(
                station.observe(&rain(t, sequence as u64, mm, 3600), t),
                Outcome::Applied
            );
        }
        let close = |actual: f64, expected: f64| {
            assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}")
        };
        let day3 = rain_summary(&mut station, day1.plus_ms(2 * day_ms + HOUR_MS));
        assert_eq!(day3.today_mm, 20.0);
        close(day3.antecedent_mm, 8.1);
        let day4 = rain_summary(&mut station, day1.plus_ms(3 * day_ms));
        assert_eq!(day4.today_mm, 0.0);
        close(day4.antecedent_mm, 25.29);
        // 20:00 Beijing time closes the day: rain stamped 20:00 counts for the day that ends then.
        let mut evening = rain_station(3600);
        feed(&mut evening, &table("20:00 3.0\n20:05 1.0"));
        let StationSummary::Rain(summary) = evening.summary(at("20:05")) else {
            panic!("rain")
        };
        assert_eq!(summary.today_mm, 1.0);
        close(summary.antecedent_mm, 2.7);
    }

    #[test]
    fn stage_rise_rate_and_qc() {
        let mut gauge =
            StationWindows::water_level(StationId::new(STATION), &WindowsConfig::default());
        let rows =
            table("08:00 1.0\n08:10 1.1\n08:20 1.2\n08:30 1.3\n08:40 1.4\n08:50 1.5\n09:00 1.6");
        // Deliver 08:50 last: it is checked against both neighbours and inserted in place.
        for (sequence, &(t, metres)) in rows
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 5)
            .chain([(5, &rows[5])])
        {
            assert_eq!(
                gauge.observe(&stage(t, sequence as u64, metres), t.plus_ms(MINUTE_MS)),
                Outcome::Applied
            );
        }
        let jump = gauge.observe(&stage(at("09:10"), 10, 2.6), at("09:10"));
        assert_eq!(reason(jump), RejectReason::RateOfChange);
        let spike = gauge.observe(&stage(at("08:45"), 11, 3.0), at("09:10"));
        assert_eq!(reason(spike), RejectReason::RateOfChange);
        let absurd = gauge.observe(&stage(at("09:05"), 12, 150.0), at("09:10"));
        assert_eq!(reason(absurd), RejectReason::OutOfRange);

        gauge.advance_to(at("09:00"));
        let StationSummary::WaterLevel(summary) = gauge.summary(at("09:00")) else {
            panic!("stage")
        };
        assert_eq!(summary.latest_m, Some(1.6));
        assert_eq!(summary.max_1h_m, Some(1.6));
        let rise = summary.rise_m_per_h.unwrap();
        assert!((rise - 0.6).abs() < 1e-9, "{rise}");
        // Readings after the tick do not leak into it.
        let StationSummary::WaterLevel(earlier) = gauge.summary(at("08:30")) else {
            panic!("stage")
        };
        assert_eq!(earlier.latest_m, Some(1.3));
        assert!((earlier.rise_m_per_h.unwrap() - 0.6).abs() < 1e-9);
        // Silent for long enough, the gauge forgets its stages but not when it last reported.
        gauge.advance_to(at("11:00"));
        let StationSummary::WaterLevel(silent) = gauge.summary(at("11:00")) else {
            panic!("stage")
        };
        assert_eq!(
            (silent.latest_m, silent.max_1h_m, silent.rise_m_per_h),
            (None, None, None)
        );
        assert_eq!(silent.last_observation, Some(at("09:00")));
    }

    /// TV1.2 (hazards.md §1.5): Hami Sheyuegou 2018-07-31, hourly Thiessen areal rain for hours
    /// ending 01…14 BJT, fed as one 60-min reading per hour; window maxima 29.2, 72.9, 91.4, 109.1.
    #[test]
    fn tv1_2_hami_sheyuegou_window_maxima() {
        let thiessen = [
            0.0, 2.9, 1.5, 10.5, 3.8, 4.2, 29.2, 27.6, 16.1, 8.8, 4.1, 0.0, 0.4, 0.5,
        ];
        let midnight = EventTime::parse_rfc3339("2018-07-31T00:00:00+08:00").unwrap();
        let mut station = rain_station(3600);
        let mut maxima = [0.0f64; 4];
        // Run six hours past the last report so every window drains through its maximum.
        for hour in 1..=20 {
            let t = midnight.plus_ms(hour * HOUR_MS);
            if let Some(&mm) = thiessen.get(hour as usize - 1) {
                assert_eq!(
                    station.observe(&rain(t, hour as u64, mm, 3600), t),
                    Outcome::Applied
                );
            }
            let summary = rain_summary(&mut station, t);
            for (max, minutes) in maxima.iter_mut().zip([60, 180, 360, 720]) {
                let window = summary
                    .windows
                    .iter()
                    .find(|w| w.duration_min == minutes)
                    .unwrap();
                *max = max.max(window.mm);
            }
        }
        assert_eq!(maxima, [29.2, 72.9, 91.4, 109.1]);
    }

    #[test]
    fn rain_state_stays_under_8_kib() {
        let mut station = rain_station(60);
        let start = at("00:00");
        for minute in 1..=2 * 24 * 60 {
            let t = start.plus_ms(minute * MINUTE_MS);
            let mm = if minute % 7 == 0 {
                0.0
            } else {
                f64::from(minute as u32 % 5) / 10.0
            };
            assert_eq!(
                station.observe(&rain(t, minute as u64, mm, 60), t),
                Outcome::Applied
            );
            assert!(
                station.state_bytes() < 8 * 1024,
                "{} bytes at minute {minute}",
                station.state_bytes()
            );
        }
        let StationWindows::Rain(rain_state) = &station else {
            panic!("rain")
        };
        assert!(rain_state.daily.len() <= 16);
        assert!(rain_state.intake.seen.len() <= 31);
    }

    #[test]
    fn config_parses_with_defaults_and_names_bad_fields() {
        let cfg: WindowsConfig =
            toml::from_str("slot = \"10m\"\n[qc]\nstuck-identical-steps = 4").unwrap();
        assert_eq!(cfg.qc.stuck_identical_steps, 4);
        assert_eq!(
            cfg.rain_durations_min,
            WindowsConfig::default().rain_durations_min
        );
        cfg.validate().unwrap();
        assert!(toml::from_str::<WindowsConfig>("window = \"5m\"").is_err());
        let bad = |cfg: WindowsConfig| cfg.validate().unwrap_err();
        let base = WindowsConfig::default;
        assert!(bad(WindowsConfig {
            rain_durations_min: vec![10, 12],
            ..base()
        })
        .contains("rain-durations-min"));
        assert!(bad(WindowsConfig {
            allowed_lateness: "7m".into(),
            ..base()
        })
        .contains("allowed-lateness"));
        assert!(bad(WindowsConfig {
            slot: "5".into(),
            ..base()
        })
        .contains("windows.slot"));
        assert!(bad(WindowsConfig {
            max_future: "soon".into(),
            ..base()
        })
        .contains("max-future"));
        assert!(bad(WindowsConfig {
            api_k: 1.5,
            ..base()
        })
        .contains("api-k"));
        let qc = QcConfig {
            max_stage_rate_m_per_h: 0.0,
            ..QcConfig::default()
        };
        assert!(bad(WindowsConfig { qc, ..base() }).contains("windows.qc.max-stage-rate-m-per-h"));
    }
}
