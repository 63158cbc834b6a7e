//! What a delivery to the organisation's server over its routes came to (Q2, D2): per
//! recipient, and over all routes.

use crate::domain::monitoring::DeliveryOutcome;
use std::time::{Duration, Instant};

/// The whole time one message's delivery may take over all its routes: `routes x
/// delivery.timeout_secs` must fit in it (checked with the configuration), so that a server
/// that hangs at every step still lets each route be tried, its failure be recorded (D2) and
/// the message be requeued well inside the inbound function's 300 s and the queue's 240 s.
pub const DELIVERY_BUDGET_SECS: u32 = 120;

/// Kept back from an invocation's remaining time for what follows a delivery: recording the
/// outcome, requeueing or dequeueing, bouncing (each a few requests that may be retried).
pub const AFTER_DELIVERY_MARGIN: Duration = Duration::from_secs(15);

/// A route is not started with less than this left: it could not finish its exchange.
pub const MIN_ROUTE_TIME: Duration = Duration::from_secs(1);

/// The instant by which a piece of work must be over: the invocation's deadline less what
/// must still happen after it. `Deadline::NONE` is unbounded (a caller with no deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline(None);

    /// Work must be over at `at`.
    pub fn at(at: Instant) -> Self {
        Deadline(Some(at))
    }

    /// `left` from `now`.
    pub fn within(now: Instant, left: Duration) -> Self {
        Deadline(Some(now + left))
    }

    /// The same deadline, `margin` earlier.
    pub fn less(self, margin: Duration) -> Self {
        Deadline(self.0.map(|d| d.checked_sub(margin).unwrap_or(d)))
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Self {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (a, b) => Deadline(a.or(b)),
        }
    }

    /// Time left at `now` (`None`: unbounded).
    pub fn left(&self, now: Instant) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(now))
    }

    /// Whether a piece of work needing `need` can still start at `now`.
    pub fn allows(&self, now: Instant, need: Duration) -> bool {
        self.left(now).is_none_or(|l| l >= need)
    }

    /// The timeout for one step configured as `configured`: no longer than the time left.
    pub fn step(&self, now: Instant, configured: Duration) -> Duration {
        self.left(now).map_or(configured, |l| l.min(configured))
    }
}

/// What one route answered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    /// The server answered 250 to the end of DATA for this recipient.
    Delivered,
    /// A 5xx (at RCPT, MAIL or DATA): final for this recipient.
    Rejected(String),
    /// A 4xx, a timeout, a dropped connection: try another route, or later.
    Deferred(String),
}

/// What became of one delivery over all routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: Vec<String>,
    /// Recipients refused for good, with the server's answer.
    pub rejected: Vec<(String, String)>,
    /// Recipients no route took: they stay queued.
    pub pending: Vec<String>,
    /// Why each route fell short (`route 1 (host:port): reason`), for the queue's `last_error`.
    pub errors: Vec<String>,
    /// Routes actually tried: none when the invocation's time ran out first (then nothing is
    /// known of the server, and nothing is recorded for the inbound check).
    pub routes_tried: usize,
}

impl DeliveryReport {
    /// The inbound check's view (D2): the delivery failed only when no route gave any final
    /// answer (every route failed). A server that took or refused some recipients is up.
    pub fn outcome(&self) -> DeliveryOutcome {
        if !self.pending.is_empty() && self.delivered.is_empty() && self.rejected.is_empty() {
            DeliveryOutcome::AllRoutesFailed
        } else {
            DeliveryOutcome::Accepted
        }
    }

    /// Nothing left to deliver.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// The last route error, for display.
    pub fn last_error(&self) -> Option<&str> {
        self.errors.last().map(String::as_str)
    }
}
