//! `tianshan backtest`: warnings, replayed from an observation archive or the built-in storm
//! (the same actors and configuration as `replay`) or read from a warnings file, scored against
//! an events catalogue by `tianshan_core::verification`: hits, misses, false alarms, POD, FAR,
//! CSI and lead times per threshold, hazard and prefecture. `--sweep` replays once per value of
//! the rain-threshold factor; `--plot` writes the SVG of the scores and lead times.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tianshan_actors::station::Envelope;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, StormConfig};
use tianshan_core::time::parse_duration_ms;
use tianshan_core::verification::plot::backtest_svg;
use tianshan_core::verification::{
    parse_catalogue, parse_sweep, verify, warning_threads, CatalogueEvent, ScoreKey, Scores,
    Verification, VerificationConfig,
};
use tianshan_core::warning::{Hazard, Level, WarningEvent};
use tianshan_pipelines::archive::{read_warnings_parquet, write_warnings_parquet};
use tianshan_pipelines::gateway::{read_observation_file, scenario_records};
use tianshan_pipelines::replay::{file_envelopes, record_envelopes, replay_all};

use crate::config::Config;
use crate::OutputFormat;

/// Where the warnings scored come from.
#[derive(Debug, Clone)]
pub enum WarningSource {
    /// Replay this observation archive (CSV, JSON lines or Parquet).
    Archive(PathBuf),
    /// Replay the built-in storm scenario of `tianshan demo`.
    Storm,
    /// Read the warnings `tianshan replay --warnings-out` wrote.
    Warnings(PathBuf),
}

/// What `tianshan backtest` was asked.
#[derive(Debug, Clone)]
pub struct BacktestOptions {
    /// Where the warnings come from.
    pub source: WarningSource,
    /// The events catalogue (CSV, see `tianshan_core::verification::parse_catalogue`).
    pub events: PathBuf,
    /// `factor=START:END:STEP`, if sweeping.
    pub sweep: Option<String>,
    /// Where to write the SVG, if anywhere.
    pub plot: Option<PathBuf>,
    /// The threshold the plot shows.
    pub plot_level: Level,
    /// Longest credited lead time, as a duration (`12h`).
    pub lead_window: String,
    /// Table or JSON.
    pub format: OutputFormat,
    /// Where to write the warnings scored (of the run nearest factor 1), if anywhere.
    pub warnings_out: Option<PathBuf>,
}

/// The scores of one replay (or of the warnings file).
struct Run {
    /// The rain-threshold factor of the replay (the configured one for a warnings file).
    factor: f64,
    /// False when the warnings were read from a file rather than replayed.
    replayed: bool,
    warnings: Vec<WarningEvent>,
    versions: usize,
    threads: usize,
    verification: Verification,
}

/// Runs the backtest.
pub async fn run_backtest(config: Config, options: BacktestOptions) -> anyhow::Result<()> {
    let region = Arc::new(config.load_region()?);
    let events = load_events(&options.events, &region)?;
    let lead_window_ms =
        parse_duration_ms(&options.lead_window).map_err(|e| anyhow!("--lead-window: {e}"))?;
    if lead_window_ms <= 0 {
        bail!(
            "--lead-window must be positive, got {}",
            options.lead_window
        );
    }
    let verification_config = VerificationConfig { lead_window_ms };
    let factors = match &options.sweep {
        Some(spec) => parse_sweep(spec).map_err(|e| anyhow!("--sweep: {e}"))?,
        None => vec![config.flash_flood.rain_threshold_factor],
    };
    let replayed = match &options.source {
        WarningSource::Warnings(_) => {
            if options.sweep.is_some() {
                bail!(
                    "--sweep replays the observations: give --archive or --storm, not --warnings"
                );
            }
            None
        }
        WarningSource::Archive(path) => Some(file_envelopes(read_observation_file(path)?)),
        WarningSource::Storm => {
            let scenario = storm_scenario(&region, &StormConfig::default());
            let (envelopes, _malformed) =
                record_envelopes(&scenario_records(&scenario, &config.kafka.topics));
            Some(envelopes)
        }
    };
    let mut runs = Vec::with_capacity(factors.len());
    for factor in factors {
        let warnings = match (&options.source, &replayed) {
            (WarningSource::Warnings(path), _) => read_warnings_parquet(path)?,
            (_, Some(envelopes)) => replay_at(&config, factor, &region, envelopes.clone()).await?,
            (_, None) => unreachable!("archives and the storm are replayed"),
        };
        let verification = verify(
            &warnings,
            &events,
            |code| region.prefecture_of(code),
            &verification_config,
        );
        runs.push(Run {
            factor,
            replayed: replayed.is_some(),
            versions: warnings.len(),
            threads: warning_threads(&warnings).len(),
            verification,
            warnings,
        });
    }
    match options.format {
        OutputFormat::Table => print_tables(&runs, &events, &region),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report_json(&runs, &events, lead_window_ms, &region))?
        ),
    }
    if let Some(path) = &options.plot {
        std::fs::write(path, plot(&runs, &events, options.plot_level))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let (Some(path), Some(run)) = (&options.warnings_out, nearest_one(&runs)) {
        write_warnings_parquet(path, &run.warnings)?;
        eprintln!(
            "wrote the {} warning versions of factor {:.2} to {}",
            run.versions,
            run.factor,
            path.display()
        );
    }
    Ok(())
}

/// Replays `envelopes` with the rain thresholds of flash floods and debris flows × `factor`.
async fn replay_at(
    config: &Config,
    factor: f64,
    region: &Arc<Region>,
    envelopes: Vec<(String, Envelope)>,
) -> anyhow::Result<Vec<WarningEvent>> {
    let mut config = config.clone();
    config.flash_flood.rain_threshold_factor = factor;
    config.debris_flow.rain_threshold_factor = factor;
    config.validate()?;
    let report = replay_all(&config.pipeline_settings(), region.clone(), envelopes).await?;
    Ok(report.warnings)
}

/// Reads the catalogue; an event given by target alone takes the target's areas.
fn load_events(path: &Path, region: &Region) -> anyhow::Result<Vec<CatalogueEvent>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events =
        parse_catalogue(&text).with_context(|| format!("events catalogue {}", path.display()))?;
    for event in &mut events {
        if !event.area_codes.is_empty() {
            continue;
        }
        let target = event.target.as_deref().unwrap_or_default();
        event.area_codes = region.target_area_codes(target).with_context(|| {
            format!(
                "events catalogue {}: event {}: target `{target}` is not a basin, slope or fire \
                 zone of region {}, and the event has no area_codes",
                path.display(),
                event.id,
                region.name
            )
        })?;
    }
    Ok(events)
}

fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn hazard_label(hazard: Option<Hazard>) -> &'static str {
    hazard.map_or("all", Hazard::name)
}

fn row(key: &ScoreKey, scores: &Scores, region: &Region) -> String {
    // The prefecture's name goes last: CJK characters are two columns wide in a terminal, so
    // padding them by character count would break the alignment.
    let (code, name) = match &key.region {
        None => ("all", ""),
        Some(code) => (code.as_str(), region.area_name(code).unwrap_or("")),
    };
    format!(
        "≥{:<7} {:<15} {:<7} {:>4} {:>4} {:>4} {:>6} {:>6} {:>6} {:>12}  {name}",
        key.level.name(),
        hazard_label(key.hazard),
        code,
        scores.hits,
        scores.misses,
        scores.false_alarms,
        score(scores.pod()),
        score(scores.far()),
        score(scores.csi()),
        scores.median_lead_text()
    )
    .trim_end()
    .to_owned()
}

fn print_tables(runs: &[Run], events: &[CatalogueEvent], region: &Region) {
    let header = format!(
        "{:<8} {:<15} {:<7} {:>4} {:>4} {:>4} {:>6} {:>6} {:>6} {:>12}",
        "level", "hazard", "region", "H", "M", "F", "POD", "FAR", "CSI", "median lead"
    );
    for run in runs {
        let source = if run.replayed {
            format!("rain-threshold factor {:.2}", run.factor)
        } else {
            "warnings file".to_owned()
        };
        println!(
            "{source}: {} warning versions in {} threads; {} events",
            run.versions,
            run.threads,
            events.len()
        );
        println!("{header}");
        // Per threshold and hazard over the whole region; per prefecture only in a single run,
        // where the table stays short (JSON always has every group).
        for (key, scores) in &run.verification.scores {
            if key.region.is_some() && (key.hazard.is_some() || runs.len() > 1) {
                continue;
            }
            println!("{}", row(key, scores, region));
        }
        println!();
    }
}

fn scores_json(key: &ScoreKey, scores: &Scores, region: &Region) -> Value {
    json!({
        "level": key.level.name(),
        "hazard": key.hazard.map(Hazard::name),
        "region": key.region.as_ref().map(|code| code.as_str()),
        "region_name": key.region.as_ref().and_then(|code| region.area_name(code)),
        "hits": scores.hits,
        "misses": scores.misses,
        "false_alarms": scores.false_alarms,
        "pod": scores.pod(),
        "far": scores.far(),
        "csi": scores.csi(),
        "median_lead_min": scores.median_lead_ms().map(|ms| ms as f64 / 60_000.0),
        "lead_times_min": scores
            .lead_times_ms
            .iter()
            .map(|ms| *ms as f64 / 60_000.0)
            .collect::<Vec<_>>(),
    })
}

fn report_json(
    runs: &[Run],
    events: &[CatalogueEvent],
    lead_window_ms: i64,
    region: &Region,
) -> Value {
    json!({
        "events": events.len(),
        "lead_window_min": lead_window_ms as f64 / 60_000.0,
        "runs": runs.iter().map(|run| json!({
            "factor": run.factor,
            "replayed": run.replayed,
            "warning_versions": run.versions,
            "warning_threads": run.threads,
            "scores": run
                .verification
                .scores
                .iter()
                .map(|(key, scores)| scores_json(key, scores, region))
                .collect::<Vec<_>>(),
            "hits": run
                .verification
                .matches
                .iter()
                .flat_map(|(level, hits)| hits.iter().map(move |(event, warning, lead)| json!({
                    "level": level.name(),
                    "event": event,
                    "warning": warning.as_str(),
                    "lead_min": *lead as f64 / 60_000.0,
                })))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Returns the run whose factor is nearest 1 (the first of two as near).
fn nearest_one(runs: &[Run]) -> Option<&Run> {
    runs.iter()
        .min_by(|a, b| (a.factor - 1.0).abs().total_cmp(&(b.factor - 1.0).abs()))
}

/// The SVG: the sweep's all-hazards scores at `level`, and the lead times of each catalogued
/// hazard at the factor nearest 1.
fn plot(runs: &[Run], events: &[CatalogueEvent], level: Level) -> String {
    let sweep: Vec<(f64, Scores)> = runs
        .iter()
        .map(|run| (run.factor, run.verification.get(level, None, None)))
        .collect();
    let (leads_factor, leads) = match nearest_one(runs) {
        Some(run) => (
            run.factor,
            Hazard::ALL
                .into_iter()
                .filter(|hazard| events.iter().any(|e| e.hazard == *hazard))
                .map(|hazard| {
                    let scores = run.verification.get(level, Some(hazard), None);
                    (hazard, scores.lead_times_ms)
                })
                .collect(),
        ),
        None => (1.0, Vec::new()),
    };
    backtest_svg(level, &sweep, leads_factor, &leads)
}
