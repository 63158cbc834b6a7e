//! Shared library of the email continuity functions.
//!
//! Domain modules (no AWS imports): [`window`], [`config`], [`counter`], [`probe`], [`clock`].
//! Orchestration: [`monitor`]. Adapters: [`store`] (DynamoDB), [`secrets`] (Secrets Manager),
//! [`smtp`] (probe submission), [`aws`] (client settings).

pub mod alerts;
pub mod aws;
pub mod clock;
pub mod config;
pub mod counter;
pub mod error;
pub mod links;
pub mod monitor;
pub mod notify;
pub mod probe;
pub mod secrets;
pub mod smtp;
pub mod store;
pub mod user_notice;
pub mod window;
