//! Tests of warning verification: a small catalogue and warning set written out here, with every
//! expected score computed by hand in the comments.

use super::*;
use crate::warning::{warning_id, Action, Evidence};

const HOUR: i64 = 3_600_000;

/// 2024-07-01T`hh:mm`Z.
fn at(hh_mm: &str) -> EventTime {
    EventTime::parse_rfc3339(&format!("2024-07-01T{hh_mm}:00Z")).expect("test time")
}

/// Prefectures of the test: 6501xx → 650100 (乌鲁木齐), 6523xx → 652300 (昌吉).
fn prefecture_of(code: &AreaCode) -> Option<AreaCode> {
    let code = code.as_str();
    ["6501", "6523"]
        .into_iter()
        .find(|prefix| code.starts_with(prefix))
        .map(|prefix| AreaCode::new(format!("{prefix}00")))
}

/// One version of the thread of (`hazard`, `target`) whose first version is at `onset`; every
/// version expires 3 h after its issue.
fn version(
    (hazard, target, onset): (Hazard, &str, &str),
    number: u32,
    status: Status,
    level: Level,
    issued: &str,
    areas: &[&str],
) -> WarningEvent {
    WarningEvent {
        id: warning_id(hazard, target, at(onset)),
        version: number,
        hazard,
        level,
        action: Action::Monitor,
        status,
        target: target.to_owned(),
        area_codes: areas.iter().copied().map(AreaCode::new).collect(),
        onset: at(onset),
        issued: at(issued),
        expires: EventTime(at(issued).millis() + 3 * HOUR),
        evidence: vec![Evidence {
            quantity: "areal_rain_3h".into(),
            value: 1.0,
            threshold: 1.0,
            completeness: 1.0,
            stations: vec![],
        }],
        caused_by: None,
    }
}

/// The catalogue of the tests:
/// - E1 flash flood in basin B1 (county 650102), 12:00, severity red;
/// - E2 flash flood in township 650102001 (no target), 13:00, severity orange;
/// - E3 flash flood in basin B3 (county 652301), 12:00, no severity;
/// - E4 debris flow in gully G1 (county 652302), 16:00, severity yellow.
const CATALOGUE: &str = "\
# synthetic: written for this test
id,hazard,target,area_codes,start,end,level,note
E1,flash_flood,B1,650102,2024-07-01T12:00:00Z,2024-07-01T14:00:00Z,red,
E2,flash_flood,,650102001,2024-07-01T13:00:00Z,2024-07-01T15:00:00Z,orange,township only
E3,flash_flood,B3,652301,2024-07-01T12:00:00Z,2024-07-01T13:00:00Z,,
E4,debris_flow,G1,652302,2024-07-01T16:00:00Z,2024-07-01T17:00:00Z,yellow,
";

/// The warnings of the tests:
/// - W1 FF B1 [650102, 650102001]: blue 09:00, orange 10:00, red 11:30, cancelled 16:00;
/// - W2 FF B2 [652302]: yellow 10:00, cancelled 11:00 (nothing happened there);
/// - W3 FF B3 [652301]: orange 12:30 (after E3 began), cancelled 15:00;
/// - W4 DF G1 [652302]: orange 14:00, cancelled 18:00;
/// - W5 FF B9 [650103]: blue 00:00, lapses at 03:00 (a neighbouring county).
fn warnings() -> Vec<WarningEvent> {
    use Hazard::{DebrisFlow, FlashFlood};
    use Level::{Blue, Orange, Red, Yellow};
    use Status::{Cancelled, Issued, Upgraded};
    let w1 = ["650102", "650102001"];
    vec![
        // Out of order on purpose: threads sort their versions.
        version((FlashFlood, "B1", "09:00"), 3, Upgraded, Red, "11:30", &w1),
        version((FlashFlood, "B1", "09:00"), 1, Issued, Blue, "09:00", &w1),
        version(
            (FlashFlood, "B1", "09:00"),
            2,
            Upgraded,
            Orange,
            "10:00",
            &w1,
        ),
        version((FlashFlood, "B1", "09:00"), 4, Cancelled, Red, "16:00", &w1),
        version(
            (FlashFlood, "B2", "10:00"),
            1,
            Issued,
            Yellow,
            "10:00",
            &["652302"],
        ),
        version(
            (FlashFlood, "B2", "10:00"),
            2,
            Cancelled,
            Yellow,
            "11:00",
            &["652302"],
        ),
        version(
            (FlashFlood, "B3", "12:30"),
            1,
            Issued,
            Orange,
            "12:30",
            &["652301"],
        ),
        version(
            (FlashFlood, "B3", "12:30"),
            2,
            Cancelled,
            Orange,
            "15:00",
            &["652301"],
        ),
        version(
            (DebrisFlow, "G1", "14:00"),
            1,
            Issued,
            Orange,
            "14:00",
            &["652302"],
        ),
        version(
            (DebrisFlow, "G1", "14:00"),
            2,
            Cancelled,
            Orange,
            "18:00",
            &["652302"],
        ),
        version(
            (FlashFlood, "B9", "00:00"),
            1,
            Issued,
            Blue,
            "00:00",
            &["650103"],
        ),
    ]
}

fn scores(hits: u32, misses: u32, false_alarms: u32, leads_h: &[f64]) -> Scores {
    Scores {
        hits,
        misses,
        false_alarms,
        lead_times_ms: leads_h.iter().map(|h| (h * HOUR as f64) as i64).collect(),
    }
}

fn run(config: &VerificationConfig) -> Verification {
    let events = parse_catalogue(CATALOGUE).expect("the test catalogue parses");
    verify(&warnings(), &events, prefecture_of, config)
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("a defined score");
    assert!(
        (actual - expected).abs() < 1e-12,
        "{actual} is not {expected}"
    );
}

#[test]
fn threads_take_their_versions_in_order() {
    let threads = warning_threads(&warnings());
    assert_eq!(threads.len(), 5);
    let w1 = threads
        .iter()
        .find(|t| t.target == "B1")
        .expect("thread of B1");
    assert_eq!(w1.reached_at(Level::Blue), Some(at("09:00")));
    assert_eq!(w1.reached_at(Level::Yellow), Some(at("10:00")));
    assert_eq!(w1.reached_at(Level::Orange), Some(at("10:00")));
    assert_eq!(w1.reached_at(Level::Red), Some(at("11:30")));
    assert_eq!((w1.from, w1.until), (at("09:00"), at("16:00")));
    assert_eq!(w1.max_level, Level::Red);
    let w5 = threads
        .iter()
        .find(|t| t.target == "B9")
        .expect("thread of B9");
    // Never cancelled: in force until its only version expires.
    assert_eq!(w5.until, at("03:00"));
    assert_eq!(w5.reached_at(Level::Yellow), None);
}

#[test]
fn areas_overlap_through_the_code_hierarchy() {
    let codes = |list: &[&str]| list.iter().copied().map(AreaCode::new).collect::<Vec<_>>();
    assert!(areas_overlap(&codes(&["650102"]), &codes(&["650102003"])));
    assert!(areas_overlap(&codes(&["650102003"]), &codes(&["650100"])));
    assert!(areas_overlap(&codes(&["650102"]), &codes(&["650000"])));
    assert!(!areas_overlap(&codes(&["650102"]), &codes(&["650103"])));
    assert!(!areas_overlap(
        &codes(&["650102001"]),
        &codes(&["650102003"])
    ));
    assert!(!areas_overlap(&codes(&[]), &codes(&["650102"])));
}

#[test]
fn places_are_targets_or_the_finest_areas() {
    let events = parse_catalogue(CATALOGUE).expect("parses");
    let threads = warning_threads(&warnings());
    let w1 = threads.iter().find(|t| t.target == "B1").expect("W1");
    let config = VerificationConfig::default();
    // E2 is given by W1's township 650102001: a hit.
    assert!(hit_time(w1, &events[1], Level::Blue, &config).is_some());
    // Another township of W1's county is not W1's place, though W1 lists the county.
    let elsewhere = CatalogueEvent {
        area_codes: vec![AreaCode::new("650102003")],
        ..events[1].clone()
    };
    assert_eq!(hit_time(w1, &elsewhere, Level::Blue, &config), None);
    // The county as a whole holds W1's townships.
    let county = CatalogueEvent {
        area_codes: vec![AreaCode::new("650102")],
        ..events[1].clone()
    };
    assert!(hit_time(w1, &county, Level::Blue, &config).is_some());
    // An event with a target is at that target only, whatever the areas say.
    let other_basin = CatalogueEvent {
        target: Some("B2".into()),
        ..events[0].clone()
    };
    assert_eq!(hit_time(w1, &other_basin, Level::Blue, &config), None);
}

#[test]
fn scores_at_each_threshold_over_all_hazards() {
    let v = run(&VerificationConfig::default());
    // Blue: all four events count. E1 hit by W1 (reached blue 09:00, lead 3 h), E2 by W1
    // (one of W1's townships, lead 4 h), E3 missed (W3 came at 12:30, after the start),
    // E4 hit by W4 (lead 2 h). False alarms: W2, W3, W5. H=3 M=1 F=3:
    // POD 3/4, FAR 3/6, CSI 3/7, median lead 3 h.
    let blue = v.get(Level::Blue, None, None);
    assert_eq!(blue, scores(3, 1, 3, &[2.0, 3.0, 4.0]));
    assert_close(blue.pod(), 0.75);
    assert_close(blue.far(), 0.5);
    assert_close(blue.csi(), 3.0 / 7.0);
    assert_eq!(blue.median_lead_ms(), Some(3 * HOUR));
    // Yellow: W1 reached yellow at 10:00 (its orange): E1 lead 2 h, E2 lead 3 h; E4 by W4 at
    // 14:00, lead 2 h; E3 missed. W5 (blue only) no longer counts; false alarms W2, W3.
    // H=3 M=1 F=2: POD 3/4, FAR 2/5, CSI 3/6.
    let yellow = v.get(Level::Yellow, None, None);
    assert_eq!(yellow, scores(3, 1, 2, &[2.0, 2.0, 3.0]));
    assert_close(yellow.far(), 0.4);
    assert_close(yellow.csi(), 0.5);
    assert_eq!(yellow.median_lead_ms(), Some(2 * HOUR));
    // Orange: E4 (severity yellow) no longer counts, so W4 is a false alarm, as is W3.
    // E1 lead 2 h, E2 lead 3 h, E3 missed. H=2 M=1 F=2: POD 2/3, FAR 2/4, CSI 2/5.
    let orange = v.get(Level::Orange, None, None);
    assert_eq!(orange, scores(2, 1, 2, &[2.0, 3.0]));
    assert_close(orange.pod(), 2.0 / 3.0);
    assert_close(orange.csi(), 0.4);
    assert_eq!(orange.median_lead_ms(), Some(5 * HOUR / 2));
    // Red: events E1 and E3 (no severity). W1 reached red at 11:30: E1 lead 30 min; E3 missed;
    // only W1 reached red. H=1 M=1 F=0: POD 1/2, FAR 0, CSI 1/2.
    let red = v.get(Level::Red, None, None);
    assert_eq!(red, scores(1, 1, 0, &[0.5]));
    assert_close(red.far(), 0.0);
    assert_close(red.csi(), 0.5);
}

#[test]
fn scores_per_hazard() {
    let v = run(&VerificationConfig::default());
    // Flash floods at blue: E1, E2 hit, E3 missed; W2, W3, W5 false. POD 2/3, FAR 3/5, CSI 2/6.
    let ff = v.get(Level::Blue, Some(Hazard::FlashFlood), None);
    assert_eq!(ff, scores(2, 1, 3, &[3.0, 4.0]));
    assert_close(ff.pod(), 2.0 / 3.0);
    assert_close(ff.far(), 0.6);
    assert_close(ff.csi(), 1.0 / 3.0);
    // Debris flows at blue: E4 hit by W4. POD 1, FAR 0, CSI 1.
    let df = v.get(Level::Blue, Some(Hazard::DebrisFlow), None);
    assert_eq!(df, scores(1, 0, 0, &[2.0]));
    assert_close(df.csi(), 1.0);
    // Debris flows at orange: no event of that severity, W4 false. POD undefined, FAR 1, CSI 0.
    let df = v.get(Level::Orange, Some(Hazard::DebrisFlow), None);
    assert_eq!(df, scores(0, 0, 1, &[]));
    assert_eq!(df.pod(), None);
    assert_close(df.far(), 1.0);
    assert_close(df.csi(), 0.0);
    // Nothing of a hazard nobody warned or saw.
    assert_eq!(
        v.get(Level::Blue, Some(Hazard::Landslide), None),
        Scores::default()
    );
}

#[test]
fn scores_per_prefecture() {
    let v = run(&VerificationConfig::default());
    let urumqi = AreaCode::new("650100");
    let changji = AreaCode::new("652300");
    // 650100 at blue: E1, E2 hit; W5 (county 650103) false. H=2 M=0 F=1: FAR 1/3, CSI 2/3.
    let u = v.get(Level::Blue, None, Some(&urumqi));
    assert_eq!(u, scores(2, 0, 1, &[3.0, 4.0]));
    assert_close(u.far(), 1.0 / 3.0);
    assert_close(u.csi(), 2.0 / 3.0);
    // 652300 at blue: E4 hit, E3 missed; W2, W3 false. H=1 M=1 F=2: POD 1/2, FAR 2/3, CSI 1/4.
    let c = v.get(Level::Blue, None, Some(&changji));
    assert_eq!(c, scores(1, 1, 2, &[2.0]));
    assert_close(c.pod(), 0.5);
    assert_close(c.far(), 2.0 / 3.0);
    assert_close(c.csi(), 0.25);
    // Flash floods of 652300 at orange: E3 missed, W3 false. H=0 M=1 F=1.
    assert_eq!(
        v.get(Level::Orange, Some(Hazard::FlashFlood), Some(&changji)),
        scores(0, 1, 1, &[])
    );
}

#[test]
fn the_lead_window_bounds_the_credited_lead() {
    // 2.5 h: W1 reached blue at 09:00, 3 h before E1 and 4 h before E2, so at blue neither is
    // hit and W1 verifies nothing; E4 (lead 2 h) still is. H=1 M=3 F=4 (W1, W2, W3, W5).
    let v = run(&VerificationConfig {
        lead_window_ms: 5 * HOUR / 2,
    });
    assert_eq!(v.get(Level::Blue, None, None), scores(1, 3, 4, &[2.0]));
    // At yellow W1 counts from 10:00: E1 (2 h) is hit, E2 (3 h) is not. H=2 M=2 F=2 (W2, W3).
    assert_eq!(
        v.get(Level::Yellow, None, None),
        scores(2, 2, 2, &[2.0, 2.0])
    );
}

#[test]
fn a_thread_cancelled_before_the_start_does_not_verify() {
    let events = parse_catalogue(CATALOGUE).expect("parses");
    let mut versions = warnings();
    // W1 cancelled at 11:00 instead of 16:00 (and its red upgrade dropped).
    versions.retain(|v| !(v.target == "B1" && v.version >= 3));
    let mut cancel = versions[1].clone();
    cancel.version = 3;
    cancel.status = Status::Cancelled;
    cancel.issued = at("11:00");
    versions.push(cancel);
    let v = verify(
        &versions,
        &events,
        prefecture_of,
        &VerificationConfig::default(),
    );
    // Blue: only E4 hit; W1, W2, W3, W5 false. H=1 M=3 F=4.
    assert_eq!(v.get(Level::Blue, None, None), scores(1, 3, 4, &[2.0]));
    assert_eq!(
        v.matches[&Level::Blue],
        vec![(
            "E4".to_owned(),
            warning_id(Hazard::DebrisFlow, "G1", at("14:00")),
            2 * HOUR
        )]
    );
}

#[test]
fn catalogue_rows_parse_with_their_fields() {
    let events = parse_catalogue(CATALOGUE).expect("parses");
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[1],
        CatalogueEvent {
            id: "E2".into(),
            hazard: Hazard::FlashFlood,
            target: None,
            area_codes: vec![AreaCode::new("650102001")],
            start: at("13:00"),
            end: at("15:00"),
            level: Some(Level::Orange),
        }
    );
    assert_eq!(events[2].level, None);
}

#[test]
fn bad_catalogue_rows_name_their_line_and_field() {
    let header = "id,hazard,target,area_codes,start,end,level\n";
    let error = |row: &str| {
        parse_catalogue(&format!("{header}{row}\n"))
            .expect_err("a bad row")
            .to_string()
    };
    assert_eq!(
        error("E1,flood,B1,650102,2024-07-01T12:00:00Z,2024-07-01T13:00:00Z,red"),
        "line 2: field hazard: unknown hazard `flood` (known: flash_flood, debris_flow, \
         landslide, lightning_fire, snowmelt_flood)"
    );
    assert_eq!(
        error("E1,flash_flood,B1,650102,2024-07-01T12:00:00Z,2024-07-01T11:00:00Z,"),
        "line 2: field end: is before start"
    );
    assert_eq!(
        error("E1,flash_flood,B1,650102,2024-07-01T12:00:00Z,2024-07-01T13:00:00Z,purple"),
        "line 2: field level: unknown level `purple` (blue, yellow, orange, red or empty)"
    );
    assert_eq!(
        error("E1,flash_flood,,,2024-07-01T12:00:00Z,2024-07-01T13:00:00Z,"),
        "line 2: field area_codes: is empty and so is target: the event is nowhere"
    );
    assert_eq!(
        error("E1,flash_flood,B1,65-01,2024-07-01T12:00:00Z,2024-07-01T13:00:00Z,"),
        "line 2: field area_codes: `65-01` is not a GB/T 2260 code of 6 or more digits"
    );
    assert!(error("E1,flash_flood,B1,650102,noon,2024-07-01T13:00:00Z,")
        .starts_with("line 2: field start: timestamp \"noon\""));
    assert!(error("E1,flash_flood,B1,650102").starts_with("line 2: "));
    let twice = "E1,flash_flood,B1,650102,0,1,\nE1,flash_flood,B1,650102,0,1,";
    assert_eq!(error(twice), "line 3: field id: event `E1` appears twice");
    assert_eq!(
        parse_catalogue("id,hazard,target,start,end,level\n").expect_err("no area_codes"),
        CatalogueError::MissingColumn {
            column: "area_codes"
        }
    );
}

#[test]
fn sweeps_parse_into_their_values() {
    assert_eq!(
        parse_sweep("factor=0.6:1.4:0.1"),
        Ok(vec![0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4])
    );
    assert_eq!(parse_sweep("factor=1:1:0.5"), Ok(vec![1.0]));
    assert_eq!(parse_sweep("factor=0.5:1.2:0.25"), Ok(vec![0.5, 0.75, 1.0]));
    let error = |spec| parse_sweep(spec).expect_err("a bad spec");
    assert!(error("ratio=0.6:1.4:0.1").starts_with("sweep name `ratio`"));
    assert!(error("0.6:1.4:0.1").contains("is not NAME=START:END:STEP"));
    assert!(error("factor=0.6:1.4").contains("found 2 parts"));
    assert!(error("factor=0.6:x:0.1").starts_with("sweep end `x`"));
    assert!(error("factor=0:1.4:0.1").starts_with("sweep start must be positive"));
    assert!(error("factor=1.4:0.6:0.1").starts_with("sweep end 0.6 is below start 1.4"));
    assert!(error("factor=0.6:1.4:0").starts_with("sweep step must be positive"));
    assert!(error("factor=0.001:10:0.001").contains("at most 101"));
}
