//! Requests made and capacity consumed by one [`super::DynamoStore`] (and its clones), for the
//! benchmarks (`tests/benches/*.rs` price the request pattern from them) and for logs. Every
//! request helper of the adapter counts what it sends here, so no port implementation counts
//! by hand.

use aws_sdk_dynamodb::types::ConsumedCapacity;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by a store's clones.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    /// Thousandths of a capacity unit.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

/// A snapshot of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl Metrics {
    /// Counts a write (or a request that may write) and the capacity it reports.
    pub(super) fn request(&self, consumed: &[ConsumedCapacity]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let (r, w, t) = (
                c.read_capacity_units.unwrap_or(0.0),
                c.write_capacity_units.unwrap_or(0.0),
                c.capacity_units.unwrap_or(0.0),
            );
            // Some answers only carry the total: count it as writes when no split is given for a write.
            let (r, w) = if r == 0.0 && w == 0.0 {
                (0.0, t)
            } else {
                (r, w)
            };
            self.read_milli
                .fetch_add((r * 1000.0).round() as u64, Ordering::Relaxed);
            self.write_milli
                .fetch_add((w * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    /// Counts a read and the capacity it reports.
    pub(super) fn read_request(&self, consumed: &[ConsumedCapacity]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let r = c.read_capacity_units.or(c.capacity_units).unwrap_or(0.0);
            self.read_milli
                .fetch_add((r * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            read_units: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}
