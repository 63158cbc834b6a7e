//! The continuity monitor's run (D1-D6): for every monitored organisation, evaluate the window
//! that just ended, then send the probe for the window that starts now.
//!
//! Exactly once (D6) does not rest on the scheduler: the window comes from the scheduled time of
//! the event (a retried event names the same window), the counter moves by a conditional
//! transaction keyed on the window number, and the probe of a window is claimed by a conditional
//! put before it is sent.

use crate::clock::Clock;
use crate::config::OrgConfig;
use crate::counter::{step, InboundObservation, WindowInputs};
use crate::error::StoreError;
use crate::probe::{judge, probe_message, ProbeToken};
use crate::secrets::SecretSource;
use crate::smtp::ProbeSender;
use crate::store::{CommitOutcome, HistoryEntry, MonitorStore};
use crate::window::Window;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

/// How many times a window commit is retried when the counter moved under it.
const COMMIT_ATTEMPTS: usize = 4;

/// The monitor's collaborators.
pub struct Monitor<'a> {
    pub store: &'a dyn MonitorStore,
    pub secrets: &'a dyn SecretSource,
    pub sender: &'a dyn ProbeSender,
    pub clock: &'a dyn Clock,
    /// Organisations handled at once.
    pub fan_out: usize,
}

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

/// What became of the probe for the new window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProbeResult {
    /// The outbound check is off.
    Off,
    /// The organisation was not evaluated (its configuration is unusable): no probe either.
    Skipped,
    /// The run is late: the window the probe was for is over, so no probe is sent.
    TooLate,
    /// Another run claimed this window's probe.
    ClaimedElsewhere,
    Sent,
    /// Could not be sent (counts at the next window).
    NotSent {
        reason: String,
    },
    /// The claim or its result could not be stored.
    StoreFailed {
        reason: String,
    },
}

/// One organisation's outcome in a run.
#[derive(Debug, Clone, Serialize)]
pub struct OrgOutcome {
    pub org_id: String,
    pub evaluation: Evaluation,
    pub probe: ProbeResult,
}

/// A run's summary, returned by the handler and logged.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub window: Window,
    pub organisations: usize,
    pub committed: usize,
    pub already_evaluated: usize,
    pub failed: usize,
    pub probes_sent: usize,
    pub probes_not_sent: usize,
    pub outcomes: Vec<OrgOutcome>,
}

impl<'a> Monitor<'a> {
    /// Runs the monitor for the schedule tick at `scheduled_at` (a window start). Fails only when
    /// the organisations cannot be listed; one organisation's failure is in its outcome.
    pub async fn run(&self, scheduled_at: DateTime<Utc>) -> Result<RunReport, StoreError> {
        let window = Window::just_ended(scheduled_at);
        let orgs = self.store.monitored_orgs().await?;
        let organisations = orgs.len();
        let outcomes: Vec<OrgOutcome> = stream::iter(orgs)
            .map(|entry| async move {
                match entry.config {
                    Err(reason) => {
                        tracing::warn!(org = %entry.org_id, %reason, "organisation skipped: configuration unusable");
                        OrgOutcome {
                            org_id: entry.org_id,
                            evaluation: Evaluation::Failed {
                                reason: format!("configuration unusable: {reason}"),
                            },
                            probe: ProbeResult::Skipped,
                        }
                    }
                    Ok(cfg) => {
                        let evaluation = self.evaluate(&cfg, window).await;
                        let probe = self.probe(&cfg, window.next()).await;
                        OrgOutcome {
                            org_id: cfg.org_id,
                            evaluation,
                            probe,
                        }
                    }
                }
            })
            .buffer_unordered(self.fan_out.max(1))
            .collect()
            .await;

        let count = |f: &dyn Fn(&OrgOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        let report = RunReport {
            window,
            organisations,
            committed: count(&|o| matches!(o.evaluation, Evaluation::Committed { .. })),
            already_evaluated: count(&|o| matches!(o.evaluation, Evaluation::AlreadyEvaluated)),
            failed: count(&|o| matches!(o.evaluation, Evaluation::Failed { .. })),
            probes_sent: count(&|o| o.probe == ProbeResult::Sent),
            probes_not_sent: count(&|o| matches!(o.probe, ProbeResult::NotSent { .. })),
            outcomes,
        };
        tracing::info!(
            window = %report.window,
            organisations = report.organisations,
            committed = report.committed,
            already_evaluated = report.already_evaluated,
            failed = report.failed,
            probes_sent = report.probes_sent,
            probes_not_sent = report.probes_not_sent,
            "monitor run complete"
        );
        Ok(report)
    }

    /// Evaluates one organisation's window and moves its counter once (D2-D6).
    pub async fn evaluate(&self, cfg: &OrgConfig, window: Window) -> Evaluation {
        match self.try_evaluate(cfg, window).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "window evaluation failed");
                Evaluation::Failed {
                    reason: e.to_string(),
                }
            }
        }
    }

    async fn try_evaluate(
        &self,
        cfg: &OrgConfig,
        window: Window,
    ) -> Result<Evaluation, StoreError> {
        let m = &cfg.monitoring;
        for _ in 0..COMMIT_ATTEMPTS {
            let state = self.store.window_state(&cfg.org_id, window).await?;
            if let Some(c) = state.counter {
                if c.window == window {
                    return Ok(Evaluation::AlreadyEvaluated);
                }
                if c.window > window {
                    return Ok(Evaluation::Superseded {
                        counter_window: c.window.0,
                    });
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
                step: s,
                threshold: m.threshold,
                evaluated_at: self.clock.now(),
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
                    return Ok(Evaluation::Committed {
                        value: s.value,
                        delta: s.delta,
                    });
                }
                Ok(CommitOutcome::AlreadyEvaluated) => return Ok(Evaluation::AlreadyEvaluated),
                // The counter moved between read and write (another window's run): read again.
                Err(e) if e.is_conditional_check_failed() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Transient(format!(
            "counter kept moving during {COMMIT_ATTEMPTS} attempts"
        )))
    }

    /// Sends the probe for `window` (the one starting now), once across all runs.
    pub async fn probe(&self, cfg: &OrgConfig, window: Window) -> ProbeResult {
        let Some(mailbox) = cfg.probe.as_ref().filter(|_| cfg.monitoring.outbound_check) else {
            return ProbeResult::Off;
        };
        let now = self.clock.now();
        if Window::containing(now) != window {
            tracing::warn!(org = %cfg.org_id, %window, %now, "run is outside the probe's window: no probe sent");
            return ProbeResult::TooLate;
        }
        let token = ProbeToken::new(&cfg.org_id, window);
        match self
            .store
            .claim_probe(&cfg.org_id, window, &token.nonce, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return ProbeResult::ClaimedElsewhere,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "probe claim failed");
                return ProbeResult::StoreFailed {
                    reason: e.to_string(),
                };
            }
        }
        let recipient = token.recipient(&mailbox.probe_address);
        let result = match self.secrets.secret(&mailbox.password_secret).await {
            Err(e) => Err(format!("probe password: {e}")),
            Ok(password) => {
                let message = probe_message(&token, &mailbox.from_address, &recipient, now);
                self.sender
                    .send_probe(mailbox, &password, &recipient, message.as_bytes())
                    .await
                    .map(|_| self.clock.now())
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(reason) = &result {
            tracing::warn!(org = %cfg.org_id, %window, %reason, host = %mailbox.host, "probe not sent");
        }
        let outcome = match &result {
            Ok(_) => ProbeResult::Sent,
            Err(reason) => ProbeResult::NotSent {
                reason: reason.clone(),
            },
        };
        match self.store.finish_probe(&cfg.org_id, window, result).await {
            Ok(()) => outcome,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "probe result not stored");
                ProbeResult::StoreFailed {
                    reason: e.to_string(),
                }
            }
        }
    }
}
