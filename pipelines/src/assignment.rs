//! What a rebuilding consumer owns right now: the partitions of its latest assignment, where each
//! one's live records begin (its committed offset; below it records are re-read to rebuild
//! state), and a generation bumped at every assignment and revocation, with the generation each
//! partition was assigned at, so a reader can tell records read before a partition was (re)
//! assigned apart and act on one consistent assignment at a time.
//!
//! [`SourceContext`] is the consumer callback that keeps it: it rewinds every partition it is
//! given to the start of its log. Under the cooperative protocol it is given only the
//! partitions that move, and the others keep being read where they are. [`RewindCheck`] makes sure the rewind happened: a message
//! that is not the start of its partition's log, read first after an assignment, is dropped and
//! the partition sought back to its start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::ownership_lease::OwnershipLease;
use crate::telemetry::Metrics;

/// A (topic, partition) pair.
pub type TopicPartition = (String, i32);

/// One consistent assignment: its generation and, per partition, where live records begin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Bumped at every change; records read under an older generation are read again.
    pub generation: u64,
    /// Per assigned partition, the first offset that is live (not a rebuild re-read).
    pub live_from: BTreeMap<TopicPartition, i64>,
    /// Per assigned partition, the generation it was assigned at: records read under an
    /// earlier one were read before its rewind.
    pub assigned_at: BTreeMap<TopicPartition, u64>,
    /// Per partition still being rebuilt, the last offset to re-read (the one before its
    /// committed offset); taken in once the source has read it or any later offset.
    pub rebuilding_until: BTreeMap<TopicPartition, i64>,
}

impl Assignment {
    /// The assigned partitions, in order.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.live_from.keys().cloned().collect()
    }

    /// The numbers of the assigned partitions (for a consumer of one topic).
    pub fn partition_numbers(&self) -> BTreeSet<i32> {
        self.live_from
            .keys()
            .map(|(_, partition)| *partition)
            .collect()
    }

    /// Whether a record of `partition` read under generation `read_under` belongs to this
    /// assignment: the partition is assigned and was not (re)assigned after the record was read.
    pub fn holds(&self, partition: &TopicPartition, read_under: u64) -> bool {
        self.assigned_at
            .get(partition)
            .is_some_and(|at| *at <= read_under)
    }

    /// Whether `partition` is assigned in both `self` and `later` with no revocation between:
    /// it kept being read where it was.
    pub fn kept_in(&self, later: &Assignment, partition: &TopicPartition) -> bool {
        self.live_from.contains_key(partition)
            && later
                .assigned_at
                .get(partition)
                .is_some_and(|at| *at <= self.generation)
    }

    /// Whether `offset` of `partition` is live: read for the first time by this group.
    /// Unassigned partitions are never live.
    pub fn is_live(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.live_from
            .get(&(topic.to_string(), partition))
            .is_some_and(|from| offset >= *from)
    }

    /// Whether the state of every assigned partition is rebuilt: partitions have been assigned
    /// (possibly none) and each one's log has been re-read up to its committed offset.
    pub fn is_rebuilt(&self) -> bool {
        self.generation > 0 && self.rebuilding_until.is_empty()
    }

    /// The source took in the record at `offset` of `partition`; returns whether that completed
    /// the rebuild of the whole assignment.
    pub fn took_in(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let key = (topic.to_string(), partition);
        let done = self
            .rebuilding_until
            .get(&key)
            .is_some_and(|until| offset >= *until);
        if done {
            self.rebuilding_until.remove(&key);
        }
        done && self.rebuilding_until.is_empty()
    }
}

/// Returns the last offset a partition assigned with its live records from `live_from` (its
/// committed offset) must re-read to rebuild its state, when its log starts at `log_start`;
/// `None` when nothing below `live_from` is left to re-read. Without this, a partition whose
/// every record below the committed offset fell to retention, and that receives nothing new
/// (lightning in winter), would keep the node from ever reporting its state rebuilt.
pub fn last_to_reread(live_from: i64, log_start: i64) -> Option<i64> {
    (live_from > log_start.max(0)).then_some(live_from - 1)
}

/// The assignment shared between the consumer callback (which changes it inside `poll`) and the
/// tasks that act on it.
#[derive(Debug, Clone, Default)]
pub struct SharedAssignment(Arc<Mutex<Assignment>>);

impl SharedAssignment {
    /// A copy of the current assignment.
    pub fn snapshot(&self) -> Assignment {
        self.lock().clone()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The partitions assigned now, in order.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.lock().partitions()
    }

    /// The numbers of the partitions assigned now (for a consumer of one topic).
    pub fn partition_numbers(&self) -> BTreeSet<i32> {
        self.lock().partition_numbers()
    }

    /// Whether `offset` of `partition` is live under the current assignment.
    pub fn is_live(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.lock().is_live(topic, partition, offset)
    }

    /// Whether every assigned partition's state is rebuilt ([`Assignment::is_rebuilt`]).
    pub fn is_rebuilt(&self) -> bool {
        self.lock().is_rebuilt()
    }

    /// The source took in `records` (topic, partition, offset), applied under assignment
    /// `generation` (records of partitions assigned since do not count); returns whether they
    /// completed the rebuild of the current assignment.
    /// Locks once per batch, and looks at no record once the assignment is rebuilt.
    pub fn took_in<'a>(
        &self,
        generation: u64,
        records: impl IntoIterator<Item = (&'a str, i32, i64)>,
    ) -> bool {
        let mut now = self.lock();
        if now.rebuilding_until.is_empty() {
            return false;
        }
        let mut completed = false;
        for (topic, partition, offset) in records {
            if now.holds(&(topic.to_string(), partition), generation) {
                completed |= now.took_in(topic, partition, offset);
            }
        }
        completed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Assignment> {
        self.0
            .lock()
            .expect("assignment lock is never poisoned: no panics under it")
    }
}

/// Consumer callbacks of a rebuilding source: keep the [`SharedAssignment`], rewind every
/// assigned partition to its start, and report lag and whether the assignment is rebuilt.
pub struct SourceContext {
    /// What the consumer reads, for the log ("observations", "basin updates").
    reads: &'static str,
    assignment: SharedAssignment,
    metrics: Arc<Metrics>,
    /// Confirmed by the coordinator's answer when partitions are assigned.
    lease: Option<OwnershipLease>,
}

impl SourceContext {
    /// A context for a consumer of `reads` that keeps `assignment`.
    pub fn new(reads: &'static str, assignment: SharedAssignment, metrics: Arc<Metrics>) -> Self {
        Self {
            reads,
            assignment,
            metrics,
            lease: None,
        }
    }

    /// Also confirms `lease` when the coordinator answers at an assignment, so a node owns what
    /// it was just assigned without waiting for the next renewal.
    #[must_use]
    pub fn confirming(mut self, lease: OwnershipLease) -> Self {
        self.lease = Some(lease);
        self
    }

    fn assigned(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let asked_at = std::time::Instant::now();
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .inspect(|_| {
                if let Some(lease) = &self.lease {
                    lease.confirm(asked_at);
                }
            })
            .unwrap_or_else(|e| {
                warn!(reads = self.reads, error = %e, "could not read committed offsets; treating the whole log as live");
                TopicPartitionList::new()
            });
        let mut rewound = TopicPartitionList::new();
        {
            let mut assignment = self.assignment.lock();
            assignment.generation += 1;
            let generation = assignment.generation;
            for element in tpl.elements() {
                let live_from = committed
                    .find_partition(element.topic(), element.partition())
                    .and_then(|c| match c.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                    .unwrap_or(0);
                debug!(
                    reads = self.reads,
                    topic = element.topic(),
                    partition = element.partition(),
                    live_from,
                    "assigned"
                );
                // The log's start: records below it are gone (retention), so a partition whose
                // log starts at or after its committed offset has nothing to re-read.
                let log_start = consumer
                    .fetch_watermarks(
                        element.topic(),
                        element.partition(),
                        Duration::from_secs(10),
                    )
                    .map_or(0, |(low, _)| low);
                let key = (element.topic().to_string(), element.partition());
                if let Some(until) = last_to_reread(live_from, log_start) {
                    assignment.rebuilding_until.insert(key.clone(), until);
                }
                assignment.live_from.insert(key.clone(), live_from);
                assignment.assigned_at.insert(key, generation);
                let _ = rewound.add_partition_offset(
                    element.topic(),
                    element.partition(),
                    Offset::Beginning,
                );
            }
        }
        info!(
            reads = self.reads,
            partitions = rewound.count(),
            "partitions assigned; rebuilding their state from the start of the log"
        );
        if let Err(e) = assign_given(consumer, &rewound) {
            warn!(reads = self.reads, error = %e, "assigning partitions failed");
        }
        self.metrics
            .set_rebuilt(self.reads, self.assignment.is_rebuilt());
    }

    fn revoked(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        {
            let mut assignment = self.assignment.lock();
            for element in tpl.elements() {
                let key = (element.topic().to_string(), element.partition());
                assignment.live_from.remove(&key);
                assignment.assigned_at.remove(&key);
                assignment.rebuilding_until.remove(&key);
            }
            assignment.generation += 1;
        }
        info!(
            reads = self.reads,
            partitions = tpl.count(),
            "partitions revoked"
        );
        if let Err(e) = unassign_revoked(consumer, tpl) {
            warn!(reads = self.reads, error = %e, "unassigning partitions failed");
        }
        self.metrics
            .set_rebuilt(self.reads, self.assignment.is_rebuilt());
    }
}

/// Whether the group rebalances cooperatively (`cooperative-sticky`): the callback is then given
/// only the partitions that move.
fn is_cooperative<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
}

/// Takes the partitions a rebalance callback was given: added to the assignment under the
/// cooperative protocol (`tpl` holds only those), else as the whole assignment.
///
/// # Errors
/// The client's error when it cannot assign them.
pub fn assign_given<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    if is_cooperative(consumer) {
        consumer.incremental_assign(tpl)
    } else {
        consumer.assign(tpl)
    }
}

/// Gives up the partitions a rebalance callback revoked: only those under the cooperative
/// protocol, else the whole assignment.
///
/// # Errors
/// The client's error when it cannot unassign them.
pub fn unassign_revoked<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    if is_cooperative(consumer) {
        consumer.incremental_unassign(tpl)
    } else {
        consumer.unassign()
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .set_consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assigned(consumer, tpl),
            _ => self.revoked(consumer, tpl),
        }
    }
}

/// Per partition assignment, whether the partition is confirmed to be read from its start.
///
/// librdkafka may hand out messages fetched at a partition's committed offset, or prefetched
/// under the previous assignment, after the rebalance callback asked for the start of the log:
/// a rebuild from such a message would miss everything before it. So the first message of each
/// partition after an assignment must lie at or before the log's start; otherwise it is dropped
/// and the partition sought to its start, and messages are dropped until one comes from before
/// the one that triggered the seek.
#[derive(Debug, Default)]
pub struct RewindCheck {
    /// Partitions confirmed, with the generation they were assigned at.
    confirmed: BTreeMap<TopicPartition, u64>,
    /// Partitions sought back, with the generation they were assigned at and the offset of the
    /// message that showed the rewind missing.
    sought: BTreeMap<TopicPartition, (u64, i64)>,
}

impl RewindCheck {
    /// Whether the message at `offset` of `topic`/`partition` may be used; see the type.
    pub fn admit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        assignment: &SharedAssignment,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> bool {
        let key = (topic.to_string(), partition);
        let Some(assigned_at) = assignment.lock().assigned_at.get(&key).copied() else {
            // Fetched for an assignment that has changed since.
            return false;
        };
        if self.confirmed.get(&key) == Some(&assigned_at) {
            return true;
        }
        self.confirmed.remove(&key);
        match self.sought.get(&key) {
            Some((at, from)) if *at == assigned_at => {
                if offset < *from {
                    self.sought.remove(&key);
                    self.confirmed.insert(key, assigned_at);
                    return true;
                }
                return false;
            }
            Some(_) => {
                self.sought.remove(&key);
            }
            None => {}
        }
        let start = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_or(0, |(low, _)| low);
        if offset <= start {
            self.confirmed.insert(key, assigned_at);
            return true;
        }
        warn!(
            topic,
            partition,
            offset,
            start,
            "first message after an assignment is not the start of the log; seeking back to rebuild from the start"
        );
        if let Err(e) = consumer.seek(topic, partition, Offset::Beginning, Duration::from_secs(10))
        {
            warn!(topic, partition, error = %e, "seeking to the start of the log failed; trying again at the next message");
            return false;
        }
        self.sought.insert(key, (assigned_at, offset));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_offsets_at_or_after_the_committed_one_of_an_assigned_partition_are_live() {
        let assignment = Assignment {
            generation: 3,
            live_from: [(("rainfall".to_string(), 2), 40)].into_iter().collect(),
            ..Assignment::default()
        };
        assert!(!assignment.is_live("rainfall", 2, 39));
        assert!(assignment.is_live("rainfall", 2, 40));
        assert!(!assignment.is_live("rainfall", 1, 400), "not assigned");
        assert_eq!(assignment.partitions(), vec![("rainfall".to_string(), 2)]);
    }

    #[test]
    fn a_partition_kept_through_a_rebalance_keeps_its_records_and_a_moved_one_does_not() {
        let rainfall = |partition: i32| ("rainfall".to_string(), partition);
        let before = Assignment {
            generation: 4,
            live_from: [(rainfall(0), 10), (rainfall(1), 20)].into_iter().collect(),
            assigned_at: [(rainfall(0), 1), (rainfall(1), 4)].into_iter().collect(),
            ..Assignment::default()
        };
        // Partition 1 revoked (5), then 1 and 2 assigned (6): only 0 kept being read.
        let after = Assignment {
            generation: 6,
            live_from: [(rainfall(0), 10), (rainfall(1), 25), (rainfall(2), 0)]
                .into_iter()
                .collect(),
            assigned_at: [(rainfall(0), 1), (rainfall(1), 6), (rainfall(2), 6)]
                .into_iter()
                .collect(),
            ..Assignment::default()
        };
        assert!(before.kept_in(&after, &rainfall(0)));
        assert!(
            !before.kept_in(&after, &rainfall(1)),
            "revoked and assigned again"
        );
        assert!(!before.kept_in(&after, &rainfall(2)), "new");
        assert!(
            after.holds(&rainfall(0), 3),
            "read before the rebalance, still good"
        );
        assert!(
            !after.holds(&rainfall(1), 5),
            "read before its rewind: it comes again"
        );
        assert!(after.holds(&rainfall(1), 6));
        assert!(!after.holds(&rainfall(3), 6), "not assigned");
    }

    #[test]
    fn only_records_left_below_the_committed_offset_are_re_read() {
        assert_eq!(
            last_to_reread(0, 0),
            None,
            "a new group reads everything live"
        );
        assert_eq!(last_to_reread(40, 0), Some(39));
        assert_eq!(
            last_to_reread(40, 25),
            Some(39),
            "the start fell to retention; the rest is re-read"
        );
        assert_eq!(
            last_to_reread(40, 40),
            None,
            "everything below the committed offset fell to retention"
        );
        assert_eq!(
            last_to_reread(40, 52),
            None,
            "retention took records past the committed offset too"
        );
        assert_eq!(
            last_to_reread(40, -1),
            Some(39),
            "an unknown start re-reads"
        );
    }

    #[test]
    fn an_assignment_is_rebuilt_once_each_partition_was_read_up_to_its_committed_offset() {
        let mut assignment = Assignment::default();
        assert!(!assignment.is_rebuilt(), "nothing assigned yet");
        assignment.generation = 1;
        assignment.live_from = [
            (("rainfall".to_string(), 0), 40),
            (("rainfall".to_string(), 1), 0),
        ]
        .into_iter()
        .collect();
        assignment.rebuilding_until = [(("rainfall".to_string(), 0), 39)].into_iter().collect();
        assert!(!assignment.is_rebuilt());
        assert!(!assignment.took_in("rainfall", 0, 38));
        assert!(
            !assignment.took_in("rainfall", 1, 500),
            "partition 1 had nothing to re-read"
        );
        assert!(
            assignment.took_in("rainfall", 0, 39),
            "the last re-read record completes it"
        );
        assert!(assignment.is_rebuilt());
        let shared = SharedAssignment::default();
        *shared.lock() = Assignment {
            generation: 2,
            ..assignment.clone()
        };
        shared.lock().rebuilding_until = [(("rainfall".to_string(), 0), 39)].into_iter().collect();
        shared.lock().assigned_at = [(("rainfall".to_string(), 0), 2)].into_iter().collect();
        assert!(
            !shared.took_in(1, [("rainfall", 0, 45)]),
            "a record of an older assignment rebuilds nothing"
        );
        assert!(
            shared.took_in(2, [("rainfall", 0, 45)]),
            "a later offset also shows it re-read"
        );
    }
}
