//! Two-minute windows aligned to the Unix epoch (D1).
//!
//! Window `n` covers `[n * 120 s, (n + 1) * 120 s)`. Every schedule, key and judgement in the
//! monitor speaks in window numbers, so that "the window that just ended" means the same thing to
//! every concurrent or repeated run, whatever the clock of the machine that runs it.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Length of one window, in seconds.
pub const WINDOW_SECS: i64 = 120;

/// A window number: the count of whole windows since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Window(pub i64);

impl Window {
    /// The window that contains `t`.
    pub fn containing(t: DateTime<Utc>) -> Self {
        Window(t.timestamp().div_euclid(WINDOW_SECS))
    }

    /// The window that ended most recently at `t`: the one a run scheduled at a window start evaluates.
    pub fn just_ended(t: DateTime<Utc>) -> Self {
        Self::containing(t).prev()
    }

    /// First instant of the window.
    pub fn start(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0 * WINDOW_SECS, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// First instant after the window (the next window's start).
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    pub fn next(self) -> Self {
        Window(self.0 + 1)
    }

    pub fn prev(self) -> Self {
        Window(self.0 - 1)
    }

    /// Fixed-width decimal form used in sort keys, so that lexical order is numeric order.
    pub fn key(self) -> String {
        format!("{:012}", self.0)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_are_aligned_to_the_epoch() {
        assert_eq!(Window::containing(t("1970-01-01T00:00:00Z")), Window(0));
        assert_eq!(Window::containing(t("1970-01-01T00:01:59Z")), Window(0));
        assert_eq!(Window::containing(t("1970-01-01T00:02:00Z")), Window(1));
        let w = Window::containing(t("2026-11-22T10:03:07Z"));
        assert_eq!(w.start(), t("2026-11-22T10:02:00Z"));
        assert_eq!(w.end(), t("2026-11-22T10:04:00Z"));
        assert_eq!(Window::just_ended(t("2026-11-22T10:04:00Z")), w);
    }

    #[test]
    fn keys_sort_numerically() {
        assert!(Window(99).key() < Window(100).key());
        assert_eq!(Window(14_769_000).key(), "000014769000");
    }
}
