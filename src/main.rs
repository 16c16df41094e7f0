//! The `tianshan` binary: `demo`, `run`, `produce`, `replay`, `backtest`, `sql` and `bench windows | kafka | recovery`.

mod backtest;
mod bench_kafka;
mod bench_recovery;
mod config;
mod demo;
mod demo_cluster;
mod demo_people;
mod replay;
mod sql_client;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tianshan_core::rain_workload::{run_workload, WorkloadSpec};
use tianshan_pipelines::gateway::{
    gateway_producer, produce_all, read_observation_file, record_for,
};
use tianshan_pipelines::node_pipeline::NodePipeline;
use tianshan_proto::codec::WireFormat;
use tracing::{info, warn};

use crate::backtest::{BacktestOptions, WarningSource};
use crate::config::Config;
use crate::sql_client::{run_sql, run_sql_on_files, SqlFormat};

/// Envelopes, outcomes and summaries are allocated on one worker and freed on another; mimalloc
/// frees them without glibc's per-arena lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tianshan",
    version,
    about = "Real-time natural-hazard early warning: Kafka observations in, flash-flood warnings out"
)]
struct Cli {
    /// Configuration file layered over the built-in defaults.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// How warnings are printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// A readable table.
    Table,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs everything on this machine: an embedded Kafka-protocol broker, the node, and a gateway
    /// replaying a storm over the Xinjiang network; prints warnings as they are issued.
    Demo {
        /// Exit when the scenario is over and every warning is flushed.
        #[arg(long)]
        once: bool,
        /// Warning output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// gRPC listen address (default from config: 127.0.0.1:50051).
        #[arg(long)]
        grpc_addr: Option<String>,
        /// HTTP listen address (default from config: 127.0.0.1:8080).
        #[arg(long)]
        http_addr: Option<String>,
        /// Also write every CAP message published to this folder, one `.xml` file per message.
        #[arg(long)]
        cap_dir: Option<PathBuf>,
        /// Run this many sharded nodes in this process (Kafka consumer groups share out the
        /// stations, basins and chains); above 1 the demo shows who owns what and serves no
        /// gRPC or HTTP.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=12))]
        nodes: u16,
    },
    /// Runs one node against the Kafka cluster of the configuration until Ctrl-C.
    Run,
    /// Creates every topic a node reads or writes on the Kafka cluster of the configuration,
    /// through the admin API (topics that exist are left alone), and lists them.
    CreateTopics {
        /// Copies of each partition; -1 takes the brokers' `default.replication.factor`.
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication: i32,
    },
    /// Replays an observation file (CSV or JSON lines) into Kafka as a gateway would.
    Produce {
        /// The file (`.csv`, or `.jsonl` for JSON lines).
        file: PathBuf,
        /// Encoding of the produced records.
        #[arg(long, value_enum, default_value_t = Encoding::Protobuf)]
        encoding: Encoding,
    },
    /// Runs an observation file through the actors and models as fast as they go, without
    /// Kafka: a workload file of shared/bench (`station_id,ts,rain_mm`, checked against the
    /// station windows) or an observation file as `produce` reads it, CSV, JSON lines or
    /// Parquet (prints its warnings).
    Replay {
        /// The file.
        file: PathBuf,
        /// Warning output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Also write the warnings issued to this Parquet file, one row per version.
        #[arg(long)]
        warnings_out: Option<PathBuf>,
    },
    /// Scores warnings against an events catalogue: hits, misses, false alarms, POD, FAR, CSI
    /// and lead times per threshold, hazard and prefecture. The warnings are replayed from an
    /// observation archive or the built-in storm (same actors and configuration as `replay`),
    /// or read from a warnings file of `replay --warnings-out`.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["archive", "storm", "warnings"])))]
    Backtest {
        /// Observation archive to replay (CSV, JSON lines or Parquet, as `replay` reads it).
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Replay the built-in storm scenario of `tianshan demo`.
        #[arg(long)]
        storm: bool,
        /// Warnings file (Parquet) to score instead of replaying.
        #[arg(long)]
        warnings: Option<PathBuf>,
        /// Events catalogue: CSV `id,hazard,target,area_codes,start,end,level`.
        #[arg(long)]
        events: PathBuf,
        /// Replays once per rain-threshold factor: `factor=START:END:STEP`.
        #[arg(long)]
        sweep: Option<String>,
        /// Writes an SVG of the scores against the factor and of the lead times.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Threshold the plot shows: blue, yellow, orange or red.
        #[arg(long, default_value = "blue", value_parser = parse_level)]
        plot_level: tianshan_core::warning::Level,
        /// Longest lead time that still verifies an event.
        #[arg(long, default_value = "12h")]
        lead_window: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Also write the warnings scored (of the factor nearest 1) to this Parquet file.
        #[arg(long)]
        warnings_out: Option<PathBuf>,
    },
    /// Runs one SQL query over a node's live state (its HTTP port's `POST /sql`): tables
    /// stations, station_windows, basin_state, warnings, deliveries, dead_letters, admin_units;
    /// or, with `--parquet`, over Parquet files on this machine (no node).
    Sql {
        /// The query.
        query: String,
        /// Query these Parquet files here instead of a node: `NAME=FILE`, repeatable (observation
        /// and warning archives, or any Parquet file).
        #[arg(long, value_parser = parse_table_file)]
        parquet: Vec<(String, PathBuf)>,
        /// The node's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
        /// Bearer token of a principal allowed to query SQL.
        #[arg(long)]
        token: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
        format: SqlFormat,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Encoding {
    Protobuf,
    Json,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The rainfall windows workload of shared/bench/WORKLOAD.md: canonical result on stdout,
    /// throughput on stderr.
    Windows {
        /// Headerless CSV `station_id,ts,rain_mm`.
        file: PathBuf,
    },
    /// End to end on the embedded broker: observations/s through one node or N sharded nodes
    /// (every station of the region reporting), then the latency from an observation's produce
    /// call to the warning it lets through, with the storm produced at a fixed rate into one
    /// node. Build with `--release`.
    Kafka {
        /// Nodes of the throughput run (more than one: sharded, in this process).
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Dry hours before the storm in the throughput run (more hours, more observations).
        #[arg(long, default_value_t = 24)]
        dry_hours: u32,
        /// Observations per second the gateway produces in the latency run.
        #[arg(long, default_value_t = 20_000)]
        rate: u32,
        /// Overrides the nodes' `pipeline.partition-idle-after`: how long a caught-up partition
        /// may stay quiet before ticks go on without it (the latency's event-time wait).
        #[arg(long)]
        partition_idle_after: Option<String>,
    },
    /// A sharded cluster of node processes on the embedded broker, with the region grown to
    /// `--stations` stations: the time from a node's SIGKILL until the survivors own every
    /// partition and have rebuilt the state of those they took over. Build with `--release`.
    Recovery {
        /// Stations of the region (synthetic rain gauges are added up to this number).
        #[arg(long, default_value_t = 10_000)]
        stations: usize,
        /// Node processes; the first is killed.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Dry hours before the storm (more hours, more observations to rebuild from).
        #[arg(long, default_value_t = 0)]
        dry_hours: u32,
        /// Kills, each on a fresh broker and fresh nodes.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The nodes' log filter (RUST_LOG syntax); with it the nodes' logs and configs are
        /// kept, and their folder is printed, instead of being removed at the end.
        #[arg(long)]
        node_logs: Option<String>,
    },
}

fn parse_table_file(spec: &str) -> Result<(String, PathBuf), String> {
    match spec.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("`{spec}` is not NAME=FILE")),
    }
}

fn parse_level(name: &str) -> Result<tianshan_core::warning::Level, String> {
    tianshan_core::warning::Level::parse(name)
        .ok_or_else(|| format!("`{name}` is not blue, yellow, orange or red"))
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            which: BenchCommand::Windows { file },
        } => bench_windows(&file),
        Command::Sql {
            query,
            parquet,
            node,
            token,
            format,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if parquet.is_empty() {
                runtime.block_on(run_sql(&node, token.as_deref(), &query, format))
            } else {
                runtime.block_on(run_sql_on_files(&parquet, &query, format))
            }
        }
        command => {
            let config = Config::load(cli.config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            match command {
                Command::Demo {
                    once,
                    format,
                    grpc_addr,
                    http_addr,
                    cap_dir,
                    nodes,
                } => {
                    init_tracing("warn");
                    if nodes > 1 {
                        if grpc_addr.is_some() || http_addr.is_some() || cap_dir.is_some() {
                            anyhow::bail!("--grpc-addr, --http-addr and --cap-dir apply to the one-node demo only");
                        }
                        return runtime.block_on(demo_cluster::run_cluster_demo(
                            config,
                            usize::from(nodes),
                            once,
                            format,
                        ));
                    }
                    let mut config = config;
                    if let Some(addr) = grpc_addr {
                        config.node.grpc_addr = addr;
                    }
                    if let Some(addr) = http_addr {
                        config.node.http_addr = addr;
                    }
                    runtime.block_on(demo::run_demo(config, once, format, cap_dir))
                }
                Command::Run => {
                    init_tracing("info");
                    runtime.block_on(run_node(config))
                }
                Command::CreateTopics { replication } => {
                    init_tracing("warn");
                    runtime.block_on(create_topics(&config, replication))
                }
                Command::Produce { file, encoding } => {
                    init_tracing("info");
                    runtime.block_on(produce_file(config, &file, encoding))
                }
                Command::Replay {
                    file,
                    format,
                    warnings_out,
                } => {
                    init_tracing("warn");
                    runtime.block_on(replay::run_replay(
                        config,
                        &file,
                        format,
                        warnings_out.as_deref(),
                    ))
                }
                Command::Backtest {
                    archive,
                    storm,
                    warnings,
                    events,
                    sweep,
                    plot,
                    plot_level,
                    lead_window,
                    format,
                    warnings_out,
                } => {
                    init_tracing("warn");
                    let source = match (archive, warnings) {
                        (Some(archive), _) => WarningSource::Archive(archive),
                        (None, Some(warnings)) => WarningSource::Warnings(warnings),
                        (None, None) => {
                            debug_assert!(storm, "clap requires one source");
                            WarningSource::Storm
                        }
                    };
                    let options = BacktestOptions {
                        source,
                        events,
                        sweep,
                        plot,
                        plot_level,
                        lead_window,
                        format,
                        warnings_out,
                    };
                    runtime.block_on(backtest::run_backtest(config, options))
                }
                Command::Bench {
                    which:
                        BenchCommand::Kafka {
                            nodes,
                            dry_hours,
                            rate,
                            partition_idle_after,
                        },
                } => {
                    // The courier's retries to recipients without a channel would drown the
                    // figures.
                    init_tracing("error");
                    runtime.block_on(bench_kafka::run_kafka_bench(
                        config,
                        bench_kafka::KafkaBenchOptions {
                            nodes,
                            dry_hours,
                            rate,
                            partition_idle_after,
                        },
                    ))
                }
                Command::Bench {
                    which:
                        BenchCommand::Recovery {
                            stations,
                            nodes,
                            dry_hours,
                            runs,
                            node_logs,
                        },
                } => {
                    init_tracing("warn");
                    runtime.block_on(bench_recovery::run_recovery_bench(
                        config,
                        bench_recovery::RecoveryBenchOptions {
                            stations,
                            nodes,
                            dry_hours,
                            runs,
                            node_logs,
                        },
                    ))
                }
                Command::Bench {
                    which: BenchCommand::Windows { .. },
                }
                | Command::Sql { .. } => unreachable!("handled above"),
            }
        }
    }
}

async fn run_node(config: Config) -> anyhow::Result<()> {
    let region = Arc::new(config.load_region()?);
    info!(
        stations = region.stations.len(),
        basins = region.basins.len(),
        areas = %config.areas_note(&region),
        "region loaded"
    );
    let pipeline = NodePipeline::start(&config.pipeline_settings(), region.clone()).await?;
    if config.node.tokens.is_none() {
        warn!("node.tokens is not set: every gRPC call will be refused as unauthenticated");
    }
    let tokens = config.load_tokens()?;
    config.serve_node(&pipeline, region, tokens).await?;
    stop_requested().await?;
    info!("stopping");
    pipeline.stop().await?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM (what Kubernetes sends a pod before killing it), so the node
/// commits its offsets and drains its stages either way.
async fn stop_requested() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => info!("SIGTERM received"),
    }
    Ok(())
}

/// Creates the node's topics and lists them with their partition counts.
async fn create_topics(config: &Config, replication: i32) -> anyhow::Result<()> {
    let kafka = &config.kafka;
    tianshan_pipelines::topic_setup::create_node_topics(
        &kafka.bootstrap_servers,
        &kafka.topics,
        replication,
    )
    .await?;
    for (topic, partitions) in tianshan_pipelines::topic_setup::node_topics(&kafka.topics) {
        println!("{topic}\t{partitions} partitions");
    }
    Ok(())
}

async fn produce_file(
    config: Config,
    file: &std::path::Path,
    encoding: Encoding,
) -> anyhow::Result<()> {
    let observations = read_observation_file(file)?;
    let format = match encoding {
        Encoding::Protobuf => WireFormat::Protobuf,
        Encoding::Json => WireFormat::Json,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let records: Vec<_> = observations
        .iter()
        .map(|obs| {
            record_for(
                obs,
                format,
                &config.kafka.topics,
                tianshan_core::time::EventTime(now_ms),
            )
        })
        .collect();
    let producer = gateway_producer(&config.kafka.bootstrap_servers)?;
    let started = Instant::now();
    let count = produce_all(&producer, &records).await?;
    eprintln!(
        "produced {count} observations in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bench_windows(file: &std::path::Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let report = run_workload(&bytes, &WorkloadSpec::default())?;
    let elapsed = started.elapsed().as_secs_f64();
    print!("{}", report.canonical());
    eprintln!(
        "{} observations, {} stations in {:.3} s: {:.2} million observations/s; window state {} bytes/station",
        report.rows,
        report.stations,
        elapsed,
        report.rows as f64 / elapsed / 1e6,
        report.state_bytes_per_station
    );
    Ok(())
}
