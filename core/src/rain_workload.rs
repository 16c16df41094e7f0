//! The benchmark workload of `shared/bench/WORKLOAD.md` as a pure function over CSV bytes:
//! per-station hopping rainfall windows and their threshold exceedances.
//!
//! The windows are the same [`SlotWindows`] the station actors use: one slot per window slide
//! (600 s), one duration per window size, lateness 0. Rows must come with `ts` non-decreasing,
//! so a zero-delay watermark is exact: when a row's slot moves past its station's head, every
//! window end the station steps over is final and is tallied. At the end of the input every
//! station is advanced past its last slot by the longest window, which flushes the windows that
//! extend past the end of the data.
//!
//! The parser is hand-written over the byte slice and allocates nothing per row: station ids
//! index a `Vec` of per-station windows, and `rain_mm` is read exactly into integer tenths.

use crate::slot_windows::{SlotWindows, WindowTotal};

/// Largest station id accepted; it bounds the per-station table a malformed id could allocate.
pub const MAX_STATION_ID: u64 = (1 << 20) - 1;

/// Header line that `gen_rain.py --header` writes; skipped when it is the first line.
const HEADER: &[u8] = b"station_id,ts,rain_mm";

/// Window slide and the window sizes with their exceedance thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Window slide in seconds; window ends are multiples of it (epoch-aligned).
    pub slot_s: i64,
    /// `(size_s, threshold_tenths)` per duration, in output order; each size is a multiple of
    /// `slot_s`, and a window exceeds when its sum is strictly greater than the threshold.
    pub windows: Vec<(i64, i64)>,
}

impl Default for WorkloadSpec {
    /// Returns the WORKLOAD.md table: slide 600 s; 1 h / 30 mm, 3 h / 50 mm, 6 h / 70 mm,
    /// 24 h / 100 mm.
    fn default() -> Self {
        Self {
            slot_s: 600,
            windows: vec![(3_600, 300), (10_800, 500), (21_600, 700), (86_400, 1_000)],
        }
    }
}

/// Tally of one duration's window rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationResult {
    /// Window size in seconds.
    pub duration_s: i64,
    /// Number of `(station, end)` windows holding at least one observation.
    pub window_rows: u64,
    /// Number of those windows whose sum exceeds the threshold.
    pub exceed_rows: u64,
    /// Sum of all window sums, in tenths of a millimetre (a checksum of window contents).
    pub sum_tenths: i64,
}

/// Result of [`run_workload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadReport {
    /// Number of observation rows read.
    pub rows: u64,
    /// Number of distinct stations seen.
    pub stations: usize,
    /// One tally per configured duration, in spec order.
    pub per_duration: Vec<DurationResult>,
    /// Bytes of window state each station holds ([`SlotWindows::state_bytes`]).
    pub state_bytes_per_station: usize,
}

impl WorkloadReport {
    /// Returns the canonical text form of WORKLOAD.md: a header, one line per duration and a
    /// `TOTAL` line, each ending with a newline.
    pub fn canonical(&self) -> String {
        let mut out = String::from("duration_s,window_rows,exceed_rows,sum_tenths\n");
        let mut total = DurationResult::default();
        for result in &self.per_duration {
            out.push_str(&format!(
                "{},{},{},{}\n",
                result.duration_s, result.window_rows, result.exceed_rows, result.sum_tenths
            ));
            total.window_rows += result.window_rows;
            total.exceed_rows += result.exceed_rows;
            total.sum_tenths += result.sum_tenths;
        }
        out.push_str(&format!(
            "TOTAL,{},{},{}\n",
            total.window_rows, total.exceed_rows, total.sum_tenths
        ));
        out
    }
}

/// Error of [`run_workload`]. Line numbers count from 1 and include a skipped header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The spec cannot be turned into slot windows.
    #[error("invalid workload spec: {reason}")]
    InvalidSpec {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A row does not have the form `station_id,ts,rain_mm`.
    #[error("line {line}: malformed {field}: {reason}")]
    Malformed {
        /// Line of the row.
        line: u64,
        /// Column that failed to parse (`station_id`, `ts` or `rain_mm`).
        field: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A station id is above [`MAX_STATION_ID`].
    #[error("line {line}: station id {station} is above the maximum {MAX_STATION_ID}")]
    StationIdTooLarge {
        /// Line of the row.
        line: u64,
        /// The station id read.
        station: u64,
    },
    /// A row's `ts` is older than the previous row's, which the zero-delay watermark forbids.
    #[error("line {line}: ts {ts} is older than the previous ts {previous}")]
    TsDecreased {
        /// Line of the row.
        line: u64,
        /// The row's ts.
        ts: i64,
        /// The previous row's ts.
        previous: i64,
    },
}

/// One parsed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    station: u64,
    ts: i64,
    tenths: i32,
}

/// A parse failure inside a row: the column and the reason.
type FieldError = (&'static str, &'static str);

/// Reads the tally-relevant numbers out of a spec, validated.
struct Plan {
    slot_s: i64,
    durations: Vec<u32>,
    thresholds: Vec<i64>,
    longest: i64,
}

impl Plan {
    fn try_new(spec: &WorkloadSpec) -> Result<Self, WorkloadError> {
        let invalid = |reason| WorkloadError::InvalidSpec { reason };
        if spec.slot_s <= 0 {
            return Err(invalid("slot_s must be positive"));
        }
        if spec.windows.is_empty() {
            return Err(invalid("at least one window is required"));
        }
        let mut durations = Vec::with_capacity(spec.windows.len());
        for &(size_s, _) in &spec.windows {
            if size_s <= 0 || size_s % spec.slot_s != 0 {
                return Err(invalid("window sizes must be positive multiples of slot_s"));
            }
            let slots = u32::try_from(size_s / spec.slot_s)
                .map_err(|_| invalid("a window spans too many slots"))?;
            durations.push(slots);
        }
        let longest = durations.iter().copied().max().map_or(0, i64::from);
        Ok(Self {
            slot_s: spec.slot_s,
            thresholds: spec
                .windows
                .iter()
                .map(|&(_, threshold)| threshold)
                .collect(),
            durations,
            longest,
        })
    }
}

/// Counts the window rows of one final window end: every duration whose window holds a report.
#[inline]
fn tally(results: &mut [DurationResult], thresholds: &[i64], totals: &[WindowTotal]) {
    for ((result, &threshold), total) in results.iter_mut().zip(thresholds).zip(totals) {
        if total.reports > 0 {
            result.window_rows += 1;
            result.sum_tenths += total.sum;
            result.exceed_rows += u64::from(total.sum > threshold);
        }
    }
}

/// Runs the WORKLOAD.md job over headerless `station_id,ts,rain_mm` CSV (an optional
/// `station_id,ts,rain_mm` header line is skipped) and returns the per-duration tallies.
///
/// Blank lines are skipped and `\r\n` line ends are accepted. `rain_mm` is a non-negative
/// decimal with at most one fractional digit (`0.3`, `12.0`, `5`), read exactly as tenths.
///
/// # Errors
/// Returns [`WorkloadError::InvalidSpec`] for a spec whose sizes are not positive multiples of
/// the slide, and a line-numbered [`WorkloadError`] for the first malformed row, station id
/// above [`MAX_STATION_ID`], or `ts` older than the previous row's.
pub fn run_workload(csv: &[u8], spec: &WorkloadSpec) -> Result<WorkloadReport, WorkloadError> {
    let plan = Plan::try_new(spec)?;
    let mut results: Vec<DurationResult> = spec
        .windows
        .iter()
        .map(|&(duration_s, _)| DurationResult {
            duration_s,
            ..DurationResult::default()
        })
        .collect();
    let template = SlotWindows::new(&plan.durations, 0);
    let mut windows: Vec<Option<SlotWindows>> = Vec::new();
    let mut stations = 0usize;
    let mut rows = 0u64;
    let mut line = 0u64;
    let mut pos = 0usize;
    // The slot of the previous row's ts: rows come grouped by ts, so one division serves many.
    let mut previous: Option<(i64, i64)> = None;

    if let Some(after) = line_after_prefix(csv, HEADER) {
        line = 1;
        pos = after;
    }
    while pos < csv.len() {
        line += 1;
        if let Some(after) = line_end(csv, pos) {
            pos = after;
            continue;
        }
        let (row, after) =
            parse_row(csv, pos).map_err(|(field, reason)| WorkloadError::Malformed {
                line,
                field,
                reason,
            })?;
        pos = after;
        rows += 1;

        let slot = match previous {
            Some((ts, slot)) if ts == row.ts => slot,
            Some((ts, _)) if row.ts < ts => {
                return Err(WorkloadError::TsDecreased {
                    line,
                    ts: row.ts,
                    previous: ts,
                });
            }
            _ => {
                let slot = row.ts.div_euclid(plan.slot_s);
                previous = Some((row.ts, slot));
                slot
            }
        };
        if row.station > MAX_STATION_ID {
            return Err(WorkloadError::StationIdTooLarge {
                line,
                station: row.station,
            });
        }
        let index =
            usize::try_from(row.station).expect("station ids up to MAX_STATION_ID fit usize");
        if index >= windows.len() {
            windows.resize_with(index + 1, || None);
        }
        let station = windows[index].get_or_insert_with(|| {
            stations += 1;
            template.clone()
        });
        if station.head().is_some_and(|head| slot > head) {
            station.advance_visiting(slot, |_, totals| {
                tally(&mut results, &plan.thresholds, totals)
            });
        }
        station
            .add(slot, row.tenths)
            .expect("ts is non-decreasing, so a slot is never behind its station's head");
    }

    if let Some((_, last_slot)) = previous {
        // The last window holding `last_slot` ends at head `last_slot + longest - 1`.
        let flush_to = last_slot + plan.longest;
        for station in windows.iter_mut().flatten() {
            station.advance_visiting(flush_to, |_, totals| {
                tally(&mut results, &plan.thresholds, totals)
            });
        }
    }
    Ok(WorkloadReport {
        rows,
        stations,
        per_duration: results,
        state_bytes_per_station: template.state_bytes(),
    })
}

/// One row of a workload file, as read by [`rain_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RainRow {
    /// The `station_id` column.
    pub station: u64,
    /// Event time (end of the interval), epoch seconds.
    pub ts: i64,
    /// Rain in the interval, in tenths of a millimetre.
    pub tenths: i32,
}

/// Iterator over the rows of a workload file; see [`rain_rows`].
#[derive(Debug)]
pub struct RainRows<'a> {
    csv: &'a [u8],
    pos: usize,
    line: u64,
    failed: bool,
}

/// Reads the rows of a workload file one by one with the same parser as [`run_workload`]
/// (header and blank lines skipped); the first malformed row ends the iteration with its error.
pub fn rain_rows(csv: &[u8]) -> RainRows<'_> {
    let (pos, line) = line_after_prefix(csv, HEADER).map_or((0, 0), |after| (after, 1));
    RainRows {
        csv,
        pos,
        line,
        failed: false,
    }
}

impl Iterator for RainRows<'_> {
    type Item = Result<RainRow, WorkloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.csv.len() {
            self.line += 1;
            if let Some(after) = line_end(self.csv, self.pos) {
                self.pos = after;
                continue;
            }
            return Some(match parse_row(self.csv, self.pos) {
                Ok((row, after)) => {
                    self.pos = after;
                    Ok(RainRow {
                        station: row.station,
                        ts: row.ts,
                        tenths: row.tenths,
                    })
                }
                Err((field, reason)) => {
                    self.failed = true;
                    Err(WorkloadError::Malformed {
                        line: self.line,
                        field,
                        reason,
                    })
                }
            });
        }
        None
    }
}

/// Returns the position after the line end at `pos` (`\n` or `\r\n`), or `None` when the
/// line holds something else.
#[inline]
fn line_end(bytes: &[u8], pos: usize) -> Option<usize> {
    match bytes.get(pos..) {
        Some([b'\n', ..]) => Some(pos + 1),
        Some([b'\r', b'\n', ..]) => Some(pos + 2),
        _ => None,
    }
}

/// Returns the start of the second line when the first line is exactly `prefix`.
fn line_after_prefix(bytes: &[u8], prefix: &[u8]) -> Option<usize> {
    if !bytes.starts_with(prefix) {
        return None;
    }
    if prefix.len() == bytes.len() {
        return Some(bytes.len());
    }
    line_end(bytes, prefix.len())
}

/// Parses the unsigned decimal digits at `pos` (at most 18, so the value cannot overflow) and
/// returns the value and the position after them.
#[inline]
fn parse_digits(bytes: &[u8], mut pos: usize) -> Result<(u64, usize), &'static str> {
    let start = pos;
    let mut value = 0u64;
    while let Some(&byte) = bytes.get(pos) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if pos - start == 18 {
            return Err("too many digits");
        }
        value = value * 10 + u64::from(digit);
        pos += 1;
    }
    if pos == start {
        return Err("expected a digit");
    }
    Ok((value, pos))
}

/// Requires a comma at `pos` and returns the position after it.
#[inline]
fn expect_comma(bytes: &[u8], pos: usize) -> Result<usize, &'static str> {
    match bytes.get(pos) {
        Some(b',') => Ok(pos + 1),
        _ => Err("expected a comma after it"),
    }
}

/// Parses one `station_id,ts,rain_mm` row at `pos` and returns it with the position after its
/// line end (or the end of input).
#[inline]
fn parse_row(bytes: &[u8], pos: usize) -> Result<(Row, usize), FieldError> {
    const STATION: &str = "station_id";
    const TS: &str = "ts";
    const RAIN: &str = "rain_mm";

    let (station, pos) = parse_digits(bytes, pos).map_err(|reason| (STATION, reason))?;
    let pos = expect_comma(bytes, pos).map_err(|reason| (STATION, reason))?;

    let negative = bytes.get(pos) == Some(&b'-');
    let (magnitude, pos) =
        parse_digits(bytes, pos + usize::from(negative)).map_err(|reason| (TS, reason))?;
    // At most 18 digits, so the magnitude fits i64.
    let magnitude = i64::try_from(magnitude).map_err(|_| (TS, "out of range"))?;
    let ts = if negative { -magnitude } else { magnitude };
    let pos = expect_comma(bytes, pos).map_err(|reason| (TS, reason))?;

    let (whole, mut pos) = parse_digits(bytes, pos).map_err(|reason| (RAIN, reason))?;
    let mut tenths = whole.checked_mul(10).ok_or((RAIN, "out of range"))?;
    if bytes.get(pos) == Some(&b'.') {
        let fraction = match bytes.get(pos + 1) {
            Some(&byte) if byte.is_ascii_digit() => byte - b'0',
            _ => return Err((RAIN, "expected a digit after the decimal point")),
        };
        tenths += u64::from(fraction);
        pos += 2;
    }
    let tenths = i32::try_from(tenths).map_err(|_| (RAIN, "out of range"))?;
    let pos = match bytes.get(pos) {
        None => pos,
        Some(_) => line_end(bytes, pos)
            .ok_or((RAIN, "expected one decimal digit and the end of the line"))?,
    };
    Ok((
        Row {
            station,
            ts,
            tenths,
        },
        pos,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Hand-computed by the window rule of WORKLOAD.md (`ts < end <= ts + size`), T0 = 1704067200:
    /// - station 0, one 30.0 mm reading at T0: 6/18/36/144 windows of exactly 300 tenths; the 1 h
    ///   sum equals the 30 mm threshold, so it is not an exceedance.
    /// - station 1, 25.0 mm at T0+60 and 5.1 mm at T0+660 (the next slot): ends T0+600·k for
    ///   k = 1..=7 in 1 h, sums 250, 301 ×5, 51, so five exceedances; likewise 19 / 37 / 145 rows
    ///   in the longer windows, each checksum 301 × size/600.
    /// - station 7, "5" (an integer, 50 tenths) at T0+660.
    ///
    /// Every window row after T0+660 is a trailing window, emitted only by the final flush.
    const TINY: &str = "0,1704067200,30.0\n1,1704067260,25.0\n1,1704067860,5.1\n7,1704067860,5";
    const TINY_CANONICAL: &str = "duration_s,window_rows,exceed_rows,sum_tenths\n\
                                  3600,19,5,3906\n\
                                  10800,55,0,11718\n\
                                  21600,109,0,23436\n\
                                  86400,433,0,93744\n\
                                  TOTAL,616,5,132804\n";

    #[test]
    fn tiny_input_gives_the_hand_computed_canonical_output() {
        let report = run_workload(TINY.as_bytes(), &WorkloadSpec::default()).unwrap();
        assert_eq!(report.rows, 4);
        assert_eq!(report.stations, 3);
        assert_eq!(report.canonical(), TINY_CANONICAL);
    }

    #[test]
    fn header_crlf_and_blank_lines_do_not_change_the_result() {
        let text = format!(
            "station_id,ts,rain_mm\r\n{}\r\n\n",
            TINY.replace('\n', "\r\n")
        );
        let report = run_workload(text.as_bytes(), &WorkloadSpec::default()).unwrap();
        assert_eq!(report.canonical(), TINY_CANONICAL);
    }

    #[test]
    fn window_state_stays_under_4_kib_per_station() {
        let report = run_workload(TINY.as_bytes(), &WorkloadSpec::default()).unwrap();
        assert!(
            report.state_bytes_per_station < 4096,
            "{}",
            report.state_bytes_per_station
        );
    }

    #[test]
    fn empty_input_gives_zero_tallies() {
        let report = run_workload(b"", &WorkloadSpec::default()).unwrap();
        assert_eq!(report.rows, 0);
        assert!(report.canonical().ends_with("TOTAL,0,0,0\n"));
    }

    #[test]
    fn malformed_rows_name_their_line_and_column() {
        let spec = WorkloadSpec::default();
        let err = run_workload(b"0,1704067200,0.0\n1,17040x7200,0.3\n", &spec).unwrap_err();
        assert_eq!(
            err,
            WorkloadError::Malformed {
                line: 2,
                field: "ts",
                reason: "expected a comma after it"
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: malformed ts: expected a comma after it"
        );

        let cases: [(&[u8], u64, &str); 6] = [
            (b"0,1,0.0\n\nx,1,0.0\n", 3, "station_id"),
            (b"0,1,0.25\n", 1, "rain_mm"),
            (b"0,1,1.\n", 1, "rain_mm"),
            (b"0,1,-1.0\n", 1, "rain_mm"),
            (b"0,1,1.0,\n", 1, "rain_mm"),
            (b"0,1\n", 1, "ts"),
        ];
        for (text, expected_line, expected_field) in cases {
            match run_workload(text, &spec) {
                Err(WorkloadError::Malformed { line, field, .. }) => {
                    assert_eq!((line, field), (expected_line, expected_field), "{text:?}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_decreasing_ts_and_huge_station_ids() {
        let spec = WorkloadSpec::default();
        assert_eq!(
            run_workload(b"0,100,0.0\n0,99,0.0\n", &spec),
            Err(WorkloadError::TsDecreased {
                line: 2,
                ts: 99,
                previous: 100
            })
        );
        assert_eq!(
            run_workload(b"99999999,100,0.0\n", &spec),
            Err(WorkloadError::StationIdTooLarge {
                line: 1,
                station: 99_999_999
            })
        );
        let bad = WorkloadSpec {
            slot_s: 600,
            windows: vec![(900, 1)],
        };
        assert!(matches!(
            run_workload(b"", &bad),
            Err(WorkloadError::InvalidSpec { .. })
        ));
    }

    /// Deterministic pseudo-random readings: `stations` stations, 60 s reports over `hours`,
    /// starting off the slot grid, with ~1/8 of the reports missing and bursty rain.
    fn pseudo_random_csv(stations: u64, hours: i64) -> String {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33
        };
        let start = 1_704_067_200 + 123;
        let mut csv = String::new();
        for step in 0..hours * 60 {
            let ts = start + step * 60;
            for station in 0..stations {
                if next() % 8 == 0 {
                    continue;
                }
                let tenths = if next() % 4 == 0 { next() % 40 } else { 0 };
                csv.push_str(&format!("{station},{ts},{}.{}\n", tenths / 10, tenths % 10));
            }
        }
        csv
    }

    /// Literal per-observation assignment: every observation goes into every window end with
    /// `ts < end <= ts + size`, keyed `(station, duration, end)` in a `BTreeMap`.
    fn brute_force(csv: &str, spec: &WorkloadSpec) -> Vec<DurationResult> {
        let mut sums: BTreeMap<(u64, usize, i64), i64> = BTreeMap::new();
        for row in csv.lines() {
            let fields: Vec<&str> = row.split(',').collect();
            let station: u64 = fields[0].parse().unwrap();
            let ts: i64 = fields[1].parse().unwrap();
            let (whole, fraction) = fields[2].split_once('.').unwrap();
            let tenths = whole.parse::<i64>().unwrap() * 10 + fraction.parse::<i64>().unwrap();
            for (index, &(size, _)) in spec.windows.iter().enumerate() {
                let mut end = (ts.div_euclid(spec.slot_s) + 1) * spec.slot_s;
                while end <= ts + size {
                    *sums.entry((station, index, end)).or_default() += tenths;
                    end += spec.slot_s;
                }
            }
        }
        let mut results: Vec<DurationResult> = spec
            .windows
            .iter()
            .map(|&(duration_s, _)| DurationResult {
                duration_s,
                ..Default::default()
            })
            .collect();
        for (&(_, index, _), &sum) in &sums {
            let result = &mut results[index];
            result.window_rows += 1;
            result.sum_tenths += sum;
            result.exceed_rows += u64::from(sum > spec.windows[index].1);
        }
        results
    }

    #[test]
    fn matches_brute_force_window_assignment() {
        let csv = pseudo_random_csv(30, 6);
        let spec = WorkloadSpec::default();
        let report = run_workload(csv.as_bytes(), &spec).unwrap();
        let expected = brute_force(&csv, &spec);
        assert!(
            expected.iter().any(|result| result.exceed_rows > 0),
            "the data should trip a threshold"
        );
        assert_eq!(report.per_duration, expected);
        assert_eq!(report.stations, 30);
        assert_eq!(report.rows, csv.lines().count() as u64);
    }

    #[test]
    fn matches_brute_force_with_a_custom_slide_and_thresholds() {
        let csv = pseudo_random_csv(7, 3);
        let spec = WorkloadSpec {
            slot_s: 300,
            windows: vec![(300, 20), (1_500, 60), (3_600, 200)],
        };
        let report = run_workload(csv.as_bytes(), &spec).unwrap();
        assert_eq!(report.per_duration, brute_force(&csv, &spec));
    }

    #[test]
    fn rain_rows_reads_what_run_workload_reads() {
        let csv = b"station_id,ts,rain_mm\n0,1704067200,0.3\n\n12,1704067260,5\n3,x,1.0\n";
        let rows: Vec<_> = rain_rows(csv).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].as_ref().ok(),
            Some(&RainRow {
                station: 0,
                ts: 1_704_067_200,
                tenths: 3
            })
        );
        assert_eq!(
            rows[1].as_ref().ok(),
            Some(&RainRow {
                station: 12,
                ts: 1_704_067_260,
                tenths: 50
            })
        );
        assert!(matches!(
            rows[2],
            Err(WorkloadError::Malformed {
                line: 5,
                field: "ts",
                ..
            })
        ));
    }
}
