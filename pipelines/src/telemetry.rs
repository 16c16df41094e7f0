//! Counters and histograms of the pipeline, rendered in the Prometheus text format.
//!
//! Every observation that comes in is accounted for: `applied`, `rejected` (with its reason, on
//! the dead-letter topic), `rebuilt` (re-read after a restart to rebuild windows, not counted
//! twice) or still in flight. Labels stay bounded: topic, outcome, reason, level, status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use tianshan_core::dissemination::coverage::CoverageReport;
use tianshan_core::observation::RejectReason;
use tianshan_core::warning::{Level, Status, WarningEvent};

/// Upper bounds (seconds) of the batch processing latency histogram.
const LATENCY_BUCKETS_S: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Pipeline metrics shared by the source, the sinks and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    received: AtomicU64,
    applied: AtomicU64,
    rebuilt: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    in_flight: AtomicI64,
    forwarded: AtomicU64,
    settled: AtomicU64,
    dead_letters_written: AtomicU64,
    warnings: Mutex<BTreeMap<(Level, Status), u64>>,
    warnings_deduplicated: AtomicU64,
    warnings_held: AtomicU64,
    stations: AtomicU64,
    basins: AtomicU64,
    watermark_ms: AtomicI64,
    basin_watermark_ms: AtomicI64,
    consumer_lag: Mutex<BTreeMap<(String, i32), i64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// Per rebuilding source ("observations", "basin updates"), whether its assignment is
    /// rebuilt.
    sources_rebuilt: Mutex<BTreeMap<&'static str, bool>>,
    buffered: AtomicU64,
    caught_up: std::sync::atomic::AtomicBool,
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    coverage: Mutex<Option<CoverageReport>>,
    /// Sharded: whether the ownership lease holds; `None` unsharded.
    ownership_lease_held: Mutex<Option<bool>>,
}

/// Totals of the accounting identity `received = applied + rejected + in_flight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accounting {
    /// Live observations read from Kafka (excluding rebuild re-reads).
    pub received: u64,
    /// Applied to station state.
    pub applied: u64,
    /// Rejected to the dead-letter topic.
    pub rejected: u64,
    /// Read but not yet decided.
    pub in_flight: i64,
    /// Re-read to rebuild state after an assignment (already counted by an earlier run).
    pub rebuilt: u64,
    /// Sent on to the node owning their chain (sharded), which decides them.
    pub forwarded: u64,
    /// Forwarded by some node and decided here (counted in `applied` or `rejected` too).
    pub settled: u64,
}

impl Metrics {
    /// Records the number of stations and basins this node runs.
    pub fn set_topology(&self, stations: usize, basins: usize) {
        self.stations.store(stations as u64, Ordering::Relaxed);
        self.basins.store(basins as u64, Ordering::Relaxed);
    }

    /// Records live observations read and not yet decided.
    pub fn observations_received(&self, count: usize) {
        self.received.fetch_add(count as u64, Ordering::Relaxed);
        self.in_flight.fetch_add(count as i64, Ordering::Relaxed);
    }

    /// Records one live observation applied.
    pub fn observation_applied(&self) {
        self.observations_applied(1);
    }

    /// Records `count` live observations applied.
    pub fn observations_applied(&self, count: usize) {
        self.applied.fetch_add(count as u64, Ordering::Relaxed);
        self.in_flight.fetch_sub(count as i64, Ordering::Relaxed);
    }

    /// Records one live observation rejected for `reason`.
    pub fn observation_rejected(&self, reason: RejectReason) {
        let index = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[index].fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records the last tick the basins and chains of a sharded node were fed.
    pub fn set_basin_watermark_ms(&self, tick_ms: i64) {
        self.basin_watermark_ms.store(tick_ms, Ordering::Relaxed);
    }

    /// The last tick the basins and chains of a sharded node were fed (0 before the first).
    pub fn basin_watermark_ms(&self) -> i64 {
        self.basin_watermark_ms.load(Ordering::Relaxed)
    }

    /// Records `count` live observations sent on to their chains' owners.
    pub fn observations_forwarded(&self, count: usize) {
        self.forwarded.fetch_add(count as u64, Ordering::Relaxed);
        self.in_flight.fetch_sub(count as i64, Ordering::Relaxed);
    }

    /// Records an observation another node forwarded, decided here: applied, or rejected for
    /// `reason`.
    pub fn forwarded_decided(&self, rejected: Option<RejectReason>) {
        self.settled.fetch_add(1, Ordering::Relaxed);
        // It was never in flight here: count the decision without touching in-flight.
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        match rejected {
            Some(reason) => self.observation_rejected(reason),
            None => self.observation_applied(),
        }
    }

    /// Records `count` observations re-read to rebuild state.
    pub fn observations_rebuilt(&self, count: usize) {
        self.rebuilt.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Records a dead-letter record acknowledged by the broker.
    pub fn dead_letter_written(&self) {
        self.dead_letters_written.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a warning version published.
    pub fn warning_published(&self, event: &WarningEvent) {
        let mut warnings = self
            .warnings
            .lock()
            .expect("metrics lock is never poisoned: no panics under it");
        *warnings.entry((event.level, event.status)).or_default() += 1;
    }

    /// Records a warning version not re-published because the topic already had it.
    pub fn warning_deduplicated(&self) {
        self.warnings_deduplicated.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the event-time watermark.
    pub fn set_watermark_ms(&self, watermark_ms: i64) {
        self.watermark_ms.store(watermark_ms, Ordering::Relaxed);
    }

    /// Returns the event time of the last tick released (0 before the first).
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms.load(Ordering::Relaxed)
    }

    /// Records how many observations wait in the event-time merge.
    pub fn set_buffered(&self, buffered: usize) {
        self.buffered.store(buffered as u64, Ordering::Relaxed);
    }

    /// Records whether the source has applied and ticked everything it has read, with every
    /// partition idle.
    pub fn set_caught_up(&self, caught_up: bool) {
        self.caught_up.store(caught_up, Ordering::Relaxed);
    }

    /// Returns whether the source has applied and ticked everything it has read.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Relaxed)
    }

    /// Returns whether a single node has decided every live observation it read, at least
    /// `expected` of them: none in flight, and its source caught up with its log.
    pub fn has_decided(&self, expected: u64) -> bool {
        let accounting = self.accounting();
        accounting.received >= expected && accounting.in_flight == 0 && self.is_caught_up()
    }

    /// Records the consumer lag of one partition.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut lags = self
            .consumer_lag
            .lock()
            .expect("metrics lock is never poisoned: no panics under it");
        lags.insert((topic.to_string(), partition), lag);
    }

    /// Returns the last consumer lag librdkafka reported for each (topic, partition) this node
    /// has consumed; a partition no longer assigned keeps its last value.
    pub fn consumer_lags(&self) -> BTreeMap<(String, i32), i64> {
        self.consumer_lag
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .clone()
    }

    /// Records the time one batch took from being handed to the stations to settled (applied,
    /// its dead letters written and its offsets stored).
    pub fn observe_batch_latency(&self, seconds: f64) {
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_S) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records how many warning versions a sharded node holds while its ownership lease has
    /// lapsed.
    pub fn set_warnings_held(&self, held: usize) {
        self.warnings_held
            .store(u64::try_from(held).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Records whether a sharded node's ownership lease holds (its group coordinator answered
    /// within half a session), so it may act as the owner of its basins and chains.
    pub fn set_ownership_lease_held(&self, held: bool) {
        *self
            .ownership_lease_held
            .lock()
            .expect("metrics lock is never poisoned: no panics under it") = Some(held);
    }

    /// Records whether the source reading `reads` has its assignment rebuilt (its partitions'
    /// logs re-read up to their committed offsets).
    pub fn set_rebuilt(&self, reads: &'static str, rebuilt: bool) {
        self.sources_rebuilt
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .insert(reads, rebuilt);
    }

    /// Whether the node is ready: every rebuilding source has been assigned partitions (or
    /// none) and has re-read their logs up to the committed offsets.
    pub fn is_ready(&self) -> bool {
        let rebuilt = self
            .sources_rebuilt
            .lock()
            .expect("metrics lock is never poisoned: no panics under it");
        !rebuilt.is_empty() && rebuilt.values().all(|done| *done)
    }

    /// Returns the accounting totals.
    pub fn accounting(&self) -> Accounting {
        Accounting {
            received: self.received.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            rejected: self
                .rejected
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            rebuilt: self.rebuilt.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            settled: self.settled.load(Ordering::Relaxed),
        }
    }

    /// Returns rejected counts per reason (only reasons seen).
    pub fn rejected_by_reason(&self) -> BTreeMap<RejectReason, u64> {
        RejectReason::ALL
            .iter()
            .zip(self.rejected.iter())
            .map(|(reason, count)| (*reason, count.load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// Returns the number of warning versions published.
    pub fn warnings_published(&self) -> u64 {
        self.warnings
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .values()
            .sum()
    }

    /// Counts one delivery by channel and outcome (`delivered`, `failed`, `duplicate_suppressed`).
    pub fn delivery(&self, channel: &'static str, outcome: &'static str) {
        *self
            .deliveries
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .entry((channel, outcome))
            .or_default() += 1;
    }

    /// Records the coverage and timeliness of the warnings in force.
    pub fn set_coverage(&self, report: CoverageReport) {
        *self
            .coverage
            .lock()
            .expect("metrics lock is never poisoned: no panics under it") = Some(report);
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let a = self.accounting();
        let _ = writeln!(out, "# HELP tianshan_observations_total Observations by outcome (live input; rebuilt = re-read after assignment).");
        let _ = writeln!(out, "# TYPE tianshan_observations_total counter");
        let _ = writeln!(
            out,
            "tianshan_observations_total{{outcome=\"received\"}} {}",
            a.received
        );
        let _ = writeln!(
            out,
            "tianshan_observations_total{{outcome=\"applied\"}} {}",
            a.applied
        );
        let _ = writeln!(
            out,
            "tianshan_observations_total{{outcome=\"rebuilt\"}} {}",
            a.rebuilt
        );
        let _ = writeln!(
            out,
            "tianshan_observations_total{{outcome=\"forwarded\"}} {}",
            a.forwarded
        );
        let _ = writeln!(
            out,
            "tianshan_observations_total{{outcome=\"settled\"}} {}",
            a.settled
        );
        for (reason, count) in RejectReason::ALL.iter().zip(self.rejected.iter()) {
            let _ = writeln!(
                out,
                "tianshan_observations_total{{outcome=\"rejected\",reason=\"{}\"}} {}",
                reason.code(),
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP tianshan_observations_in_flight Observations read but not yet applied or rejected.");
        let _ = writeln!(out, "# TYPE tianshan_observations_in_flight gauge");
        let _ = writeln!(out, "tianshan_observations_in_flight {}", a.in_flight);
        let _ = writeln!(out, "# HELP tianshan_dead_letters_written_total Dead-letter records acknowledged by the broker.");
        let _ = writeln!(out, "# TYPE tianshan_dead_letters_written_total counter");
        let _ = writeln!(
            out,
            "tianshan_dead_letters_written_total {}",
            self.dead_letters_written.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP tianshan_warnings_published_total Warning versions published, by level and status.");
        let _ = writeln!(out, "# TYPE tianshan_warnings_published_total counter");
        for ((level, status), count) in self
            .warnings
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .iter()
        {
            let _ = writeln!(
                out,
                "tianshan_warnings_published_total{{level=\"{}\",status=\"{}\"}} {count}",
                level.name(),
                status.name()
            );
        }
        let _ = writeln!(out, "# HELP tianshan_warnings_deduplicated_total Warning versions already on the topic, not sent again.");
        let _ = writeln!(out, "# TYPE tianshan_warnings_deduplicated_total counter");
        let _ = writeln!(
            out,
            "tianshan_warnings_deduplicated_total {}",
            self.warnings_deduplicated.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP tianshan_warnings_held Warning versions a sharded node holds, unpublished, until its ownership lease holds again.");
        let _ = writeln!(out, "# TYPE tianshan_warnings_held gauge");
        let _ = writeln!(
            out,
            "tianshan_warnings_held {}",
            self.warnings_held.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tianshan_windows Station windows and basins held by this node."
        );
        let _ = writeln!(out, "# TYPE tianshan_windows gauge");
        let _ = writeln!(
            out,
            "tianshan_windows{{kind=\"station\"}} {}",
            self.stations.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "tianshan_windows{{kind=\"basin\"}} {}",
            self.basins.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tianshan_watermark_seconds Event-time watermark (Unix seconds)."
        );
        let _ = writeln!(out, "# TYPE tianshan_watermark_seconds gauge");
        let _ = writeln!(
            out,
            "tianshan_watermark_seconds {}",
            self.watermark_ms.load(Ordering::Relaxed) / 1000
        );
        let _ = writeln!(
            out,
            "# HELP tianshan_basin_watermark_seconds Last tick a sharded node's basins and chains were fed (Unix seconds)."
        );
        let _ = writeln!(out, "# TYPE tianshan_basin_watermark_seconds gauge");
        let _ = writeln!(
            out,
            "tianshan_basin_watermark_seconds {}",
            self.basin_watermark_ms.load(Ordering::Relaxed) / 1000
        );
        let _ = writeln!(out, "# HELP tianshan_observations_buffered Observations read and waiting for the event-time merge across partitions.");
        let _ = writeln!(out, "# TYPE tianshan_observations_buffered gauge");
        let _ = writeln!(
            out,
            "tianshan_observations_buffered {}",
            self.buffered.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP tianshan_consumer_lag Messages behind the partition end, per topic and partition.");
        let _ = writeln!(out, "# TYPE tianshan_consumer_lag gauge");
        for ((topic, partition), lag) in self
            .consumer_lag
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .iter()
        {
            let _ = writeln!(
                out,
                "tianshan_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\"}} {lag}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tianshan_batch_latency_seconds Time from handing a batch to the stations to all of it settled (applied, dead letters written, offsets stored)."
        );
        let _ = writeln!(out, "# TYPE tianshan_batch_latency_seconds histogram");
        for (bucket, bound) in self.latency_buckets.iter().zip(LATENCY_BUCKETS_S) {
            let _ = writeln!(
                out,
                "tianshan_batch_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "tianshan_batch_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tianshan_batch_latency_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "tianshan_batch_latency_seconds_count {count}");
        let lease_held = *self
            .ownership_lease_held
            .lock()
            .expect("metrics lock is never poisoned: no panics under it");
        if let Some(held) = lease_held {
            let _ = writeln!(out, "# HELP tianshan_ownership_lease_held 1 while the group coordinator answered within half a session: only then does a sharded node deliver and publish for its basins and chains.");
            let _ = writeln!(out, "# TYPE tianshan_ownership_lease_held gauge");
            let _ = writeln!(out, "tianshan_ownership_lease_held {}", u8::from(held));
        }
        self.render_dissemination(&mut out);
        out
    }

    /// Renders the deliveries by channel and outcome and the coverage of the warnings in force.
    fn render_dissemination(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tianshan_deliveries_total Deliveries by channel and outcome."
        );
        let _ = writeln!(out, "# TYPE tianshan_deliveries_total counter");
        for ((channel, outcome), count) in self
            .deliveries
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .iter()
        {
            let _ = writeln!(
                out,
                "tianshan_deliveries_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        let coverage = self
            .coverage
            .lock()
            .expect("metrics lock is never poisoned: no panics under it")
            .clone();
        let Some(report) = coverage else {
            return;
        };
        let _ = writeln!(out, "# HELP tianshan_dissemination_recipients Recipients of the warnings in force, by state.");
        let _ = writeln!(out, "# TYPE tianshan_dissemination_recipients gauge");
        for (state, count) in [
            ("targeted", report.targeted),
            ("delivered", report.delivered),
            ("must_acknowledge", report.must_acknowledge),
            ("acknowledged_in_time", report.acknowledged_in_time),
            ("escalated", report.escalated),
        ] {
            let _ = writeln!(
                out,
                "tianshan_dissemination_recipients{{state=\"{state}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP tianshan_dissemination_coverage_ratio Share of targeted recipients delivered, and of those who must acknowledge who did in time.");
        let _ = writeln!(out, "# TYPE tianshan_dissemination_coverage_ratio gauge");
        for (of, share) in [
            ("delivered", report.delivered_share),
            ("acknowledged", report.acknowledged_share),
        ] {
            if let Some(share) = share {
                let _ = writeln!(
                    out,
                    "tianshan_dissemination_coverage_ratio{{of=\"{of}\"}} {share}"
                );
            }
        }
        let _ = writeln!(out, "# HELP tianshan_dissemination_latency_seconds Median and maximum time from release to first delivery and to acknowledgement.");
        let _ = writeln!(out, "# TYPE tianshan_dissemination_latency_seconds gauge");
        for (to, summary) in [
            ("first_delivery", report.first_delivery),
            ("acknowledgement", report.acknowledgement),
        ] {
            if let Some(summary) = summary {
                let _ = writeln!(
                    out,
                    "tianshan_dissemination_latency_seconds{{to=\"{to}\",stat=\"median\"}} {}",
                    summary.median_ms as f64 / 1e3
                );
                let _ = writeln!(
                    out,
                    "tianshan_dissemination_latency_seconds{{to=\"{to}\",stat=\"max\"}} {}",
                    summary.max_ms as f64 / 1e3
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_has_decided_once_nothing_is_in_flight_and_its_source_caught_up() {
        let metrics = Metrics::default();
        metrics.observations_received(2);
        metrics.observation_applied();
        metrics.set_caught_up(true);
        assert!(
            !metrics.has_decided(2),
            "one observation is still in flight"
        );
        metrics.observation_applied();
        assert!(metrics.has_decided(2));
        assert!(!metrics.has_decided(3), "fewer read than expected");
        metrics.set_caught_up(false);
        assert!(
            !metrics.has_decided(2),
            "the source has not ticked what it read"
        );
    }

    #[test]
    fn accounting_balances_and_renders() {
        let metrics = Metrics::default();
        metrics.observations_received(3);
        metrics.observation_applied();
        metrics.observation_rejected(RejectReason::Duplicate);
        let a = metrics.accounting();
        assert_eq!(
            (a.received, a.applied, a.rejected, a.in_flight),
            (3, 1, 1, 1)
        );
        metrics.observe_batch_latency(0.003);
        let text = metrics.render_prometheus();
        assert!(text
            .contains("tianshan_observations_total{outcome=\"rejected\",reason=\"duplicate\"} 1"));
        assert!(text.contains("tianshan_batch_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("tianshan_batch_latency_seconds_bucket{le=\"0.0025\"} 0"));
    }
}
