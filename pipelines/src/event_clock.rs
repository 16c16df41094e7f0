//! Event-time watermark across partitions, and the evaluation ticks it releases.
//!
//! Each partition's progress is the newest event time applied from it. The watermark is the
//! slowest progress among partitions that delivered records recently, so a partition that is
//! behind holds everyone back and its records are not late; a partition with nothing to deliver
//! (caught up, or no stations on it) stops holding the others back after `idle_after`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tianshan_core::time::EventTime;

/// At most this many ticks are released at once (7 days of 5-min ticks); beyond that the
/// clock jumps, because a gap that long means a new stream, not a slow one.
const MAX_TICKS_AT_ONCE: i64 = 7 * 24 * 12;

#[derive(Debug, Clone, Copy)]
struct PartitionProgress {
    newest: Option<EventTime>,
    last_delivery: Instant,
}

/// Watermark and tick bookkeeping of one source.
#[derive(Debug)]
pub struct EventClock {
    tick_ms: i64,
    idle_after: Duration,
    partitions: BTreeMap<(String, i32), PartitionProgress>,
    last_tick: Option<EventTime>,
}

impl EventClock {
    /// Creates a clock releasing ticks every `tick_ms` of event time.
    pub fn new(tick_ms: i64) -> Self {
        Self { tick_ms, idle_after: Duration::from_secs(2), partitions: BTreeMap::new(), last_tick: None }
    }

    /// Records that a partition delivered records at `now` (wall clock, for idleness only).
    pub fn touch(&mut self, topic: &str, partition: i32, now: Instant) {
        self.partitions
            .entry((topic.to_string(), partition))
            .and_modify(|p| p.last_delivery = now)
            .or_insert(PartitionProgress { newest: None, last_delivery: now });
    }

    /// Records an applied observation's event time.
    pub fn observe(&mut self, topic: &str, partition: i32, event_time: EventTime, now: Instant) {
        let progress = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert(PartitionProgress { newest: None, last_delivery: now });
        progress.newest = Some(progress.newest.map_or(event_time, |t| t.max(event_time)));
        progress.last_delivery = now;
    }

    /// Returns the current watermark, if any partition has progress.
    pub fn watermark(&self, now: Instant) -> Option<EventTime> {
        let active = self
            .partitions
            .values()
            .filter(|p| now.duration_since(p.last_delivery) < self.idle_after)
            .filter_map(|p| p.newest)
            .min();
        active.or_else(|| self.partitions.values().filter_map(|p| p.newest).max())
    }

    /// Returns the ticks not yet released up to and including `watermark`, oldest first.
    pub fn ticks_through(&mut self, watermark: EventTime) -> Vec<EventTime> {
        let newest = watermark.floor_to(self.tick_ms);
        let first = match self.last_tick {
            Some(last) if newest <= last => return Vec::new(),
            Some(last) if (newest.millis() - last.millis()) / self.tick_ms <= MAX_TICKS_AT_ONCE => last.plus_ms(self.tick_ms),
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

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let now = Instant::now();
        let mut clock = EventClock::new(TICK);
        clock.observe("obs", 0, EventTime(10 * TICK), now);
        clock.observe("obs", 1, EventTime(7 * TICK + 5), now);
        assert_eq!(clock.watermark(now), Some(EventTime(7 * TICK + 5)));
        // Partition 1 goes quiet: after the idle timeout it no longer holds the others back.
        let later = now + Duration::from_secs(3);
        clock.touch("obs", 0, later);
        assert_eq!(clock.watermark(later), Some(EventTime(10 * TICK)));
    }

    #[test]
    fn releases_each_tick_once_in_order() {
        let mut clock = EventClock::new(TICK);
        assert_eq!(clock.ticks_through(EventTime(3 * TICK + 1)), vec![EventTime(3 * TICK)]);
        assert_eq!(clock.ticks_through(EventTime(3 * TICK + 9)), Vec::<EventTime>::new());
        assert_eq!(clock.ticks_through(EventTime(5 * TICK)), vec![EventTime(4 * TICK), EventTime(5 * TICK)]);
    }
}
