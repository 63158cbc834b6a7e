//! Where "now" comes from. Use cases take `now` as a parameter; the edges (handlers, the local
//! runner, scheduled runs) ask a [`Clock`]. The machine's clock and a virtual one are in
//! `adapters::clock`.

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}
