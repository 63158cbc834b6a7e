//! Clocks: the machine's, and a [`VirtualClock`] that tests and demos advance by hand.

use crate::ports::clock::Clock;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; clones share one time.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<Mutex<DateTime<Utc>>>);

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        VirtualClock(Arc::new(Mutex::new(start)))
    }

    /// Sets the time (it may go backwards; callers decide).
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    pub fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *g += by;
        *g
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
