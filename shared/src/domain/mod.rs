//! The domain: the rules and records of email continuity, with no I/O. Nothing here imports an
//! AWS SDK, opens a socket or reads the clock: time comes in as a parameter (`now`).
//!
//! Monitoring: [`window`] (two-minute windows, D1), [`counter`] (the failure counter's rule,
//! D2-D5), [`probe`] (the outbound probe's token and verdict, D3), [`monitoring`] (what a window
//! reads and keeps, D6-D7). Alerts: [`alerts`] (episodes, when to alert, the messages, A1-A5),
//! [`links`] (signed portal links, A3). Continuity: [`continuity`] (events, actions, phases,
//! audit records, P2-P10, C1). Mail: [`mail`] (summaries, bounces), [`item_budget`] (items
//! written from received mail, capped in bytes, the overflow kept in S3), [`delivery`] (outcomes
//! over routes), [`queue`] (queued messages, backoff, retention, mail set aside, Q3-Q6, Q10), [`verdicts`]
//! (SES's verdicts, quarantine, the trace fields of an honest hop, Q9), [`mailbox`] (the
//! Online Inbox, U1-U9), [`downloads`] (download names, decoded parts' keys), [`uploads`] (staged attachments: keys, caps), [`multipart`] (forms with files), [`directory`] (users, U6, A6). Configuration: [`config`] (an
//! organisation's settings and their validation), [`config_as_code`] (plans of changes),
//! [`domains`] (proven domains and the records to publish, P11).
//! Sign-in: [`identity`] (the identity provider's tokens), [`sign_in`] (the service's own
//! one-time codes and sessions, U11), [`source_limits`] (requests per source address to alert
//! links and sign-in, issue 12).

pub mod alerts;
pub mod compose;
pub mod config;
pub mod config_as_code;
pub mod continuity;
pub mod counter;
pub mod delivery;
pub mod directory;
pub mod domains;
pub mod downloads;
pub mod identity;
pub mod item_budget;
pub mod links;
pub mod mail;
pub mod mailbox;
pub mod monitoring;
pub mod multipart;
pub mod probe;
pub mod probe_refusal;
pub mod provider_health;
pub mod queue;
pub mod search;
pub mod sign_in;
pub mod source_limits;
pub mod uploads;
pub mod verdicts;
pub mod window;
