//! What a delivery to the organisation's server over its routes came to (Q2, D2): per
//! recipient, and over all routes.

use crate::domain::monitoring::DeliveryOutcome;

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
