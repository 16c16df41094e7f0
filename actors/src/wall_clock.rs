//! The clock people's deadlines run on: acknowledgement windows and auto-approval are wall-clock
//! time, not the event time of the observations. It reads tokio's clock, so tests on a paused
//! runtime move it with `tokio::time::advance` and never wait.

use std::time::{SystemTime, UNIX_EPOCH};

use tianshan_core::time::EventTime;
use tokio::time::Instant;

/// Wall-clock time as [`EventTime`], anchored once and advanced by tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    anchor_time: EventTime,
    anchor_instant: Instant,
}

impl WallClock {
    /// A clock reading the system time now, then following tokio's clock.
    pub fn system() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        Self::starting_at(EventTime(i64::try_from(since_epoch).unwrap_or(i64::MAX)))
    }

    /// A clock reading `start` now (tests pick a fixed start).
    pub fn starting_at(start: EventTime) -> Self {
        Self {
            anchor_time: start,
            anchor_instant: Instant::now(),
        }
    }

    /// Returns the current time.
    pub fn now(&self) -> EventTime {
        let elapsed = self.anchor_instant.elapsed().as_millis();
        self.anchor_time
            .plus_ms(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// Returns how long from now until `at` (zero if it has passed).
    pub fn until(&self, at: EventTime) -> std::time::Duration {
        let ms = (at.millis() - self.now().millis()).max(0);
        std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}
