use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;
use crate::time::HOUR_MS;
use crate::warning::warning_id;

/// The CAP reference folder: the repository is checked out beside `shared/`.
fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/cap")
}

/// Validates `xml` against the OASIS CAP 1.2 XSD with xmllint; `Err` holds xmllint's report.
/// Panics when xmllint is missing: these tests never pass without the schema check.
fn xmllint(xml: &str) -> Result<(), String> {
    let schema = reference_dir().join("CAP-v1.2.xsd");
    let spawned = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == ErrorKind::NotFound => panic!(
            "xmllint not found: install libxml2-utils (apt-get install libxml2-utils) to validate CAP"
        ),
        Err(error) => panic!("cannot run xmllint: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(xml.as_bytes())
        .expect("xmllint reads the document");
    let output = child.wait_with_output().expect("xmllint finishes");
    let report = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => Ok(()),
        // 3 and 4: schema-invalid; 1: not well-formed (xmllint's documented exit codes).
        Some(1 | 3 | 4) => Err(report),
        _ => panic!(
            "xmllint failed to run the schema check ({}): {report}",
            output.status
        ),
    }
}

fn assert_schema_valid(xml: &str) {
    if let Err(report) = xmllint(xml) {
        panic!("CAP message fails the XSD:\n{report}\n{xml}");
    }
}

fn example(name: &str) -> String {
    std::fs::read_to_string(reference_dir().join("examples").join(name))
        .unwrap_or_else(|error| panic!("cannot read example {name}: {error}"))
}

fn at(text: &str) -> EventTime {
    EventTime::parse_rfc3339(text).unwrap()
}

fn xinjiang() -> Region {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
    Region::load(Path::new(dir)).expect("the committed xinjiang region loads")
}

/// Version 1 of a flash-flood warning for Xinyuan county (654025) and its township 新源镇.
fn flash_flood_v1() -> WarningEvent {
    let onset = at("2024-07-01T08:30:00+08:00");
    WarningEvent {
        id: warning_id(Hazard::FlashFlood, "B0042", onset),
        version: 1,
        hazard: Hazard::FlashFlood,
        level: Level::Orange,
        action: Action::PrepareToEvacuate,
        status: Status::Issued,
        target: "B0042".to_owned(),
        area_codes: vec![AreaCode::new("654025"), AreaCode::new("654025100")],
        onset,
        issued: onset,
        expires: onset.plus_ms(3 * HOUR_MS),
        evidence: vec![Evidence {
            quantity: "areal_rain_3h".to_owned(),
            value: 52.4,
            threshold: 50.0,
            completeness: 0.95,
            stations: vec!["R6540251".to_owned(), "R6540252".to_owned()],
        }],
        caused_by: None,
    }
}

/// The same thread raised to red 20 minutes later.
fn flash_flood_v2() -> WarningEvent {
    let issued = at("2024-07-01T08:50:00+08:00");
    WarningEvent {
        version: 2,
        level: Level::Red,
        action: Action::EvacuateImmediately,
        status: Status::Upgraded,
        issued,
        expires: issued.plus_ms(3 * HOUR_MS),
        ..flash_flood_v1()
    }
}

/// The thread cancelled at noon.
fn flash_flood_v3() -> WarningEvent {
    let issued = at("2024-07-01T12:00:00+08:00");
    WarningEvent {
        version: 3,
        action: Action::AllClear,
        status: Status::Cancelled,
        issued,
        expires: issued.plus_ms(3 * HOUR_MS),
        evidence: Vec::new(),
        ..flash_flood_v2()
    }
}

/// A debris-flow warning raised by the flash-flood warning of its basin.
fn debris_flow() -> WarningEvent {
    let onset = at("2024-07-01T09:00:00+08:00");
    WarningEvent {
        id: warning_id(Hazard::DebrisFlow, "G0007", onset),
        version: 1,
        hazard: Hazard::DebrisFlow,
        level: Level::Red,
        action: Action::EvacuateImmediately,
        status: Status::Issued,
        target: "G0007".to_owned(),
        area_codes: vec![AreaCode::new("654025101")],
        onset,
        issued: onset,
        expires: onset.plus_ms(3 * HOUR_MS),
        evidence: vec![Evidence {
            quantity: "debris_caine_60min".to_owned(),
            value: 21.5,
            threshold: 14.82,
            completeness: 1.0,
            stations: vec!["R6540253".to_owned()],
        }],
        caused_by: Some(flash_flood_v1().id),
    }
}

fn outline(region: &Region, event: &WarningEvent) -> AreaOutline {
    AreaOutline::from_region(region, &event.area_codes).unwrap()
}

/// Renders the three versions of the flash-flood thread, each referencing all earlier ones.
fn flash_flood_thread(settings: &CapSettings, region: &Region) -> Vec<(CapAlert, String)> {
    let mut earlier = Vec::new();
    let mut rendered = Vec::new();
    for event in [flash_flood_v1(), flash_flood_v2(), flash_flood_v3()] {
        let area = outline(region, &event);
        let xml = render(settings, &event, &earlier, &area).unwrap();
        let alert = CapAlert::from_warning(settings, &event, &earlier, &area);
        earlier.push(alert.reference());
        rendered.push((alert, xml));
    }
    rendered
}

fn parameter<'a>(info: &'a CapInfo, name: &str) -> Option<&'a str> {
    info.parameters
        .iter()
        .find(|parameter| parameter.name == name)
        .map(|parameter| parameter.value.as_str())
}

#[test]
fn flash_flood_alert_maps_the_warning_and_validates() {
    let settings = CapSettings::for_test();
    let region = xinjiang();
    let thread = flash_flood_thread(&settings, &region);
    let (alert, xml) = &thread[0];
    assert_schema_valid(xml);

    assert_eq!(alert.identifier, "FF-B0042-20240701T0030Z-v1");
    assert_eq!(alert.sender, "tianshan@ews.example.invalid");
    assert_eq!(alert.msg_type, MsgType::Alert);
    assert_eq!(alert.status, CapStatus::Test);
    assert!(alert.references.is_empty());
    assert!(xml.contains("<sent>2024-07-01T08:30:00+08:00</sent>"));
    assert!(xml.contains("<expires>2024-07-01T11:30:00+08:00</expires>"));
    assert!(!xml.contains("<references>"));

    let [info] = &alert.infos[..] else {
        panic!("one zh-CN info without english")
    };
    assert_eq!(info.language, "zh-CN");
    assert_eq!(info.categories, [Category::Met]);
    assert_eq!(info.event, "山洪");
    assert_eq!(info.response_types, [ResponseType::Prepare]);
    assert_eq!(
        (info.urgency, info.severity, info.certainty),
        (Urgency::Expected, Severity::Severe, Certainty::Likely)
    );
    assert_eq!(
        info.headline.as_deref(),
        Some("新源县、新源镇山洪橙色预警[Ⅱ级/严重]")
    );
    let description = info.description.as_deref().unwrap();
    assert!(
        description.contains("2024年7月1日08时30分"),
        "{description}"
    );
    assert!(description.contains("areal_rain_3h 实测 52.4，阈值 50"));
    assert_eq!(parameter(info, "warningLevel"), Some("orange"));
    assert_eq!(
        parameter(info, "evidence.areal_rain_3h.value"),
        Some("52.4")
    );
    assert_eq!(
        parameter(info, "evidence.areal_rain_3h.threshold"),
        Some("50")
    );
    assert_eq!(
        parameter(info, "evidence.areal_rain_3h.stations"),
        Some("R6540251 R6540252")
    );
    assert_eq!(
        parameter(info, "polygonSource"),
        Some("coarse-county-squares")
    );
    assert_eq!(parameter(info, "causedBy"), None);

    let [area] = &info.areas[..] else {
        panic!("one area")
    };
    assert_eq!(area.desc, "新源县、新源镇");
    let codes: Vec<&str> = area.geocodes.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(codes, ["654025", "654025100"]);
    assert!(area.geocodes.iter().all(|g| g.name == "GB/T 2260"));
    // The township lies in the county: one county square, around Xinyuan's centroid.
    let [polygon] = &area.polygons[..] else {
        panic!("one county polygon")
    };
    assert_eq!(polygon.points.len(), 5);
    assert_eq!(polygon.points.first(), polygon.points.last());
    let (lat, lon) = (43.36299, 83.56458);
    assert!(polygon
        .points
        .iter()
        .all(|p| (p.lat - lat).abs() <= 0.25 + 1e-9 && (p.lon - lon).abs() <= 0.25 + 1e-9));
}

#[test]
fn update_and_cancel_reference_every_earlier_version() {
    let settings = CapSettings::for_test();
    let thread = flash_flood_thread(&settings, &xinjiang());
    for (_, xml) in &thread {
        assert_schema_valid(xml);
    }
    let (update, update_xml) = &thread[1];
    assert_eq!(update.msg_type, MsgType::Update);
    assert!(update_xml.contains(
        "<references>tianshan@ews.example.invalid,FF-B0042-20240701T0030Z-v1,2024-07-01T08:30:00+08:00</references>"
    ));
    let info = &update.infos[0];
    assert_eq!(info.response_types, [ResponseType::Evacuate]);
    assert_eq!(
        (info.urgency, info.severity),
        (Urgency::Immediate, Severity::Extreme)
    );
    assert_eq!(
        info.headline.as_deref(),
        Some("新源县、新源镇山洪预警升级为红色预警[Ⅰ级/特别严重]")
    );

    let (cancel, cancel_xml) = &thread[2];
    assert_eq!(cancel.msg_type, MsgType::Cancel);
    assert!(cancel_xml.contains(
        "<references>tianshan@ews.example.invalid,FF-B0042-20240701T0030Z-v1,2024-07-01T08:30:00+08:00 \
         tianshan@ews.example.invalid,FF-B0042-20240701T0030Z-v2,2024-07-01T08:50:00+08:00</references>"
    ));
    let info = &cancel.infos[0];
    assert_eq!(info.response_types, [ResponseType::AllClear]);
    assert_eq!(info.urgency, Urgency::Past);
    assert_eq!(
        info.headline.as_deref(),
        Some("解除新源县、新源镇山洪红色预警")
    );
    let description = info.description.as_deref().unwrap();
    assert!(description
        .starts_with("天山灾害预警测试系统于2024年7月1日12时00分解除新源县、新源镇山洪红色预警。"));
    let english = CapAlert::from_warning(
        &CapSettings {
            english: true,
            ..settings
        },
        &flash_flood_v3(),
        &cancel.references,
        &outline(&xinjiang(), &flash_flood_v3()),
    );
    assert_eq!(
        english.infos[1]
            .description
            .as_deref()
            .unwrap()
            .lines()
            .next(),
        Some("Flash flood warning red (level I) cancelled.")
    );
}

#[test]
fn debris_flow_caused_by_flash_flood_in_two_languages() {
    let settings = CapSettings {
        english: true,
        status: CapStatus::Exercise,
        contact: Some("新源县应急管理局 0999-0000000".to_owned()),
        ..CapSettings::for_test()
    };
    let event = debris_flow();
    let area = outline(&xinjiang(), &event);
    let xml = render(&settings, &event, &[], &area).unwrap();
    assert_schema_valid(&xml);
    let alert = CapAlert::parse(&xml).unwrap();
    assert_eq!(alert.status, CapStatus::Exercise);
    let [zh, en] = &alert.infos[..] else {
        panic!("zh-CN and en-US infos")
    };
    assert_eq!(
        (zh.language.as_str(), en.language.as_str()),
        ("zh-CN", "en-US")
    );
    for info in [zh, en] {
        assert_eq!(info.categories, [Category::Geo]);
        assert_eq!(parameter(info, "causedBy"), Some("FF-B0042-20240701T0030Z"));
        assert_eq!(info.level(), Some(Level::Red));
    }
    assert_eq!(zh.event, "泥石流");
    assert_eq!(en.event, "Debris flow");
    assert_eq!(
        en.sender_name.as_deref(),
        Some(settings.sender_name_en.as_str())
    );
    assert!(zh
        .description
        .as_deref()
        .unwrap()
        .contains("本预警由预警 FF-B0042-20240701T0030Z 引发（灾害链）。"));
    assert!(en
        .description
        .as_deref()
        .unwrap()
        .contains("Raised by warning FF-B0042-20240701T0030Z (hazard chain)."));
    assert_eq!(zh.areas[0].desc, "则克台镇");
}

#[test]
fn every_hazard_and_level_renders_valid_cap() {
    let settings = CapSettings {
        english: true,
        ..CapSettings::for_test()
    };
    let region = xinjiang();
    let hazards = [
        Hazard::FlashFlood,
        Hazard::DebrisFlow,
        Hazard::Landslide,
        Hazard::LightningFire,
        Hazard::SnowmeltFlood,
    ];
    for hazard in hazards {
        for level in Level::ALL {
            let event = WarningEvent {
                hazard,
                level,
                action: Action::Monitor,
                ..flash_flood_v1()
            };
            let xml = render(&settings, &event, &[], &outline(&region, &event)).unwrap();
            assert_schema_valid(&xml);
            let alert = CapAlert::parse(&xml).unwrap();
            assert_eq!(alert.level(), Some(level), "{hazard:?} {level}");
        }
    }
}

#[test]
fn render_then_parse_gives_back_the_alert() {
    let settings = CapSettings {
        english: true,
        ..CapSettings::for_test()
    };
    let region = xinjiang();
    let mut alerts: Vec<CapAlert> = flash_flood_thread(&settings, &region)
        .into_iter()
        .map(|(alert, _)| alert)
        .collect();
    let event = debris_flow();
    alerts.push(CapAlert::from_warning(
        &settings,
        &event,
        &[],
        &outline(&region, &event),
    ));
    // A circle and an odd float survive the trip too.
    alerts[0].infos[0].areas[0].circles.push(CapCircle {
        centre: LatLon {
            lat: 43.43,
            lon: 83.26,
        },
        radius_km: 0.1 + 0.2,
    });
    for alert in alerts {
        assert_eq!(CapAlert::parse(&alert.to_xml()).unwrap(), alert);
    }
}

#[test]
fn text_is_escaped_and_unreadable_characters_replaced() {
    let event = WarningEvent {
        target: "B<1> & \"2\" \u{1}".to_owned(),
        ..flash_flood_v1()
    };
    let area = AreaOutline {
        names: vec!["A&B<村>".to_owned()],
        polygons: Vec::new(),
        source: PolygonSource::Outline,
    };
    let xml = render(&CapSettings::for_test(), &event, &[], &area).unwrap();
    assert_schema_valid(&xml);
    let alert = CapAlert::parse(&xml).unwrap();
    let info = &alert.infos[0];
    assert_eq!(parameter(info, "target"), Some("B<1> & \"2\" \u{FFFD}"));
    assert_eq!(info.areas[0].desc, "A&B<村>");
    assert!(info.areas[0].polygons.is_empty());
    assert_eq!(parameter(info, "polygonSource"), None);
}

#[test]
fn identifiers_keep_to_safe_characters_and_stay_distinct() {
    let plain = WarningId::new("FF-B0042-20240701T0030Z");
    assert_eq!(identifier_for(&plain, 2), "FF-B0042-20240701T0030Z-v2");
    let odd = WarningId::new("LS-坡 1,<a>&%-20240701T0030Z");
    let identifier = identifier_for(&odd, 1);
    assert_eq!(
        identifier,
        "LS-%E5%9D%A1%201%2C%3Ca%3E%26%25-20240701T0030Z-v1"
    );
    assert!(check_token("alert.identifier", &identifier).is_ok());
    // `%` itself is escaped, so an id that looks escaped cannot collide with one that is.
    let look_alike = WarningId::new("LS-%2C");
    assert_ne!(
        identifier_for(&look_alike, 1),
        identifier_for(&WarningId::new("LS-,"), 1)
    );
}

#[test]
fn mappings_follow_the_module_docs() {
    assert_eq!(category_of(Hazard::FlashFlood), Category::Met);
    assert_eq!(category_of(Hazard::SnowmeltFlood), Category::Met);
    assert_eq!(category_of(Hazard::DebrisFlow), Category::Geo);
    assert_eq!(category_of(Hazard::Landslide), Category::Geo);
    assert_eq!(category_of(Hazard::LightningFire), Category::Fire);
    let severities: Vec<Severity> = Level::ALL.into_iter().map(severity_of).collect();
    assert_eq!(
        severities,
        [
            Severity::Minor,
            Severity::Moderate,
            Severity::Severe,
            Severity::Extreme
        ]
    );
    assert_eq!(response_type_of(Action::Monitor), ResponseType::Monitor);
    assert_eq!(
        response_type_of(Action::PrepareToEvacuate),
        ResponseType::Prepare
    );
    assert_eq!(
        response_type_of(Action::EvacuateImmediately),
        ResponseType::Evacuate
    );
    assert_eq!(response_type_of(Action::AllClear), ResponseType::AllClear);
    // Severity alone reads back as the level it came from.
    for level in Level::ALL {
        let mut info = CapAlert::from_warning(
            &CapSettings::for_test(),
            &WarningEvent {
                level,
                ..flash_flood_v1()
            },
            &[],
            &AreaOutline {
                names: vec!["新源县".to_owned()],
                polygons: Vec::new(),
                source: PolygonSource::Outline,
            },
        )
        .infos
        .remove(0);
        info.parameters.clear();
        assert_eq!(info.level(), Some(level));
    }
}

#[test]
fn references_format_matches_the_national_test_vector() {
    // hazards.md §9.3, TV9.4: the references entry of an Update to the TV9.3 Alert.
    let tv94 = "ews@example.invalid,654025XXX00000_20240701083000_0,2024-07-01T08:30:00+08:00";
    let reference = CapReference {
        sender: "ews@example.invalid".to_owned(),
        identifier: "654025XXX00000_20240701083000_0".to_owned(),
        sent: at("2024-07-01T08:30:00+08:00"),
    };
    assert_eq!(reference.to_string(), tv94);
    assert_eq!(
        parse_references("alert.references", tv94),
        Ok(vec![reference])
    );
    for bad in [
        "a,b",
        "a,b,c,d",
        ",b,2024-07-01T08:30:00+08:00",
        "a,b,2024-07-01T00:30:00Z",
        " ",
    ] {
        let error = parse_references("alert.references", bad).unwrap_err();
        assert!(
            matches!(&error, CapError::BadReference { field, .. } if field == "alert.references"),
            "{bad:?}: {error}"
        );
    }
}

#[test]
fn times_follow_the_schema_pattern() {
    let field = "alert.sent";
    assert_eq!(
        parse_time(field, "2024-07-01T08:30:00+08:00"),
        Ok(at("2024-07-01T00:30:00Z"))
    );
    assert_eq!(
        parse_time(field, "2003-06-11T22:39:00-07:00"),
        Ok(at("2003-06-12T05:39:00Z"))
    );
    for bad in [
        "2024-07-01T00:30:00Z",
        "2024-07-01T08:30:00.123+08:00",
        "2024-07-01 08:30:00+08:00",
        "2024-07-01T08:30:00,08:00",
        "2024-13-01T08:30:00+08:00",
    ] {
        let error = parse_time(field, bad).unwrap_err();
        assert!(
            matches!(&error, CapError::BadValue { field: f, .. } if f == field),
            "{bad}"
        );
    }
}

#[test]
fn settings_are_validated() {
    assert_eq!(CapSettings::for_test().validate(), Ok(()));
    let with_space = CapSettings {
        sender: "tianshan ews".to_owned(),
        ..CapSettings::for_test()
    };
    assert!(matches!(
        with_space.validate(),
        Err(CapError::ForbiddenCharacter { field, .. }) if field == "sender"
    ));
    let relative_web = CapSettings {
        web: Some("warnings/feed".to_owned()),
        ..CapSettings::for_test()
    };
    assert_eq!(relative_web.validate().unwrap_err().field(), "web");
    let no_name = CapSettings {
        sender_name: " ".to_owned(),
        ..CapSettings::for_test()
    };
    assert_eq!(no_name.validate().unwrap_err().field(), "sender-name");
    let parsed: CapSettings = toml::from_str(
        "sender = \"ews@example.invalid\"\nsender-name = \"预警中心\"\n\
         sender-name-en = \"Warning centre\"\nstatus = \"Exercise\"\n",
    )
    .unwrap();
    assert_eq!(parsed.status, CapStatus::Exercise);
    assert!(toml::from_str::<CapSettings>("sender = \"a\"\nsendr-name = \"b\"\n").is_err());
}

/// Returns the first alert of the thread, built but not checked, for breaking one field.
fn unchecked_alert() -> CapAlert {
    let event = flash_flood_v1();
    let area = outline(&xinjiang(), &event);
    let alert = CapAlert::from_warning(&CapSettings::for_test(), &event, &[], &area);
    assert_eq!(alert.check(), Ok(()));
    alert
}

fn check_field(alert: &CapAlert) -> (String, CapError) {
    let error = alert.check().unwrap_err();
    (error.field().to_owned(), error)
}

#[test]
fn checks_name_the_failing_field() {
    let polygon = "alert.info[0].area[0].polygon[0]";

    let mut alert = unchecked_alert();
    alert.infos[0].areas[0].polygons[0].points.pop();
    let (field, error) = check_field(&alert);
    assert_eq!(field, polygon);
    assert!(
        matches!(error, CapError::PolygonNotClosed { .. }),
        "{error}"
    );

    let mut alert = unchecked_alert();
    alert.infos[0].areas[0].polygons[0].points.drain(1..3);
    let (field, error) = check_field(&alert);
    assert_eq!(field, polygon);
    assert!(
        matches!(error, CapError::PolygonTooShort { points: 3, .. }),
        "{error}"
    );

    for (lat, lon) in [(91.0, 83.0), (43.0, -180.5), (f64::NAN, 83.0)] {
        let mut alert = unchecked_alert();
        alert.infos[0].areas[0].polygons[0].points[2] = LatLon { lat, lon };
        let (field, error) = check_field(&alert);
        assert_eq!(field, polygon);
        assert!(
            matches!(error, CapError::CoordinateOutOfRange { .. }),
            "{error}"
        );
    }

    let mut alert = unchecked_alert();
    alert.infos[0].areas[0].circles.push(CapCircle {
        centre: LatLon {
            lat: 43.0,
            lon: 83.0,
        },
        radius_km: -1.0,
    });
    assert_eq!(check_field(&alert).0, "alert.info[0].area[0].circle[0]");

    for identifier in ["FF 1", "FF,1", "FF<1", "FF&1"] {
        let mut alert = unchecked_alert();
        alert.identifier = identifier.to_owned();
        let (field, error) = check_field(&alert);
        assert_eq!(field, "alert.identifier");
        assert!(
            matches!(error, CapError::ForbiddenCharacter { .. }),
            "{error}"
        );
    }
    let mut alert = unchecked_alert();
    alert.sender = "a,b".to_owned();
    assert_eq!(check_field(&alert).0, "alert.sender");
    let mut alert = unchecked_alert();
    alert.identifier.clear();
    assert!(matches!(check_field(&alert).1, CapError::Empty { .. }));

    let mut alert = unchecked_alert();
    alert.infos[0].expires = Some(alert.sent);
    let (field, error) = check_field(&alert);
    assert_eq!(field, "alert.info[0].expires");
    assert!(matches!(error, CapError::TimeOrder { ref other, .. } if other == "alert.sent"));
    let mut alert = unchecked_alert();
    alert.infos[0].effective = alert.infos[0].expires.map(|t| t.plus_ms(1));
    let (_, error) = check_field(&alert);
    assert!(
        matches!(error, CapError::TimeOrder { ref other, .. } if other == "alert.info[0].effective")
    );

    let mut alert = unchecked_alert();
    alert.infos[0].areas[0].desc = " ".to_owned();
    let (field, error) = check_field(&alert);
    assert_eq!(field, "alert.info[0].area[0].areaDesc");
    assert!(matches!(error, CapError::Empty { .. }));
}

#[test]
fn checks_guard_the_references() {
    let mut alert = unchecked_alert();
    alert.msg_type = MsgType::Update;
    let (field, error) = check_field(&alert);
    assert_eq!(field, "alert.references");
    assert!(matches!(error, CapError::Missing { .. }));

    let mut alert = unchecked_alert();
    alert.msg_type = MsgType::Update;
    alert.references.push(alert.reference());
    assert!(matches!(
        check_field(&alert).1,
        CapError::BadReference { .. }
    ));

    let mut alert = unchecked_alert();
    let mut later = alert.reference();
    later.identifier.push_str("-other");
    later.sent = alert.sent.plus_ms(1000);
    alert.references.push(later);
    let (field, error) = check_field(&alert);
    assert_eq!(field, "alert.references");
    assert!(matches!(error, CapError::BadReference { .. }));

    let mut alert = unchecked_alert();
    let mut spaced = alert.reference();
    spaced.identifier = "x&y".to_owned();
    alert.references.push(spaced);
    assert!(matches!(
        check_field(&alert).1,
        CapError::BadReference { .. }
    ));

    // A later version whose earlier versions never went out as CAP (a draft replaced before
    // sign-off) is the first message the public sees: an Alert, not an Update without references.
    let event = flash_flood_v2();
    let area = outline(&xinjiang(), &event);
    let first_public = CapAlert::from_warning(&CapSettings::for_test(), &event, &[], &area);
    assert_eq!(first_public.msg_type, MsgType::Alert);
    first_public
        .check()
        .expect("a first public message needs no references");
}

#[test]
fn unknown_area_codes_are_refused() {
    let error = AreaOutline::from_region(&xinjiang(), &[AreaCode::new("999999")]).unwrap_err();
    assert_eq!(
        error,
        CapError::UnknownArea {
            code: AreaCode::new("999999")
        }
    );
}

#[test]
fn valid_examples_parse() {
    // shared/reference/cap/examples: README table, "valid" rows.
    let landslide = CapAlert::parse(&example("valid-xinjiang-landslide.xml")).unwrap();
    assert_eq!(landslide.identifier, "XJ-EWS-654025-20240701T0830-LS-0001");
    assert_eq!(landslide.sender, "ews@example.invalid");
    assert_eq!(landslide.sent, at("2024-07-01T08:30:00+08:00"));
    assert_eq!(
        (landslide.status, landslide.msg_type, landslide.scope),
        (CapStatus::Exercise, MsgType::Alert, Scope::Public)
    );
    assert_eq!(landslide.level(), Some(Level::Orange));
    let [zh, en] = &landslide.infos[..] else {
        panic!("two infos")
    };
    assert_eq!(zh.event, "滑坡");
    assert_eq!(en.event, "Landslide");
    assert_eq!(zh.categories, [Category::Geo]);
    assert_eq!(zh.severity, Severity::Severe);
    assert_eq!(zh.expires, Some(at("2024-07-01T20:30:00+08:00")));
    assert_eq!(zh.headline.as_deref(), Some("新源县滑坡橙色预警（测试）"));
    let area = &zh.areas[0];
    assert_eq!(area.desc, "伊犁哈萨克自治州新源县");
    assert_eq!(area.polygons[0].points.len(), 5);
    assert_eq!(
        area.polygons[0].points[1],
        LatLon {
            lat: 43.3,
            lon: 83.4
        }
    );
    assert_eq!(area.circles[0].radius_km, 5.0);
    assert_eq!(area.geocodes, [NameValue::new("GB/T 2260", "654025")]);

    let amber = CapAlert::parse(&example("valid-oasis-spec-amber-alert.xml")).unwrap();
    assert_eq!(amber.sent, at("2003-06-12T05:39:00Z"));
    assert_eq!(amber.infos.len(), 2);
    assert_eq!(amber.infos[0].categories, [Category::Rescue]);
    assert_eq!(amber.infos[1].language, "es-US");
    // No colour parameter: the level comes from severity Severe.
    assert_eq!(amber.level(), Some(Level::Orange));

    let minimal = CapAlert::parse(&example("valid-minimal.xml")).unwrap();
    assert_eq!(minimal.status, CapStatus::Test);
    assert!(minimal.infos.is_empty());
    assert_eq!(minimal.level(), None);

    for name in [
        "valid-xinjiang-landslide.xml",
        "valid-oasis-spec-amber-alert.xml",
        "valid-minimal.xml",
    ] {
        assert_schema_valid(&example(name));
    }
}

#[test]
fn invalid_examples_are_rejected_by_the_schema_and_by_the_parser() {
    // shared/reference/cap/examples: README table, "invalid" rows; our parser rejects all seven.
    let cases = [
        ("invalid-category-enum.xml", "alert.info[0].category"),
        ("invalid-element-order.xml", "alert.status"),
        ("invalid-missing-scope.xml", "alert.scope"),
        ("invalid-sent-fractional-seconds.xml", "alert.sent"),
        ("invalid-sent-utc-z.xml", "alert.sent"),
        ("invalid-severity-enum.xml", "alert.info[0].severity"),
        ("invalid-wrong-namespace.xml", "alert"),
    ];
    for (name, field) in cases {
        let xml = example(name);
        assert!(xmllint(&xml).is_err(), "xmllint accepts {name}");
        let error = CapAlert::parse(&xml).unwrap_err();
        assert_eq!(error.field(), field, "{name}: {error}");
        let kind_ok = match name {
            "invalid-element-order.xml" => matches!(error, CapError::OutOfOrder { .. }),
            "invalid-missing-scope.xml" => matches!(error, CapError::Missing { .. }),
            "invalid-wrong-namespace.xml" => matches!(error, CapError::NotCap { .. }),
            _ => matches!(error, CapError::BadValue { .. }),
        };
        assert!(kind_ok, "{name}: {error}");
    }
}

#[test]
fn parser_catches_what_the_schema_lets_through() {
    // cap/README.md: the XSD does not check polygons, circles, identifier and sender characters,
    // expires after sent, or references. Each broken copy of the valid landslide example passes
    // xmllint and fails our parse, naming the field.
    let valid = example("valid-xinjiang-landslide.xml");
    let polygon = "43.30,83.10 43.30,83.40 43.50,83.40 43.50,83.10 43.30,83.10";
    let note = "<note>Synthetic test fixture: not a real warning.</note>";
    let update_with = |references: &str| {
        valid
            .replace("<msgType>Alert</msgType>", "<msgType>Update</msgType>")
            .replace(
                note,
                &format!("{note}\n  <references>{references}</references>"),
            )
    };
    let cases = [
        (
            valid.replace(polygon, "43.30,83.10 43.30,83.40 43.50,83.40 43.50,83.10"),
            "alert.info[0].area[0].polygon[0]",
        ),
        (
            valid.replace(polygon, "43.30,83.10 43.30,83.40 43.30,83.10"),
            "alert.info[0].area[0].polygon[0]",
        ),
        (
            valid.replace(polygon, "43.30,83.10 93.30,83.40 43.50,83.40 43.30,83.10"),
            "alert.info[0].area[0].polygon[0]",
        ),
        (
            valid.replace(polygon, "43.30;83.10 43.30,83.40 43.50,83.40 43.30;83.10"),
            "alert.info[0].area[0].polygon[0]",
        ),
        (
            valid.replace(
                "<circle>43.43,83.26 5.0</circle>",
                "<circle>43.43,83.26</circle>",
            ),
            "alert.info[0].area[0].circle[0]",
        ),
        (
            valid.replace("XJ-EWS-654025-20240701T0830-LS-0001", "XJ EWS 654025"),
            "alert.identifier",
        ),
        (
            valid.replace("ews@example.invalid", "ews,example"),
            "alert.sender",
        ),
        (
            valid.replace(
                "<expires>2024-07-01T20:30:00+08:00</expires>",
                "<expires>2024-07-01T08:00:00+08:00</expires>",
            ),
            "alert.info[0].expires",
        ),
        (
            valid.replace(
                "<areaDesc>伊犁哈萨克自治州新源县</areaDesc>",
                "<areaDesc> </areaDesc>",
            ),
            "alert.info[0].area[0].areaDesc",
        ),
        (update_with("ews@example.invalid XJ-1"), "alert.references"),
        (
            update_with("ews@example.invalid,XJ-1,2024-07-01T09:30:00+08:00"),
            "alert.references",
        ),
        (
            valid.replace("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>"),
            "alert.references",
        ),
    ];
    for (xml, field) in cases {
        assert_ne!(xml, valid, "the replacement for {field} changed nothing");
        assert_schema_valid(&xml);
        let error = CapAlert::parse(&xml).unwrap_err();
        assert_eq!(error.field(), field, "{error}");
    }
    // A well-formed Update referencing an earlier message passes.
    let update = update_with("ews@example.invalid,XJ-1,2024-07-01T08:00:00+08:00");
    assert_schema_valid(&update);
    assert_eq!(CapAlert::parse(&update).unwrap().references.len(), 1);
}

#[test]
fn parser_errors_are_precise() {
    let minimal = example("valid-minimal.xml");
    let cases = [
        (
            minimal.replace("<sender>ews@example.invalid</sender>", ""),
            "alert.sender",
        ),
        (
            minimal.replace(
                "<scope>Public</scope>",
                "<scope>Public</scope><scope>Public</scope>",
            ),
            "alert.scope",
        ),
        (
            minimal.replace(
                "<scope>Public</scope>",
                "<scope>Public</scope><colour>red</colour>",
            ),
            "alert.colour",
        ),
        (
            minimal.replace(
                "<scope>Public</scope>",
                "<scope>Public</scope><info><event>x</event></info>",
            ),
            "alert.info[0].category",
        ),
        (minimal.replace("</alert>", ""), "document"),
    ];
    for (xml, field) in cases {
        let error = CapAlert::parse(&xml).unwrap_err();
        assert_eq!(error.field(), field, "{error}");
    }
    // A signature may close the alert (the schema's xmldsig `any`).
    let signed = minimal.replace(
        "</alert>",
        "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"/></alert>",
    );
    assert!(CapAlert::parse(&signed).is_ok());
}
