//! Runs the WORKLOAD.md job on a CSV file, as `tianshan bench windows FILE` does: prints the
//! canonical output to stdout and rows/s to stderr.
//!
//! `cargo run --release -p tianshan-core --example rain_workload_file -- FILE`

use std::time::Instant;

use tianshan_core::rain_workload::{run_workload, WorkloadSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: rain_workload_file FILE")?;
    let start = Instant::now();
    let bytes = std::fs::read(&path)?;
    let read = start.elapsed();
    let report = run_workload(&bytes, &WorkloadSpec::default())?;
    let total = start.elapsed();
    print!("{}", report.canonical());
    eprintln!(
        "{} rows, {} stations, read {:.3} s, total {:.3} s, {:.2} M rows/s end to end, {:.2} M rows/s compute, {} B window state per station",
        report.rows,
        report.stations,
        read.as_secs_f64(),
        total.as_secs_f64(),
        report.rows as f64 / total.as_secs_f64() / 1e6,
        report.rows as f64 / (total - read).as_secs_f64() / 1e6,
        report.state_bytes_per_station,
    );
    Ok(())
}
