//! What the continuity monitor reads and keeps per window (D1-D7): the counter, the window's
//! inputs, its history entry, and the outcomes of the writes that move them exactly once.

use crate::domain::alerts::Episode;
use crate::domain::config::OrgConfig;
use crate::domain::continuity::{ContinuityState, EventMarks};
use crate::domain::counter::{InboundObservation, ProbeObservation, Step, WindowInputs};
use crate::domain::probe::ProbeRecord;
use crate::domain::provider_health::ProviderIncident;
use crate::domain::queue::QueueFigures;
use crate::domain::window::Window;
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

/// One window's evaluation, as kept for 30 days (D7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub window: Window,
    pub inbound_counts: InboundCounts,
    pub inbound: Option<InboundObservation>,
    pub outbound: Option<ProbeObservation>,
    /// Why the probe judged in this window could not be sent, in the refusal table's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_reason: Option<String>,
    /// The provider's open incident when the window was evaluated (D10; never moves the counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderIncident>,
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

/// Everything the portal page shows (P1), read with one `BatchGetItem` (configuration,
/// continuity, counter, queue figures), one `Query` of the history and, only when mail is
/// queued, one `Query` for the oldest queued message.
#[derive(Debug, Clone, Default)]
pub struct PortalView {
    pub config: Option<OrgConfig>,
    pub state: ContinuityState,
    pub marks: EventMarks,
    pub counter: Option<CounterState>,
    pub queue: QueueFigures,
    pub history: Vec<HistoryEntry>,
}
