//! The benchmark workload against the expected outputs of `shared/bench/` (WORKLOAD.md):
//! regenerates tiny300, tiny60 and small with `gen_rain.py` and compares the canonical output
//! byte for byte. Needs `python3` with numpy 2.x; without them the test fails, it never skips.

use std::path::PathBuf;
use std::process::Command;

use tianshan_core::rain_workload::{run_workload, WorkloadSpec};

/// `shared/bench/`, beside the repository.
fn bench_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join("bench")
}

/// Runs `gen_rain.py` with the WORKLOAD.md arguments and returns the CSV it writes to stdout.
fn generate(stations: u32, interval_s: u32) -> Vec<u8> {
    let script = bench_dir().join("gen_rain.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--stations", &stations.to_string(), "--hours", "24"])
        .args(["--interval", &interval_s.to_string(), "--seed", "7", "--out", "-"])
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run python3 ({err}): the benchmark workload test needs python3 with numpy 2.x")
        });
    assert!(
        output.status.success(),
        "{} failed ({}); it needs numpy 2.x (`pip install numpy`):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Checks one standard data set against its `<name>.expected`.
fn check(name: &str, stations: u32, interval_s: u32) {
    let csv = generate(stations, interval_s);
    let expected_path = bench_dir().join(format!("{name}.expected"));
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", expected_path.display()));
    let report =
        run_workload(&csv, &WorkloadSpec::default()).expect("generated CSV is well formed");
    assert_eq!(report.stations, stations as usize, "{name}: stations");
    assert_eq!(
        report.canonical(),
        expected,
        "{name}: canonical output differs from {} (a numpy other than 2.x generates other bytes)",
        expected_path.display()
    );
}

#[test]
fn tiny300_matches_the_expected_output() {
    check("tiny300", 30, 300);
}

#[test]
fn tiny60_matches_the_expected_output() {
    check("tiny60", 30, 60);
}

#[test]
fn small_matches_the_expected_output() {
    check("small", 1000, 60);
}
