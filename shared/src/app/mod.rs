//! Use cases: what the service does, written against ports and given `now`. The scheduled
//! functions, the HTTP handlers and the local runner all call these; none of them holds a rule
//! of its own.
//!
//! [`continuity`] (actions with their audit and bus event, automatic activation, announcements;
//! P2-P10), [`monitor`] (each window: evaluate, probe, alert, announce; D1-D10, A1-A5),
//! [`inbound`] (file and deliver what SES received, Q1-Q9), [`delivery`] (routes in order),
//! [`queue`] (retry, drain, bounce, hold; Q3-Q6), [`user_notice`] (A6), [`auth`] (verifying
//! sign-in tokens), [`mailbox`] (the Online Inbox: who reaches which mailbox, reading it, block
//! rules; U1-U7), [`overflow`] (the whole summary of a message whose item was cut, issue 13),
//! [`downloads`] (.eml and attachments through presigned links, U2), [`send_mail`] (compose, reply, forward, the copy to the server; U3, U8),
//! [`client_sync`] (mail clients' status and sync; C1-C3), [`directory`] (delegates and
//! distribution lists, audited; U5, U6), [`domains`] (proven domains and their SES identities, P11), [`settings`] (administrators'
//! configuration, queue pause and users import, audited; P8, Q4, A6), [`portal`] (alert links:
//! verified, their page, their actions; P1-P6), [`sign_in`] (one-time codes and the service's
//! sessions, U11), [`passkeys`] (passkey enrolment and sign-in, U11), [`source_limits`] (requests
//! per source address to alert links and sign-in, issue 12).

pub mod auth;
pub mod client_sync;
pub mod continuity;
pub mod delivery;
pub mod directory;
pub mod domains;
pub mod downloads;
pub mod inbound;
pub mod mailbox;
pub mod monitor;
pub mod overflow;
pub mod passkeys;
pub mod portal;
pub mod probe_logon;
pub mod queue;
pub mod search;
pub mod send_mail;
pub mod settings;
pub mod sign_in;
pub mod source_limits;
pub mod uploads;
pub mod user_notice;
