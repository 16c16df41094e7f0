//! Verification of warnings against an events catalogue (what really happened, where and when):
//! hits, misses, false alarms, POD, FAR, CSI and lead times per level threshold, hazard and
//! prefecture ([`plot`] draws them). `tianshan backtest` replays an archive (or reads a warnings file) and scores the
//! warnings with [`verify`]; this module reads no file and no clock.
//!
//! # Scores
//! The contingency-table scores of yes/no forecasts, as defined in Wilks, *Statistical Methods
//! in the Atmospheric Sciences* (3rd ed., 2011), §8.2.2 "Scalar attributes of the 2×2
//! contingency table", and on the pages of the WWRP/WGNE Joint Working Group on Forecast
//! Verification Research ("Methods for dichotomous (yes/no) forecasts"):
//! - POD = H / (H + M), probability of detection (hit rate);
//! - FAR = F / (H + F), false alarm ratio;
//! - CSI = H / (H + M + F), critical success index (threat score).
//!
//! Each is undefined (`None`) when its denominator is 0. Correct negatives are not counted: for
//! warnings of rare events they are neither well defined nor needed by these three scores.
//! Hits and misses are counted on events, false alarms on warning threads (the event-based
//! convention of warning verification, as in storm-based verification of US NWS warnings).
//!
//! # Matching rule
//! At a level threshold θ ("warned at ≥ θ"):
//! - the events are the catalogue's events of severity ≥ θ; an event without a severity counts
//!   at every threshold;
//! - the warnings are the threads (the versions sharing an id) that reached a level ≥ θ; a
//!   thread *reaches θ at* `a`, the issue time of its first version at ≥ θ that is not a
//!   cancellation;
//! - a thread is *in force* from its first version until its cancellation, or else until the
//!   expiry of its last version;
//! - a thread *hits* an event when the hazards are the same, they are at the same place (below),
//!   `start − lead_window ≤ a ≤ start`, and the thread is still in force at `start`;
//! - an event hit by at least one thread is a **hit**, with lead time `start − a` for the
//!   earliest such `a`; an event hit by none is a **miss** (a warning issued after the event
//!   started does not verify it: it is late);
//! - a thread that hits no event is a **false alarm**.
//!
//! Same place: an event with a target (basin, slope or fire zone) is at the place of the threads
//! with that target, whatever their areas. An event given by areas alone is at the place of a
//! thread when an area of the event covers one of the thread's finest areas or the other way
//! round. A code covers another when they are equal or its significant prefix begins the other
//! (a 6-digit GB/T 2260 code without its trailing `00` pairs: prefecture `650100` covers county
//! `650102`, which covers its 9-digit townships `650102xxx`); a thread's finest areas leave out
//! the codes that cover another of its codes (its county, when its townships are listed), since a
//! basin's warning names its county only to reach the county's duty officers.
//!
//! # Groups
//! Every event and thread counts in the all-hazards row and in its hazard's row, at every
//! threshold it qualifies for; and, for each prefecture its areas lie in (the caller's
//! `prefecture_of`), in that prefecture's rows too. A basin spanning two prefectures counts in
//! both, so per-region rows need not add up to the total; an area without a known prefecture
//! counts in no region row.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{AreaCode, WarningId};

pub mod plot;
use crate::time::EventTime;
use crate::warning::{Hazard, Level, Status, WarningEvent};

/// One event of the catalogue: a hazard that happened.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueEvent {
    /// The catalogue's id of the event.
    pub id: String,
    /// What happened.
    pub hazard: Hazard,
    /// The basin, slope or zone it happened in, when known.
    pub target: Option<String>,
    /// Where it happened: county or township codes (may be empty when `target` is set, which
    /// then decides the place; the areas still give the event's prefectures).
    pub area_codes: Vec<AreaCode>,
    /// When it started.
    pub start: EventTime,
    /// When it ended (at or after `start`).
    pub end: EventTime,
    /// Its severity on the warning scale, when assessed: it then counts only at thresholds up to
    /// this level.
    pub level: Option<Level>,
}

/// Why an events catalogue could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogueError {
    /// The header lacks a required column.
    #[error("the header has no `{column}` column (expected id,hazard,target,area_codes,start,end,level)")]
    MissingColumn {
        /// The column.
        column: &'static str,
    },
    /// A row is not CSV or has the wrong number of fields.
    #[error("line {line}: {detail}")]
    Row {
        /// 1-based line number in the file.
        line: u64,
        /// What is wrong.
        detail: String,
    },
    /// A field does not parse or breaks a rule.
    #[error("line {line}: field {field}: {detail}")]
    Field {
        /// 1-based line number in the file.
        line: u64,
        /// The column name.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Two events share an id.
    #[error("line {line}: field id: event `{id}` appears twice")]
    DuplicateId {
        /// 1-based line number of the second occurrence.
        line: u64,
        /// The id.
        id: String,
    },
}

/// Parses an events catalogue: CSV with a header naming at least the columns `id`, `hazard`,
/// `target`, `area_codes`, `start`, `end` and `level` (in any order; other columns such as
/// `note` are ignored), lines starting with `#` being comments. `hazard` is a snake_case hazard
/// name (`flash_flood`, …), `area_codes` codes separated by `;` (empty when `target` is set),
/// `start`/`end` RFC 3339 or epoch milliseconds, `level` a colour (`blue` … `red`) or empty.
///
/// # Errors
/// Returns [`CatalogueError`] naming the line and field of the first bad row.
pub fn parse_catalogue(text: &str) -> Result<Vec<CatalogueEvent>, CatalogueError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| CatalogueError::Row {
            line: 1,
            detail: e.to_string(),
        })?
        .clone();
    let column = |name: &'static str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or(CatalogueError::MissingColumn { column: name })
    };
    let columns = CatalogueColumns {
        id: column("id")?,
        hazard: column("hazard")?,
        target: column("target")?,
        area_codes: column("area_codes")?,
        start: column("start")?,
        end: column("end")?,
        level: column("level")?,
    };
    let mut events = Vec::new();
    let mut ids = BTreeSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| CatalogueError::Row {
            line: e.position().map_or(0, csv::Position::line),
            detail: e.to_string(),
        })?;
        let line = record.position().map_or(0, csv::Position::line);
        let event = columns.event(&record, line)?;
        if !ids.insert(event.id.clone()) {
            return Err(CatalogueError::DuplicateId { line, id: event.id });
        }
        events.push(event);
    }
    Ok(events)
}

/// Positions of the catalogue's columns in its header.
struct CatalogueColumns {
    id: usize,
    hazard: usize,
    target: usize,
    area_codes: usize,
    start: usize,
    end: usize,
    level: usize,
}

impl CatalogueColumns {
    fn event(
        &self,
        record: &csv::StringRecord,
        line: u64,
    ) -> Result<CatalogueEvent, CatalogueError> {
        let field = |index: usize| record.get(index).unwrap_or_default();
        let bad = |field: &'static str, detail: String| CatalogueError::Field {
            line,
            field,
            detail,
        };
        let id = field(self.id);
        if id.is_empty() {
            return Err(bad("id", "is empty".into()));
        }
        let hazard_name = field(self.hazard);
        let hazard = Hazard::parse(hazard_name).ok_or_else(|| {
            let known: Vec<&str> = Hazard::ALL.iter().map(|h| h.name()).collect();
            bad(
                "hazard",
                format!(
                    "unknown hazard `{hazard_name}` (known: {})",
                    known.join(", ")
                ),
            )
        })?;
        let target = Some(field(self.target))
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let area_codes: Vec<AreaCode> = field(self.area_codes)
            .split(';')
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(|code| {
                if code.len() >= 6 && code.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(AreaCode::new(code))
                } else {
                    Err(bad(
                        "area_codes",
                        format!("`{code}` is not a GB/T 2260 code of 6 or more digits"),
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        if target.is_none() && area_codes.is_empty() {
            return Err(bad(
                "area_codes",
                "is empty and so is target: the event is nowhere".into(),
            ));
        }
        let time = |name: &'static str, index: usize| {
            let text = field(index);
            match text.parse::<i64>() {
                Ok(ms) => Ok(EventTime(ms)),
                Err(_) => EventTime::parse_rfc3339(text).map_err(|e| bad(name, e)),
            }
        };
        let start = time("start", self.start)?;
        let end = time("end", self.end)?;
        if end < start {
            return Err(bad("end", "is before start".into()));
        }
        let level_name = field(self.level);
        let level = match level_name {
            "" => None,
            name => Some(Level::parse(name).ok_or_else(|| {
                bad(
                    "level",
                    format!("unknown level `{name}` (blue, yellow, orange, red or empty)"),
                )
            })?),
        };
        Ok(CatalogueEvent {
            id: id.to_owned(),
            hazard,
            target,
            area_codes,
            start,
            end,
            level,
        })
    }
}

/// How warnings are matched with events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationConfig {
    /// Longest lead time that still counts: a thread that reached the threshold longer than this
    /// before the event started does not verify it.
    pub lead_window_ms: i64,
}

impl Default for VerificationConfig {
    /// A 12-hour lead window: longer than any flash-flood or debris-flow warning of the rain
    /// windows (at most 24 h of rain, usually issued hours ahead) is meant to run ahead [U].
    fn default() -> Self {
        Self {
            lead_window_ms: 12 * 3_600_000,
        }
    }
}

/// The versions of one warning thread, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningThread {
    /// The thread id.
    pub id: WarningId,
    /// Its hazard.
    pub hazard: Hazard,
    /// Its target.
    pub target: String,
    /// Every area any version reached, sorted.
    pub area_codes: Vec<AreaCode>,
    /// `reached[i]`: when the thread first reached `Level::ALL[i]` or higher, if it did.
    pub reached: [Option<EventTime>; 4],
    /// When its first version was issued.
    pub from: EventTime,
    /// When it stopped being in force: its cancellation, or the expiry of its last version.
    pub until: EventTime,
    /// Its highest level.
    pub max_level: Level,
}

impl WarningThread {
    /// Returns when the thread first reached `level` or higher.
    pub fn reached_at(&self, level: Level) -> Option<EventTime> {
        self.reached[level_index(level)]
    }

    fn in_force_at(&self, time: EventTime) -> bool {
        self.from <= time && time <= self.until
    }
}

fn level_index(level: Level) -> usize {
    Level::ALL
        .iter()
        .position(|l| *l == level)
        .expect("Level::ALL holds every level")
}

/// Groups warning versions into threads, in id order. Versions may come in any order; within a
/// thread they are taken in version order.
pub fn warning_threads(versions: &[WarningEvent]) -> Vec<WarningThread> {
    let mut by_id: BTreeMap<&WarningId, Vec<&WarningEvent>> = BTreeMap::new();
    for version in versions {
        by_id.entry(&version.id).or_default().push(version);
    }
    by_id
        .into_values()
        .filter_map(|mut thread| {
            thread.sort_by_key(|version| (version.version, version.issued));
            let first = *thread.first()?;
            let last = *thread.last()?;
            let mut reached = [None; 4];
            let mut max_level = first.level;
            let mut area_codes = BTreeSet::new();
            for version in &thread {
                area_codes.extend(version.area_codes.iter().cloned());
                if version.status == Status::Cancelled {
                    continue;
                }
                max_level = max_level.max(version.level);
                for (index, level) in Level::ALL.iter().enumerate() {
                    if version.level >= *level {
                        let at = reached[index].get_or_insert(version.issued);
                        *at = (*at).min(version.issued);
                    }
                }
            }
            let until = match last.status {
                Status::Cancelled => last.issued,
                _ => last.expires,
            };
            Some(WarningThread {
                id: first.id.clone(),
                hazard: first.hazard,
                target: first.target.clone(),
                area_codes: area_codes.into_iter().collect(),
                reached,
                from: first.issued,
                until,
                max_level,
            })
        })
        .collect()
}

/// Returns a code's significant prefix: a 6-digit code without its trailing `00` pairs
/// (`650100` → `6501`), any other code as it is.
fn significant(code: &str) -> &str {
    let mut scope = code;
    if scope.len() == 6 {
        while scope.len() > 2 && scope.ends_with("00") {
            scope = &scope[..scope.len() - 2];
        }
    }
    scope
}

/// Returns true when an area of `a` covers an area of `b` or the other way round.
pub fn areas_overlap(a: &[AreaCode], b: &[AreaCode]) -> bool {
    a.iter().any(|x| {
        let x = significant(x.as_str());
        b.iter().any(|y| {
            let y = significant(y.as_str());
            x.starts_with(y) || y.starts_with(x)
        })
    })
}

/// Returns the codes of `codes` that cover no other code of `codes`.
fn finest(codes: &[AreaCode]) -> Vec<AreaCode> {
    codes
        .iter()
        .filter(|code| {
            let scope = significant(code.as_str());
            !codes.iter().any(|other| {
                let other = significant(other.as_str());
                other.len() > scope.len() && other.starts_with(scope)
            })
        })
        .cloned()
        .collect()
}

/// Returns when `thread` hits `event` at threshold `level`: the time it reached the threshold
/// (see the module's matching rule), or `None`.
pub fn hit_time(
    thread: &WarningThread,
    event: &CatalogueEvent,
    level: Level,
    config: &VerificationConfig,
) -> Option<EventTime> {
    if thread.hazard != event.hazard {
        return None;
    }
    let same_place = match &event.target {
        Some(target) => *target == thread.target,
        None => areas_overlap(&finest(&thread.area_codes), &event.area_codes),
    };
    if !same_place {
        return None;
    }
    let reached = thread.reached_at(level)?;
    let earliest = EventTime(event.start.millis() - config.lead_window_ms);
    (earliest <= reached && reached <= event.start && thread.in_force_at(event.start))
        .then_some(reached)
}

/// Hits, misses, false alarms and lead times of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scores {
    /// Events warned in time.
    pub hits: u32,
    /// Events nobody warned in time.
    pub misses: u32,
    /// Warning threads that warned of no event.
    pub false_alarms: u32,
    /// Lead time of each hit in ms, ascending.
    pub lead_times_ms: Vec<i64>,
}

fn ratio(numerator: u32, denominator: u32) -> Option<f64> {
    (denominator > 0).then(|| f64::from(numerator) / f64::from(denominator))
}

impl Scores {
    /// Returns the probability of detection H / (H + M), `None` without events.
    pub fn pod(&self) -> Option<f64> {
        ratio(self.hits, self.hits + self.misses)
    }

    /// Returns the false alarm ratio F / (H + F), `None` without hits or false alarms.
    pub fn far(&self) -> Option<f64> {
        ratio(self.false_alarms, self.hits + self.false_alarms)
    }

    /// Returns the critical success index H / (H + M + F), `None` when all three are 0.
    pub fn csi(&self) -> Option<f64> {
        ratio(self.hits, self.hits + self.misses + self.false_alarms)
    }

    /// Returns the median lead time in ms (the mean of the middle two for an even count).
    pub fn median_lead_ms(&self) -> Option<i64> {
        let n = self.lead_times_ms.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.lead_times_ms[n / 2]),
            _ => Some((self.lead_times_ms[n / 2 - 1] + self.lead_times_ms[n / 2]) / 2),
        }
    }

    /// Returns the median lead time in whole minutes (`150 min`), or `-` without hits.
    pub fn median_lead_text(&self) -> String {
        self.median_lead_ms()
            .map_or_else(|| "-".to_owned(), |ms| format!("{} min", ms / 60_000))
    }
}

/// The group a row of scores is about; `None` stands for all hazards or all regions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScoreKey {
    /// The threshold: warned at ≥ this level.
    pub level: Level,
    /// One hazard, or all.
    pub hazard: Option<Hazard>,
    /// One prefecture, or all.
    pub region: Option<AreaCode>,
}

/// The scores of every group, in key order (threshold, hazard, region; all before each one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verification {
    /// Scores per group.
    pub scores: BTreeMap<ScoreKey, Scores>,
    /// For each threshold, the events hit with the thread that hit them first, as
    /// `(event id, warning id, lead ms)` in event order: the evidence of each hit.
    pub matches: BTreeMap<Level, Vec<(String, WarningId, i64)>>,
}

impl Verification {
    /// Returns the scores of one group (zeros when it saw nothing).
    pub fn get(&self, level: Level, hazard: Option<Hazard>, region: Option<&AreaCode>) -> Scores {
        self.scores
            .get(&ScoreKey {
                level,
                hazard,
                region: region.cloned(),
            })
            .cloned()
            .unwrap_or_default()
    }
}

/// Scores `versions` (every warning version issued) against `events` by the module's rule.
/// `prefecture_of` gives the prefecture of an area code (`Region::prefecture_of`).
pub fn verify(
    versions: &[WarningEvent],
    events: &[CatalogueEvent],
    prefecture_of: impl Fn(&AreaCode) -> Option<AreaCode>,
    config: &VerificationConfig,
) -> Verification {
    let threads = warning_threads(versions);
    let prefectures = |codes: &[AreaCode]| -> BTreeSet<AreaCode> {
        codes.iter().filter_map(&prefecture_of).collect()
    };
    let event_regions: Vec<BTreeSet<AreaCode>> =
        events.iter().map(|e| prefectures(&e.area_codes)).collect();
    let thread_regions: Vec<BTreeSet<AreaCode>> =
        threads.iter().map(|t| prefectures(&t.area_codes)).collect();
    let mut verification = Verification::default();
    for level in Level::ALL {
        // Every threshold gets its all-hazards row, so a sweep always has a row to read.
        verification
            .scores
            .entry(ScoreKey {
                level,
                hazard: None,
                region: None,
            })
            .or_default();
        let counted: Vec<bool> = events
            .iter()
            .map(|e| e.level.is_none_or(|l| l >= level))
            .collect();
        let mut verified = vec![false; threads.len()];
        let mut matches = Vec::new();
        for ((event, regions), _) in events
            .iter()
            .zip(&event_regions)
            .zip(&counted)
            .filter(|(_, counted)| **counted)
        {
            let mut first: Option<(EventTime, &WarningId)> = None;
            for (index, thread) in threads.iter().enumerate() {
                if let Some(at) = hit_time(thread, event, level, config) {
                    verified[index] = true;
                    if first.is_none_or(|(earliest, _)| at < earliest) {
                        first = Some((at, &thread.id));
                    }
                }
            }
            let lead = first.map(|(at, _)| event.start.millis() - at.millis());
            for key in keys(level, event.hazard, regions) {
                let scores = verification.scores.entry(key).or_default();
                match lead {
                    Some(lead) => {
                        scores.hits += 1;
                        scores.lead_times_ms.push(lead);
                    }
                    None => scores.misses += 1,
                }
            }
            if let (Some((_, id)), Some(lead)) = (first, lead) {
                matches.push((event.id.clone(), id.clone(), lead));
            }
        }
        for ((thread, regions), verified) in threads.iter().zip(&thread_regions).zip(verified) {
            if verified || thread.reached_at(level).is_none() {
                continue;
            }
            for key in keys(level, thread.hazard, regions) {
                verification.scores.entry(key).or_default().false_alarms += 1;
            }
        }
        verification.matches.insert(level, matches);
    }
    for scores in verification.scores.values_mut() {
        scores.lead_times_ms.sort_unstable();
    }
    verification
}

/// Most values a sweep may run: each is a whole replay.
pub const MAX_SWEEP_VALUES: usize = 101;

/// Parses a sweep of the rain-threshold factor, `factor=START:END:STEP` (e.g.
/// `factor=0.6:1.4:0.1`), into its values from START up to END inclusive, each rounded to 1e-9
/// so that steps of 0.1 give 0.7, not 0.7000000000000001.
///
/// # Errors
/// Returns a message naming the part of the spec that is wrong.
pub fn parse_sweep(spec: &str) -> Result<Vec<f64>, String> {
    let Some((name, range)) = spec.split_once('=') else {
        return Err(format!("sweep `{spec}` is not NAME=START:END:STEP"));
    };
    if name.trim() != "factor" {
        return Err(format!(
            "sweep name `{}` is not `factor` (the rain-threshold factor is the one swept)",
            name.trim()
        ));
    }
    let parts: Vec<&str> = range.split(':').map(str::trim).collect();
    let [start, end, step] = parts[..] else {
        return Err(format!(
            "sweep range `{range}` is not START:END:STEP (found {} parts)",
            parts.len()
        ));
    };
    let number = |part: &str, what: &str| -> Result<f64, String> {
        part.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("sweep {what} `{part}` is not a number"))
    };
    let (start, end, step) = (
        number(start, "start")?,
        number(end, "end")?,
        number(step, "step")?,
    );
    if start <= 0.0 {
        return Err(format!("sweep start must be positive, got {start}"));
    }
    if end < start {
        return Err(format!("sweep end {end} is below start {start}"));
    }
    if step <= 0.0 {
        return Err(format!("sweep step must be positive, got {step}"));
    }
    let count = ((end - start) / step + 1e-9).floor() + 1.0;
    if count > MAX_SWEEP_VALUES as f64 {
        return Err(format!(
            "sweep of {count} values: at most {MAX_SWEEP_VALUES} (each is a replay)"
        ));
    }
    Ok((0..count as usize)
        .map(|i| ((start + step * i as f64) * 1e9).round() / 1e9)
        .collect())
}

/// Returns the groups something of `hazard` in `regions` counts in at `level`.
fn keys(level: Level, hazard: Hazard, regions: &BTreeSet<AreaCode>) -> Vec<ScoreKey> {
    let mut keys = Vec::with_capacity(2 + 2 * regions.len());
    for hazard in [None, Some(hazard)] {
        keys.push(ScoreKey {
            level,
            hazard,
            region: None,
        });
        for region in regions {
            keys.push(ScoreKey {
                level,
                hazard,
                region: Some(region.clone()),
            });
        }
    }
    keys
}

#[cfg(test)]
mod tests;
