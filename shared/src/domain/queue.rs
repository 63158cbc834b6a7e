//! The delivery queue's records and rules (Q3-Q6): what a queued message holds, why it leaves,
//! how long the queue waits between tries (per organisation) and when a message has outlived
//! the retention.

use crate::domain::config::QueueSettings;
use crate::domain::continuity::{AuditRecord, Via};
use crate::domain::item_budget::{
    cap, MAX_FILED_ADDRESSES, MAX_MESSAGE_ID_BYTES, MAX_NOTE_BYTES, MAX_SUBJECT_BYTES,
};
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

/// Recipients of one queued item, and of one SMTP transaction to the organisation's server
/// (the relay sends a longer envelope as several: RFC 5321 4.5.3.1.8 obliges a server to
/// accept only 100 recipients per transaction). A longer envelope is split into parts of this
/// many ([`QueuedMessage::parts`]), each its own queue item, delivered, retried and bounced on
/// its own: so that each item stays small (a DynamoDB item is at most 400 KB, and an address
/// may take 320 bytes) and one part is one transaction.
pub const MAX_PART_RECIPIENTS: usize = 100;
/// Parts taken in the one transaction that accepts a message: DynamoDB's transaction holds 100
/// items, two of which are the once-per-message record and the queue count.
pub const MAX_PARTS: usize = 98;
/// One part's item at most, as [`QueuedMessage::item_bytes`] counts it: far under DynamoDB's
/// 400 KB.
pub const MAX_PART_ITEM_BYTES: usize = 350 * 1024;
/// All the parts of a message at most: a transaction's items may take 4 MB together (with the
/// once-per-message record and the count, a few hundred bytes).
pub const MAX_ACCEPT_BYTES: usize = 3_800_000;
/// What the item's keys, attribute names, numbers, times and origin take at most besides the
/// texts [`QueuedMessage::item_bytes`] counts: a generous fixed allowance.
const QUEUED_FIXED_BYTES: usize = 1024;

/// A message whose envelope is too large to be taken in one transaction (a refusal, never a
/// failed write).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{recipients} envelope recipients in {parts} queue items take {bytes} bytes: over the {max} bytes {what} may hold")]
pub struct EnvelopeTooLarge {
    pub recipients: usize,
    pub parts: usize,
    pub bytes: usize,
    pub max: usize,
    /// What would not hold them: `one queue item` or `one transaction`.
    pub what: &'static str,
}

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
    /// The queue item's id: the SES message id (one per received message, the key of everything
    /// about it), or `{SES id}.{k}` for the part `k >= 1` of a message to more than
    /// [`MAX_PART_RECIPIENTS`] recipients.
    pub id: String,
    /// The SES message id of a part `k >= 1` ([`QueuedMessage::parts`]); `None` for a whole
    /// message and its first part, whose `id` is the SES id.
    pub part_of: Option<String>,
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
            part_of: None,
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

    /// The id of the message this item belongs to: the SES id (of a part, the whole's).
    pub fn message_key(&self) -> &str {
        self.part_of.as_deref().unwrap_or(&self.id)
    }

    /// The message split into its queue items, in order: parts of at most
    /// [`MAX_PART_RECIPIENTS`] recipients, or of the smallest multiple of it that makes at
    /// most [`MAX_PARTS`] parts, so that the whole is still taken in one transaction (and each
    /// part is still whole SMTP transactions).
    /// Part 0 keeps the id (a message to at most 100 recipients is one item, unchanged); part
    /// `k` is `{id}.{k}`, `part_of` the id. Refused when a part's item would pass
    /// [`MAX_PART_ITEM_BYTES`] or all of them [`MAX_ACCEPT_BYTES`]: a received message cannot
    /// get there (its SES event, which names each recipient twice, is at most 1 MB, Lambda's
    /// limit for an asynchronous invocation), and a refusal says so where a failed write would
    /// only retry the event into the dead-letter queue.
    pub fn parts(self) -> Result<Vec<QueuedMessage>, EnvelopeTooLarge> {
        let n = self.recipients.len();
        // Whole transactions a part: 100, or 200, 300 ... once 98 parts of 100 are too few.
        let size = MAX_PART_RECIPIENTS * n.div_ceil(MAX_PARTS * MAX_PART_RECIPIENTS).max(1);
        let parts: Vec<QueuedMessage> = if n <= size {
            vec![self]
        } else {
            self.recipients
                .chunks(size)
                .enumerate()
                .map(|(k, chunk)| QueuedMessage {
                    id: if k == 0 {
                        self.id.clone()
                    } else {
                        format!("{}.{k}", self.id)
                    },
                    part_of: (k > 0).then(|| self.id.clone()),
                    recipients: chunk.to_vec(),
                    ..self.clone()
                })
                .collect()
        };
        let sizes: Vec<usize> = parts.iter().map(QueuedMessage::item_bytes).collect();
        let total: usize = sizes.iter().sum();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let over = if largest > MAX_PART_ITEM_BYTES {
            Some((largest, MAX_PART_ITEM_BYTES, "one queue item"))
        } else if total > MAX_ACCEPT_BYTES {
            Some((total, MAX_ACCEPT_BYTES, "one transaction"))
        } else {
            None
        };
        if let Some((bytes, max, what)) = over {
            return Err(EnvelopeTooLarge {
                recipients: n,
                parts: parts.len(),
                bytes,
                max,
                what,
            });
        }
        Ok(parts)
    }

    /// What its queue item takes at most, as DynamoDB counts (UTF-8 bytes of the values and
    /// the list's overheads; keys, names, numbers and the origin as a fixed allowance): never
    /// less than the real size.
    pub fn item_bytes(&self) -> usize {
        let opt = |v: &Option<String>| v.as_ref().map_or(0, String::len);
        QUEUED_FIXED_BYTES
            + self.org_id.len()
            + 2 * self.id.len()
            + opt(&self.part_of)
            + self.raw_key.len()
            + self.sender.len()
            + 3
            + self.recipients.iter().map(|r| r.len() + 1).sum::<usize>()
            + self.last_error.as_ref().map_or(0, |_| MAX_NOTE_BYTES)
            + self.message_id.len()
            + opt(&self.subject)
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
    /// The recipients, at most [`MAX_FILED_ADDRESSES`] of them listed (a virus sent to
    /// thousands must still fit its item and its audit record).
    pub recipients: Vec<String>,
    /// How many recipients there were (records of before the cap read as their list's length).
    #[serde(default)]
    pub recipient_count: usize,
    pub message_id: String,
    pub subject: Option<String>,
    pub size: u64,
    pub raw_key: String,
    pub reason: String,
}

impl SetAside {
    /// A queued message (or the part of it named by `recipients`) set aside at `at`: the
    /// first [`MAX_FILED_ADDRESSES`] recipients listed, with their number.
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
            recipient_count: recipients.len(),
            recipients: recipients.into_iter().take(MAX_FILED_ADDRESSES).collect(),
            message_id: m.message_id.clone(),
            subject: m.subject.clone(),
            size: m.size,
            raw_key: m.raw_key.clone(),
            reason: cap(&reason, MAX_NOTE_BYTES),
        }
    }
}

impl SetAside {
    /// How many recipients it had: `recipient_count`, or the list's length for a record
    /// written before the count.
    pub fn recipients_total(&self) -> usize {
        self.recipient_count.max(self.recipients.len())
    }

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
    /// The SES id of the message this is a part of (a message to more than
    /// [`MAX_PART_RECIPIENTS`] recipients is queued, and listed, as several parts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_of: Option<String>,
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
            part_of: m.part_of.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item_budget::MAX_ADDRESS_BYTES;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// An address of exactly `len` bytes, unique for `i`.
    fn address(i: usize, len: usize) -> String {
        let tail = format!("{i:06}@acme.test");
        format!("{}{tail}", "x".repeat(len - tail.len()))
    }

    /// A message to `n` recipients of `len` bytes, with the longest texts the item keeps.
    fn message(n: usize, len: usize) -> QueuedMessage {
        let mut summary = crate::domain::mail::summarize(b"Subject: x\r\n\r\nHello.\r\n");
        summary.message_id = "m".repeat(2000);
        summary.subject = Some("s".repeat(5000));
        QueuedMessage::new("acme", "0100018f", "inbound/0100018f", t0(), &summary).envelope(
            address(0, MAX_ADDRESS_BYTES),
            (0..n).map(|i| address(i, len)).collect(),
        )
    }

    fn split(n: usize, len: usize) -> Vec<QueuedMessage> {
        let parts = message(n, len).parts().expect("fits");
        // Every recipient once, in order, in parts of the announced size.
        let all: Vec<String> = parts.iter().flat_map(|p| p.recipients.clone()).collect();
        assert_eq!(all, message(n, len).recipients, "{n}");
        assert!(parts.len() <= MAX_PARTS, "{n}: {} parts", parts.len());
        for (k, p) in parts.iter().enumerate() {
            if k == 0 {
                assert_eq!((p.id.as_str(), p.part_of.as_deref()), ("0100018f", None));
            } else {
                assert_eq!(p.id, format!("0100018f.{k}"));
                assert_eq!(p.part_of.as_deref(), Some("0100018f"));
            }
            assert_eq!(p.message_key(), "0100018f");
            assert!(p.item_bytes() <= MAX_PART_ITEM_BYTES, "{n}: part {k}");
        }
        parts
    }

    fn sizes(parts: &[QueuedMessage]) -> Vec<usize> {
        parts.iter().map(|p| p.recipients.len()).collect()
    }

    #[test]
    fn envelopes_split_into_parts_of_at_most_100_until_98_parts() {
        assert_eq!(sizes(&split(0, 20)), vec![0]);
        assert_eq!(sizes(&split(1, 20)), vec![1]);
        assert_eq!(sizes(&split(100, 20)), vec![100]);
        assert_eq!(sizes(&split(101, 20)), vec![100, 1]);
        assert_eq!(sizes(&split(9_800, 20)), vec![100; 98]);
        // One more and the parts grow instead: still one transaction.
        let p = split(9_801, 20);
        assert_eq!(p.len(), 50);
        assert_eq!(p[0].recipients.len(), 200);
        assert_eq!(p[49].recipients.len(), 1);
        let p = split(10_000, 20);
        assert_eq!(sizes(&p), vec![200; 50]);
        let p = split(30_000, 20);
        assert_eq!(p.len(), 75);
        assert_eq!(p[0].recipients.len(), 400);
    }

    #[test]
    fn a_whole_message_is_unchanged() {
        let m = message(100, MAX_ADDRESS_BYTES);
        assert_eq!(m.clone().parts().unwrap(), vec![m]);
    }

    #[test]
    fn worst_case_addresses_fit_the_item_and_the_transaction_or_are_refused() {
        // 320-byte addresses: 100 a part take ~32 KB, far under 400 KB.
        for n in [1_500, 9_800, 9_801] {
            let parts = split(n, MAX_ADDRESS_BYTES);
            let total: usize = parts.iter().map(QueuedMessage::item_bytes).sum();
            assert!(total <= MAX_ACCEPT_BYTES, "{n}: {total}");
        }
        assert!(split(1_500, MAX_ADDRESS_BYTES)[0].item_bytes() < 40 * 1024);
        // 30,000 of them (~9.6 MB: no SES event can name them) pass the transaction's 4 MB:
        // refused, with the reason.
        let e = message(30_000, MAX_ADDRESS_BYTES).parts().unwrap_err();
        assert_eq!(
            (e.recipients, e.parts, e.max),
            (30_000, 75, MAX_ACCEPT_BYTES)
        );
        assert!(e.to_string().contains("30000 envelope recipients"), "{e}");
        assert!(
            e.to_string().ends_with("bytes one transaction may hold"),
            "{e}"
        );
        // The same number of short addresses fits.
        assert_eq!(split(30_000, 20).len(), 75);
    }

    #[test]
    fn the_estimate_is_never_below_the_texts() {
        let m = message(100, MAX_ADDRESS_BYTES);
        let texts = m.recipients.iter().map(String::len).sum::<usize>()
            + m.message_id.len()
            + m.subject.as_ref().unwrap().len()
            + m.sender.len()
            + m.raw_key.len();
        assert!(m.item_bytes() > texts);
    }

    #[test]
    fn a_set_aside_lists_100_recipients_and_counts_them_all() {
        let m = message(1_500, MAX_ADDRESS_BYTES);
        let a = SetAside::of(
            &m,
            AsideKind::Quarantined,
            m.recipients.clone(),
            t0(),
            "virus".into(),
        );
        assert_eq!((a.recipients.len(), a.recipient_count), (100, 1_500));
        assert_eq!(a.recipients_total(), 1_500);
        let doc = serde_json::to_string(&a.audit("service:inbound")).unwrap();
        assert!(doc.len() < 50 * 1024, "{}", doc.len());
        // A record of before the count reads with its list's length.
        let mut old = serde_json::to_value(&a).unwrap();
        old.as_object_mut().unwrap().remove("recipient_count");
        let old: SetAside = serde_json::from_value(old).unwrap();
        assert_eq!(old.recipients_total(), 100);
    }
}
