//! A sharded node that keeps some basin-updates partitions through a rebalance resets only the
//! basins of those that moved: the warning manager forgets their flash-flood threads and goes on
//! with the others, so a kept basin's warning carries on as the same thread while a reset
//! basin's next assessment starts a new one.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use ractor::Actor;
use tianshan_actors::ask::ask;
use tianshan_actors::warning_log::{WarningLog, WarningLogMsg};
use tianshan_actors::warning_manager::{WarningManager, WarningManagerArgs, WarningManagerMsg};
use tianshan_core::flash_flood::Assessment;
use tianshan_core::ids::BasinId;
use tianshan_core::lifecycle::LifecyclePolicy;
use tianshan_core::region::{Region, SoilState};
use tianshan_core::time::{EventTime, MINUTE_MS};
use tianshan_core::warning::{Level, Status, WarningEvent};

fn region() -> Arc<Region> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../regions/xinjiang");
    Arc::new(Region::load(Path::new(dir)).expect("the committed region loads"))
}

/// `basin` assessed orange at `tick`.
fn orange(basin: &BasinId, tick: EventTime) -> Assessment {
    Assessment {
        basin: basin.clone(),
        tick,
        raw_level: Some(Level::Orange),
        held_level: Some(Level::Orange),
        soil_state: SoilState::Normal,
        antecedent_mm: 0.0,
        evidence: Vec::new(),
    }
}

/// (target, version, status) of each version in `versions`.
fn summary(versions: &[WarningEvent]) -> Vec<(String, u32, Status)> {
    versions
        .iter()
        .map(|event| (event.target.clone(), event.version, event.status))
        .collect()
}

#[tokio::test]
async fn resetting_some_basins_forgets_only_their_warning_threads() {
    let region = region();
    let mut basins = region.basins.keys();
    let (moved, kept) = (
        basins.next().expect("a basin").clone(),
        basins.next().expect("a second basin").clone(),
    );
    let (versions, _) = Actor::spawn(None, WarningLog, ()).await.expect("recorder");
    let (manager, _) = Actor::spawn(
        None,
        WarningManager,
        WarningManagerArgs {
            region,
            policy: LifecyclePolicy::default(),
            warnings: versions.get_derived(),
            chains: None,
        },
    )
    .await
    .expect("manager");
    let take = || ask(&versions, WarningLogMsg::Take, "versions");
    let active = || ask(&manager, WarningManagerMsg::Active, "active");

    let start = EventTime(1_719_820_800_000);
    for basin in [&moved, &kept] {
        manager
            .cast(WarningManagerMsg::Assess(orange(basin, start)))
            .expect("manager runs");
    }
    assert_eq!(active().await.expect("active").len(), 2);
    let issued = take().await.expect("versions");
    assert_eq!(
        summary(&issued),
        [
            (moved.to_string(), 1, Status::Issued),
            (kept.to_string(), 1, Status::Issued)
        ]
    );

    ask(
        &manager,
        |port| WarningManagerMsg::ResetSome(BTreeSet::from([moved.clone()]), port),
        "reset some",
    )
    .await
    .expect("reset");
    let still = active().await.expect("active");
    assert_eq!(
        still.iter().map(|w| w.target.clone()).collect::<Vec<_>>(),
        [kept.to_string()]
    );

    // The same level an hour on: the kept thread has nothing new to say, the reset basin's
    // thread starts again with a new id.
    let later = start.plus_ms(60 * MINUTE_MS);
    for basin in [&moved, &kept] {
        manager
            .cast(WarningManagerMsg::Assess(orange(basin, later)))
            .expect("manager runs");
    }
    ask(&manager, WarningManagerMsg::Flush, "flush")
        .await
        .expect("flushed");
    let after = take().await.expect("versions");
    assert_eq!(summary(&after), [(moved.to_string(), 1, Status::Issued)]);
    assert_ne!(after[0].id, issued[0].id, "a new thread");
    let ids: BTreeSet<String> = active()
        .await
        .expect("active")
        .iter()
        .map(|w| w.id.to_string())
        .collect();
    assert!(
        ids.contains(issued[1].id.as_str()),
        "the kept thread goes on"
    );
}
