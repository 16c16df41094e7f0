//! Real rain-gauge records through a station's windows: the 15-minute tipping-bucket series of
//! four USGS landslide-monitoring stations near Mukilteo, Washington, Aug–Dec 2015
//! (../shared/data/rain/usgs-mukilteo-15min-rain-2015.csv; Smith et al. 2017, USGS data release
//! doi:10.5066/F7NZ85WX). Every hourly window sum must equal a brute-force sum over the applied
//! records, and the only records not applied must be the logger-download overlaps the data's
//! README lists, rejected as duplicates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Outcome, Reading, RejectReason};
use tianshan_core::station_windows::{StationSummary, StationWindows, WindowsConfig};
use tianshan_core::time::{EventTime, HOUR_MS, MINUTE_MS};

/// The logger's record interval.
const REPORT_INTERVAL_S: u32 = 900;
/// The source says "local time"; no repeated hour on 2015-11-01, so fixed UTC−8 (unverified).
const LOCAL_TO_UTC_MS: i64 = 8 * HOUR_MS;

struct Record {
    station: String,
    at: EventTime,
    mm: f64,
}

fn records() -> Vec<Record> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/rain/usgs-mukilteo-15min-rain-2015.csv");
    let mut reader = csv::Reader::from_path(&file)
        .unwrap_or_else(|e| panic!("{} must be readable: {e}", file.display()));
    reader
        .records()
        .map(|row| {
            let row = row.expect("well-formed CSV row");
            let local = EventTime::parse_rfc3339(&format!("{}Z", &row[1]))
                .unwrap_or_else(|e| panic!("time {}: {e}", &row[1]));
            Record {
                station: row[0].to_owned(),
                at: local.plus_ms(LOCAL_TO_UTC_MS),
                mm: row[3].parse().expect("precip_mm is a number"),
            }
        })
        .collect()
}

/// The observation a gateway would send for one logger record. The logger numbers its records
/// by time, so a record downloaded twice carries the same sequence number both times.
fn observation(record: &Record) -> Observation {
    Observation {
        station: StationId::new(&record.station),
        event_time: record.at,
        gateway: GatewayId::new("GW-USGS-RALHS"),
        sequence: (record.at.millis() / (15 * MINUTE_MS)) as u64,
        reading: Reading::Rainfall {
            mm: record.mm,
            interval_s: REPORT_INTERVAL_S,
        },
    }
}

/// Sums the applied records of `station` stamped in `(tick − duration, tick]`.
fn brute_force_mm(applied: &[(EventTime, f64)], tick: EventTime, duration_min: u32) -> f64 {
    let start = tick.millis() - i64::from(duration_min) * MINUTE_MS;
    applied
        .iter()
        .filter(|(at, _)| at.millis() > start && *at <= tick)
        .map(|(_, mm)| mm)
        .sum()
}

#[test]
fn hourly_window_sums_of_real_gauges_equal_a_brute_force_sum() {
    let records = records();
    assert_eq!(records.len(), 46_623, "rows of the file (README)");
    let cfg = WindowsConfig::default();
    let mut stations: BTreeMap<String, StationWindows> = BTreeMap::new();
    let mut applied: BTreeMap<String, Vec<(EventTime, f64)>> = BTreeMap::new();
    let mut next_tick: BTreeMap<String, EventTime> = BTreeMap::new();
    let mut rejected = Vec::new();
    let mut checked_windows = 0_usize;
    let mut wet_windows = 0_usize;

    // Records go in file order (station by station); before a station's first record past a full
    // hour, the station is summarized at that hour and every window checked.
    for record in &records {
        let name = &record.station;
        let windows = stations
            .entry(name.clone())
            .or_insert_with(|| StationWindows::rain(StationId::new(name), REPORT_INTERVAL_S, &cfg));
        let tick = next_tick
            .entry(name.clone())
            .or_insert_with(|| record.at.ceil_to(HOUR_MS));
        while record.at > *tick {
            windows.advance_to(*tick);
            let StationSummary::Rain(summary) = windows.summary(*tick) else {
                panic!("{name} is a rain station");
            };
            let so_far = applied.get(name).map_or(&[][..], Vec::as_slice);
            for window in &summary.windows {
                let expected = brute_force_mm(so_far, *tick, window.duration_min);
                assert!(
                    (window.mm - expected).abs() < 1e-6,
                    "{name} {} min at {}: windows {} mm, brute force {expected} mm",
                    window.duration_min,
                    tick.to_beijing_rfc3339(),
                    window.mm
                );
                checked_windows += 1;
                wet_windows += usize::from(expected > 0.0);
            }
            *tick = tick.plus_ms(HOUR_MS);
        }
        match windows.observe(&observation(record), record.at.plus_ms(MINUTE_MS)) {
            Outcome::Applied => applied
                .entry(name.clone())
                .or_default()
                .push((record.at, record.mm)),
            Outcome::Rejected { reason, detail } => {
                rejected.push((name.clone(), record.at, reason, detail));
            }
        }
    }

    assert_eq!(stations.len(), 4, "MLP, MVD116, MWWD, WatertonA");
    // The README's logger-download overlaps: 8 records logged twice with the same value. The
    // oldest of each overlap arrives 45 min behind its station's newest record, beyond the
    // allowed lateness, so it is rejected as too late rather than as a duplicate; either way
    // its first copy was applied and nothing is lost.
    assert_eq!(rejected.len(), 8, "{rejected:?}");
    for (station, at, reason, detail) in &rejected {
        assert!(
            matches!(reason, RejectReason::Duplicate | RejectReason::TooLate),
            "{station} {at:?}: {reason:?} {detail}"
        );
        assert!(
            applied[station].iter().any(|(first, _)| first == at),
            "{station} {at:?} rejected without an applied first copy"
        );
    }
    let total_applied: usize = applied.values().map(Vec::len).sum();
    assert_eq!(total_applied + rejected.len(), records.len());
    // Five months of four gauges at seven durations, a good share of them wet.
    assert!(
        checked_windows > 70_000,
        "{checked_windows} windows checked"
    );
    assert!(wet_windows > 10_000, "{wet_windows} wet windows checked");
}
