//! A node with known state for SQL tests (unit tests here, the `.slt` files of the root
//! package): two rain gauges of the shipped region reporting every five minutes from 10:05 to
//! 11:05 on 2024-07-01 (+08:00) through the model actors, one red flash-flood warning over two
//! counties with its acknowledgement book (everyone delivered at 11:01, one acknowledgement at
//! 11:03), and three dead letters.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tianshan_actors::station::Envelope;
use tianshan_core::dissemination::acknowledgement::{
    AcknowledgementConfig, DeliveryOutcome, ForcedAcknowledgement,
};
use tianshan_core::dissemination::recipients::Directory;
use tianshan_core::dissemination::tree::AdminTree;
use tianshan_core::ids::{AreaCode, GatewayId, StationId, WarningId};
use tianshan_core::observation::{Observation, Reading, RejectReason};
use tianshan_core::region::{AdminLevel, Region, StationKind};
use tianshan_core::time::EventTime;
use tianshan_core::warning::{Action, Hazard, Level, Status, WarningEvent};

use super::NodeSnapshot;
use crate::replay::Replay;

/// Returns 2024-07-01 `hh_mm` in Urumqi's +08:00, the fixture's day.
pub fn at(hh_mm: &str) -> EventTime {
    EventTime::parse_rfc3339(&format!("2024-07-01T{hh_mm}:00+08:00")).expect("fixture time")
}

/// Returns the shipped region (`regions/xinjiang`).
pub fn region() -> Arc<Region> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
    Arc::new(Region::load(Path::new(path)).expect("the shipped region loads"))
}

/// Returns default pipeline settings.
pub fn settings() -> crate::node_pipeline::PipelineSettings {
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
pub fn gauges(region: &Region) -> (StationId, StationId) {
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
pub fn observations(first: &StationId, second: &StationId) -> Vec<(String, Envelope)> {
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
pub fn warning(region: &Region) -> WarningEvent {
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
pub fn book(region: &Region, warning: &WarningEvent) -> (ForcedAcknowledgement, String) {
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

/// The snapshot of a node with known state, and what a test needs to read it.
#[derive(Debug, Clone)]
pub struct KnownState {
    /// The snapshot.
    pub snapshot: NodeSnapshot,
    /// The shipped region.
    pub region: Arc<Region>,
    /// The two gauges that reported ([`gauges`]).
    pub gauges: (StationId, StationId),
    /// The recipient who acknowledged ([`book`]).
    pub acknowledged_by: String,
}

/// Returns the shipped region after the fixture observations went through the model actors
/// (replay, no Kafka), taken at 11:05, with one active red warning, its book, and three
/// observations dead-lettered as too late. The same every time.
///
/// # Panics
/// When the region does not load or a model actor fails: the fixture is broken.
pub async fn known_state() -> KnownState {
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
    KnownState {
        snapshot,
        region,
        gauges: (first, second),
        acknowledged_by,
    }
}
