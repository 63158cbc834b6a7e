//! The library every function shares, in four parts that import in one direction only:
//!
//! ```text
//!   adapters ──▶ ports ◀── app
//!       │          │        │
//!       └────────▶ domain ◀─┘
//! ```
//!
//! - [`domain`]: the rules and records, pure (no AWS, no I/O, time as a parameter);
//! - [`ports`]: traits for what the use cases need from the world (storage by capability, mail
//!   out, alert channels, raw messages, secrets, the clock);
//! - [`app`]: the use cases, taking ports and `now` (the monitor's run, the inbound path, the
//!   queue, continuity actions, sending mail);
//! - [`adapters`]: the ports implemented against DynamoDB, SES, SNS, EventBridge, S3, Secrets
//!   Manager and SMTP; the only place an `aws_sdk_*` crate is named.
//!
//! `ARCHITECTURE.md` at the repository's root draws the whole picture and says where to add
//! things.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
