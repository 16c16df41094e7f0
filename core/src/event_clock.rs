//! Event-time order across partitions: which records to apply next and when an evaluation tick
//! may be released.
//!
//! Records arrive per partition in log order, and a partition's fetch may hold hours of event
//! time. Tick `T` (windows ending at `T`) may only be released once every record with an event
//! time at or before `T` has been applied and no record after `T` has been. So the clock buffers
//! each partition's records and merges them: it applies a record only when its event time is at
//! or before the next tick, and it releases the next tick once every partition that may still
//! deliver has a buffered record after it. Within a partition records keep their log order, so a
//! reading sent hours late is still seen late by its station.
//!
//! A partition with nothing buffered holds the clock back until it delivers, unless it is idle:
//! it reported its end (caught up with the log) at least `idle_after_ms` of processing time ago.
//! When more than `max_buffered` records wait, empty partitions stop holding the clock back, so
//! memory stays bounded. When every partition is idle and nothing is buffered, ticks run up to
//! the last one before the newest event time seen.
//!
//! A clock can also rebuild partitions a node just gained while another clock keeps merging the
//! ones it kept: [`EventClock::next_capped`] releases no tick after the kept clock's last one,
//! and once the rebuilding clock stands at that tick, [`EventClock::hand_over_to`] moves its
//! partitions, with what they hold, into the kept clock, as if they had been merged there from
//! the start.

use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};

use crate::time::EventTime;

/// At most this many ticks are released one by one across a gap (7 days of 5-min ticks); beyond
/// that the clock jumps, because a gap that long means a new stream, not a slow one.
const MAX_TICKS_ACROSS_A_GAP: i64 = 7 * 24 * 12;

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release<T> {
    /// Apply these records, in this order.
    Apply(Vec<T>),
    /// Every record up to this tick is applied: evaluate it.
    Tick(EventTime),
}

#[derive(Debug)]
struct PartitionQueue<T> {
    /// Buffered records; `None` event time for records that carry none (undecodable).
    records: VecDeque<(Option<EventTime>, T)>,
    /// Processing time (ms) at which the partition reported its end, while nothing came after.
    at_end_since: Option<i64>,
    /// No record has reached the clock since the partition was added: an end it reports now
    /// means it was empty when the stream had not started yet, not that it is idle.
    fresh: bool,
}

impl<T> Default for PartitionQueue<T> {
    fn default() -> Self {
        Self {
            records: VecDeque::new(),
            at_end_since: None,
            fresh: true,
        }
    }
}

/// The merge buffer and tick bookkeeping of one source, over partitions keyed by `K`.
#[derive(Debug)]
pub struct EventClock<K, T> {
    tick_ms: i64,
    idle_after_ms: i64,
    max_buffered: usize,
    partitions: BTreeMap<K, PartitionQueue<T>>,
    buffered: usize,
    /// Some partition was added since the last record arrived (see `PartitionQueue::fresh`).
    any_fresh: bool,
    newest_seen: Option<EventTime>,
    last_tick: Option<EventTime>,
}

impl<K: Ord + Clone, T> EventClock<K, T> {
    /// Creates a clock with ticks every `tick_ms` of event time.
    pub fn new(tick_ms: i64, idle_after_ms: i64, max_buffered: usize) -> Self {
        Self {
            tick_ms,
            idle_after_ms,
            max_buffered,
            partitions: BTreeMap::new(),
            buffered: 0,
            any_fresh: false,
            newest_seen: None,
            last_tick: None,
        }
    }

    /// Returns a clock with the same settings and nothing in it.
    pub fn new_like(&self) -> Self {
        Self::new(self.tick_ms, self.idle_after_ms, self.max_buffered)
    }

    /// Forgets every partition, buffered record and released tick: the log is read again
    /// from its start, so ticks are released again from the first record.
    pub fn restart(&mut self) {
        *self = self.new_like();
    }

    /// Makes the tracked partitions equal to `assigned`. New partitions hold the clock back until
    /// they deliver or report their end; revoked ones are forgotten with their buffered records,
    /// which are returned (they were not applied, so their offsets were not committed).
    pub fn assign(&mut self, assigned: &[K]) -> Vec<T> {
        let revoked: Vec<K> = self
            .partitions
            .keys()
            .filter(|key| !assigned.contains(key))
            .cloned()
            .collect();
        let mut dropped = Vec::new();
        for key in revoked {
            if let Some(queue) = self.partitions.remove(&key) {
                dropped.extend(queue.records.into_iter().map(|(_, record)| record));
            }
        }
        self.buffered -= dropped.len();
        for key in assigned {
            if !self.partitions.contains_key(key) {
                self.partitions
                    .insert(key.clone(), PartitionQueue::default());
                self.any_fresh = true;
            }
        }
        dropped
    }

    /// Buffers a record read from `partition`.
    pub fn push<Q>(&mut self, partition: &Q, event_time: Option<EventTime>, record: T)
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        if !self.partitions.contains_key(partition) {
            self.partitions
                .insert(partition.to_owned(), PartitionQueue::default());
            self.any_fresh = true;
        }
        if std::mem::take(&mut self.any_fresh) {
            // The stream has started: judge the idleness of partitions that ended before it
            // from now.
            for queue in self.partitions.values_mut() {
                if std::mem::take(&mut queue.fresh) {
                    queue.at_end_since = None;
                }
            }
        }
        let Some(queue) = self.partitions.get_mut(partition) else {
            return;
        };
        queue.records.push_back((event_time, record));
        queue.at_end_since = None;
        self.buffered += 1;
        if let Some(time) = event_time {
            self.newest_seen = Some(self.newest_seen.map_or(time, |n| n.max(time)));
        }
    }

    /// Records that `partition` caught up with its log at processing time `now_ms`.
    pub fn reached_end(&mut self, partition: &K, now_ms: i64) {
        if !self.partitions.contains_key(partition) {
            self.any_fresh = true;
        }
        let queue = self.partitions.entry(partition.clone()).or_default();
        if queue.at_end_since.is_none() {
            queue.at_end_since = Some(now_ms);
        }
    }

    /// Records that every partition caught up with its log at processing time `now_ms` (the end
    /// of a file).
    pub fn all_reached_end(&mut self, now_ms: i64) {
        for queue in self.partitions.values_mut() {
            queue.at_end_since.get_or_insert(now_ms);
        }
    }

    /// Takes every partition that reported its end and has nothing buffered for idle now,
    /// without waiting `idle_after_ms`. For a source re-reading its log: once every partition
    /// that holds records holds re-read ones, the ticks they wait for were finished long ago by
    /// whoever first read them, and whatever an ended partition receives from now on is newer
    /// than those decisions, so it cannot belong before those ticks.
    pub fn idle_ended_partitions(&mut self, now_ms: i64) {
        let idle_since = now_ms - self.idle_after_ms;
        for queue in self.partitions.values_mut() {
            if queue.records.is_empty() {
                if let Some(since) = &mut queue.at_end_since {
                    *since = (*since).min(idle_since);
                }
            }
        }
    }

    /// Returns whether `partition` is merged by this clock.
    pub fn tracks<Q>(&self, partition: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.partitions.contains_key(partition)
    }

    /// Returns the partitions this clock merges, in order.
    pub fn partitions(&self) -> Vec<K> {
        self.partitions.keys().cloned().collect()
    }

    /// Moves every partition of this clock, with its buffered records and its end, into
    /// `other`, leaving this clock empty. Call it once this clock's last tick is `other`'s and
    /// it has nothing ready to apply: the partitions then stand where they would if `other` had
    /// merged them from the start.
    pub fn hand_over_to(&mut self, other: &mut Self) {
        for (key, queue) in std::mem::take(&mut self.partitions) {
            other.buffered += queue.records.len();
            other.any_fresh |= queue.fresh;
            other.partitions.insert(key, queue);
        }
        if let Some(newest) = self.newest_seen.take() {
            other.newest_seen = Some(other.newest_seen.map_or(newest, |n| n.max(newest)));
        }
        self.buffered = 0;
    }

    /// Returns how many records wait in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Returns the record at the head of `partition`'s buffer: the next one it will apply. Right
    /// after a tick is released, every head lies after that tick.
    pub fn head(&self, partition: &K) -> Option<&T> {
        self.partitions
            .get(partition)
            .and_then(|queue| queue.records.front())
            .map(|(_, record)| record)
    }

    /// Returns the partitions that hold the next tick back now: nothing buffered and not idle.
    pub fn holding_back(&self, now_ms: i64) -> impl Iterator<Item = &K> {
        self.partitions
            .iter()
            .filter(move |(_, queue)| queue.records.is_empty() && !self.is_idle(queue, now_ms))
            .map(|(key, _)| key)
    }

    /// Returns the last tick released.
    pub fn last_tick(&self) -> Option<EventTime> {
        self.last_tick
    }

    /// Returns whether every partition is idle, nothing is buffered and every tick up to the
    /// newest event time seen is released.
    pub fn caught_up(&self, now_ms: i64) -> bool {
        self.buffered == 0
            && self
                .partitions
                .values()
                .all(|queue| self.is_idle(queue, now_ms))
            && match (self.last_tick_due(), self.last_tick) {
                (Some(due), Some(last)) => due <= last,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }

    /// Returns the next step at processing time `now_ms`, or `None` when the clock must wait for
    /// more records (or has nothing to do). Call it until it returns `None`.
    pub fn next(&mut self, now_ms: i64, max_batch: usize) -> Option<Release<T>> {
        self.next_capped(now_ms, max_batch, None)
    }

    /// Like [`EventClock::next`], but releases no tick after `cap` (the last tick of the clock
    /// this one is catching up with): it applies records up to the tick after `cap` and waits
    /// there. With every partition idle and nothing buffered it ticks on up to `cap`, since the
    /// other clock has passed those ticks already.
    pub fn next_capped(
        &mut self,
        now_ms: i64,
        max_batch: usize,
        cap: Option<EventTime>,
    ) -> Option<Release<T>> {
        let capped = |tick: EventTime| cap.map_or(tick, |cap| tick.min(cap));
        loop {
            let batch = self.pop_ready(max_batch.max(1));
            if !batch.is_empty() {
                return Some(Release::Apply(batch));
            }
            if self.blocked(now_ms) {
                return None;
            }
            let Some(head) = self.earliest_head() else {
                let target = match cap {
                    Some(cap) => cap,
                    None => self.last_tick_due()?,
                };
                return self.tick_towards(target);
            };
            match self.last_tick {
                None => {
                    self.last_tick =
                        Some(capped(head.ceil_to(self.tick_ms).plus_ms(-self.tick_ms)));
                }
                Some(last) => {
                    // Nothing is ready, so the earliest head is after `next`: release it.
                    let next = last.plus_ms(self.tick_ms);
                    if cap.is_some_and(|cap| next > cap) {
                        return None;
                    }
                    let gap = (head.millis() - next.millis()) / self.tick_ms;
                    self.last_tick = Some(if gap > MAX_TICKS_ACROSS_A_GAP {
                        capped(head.ceil_to(self.tick_ms).plus_ms(-self.tick_ms)).max(next)
                    } else {
                        next
                    });
                    return Some(Release::Tick(next));
                }
            }
        }
    }

    /// Pops, in event-time order across partitions and log order within one, the records at or
    /// before the next tick (and those without an event time when they reach the head).
    fn pop_ready(&mut self, max_batch: usize) -> Vec<T> {
        let mut batch = Vec::new();
        let Some(last) = self.last_tick else {
            // Before the first tick only records without an event time are ready.
            for queue in self.partitions.values_mut() {
                while batch.len() < max_batch && matches!(queue.records.front(), Some((None, _))) {
                    if let Some((_, record)) = queue.records.pop_front() {
                        batch.push(record);
                    }
                }
            }
            self.buffered -= batch.len();
            return batch;
        };
        let next = last.plus_ms(self.tick_ms);
        while batch.len() < max_batch {
            let earliest = self
                .partitions
                .values_mut()
                .filter_map(|queue| match queue.records.front() {
                    Some((None, _)) => Some((None, queue)),
                    Some((Some(time), _)) if *time <= next => Some((Some(*time), queue)),
                    _ => None,
                })
                .min_by_key(|(time, _)| *time);
            let Some((_, queue)) = earliest else { break };
            if let Some((_, record)) = queue.records.pop_front() {
                batch.push(record);
            }
        }
        self.buffered -= batch.len();
        batch
    }

    /// Returns whether a partition with nothing buffered may still deliver something earlier.
    fn blocked(&self, now_ms: i64) -> bool {
        self.buffered < self.max_buffered
            && self
                .partitions
                .values()
                .any(|queue| queue.records.is_empty() && !self.is_idle(queue, now_ms))
    }

    fn is_idle(&self, queue: &PartitionQueue<T>, now_ms: i64) -> bool {
        queue.records.is_empty()
            && queue
                .at_end_since
                .is_some_and(|since| now_ms - since >= self.idle_after_ms)
    }

    fn earliest_head(&self) -> Option<EventTime> {
        self.partitions
            .values()
            .filter_map(|queue| queue.records.front().and_then(|(time, _)| *time))
            .min()
    }

    /// The last tick an idle source may release: the last one strictly before the newest event
    /// time seen, because readings stamped with that newest time may still be on their way.
    fn last_tick_due(&self) -> Option<EventTime> {
        self.newest_seen
            .map(|newest| newest.plus_ms(-1).floor_to(self.tick_ms))
    }

    /// With nothing buffered and every partition idle, runs the ticks up to `target`: the last
    /// one due ([`Self::last_tick_due`]), or the cap of a rebuilding clock (which starts there
    /// when it never saw a record).
    fn tick_towards(&mut self, target: EventTime) -> Option<Release<T>> {
        let next = match self.last_tick {
            Some(last) if last >= target => return None,
            Some(last)
                if (target.millis() - last.millis()) / self.tick_ms <= MAX_TICKS_ACROSS_A_GAP =>
            {
                last.plus_ms(self.tick_ms)
            }
            _ => target,
        };
        self.last_tick = Some(next);
        Some(Release::Tick(next))
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;

    #[test]
    fn a_restarted_clock_releases_old_ticks_again() {
        let tick = 300_000;
        let mut clock: EventClock<u8, u8> = EventClock::new(tick, 0, 100);
        clock.assign(&[0]);
        clock.push(&0, Some(EventTime(tick * 2)), 1);
        clock.reached_end(&0, 0);
        while clock.next(10, 10).is_some() {}
        assert_eq!(clock.last_tick(), Some(EventTime(tick)));
        clock.restart();
        assert_eq!(clock.last_tick(), None);
        clock.assign(&[0]);
        clock.push(&0, Some(EventTime(tick * 2)), 1);
        clock.reached_end(&0, 0);
        let mut released = Vec::new();
        while let Some(step) = clock.next(10, 10) {
            released.push(step);
        }
        assert!(released.contains(&Release::Apply(vec![1])), "{released:?}");
    }
}

#[cfg(test)]
mod rebuild_tests {
    use super::*;

    const TICK: i64 = 300_000;

    fn at(minutes: i64) -> EventTime {
        EventTime(minutes * 60_000)
    }

    /// A record: its partition and its event time in minutes.
    type Rec = (u8, i64);

    /// What one partition's stations saw: its records and every tick, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Record(i64),
        Tick(EventTime),
    }

    fn push_all(clock: &mut EventClock<u8, Rec>, records: &[Rec]) {
        for &(partition, minutes) in records {
            clock.push(&partition, Some(at(minutes)), (partition, minutes));
        }
    }

    /// Drains `clock` (capped at `cap`), appending what each partition it merges sees.
    fn drain_into(
        clock: &mut EventClock<u8, Rec>,
        cap: Option<EventTime>,
        seen: &mut BTreeMap<u8, Vec<Seen>>,
    ) {
        let merged = clock.partitions();
        while let Some(step) = clock.next_capped(0, 100, cap) {
            match step {
                Release::Apply(records) => {
                    for (partition, minutes) in records {
                        seen.entry(partition)
                            .or_default()
                            .push(Seen::Record(minutes));
                    }
                }
                Release::Tick(tick) => {
                    for partition in &merged {
                        seen.entry(*partition).or_default().push(Seen::Tick(tick));
                    }
                }
            }
        }
    }

    #[test]
    fn a_partition_rebuilt_beside_the_kept_ones_sees_what_one_merge_would_have_shown_it() {
        let kept_before = [(0, 1), (0, 4), (0, 7)];
        let gained = [(1, 2), (1, 3), (1, 8), (1, 12)];
        let kept_after = [(0, 11), (0, 13)];

        let mut one_merge = EventClock::new(TICK, 0, 1000);
        one_merge.assign(&[0, 1]);
        push_all(&mut one_merge, &kept_before);
        push_all(&mut one_merge, &gained);
        push_all(&mut one_merge, &kept_after);
        one_merge.all_reached_end(0);
        let mut expected = BTreeMap::new();
        drain_into(&mut one_merge, None, &mut expected);

        let mut kept = EventClock::new(TICK, 0, 1000);
        kept.assign(&[0]);
        push_all(&mut kept, &kept_before);
        kept.reached_end(&0, 0);
        let mut seen = BTreeMap::new();
        drain_into(&mut kept, None, &mut seen);
        assert_eq!(kept.last_tick(), Some(at(5)));

        let mut rebuilding = EventClock::new(TICK, 0, 1000);
        rebuilding.assign(&[1]);
        push_all(&mut rebuilding, &gained);
        rebuilding.reached_end(&1, 0);
        drain_into(&mut rebuilding, kept.last_tick(), &mut seen);
        assert_eq!(
            rebuilding.last_tick(),
            kept.last_tick(),
            "it caught up with the kept clock and waits there"
        );
        assert_eq!(
            rebuilding.head(&1),
            Some(&(1, 12)),
            "12 min lies past the next tick"
        );
        rebuilding.hand_over_to(&mut kept);
        assert_eq!(rebuilding.partitions(), Vec::<u8>::new());
        assert_eq!(kept.partitions(), vec![0, 1]);
        assert_eq!(kept.buffered(), 1);

        push_all(&mut kept, &kept_after);
        kept.all_reached_end(0);
        drain_into(&mut kept, None, &mut seen);
        assert_eq!(seen, expected);
    }

    /// A rebuilding clock of partition 0 holding `records`, read to its end and drained with
    /// `cap`; returns it and what partition 0 saw.
    fn rebuilt_alone(records: &[Rec], cap: EventTime) -> (EventClock<u8, Rec>, Vec<Seen>) {
        let mut rebuilding = EventClock::new(TICK, 0, 1000);
        rebuilding.assign(&[0]);
        push_all(&mut rebuilding, records);
        rebuilding.reached_end(&0, 0);
        let mut seen = BTreeMap::new();
        drain_into(&mut rebuilding, Some(cap), &mut seen);
        (rebuilding, seen.remove(&0).unwrap_or_default())
    }

    #[test]
    fn a_rebuilding_clock_releases_no_tick_past_its_cap() {
        let (rebuilding, seen) = rebuilt_alone(&[(0, 2), (0, 9), (0, 21), (0, 40)], at(15));
        assert_eq!(
            seen,
            vec![
                Seen::Record(2),
                Seen::Tick(at(5)),
                Seen::Record(9),
                Seen::Tick(at(10)),
                Seen::Tick(at(15)),
            ]
        );
        assert_eq!(rebuilding.head(&0), Some(&(0, 21)));
    }

    #[test]
    fn an_idle_rebuilding_clock_ticks_up_to_its_cap_even_with_nothing_read() {
        let (_, empty) = rebuilt_alone(&[], at(30));
        assert_eq!(empty, vec![Seen::Tick(at(30))]);

        let (_, ran_dry) = rebuilt_alone(&[(0, 2)], at(15));
        assert_eq!(
            ran_dry,
            vec![
                Seen::Record(2),
                Seen::Tick(at(5)),
                Seen::Tick(at(10)),
                Seen::Tick(at(15)),
            ],
            "the kept clock released those ticks: the rebuilt stations get them too"
        );
    }

    #[test]
    fn partitions_that_ended_before_the_first_record_are_not_idle_yet() {
        let mut clock: EventClock<u8, Rec> = EventClock::new(TICK, 0, 1000);
        clock.assign(&[0, 1]);
        clock.reached_end(&0, 0);
        clock.reached_end(&1, 0);
        assert_eq!(clock.holding_back(0).count(), 0, "both ended: idle");
        push_all(&mut clock, &[(0, 2)]);
        assert_eq!(
            clock.holding_back(0).collect::<Vec<_>>(),
            vec![&1],
            "the stream started after partition 1 ended: it was empty, not idle"
        );
        clock.reached_end(&1, 0);
        assert_eq!(clock.holding_back(0).count(), 0, "ended again since: idle");
        clock.assign(&[0, 1, 2]);
        clock.reached_end(&2, 0);
        push_all(&mut clock, &[(0, 3)]);
        assert_eq!(
            clock.holding_back(0).collect::<Vec<_>>(),
            vec![&2],
            "only the partition added since is judged again"
        );
        assert!(clock.tracks(&2) && !clock.tracks(&3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TICK: i64 = 300_000;
    const IDLE: i64 = 1_000;

    fn at(minutes: i64) -> EventTime {
        EventTime(minutes * 60_000)
    }

    /// Runs the clock until it waits, returning what it released.
    fn drain(clock: &mut EventClock<u8, &'static str>, now: i64) -> Vec<Release<&'static str>> {
        std::iter::from_fn(|| clock.next(now, 100)).collect()
    }

    #[test]
    fn a_partition_that_has_not_delivered_holds_everything_back() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1]);
        clock.push(&0, Some(at(1)), "a1");
        clock.push(&0, Some(at(600)), "a600");
        assert_eq!(drain(&mut clock, 0), vec![]);
        clock.push(&1, Some(at(2)), "b2");
        clock.push(&1, Some(at(7)), "b7");
        assert_eq!(
            drain(&mut clock, 0),
            vec![
                Release::Apply(vec!["a1", "b2"]),
                Release::Tick(at(5)),
                Release::Apply(vec!["b7"]),
            ],
            "a600 waits until partition 1 shows it has passed 10 min"
        );
    }

    #[test]
    fn after_a_tick_each_head_is_the_partitions_first_record_past_it() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1, 2]);
        clock.push(&0, Some(at(3)), "a3");
        clock.push(&0, Some(at(8)), "a8");
        clock.push(&1, Some(at(4)), "b4");
        clock.push(&1, Some(at(12)), "b12");
        clock.reached_end(&2, 0);
        assert_eq!(clock.next(IDLE, 10), Some(Release::Apply(vec!["a3", "b4"])));
        assert_eq!(clock.next(IDLE, 10), Some(Release::Tick(at(5))));
        assert_eq!(clock.head(&0), Some(&"a8"));
        assert_eq!(clock.head(&1), Some(&"b12"));
        assert_eq!(clock.head(&2), None, "an idle partition has no head");
        assert_eq!(clock.head(&3), None, "an unknown partition has no head");
    }

    #[test]
    fn the_partitions_holding_the_clock_back_are_the_empty_ones_not_yet_idle() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1, 2]);
        clock.push(&0, Some(at(3)), "a3");
        clock.reached_end(&1, 0);
        let holding = |clock: &EventClock<i32, &str>, now| -> Vec<i32> {
            clock.holding_back(now).copied().collect()
        };
        assert_eq!(holding(&clock, 0), vec![1, 2]);
        assert_eq!(holding(&clock, IDLE), vec![2], "partition 1 turned idle");
    }

    #[test]
    fn ended_partitions_can_be_taken_for_idle_at_once() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1, 2]);
        clock.push(&0, Some(at(3)), "a3");
        clock.push(&0, Some(at(8)), "a8");
        clock.reached_end(&1, 0);
        assert_eq!(drain(&mut clock, 0), vec![], "partition 1 ended just now");
        clock.idle_ended_partitions(0);
        assert_eq!(
            drain(&mut clock, 0),
            vec![],
            "partition 2 has not reported its end, so it still holds the clock back"
        );
        clock.reached_end(&2, 0);
        clock.idle_ended_partitions(0);
        assert_eq!(
            drain(&mut clock, 0),
            vec![
                Release::Apply(vec!["a3"]),
                Release::Tick(at(5)),
                Release::Apply(vec!["a8"]),
            ]
        );
        clock.push(&1, Some(at(20)), "b20");
        clock.reached_end(&0, 0);
        assert_eq!(
            drain(&mut clock, 0),
            vec![],
            "partition 0 reported its end just now"
        );
        clock.idle_ended_partitions(0);
        assert_eq!(
            drain(&mut clock, 0),
            vec![
                Release::Tick(at(10)),
                Release::Tick(at(15)),
                Release::Apply(vec!["b20"]),
            ]
        );
    }

    #[test]
    fn a_full_log_is_merged_tick_by_tick() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1]);
        for (partition, minute, name) in [
            (0, 3, "a3"),
            (0, 8, "a8"),
            (0, 14, "a14"),
            (1, 4, "b4"),
            (1, 5, "b5"),
            (1, 12, "b12"),
        ] {
            clock.push(&partition, Some(at(minute)), name);
        }
        clock.reached_end(&0, 0);
        clock.reached_end(&1, 0);
        assert_eq!(
            drain(&mut clock, 0),
            vec![
                Release::Apply(vec!["a3", "b4", "b5"]),
                Release::Tick(at(5)),
                Release::Apply(vec!["a8"]),
                Release::Tick(at(10)),
                Release::Apply(vec!["b12", "a14"]),
            ],
            "tick 15 waits: more records up to 15 min may still come"
        );
        assert!(!clock.caught_up(0), "the partitions are not idle yet");
        assert_eq!(drain(&mut clock, IDLE), vec![]);
        assert!(clock.caught_up(IDLE));
    }

    #[test]
    fn equal_event_times_go_to_the_partition_first_in_key_order() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1, 2]);
        for (partition, minute, name) in [
            (2, 1, "c1"),
            (2, 2, "c2"),
            (1, 1, "b1"),
            (1, 1, "b1 again"),
            (1, 3, "b3"),
            (0, 2, "a2"),
            (0, 2, "a2 again"),
            (0, 4, "a4"),
            (0, 9, "a9"),
            (1, 9, "b9"),
            (2, 9, "c9"),
        ] {
            clock.push(&partition, Some(at(minute)), name);
        }
        assert_eq!(
            drain(&mut clock, 0),
            vec![
                Release::Apply(vec![
                    "b1", "b1 again", "c1", "a2", "a2 again", "c2", "b3", "a4"
                ]),
                Release::Tick(at(5)),
                Release::Apply(vec!["a9", "b9", "c9"]),
            ]
        );
    }

    #[test]
    fn a_late_record_keeps_its_place_in_the_log() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0]);
        clock.push(&0, Some(at(190)), "on time");
        clock.push(&0, Some(at(10)), "three hours late");
        clock.push(&0, Some(at(196)), "next");
        clock.reached_end(&0, 0);
        let released = drain(&mut clock, IDLE);
        assert_eq!(
            released,
            vec![
                Release::Apply(vec!["on time", "three hours late"]),
                Release::Tick(at(190)),
                Release::Tick(at(195)),
                Release::Apply(vec!["next"]),
            ]
        );
    }

    #[test]
    fn records_without_event_time_pass_at_the_head_and_keep_log_order() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1]);
        clock.push(&0, None, "garbage");
        clock.push(&0, Some(at(3)), "a3");
        clock.push(&0, None, "garbage after a3");
        assert_eq!(drain(&mut clock, 0), vec![Release::Apply(vec!["garbage"])]);
        clock.push(&1, Some(at(20)), "b20");
        assert_eq!(
            drain(&mut clock, 0),
            vec![Release::Apply(vec!["a3", "garbage after a3"])],
            "partition 0 may still deliver records before 20 min"
        );
        clock.reached_end(&0, 0);
        assert_eq!(
            drain(&mut clock, IDLE),
            vec![
                Release::Tick(at(5)),
                Release::Tick(at(10)),
                Release::Tick(at(15)),
                Release::Apply(vec!["b20"]),
            ],
            "tick 20 waits for partition 1 to report its end"
        );
    }

    #[test]
    fn a_full_buffer_stops_waiting_for_silent_partitions() {
        let mut clock = EventClock::new(TICK, IDLE, 2);
        clock.assign(&[0, 1]);
        clock.push(&0, Some(at(1)), "a1");
        assert_eq!(drain(&mut clock, 0), vec![]);
        clock.push(&0, Some(at(6)), "a6");
        assert_eq!(drain(&mut clock, 0), vec![Release::Apply(vec!["a1"])]);
        clock.push(&0, Some(at(11)), "a11");
        assert_eq!(
            drain(&mut clock, 0),
            vec![Release::Tick(at(5)), Release::Apply(vec!["a6"])]
        );
    }

    #[test]
    fn revoked_partitions_return_their_buffered_records() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0, 1]);
        clock.push(&1, Some(at(1)), "b1");
        assert_eq!(clock.assign(&[0]), vec!["b1"]);
        assert_eq!(clock.buffered(), 0);
    }

    #[test]
    fn a_long_gap_jumps_instead_of_releasing_every_tick() {
        let mut clock = EventClock::new(TICK, IDLE, 1000);
        clock.assign(&[0]);
        clock.push(&0, Some(at(1)), "first");
        clock.push(&0, Some(at(60 * 24 * 30)), "a month later");
        clock.reached_end(&0, 0);
        assert_eq!(
            drain(&mut clock, IDLE),
            vec![
                Release::Apply(vec!["first"]),
                Release::Tick(at(5)),
                Release::Apply(vec!["a month later"]),
            ]
        );
    }

    proptest! {
        /// Whatever the interleaving of partitions, every record is applied once, each partition
        /// in log order, and a tick comes after every in-order record at or before it and before
        /// every record after it.
        #[test]
        fn ticks_separate_event_time_exactly(
            logs in proptest::collection::vec(
                proptest::collection::vec(0i64..300, 0..40), 1..5),
        ) {
            let logs: Vec<Vec<i64>> = logs
                .into_iter()
                .map(|mut minutes| { minutes.sort_unstable(); minutes })
                .collect();
            let mut clock: EventClock<usize, (usize, usize, i64)> = EventClock::new(TICK, IDLE, 10_000);
            let keys: Vec<usize> = (0..logs.len()).collect();
            clock.assign(&keys);
            for (partition, minutes) in logs.iter().enumerate() {
                for (index, minute) in minutes.iter().enumerate() {
                    clock.push(&partition, Some(at(*minute)), (partition, index, *minute));
                }
            }
            // Every partition read to its end (an end reported before the first record would
            // be judged again, as of a partition that was empty before the stream started).
            clock.all_reached_end(0);
            let mut applied = Vec::new();
            let mut last_tick: Option<i64> = None;
            while let Some(step) = clock.next(IDLE, 7) {
                match step {
                    Release::Apply(records) => {
                        for record in records {
                            if let Some(tick) = last_tick {
                                prop_assert!(record.2 * 60_000 > tick, "{record:?} after tick {tick}");
                            }
                            applied.push(record);
                        }
                    }
                    Release::Tick(tick) => {
                        prop_assert!(last_tick.is_none_or(|last| tick.millis() > last));
                        last_tick = Some(tick.millis());
                    }
                }
            }
            let total: usize = logs.iter().map(Vec::len).sum();
            prop_assert_eq!(applied.len(), total);
            for (partition, log) in logs.iter().enumerate() {
                let order: Vec<usize> = applied.iter().filter(|r| r.0 == partition).map(|r| r.1).collect();
                prop_assert_eq!(order, (0..log.len()).collect::<Vec<_>>());
            }
            prop_assert!(clock.caught_up(IDLE));
        }
    }
}
