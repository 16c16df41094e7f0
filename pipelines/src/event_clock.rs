//! Event-time watermark across partitions, and the evaluation ticks it releases.
//!
//! Each assigned partition's progress is the newest event time applied from it. The watermark
//! is the slowest progress among partitions that still have records to deliver, so a partition
//! that is behind holds everyone back and its records are not late. A partition that was empty
//! when assigned is idle (no stations report on it) until it delivers. Known limit: a partition
//! whose stations all fall silent holds the watermark at their last report; lag-based idleness
//! is the next step.

use std::collections::BTreeMap;

use tianshan_core::time::EventTime;

/// At most this many ticks are released at once (7 days of 5-min ticks); beyond that the
/// clock jumps, because a gap that long means a new stream, not a slow one.
const MAX_TICKS_AT_ONCE: i64 = 7 * 24 * 12;

#[derive(Debug, Clone, Copy, Default)]
struct PartitionProgress {
    newest: Option<EventTime>,
    idle: bool,
}

/// Watermark and tick bookkeeping of one source.
#[derive(Debug)]
pub struct EventClock {
    tick_ms: i64,
    partitions: BTreeMap<(String, i32), PartitionProgress>,
    last_tick: Option<EventTime>,
}

impl EventClock {
    /// Creates a clock releasing ticks every `tick_ms` of event time.
    pub fn new(tick_ms: i64) -> Self {
        Self {
            tick_ms,
            partitions: BTreeMap::new(),
            last_tick: None,
        }
    }

    /// Makes the tracked partitions equal to the assignment (`(partition, empty when assigned)`):
    /// new non-empty ones hold the watermark until they deliver, empty ones are idle until they
    /// deliver, revoked ones are forgotten.
    pub fn sync_assignment<'a>(
        &mut self,
        assigned: impl Iterator<Item = (&'a (String, i32), bool)>,
    ) {
        let assigned: Vec<(&(String, i32), bool)> = assigned.collect();
        self.partitions
            .retain(|key, _| assigned.iter().any(|(k, _)| *k == key));
        for (key, empty) in assigned {
            self.partitions
                .entry(key.clone())
                .or_insert(PartitionProgress {
                    newest: None,
                    idle: empty,
                });
        }
    }

    /// Records that a partition delivered records (it is active).
    pub fn delivered(&mut self, topic: &str, partition: i32) {
        self.partitions
            .entry((topic.to_string(), partition))
            .or_default()
            .idle = false;
    }

    /// Records an applied observation's event time.
    pub fn observe(&mut self, topic: &str, partition: i32, event_time: EventTime) {
        let progress = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_default();
        progress.newest = Some(progress.newest.map_or(event_time, |t| t.max(event_time)));
    }

    /// Returns the current watermark, or `None` while an active partition has no progress yet.
    pub fn watermark(&self) -> Option<EventTime> {
        let mut active = self.partitions.values().filter(|p| !p.idle).peekable();
        if active.peek().is_none() {
            return self.partitions.values().filter_map(|p| p.newest).max();
        }
        active
            .map(|p| p.newest)
            .try_fold(None, |slowest: Option<EventTime>, newest| {
                newest.map(|t| Some(slowest.map_or(t, |s| s.min(t))))
            })?
    }

    /// Returns the ticks not yet released up to and including `watermark`, oldest first.
    pub fn ticks_through(&mut self, watermark: EventTime) -> Vec<EventTime> {
        let newest = watermark.floor_to(self.tick_ms);
        let first = match self.last_tick {
            Some(last) if newest <= last => return Vec::new(),
            Some(last) if (newest.millis() - last.millis()) / self.tick_ms <= MAX_TICKS_AT_ONCE => {
                last.plus_ms(self.tick_ms)
            }
            _ => newest,
        };
        self.last_tick = Some(newest);
        (0..)
            .map(|i| first.plus_ms(i * self.tick_ms))
            .take_while(|t| *t <= newest)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: i64 = 300_000;

    fn key(partition: i32) -> (String, i32) {
        ("obs".to_string(), partition)
    }

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let mut clock = EventClock::new(TICK);
        let (p0, p1) = (key(0), key(1));
        clock.sync_assignment([(&p0, false), (&p1, false)].into_iter());
        clock.observe("obs", 0, EventTime(10 * TICK));
        assert_eq!(clock.watermark(), None, "partition 1 has not delivered yet");
        clock.observe("obs", 1, EventTime(7 * TICK + 5));
        assert_eq!(clock.watermark(), Some(EventTime(7 * TICK + 5)));
    }

    #[test]
    fn empty_partitions_hold_nothing_until_they_deliver() {
        let mut clock = EventClock::new(TICK);
        let (p0, p1) = (key(0), key(1));
        clock.sync_assignment([(&p0, false), (&p1, true)].into_iter());
        clock.observe("obs", 0, EventTime(10 * TICK));
        assert_eq!(clock.watermark(), Some(EventTime(10 * TICK)));
        clock.delivered("obs", 1);
        assert_eq!(
            clock.watermark(),
            None,
            "partition 1 delivered records not applied yet"
        );
    }

    #[test]
    fn releases_each_tick_once_in_order() {
        let mut clock = EventClock::new(TICK);
        assert_eq!(
            clock.ticks_through(EventTime(3 * TICK + 1)),
            vec![EventTime(3 * TICK)]
        );
        assert_eq!(
            clock.ticks_through(EventTime(3 * TICK + 9)),
            Vec::<EventTime>::new()
        );
        assert_eq!(
            clock.ticks_through(EventTime(5 * TICK)),
            vec![EventTime(4 * TICK), EventTime(5 * TICK)]
        );
    }
}
