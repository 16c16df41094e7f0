//! The rules of the module docs on the Xinjiang landslide example of
//! `shared/reference/cap/examples/valid-xinjiang-landslide.xml` and variants of it.

use super::*;

const EXAMPLE: &str =
    include_str!("../../../../shared/reference/cap/examples/valid-xinjiang-landslide.xml");
const SENDER: &str = "ews@example.invalid";
const FIRST: &str = "XJ-EWS-654025-20240701T0830-LS-0001";
const FIRST_SENT: &str = "2024-07-01T08:30:00+08:00";

fn rules() -> AgencyRules {
    AgencyRules {
        departments: BTreeMap::from([(AgencyId::new(SENDER), Department::NaturalResources)]),
        statuses: BTreeSet::from([CapStatus::Actual, CapStatus::Exercise]),
        areas: BTreeSet::from([AreaCode::new("654025"), AreaCode::new("650000")]),
    }
}

/// The example as a later message of its thread: `identifier`, `sent` at `hh:mm`, `msg_type`,
/// referencing `references` (identifiers of the same sender, sent at the given times).
fn follow_up(identifier: &str, hh_mm: &str, msg_type: &str, references: &[(&str, &str)]) -> String {
    let listed: Vec<String> = references
        .iter()
        .map(|(id, at)| format!("{SENDER},{id},2024-07-01T{at}:00+08:00"))
        .collect();
    EXAMPLE
        .replace(FIRST, identifier)
        .replace(
            &format!("<sent>{FIRST_SENT}</sent>"),
            &format!("<sent>2024-07-01T{hh_mm}:00+08:00</sent>"),
        )
        .replace(
            "<msgType>Alert</msgType>",
            &format!("<msgType>{msg_type}</msgType>"),
        )
        .replace(
            "</note>",
            &format!("</note>\n  <references>{}</references>", listed.join(" ")),
        )
}

fn parse(xml: &str) -> CapAlert {
    CapAlert::parse(xml).expect("a valid CAP alert")
}

fn taken(threads: &mut AgencyThreads, xml: &str) -> WarningEvent {
    match threads.prepare(&parse(xml), &rules()) {
        Ok(Intake::New(version)) => {
            threads.record(&version);
            version.submission.event
        }
        other => panic!("expected a new version, got {other:?}"),
    }
}

fn refused(threads: &AgencyThreads, xml: &str) -> AgencyAlertError {
    threads
        .prepare(&parse(xml), &rules())
        .expect_err("the alert is refused")
}

#[test]
fn the_example_becomes_an_orange_landslide_draft_of_natural_resources() {
    let threads = AgencyThreads::new();
    let Ok(Intake::New(version)) = threads.prepare(&parse(EXAMPLE), &rules()) else {
        panic!("the example is taken");
    };
    let Submission {
        event,
        origin,
        message,
    } = version.submission;
    assert_eq!(event.id, agency_warning_id(SENDER, FIRST));
    assert_eq!(
        (event.version, event.hazard, event.level, event.status),
        (1, Hazard::Landslide, Level::Orange, Status::Issued)
    );
    assert_eq!(event.action, Action::PrepareToEvacuate);
    assert_eq!(event.area_codes, [AreaCode::new("654025")]);
    assert_eq!(event.issued, EventTime::parse_rfc3339(FIRST_SENT).unwrap());
    assert_eq!(
        event.onset,
        EventTime::parse_rfc3339("2024-07-01T09:00:00+08:00").unwrap()
    );
    assert_eq!(
        event.expires,
        EventTime::parse_rfc3339("2024-07-01T20:30:00+08:00").unwrap()
    );
    assert_eq!(
        origin,
        DraftOrigin::Agency {
            sender: AgencyId::new(SENDER),
            department: Department::NaturalResources
        }
    );
    let message = message.expect("the agency's text");
    assert!(
        message.starts_with("新源县滑坡橙色预警（测试）\n"),
        "{message}"
    );
}

#[test]
fn updates_and_cancellations_continue_the_thread_and_re_reads_are_duplicates() {
    let mut threads = AgencyThreads::new();
    let first = taken(&mut threads, EXAMPLE);
    let raised = follow_up("LS-0002", "09:30", "Update", &[(FIRST, "08:30")])
        .replace("<value>orange</value>", "<value>red</value>");
    let second = taken(&mut threads, &raised);
    assert_eq!(
        (&second.id, second.version, second.status, second.level),
        (&first.id, 2, Status::Upgraded, Level::Red)
    );
    assert_eq!(second.onset, first.onset, "the thread keeps its onset");
    assert_eq!(
        threads.prepare(&parse(EXAMPLE), &rules()),
        Ok(Intake::Duplicate {
            warning: first.id.clone(),
            version: 1
        })
    );
    // An update built on version 1 after version 2 was taken is stale.
    let late = follow_up("LS-0003", "10:00", "Update", &[(FIRST, "08:30")]);
    assert_eq!(refused(&threads, &late).code(), "stale_version");
    let cancel = follow_up(
        "LS-0004",
        "10:30",
        "Cancel",
        &[(FIRST, "08:30"), ("LS-0002", "09:30")],
    );
    let cancelled = taken(&mut threads, &cancel);
    assert_eq!(
        (
            cancelled.version,
            cancelled.status,
            cancelled.level,
            cancelled.action
        ),
        (3, Status::Cancelled, Level::Red, Action::AllClear)
    );
    let after = follow_up("LS-0005", "11:00", "Update", &[("LS-0004", "10:30")]);
    assert_eq!(refused(&threads, &after).code(), "stale_version");
}

#[test]
fn each_refusal_has_its_reason() {
    let threads = AgencyThreads::new();
    let cases = [
        (
            EXAMPLE.replace(SENDER, "someone@else.invalid"),
            "unknown_agency",
        ),
        (
            EXAMPLE.replace("<status>Exercise</status>", "<status>Test</status>"),
            "status_not_taken",
        ),
        (
            EXAMPLE.replace("<value>654025</value>", "<value>110101</value>"),
            "unknown_area",
        ),
        (
            EXAMPLE
                .replace("<category>Geo</category>", "<category>Fire</category>")
                .replace("<value>landslide</value>", "<value>wildfire</value>")
                .replace("<event>滑坡</event>", "<event>森林火险</event>")
                .replace("<event>Landslide</event>", "<event>Forest fire</event>"),
            "unmappable_hazard",
        ),
        (
            follow_up("LS-0009", "09:30", "Update", &[("LS-0000", "08:00")]),
            "unknown_reference",
        ),
        (
            EXAMPLE.replace("<msgType>Alert</msgType>", "<msgType>Ack</msgType>"),
            "not_a_warning",
        ),
    ];
    for (xml, code) in cases {
        let error = refused(&threads, &xml);
        assert_eq!(error.code(), code, "{error}");
    }
    let unknown = refused(
        &threads,
        &EXAMPLE.replace("<value>654025</value>", "<value>110101</value>"),
    );
    assert!(unknown.to_string().contains("110101"), "{unknown}");
}

#[test]
fn lightning_fires_map_only_when_the_event_says_lightning() {
    let fire = |event: &str| {
        let xml = EXAMPLE
            .replace("<category>Geo</category>", "<category>Fire</category>")
            .replace("<value>landslide</value>", "<value>fire</value>")
            .replace("<event>滑坡</event>", &format!("<event>{event}</event>"))
            .replace("<event>Landslide</event>", "<event>Fire</event>");
        hazard_of(&parse(&xml).infos[0])
    };
    assert_eq!(fire("雷击火"), Some(Hazard::LightningFire));
    assert_eq!(fire("森林火灾"), None);
    // A landslide keyword under the wrong category maps to nothing.
    assert_eq!(fire("滑坡"), None);
}
