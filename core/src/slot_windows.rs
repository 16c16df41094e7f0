//! Incremental sliding-window sums over fixed time slots: the engine under every rainfall window.
//!
//! Time is cut into slots of equal length (5 min for the operational windows, 10 min for the
//! benchmark workload). A ring buffer keeps one `(sum, reports)` cell per slot, and a running
//! sum and report count is kept per configured duration. Adding a value touches its cell and
//! each duration whose window covers the slot; advancing the head subtracts the slots that
//! leave each window. Nothing is ever rescanned, so an update costs O(number of durations).
//!
//! A window of `d` slots at head `h` covers slots `h - d + 1 ..= h`. Values may arrive out of
//! order as long as their slot is no older than `head - lateness_slots`.

use serde::Serialize;

/// One slot's content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SlotCell {
    /// Sum of the values that fell in the slot.
    sum: i32,
    /// Number of reports in the slot.
    reports: u16,
}

/// Error of [`SlotWindows::add`]: the slot is older than the allowed lateness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("slot {slot} is older than the oldest open slot {oldest_open}")]
pub struct SlotTooLate {
    /// The slot the value belonged to.
    pub slot: i64,
    /// The oldest slot that still accepts values.
    pub oldest_open: i64,
}

/// Sum and report count of one duration's window at the current head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WindowTotal {
    /// Sum of the values in the window.
    pub sum: i64,
    /// Number of reports in the window.
    pub reports: u32,
}

/// Sliding sums for several durations over one ring of slots.
#[derive(Debug, Clone)]
pub struct SlotWindows {
    durations: Box<[u32]>,
    lateness_slots: u32,
    ring: Box<[SlotCell]>,
    mask: usize,
    head: Option<i64>,
    totals: Box<[WindowTotal]>,
}

impl SlotWindows {
    /// Creates windows of the given lengths (in slots, each ≥ 1) that accept values up to
    /// `lateness_slots` behind the newest slot.
    ///
    /// # Panics
    /// Panics when `durations` is empty or holds a zero; both are configuration bugs that
    /// config validation rejects first.
    pub fn new(durations: &[u32], lateness_slots: u32) -> Self {
        assert!(
            !durations.is_empty(),
            "at least one window duration is required"
        );
        assert!(
            durations.iter().all(|&d| d > 0),
            "window durations must be positive"
        );
        let longest = durations.iter().copied().max().unwrap_or(1);
        let capacity = (longest.max(lateness_slots) as usize + 1).next_power_of_two();
        Self {
            durations: durations.into(),
            lateness_slots,
            ring: vec![SlotCell::default(); capacity].into_boxed_slice(),
            mask: capacity - 1,
            head: None,
            totals: vec![WindowTotal::default(); durations.len()].into_boxed_slice(),
        }
    }

    /// Returns the newest slot seen or advanced to, if any.
    pub fn head(&self) -> Option<i64> {
        self.head
    }

    /// Returns the window lengths in slots, in configuration order.
    pub fn durations(&self) -> &[u32] {
        &self.durations
    }

    /// Returns the totals of each duration's window at the current head, in configuration order.
    pub fn totals(&self) -> &[WindowTotal] {
        &self.totals
    }

    /// Returns the oldest slot that still accepts values.
    pub fn oldest_open_slot(&self) -> Option<i64> {
        self.head.map(|head| head - i64::from(self.lateness_slots))
    }

    /// Adds `value` to `slot`, advancing the head first when the slot is newer.
    ///
    /// # Errors
    /// Returns [`SlotTooLate`] when the slot is older than the allowed lateness.
    #[inline]
    pub fn add(&mut self, slot: i64, value: i32) -> Result<(), SlotTooLate> {
        let head = match self.head {
            Some(head) if slot > head => {
                self.advance_to(slot);
                slot
            }
            Some(head) => {
                let oldest_open = head - i64::from(self.lateness_slots);
                if slot < oldest_open {
                    return Err(SlotTooLate { slot, oldest_open });
                }
                head
            }
            None => {
                self.head = Some(slot);
                slot
            }
        };
        let cell = &mut self.ring[(slot as usize) & self.mask];
        cell.sum += value;
        cell.reports += 1;
        let age = head - slot;
        for (total, &duration) in self.totals.iter_mut().zip(self.durations.iter()) {
            if age < i64::from(duration) {
                total.sum += i64::from(value);
                total.reports += 1;
            }
        }
        Ok(())
    }

    /// Moves the head forward to `new_head` (no-op when not newer).
    pub fn advance_to(&mut self, new_head: i64) {
        self.advance_visiting(new_head, |_, _| {});
    }

    /// Moves the head forward to `new_head`, calling `visit(slot, totals)` for the old head and
    /// every slot stepped over before the head leaves it, i.e. once for every window end that
    /// becomes final. Slots where every window is empty are skipped in one jump.
    pub fn advance_visiting(&mut self, new_head: i64, mut visit: impl FnMut(i64, &[WindowTotal])) {
        let Some(mut head) = self.head else {
            self.head = Some(new_head);
            return;
        };
        while head < new_head {
            if self.totals.iter().all(|total| total.reports == 0) {
                // All windows are empty: clear the cells the jump reuses and land on the target.
                let steps = usize::try_from(new_head - head).unwrap_or(usize::MAX);
                if steps > self.mask {
                    self.ring.fill(SlotCell::default());
                } else {
                    for slot in head + 1..=new_head {
                        self.ring[(slot as usize) & self.mask] = SlotCell::default();
                    }
                }
                head = new_head;
                break;
            }
            visit(head, &self.totals);
            let next = head + 1;
            for (total, &duration) in self.totals.iter_mut().zip(self.durations.iter()) {
                let leaving = self.ring[((next - i64::from(duration)) as usize) & self.mask];
                total.sum -= i64::from(leaving.sum);
                total.reports -= u32::from(leaving.reports);
            }
            // The cell `next` reuses held slot `next - capacity`: outside every window and too late.
            self.ring[(next as usize) & self.mask] = SlotCell::default();
            head = next;
        }
        self.head = Some(head.max(new_head));
    }

    /// Returns the bytes of state this structure holds, for sizing deployments.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.ring.len() * std::mem::size_of::<SlotCell>()
            + self.totals.len() * std::mem::size_of::<WindowTotal>()
            + self.durations.len() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Brute force: the sum and count of every value whose slot lies in `head - d + 1 ..= head`.
    fn brute(values: &[(i64, i32)], head: i64, duration: u32) -> WindowTotal {
        let mut total = WindowTotal::default();
        for &(slot, value) in values {
            if slot <= head && slot > head - i64::from(duration) {
                total.sum += i64::from(value);
                total.reports += 1;
            }
        }
        total
    }

    #[test]
    fn sums_each_duration_over_its_slots() {
        let mut windows = SlotWindows::new(&[1, 3, 6], 0);
        for slot in 0..10 {
            windows.add(slot, 10).unwrap();
        }
        assert_eq!(
            windows.totals()[0],
            WindowTotal {
                sum: 10,
                reports: 1
            }
        );
        assert_eq!(
            windows.totals()[1],
            WindowTotal {
                sum: 30,
                reports: 3
            }
        );
        assert_eq!(
            windows.totals()[2],
            WindowTotal {
                sum: 60,
                reports: 6
            }
        );
        windows.advance_to(12);
        assert_eq!(windows.totals()[1], WindowTotal::default());
        assert_eq!(
            windows.totals()[2],
            WindowTotal {
                sum: 30,
                reports: 3
            }
        );
    }

    #[test]
    fn rejects_values_older_than_the_lateness() {
        let mut windows = SlotWindows::new(&[6], 2);
        windows.add(10, 1).unwrap();
        windows.add(8, 1).unwrap();
        assert_eq!(
            windows.add(7, 1),
            Err(SlotTooLate {
                slot: 7,
                oldest_open: 8
            })
        );
        assert_eq!(windows.totals()[0].sum, 2);
    }

    #[test]
    fn visits_every_final_window_end_including_the_tail() {
        let mut windows = SlotWindows::new(&[2], 0);
        windows.add(5, 3).unwrap();
        windows.add(6, 4).unwrap();
        let mut seen = Vec::new();
        windows.advance_visiting(100, |slot, totals| seen.push((slot, totals[0].sum)));
        assert_eq!(seen, vec![(6, 7), (7, 4)]);
        assert_eq!(windows.head(), Some(100));
    }

    #[test]
    fn a_long_silence_resets_the_ring() {
        let mut windows = SlotWindows::new(&[3], 1);
        windows.add(0, 5).unwrap();
        windows.advance_to(10_000);
        windows.add(10_000, 1).unwrap();
        assert_eq!(windows.totals()[0], WindowTotal { sum: 1, reports: 1 });
    }

    proptest! {
        /// Window totals equal a brute-force recomputation under any arrival order within the lateness.
        #[test]
        fn matches_brute_force_under_out_of_order_arrival(
            raw in proptest::collection::vec((0i64..60, 0i32..50, 0u32..4), 1..200),
        ) {
            let lateness = 4u32;
            let durations = [1u32, 2, 6, 12, 36];
            let mut windows = SlotWindows::new(&durations, lateness);
            let mut accepted = Vec::new();
            let mut newest = i64::MIN;
            for (slot, value, back) in raw {
                // Arrivals drift back by up to `back` slots behind the newest seen.
                let slot = if newest == i64::MIN { slot } else { (newest - i64::from(back)).max(slot.min(newest + 3)) };
                match windows.add(slot, value) {
                    Ok(()) => accepted.push((slot, value)),
                    Err(late) => prop_assert!(late.slot < late.oldest_open),
                }
                newest = newest.max(slot);
                let head = windows.head().unwrap();
                for (index, &duration) in durations.iter().enumerate() {
                    prop_assert_eq!(windows.totals()[index], brute(&accepted, head, duration));
                }
            }
        }
    }
}
