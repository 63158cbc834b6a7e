//! Use cases: what the service does, written against ports and given `now`. The scheduled
//! functions, the HTTP handlers and the local runner all call these; none of them holds a rule
//! of its own.
//!
//! [`monitor`] (each window: evaluate, probe, alert, announce; D1-D10, A1-A5, P6, P9, P10),
//! [`inbound`] (file and deliver what SES received, Q1-Q9), [`delivery`] (routes in order),
//! [`queue`] (retry, drain, bounce, hold; Q3-Q6), [`user_notice`] (A6), [`auth`] (verifying
//! sign-in tokens).

pub mod auth;
pub mod delivery;
pub mod inbound;
pub mod monitor;
pub mod queue;
pub mod user_notice;
