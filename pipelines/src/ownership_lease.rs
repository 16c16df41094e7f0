//! How long a sharded node may go on acting as the owner of its basins and chains without hearing
//! from its consumer group's coordinator. A node cut off from the broker keeps its assignment
//! until its own client notices the lost session, while the coordinator hands its partitions to
//! another node once the session times out; so the node stops publishing and delivering on its
//! own much earlier, when no answer came for half a session, and the two owners never overlap.
//!
//! [`keep_lease`] renews the lease with a round trip to the coordinator (the committed offsets of
//! the assigned partitions) a few times per lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use tracing::{info, warn};

use crate::assignment::SharedAssignment;
use crate::telemetry::Metrics;

/// The time until which this node may act as an owner; cheap to clone, shared by the renewing
/// thread and every check.
#[derive(Debug, Clone)]
pub struct OwnershipLease {
    length: Duration,
    confirmed_at: Arc<Mutex<Option<Instant>>>,
}

impl OwnershipLease {
    /// A lease of half the consumer session `session`, not yet confirmed (held by no one).
    pub fn for_session(session: Duration) -> Self {
        Self {
            length: session / 2,
            confirmed_at: Arc::new(Mutex::new(None)),
        }
    }

    /// How long one confirmation holds.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The coordinator answered a request sent at `sent_at`: the lease holds until `sent_at`
    /// plus its length (never shortened by a late answer to an older request).
    pub fn confirm(&self, sent_at: Instant) {
        let mut confirmed = self.lock();
        if confirmed.is_none_or(|earlier| earlier < sent_at) {
            *confirmed = Some(sent_at);
        }
    }

    /// Whether the lease holds at `now`.
    pub fn holds_at(&self, now: Instant) -> bool {
        self.lock()
            .is_some_and(|sent_at| now.saturating_duration_since(sent_at) < self.length)
    }

    /// Whether the lease holds now.
    pub fn holds(&self) -> bool {
        self.holds_at(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.confirmed_at
            .lock()
            .expect("lease lock is never poisoned: no panics under it")
    }
}

/// Renews `lease` until `stop` is set: every third of a lease, while partitions are assigned,
/// asks the coordinator for their committed offsets; an answer confirms the lease from the
/// moment the question was sent. Logs when the lease lapses and when it holds again, and keeps
/// the `tianshan_ownership_lease_held` gauge.
pub fn keep_lease<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    assignment: &SharedAssignment,
    lease: &OwnershipLease,
    metrics: &Metrics,
    stop: &AtomicBool,
) {
    let every = lease.length() / 3;
    let mut held = true;
    metrics.set_ownership_lease_held(lease.holds());
    while !stop.load(Ordering::Relaxed) {
        let partitions = assignment.partitions();
        if !partitions.is_empty() {
            let mut asked = TopicPartitionList::new();
            for (topic, partition) in &partitions {
                asked.add_partition(topic, *partition);
            }
            let sent_at = Instant::now();
            match consumer.committed_offsets(asked, every) {
                Ok(_) => lease.confirm(sent_at),
                Err(e) if held => {
                    warn!(error = %e, "the group coordinator did not answer; this node stops acting as owner when its lease lapses")
                }
                Err(_) => {}
            }
            let holds = lease.holds();
            if holds != held {
                if holds {
                    info!("the group coordinator answers again: ownership lease renewed");
                } else {
                    warn!(
                        lease_ms = lease.length().as_millis(),
                        "ownership lease lapsed: this node publishes nothing of its basins and chains, and delivers nothing to its shards of the tree, until the coordinator answers"
                    );
                }
                held = holds;
            }
            metrics.set_ownership_lease_held(holds);
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_for_half_a_session_after_the_request_that_confirmed_it() {
        let lease = OwnershipLease::for_session(Duration::from_secs(6));
        let start = Instant::now();
        assert!(!lease.holds_at(start), "never confirmed: not held");
        lease.confirm(start);
        assert!(lease.holds_at(start + Duration::from_millis(2_999)));
        assert!(!lease.holds_at(start + Duration::from_secs(3)));
    }

    #[test]
    fn a_late_answer_to_an_older_request_does_not_shorten_the_lease() {
        let lease = OwnershipLease::for_session(Duration::from_secs(6));
        let start = Instant::now();
        lease.confirm(start + Duration::from_secs(2));
        lease.confirm(start);
        assert!(lease.holds_at(start + Duration::from_secs(4)));
        assert!(!lease.holds_at(start + Duration::from_secs(5)));
    }
}
