//! The delivery queue's records and rules (Q3-Q6): what a queued message holds, why it leaves,
//! how long the queue waits between tries (per organisation) and when a message has outlived
//! the retention.

use crate::domain::config::QueueSettings;
use crate::domain::continuity::{AuditRecord, Via};
use crate::domain::item_budget::{cap, MAX_MESSAGE_ID_BYTES, MAX_NOTE_BYTES, MAX_SUBJECT_BYTES};
use crate::domain::mail::MessageSummary;
use crate::domain::verdicts::{Origin, Verdicts};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long the inbound function holds a message it is delivering before the queue may try it.
pub const IN_FLIGHT_LEASE_MINUTES: i64 = 5;
/// How long a queue run holds an organisation it is working on.
pub const TICK_LEASE_MINUTES: i64 = 5;
/// The queue runs every minute.
pub const TICK_MINUTES: i64 = 1;
/// The bucket expires raw mail under the receipt rule's prefix after 35 days. A message queued
/// longer than this (only while deliveries are paused, Q4, or just after) gets a copy under
/// [`HELD_PREFIX`], which does not expire, and the queue uses that copy from then on (Q6).
pub const HOLD_AFTER_DAYS: i64 = 25;
/// Where long-queued raw mail is kept until it leaves the queue.
pub const HELD_PREFIX: &str = "held/";

/// Wait after the `failures`-th consecutive failed retry: initial x 2^(failures-1), capped.
pub fn backoff(q: &QueueSettings, failures: u32) -> Duration {
    let initial = i64::from(q.backoff_initial_minutes.max(1));
    let max = i64::from(q.backoff_max_minutes.max(q.backoff_initial_minutes).max(1));
    let doubled = initial.saturating_mul(1i64 << failures.saturating_sub(1).min(20));
    Duration::minutes(doubled.min(max))
}

/// Whether a message queued at `enqueued_at` has outlived the retention at `now`.
pub fn expired(q: &QueueSettings, enqueued_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - enqueued_at >= Duration::hours(i64::from(q.retention_hours))
}

/// The inbound queue of one organisation, as alerts (D8) and the portal (P1) see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFigures {
    /// Messages waiting for the organisation's server.
    pub count: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<DateTime<Utc>>,
}

/// A message in an organisation's queue (Q3): everything needed to deliver or bounce it again,
/// with the raw bytes left in S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub org_id: String,
    /// The SES message id: one per received message, the key of everything about it.
    pub id: String,
    /// When SES received it (the same on every retry of the event): the queue's order.
    pub enqueued_at: DateTime<Utc>,
    /// Key of the raw message in the mail bucket.
    pub raw_key: String,
    /// Envelope sender; empty for a null sender (`<>`), which is never bounced to.
    pub sender: String,
    /// Recipients still to deliver.
    pub recipients: Vec<String>,
    /// Delivery attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The queue leaves the message alone until then: the inbound function is still trying it
    /// (a lease, so that the queue does not deliver it a second time in parallel).
    pub not_before: DateTime<Utc>,
    /// The message's `Message-ID` (read or derived), for the portal.
    pub message_id: String,
    pub subject: Option<String>,
    pub size: u64,
    /// Received by SES with its verdicts, or sent by a signed-in user (U8): decides the trace
    /// fields of each delivery and whether a failure may bounce (Q9, Q10).
    pub origin: Origin,
}

impl QueuedMessage {
    /// A message taken into the queue at `at`: no attempt yet, its Message-ID, subject and size
    /// from its summary (texts cut to their byte caps, [`crate::domain::item_budget`]), no envelope yet ([`QueuedMessage::envelope`]), due at once.
    pub fn new(
        org_id: impl Into<String>,
        id: impl Into<String>,
        raw_key: impl Into<String>,
        at: DateTime<Utc>,
        summary: &MessageSummary,
    ) -> Self {
        QueuedMessage {
            org_id: org_id.into(),
            id: id.into(),
            enqueued_at: at,
            raw_key: raw_key.into(),
            sender: String::new(),
            recipients: Vec::new(),
            attempts: 0,
            last_error: None,
            not_before: at,
            // Cut in bytes: the summary is whole (a 300 KB subject), the queue item is not.
            message_id: cap(&summary.message_id, MAX_MESSAGE_ID_BYTES),
            subject: summary
                .subject
                .as_deref()
                .map(|v| cap(v, MAX_SUBJECT_BYTES)),
            size: summary.size,
            origin: Origin::Received {
                verdicts: Verdicts::default(),
            },
        }
    }

    /// Where it came from (received with verdicts, or submitted by a signed-in user).
    pub fn origin(self, origin: Origin) -> Self {
        QueuedMessage { origin, ..self }
    }

    /// With its envelope: the sender (empty for `<>`) and the recipients still to deliver.
    pub fn envelope(self, sender: impl Into<String>, recipients: Vec<String>) -> Self {
        QueuedMessage {
            sender: sender.into(),
            recipients,
            ..self
        }
    }

    /// Left alone by the queue until `t` (the inbound function's lease while it delivers).
    pub fn leased_until(self, t: DateTime<Utc>) -> Self {
        QueuedMessage {
            not_before: t,
            ..self
        }
    }
}

/// What became of an attempt to take a message into the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// First time this SES message was seen for this organisation: it is queued.
    Accepted,
    /// Already taken (a repeated or concurrent invocation): nothing changed.
    Duplicate,
}

/// Why a message left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Departure {
    /// The server answered 250 to its DATA (for every remaining recipient).
    Delivered,
    /// Its bounce was sent (or it had no sender to bounce to).
    Bounced,
    /// Refused for good, and its sender not authenticated: no bounce went (Q10); the message
    /// is set aside ([`SetAside`]) for administrators instead.
    Undeliverable,
}

/// Why a message was set aside rather than delivered or bounced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AsideKind {
    /// SES found a virus (Q9): neither filed nor delivered.
    Quarantined,
    /// The server refused it for good (or it outlived the retention) and its sender may be
    /// forged, so no bounce went (Q10).
    Undeliverable,
}

impl AsideKind {
    pub fn name(self) -> &'static str {
        match self {
            AsideKind::Quarantined => "quarantined",
            AsideKind::Undeliverable => "undeliverable",
        }
    }
}

/// A message set aside, as administrators see it (the queue view and the audit): never
/// silently dropped, always with its reason. The raw message stays in the mail bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    pub org_id: String,
    /// The SES message id.
    pub id: String,
    pub kind: AsideKind,
    /// When it was set aside.
    pub at: DateTime<Utc>,
    /// When SES received it.
    pub received_at: DateTime<Utc>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub message_id: String,
    pub subject: Option<String>,
    pub size: u64,
    pub raw_key: String,
    pub reason: String,
}

impl SetAside {
    /// A queued message (or the part of it named by `recipients`) set aside at `at`.
    pub fn of(
        m: &QueuedMessage,
        kind: AsideKind,
        recipients: Vec<String>,
        at: DateTime<Utc>,
        reason: String,
    ) -> Self {
        SetAside {
            org_id: m.org_id.clone(),
            id: m.id.clone(),
            kind,
            at,
            received_at: m.enqueued_at,
            sender: m.sender.clone(),
            recipients,
            message_id: m.message_id.clone(),
            subject: m.subject.clone(),
            size: m.size,
            raw_key: m.raw_key.clone(),
            reason: cap(&reason, MAX_NOTE_BYTES),
        }
    }
}

impl SetAside {
    /// Its audit record (P7): who set it aside (`service:inbound`, `service:queue`), when, and
    /// the record itself. Keyed on its time and id: a repeat writes the same record.
    pub fn audit(&self, who: &str) -> AuditRecord {
        AuditRecord {
            org_id: self.org_id.clone(),
            at: self.at,
            who: who.to_string(),
            via: Via::Automatic,
            what: self.kind.name().to_string(),
            minutes: None,
            before: serde_json::Value::Null,
            after: serde_json::to_value(self).unwrap_or_default(),
            source: "-".into(),
            request_id: format!("{}-{}", self.kind.name(), self.id),
        }
    }
}

/// What the queue view shows of one queued message (the admin API, the portal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedView {
    pub id: String,
    pub message_id: String,
    pub subject: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub size: u64,
    pub received_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the queue tries it next at the earliest: the organisation's next look (the backoff)
    /// or the message's own lease, whichever is later.
    pub next_retry: Option<DateTime<Utc>>,
}

impl QueuedView {
    pub fn of(m: &QueuedMessage, org_wake: Option<DateTime<Utc>>) -> Self {
        QueuedView {
            id: m.id.clone(),
            message_id: m.message_id.clone(),
            subject: m.subject.clone(),
            sender: m.sender.clone(),
            recipients: m.recipients.clone(),
            size: m.size,
            received_at: m.enqueued_at,
            attempts: m.attempts,
            last_error: m.last_error.clone(),
            next_retry: org_wake.map(|w| w.max(m.not_before)),
        }
    }
}

/// What the queue keeps about an organisation between runs (on `QUEUESTAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueState {
    /// Consecutive retries on which every route failed (the backoff's exponent).
    pub failures: u32,
    /// The last run that found deliveries paused: the retention counts from there (a pause
    /// never makes mail bounce the moment it ends).
    pub paused_at: Option<DateTime<Utc>>,
}

/// An organisation whose queue is due for a look, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOrg {
    pub org_id: String,
    /// The marker as read (the claim is conditional on it).
    pub marker: String,
}
