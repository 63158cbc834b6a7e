//! Storage ports: what the domain needs from the table, one trait per capability, and the
//! records that cross them. The DynamoDB adapter is [`dynamodb`]; its item layout is in
//! `store/TABLE.md`.

pub mod dynamodb;

use crate::alerts::Episode;
use crate::config::OrgConfig;
use crate::counter::{InboundObservation, ProbeObservation, Step, WindowInputs};
use crate::error::StoreError;
use crate::probe::{ProbeRecord, ProbeToken};
use crate::window::Window;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An organisation found by the monitor's listing, with its configuration or the reason it
/// cannot be used (kept apart, so that one broken item never stops the others).
#[derive(Debug, Clone)]
pub struct OrgEntry {
    pub org_id: String,
    pub config: Result<OrgConfig, String>,
}

/// The counter as last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    pub value: u32,
    /// The last window evaluated.
    pub window: Window,
    pub threshold: u32,
}

/// Delivery outcomes of one window (D2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundCounts {
    /// Deliveries that failed on every route.
    pub failures: u64,
    /// Deliveries the server accepted.
    pub successes: u64,
}

/// Everything needed to evaluate one organisation's window and decide its alerts, read in one
/// request.
#[derive(Debug, Clone, Default)]
pub struct WindowState {
    pub counter: Option<CounterState>,
    pub inbound: InboundCounts,
    pub probe: Option<ProbeRecord>,
    /// Continuity mode and notification suspension (written by the portal).
    pub continuity: ContinuityState,
    /// The open alert episode, if any.
    pub episode: Option<Episode>,
    /// Messages in the inbound queue (the `QUEUESTAT` count).
    pub queue_count: u64,
    /// Which event the continuity state belongs to, and what the monitor announced of it.
    pub continuity_marks: EventMarks,
}

/// The identity of the current (or last) continuity event and what was announced of it (P6,
/// P9, P10): the monitor announces a planned event's start and every event's end exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMarks {
    /// The request that created the event (activation or plan).
    pub event_id: Option<String>,
    /// How it was created: `link`, `console`, `automatic`.
    pub via: Option<String>,
    /// The event whose start was announced (ContinuityActivated).
    pub start_announced: Option<String>,
    /// The event whose end was announced (ContinuityEnded).
    pub end_announced: Option<String>,
    /// The alert episode that activated an event automatically (P9): once per episode.
    pub auto_episode: Option<String>,
    /// The event whose start, and whose end, users were told of by SMS (A6).
    pub users_told_start: Option<String>,
    pub users_told_end: Option<String>,
}

/// The organisation's users with a mobile number, for the A6 notices (the last import).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDirectory {
    /// Address (lower case) -> mobile number (E.164).
    pub mobiles: std::collections::BTreeMap<String, String>,
    pub synced_at: Option<DateTime<Utc>>,
}

/// What became of a continuity action in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// The action took effect: the state just before it, and after it.
    Applied {
        before: ContinuityState,
        after: ContinuityState,
    },
    /// The same request had already taken effect (a retry): nothing changed.
    Repeated { current: ContinuityState },
    /// Refused; nothing changed.
    Refused {
        current: ContinuityState,
        refusal: crate::continuity::Refusal,
    },
}

/// Continuity events and the audit (P2-P10), as the portal, the API and the monitor use them.
#[async_trait]
pub trait ContinuityStore: Send + Sync {
    /// Applies `action` at `now` with one conditional atomic update, once per `request_id`.
    async fn continuity_action(
        &self,
        org_id: &str,
        action: &crate::continuity::Action,
        via: crate::continuity::Via,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError>;
    /// Records one audited action (idempotent: keyed on its time and request id).
    async fn put_audit(&self, record: &crate::continuity::AuditRecord) -> Result<(), StoreError>;
    /// Activates continuity mode for the alert episode `episode_id` (P9), at most once per episode.
    async fn auto_activate(
        &self,
        org_id: &str,
        episode_id: &str,
        minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError>;
    /// Claims the announcement of event `event_id`'s start (`start`) or end; `true`: announce it.
    async fn claim_announcement(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<bool, StoreError>;
    /// Records that users were told of event `event_id`'s start (`start`) or end (A6).
    async fn mark_users_told(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<(), StoreError>;
    /// The users' mobile numbers (one GetItem; empty when never imported).
    async fn user_directory(&self, org_id: &str) -> Result<UserDirectory, StoreError>;
    /// Replaces the user directory as a whole (one PutItem).
    async fn put_user_directory(
        &self,
        org_id: &str,
        directory: &UserDirectory,
    ) -> Result<(), StoreError>;
}

/// Continuity mode and notification suspension, as the portal leaves them (P2-P6, P10), on the
/// organisation's `CONTINUITY` item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuityState {
    /// When the current (or last) event started; later than now for a planned event (P10).
    pub event_started_at: Option<DateTime<Utc>>,
    /// The event's end as scheduled (activate, extend).
    pub event_until: Option<DateTime<Utc>>,
    /// Set when an administrator stopped the event before `event_until` (P5).
    pub event_stopped_at: Option<DateTime<Utc>>,
    /// Notifications are suspended until then.
    pub suspended_until: Option<DateTime<Utc>>,
}

/// How long the post-event phase lasts after an event ends (P5, C1, C3).
pub const POST_EVENT_MINUTES: i64 = 10;
/// Duplicate resolution starts this long before an event's start (C3).
pub const DEDUPE_LEAD_MINUTES: i64 = 5;

/// Where an organisation stands (C1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Phase {
    /// No event, and none ended in the last [`POST_EVENT_MINUTES`].
    Normal,
    /// Continuity mode is on, from `start` until `end` (as now scheduled).
    Continuity {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The event `start`..`ended` is over; clients hand back to the server until `until`.
    PostEvent {
        start: DateTime<Utc>,
        ended: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

impl ContinuityState {
    /// When the event ended or ends: its stop, or its scheduled end, whichever is first.
    pub fn event_end(&self) -> Option<DateTime<Utc>> {
        match (self.event_until, self.event_stopped_at) {
            (Some(u), Some(s)) => Some(u.min(s)),
            (u, s) => u.or(s),
        }
    }

    /// The phase at `now`: an event whose end time has passed is over by itself (P6).
    pub fn phase(&self, now: DateTime<Utc>) -> Phase {
        let (Some(start), Some(end)) =
            (self.event_started_at.or(self.event_until), self.event_end())
        else {
            return Phase::Normal;
        };
        let start = start.min(end);
        if start <= now && now < end {
            Phase::Continuity {
                start,
                end: self.event_until.unwrap_or(end),
            }
        } else if end <= now && now < end + chrono::Duration::minutes(POST_EVENT_MINUTES) {
            Phase::PostEvent {
                start,
                ended: end,
                until: end + chrono::Duration::minutes(POST_EVENT_MINUTES),
            }
        } else {
            Phase::Normal
        }
    }

    /// Continuity mode is on at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        matches!(self.phase(now), Phase::Continuity { .. })
    }

    /// Notifications are suspended at `now`.
    pub fn suspended(&self, now: DateTime<Utc>) -> bool {
        self.suspended_until.is_some_and(|t| t > now)
    }

    /// Alerts are held back while an event is active or notifications are suspended (A2).
    pub fn suppresses_alerts(&self, now: DateTime<Utc>) -> bool {
        self.active(now) || self.suspended(now)
    }
}

/// What the alerting needs from storage (A2, A4, A5).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens an episode; `false` when one is already open (another run got there first).
    async fn start_episode(&self, org_id: &str, episode: &Episode) -> Result<bool, StoreError>;
    /// The open episode.
    async fn episode(&self, org_id: &str) -> Result<Option<Episode>, StoreError>;
    /// Closes the episode `id`; `false` when it was no longer open.
    async fn end_episode(&self, org_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Claims one send (alert id, contact, channel). `true`: the caller sends. A claim whose send
    /// failed, or that was left unfinished for longer than `stale_after`, can be claimed again.
    async fn claim_send(
        &self,
        org_id: &str,
        send_key: &str,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError>;
    /// Records the result of a claimed send.
    async fn finish_send(
        &self,
        org_id: &str,
        send_key: &str,
        result: Result<String, String>,
    ) -> Result<(), StoreError>;
}

/// One window's evaluation, as kept for 30 days (D7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub window: Window,
    pub inbound_counts: InboundCounts,
    pub inbound: Option<InboundObservation>,
    pub outbound: Option<ProbeObservation>,
    pub step: Step,
    pub threshold: u32,
    pub evaluated_at: DateTime<Utc>,
}

impl HistoryEntry {
    pub fn inputs(&self) -> WindowInputs {
        WindowInputs {
            inbound: self.inbound,
            outbound: self.outbound,
        }
    }
}

/// Result of committing a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// This call moved the counter.
    Committed,
    /// The window had already been evaluated; nothing changed.
    AlreadyEvaluated,
}

/// Outcome of one delivery attempt over all of an organisation's routes (D2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The server accepted the message on some route.
    Accepted,
    /// Every route failed.
    AllRoutesFailed,
}

/// What became of a probe arrival report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalOutcome {
    /// First arrival of a probe we sent: recorded.
    Recorded,
    /// The probe had already been recorded as arrived (a redelivery): nothing changed.
    Duplicate,
    /// Not a probe this service sent (unknown window or wrong nonce): ignored.
    Unknown,
}

/// What the monitor needs from storage.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    /// Every organisation with monitoring on.
    async fn monitored_orgs(&self) -> Result<Vec<OrgEntry>, StoreError>;
    /// Counter, inbound counts and probe of one window.
    async fn window_state(&self, org_id: &str, window: Window) -> Result<WindowState, StoreError>;
    /// Continuity events (P6, P9, P10), when this store keeps them.
    fn continuity(&self) -> Option<&dyn ContinuityStore> {
        None
    }
    /// Writes the history item and moves the counter, atomically, only if the window has not been
    /// evaluated and the counter is still at `expected` (the last window read; `None`: no counter yet).
    async fn commit_window(
        &self,
        org_id: &str,
        expected: Option<Window>,
        entry: &HistoryEntry,
    ) -> Result<CommitOutcome, StoreError>;
    /// Claims the right to send the probe of `window`; `false` when another run holds it.
    async fn claim_probe(
        &self,
        org_id: &str,
        window: Window,
        nonce: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records the send result of a claimed probe.
    async fn finish_probe(
        &self,
        org_id: &str,
        window: Window,
        result: Result<DateTime<Utc>, String>,
    ) -> Result<(), StoreError>;
}

/// What the delivery path reports for the inbound check (D2).
#[async_trait]
pub trait InboundRecorder: Send + Sync {
    /// Counts one delivery outcome in the window containing `at`: one atomic update.
    async fn record_delivery(
        &self,
        org_id: &str,
        at: DateTime<Utc>,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError>;
}

/// What the receiving path reports when a probe arrives (D3, Q7).
#[async_trait]
pub trait ProbeArrivals: Send + Sync {
    async fn record_probe_arrival(
        &self,
        token: &ProbeToken,
        at: DateTime<Utc>,
    ) -> Result<ArrivalOutcome, StoreError>;
}

/// The inbound queue of one organisation, as alerts (D8) and the portal (P1) see it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFigures {
    /// Messages waiting for the organisation's server.
    pub count: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<DateTime<Utc>>,
}

/// Reads the queue figures. The queue keeps them: the `QUEUESTAT` item's `count` moves in the
/// same transaction as each enqueue and dequeue, and queued messages sort by enqueue time under
/// `QUEUE#` (see TABLE.md).
#[async_trait]
pub trait QueueFiguresSource: Send + Sync {
    async fn queue_figures(&self, org_id: &str) -> Result<QueueFigures, StoreError>;
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

/// A filed copy of a message in one mailbox (U1).
#[derive(Debug, Clone)]
pub struct Filing<'a> {
    pub org_id: &'a str,
    pub ses_id: &'a str,
    pub received_at: DateTime<Utc>,
    pub raw_key: &'a str,
    pub summary: &'a crate::mail::MessageSummary,
}

/// What the inbound function needs from storage (Q2, Q6, U6).
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Which organisation owns each of `domains` (exact domain names; absent ones are not ours).
    async fn orgs_for_domains(
        &self,
        domains: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError>;
    async fn org_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError>;
    /// Members of those of `addresses` that are distribution lists (last directory import).
    async fn group_members(
        &self,
        org_id: &str,
        addresses: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError>;
    /// Which of `mailboxes` have blocked `sender` (its address or domain) or marked it as spam
    /// (U4): their Online Inbox does not get its mail.
    async fn blocked_mailboxes(
        &self,
        org_id: &str,
        mailboxes: &[String],
        sender: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError>;
    /// Files the message in each mailbox; keyed on the SES message id, so a repeat overwrites
    /// the same items (one record).
    async fn file_message(
        &self,
        filing: &Filing<'_>,
        mailboxes: &[String],
    ) -> Result<(), StoreError>;
    /// Takes the message into the queue once per SES message id (one transaction with the
    /// queue count); `wake` is when the queue should look at the organisation at the latest.
    async fn accept_message(
        &self,
        msg: &QueuedMessage,
        wake: DateTime<Utc>,
    ) -> Result<AcceptOutcome, StoreError>;
}

/// What the queue (and the inbound function after its attempt) needs from storage (Q3-Q6).
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Organisations whose queue marker is due at `now` (one Query of the sparse index).
    async fn due_orgs(&self, now: DateTime<Utc>) -> Result<Vec<DueOrg>, StoreError>;
    /// Claims a due organisation until `lease_until`; `None` when another run got it first.
    async fn claim_org(
        &self,
        due: &DueOrg,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueueState>, StoreError>;
    /// The oldest queued messages, oldest first.
    async fn oldest(&self, org_id: &str, limit: usize) -> Result<Vec<QueuedMessage>, StoreError>;
    /// Removes a message (if still there) with the count, and records why.
    async fn dequeue(
        &self,
        msg: &QueuedMessage,
        why: Departure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Stores the message's new state (remaining recipients, attempts, error, lease), if still queued.
    async fn requeue(&self, msg: &QueuedMessage) -> Result<(), StoreError>;
    /// Points a queued message at another copy of its raw bytes (if still queued).
    async fn set_raw_key(&self, msg: &QueuedMessage, raw_key: &str) -> Result<(), StoreError>;
    /// Sets when to look at the organisation next and its consecutive failures; `paused_at`
    /// records that deliveries were paused at that time.
    async fn set_wake(
        &self,
        org_id: &str,
        wake: DateTime<Utc>,
        failures: u32,
        paused_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// The organisation's queue looked empty: takes it off the due index if the count is 0,
    /// otherwise (a message arrived meanwhile) wakes it at `fallback`.
    async fn settle_idle(&self, org_id: &str, fallback: DateTime<Utc>) -> Result<(), StoreError>;
}
