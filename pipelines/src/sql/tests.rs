use std::path::Path;
use std::time::Instant;

use tianshan_actors::station::Envelope;
use tianshan_core::dissemination::acknowledgement::{
    AcknowledgementConfig, DeliveryOutcome, ForcedAcknowledgement,
};
use tianshan_core::dissemination::recipients::Directory;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AreaCode, GatewayId, StationId, WarningId};
use tianshan_core::observation::{Observation, Reading};
use tianshan_core::region::{AdminLevel, StationKind};
use tianshan_core::warning::{Action, Hazard, Level, Status};

use super::*;
use crate::replay::Replay;

fn at(hh_mm: &str) -> EventTime {
    EventTime::parse_rfc3339(&format!("2024-07-01T{hh_mm}:00+08:00")).expect("fixture time")
}

fn region() -> Arc<Region> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
    Arc::new(Region::load(Path::new(path)).expect("the shipped region loads"))
}

fn settings() -> crate::node_pipeline::PipelineSettings {
    crate::node_pipeline::PipelineSettings {
        kafka: Default::default(),
        pipeline: Default::default(),
        windows: Default::default(),
        flash_flood: Default::default(),
        lifecycle: Default::default(),
        debris_flow: Default::default(),
        lightning_fire: Default::default(),
        landslide: Default::default(),
        snowmelt: Default::default(),
        dissemination: Default::default(),
        agency_alerts: Default::default(),
    }
}

/// The first two rain gauges of the region.
fn gauges(region: &Region) -> (StationId, StationId) {
    let mut rain = region
        .stations
        .values()
        .filter(|station| station.kind == StationKind::Rain)
        .map(|station| station.id.clone());
    let first = rain.next().expect("a rain gauge");
    let second = rain.next().expect("a second rain gauge");
    (first, second)
}

/// Five-minute reports from 10:05 to 11:05, alternating 1 and 2 mm at the first gauge and 2.5
/// and 3.5 mm at the second (a constant series would be rejected as a stuck sensor), so the
/// hour to the 11:00 tick holds 18 mm and 36 mm; the 11:05 reports let the 11:00 tick pass.
fn observations(first: &StationId, second: &StationId) -> Vec<(String, Envelope)> {
    let mut out = Vec::new();
    for step in 1..=13u64 {
        let minutes = 5 * step;
        let time = at(&format!("{:02}:{:02}", 10 + minutes / 60, minutes % 60));
        let odd = step % 2 == 1;
        for (station, mm) in [
            (first, if odd { 1.0 } else { 2.0 }),
            (second, if odd { 2.5 } else { 3.5 }),
        ] {
            out.push((
                station.as_str().to_owned(),
                Envelope {
                    observation: Observation {
                        station: station.clone(),
                        event_time: time,
                        gateway: GatewayId::new("G1"),
                        sequence: step,
                        reading: Reading::Rainfall {
                            mm,
                            interval_s: 300,
                        },
                    },
                    received_at: time,
                },
            ));
        }
    }
    out
}

/// A red flash-flood warning over the first two counties of the region.
fn warning(region: &Region) -> WarningEvent {
    let counties: Vec<AreaCode> = region
        .admin_units
        .values()
        .filter(|unit| unit.level == AdminLevel::County)
        .take(2)
        .map(|unit| unit.code.clone())
        .collect();
    WarningEvent {
        id: WarningId::new("FF-B0001-20240701T0300Z"),
        version: 1,
        hazard: Hazard::FlashFlood,
        level: Level::Red,
        action: Action::EvacuateImmediately,
        status: Status::Issued,
        target: "B0001".to_owned(),
        area_codes: counties,
        onset: at("11:00"),
        issued: at("11:00"),
        expires: at("14:00"),
        evidence: Vec::new(),
        caused_by: None,
    }
}

/// The book of `warning`: every first delivery reported delivered at 11:01, and the first
/// recipient that must acknowledge does so at 11:03. Returns the book and that recipient.
fn book(region: &Region, warning: &WarningEvent) -> (ForcedAcknowledgement, String) {
    let tree = AdminTree::try_from_units(&region.admin_units).expect("tree");
    let directory = Directory::synthetic(&tree, 1);
    let reach = tree.reach_of_area_codes(&warning.area_codes);
    let targets = directory.targets(&reach, &tree);
    let (mut book, first) = ForcedAcknowledgement::open(
        warning,
        &targets,
        &directory,
        &AcknowledgementConfig::default(),
        at("11:00"),
    );
    for delivery in &first {
        book.record_delivery(&delivery.key, DeliveryOutcome::Delivered, at("11:01"))
            .expect("delivery recorded");
    }
    let (recipient, subject) = book
        .obligations()
        .find(|(_, _, obligation)| obligation.must_acknowledge)
        .map(|(recipient, subject, _)| (recipient.clone(), subject.clone()))
        .expect("someone must acknowledge a red warning");
    book.acknowledge(&recipient, &subject, &recipient, at("11:03"))
        .expect("acknowledged");
    (book, recipient.as_str().to_owned())
}

/// The shipped region after the fixture observations went through the model actors, with
/// one active warning and its book.
async fn node_with_known_state() -> (NodeSql, Arc<Region>, (StationId, StationId), String) {
    let region = region();
    let (first, second) = gauges(&region);
    let mut replay = Replay::start(&settings(), region.clone())
        .await
        .expect("replay starts");
    replay
        .push_file(observations(&first, &second))
        .await
        .expect("pushed");
    replay.settle().await.expect("settled");
    let mut snapshot = NodeSnapshot::of_models(replay.models(), region.clone(), at("11:05"))
        .await
        .expect("snapshot");
    replay.finish(None).await.expect("replay finishes");
    let warning = warning(&region);
    let (book, acknowledged_by) = book(&region, &warning);
    snapshot.warnings = vec![warning];
    snapshot.books = vec![book];
    snapshot.rejected = BTreeMap::from([(RejectReason::TooLate, 3)]);
    let sql = NodeSql::new(&snapshot).expect("tables register");
    (sql, region, (first, second), acknowledged_by)
}

async fn csv(sql: &NodeSql, query: &str) -> String {
    let batches = sql.query(query).await.expect("query runs");
    format_batches(&batches, OutputFormat::Csv).expect("csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_over_a_node_with_known_state() {
    let (sql, region, (first, second), acknowledged_by) = node_with_known_state().await;
    assert_eq!(sql.taken_at(), at("11:05"));

    // Window sums of the two gauges at the last tick.
    assert_eq!(
        csv(
            &sql,
            &format!(
                "SELECT station, tick, mm FROM station_windows \
                 WHERE duration_min = 60 AND station IN ('{first}', '{second}') ORDER BY station"
            )
        )
        .await,
        format!(
            "station,tick,mm\n{first},2024-07-01T03:00:00.000Z,18.0\n\
             {second},2024-07-01T03:00:00.000Z,36.0\n"
        )
    );
    assert_eq!(
        csv(
            &sql,
            "SELECT count(*) AS wet FROM station_windows WHERE mm > 0 AND duration_min = 60"
        )
        .await,
        "wet\n2\n"
    );

    // Stations by kind, against the region.
    let mut expected = String::from("kind,stations\n");
    for kind in [
        StationKind::Rain,
        StationKind::WaterLevel,
        StationKind::Weather,
    ] {
        let count = region.stations.values().filter(|s| s.kind == kind).count();
        expected.push_str(&format!("{},{count}\n", kind.as_str()));
    }
    assert_eq!(
        csv(
            &sql,
            "SELECT kind, count(*) AS stations FROM stations GROUP BY kind ORDER BY kind"
        )
        .await,
        expected
    );

    // Active warnings joined with the admin units they reach.
    let mut expected = String::from("id,level,code,name,unit_level\n");
    for code in &sql_warning_codes(&region) {
        let unit = &region.admin_units[code];
        expected.push_str(&format!(
            "FF-B0001-20240701T0300Z,red,{code},{},county\n",
            unit.name
        ));
    }
    assert_eq!(
        csv(
            &sql,
            "SELECT w.id, w.level, a.code, a.name, a.level AS unit_level \
             FROM (SELECT id, level, unnest(area_codes) AS code FROM warnings) w \
             JOIN admin_units a ON a.code = w.code ORDER BY a.code"
        )
        .await,
        expected
    );

    // Deliveries not acknowledged: everyone but the one who acknowledged.
    let total = csv(&sql, "SELECT count(*) AS n FROM deliveries").await;
    let total: usize = total
        .trim_start_matches("n\n")
        .trim()
        .parse()
        .expect("a count");
    assert!(total > 1, "the book has several recipients");
    assert_eq!(
        csv(
            &sql,
            "SELECT count(*) AS n FROM deliveries WHERE acknowledged IS NULL"
        )
        .await,
        format!("n\n{}\n", total - 1)
    );
    assert_eq!(
        csv(
            &sql,
            &format!(
                "SELECT state, first_delivered, acknowledged FROM deliveries \
                 WHERE recipient = '{acknowledged_by}'"
            )
        )
        .await,
        "state,first_delivered,acknowledged\n\
         acknowledged,2024-07-01T03:01:00.000Z,2024-07-01T03:03:00.000Z\n"
    );
    assert_eq!(
        csv(&sql, "SELECT reason, count FROM dead_letters").await,
        "reason,count\ntoo_late,3\n"
    );
}

/// The counties the fixture warning names, in code order.
fn sql_warning_codes(region: &Region) -> Vec<AreaCode> {
    let mut codes = warning(region).area_codes;
    codes.sort();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_written_as_table_csv_and_json() {
    let (sql, _, (first, _), _) = node_with_known_state().await;
    let query = format!(
        "SELECT station, duration_min, mm FROM station_windows \
         WHERE station = '{first}' AND duration_min = 60"
    );
    let batches = sql.query(&query).await.expect("query runs");
    assert_eq!(
        format_batches(&batches, OutputFormat::Json).expect("json"),
        format!(r#"[{{"station":"{first}","duration_min":60,"mm":18.0}}]"#)
    );
    let table = format_batches(&batches, OutputFormat::Table).expect("table");
    assert!(
        table.contains("| station") && table.contains(&format!("| {first} ")),
        "{table}"
    );
    let none = sql
        .query("SELECT station FROM station_windows WHERE mm < 0")
        .await
        .expect("query runs");
    assert_eq!(
        format_batches(&none, OutputFormat::Json).expect("json"),
        "[]"
    );
    let error = sql.query("SELECT nope FROM station_windows").await;
    assert!(matches!(error, Err(PipelineError::Sql(_))), "{error:?}");
}

/// The latency of the top-ten query of BENCHMARKS.md over the shipped region's stations
/// (median of nine runs, printed; run with `--nocapture` to read it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ten_hourly_sums_over_the_shipped_region() {
    let (sql, region, (first, second), _) = node_with_known_state().await;
    let query =
        "SELECT station, mm FROM station_windows WHERE duration_min = 60 ORDER BY mm DESC LIMIT 10";
    let mut millis = Vec::new();
    let mut answer = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        answer = sql.query(query).await.expect("query runs");
        millis.push(started.elapsed().as_secs_f64() * 1e3);
    }
    millis.sort_by(f64::total_cmp);
    let rain = region
        .stations
        .values()
        .filter(|s| s.kind == StationKind::Rain)
        .count();
    println!(
        "top ten of {rain} rain gauges ({} stations): median {:.2} ms, min {:.2} ms, max {:.2} ms",
        region.stations.len(),
        millis[4],
        millis[0],
        millis[8]
    );
    let text = format_batches(&answer, OutputFormat::Csv).expect("csv");
    let mut lines = text.lines().skip(1);
    assert_eq!(lines.next(), Some(format!("{second},36.0").as_str()));
    assert_eq!(lines.next(), Some(format!("{first},18.0").as_str()));
    assert_eq!(lines.count(), 8);
}
