//! The downstream half of event time across nodes: items re-keyed through an internal topic are
//! held per evaluation tick until every upstream source partition has reported that it finished
//! the tick, then released tick by tick, in order.
//!
//! Upstream, each node releases ticks over the observation partitions it owns (see
//! [`crate::event_clock`]); after writing a tick's items it writes a marker "these source
//! partitions reached tick T" to every internal partition. Downstream, tick `T` is complete once
//! every source partition has a marker at or after `T`. Items of a tick already released are
//! late copies (an upstream node re-deriving them while it rebuilds) and are refused.

use std::collections::BTreeMap;

use crate::time::EventTime;

/// Buffers items per tick until every source has passed the tick.
#[derive(Debug)]
pub struct TickGate<S, T> {
    /// Every upstream source and the latest tick it reported finished.
    sources: BTreeMap<S, Option<EventTime>>,
    /// Items per tick not yet released; a tick announced by a marker is here even when empty.
    pending: BTreeMap<EventTime, Vec<T>>,
    released: Option<EventTime>,
}

impl<S: Ord + Clone, T> TickGate<S, T> {
    /// Creates a gate over `sources`; no tick is complete until each of them reports.
    pub fn new(sources: impl IntoIterator<Item = S>) -> Self {
        Self {
            sources: sources.into_iter().map(|s| (s, None)).collect(),
            pending: BTreeMap::new(),
            released: None,
        }
    }

    /// Records that `source` finished `tick`. Returns false for a source the gate does not
    /// know (it cannot hold ticks back, so its markers are ignored).
    pub fn mark(&mut self, source: &S, tick: EventTime) -> bool {
        let Some(latest) = self.sources.get_mut(source) else {
            return false;
        };
        if latest.is_none_or(|t| tick > t) {
            *latest = Some(tick);
        }
        if self.released.is_none_or(|done| tick > done) {
            self.pending.entry(tick).or_default();
        }
        true
    }

    /// Holds `item` for `tick`. Returns false, dropping it, when that tick is already released.
    pub fn push(&mut self, tick: EventTime, item: T) -> bool {
        if self.released.is_some_and(|done| tick <= done) {
            return false;
        }
        self.pending.entry(tick).or_default().push(item);
        true
    }

    /// The latest tick every source has finished, if every source has reported.
    pub fn complete_through(&self) -> Option<EventTime> {
        self.sources
            .values()
            .try_fold(None::<EventTime>, |low, t| {
                t.map(|t| Some(low.map_or(t, |low| low.min(t))))
            })
            .flatten()
    }

    /// Releases every complete tick, oldest first, with its items in arrival order.
    pub fn release(&mut self) -> Vec<(EventTime, Vec<T>)> {
        let Some(through) = self.complete_through() else {
            return Vec::new();
        };
        let later = self.pending.split_off(&through.plus_ms(1));
        let ready = std::mem::replace(&mut self.pending, later);
        if let Some((&last, _)) = ready.last_key_value() {
            self.released = Some(self.released.map_or(last, |done| done.max(last)));
        }
        ready.into_iter().collect()
    }

    /// Takes out the items of the tick after the last released one (`tick_ms` later) that
    /// `early` selects: items that may be used before their tick completes, as an upstream node
    /// applies readings as soon as the previous tick is done.
    pub fn take_early(&mut self, tick_ms: i64, mut early: impl FnMut(&T) -> bool) -> Vec<T> {
        let Some(next) = self.released.map(|done| done.plus_ms(tick_ms)) else {
            return Vec::new();
        };
        let Some(items) = self.pending.get_mut(&next) else {
            return Vec::new();
        };
        let (taken, kept) = std::mem::take(items)
            .into_iter()
            .partition(|item| early(item));
        *items = kept;
        taken
    }

    /// The last tick released.
    pub fn released(&self) -> Option<EventTime> {
        self.released
    }

    /// Items waiting for their tick.
    pub fn buffered(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn t(minutes: i64) -> EventTime {
        EventTime(minutes * MIN)
    }

    #[test]
    fn a_tick_waits_for_every_source() {
        let mut gate: TickGate<&str, u32> = TickGate::new(["p0", "p1"]);
        assert!(gate.push(t(5), 1));
        assert!(gate.mark(&"p0", t(5)));
        assert!(gate.release().is_empty(), "p1 has not finished tick 5");
        assert!(gate.mark(&"p1", t(5)));
        assert_eq!(gate.release(), vec![(t(5), vec![1])]);
        assert_eq!(gate.released(), Some(t(5)));
    }

    #[test]
    fn ticks_come_out_in_order_with_empty_ticks_included() {
        let mut gate: TickGate<&str, &str> = TickGate::new(["a", "b"]);
        // Source a runs three ticks ahead of b.
        for tick in [5, 10, 15] {
            gate.mark(&"a", t(tick));
        }
        gate.push(t(15), "a@15");
        gate.push(t(5), "a@5");
        gate.mark(&"b", t(5));
        gate.push(t(10), "b@10");
        assert_eq!(gate.release(), vec![(t(5), vec!["a@5"])]);
        gate.mark(&"b", t(10));
        gate.mark(&"b", t(15));
        assert_eq!(
            gate.release(),
            vec![(t(10), vec!["b@10"]), (t(15), vec!["a@15"])]
        );
        assert_eq!(gate.buffered(), 0);
    }

    #[test]
    fn late_copies_and_old_markers_change_nothing() {
        let mut gate: TickGate<u8, u8> = TickGate::new([0]);
        gate.mark(&0, t(10));
        gate.push(t(10), 1);
        assert_eq!(gate.release().len(), 1);
        assert!(!gate.push(t(10), 1), "a copy of a released tick is refused");
        assert!(!gate.push(t(5), 2));
        gate.mark(&0, t(5));
        assert!(
            gate.release().is_empty(),
            "a rebuilding source re-announcing old ticks"
        );
        assert_eq!(gate.complete_through(), Some(t(10)));
    }

    #[test]
    fn early_items_of_the_next_tick_come_out_once_the_previous_tick_is_released() {
        let mut gate: TickGate<u8, (char, u8)> = TickGate::new([0]);
        gate.push(t(5), ('r', 1));
        assert!(
            gate.take_early(5 * MIN, |_| true).is_empty(),
            "nothing released yet"
        );
        gate.mark(&0, t(5));
        gate.release();
        gate.push(t(10), ('r', 2));
        gate.push(t(10), ('s', 3));
        gate.push(t(15), ('r', 4));
        assert_eq!(
            gate.take_early(5 * MIN, |(kind, _)| *kind == 'r'),
            vec![('r', 2)]
        );
        gate.mark(&0, t(10));
        assert_eq!(gate.release(), vec![(t(10), vec![('s', 3)])]);
    }

    #[test]
    fn unknown_sources_are_ignored() {
        let mut gate: TickGate<u8, u8> = TickGate::new([0]);
        assert!(!gate.mark(&9, t(5)));
        assert_eq!(gate.complete_through(), None);
        gate.mark(&0, t(5));
        assert_eq!(gate.complete_through(), Some(t(5)));
    }
}
