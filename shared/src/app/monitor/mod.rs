//! The continuity monitor's run (D1-D6): for every monitored organisation, evaluate the window
//! that just ended, then send the probe for the window that starts now, then act on what the
//! window showed: continuity events and their notices, alerts.
//!
//! - [`evaluate`](Monitor::evaluate): the window's verdict and the counter's move (D2-D6);
//! - [`probe`](Monitor::probe): the next window's probe (D3), the one step that reads the clock
//!   again (real elapsed time matters there);
//! - `announcements`: what contacts and users are told about continuity events (P9, A6);
//! - `alerting`: alert episodes, their sends and links (A1-A5, D8).
//!
//! Exactly once (D6) does not rest on the scheduler: the window comes from the scheduled time of
//! the event (a retried event names the same window), the counter moves by a conditional
//! transaction keyed on the window number, and the probe of a window is claimed by a conditional
//! put before it is sent. The run reads the clock once, at its start, and hands that `now` to
//! every step but the probe.

mod alerting;
mod announcements;
mod evaluate;
mod probe;

pub use alerting::{AlertOutcome, Alerting};
pub use evaluate::Evaluation;
pub use probe::ProbeResult;

use crate::app::probe_logon::ProbeLogons;
use crate::domain::config::OrgConfig;
use crate::domain::window::Window;
use crate::ports::clock::Clock;
use crate::ports::error::StoreError;
use crate::ports::secrets::SecretSource;
use crate::ports::store::MonitorStore;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

/// The monitor's collaborators.
pub struct Monitor<'a> {
    pub store: &'a dyn MonitorStore,
    /// The link-signing key set (alerts).
    pub secrets: &'a dyn SecretSource,
    /// How the probe logs on and sends (D9), and the provider's health (D10).
    pub logon: ProbeLogons<'a>,
    /// Read once per run (its `now`), and by the probe where real elapsed time matters.
    pub clock: &'a dyn Clock,
    /// Organisations handled at once.
    pub fan_out: usize,
    pub alerting: Alerting<'a>,
}

/// One organisation's outcome in a run.
#[derive(Debug, Clone, Serialize)]
pub struct OrgOutcome {
    pub org_id: String,
    pub evaluation: Evaluation,
    pub probe: ProbeResult,
    pub alerts: AlertOutcome,
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
    pub alerts_sent: u32,
    pub alerts_failed: u32,
    pub outcomes: Vec<OrgOutcome>,
}

impl Monitor<'_> {
    /// Runs the monitor for the schedule tick at `scheduled_at` (a window start), reading the
    /// clock once for the run's `now`. See [`Monitor::run_at`].
    pub async fn run(&self, scheduled_at: DateTime<Utc>) -> Result<RunReport, StoreError> {
        self.run_at(scheduled_at, self.clock.now()).await
    }

    /// Runs the monitor for the schedule tick at `scheduled_at`, at `now`. Fails only when the
    /// organisations cannot be listed; one organisation's failure is in its outcome.
    pub async fn run_at(
        &self,
        scheduled_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RunReport, StoreError> {
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
                            alerts: AlertOutcome::default(),
                        }
                    }
                    Ok(cfg) => self.organisation(cfg, window, now).await,
                }
            })
            .buffer_unordered(self.fan_out.max(1))
            .collect()
            .await;
        let report = RunReport::new(window, organisations, outcomes);
        report.log();
        Ok(report)
    }

    /// One organisation's part of a run: its window, its next probe, then what the window
    /// showed (continuity events, alerts).
    async fn organisation(&self, cfg: OrgConfig, window: Window, now: DateTime<Utc>) -> OrgOutcome {
        let (evaluation, post) = self.evaluate_full(&cfg, window, now).await;
        let probe = self.probe(&cfg, window.next()).await;
        let alerts = match post {
            Some(post) => {
                self.continuity_events(&cfg, &post, now).await;
                self.alert(&cfg, &post, now).await
            }
            None => AlertOutcome::default(),
        };
        OrgOutcome {
            org_id: cfg.org_id,
            evaluation,
            probe,
            alerts,
        }
    }
}

impl RunReport {
    /// The figures of a run from its organisations' outcomes.
    fn new(window: Window, organisations: usize, outcomes: Vec<OrgOutcome>) -> Self {
        let count = |f: &dyn Fn(&OrgOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        RunReport {
            window,
            organisations,
            committed: count(&|o| matches!(o.evaluation, Evaluation::Committed { .. })),
            already_evaluated: count(&|o| matches!(o.evaluation, Evaluation::AlreadyEvaluated)),
            failed: count(&|o| matches!(o.evaluation, Evaluation::Failed { .. })),
            probes_sent: count(&|o| o.probe == ProbeResult::Sent),
            probes_not_sent: count(&|o| matches!(o.probe, ProbeResult::NotSent { .. })),
            alerts_sent: outcomes.iter().map(|o| o.alerts.sent).sum(),
            alerts_failed: outcomes.iter().map(|o| o.alerts.failed).sum(),
            outcomes,
        }
    }

    fn log(&self) {
        tracing::info!(
            window = %self.window,
            organisations = self.organisations,
            committed = self.committed,
            already_evaluated = self.already_evaluated,
            failed = self.failed,
            probes_sent = self.probes_sent,
            probes_not_sent = self.probes_not_sent,
            alerts_sent = self.alerts_sent,
            alerts_failed = self.alerts_failed,
            "monitor run complete"
        );
    }
}
