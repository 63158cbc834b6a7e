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
}

/// Continuity mode and notification suspension, as the portal leaves them (P2-P5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuityState {
    /// Continuity mode is active until then.
    pub event_until: Option<DateTime<Utc>>,
    /// Notifications are suspended until then.
    pub suspended_until: Option<DateTime<Utc>>,
}

impl ContinuityState {
    /// Alerts are held back while an event is active or notifications are suspended (A2).
    pub fn suppresses_alerts(&self, now: DateTime<Utc>) -> bool {
        self.event_until.is_some_and(|t| t > now) || self.suspended_until.is_some_and(|t| t > now)
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
