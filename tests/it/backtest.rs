//! `tianshan replay --warnings-out` and `tianshan backtest`, through the real binary: a small
//! archive of one basin's storm scored against a catalogue with hand-computed scores, the
//! Parquet warnings equal to the printed ones, Parquet observation archives equal to CSV, and a
//! sweep of the storm scenario whose POD never rises with the rain-threshold factor.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tianshan_core::warning::WarningEvent;
use tianshan_pipelines::archive::{read_warnings_parquet, write_observations_parquet};
use tianshan_pipelines::gateway::read_observation_file;

/// A folder of its own under the temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tianshan-it-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temporary folder");
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the repository; returns (success, stdout, stderr).
fn tianshan(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .args(args)
        .current_dir(repository())
        .output()
        .expect("run the tianshan binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path(file: &Path) -> &str {
    file.to_str().expect("a UTF-8 temporary path")
}

/// The five rain gauges of basin B0008 (巩留县, Gongliu, prefecture 654000), which feed no other
/// basin, report every 5 min from 00:00 to 08:00 UTC on 2024-07-01; from 01:05 to 02:00 it
/// rains 2.2–2.8 mm per report (varied, so QC does not call a gauge stuck): 29.6 mm in the hour,
/// over the basin's dry 1-h thresholds (prepare 18.5, immediate 26.5 mm).
fn one_basin_storm() -> String {
    const PATTERN: [f64; 6] = [2.2, 2.6, 2.4, 2.8, 2.5, 2.3];
    let mut csv = String::from("station_id,event_time,gateway_id,sequence,kind,value,interval_s\n");
    let mut sequence = 0;
    for step in 0..=96 {
        let minutes = step * 5;
        let mm = if (13..=24).contains(&step) {
            PATTERN[step % 6]
        } else {
            0.0
        };
        for station in ["R00001", "R00004", "R00029", "R00030", "R00032"] {
            sequence += 1;
            csv.push_str(&format!(
                "{station},2024-07-01T{:02}:{:02}:00Z,gw-test,{sequence},rainfall,{mm},300\n",
                minutes / 60,
                minutes % 60
            ));
        }
    }
    csv
}

/// The catalogue of the one-basin storm (synthetic, for this test):
/// - E1: the flood of B0008 at 02:30, severity orange;
/// - E2: a flood at 02:00 in township 654024101 of Gongliu, in no gauged basin, severity orange;
/// - E3: a first flood wave of B0008 at 01:35, severity yellow.
const CATALOGUE: &str = "\
id,hazard,target,area_codes,start,end,level
E1,flash_flood,B0008,,2024-07-01T02:30:00Z,2024-07-01T04:00:00Z,orange
E2,flash_flood,,654024101,2024-07-01T02:00:00Z,2024-07-01T03:00:00Z,orange
E3,flash_flood,B0008,,2024-07-01T01:35:00Z,2024-07-01T02:00:00Z,yellow
";

/// Returns the all-hazards, all-regions row of `level` of the first run, or the row of
/// `region` when given.
fn row<'a>(report: &'a Value, level: &str, region: Option<&str>) -> &'a Value {
    report["runs"][0]["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .find(|row| {
            row["level"] == level && row["hazard"].is_null() && row["region"].as_str() == region
        })
        .unwrap_or_else(|| panic!("no row for {level} {region:?}"))
}

fn counts(row: &Value) -> (u64, u64, u64) {
    let count = |name: &str| row[name].as_u64().expect("a count");
    (count("hits"), count("misses"), count("false_alarms"))
}

fn close(value: &Value, expected: f64) {
    let value = value.as_f64().expect("a number");
    assert!((value - expected).abs() < 1e-9, "{value} is not {expected}");
}

#[test]
fn a_one_basin_archive_scores_as_computed_by_hand() {
    let dir = TempDir::new("backtest-small");
    let archive = dir.file("storm.csv");
    let events = dir.file("events.csv");
    let warnings = dir.file("warnings.parquet");
    std::fs::write(&archive, one_basin_storm()).expect("write the archive");
    std::fs::write(&events, CATALOGUE).expect("write the catalogue");

    // The replay issues one thread: FF-B0008, blue 01:25, yellow 01:30, orange 01:40, red
    // 01:55 (the hourly areal sum passes 0.6, 0.8, 1 and 1.43 × prepare), then downgrades.
    let (ok, stdout, stderr) = tianshan(&[
        "replay",
        path(&archive),
        "--format",
        "json",
        "--warnings-out",
        path(&warnings),
    ]);
    assert!(ok, "{stderr}");
    let printed: Vec<WarningEvent> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a warning per line"))
        .collect();
    let firsts: Vec<(String, &str, &str)> = printed
        .iter()
        .filter(|w| w.status.name() != "downgraded")
        .map(|w| (w.issued.to_compact_utc(), w.status.name(), w.level.name()))
        .collect();
    assert_eq!(
        firsts,
        [
            ("20240701T0125Z".to_owned(), "issued", "blue"),
            ("20240701T0130Z".to_owned(), "upgraded", "yellow"),
            ("20240701T0140Z".to_owned(), "upgraded", "orange"),
            ("20240701T0155Z".to_owned(), "upgraded", "red"),
        ]
    );
    // The Parquet file holds exactly the versions printed.
    assert_eq!(
        read_warnings_parquet(&warnings).expect("the warnings file reads back"),
        printed
    );

    let (ok, stdout, stderr) = tianshan(&[
        "backtest",
        "--archive",
        path(&archive),
        "--events",
        path(&events),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    // ≥ blue: E1 hit (first blue 01:25, lead 65 min), E3 hit (lead 10 min), E2 missed (no
    // warning in its township). The thread verifies: no false alarm. H=2 M=1 F=0: POD 2/3,
    // FAR 0, CSI 2/3, median lead (10 + 65) / 2 = 37.5 min.
    let blue = row(&report, "blue", None);
    assert_eq!(counts(blue), (2, 1, 0));
    close(&blue["pod"], 2.0 / 3.0);
    close(&blue["far"], 0.0);
    close(&blue["csi"], 2.0 / 3.0);
    close(&blue["median_lead_min"], 37.5);
    // ≥ yellow (from 01:30): E1 lead 60, E3 lead 5, E2 missed. H=2 M=1 F=0.
    let yellow = row(&report, "yellow", None);
    assert_eq!(counts(yellow), (2, 1, 0));
    assert_eq!(yellow["lead_times_min"], serde_json::json!([5.0, 60.0]));
    // ≥ orange (from 01:40): E3 (yellow) no longer counts; E1 lead 50, E2 missed. H=1 M=1 F=0:
    // POD 1/2, CSI 1/2.
    let orange = row(&report, "orange", None);
    assert_eq!(counts(orange), (1, 1, 0));
    close(&orange["pod"], 0.5);
    close(&orange["csi"], 0.5);
    close(&orange["median_lead_min"], 50.0);
    // ≥ red: no event that severe, yet the thread reached red: one false alarm. POD undefined,
    // FAR 1, CSI 0.
    let red = row(&report, "red", None);
    assert_eq!(counts(red), (0, 0, 1));
    assert!(red["pod"].is_null());
    close(&red["far"], 1.0);
    close(&red["csi"], 0.0);
    // Everything is in prefecture 654000 (伊犁哈萨克自治州): its row is the total.
    let ili = row(&report, "blue", Some("654000"));
    assert_eq!(counts(ili), (2, 1, 0));
    assert_eq!(ili["region_name"], "伊犁哈萨克自治州");

    // Scoring the warnings file instead of replaying gives the same scores.
    let (ok, from_file, stderr) = tianshan(&[
        "backtest",
        "--warnings",
        path(&warnings),
        "--events",
        path(&events),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let from_file: Value = serde_json::from_str(&from_file).expect("a JSON report");
    assert_eq!(from_file["runs"][0]["replayed"], false);
    assert_eq!(report["runs"][0]["replayed"], true);
    for part in ["scores", "hits", "warning_versions", "warning_threads"] {
        assert_eq!(
            from_file["runs"][0][part], report["runs"][0][part],
            "{part}"
        );
    }
}

#[test]
fn a_parquet_observation_archive_replays_as_its_csv() {
    let dir = TempDir::new("backtest-parquet");
    let csv = dir.file("storm.csv");
    let parquet = dir.file("storm.parquet");
    std::fs::write(&csv, one_basin_storm()).expect("write the archive");
    let observations = read_observation_file(&csv).expect("the CSV reads");
    write_observations_parquet(&parquet, &observations).expect("write the Parquet archive");
    let (ok, from_csv, stderr) = tianshan(&["replay", path(&csv), "--format", "json"]);
    assert!(ok, "{stderr}");
    let (ok, from_parquet, stderr) = tianshan(&["replay", path(&parquet), "--format", "json"]);
    assert!(ok, "{stderr}");
    assert!(from_csv.lines().count() >= 4, "{from_csv}");
    assert_eq!(from_parquet, from_csv);
    // SQL over both files, locally.
    let warnings = dir.file("warnings.parquet");
    let (ok, _, stderr) = tianshan(&["replay", path(&parquet), "--warnings-out", path(&warnings)]);
    assert!(ok, "{stderr}");
    let (ok, answer, stderr) = tianshan(&[
        "sql",
        "--parquet",
        &format!("obs={}", path(&parquet)),
        "--parquet",
        &format!("w={}", path(&warnings)),
        "--format",
        "csv",
        "SELECT (SELECT COUNT(*) FROM obs) AS observations, \
         (SELECT ROUND(SUM(value), 1) FROM obs WHERE station_id = 'R00029') AS r00029_mm, \
         (SELECT COUNT(*) FROM w WHERE status = 'upgraded') AS upgrades",
    ]);
    assert!(ok, "{stderr}");
    // 97 reports × 5 gauges; 29.6 mm at each gauge; blue → yellow → orange → red.
    assert_eq!(answer, "observations,r00029_mm,upgrades\n485,29.6,3\n");
}

#[test]
fn bad_catalogues_and_sweeps_are_refused_with_the_line_or_part() {
    let dir = TempDir::new("backtest-bad");
    let events = dir.file("events.csv");
    std::fs::write(
        &events,
        "id,hazard,target,area_codes,start,end,level\n\
         E1,mudslide,B0008,,2024-07-01T02:30:00Z,2024-07-01T04:00:00Z,\n",
    )
    .expect("write");
    let (ok, _, stderr) = tianshan(&["backtest", "--storm", "--events", path(&events)]);
    assert!(!ok);
    assert!(
        stderr.contains("line 2: field hazard: unknown hazard `mudslide`"),
        "{stderr}"
    );
    std::fs::write(
        &events,
        "id,hazard,target,area_codes,start,end,level\n\
         E1,flash_flood,NO-SUCH-BASIN,,2024-07-01T02:30:00Z,2024-07-01T04:00:00Z,\n",
    )
    .expect("write");
    let (ok, _, stderr) = tianshan(&["backtest", "--storm", "--events", path(&events)]);
    assert!(!ok);
    assert!(
        stderr.contains("event E1: target `NO-SUCH-BASIN` is not a basin, slope or fire zone"),
        "{stderr}"
    );
    let storm_events = repository().join("regions/xinjiang/storm_events.csv");
    let (ok, _, stderr) = tianshan(&[
        "backtest",
        "--storm",
        "--events",
        path(&storm_events),
        "--sweep",
        "factor=0.6:1.4:0",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--sweep: sweep step must be positive, got 0"),
        "{stderr}"
    );
}

#[test]
fn lower_rain_thresholds_never_lower_the_pod_of_the_storm() {
    let dir = TempDir::new("backtest-sweep");
    let plot = dir.file("sweep.svg");
    let events = repository().join("regions/xinjiang/storm_events.csv");
    let (ok, stdout, stderr) = tianshan(&[
        "backtest",
        "--storm",
        "--events",
        path(&events),
        "--sweep",
        "factor=0.6:1.4:0.2",
        "--plot",
        path(&plot),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    let runs = report["runs"].as_array().expect("runs");
    let factors: Vec<f64> = runs
        .iter()
        .map(|r| r["factor"].as_f64().expect("factor"))
        .collect();
    assert_eq!(factors, [0.6, 0.8, 1.0, 1.2, 1.4]);
    // Factor 1 is the configuration of the golden storm: its 74 warning versions.
    assert_eq!(runs[2]["warning_versions"], 74);
    for level in ["blue", "yellow", "orange", "red"] {
        let pods: Vec<f64> = runs
            .iter()
            .map(|run| {
                run["scores"]
                    .as_array()
                    .expect("scores")
                    .iter()
                    .find(|row| {
                        row["level"] == level && row["hazard"].is_null() && row["region"].is_null()
                    })
                    .and_then(|row| row["pod"].as_f64())
                    .expect("every run scores every level")
            })
            .collect();
        assert!(
            pods.windows(2).all(|pair| pair[0] >= pair[1]),
            "POD at ≥ {level} rises with the factor: {pods:?}"
        );
        if level == "red" {
            // The sweep does move the scores: at 1.4 the red warnings come after some events.
            assert!(pods[4] < pods[0], "{pods:?}");
        }
    }
    let svg = std::fs::read_to_string(&plot).expect("the plot is written");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches(r#"<circle class="POD""#).count(), 5);
}
