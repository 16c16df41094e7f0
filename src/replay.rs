//! `tianshan replay FILE`: observations through the same actors and models as the live path, as
//! fast as they go, without Kafka. A workload file of `shared/bench` (`station_id,ts,rain_mm`)
//! runs over rain gauges made for it and is checked against the file; an observation file (CSV,
//! JSON lines or a Parquet archive, as `produce` reads) runs over the configured region and
//! prints its warnings. `--warnings-out FILE` also writes them as Parquet (`pipelines::archive`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tianshan_actors::station::Envelope;
use tianshan_core::ids::{GatewayId, StationId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::rain_workload::{rain_rows, RainRow};
use tianshan_core::region::Region;
use tianshan_core::station_windows::StationSummary;
use tianshan_core::time::{parse_duration_ms, EventTime};
use tianshan_pipelines::archive::write_warnings_parquet;
use tianshan_pipelines::gateway::read_observation_file;
use tianshan_pipelines::replay::{file_envelopes, replay_all, Replay, ReplayReport};

use crate::config::Config;
use crate::demo::{warning_header, warning_line};
use crate::OutputFormat;

/// Window whose total at the end of a workload replay is checked against the file.
const CHECKED_WINDOW_MIN: u32 = 1440;

/// Readings per station a workload replay buffers before it applies them as one span: the
/// bench region's gauges feed no basin, so each station gets one message per span, not one per
/// 5-minute slice (5 readings of a 1-minute file). Measured on `shared/bench`'s big set (10,000
/// stations): 0.9 M observations/s with spans of 100,000, 1.5 M with 500,000 (about 250 MB more
/// memory); the small set (1,000 stations) was not faster with 500,000 than with 100,000.
const WORKLOAD_READINGS_PER_STATION: usize = 50;

/// The smallest span of a workload replay.
const WORKLOAD_MIN_SPAN: usize = 100_000;

/// Runs the replay of `file`; writes the warnings it issued to `warnings_out` (Parquet), if given.
pub async fn run_replay(
    config: Config,
    file: &Path,
    format: OutputFormat,
    warnings_out: Option<&Path>,
) -> anyhow::Result<()> {
    let is_parquet = file.extension().and_then(|e| e.to_str()) == Some("parquet");
    if !is_parquet {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if is_workload_file(&bytes) {
            return replay_workload(&config, &bytes, warnings_out).await;
        }
    }
    replay_observations(&config, file, format, warnings_out).await
}

/// A workload file starts with its header or with a row of three numeric columns.
fn is_workload_file(bytes: &[u8]) -> bool {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    first == b"station_id,ts,rain_mm"
        || (first.split(|b| *b == b',').count() == 3
            && first
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b',' | b'.' | b'-')))
}

/// What the first pass over a workload file learns.
struct WorkloadFacts {
    /// `seen[i]`: station `i` reports.
    seen: Vec<bool>,
    /// Reporting interval: the step between the first two distinct timestamps.
    interval_s: u32,
    /// Rain per timestamp, in tenths.
    tenths_by_ts: BTreeMap<i64, i64>,
}

fn workload_facts(bytes: &[u8]) -> anyhow::Result<WorkloadFacts> {
    let mut seen = Vec::new();
    let mut tenths_by_ts: BTreeMap<i64, i64> = BTreeMap::new();
    for row in rain_rows(bytes) {
        let RainRow {
            station,
            ts,
            tenths,
        } = row?;
        let index = usize::try_from(station)?;
        if index >= seen.len() {
            seen.resize(index + 1, false);
        }
        seen[index] = true;
        *tenths_by_ts.entry(ts).or_default() += i64::from(tenths);
    }
    let mut times = tenths_by_ts.keys();
    let interval_s = match (times.next(), times.next()) {
        (Some(first), Some(second)) => u32::try_from(second - first)?,
        _ => 60,
    };
    Ok(WorkloadFacts {
        seen,
        interval_s,
        tenths_by_ts,
    })
}

async fn replay_workload(
    config: &Config,
    bytes: &[u8],
    warnings_out: Option<&Path>,
) -> anyhow::Result<()> {
    let facts = workload_facts(bytes)?;
    let ids: Vec<Option<StationId>> = facts
        .seen
        .iter()
        .enumerate()
        .map(|(index, seen)| seen.then(|| StationId::new(index.to_string())))
        .collect();
    let region = Arc::new(Region::rain_gauges_only(
        "bench",
        ids.iter().flatten().cloned(),
        facts.interval_s,
    ));
    let Some(&last_ts) = facts.tenths_by_ts.keys().next_back() else {
        bail!("the workload file holds no rows");
    };
    let mut settings = config.pipeline_settings();
    let span = (region.stations.len() * WORKLOAD_READINGS_PER_STATION).max(WORKLOAD_MIN_SPAN);
    settings.pipeline.max_batch = settings.pipeline.max_batch.max(span);
    let mut replay = Replay::start(&settings, region.clone()).await?;
    let gateway = GatewayId::new("bench");
    for row in rain_rows(bytes) {
        let row = row?;
        let station = ids
            .get(usize::try_from(row.station)?)
            .and_then(Option::as_ref)
            .context("a station seen in the first pass")?;
        let event_time = EventTime(row.ts * 1_000);
        replay
            .push(
                "",
                Envelope {
                    observation: Observation {
                        station: station.clone(),
                        event_time,
                        gateway: gateway.clone(),
                        sequence: 0,
                        reading: Reading::Rainfall {
                            mm: f64::from(row.tenths) / 10.0,
                            interval_s: facts.interval_s,
                        },
                    },
                    received_at: event_time,
                },
            )
            .await?;
    }
    let end = EventTime(last_ts * 1_000);
    let (report, summaries) = replay.finish(Some(end)).await?;
    print_report(&report, region.stations.len());
    // The bench region has gauges and no basins, so the file is the schema and no rows; it is
    // still written, so a script gets the same output whatever it replays.
    if let Some(out) = warnings_out {
        let started = std::time::Instant::now();
        write_warnings_parquet(out, &report.warnings)?;
        eprintln!(
            "wrote {} warning versions to {} in {:.3} s",
            report.warnings.len(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }

    // The 24 h windows at the end hold the rain of every row in the window's slots.
    let slot_s = parse_duration_ms(&config.windows.slot).map_err(anyhow::Error::msg)? / 1_000;
    let window_start =
        end.ceil_to(slot_s * 1_000).millis() / 1_000 - i64::from(CHECKED_WINDOW_MIN) * 60;
    let in_window = |time: EventTime| time.millis() > window_start * 1_000;
    let rejected_mm: f64 = report
        .rejected_rainfall
        .iter()
        .filter(|(time, _)| in_window(*time))
        // A fold from +0.0: an empty f64 sum is -0.0, printed as "-0.0 mm".
        .fold(0.0, |total, (_, mm)| total + mm);
    let expected_mm = facts
        .tenths_by_ts
        .range(window_start + 1..)
        .map(|(_, tenths)| *tenths)
        .sum::<i64>() as f64
        / 10.0
        - rejected_mm;
    let windows_mm = window_total(&summaries, CHECKED_WINDOW_MIN);
    let agree = (windows_mm - expected_mm).abs() <= 1e-6 * expected_mm.abs().max(1.0);
    println!(
        "check: {CHECKED_WINDOW_MIN}-min windows of all stations at the end hold {windows_mm:.1} mm; \
         the file's rows in them less the {rejected_mm:.1} mm rejected by QC: {expected_mm:.1} mm: {}",
        if agree { "equal" } else { "DIFFERENT" }
    );
    if !agree {
        bail!("the station windows do not hold what the file put in them");
    }
    Ok(())
}

fn window_total(summaries: &[StationSummary], duration_min: u32) -> f64 {
    summaries
        .iter()
        .filter_map(|summary| match summary {
            StationSummary::Rain(rain) => rain
                .windows
                .iter()
                .find(|w| w.duration_min == duration_min)
                .map(|w| w.mm),
            _ => None,
        })
        .sum()
}

async fn replay_observations(
    config: &Config,
    file: &Path,
    format: OutputFormat,
    warnings_out: Option<&Path>,
) -> anyhow::Result<()> {
    let region = Arc::new(config.load_region()?);
    let observations = read_observation_file(file)?;
    let report = replay_all(
        &config.pipeline_settings(),
        region.clone(),
        file_envelopes(observations),
    )
    .await?;
    if let Some(header) = warning_header(format) {
        println!("{header}");
    }
    for event in &report.warnings {
        println!("{}", warning_line(event, format, &region));
    }
    print_report(&report, region.stations.len());
    if let Some(out) = warnings_out {
        write_warnings_parquet(out, &report.warnings)?;
        eprintln!(
            "wrote {} warning versions to {}",
            report.warnings.len(),
            out.display()
        );
    }
    Ok(())
}

fn print_report(report: &ReplayReport, stations: usize) {
    let rejected: u64 = report.rejected.values().sum();
    eprintln!(
        "replayed {} observations over {stations} stations in {:.3} s through the actors: {:.2} million observations/s; {} applied, {rejected} rejected {:?}; {} warning versions",
        report.observations,
        report.elapsed.as_secs_f64(),
        report.observations_per_second() / 1e6,
        report.applied,
        report
            .rejected
            .iter()
            .map(|(reason, n)| format!("{}={n}", reason.code()))
            .collect::<Vec<_>>(),
        report.warnings.len()
    );
}
