//! Use cases: what the service does, written against ports and given `now`. The scheduled
//! functions, the HTTP handlers and the local runner all call these; none of them holds a rule
//! of its own.
//!
//! [`continuity`] (actions with their audit and bus event, automatic activation, announcements;
//! P2-P10), [`monitor`] (each window: evaluate, probe, alert, announce; D1-D10, A1-A5),
//! [`inbound`] (file and deliver what SES received, Q1-Q9), [`delivery`] (routes in order),
//! [`queue`] (retry, drain, bounce, hold; Q3-Q6), [`user_notice`] (A6), [`auth`] (verifying
//! sign-in tokens).

pub mod auth;
pub mod continuity;
pub mod delivery;
pub mod inbound;
pub mod monitor;
pub mod queue;
pub mod user_notice;
