//! The local runner: runs the functions' handlers on a workstation as AWS would run them.
//!
//! - Schedules: the monitor at every window start, on the machine's clock or on a
//!   [`VirtualClock`] that `advance` moves window by window (a day replays in seconds).
//! - A receiving SMTP stand-in ([`receiving`]) for the service's MX.
//! - A control API on localhost ([`http`]): status, history, run once, advance the clock.

pub mod http;
pub mod receiving;

use chrono::{DateTime, Utc};
use monitor::{Deps, RunError, RunSummary, ScheduledEvent};
use serde::Serialize;
use shared::clock::{Clock, VirtualClock};
use shared::monitor::{ProbeResult, RunReport};
use shared::window::{Window, WINDOW_SECS};
use std::sync::Arc;
use std::time::Duration;

/// Runs scheduled handlers.
pub struct Runner {
    pub deps: Arc<Deps>,
    /// Set when the runner is on virtual time.
    pub virtual_clock: Option<VirtualClock>,
    /// On virtual time: how long (real time) to wait after each tick for sent probes to arrive
    /// before the clock moves on, so that a replay judges probes as a live run would.
    pub settle: Duration,
    tick: tokio::sync::Mutex<()>,
}

/// One schedule tick's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub summary: RunSummary,
}

impl Runner {
    pub fn new(deps: Arc<Deps>, virtual_clock: Option<VirtualClock>, settle: Duration) -> Self {
        Runner {
            deps,
            virtual_clock,
            settle,
            tick: tokio::sync::Mutex::new(()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.deps.clock.now()
    }

    /// Runs the monitor once as the schedule would at `at` (default: the start of the current window).
    pub async fn run_monitor(&self, at: Option<DateTime<Utc>>) -> Result<RunReport, RunError> {
        let at = at.unwrap_or_else(|| Window::containing(self.now()).start());
        let _g = self.tick.lock().await;
        monitor::handle(&self.deps, ScheduledEvent { time: Some(at) }).await
    }

    /// Virtual time only: moves the clock forward by `by`, running the monitor at every window
    /// start crossed (in order), and waiting after each for the probes it sent to arrive.
    pub async fn advance(&self, by: chrono::Duration) -> Result<Vec<Tick>, String> {
        let clock = self.virtual_clock.as_ref().ok_or(
            "the runner is on the machine's clock; start it with --virtual-start to advance time",
        )?;
        let _g = self.tick.lock().await;
        let target = clock.now() + by;
        let mut ticks = Vec::new();
        let mut boundary = Window::containing(clock.now()).end();
        while boundary <= target {
            clock.set(boundary);
            let report = monitor::handle(
                &self.deps,
                ScheduledEvent {
                    time: Some(boundary),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            self.settle_probes(&report).await;
            ticks.push(Tick {
                at: boundary,
                summary: report.into(),
            });
            boundary += chrono::Duration::seconds(WINDOW_SECS);
        }
        clock.set(target);
        Ok(ticks)
    }

    /// Waits (real time, bounded by `settle`) until every probe this run sent has arrived.
    async fn settle_probes(&self, report: &RunReport) {
        let window = report.window.next();
        let deadline = tokio::time::Instant::now() + self.settle;
        for o in report
            .outcomes
            .iter()
            .filter(|o| o.probe == ProbeResult::Sent)
        {
            loop {
                match self.deps.store.probe(&o.org_id, window).await {
                    Ok(Some(r)) if r.arrived_at.is_some() => break,
                    Err(e) => {
                        tracing::warn!(org = %o.org_id, error = %e, "settle: probe not readable");
                        break;
                    }
                    _ if tokio::time::Instant::now() >= deadline => break,
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }

    /// Machine's clock only: runs the monitor at every window start, forever.
    pub async fn run_schedule(self: Arc<Self>) {
        loop {
            let now = Utc::now();
            let next = Window::containing(now).end();
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            match self.run_monitor(Some(next)).await {
                Ok(r) => {
                    tracing::info!(window = %r.window, committed = r.committed, failed = r.failed, "scheduled monitor run")
                }
                Err(e) => tracing::warn!(error = %e, "scheduled monitor run failed"),
            }
        }
    }
}
