//! `tianshan demo`: an embedded Kafka-protocol broker, one node, and a gateway replaying the
//! built-in storm over the (synthetic) Xinjiang station network; warnings print as they leave,
//! simulated duty officers sign them, the dissemination tree delivers them over channels that
//! fail at a seeded rate, simulated people answer the forced call, and the run ends with the
//! coverage and timeliness of the deliveries.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tianshan_core::access::TokenTable;
use tianshan_core::dissemination::acknowledgement::{AcknowledgementConfig, LevelDeadlines};
use tianshan_core::dissemination::coverage::{CoverageReport, PLAN_COVERAGE_GOAL};
use tianshan_core::dissemination::simulation::SimulatedAnswers;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, StormConfig};
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::dissemination_stage::{DisseminationStage, SimulatedFailures};
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{gateway_producer, produce_all, scenario_records};
use tianshan_pipelines::node_pipeline::NodePipeline;
use tokio::sync::broadcast;

use crate::config::{Config, TOKEN_HEADER};
use crate::demo_people::{start_duty_officers, start_responders};
use crate::OutputFormat;

/// The demo runs people's acknowledgement deadlines this many times faster than the county
/// practice (100 s per answer window for red becomes 1 s), so re-sends and handovers fit in a
/// run of a few minutes.
const DEADLINE_SPEED_UP: i64 = 100;
/// Share of deliveries every channel fails in the demo.
const DEMO_FAILURE_RATE: f64 = 0.1;
/// Share of people who never answer in the demo.
const DEMO_SILENT_SHARE: f64 = 0.1;
/// Seed of the demo's simulated failures and answers.
const DEMO_SEED: u64 = 2025;
/// The demo waits at most this long for deliveries, answers and handovers after the storm.
const SETTLE_AT_MOST: Duration = Duration::from_secs(60);
/// Deliveries count as settled when nothing changed for this long.
const SETTLED_AFTER: Duration = Duration::from_secs(4);

/// Runs the demo; with `once`, returns when the scenario is over, every warning is flushed and
/// its deliveries have settled. With `cap_dir`, every CAP message published is also written
/// there.
pub async fn run_demo(
    mut config: Config,
    once: bool,
    format: OutputFormat,
    cap_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(3)?;
    broker.create_node_topics(&config.kafka.topics)?;
    config.kafka.bootstrap_servers = broker.bootstrap_servers().to_string();
    eprintln!(
        "embedded Kafka-protocol broker (librdkafka mock cluster): bootstrap.servers={}",
        broker.bootstrap_servers()
    );
    let region = Arc::new(config.load_region()?);
    eprintln!(
        "region {}: {} stations, {} basins (station network and basins are synthetic, generated over the real admin divisions); {}",
        region.name,
        region.stations.len(),
        region.basins.len(),
        config.areas_note(&region)
    );
    let scenario = storm_scenario(&region, &StormConfig::default());
    let records = scenario_records(&scenario, &config.kafka.topics);
    eprintln!(
        "storm scenario: {} messages from {} to {} (Beijing time)",
        records.len(),
        scenario.start.to_beijing_rfc3339(),
        scenario.end.to_beijing_rfc3339()
    );
    let deliveries_log = std::env::temp_dir().join("tianshan-demo-deliveries.log");
    demo_dissemination(&mut config, cap_dir, &deliveries_log);
    let pipeline = NodePipeline::start(&config.pipeline_settings(), region.clone()).await?;
    let (tokens, token_lines) = demo_tokens()?;
    let bound = config.serve_node(&pipeline, region.clone(), tokens).await?;
    eprintln!(
        "gRPC on {}; metrics on http://{}/metrics, active hazards per township on http://{}/townships, CAP feed on http://{}/cap/feed.atom",
        bound.grpc, bound.http, bound.http, bound.http
    );
    for line in token_lines {
        eprintln!("{line}");
    }
    eprintln!(
        "dissemination: {} recipients ({}), channels fail {:.0}% of deliveries (seeded), {:.0}% of people never answer, answer windows {}x shorter than the county practice; SMS, phone and loudspeaker deliveries are written to {}",
        pipeline.dissemination.shared.directory.len(),
        if pipeline.dissemination.synthetic_directory { "synthetic directory" } else { "directory file" },
        DEMO_FAILURE_RATE * 100.0,
        DEMO_SILENT_SHARE * 100.0,
        DEADLINE_SPEED_UP,
        deliveries_log.display()
    );
    let officers = start_duty_officers(&pipeline.dissemination);
    let responders = start_responders(
        &pipeline.dissemination,
        SimulatedAnswers::new(DEMO_SEED, DEMO_SILENT_SHARE, 200, 900),
    );
    let printer = tokio::spawn(print_warnings(
        pipeline.warnings.subscribe(),
        format,
        region.clone(),
    ));
    // The gateway replays the storm into the broker while the node consumes it, in event-time
    // order, as live gateways would.
    let producer = gateway_producer(broker.bootstrap_servers())?;
    let gateway = tokio::spawn(async move { produce_all(&producer, &records).await });
    let started = Instant::now();
    let total = scenario.messages.len() as u64;
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = progress.tick() => {}
            _ = tokio::signal::ctrl_c(), if !once => break,
        }
        let accounting = pipeline.metrics.accounting();
        let decided = accounting.applied + accounting.rejected;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "progress: {decided}/{total} observations processed ({} applied, {} rejected to dead-letters), {:.0} observations/s, {} warning versions issued",
            accounting.applied,
            accounting.rejected,
            decided as f64 / seconds.max(0.001),
            pipeline.metrics.warnings_published()
        );
        if once && pipeline.metrics.has_decided(total) {
            break;
        }
    }
    gateway.await.context("gateway task")??;
    pipeline.flush().await?;
    let accounting = pipeline.metrics.accounting();
    let active = pipeline.active_warnings().await?;
    // Let the printer drain what the flush just released.
    tokio::time::sleep(Duration::from_millis(200)).await;
    printer.abort();
    let coverage = settle(&pipeline.dissemination).await?;
    officers.abort();
    responders.abort();
    let courier = pipeline.dissemination.courier_totals().await?;
    eprintln!(
        "done: {} observations in, {} applied, {} rejected (by reason: {:?}), {} warning versions, {} still active",
        accounting.received,
        accounting.applied,
        accounting.rejected,
        pipeline.metrics.rejected_by_reason().iter().map(|(r, n)| format!("{}={n}", r.code())).collect::<Vec<_>>(),
        pipeline.metrics.warnings_published(),
        active.len()
    );
    print_coverage(&coverage, courier.duplicates_suppressed);
    if format == OutputFormat::Json {
        let summary = json!({
            "summary": {
                "observations": {
                    "received": accounting.received,
                    "applied": accounting.applied,
                    "rejected": accounting.rejected,
                },
                "warning_versions": pipeline.metrics.warnings_published(),
                "still_active": active.len(),
                "coverage": coverage,
                "coverage_goal": PLAN_COVERAGE_GOAL,
                "coverage_goal_met": coverage.reaches(PLAN_COVERAGE_GOAL),
                "courier": courier,
            }
        });
        println!("{summary}");
    }
    pipeline.stop().await?;
    drop(broker);
    Ok(())
}

/// The demo's dissemination: faster deadlines, seeded channel failures, SMS, phone and
/// loudspeakers written to a log file, and the CAP folder when asked for.
pub(crate) fn demo_dissemination(
    config: &mut Config,
    cap_dir: Option<PathBuf>,
    deliveries_log: &Path,
) {
    let faster = |level: &LevelDeadlines| LevelDeadlines {
        answer_within_ms: (level.answer_within_ms / DEADLINE_SPEED_UP).max(1_000),
        ..level.clone()
    };
    let practice = AcknowledgementConfig::default();
    let dissemination = &mut config.dissemination;
    dissemination.acknowledgement = AcknowledgementConfig {
        red: faster(&practice.red),
        orange: faster(&practice.orange),
        yellow: faster(&practice.yellow),
        blue: faster(&practice.blue),
    };
    dissemination.simulated_failures = Some(SimulatedFailures {
        seed: DEMO_SEED,
        rate: DEMO_FAILURE_RATE,
    });
    if dissemination.log_unconfigured_channels_to.is_none() {
        dissemination.log_unconfigured_channels_to = Some(deliveries_log.to_path_buf());
    }
    if cap_dir.is_some() {
        dissemination.cap_dir = cap_dir;
    }
}

/// Makes fresh tokens for this run (a subscriber, a duty officer of water resources and one
/// village head) and returns the table and the lines that tell the user.
fn demo_tokens() -> anyhow::Result<(TokenTable, Vec<String>)> {
    let token = || {
        let state = RandomState::new();
        (0..4)
            .map(|part: u64| format!("{:016x}", state.hash_one(part)))
            .collect::<String>()
    };
    let rows = [
        (token(), "demo-app", "subscriber", "", ""),
        (
            token(),
            "demo-duty-water",
            "duty-officer",
            "water-resources",
            "",
        ),
        (
            token(),
            "650102-002-v1",
            "responsible-person",
            "",
            "650102002",
        ),
    ];
    let mut csv = TOKEN_HEADER.to_owned();
    let mut lines = Vec::new();
    for (token, principal, role, department, unit) in &rows {
        csv.push_str(&format!("{token},{principal},{role},{department},{unit}\n"));
        lines.push(format!(
            "demo token ({role} {principal}): authorization: Bearer {token}"
        ));
    }
    let table = TokenTable::from_csv(&csv, Path::new("(demo tokens)"))?;
    Ok((table, lines))
}

/// Waits until deliveries, answers and handovers stop changing (or [`SETTLE_AT_MOST`]), and
/// returns the coverage then.
async fn settle(stage: &DisseminationStage) -> anyhow::Result<CoverageReport> {
    let started = Instant::now();
    let mut last = stage.coverage().await?;
    let mut unchanged_since = Instant::now();
    while started.elapsed() < SETTLE_AT_MOST {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stage.coverage().await?;
        if now != last {
            last = now;
            unchanged_since = Instant::now();
        } else if unchanged_since.elapsed() >= SETTLED_AFTER {
            break;
        }
    }
    Ok(last)
}

pub(crate) fn print_coverage(coverage: &CoverageReport, duplicates_suppressed: u64) {
    let share =
        |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let latency = |summary: Option<tianshan_core::dissemination::coverage::LatencySummary>| {
        summary.map_or("n/a".to_owned(), |s| {
            format!("median {} ms, max {} ms", s.median_ms, s.max_ms)
        })
    };
    eprintln!(
        "dissemination: {} recipients targeted in {} acknowledgement books, {} delivered ({}; plan goal {:.1}%: {}), {} must acknowledge, {} acknowledged in time ({}), {} handed over one level up, {} duplicate deliveries suppressed; first delivery {}; acknowledgement {}",
        coverage.targeted,
        coverage.warnings,
        coverage.delivered,
        share(coverage.delivered_share),
        PLAN_COVERAGE_GOAL * 100.0,
        if coverage.reaches(PLAN_COVERAGE_GOAL) { "met" } else { "NOT met" },
        coverage.must_acknowledge,
        coverage.acknowledged_in_time,
        share(coverage.acknowledged_share),
        coverage.escalated,
        duplicates_suppressed,
        latency(coverage.first_delivery),
        latency(coverage.acknowledgement)
    );
}

async fn print_warnings(
    mut warnings: broadcast::Receiver<WarningEvent>,
    format: OutputFormat,
    region: Arc<Region>,
) {
    if let Some(header) = warning_header(format) {
        println!("{header}");
    }
    while let Ok(event) = warnings.recv().await {
        let line = warning_line(&event, format, &region);
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// Returns the header line of the warning output, if the format has one.
pub(crate) fn warning_header(format: OutputFormat) -> Option<String> {
    (format == OutputFormat::Table).then(|| {
        format!(
            "{:<25} {:<33} {:>3} {:<10} {:<6} {:<3} {:<20} {:<14} area",
            "issued (Beijing time)",
            "warning id",
            "ver",
            "status",
            "level",
            "lvl",
            "action",
            "target"
        )
    })
}

/// Formats one warning version as a table row or a JSON object.
pub(crate) fn warning_line(event: &WarningEvent, format: OutputFormat, region: &Region) -> String {
    match format {
        OutputFormat::Json => {
            serde_json::to_string(event).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        }
        OutputFormat::Table => {
            let area = event
                .area_codes
                .first()
                .and_then(|code| region.area_name(code))
                .unwrap_or("");
            format!(
                "{:<25} {:<33} {:>3} {:<10} {:<6} {:<3} {:<20} {:<14} {}",
                event.issued.to_beijing_rfc3339(),
                event.id,
                event.version,
                event.status.name(),
                event.level.name(),
                event.level.roman(),
                event.action.name(),
                event.target,
                area
            ) + &event
                .caused_by
                .as_ref()
                .map(|cause| format!("  (raised by {cause})"))
                .unwrap_or_default()
        }
    }
}
