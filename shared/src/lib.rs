//! Shared library of the email continuity functions.
//!
//! Domain modules (no AWS imports): [`window`], [`config`], [`counter`], [`probe`], [`clock`],
//! [`alerts`] (episodes, messages), [`links`] (signed portal links),
//! [`mail`] (summaries, bounces), [`delivery`] (routes in order), [`queue`] (backoff, drain).
//! Sign-in: [`auth`] (JWT verification against the identity provider's JWKS; a local issuer).
//! Portal and inbox domains: [`continuity`] (events, audit), [`mailbox`] (Online Inbox).
//! Orchestration: [`monitor`] (with alerting), [`user_notice`], [`inbound`], [`queue`].
//! Adapters: [`store`] (DynamoDB), [`notify`] (SNS, SES, EventBridge),
//! [`secrets`] (Secrets Manager), [`smtp`] (probe submission), [`relay`] (inbound delivery
//! over SMTP), [`blob`] (S3 raw messages), [`ses`] (bounces), [`aws`] (client settings).

pub mod alerts;
pub mod auth;
pub mod aws;
pub mod blob;
pub mod clock;
pub mod config;
pub mod continuity;
pub mod counter;
pub mod delivery;
pub mod error;
pub mod iac;
pub mod inbound;
pub mod links;
pub mod mail;
pub mod mailbox;
pub mod monitor;
pub mod notify;
pub mod probe;
pub mod queue;
pub mod relay;
pub mod secrets;
pub mod ses;
pub mod smtp;
pub mod store;
pub mod user_notice;
pub mod window;
