//! The local runner: runs the functions' handlers on a workstation as AWS would run them.
//!
//! - Schedules: the monitor at every window start and the queue every minute, on the machine's
//!   clock or on a [`VirtualClock`] that `advance` moves minute by minute (a day replays in
//!   seconds).
//! - A receiving SMTP stand-in ([`receiving`]) for the service's MX: SES receiving, locally,
//!   with SES's verdicts ([`verdicts`]: SPF, DKIM, DMARC against the DNS; EICAR; GTUBE).
//! - A control API on localhost ([`http`]): status, history, run once, advance the clock.
//! - The HTTP API as API Gateway and Lambda serve it ([`gateway`]): payload 2.0 events through
//!   `lambda_http`, their size limits and timeout.

pub mod config_as_code;
pub mod gateway;
pub mod http;
pub mod receiving;
pub mod verdicts;

use chrono::{DateTime, Utc};
use monitor::{Deps, RunError, RunSummary, ScheduledEvent};
use serde::Serialize;
use shared::adapters::clock::VirtualClock;
use shared::app::monitor::{ProbeResult, RunReport};
use shared::domain::window::{Window, WINDOW_SECS};
use shared::ports::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

/// Runs scheduled handlers.
pub struct Runner {
    pub deps: Arc<Deps>,
    /// The inbound and queue functions' dependencies (the queue runs only when set).
    pub inbound: Option<Arc<inbound::Deps>>,
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
            inbound: None,
            virtual_clock,
            settle,
            tick: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds the inbound and queue functions: the queue then runs every minute too.
    pub fn with_inbound(mut self, deps: Arc<inbound::Deps>) -> Self {
        self.inbound = Some(deps);
        self
    }

    /// Runs the queue once as its schedule would at `at` (`None` without the inbound functions).
    pub async fn run_queue(
        &self,
        at: DateTime<Utc>,
    ) -> Option<Result<shared::app::queue::TickReport, shared::ports::error::StoreError>> {
        let deps = self.inbound.as_ref()?;
        Some(
            inbound::handle_queue(
                deps,
                inbound::ScheduledEvent { time: Some(at) },
                inbound::invocation_deadline(inbound::QUEUE_TIMEOUT),
            )
            .await,
        )
    }

    async fn queue_tick(&self, at: DateTime<Utc>) {
        // Ended at the function's timeout, as Lambda would end it.
        let Ok(run) = tokio::time::timeout(inbound::QUEUE_TIMEOUT, self.run_queue(at)).await else {
            tracing::warn!(%at, timeout_secs = inbound::QUEUE_TIMEOUT.as_secs(), "queue run timed out (Lambda would end it here)");
            return;
        };
        match run {
            None => {}
            Some(Ok(r)) if r.organisations > 0 => {
                tracing::info!(%at, organisations = r.organisations, delivered = r.delivered, bounced = r.bounced, deferred = r.deferred, "queue run")
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!(%at, error = %e, "queue run failed"),
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

    /// Virtual time only: moves the clock forward by `by`, running the queue at every minute and
    /// the monitor at every window start crossed (in order), and waiting after each monitor run
    /// for the probes it sent to arrive.
    pub async fn advance(&self, by: chrono::Duration) -> Result<Vec<Tick>, String> {
        let clock = self.virtual_clock.as_ref().ok_or(
            "the runner is on the machine's clock; start it with --virtual-start to advance time",
        )?;
        let _g = self.tick.lock().await;
        let target = clock.now() + by;
        let mut ticks = Vec::new();
        let mut window_boundary = Window::containing(clock.now()).end();
        let minute = chrono::Duration::minutes(1);
        let mut minute_boundary = minute_floor(clock.now()) + minute;
        if self.inbound.is_none() {
            minute_boundary = window_boundary;
        }
        while minute_boundary <= target {
            clock.set(minute_boundary);
            // The queue every minute, then the monitor at window starts.
            self.queue_tick(minute_boundary).await;
            if minute_boundary == window_boundary {
                let report = monitor::handle(
                    &self.deps,
                    ScheduledEvent {
                        time: Some(window_boundary),
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                self.settle_probes(&report).await;
                ticks.push(Tick {
                    at: window_boundary,
                    summary: report.into(),
                });
                window_boundary += chrono::Duration::seconds(WINDOW_SECS);
            }
            minute_boundary += if self.inbound.is_some() {
                minute
            } else {
                chrono::Duration::seconds(WINDOW_SECS)
            };
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

    /// Machine's clock only: runs the queue at every minute, forever.
    pub async fn run_queue_schedule(self: Arc<Self>) {
        loop {
            let now = Utc::now();
            let next = minute_floor(now) + chrono::Duration::minutes(1);
            tokio::time::sleep((next - now).to_std().unwrap_or_default()).await;
            let _g = self.tick.lock().await;
            self.queue_tick(next).await;
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

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(60) * 60;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}
