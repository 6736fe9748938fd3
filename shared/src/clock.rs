//! The one clock of the service, in epoch seconds. Tests move it forward instead of editing
//! stored records ("as if an hour had passed"); in Lambda it is the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system clock (0 but in tests).
    skew: Arc<AtomicU64>,
}

impl Clock {
    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        system.saturating_add(self.skew.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every copy of it) `seconds` into the future.
    pub fn advance(&self, seconds: u64) {
        self.skew.fetch_add(seconds, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_share_the_advance() {
        let clock = Clock::default();
        let copy = clock.clone();
        let before = clock.now();
        copy.advance(3600);
        assert!(clock.now() >= before + 3600);
    }
}
