//! One organisation's window (D2-D6): the checks' verdicts, the counter's step, and the commit
//! that moves the counter once per window whatever the runs.

use super::Monitor;
use crate::domain::alerts::{Episode, Failing};
use crate::domain::config::OrgConfig;
use crate::domain::continuity::{ContinuityState, EventMarks};
use crate::domain::counter::{step, InboundObservation, Verdict, WindowInputs};
use crate::domain::monitoring::{CommitOutcome, HistoryEntry};
use crate::domain::probe::{judge, ProbeStatus};
use crate::domain::provider_health::ProviderIncident;
use crate::domain::window::Window;
use crate::ports::error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many times a window commit is retried when the counter moved under it.
const COMMIT_ATTEMPTS: usize = 4;

/// What became of one organisation's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Evaluation {
    /// This run moved the counter.
    Committed { value: u32, delta: i32 },
    /// Another run had already evaluated this window.
    AlreadyEvaluated,
    /// A later window was already evaluated; this one is left alone.
    Superseded { counter_window: i64 },
    /// Configuration unusable or the store failed: the reason.
    Failed { reason: String },
}

/// The state after a window, for the continuity events and the alert decision.
#[derive(Debug, Clone)]
pub(super) struct PostWindow {
    pub counter: u32,
    pub continuity: ContinuityState,
    pub marks: EventMarks,
    pub episode: Option<Episode>,
    pub queue_count: u64,
    /// What failed in this window (only when this run committed it).
    pub failing_now: Vec<Failing>,
    /// Why the window's probe could not be sent, if it could not.
    pub outbound_reason: Option<String>,
    /// The provider's open incident (D10).
    pub provider: Option<ProviderIncident>,
}

impl Monitor<'_> {
    /// Evaluates one organisation's window at `now` and moves its counter once (D2-D6).
    pub async fn evaluate(
        &self,
        cfg: &OrgConfig,
        window: Window,
        now: DateTime<Utc>,
    ) -> Evaluation {
        self.evaluate_full(cfg, window, now).await.0
    }

    /// As [`Monitor::evaluate`], with the state after the window when it could be read.
    pub(super) async fn evaluate_full(
        &self,
        cfg: &OrgConfig,
        window: Window,
        now: DateTime<Utc>,
    ) -> (Evaluation, Option<PostWindow>) {
        match self.try_evaluate(cfg, window, now).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "window evaluation failed");
                (
                    Evaluation::Failed {
                        reason: e.to_string(),
                    },
                    None,
                )
            }
        }
    }

    async fn try_evaluate(
        &self,
        cfg: &OrgConfig,
        window: Window,
        now: DateTime<Utc>,
    ) -> Result<(Evaluation, Option<PostWindow>), StoreError> {
        let m = &cfg.monitoring;
        let provider = self.provider_health(cfg, now).await;
        for _ in 0..COMMIT_ATTEMPTS {
            let state = self.store.window_state(&cfg.org_id, window).await?;
            let outbound_reason = state
                .probe
                .as_ref()
                .filter(|p| m.outbound_check && p.status == ProbeStatus::Failed)
                .and_then(|p| p.error.clone());
            let post = |counter: u32, failing_now: Vec<Failing>| PostWindow {
                counter,
                continuity: state.continuity,
                marks: state.continuity_marks.clone(),
                episode: state.episode.clone(),
                queue_count: state.queue_count,
                failing_now,
                outbound_reason: outbound_reason.clone(),
                provider: provider.clone(),
            };
            if let Some(c) = state.counter {
                if c.window == window {
                    return Ok((Evaluation::AlreadyEvaluated, Some(post(c.value, vec![]))));
                }
                if c.window > window {
                    let e = Evaluation::Superseded {
                        counter_window: c.window.0,
                    };
                    return Ok((e, Some(post(c.value, vec![]))));
                }
            }
            let inputs = WindowInputs {
                inbound: m.inbound_check.then(|| {
                    InboundObservation::from_counts(state.inbound.failures, state.inbound.successes)
                }),
                outbound: m
                    .outbound_check
                    .then(|| judge(state.probe.as_ref(), m.acceptable_latency_secs)),
            };
            let prev = state.counter.map(|c| c.value).unwrap_or(0);
            let s = step(prev, m.threshold, inputs);
            let entry = HistoryEntry {
                window,
                inbound_counts: state.inbound,
                inbound: inputs.inbound,
                outbound: inputs.outbound,
                outbound_reason: outbound_reason.clone(),
                provider: provider.clone(),
                step: s,
                threshold: m.threshold,
                evaluated_at: now,
            };
            match self
                .store
                .commit_window(&cfg.org_id, state.counter.map(|c| c.window), &entry)
                .await
            {
                Ok(CommitOutcome::Committed) => {
                    tracing::info!(
                        org = %cfg.org_id, %window, inbound = ?inputs.inbound, outbound = ?inputs.outbound,
                        delta = s.delta, value = s.value, threshold = m.threshold, "counter moved"
                    );
                    let e = Evaluation::Committed {
                        value: s.value,
                        delta: s.delta,
                    };
                    return Ok((e, Some(post(s.value, failing(&inputs)))));
                }
                Ok(CommitOutcome::AlreadyEvaluated) => {
                    // Another run committed this window between our read and write: read its result.
                    let after = self.store.window_state(&cfg.org_id, window).await?;
                    let value = after.counter.map(|c| c.value).unwrap_or(s.value);
                    return Ok((Evaluation::AlreadyEvaluated, Some(post(value, vec![]))));
                }
                // The counter moved between read and write (another window's run): read again.
                Err(e) if e.is_conditional_check_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Transient(format!(
            "counter kept moving during {COMMIT_ATTEMPTS} attempts"
        )))
    }
}

/// How long the provider's health may take before the window is evaluated without it.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Monitor<'_> {
    /// The provider's open incident, when the organisation asked for it (D10). A failure to read
    /// it is logged and shows nothing: health never moves the counter, nor holds it up.
    async fn provider_health(
        &self,
        cfg: &OrgConfig,
        now: DateTime<Utc>,
    ) -> Option<ProviderIncident> {
        match tokio::time::timeout(HEALTH_TIMEOUT, self.logon.provider_health(cfg, now)).await {
            Ok(Ok(incident)) => incident,
            Ok(Err(reason)) => {
                tracing::warn!(org = %cfg.org_id, %reason, "provider health not read");
                None
            }
            Err(_) => {
                tracing::warn!(org = %cfg.org_id, "provider health not read in time");
                None
            }
        }
    }
}

/// The checks that failed in a window, for a new alert episode.
fn failing(inputs: &WindowInputs) -> Vec<Failing> {
    let mut failing = Vec::new();
    if inputs.inbound.map(InboundObservation::verdict) == Some(Verdict::Fail) {
        failing.push(Failing::Inbound);
    }
    if inputs.outbound.map(|o| o.verdict()) == Some(Verdict::Fail) {
        failing.push(Failing::Outbound);
    }
    failing
}
