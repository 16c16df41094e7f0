//! Three sharded nodes against the embedded broker: the storm gives exactly the warnings of one
//! node (the golden file: same ids, versions, levels, nothing twice), every observation is
//! decided once across the cluster, and the partitions are shared out.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tianshan_pipelines::node_pipeline::{sharded_cluster_settled, NodePipeline};

use crate::golden_warnings::{golden_text, read_golden, GOLDEN};
use crate::storm_on_embedded_broker::{
    dead_letter_reasons, expected_rejections, produce, storm_fixture, warning_lines, StormFixture,
};

/// Waits until every node owns observation and basin-updates partitions, and every partition
/// has an owner: the group has settled on three members.
pub(crate) async fn wait_until_shared(nodes: &[NodePipeline]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let owned: Vec<_> = nodes.iter().filter_map(NodePipeline::ownership).collect();
        let observation: usize = owned.iter().map(|o| o.observation_partitions.len()).sum();
        let basin: usize = owned.iter().map(|o| o.basin_partitions.len()).sum();
        if owned
            .iter()
            .all(|o| !o.observation_partitions.is_empty() && !o.basin_partitions.is_empty())
            && observation == 24
            && basin == 12
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not share the partitions: {owned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the cluster has decided every one of `expected` observations and every node's
/// basins and chains have been fed the last tick any node finished.
async fn wait_until_settled(nodes: &[NodePipeline], expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut next_report = Instant::now();
    loop {
        if Instant::now() >= next_report {
            for (i, n) in nodes.iter().enumerate() {
                eprintln!(
                    "node {i}: ticks done {} fed {} caught up {} {:?}",
                    n.metrics.watermark_ms(),
                    n.metrics.basin_watermark_ms(),
                    n.metrics.is_caught_up(),
                    n.metrics.accounting()
                );
            }
            next_report += Duration::from_secs(10);
        }
        let accounts: Vec<_> = nodes.iter().map(|n| n.metrics.accounting()).collect();
        let received: u64 = accounts.iter().map(|a| a.received).sum();
        if received >= expected && sharded_cluster_settled(nodes) {
            assert_eq!(received, expected, "no observation is read twice as live");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster did not settle: received {received}/{expected}, {accounts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sharded_nodes_give_the_warnings_of_one() {
    let StormFixture {
        broker,
        mut settings,
        region,
        scenario,
        records,
    } = storm_fixture();
    settings.kafka.sharded = true;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            NodePipeline::start(&settings, region.clone())
                .await
                .expect("node starts"),
        );
    }
    wait_until_shared(&nodes).await;
    produce(broker.bootstrap_servers(), &records).await;
    wait_until_settled(&nodes, records.len() as u64).await;
    for node in &nodes {
        node.flush().await.expect("flush");
    }
    let ownership: Vec<_> = nodes
        .iter()
        .map(|n| n.ownership().expect("sharded nodes report ownership"))
        .collect();
    let accounts: Vec<_> = nodes.iter().map(|n| n.metrics.accounting()).collect();
    for node in nodes {
        node.stop().await.expect("node stops");
    }

    // Each partition has exactly one owner, and the work is shared.
    let mut observation = BTreeSet::new();
    let mut basin = BTreeSet::new();
    for owned in &ownership {
        assert!(
            !owned.observation_partitions.is_empty() && !owned.basin_partitions.is_empty(),
            "every node owns some of the work: {ownership:?}"
        );
        for p in &owned.observation_partitions {
            assert!(observation.insert(p.clone()), "{p:?} has two owners");
        }
        for p in &owned.basin_partitions {
            assert!(basin.insert(*p), "basin partition {p} has two owners");
        }
    }
    assert_eq!(basin.len(), 12, "{ownership:?}");

    // in = applied + rejected across the cluster, rejections exactly the designed anomalies.
    let sum = |f: fn(&tianshan_pipelines::telemetry::Accounting) -> u64| -> u64 {
        accounts.iter().map(f).sum()
    };
    assert_eq!(
        sum(|a| a.received),
        sum(|a| a.applied) + sum(|a| a.rejected)
    );
    let expected = expected_rejections(&scenario);
    assert_eq!(dead_letter_reasons(broker.bootstrap_servers()), expected);

    let text = golden_text(warning_lines(broker.bootstrap_servers()));
    assert_eq!(
        text,
        read_golden(),
        "three nodes differ from one node ({GOLDEN})"
    );
}
