//! The continuity monitor's run (D1-D6): for every monitored organisation, evaluate the window
//! that just ended, then send the probe for the window that starts now.
//!
//! Exactly once (D6) does not rest on the scheduler: the window comes from the scheduled time of
//! the event (a retried event names the same window), the counter moves by a conditional
//! transaction keyed on the window number, and the probe of a window is claimed by a conditional
//! put before it is sent.

use crate::app::continuity::{automatic_activation_due, ended, Continuity};
use crate::domain::alerts::{self, Episode, Failing, Plan, Situation};
use crate::domain::config::OrgConfig;
use crate::domain::continuity::ContinuityState;
use crate::domain::continuity::{EventMarks, Phase};
use crate::domain::counter::{step, InboundObservation, Verdict, WindowInputs};
use crate::domain::links::LinkKeys;
use crate::domain::monitoring::{CommitOutcome, HistoryEntry};
use crate::domain::probe::{judge, probe_message, ProbeToken};
use crate::domain::queue::QueueFigures;
use crate::domain::window::Window;
use crate::ports::clock::Clock;
use crate::ports::error::StoreError;
use crate::ports::mail::ProbeSender;
use crate::ports::notify::{AlertChannels, EventBus};
use crate::ports::secrets::SecretSource;
use crate::ports::store::MonitorStore;
use crate::ports::store::{AlertStore, QueueFiguresSource};
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
    pub alerting: Alerting<'a>,
}

/// What raising alerts needs (A1-A5, D8).
pub struct Alerting<'a> {
    pub store: &'a dyn AlertStore,
    pub queue: &'a dyn QueueFiguresSource,
    pub channels: &'a dyn AlertChannels,
    /// The service's event bus (P7).
    pub bus: &'a dyn EventBus,
    /// Name of the secret holding the link-signing key set (see [`LinkKeys`]).
    pub link_keys_secret: &'a str,
    /// Base of portal links, e.g. `https://continuity.example.com`.
    pub portal_base_url: &'a str,
}

/// A claim left unfinished this long belongs to a run that died: the send is tried again.
const STALE_SEND_MINUTES: i64 = 5;

/// What became of one organisation's alerts in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertOutcome {
    /// This run opened an episode (ThresholdReached).
    pub started: bool,
    /// This run closed an episode (ConditionCleared).
    pub ended: bool,
    /// An alert was due but notifications are suspended or an event is active.
    pub suppressed: bool,
    pub sent: u32,
    pub failed: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state after a window, for the alert decision.
#[derive(Debug, Clone)]
struct PostWindow {
    counter: u32,
    continuity: ContinuityState,
    marks: EventMarks,
    episode: Option<Episode>,
    queue_count: u64,
    failing_now: Vec<Failing>,
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
                            alerts: AlertOutcome::default(),
                        }
                    }
                    Ok(cfg) => {
                        let (evaluation, post) = self.evaluate_full(&cfg, window).await;
                        let probe = self.probe(&cfg, window.next()).await;
                        let alerts = match post {
                            Some(post) => {
                                self.continuity_events(&cfg, &post).await;
                                self.alert(&cfg, &post).await
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
            alerts_sent: outcomes.iter().map(|o| o.alerts.sent).sum(),
            alerts_failed: outcomes.iter().map(|o| o.alerts.failed).sum(),
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
            alerts_sent = report.alerts_sent,
            alerts_failed = report.alerts_failed,
            "monitor run complete"
        );
        Ok(report)
    }

    /// Evaluates one organisation's window and moves its counter once (D2-D6).
    pub async fn evaluate(&self, cfg: &OrgConfig, window: Window) -> Evaluation {
        self.evaluate_full(cfg, window).await.0
    }

    async fn evaluate_full(
        &self,
        cfg: &OrgConfig,
        window: Window,
    ) -> (Evaluation, Option<PostWindow>) {
        match self.try_evaluate(cfg, window).await {
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
    ) -> Result<(Evaluation, Option<PostWindow>), StoreError> {
        let m = &cfg.monitoring;
        for _ in 0..COMMIT_ATTEMPTS {
            let state = self.store.window_state(&cfg.org_id, window).await?;
            let post = |counter: u32, failing_now: Vec<Failing>| PostWindow {
                counter,
                continuity: state.continuity,
                marks: state.continuity_marks.clone(),
                episode: state.episode.clone(),
                queue_count: state.queue_count,
                failing_now,
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
                    let mut failing = Vec::new();
                    if inputs.inbound.map(InboundObservation::verdict) == Some(Verdict::Fail) {
                        failing.push(Failing::Inbound);
                    }
                    if inputs.outbound.map(|o| o.verdict()) == Some(Verdict::Fail) {
                        failing.push(Failing::Outbound);
                    }
                    let e = Evaluation::Committed {
                        value: s.value,
                        delta: s.delta,
                    };
                    return Ok((e, Some(post(s.value, failing))));
                }
                Ok(CommitOutcome::AlreadyEvaluated) => {
                    // Another run committed this window between our read and write: read its result.
                    let now = self.store.window_state(&cfg.org_id, window).await?;
                    let value = now.counter.map(|c| c.value).unwrap_or(s.value);
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

    /// Continuity events the monitor owns (P6, P9, P10): activates continuity mode by itself
    /// when the policy says so, announces a planned event's start and every event's end once
    /// (the continuity use case), and tells users (A6). Never fails the run.
    async fn continuity_events(&self, cfg: &OrgConfig, post: &PostWindow) {
        let Some(cs) = self.store.continuity() else {
            return;
        };
        let org = cfg.org_id.as_str();
        let now = self.clock.now();
        let marks = &post.marks;
        let continuity = Continuity {
            store: cs,
            bus: self.alerting.bus,
        };
        // P9: the condition has held long enough; once per alert episode.
        if let (Some(minutes), Some(ep)) = (
            automatic_activation_due(
                cfg,
                post.episode.as_ref().map(|e| (e.id.as_str(), e.since)),
                marks,
                &post.continuity,
                now,
            ),
            post.episode.as_ref(),
        ) {
            match continuity
                .activate_automatically(org, &ep.id, minutes, now)
                .await
            {
                Ok(Some(after)) => {
                    self.tell_auto_activation(cfg, ep, &after).await;
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(org, error = %e, "automatic activation failed; tried again next run")
                }
            }
        }
        continuity.announce(org, marks, &post.continuity, now).await;
        let Some(event_id) = marks.event_id.as_deref() else {
            return;
        };
        // A6: users are told by SMS when the event starts and when it ends.
        if cfg.alerts.notify_users {
            if matches!(post.continuity.phase(now), Phase::Continuity { .. })
                && marks.users_told_start.as_deref() != Some(event_id)
            {
                self.tell_users(cfg, cs, event_id, true).await;
            }
            if ended(&post.continuity, now).is_some()
                && marks.users_told_end.as_deref() != Some(event_id)
            {
                self.tell_users(cfg, cs, event_id, false).await;
            }
        }
    }

    /// Sends the A6 notice of event `event_id`'s start (`started`) or end to every user with a
    /// mobile number (the last directory import), then marks the event so that later runs do not
    /// look again. Each user's send is claimed under the event and phase, so a repeated or
    /// concurrent run sends nobody a second one; a failed send leaves the mark unset and is
    /// retried at the next run.
    async fn tell_users(
        &self,
        cfg: &OrgConfig,
        cs: &dyn crate::ports::store::ContinuityStore,
        event_id: &str,
        started: bool,
    ) {
        let org = cfg.org_id.as_str();
        let directory = match cs.user_directory(org).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(org, error = %e, "user notices not sent: directory unreadable");
                return;
            }
        };
        let users: Vec<crate::app::user_notice::UserPhone> = directory
            .mobiles
            .iter()
            .map(|(address, mobile)| crate::app::user_notice::UserPhone {
                user_id: address.clone(),
                mobile: mobile.clone(),
            })
            .collect();
        let inbox_url = format!(
            "{}/inbox",
            self.alerting.portal_base_url.trim_end_matches('/')
        );
        match crate::app::user_notice::notify_users(
            self.alerting.store,
            self.alerting.channels,
            cfg,
            event_id,
            started,
            &users,
            &inbox_url,
            self.clock.now(),
        )
        .await
        {
            Ok(r) if r.failed == 0 => {
                tracing::info!(org, event = event_id, started, sent = r.sent, "users told");
                if let Err(e) = cs.mark_users_told(org, event_id, started).await {
                    tracing::warn!(org, error = %e, "users told, mark not stored (a later run claims nothing twice)");
                }
            }
            Ok(r) => {
                tracing::warn!(
                    org,
                    event = event_id,
                    started,
                    failed = r.failed,
                    "some user notices failed; retried next run"
                )
            }
            Err(e) => tracing::warn!(org, error = %e, "user notices not sent"),
        }
    }

    /// Tells the contacts that continuity mode was activated automatically (P9), once per
    /// contact and channel (claimed like alerts).
    async fn tell_auto_activation(&self, cfg: &OrgConfig, ep: &Episode, s: &ContinuityState) {
        let a = &self.alerting;
        let org = cfg.org_id.as_str();
        let now = self.clock.now();
        let alert_id = format!("auto-{}", ep.id);
        let until = s
            .event_until
            .map(crate::domain::continuity::utc_text)
            .unwrap_or_default();
        let url = match self.link(org, &alert_id, now).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(org, error = %e, "automatic activation notice not sent: no link");
                return;
            }
        };
        for (i, c) in cfg.alerts.contacts.iter().enumerate() {
            for (channel, to) in [("sms", c.mobile.as_deref()), ("email", c.email.as_deref())] {
                let Some(to) = to else { continue };
                let key = format!("{alert_id}#{i}#{channel}");
                match a
                    .store
                    .claim_send(
                        org,
                        &key,
                        now,
                        chrono::Duration::minutes(STALE_SEND_MINUTES),
                    )
                    .await
                {
                    Ok(true) => {}
                    _ => continue,
                }
                let text = format!(
                    "{}: continuity mode was activated automatically (the mail problem lasted), until {until}. Manage: {url}",
                    cfg.name
                );
                let result = if channel == "sms" {
                    a.channels.send_sms(to, &text).await
                } else {
                    let html = format!(
                        "<!doctype html><html><body><p>{}</p><p><a href=\"{u}\">Manage Event</a></p><p>{u}</p></body></html>",
                        alerts::html_escape(&text),
                        u = alerts::html_escape(&url)
                    );
                    let content = alerts::EmailContent {
                        subject: format!("{}: continuity mode activated automatically", cfg.name),
                        text: text.clone(),
                        html,
                    };
                    a.channels.send_email(to, &content).await
                };
                let _ = a
                    .store
                    .finish_send(org, &key, result.map_err(|e| e.to_string()))
                    .await;
            }
        }
    }

    /// Raises, repeats and clears alerts for one organisation (A1-A5, D8). Never fails the run.
    async fn alert(&self, cfg: &OrgConfig, post: &PostWindow) -> AlertOutcome {
        let mut out = AlertOutcome::default();
        if let Err(e) = self.try_alert(cfg, post, &mut out).await {
            tracing::warn!(org = %cfg.org_id, error = %e, "alerting failed; due alerts are retried next run");
            out.error = Some(e);
        }
        out
    }

    async fn try_alert(
        &self,
        cfg: &OrgConfig,
        post: &PostWindow,
        out: &mut AlertOutcome,
    ) -> Result<(), String> {
        let a = &self.alerting;
        let org = cfg.org_id.as_str();
        let now = self.clock.now();
        let queue = match &cfg.alerts.queue {
            Some(_) if post.queue_count > 0 => a
                .queue
                .queue_figures(org)
                .await
                .map_err(|e| e.to_string())?,
            _ => QueueFigures {
                count: post.queue_count,
                oldest: None,
            },
        };
        let queue_over = alerts::queue_over(cfg.alerts.queue.as_ref(), &queue, now);
        let situation = Situation {
            counter: post.counter,
            threshold: cfg.monitoring.threshold,
            queue_over,
            episode: post.episode.as_ref(),
            suppressed: post.continuity.suppresses_alerts(now),
            failing_now: post.failing_now.clone(),
            now,
        };
        match alerts::plan(&situation) {
            Plan::Quiet | Plan::Waiting => Ok(()),
            Plan::Start { episode, send } => {
                let episode = if a
                    .store
                    .start_episode(org, &episode)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    out.started = true;
                    tracing::info!(org, since = %episode.since, failing = ?episode.failing, "condition reached: alert episode opened");
                    self.publish(
                        "ThresholdReached",
                        serde_json::json!({
                            "org_id": org, "episode": episode.id, "since": episode.since,
                            "counter": post.counter, "threshold": cfg.monitoring.threshold,
                            "failing": episode.failing, "queue": queue,
                        }),
                    )
                    .await;
                    episode
                } else {
                    // Another run opened it first: use its episode, so that claims are shared.
                    a.store
                        .episode(org)
                        .await
                        .map_err(|e| e.to_string())?
                        .unwrap_or(episode)
                };
                if send {
                    self.dispatch(cfg, &episode, Some(episode.seq_at(now)), post.counter, out)
                        .await
                } else {
                    out.suppressed = true;
                    Ok(())
                }
            }
            Plan::Repeat { seq, send } => match (&post.episode, send) {
                (Some(e), true) => self.dispatch(cfg, e, Some(seq), post.counter, out).await,
                _ => {
                    out.suppressed = true;
                    Ok(())
                }
            },
            Plan::End => {
                let Some(e) = &post.episode else {
                    return Ok(());
                };
                self.dispatch(cfg, e, None, post.counter, out).await?;
                if a.store
                    .end_episode(org, &e.id)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    out.ended = true;
                    tracing::info!(org, since = %e.since, "condition cleared: alert episode closed");
                    self.publish(
                        "ConditionCleared",
                        serde_json::json!({ "org_id": org, "episode": e.id, "since": e.since, "cleared_at": now }),
                    )
                    .await;
                }
                Ok(())
            }
        }
    }

    /// Sends alert `seq` of the episode (or, with `None`, its recovery notice) to every contact
    /// and channel whose send this run claims. The link is signed only when something is sent.
    async fn dispatch(
        &self,
        cfg: &OrgConfig,
        episode: &Episode,
        seq: Option<i64>,
        counter: u32,
        out: &mut AlertOutcome,
    ) -> Result<(), String> {
        let a = &self.alerting;
        let org = cfg.org_id.as_str();
        let now = self.clock.now();
        let alert_id = match seq {
            Some(n) => episode.alert_id(n),
            None => episode.recovery_id(),
        };
        let mut won = Vec::new();
        for (i, c) in cfg.alerts.contacts.iter().enumerate() {
            if seq.is_none() && !c.recovery_notice {
                continue;
            }
            let channels = [("sms", c.mobile.as_deref()), ("email", c.email.as_deref())];
            for (channel, to) in channels {
                let Some(to) = to else { continue };
                let send_key = format!("{alert_id}#{i}#{channel}");
                let stale = chrono::Duration::minutes(STALE_SEND_MINUTES);
                if a.store
                    .claim_send(org, &send_key, now, stale)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    won.push((send_key, channel, to, c.name.as_str()));
                }
            }
        }
        if won.is_empty() {
            return Ok(());
        }
        let url = match self.link(org, &alert_id, now).await {
            Ok(u) => u,
            Err(e) => {
                // Release the claims as failed: the next run tries again.
                for (key, ..) in &won {
                    let _ = a.store.finish_send(org, key, Err(e.clone())).await;
                }
                out.failed += won.len() as u32;
                return Err(e);
            }
        };
        for (send_key, channel, to, contact) in won {
            let result = match (channel, seq) {
                ("sms", Some(n)) => {
                    a.channels
                        .send_sms(to, &alerts::alert_sms(cfg, counter, n, &url))
                        .await
                }
                ("sms", None) => {
                    a.channels
                        .send_sms(to, &alerts::recovery_sms(cfg, &url))
                        .await
                }
                (_, Some(n)) => {
                    a.channels
                        .send_email(to, &alerts::alert_email(cfg, counter, episode, n, &url))
                        .await
                }
                (_, None) => {
                    a.channels
                        .send_email(to, &alerts::recovery_email(cfg, episode, &url))
                        .await
                }
            };
            let ok = result.is_ok();
            if let Err(e) = &result {
                tracing::warn!(org, alert = %alert_id, channel, contact, error = %e, "alert send failed; retried next run");
            }
            a.store
                .finish_send(org, &send_key, result.map_err(|e| e.to_string()))
                .await
                .map_err(|e| e.to_string())?;
            if ok {
                out.sent += 1;
                tracing::info!(org, alert = %alert_id, channel, contact, "alert sent");
                self.publish(
                    "AlertSent",
                    serde_json::json!({
                        "org_id": org, "alert_id": alert_id, "channel": channel, "contact": contact,
                        "kind": if seq.is_some() { "alert" } else { "recovery" },
                    }),
                )
                .await;
            } else {
                out.failed += 1;
            }
        }
        Ok(())
    }

    /// A signed portal link for one alert (A3).
    async fn link(&self, org: &str, alert_id: &str, now: DateTime<Utc>) -> Result<String, String> {
        let a = &self.alerting;
        let text = self
            .secrets
            .secret(a.link_keys_secret)
            .await
            .map_err(|e| format!("link keys: {e}"))?;
        let keys = LinkKeys::from_json(&text).map_err(|e| e.to_string())?;
        let token = keys.sign(org, alert_id, now).map_err(|e| e.to_string())?;
        Ok(format!(
            "{}/l/{token}",
            a.portal_base_url.trim_end_matches('/')
        ))
    }

    /// Publishes an event on the bus; a failure is logged, never fatal.
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) {
        if let Err(e) = self.alerting.bus.publish(detail_type, detail).await {
            tracing::warn!(detail_type, error = %e, "event not published");
        }
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
