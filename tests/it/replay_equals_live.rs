//! The storm scenario through `Replay` (the actors without Kafka, one ordered stream) gives
//! exactly the warning versions the Kafka path gives (the golden file of the broker test), and
//! rejects the same observations. The records are decoded by `record_envelopes`, as
//! `tianshan backtest --storm` decodes them.

use std::path::Path;
use std::sync::Arc;

use tianshan_core::observation::RejectReason;
use tianshan_core::region::Region;
use tianshan_core::scenario::{storm_scenario, Anomaly, StormConfig};
use tianshan_pipelines::config::TopicsConfig;
use tianshan_pipelines::gateway::scenario_records;
use tianshan_pipelines::node_pipeline::PipelineSettings;
use tianshan_pipelines::replay::{record_envelopes, Replay};
use tianshan_proto::v1;

use crate::golden_warnings::{golden_line, golden_text, read_golden};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_storm_gives_the_warnings_of_the_kafka_path() {
    let region = Arc::new(
        Region::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/regions/xinjiang"
        )))
        .expect("region loads"),
    );
    let scenario = storm_scenario(&region, &StormConfig::default());
    let records = scenario_records(&scenario, &TopicsConfig::default());
    let settings = PipelineSettings {
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
    };
    let mut replay = Replay::start(&settings, region.clone())
        .await
        .expect("replay starts");
    let (observations, malformed) = record_envelopes(&records);
    // Streams end as the file goes, so the replay never waits for the end of the file.
    replay.push_file(observations).await.expect("pushed");
    let (report, _) = replay.finish(None).await.expect("replay finishes");

    assert_eq!(malformed, scenario.count(Anomaly::Malformed));
    let rejected = |reason| report.rejected.get(&reason).copied().unwrap_or(0) as usize;
    assert_eq!(
        rejected(RejectReason::TooLate),
        scenario.count(Anomaly::Late)
    );
    assert_eq!(
        rejected(RejectReason::Duplicate),
        scenario.count(Anomaly::Duplicate)
    );
    let lines = report
        .warnings
        .iter()
        .map(|event| golden_line(&v1::Warning::from(event)))
        .collect();
    assert_eq!(golden_text(lines), read_golden());
}
