//! The storm through the real pipeline with duty officers signing every draft of their own
//! department: the signed versions reach the public CAP feed, and every CAP message the node
//! published validates against the OASIS CAP 1.2 schema (xmllint) and parses back with the
//! warning's level.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tianshan_actors::ask::ask;
use tianshan_actors::sign_off_desk::SignOffDeskMsg;
use tianshan_core::cap::CapAlert;
use tianshan_core::ids::OfficerId;
use tianshan_core::signoff::{DraftScope, DutyOfficer};
use tianshan_pipelines::node_pipeline::NodePipeline;

use crate::storm_on_embedded_broker::{produce, storm_fixture, wait_until_decided, StormFixture};

/// Approves every pending draft as a duty officer of its department; returns how many.
async fn sign_every_draft(pipeline: &NodePipeline) -> usize {
    let desk = &pipeline.dissemination.desk;
    let drafts = ask(
        desk,
        |port| SignOffDeskMsg::ListDrafts(DraftScope::AllDepartments, port),
        "list drafts",
    )
    .await
    .expect("the desk answers");
    for draft in &drafts {
        let officer = DutyOfficer {
            id: OfficerId::new(format!("duty-{}", draft.department.name())),
            department: draft.department,
        };
        let approved = ask(
            desk,
            |reply| SignOffDeskMsg::Approve {
                warning: draft.event.id.clone(),
                version: draft.event.version,
                officer,
                edit: None,
                reply,
            },
            "approve",
        )
        .await
        .expect("the desk answers");
        approved.expect("an officer of the draft's department may sign it");
    }
    drafts.len()
}

/// Validates `xml` against the CAP 1.2 XSD of ../shared/reference/cap with xmllint.
fn validate_with_xmllint(xml: &str, dir: &Path, name: &str) -> Result<(), String> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/cap/CAP-v1.2.xsd");
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, xml).expect("temp file");
    let output = match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("xmllint not found: install libxml2-utils (apt-get install libxml2-utils)")
        }
        Err(e) => panic!("cannot run xmllint: {e}"),
    };
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_storm_warnings_reach_the_cap_feed_as_valid_cap() {
    let StormFixture {
        broker: _broker,
        settings,
        region,
        records,
        ..
    } = storm_fixture();
    produce(&settings.kafka.bootstrap_servers, &records).await;
    let pipeline = NodePipeline::start(&settings, region.clone())
        .await
        .expect("pipeline starts");
    wait_until_decided(&pipeline, records.len() as u64).await;
    pipeline.flush().await.expect("flush");

    // Sign until no draft is left; the feed then fills with the signed versions.
    let mut signed = 0;
    let mut quiet_rounds = 0;
    while quiet_rounds < 3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sign_every_draft(&pipeline).await;
        signed += now;
        quiet_rounds = if now == 0 { quiet_rounds + 1 } else { 0 };
    }
    let feed = &pipeline.dissemination.cap_feed;
    let mut identifiers = feed.identifiers();
    for _ in 0..50 {
        if !identifiers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        identifiers = feed.identifiers();
    }
    let messages: Vec<(String, String)> = identifiers
        .iter()
        .filter_map(|id| feed.message(id).map(|xml| (id.clone(), xml)))
        .collect();
    pipeline.stop().await.expect("pipeline stops");

    assert!(signed > 0, "the storm's drafts were signed");
    assert!(!messages.is_empty(), "signed warnings reach the CAP feed");
    let dir = std::env::temp_dir().join(format!("tianshan-it-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut hazards = BTreeSet::new();
    for (identifier, xml) in &messages {
        validate_with_xmllint(xml, &dir, identifier)
            .unwrap_or_else(|report| panic!("{identifier} fails the CAP 1.2 schema: {report}"));
        let alert = CapAlert::parse(xml)
            .unwrap_or_else(|e| panic!("{identifier} does not parse back: {e}"));
        assert!(alert.level().is_some(), "{identifier} carries its level");
        hazards.insert(identifier.split('-').next().unwrap_or_default().to_owned());
    }
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert!(
        hazards.contains("FF") && hazards.contains("DF"),
        "flash-flood and debris-flow warnings are both in the feed: {hazards:?}"
    );
}
