//! The stop flag of a source's polling threads, raised by `stop` or when the source is dropped:
//! a node dropped without being stopped (a failed start, a panicking caller) must not leave
//! threads polling Kafka forever, which would also hold up its runtime's shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Owned by a source; its threads watch [`StopSignal::flag`].
#[derive(Debug, Default)]
pub(crate) struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// The flag the threads poll; it turns true once and stays so.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// Tells the threads to finish.
    pub(crate) fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        self.raise();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_signal_raises_the_flag_its_threads_watch() {
        let signal = StopSignal::default();
        let flag = signal.flag();
        assert!(!flag.load(Ordering::Relaxed));
        drop(signal);
        assert!(flag.load(Ordering::Relaxed));
    }
}
