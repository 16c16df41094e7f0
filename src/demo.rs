//! `tianshan demo`: an embedded Kafka-protocol broker, one node, and a gateway replaying the
//! built-in storm over the (synthetic) Xinjiang station network; warnings print as they leave.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tianshan_cluster::server::serve;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, StormConfig};
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::embedded_broker::EmbeddedBroker;
use tianshan_pipelines::gateway::{gateway_producer, produce_all, scenario_records};
use tianshan_pipelines::node_pipeline::NodePipeline;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::OutputFormat;

/// Runs the demo; with `once`, returns when the scenario is over and every warning is flushed.
pub async fn run_demo(mut config: Config, once: bool, format: OutputFormat) -> anyhow::Result<()> {
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
    let pipeline = NodePipeline::start(&config.pipeline_settings(), region.clone()).await?;
    let bound = serve(
        &config.node.grpc_addr,
        &config.node.http_addr,
        &pipeline,
        region.clone(),
        None,
    )
    .await?;
    eprintln!(
        "gRPC on {}; metrics on http://{}/metrics, active hazards per township on http://{}/townships",
        bound.grpc, bound.http, bound.http
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
        if once
            && accounting.received >= total
            && accounting.in_flight == 0
            && pipeline.metrics.is_caught_up()
        {
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
    eprintln!(
        "done: {} observations in, {} applied, {} rejected (by reason: {:?}), {} warning versions, {} still active",
        accounting.received,
        accounting.applied,
        accounting.rejected,
        pipeline.metrics.rejected_by_reason().iter().map(|(r, n)| format!("{}={n}", r.code())).collect::<Vec<_>>(),
        pipeline.metrics.warnings_published(),
        active.len()
    );
    pipeline.stop().await?;
    drop(broker);
    Ok(())
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
