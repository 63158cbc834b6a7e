//! The delivery queue (Q3-Q6): backoff and retention rules, and the scheduled run that retries
//! queued mail every minute.
//!
//! Backoff is per organisation, not per message: what fails is the organisation's server, so
//! while it is down the queue tries its oldest message at growing intervals (initial, doubled,
//! up to the maximum) and leaves the rest alone; once a delivery succeeds the queue drains,
//! oldest first, at most `drain_per_minute` messages a minute. Messages older than the
//! retention are bounced (a DSN through SES to the envelope sender, never to an empty one).
//! Paused: nothing is delivered or bounced; the retention counts again from the end of the pause.
//!
//! Nothing lost (Q6): a message leaves the queue only after the server's 250 to its DATA or
//! after its bounce was sent; a run killed in between delivers it again (a duplicate).
//!
//! No backscatter (Q10): a bounce goes only to a sender whose domain passed SPF or DMARC for the
//! message (or a signed-in user of the service). Otherwise the failure is set aside
//! ([`SetAside`], visible in the queue view and the audit) and nothing is sent. Each delivery
//! carries the trace fields of an honest hop ([`crate::domain::verdicts::stamp`], Q9).

use crate::app::delivery::deliver;
use crate::domain::config::{OrgConfig, QueueSettings};
use crate::domain::delivery::DeliveryReport;
use crate::domain::delivery::{Deadline, DELIVERY_BUDGET_SECS, MIN_ROUTE_TIME};
use crate::domain::mail::{delivery_status_notification, FailedRecipient};
use crate::domain::monitoring::DeliveryOutcome;
use crate::domain::queue::backoff;
use crate::domain::queue::expired;
use crate::domain::queue::HELD_PREFIX;
use crate::domain::queue::HOLD_AFTER_DAYS;
use crate::domain::queue::TICK_LEASE_MINUTES;
use crate::domain::queue::TICK_MINUTES;
use crate::domain::queue::{AsideKind, Departure, DueOrg, QueuedMessage, SetAside};
use crate::domain::verdicts::{stamp, Hop};
use crate::ports::blob::RawMessages;
use crate::ports::error::{BlobError, StoreError};
use crate::ports::mail::MailSender;
use crate::ports::mail::RouteTransport;
use crate::ports::store::{InboundRecorder, MailStore, QueueStore};
use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

/// Messages moved to the held prefix per organisation per run, at most.
const HOLD_BATCH: usize = 100;

/// What delivering and bouncing need; shared by the inbound function and the queue.
pub struct Courier<'a> {
    pub queue: &'a dyn QueueStore,
    pub recorder: &'a dyn InboundRecorder,
    pub raw: &'a dyn RawMessages,
    pub transport: &'a dyn RouteTransport,
    pub bouncer: &'a dyn MailSender,
    /// The address bounces come from (`BOUNCE_SENDER`).
    pub bounce_sender: &'a str,
    /// The service's host name (`SMTP_HELO_NAME`): the `by` of the trace fields it adds.
    pub host: &'a str,
}

/// What became of one delivery attempt of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Attempt {
    /// Every recipient has its final answer: the message left the queue.
    Done { delivered: usize, bounced: usize },
    /// Some recipients are still waiting; `route_failed`: no route gave any final answer.
    Pending {
        remaining: usize,
        route_failed: bool,
        reason: String,
    },
}

impl Courier<'_> {
    /// Delivers `raw` over the organisation's routes, records the outcome for the inbound check
    /// (D2), bounces the recipients the server refused for good, and dequeues or requeues.
    pub async fn attempt(
        &self,
        config: &OrgConfig,
        msg: &QueuedMessage,
        raw: &[u8],
        now: DateTime<Utc>,
        deadline: Deadline,
    ) -> Result<Attempt, StoreError> {
        let timeout = std::time::Duration::from_secs(u64::from(config.delivery.timeout_secs));
        let stamped = stamp(
            raw,
            &Hop {
                host: self.host,
                id: &msg.id,
                received_at: msg.enqueued_at,
                sender: &msg.sender,
                recipients: &msg.recipients,
                origin: msg.origin,
            },
        );
        let report = deliver(
            self.transport,
            &config.routes,
            timeout,
            deadline,
            &msg.sender,
            &msg.recipients,
            &stamped,
        )
        .await;
        // Recorded before anything else, so that a server that hung is counted as failing
        // (D2) even if what follows runs out of time. Nothing is known when no route was tried.
        if report.routes_tried > 0 {
            if let Err(e) = self
                .recorder
                .record_delivery(&msg.org_id, now, report.outcome())
                .await
            {
                // The inbound check misses one observation; the message itself is unaffected.
                tracing::warn!(org = %msg.org_id, error = %e, "delivery outcome not recorded");
            }
        }
        self.settle(msg, &report, raw, now).await
    }

    /// Deletes a held copy once its message has left the queue (best effort: a copy left
    /// behind costs storage, never mail).
    pub async fn release_held(&self, msg: &QueuedMessage) {
        if msg.raw_key.starts_with(HELD_PREFIX) {
            if let Err(e) = self.raw.delete(&msg.raw_key).await {
                tracing::warn!(org = %msg.org_id, id = %msg.id, error = %e, "held copy not deleted");
            }
        }
    }

    async fn settle(
        &self,
        msg: &QueuedMessage,
        report: &DeliveryReport,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Attempt, StoreError> {
        let mut pending = report.pending.clone();
        let mut bounced = 0;
        if !report.rejected.is_empty() {
            let failed: Vec<FailedRecipient> = report
                .rejected
                .iter()
                .map(|(a, why)| FailedRecipient {
                    address: a.clone(),
                    status: status_of(why, "5.0.0"),
                    diagnostic: why.clone(),
                })
                .collect();
            match self.bounce_or_set_aside(msg, &failed, raw, now).await {
                Ok(()) => bounced = failed.len(),
                // Not bounced yet: those recipients stay queued (tried again, refused again,
                // bounced then). Never dropped.
                Err(e) => {
                    tracing::warn!(org = %msg.org_id, id = %msg.id, error = %e, "bounce not sent; recipients stay queued");
                    pending.extend(report.rejected.iter().map(|(a, _)| a.clone()));
                }
            }
        }
        if pending.is_empty() {
            let why = if !report.delivered.is_empty() {
                Departure::Delivered
            } else if msg.origin.may_bounce() {
                Departure::Bounced
            } else {
                Departure::Undeliverable
            };
            self.queue.dequeue(msg, why, now).await?;
            self.release_held(msg).await;
            return Ok(Attempt::Done {
                delivered: report.delivered.len(),
                bounced,
            });
        }
        let reason = report
            .last_error()
            .unwrap_or("the bounce could not be sent")
            .to_string();
        let next = QueuedMessage {
            recipients: pending.clone(),
            attempts: msg.attempts + u32::from(report.routes_tried > 0),
            last_error: Some(reason.clone()),
            not_before: now,
            ..msg.clone()
        };
        self.queue.requeue(&next).await?;
        Ok(Attempt::Pending {
            remaining: pending.len(),
            route_failed: report.routes_tried > 0
                && report.outcome() == DeliveryOutcome::AllRoutesFailed,
            reason,
        })
    }

    /// Sends a DSN for `failed` to the message's sender when it may have one (Q10: a sender
    /// that passed SPF or DMARC, never `<>`); otherwise sets the failure aside, with its
    /// reason, for the queue view and the audit, and sends nothing. `Ok` once either is done.
    async fn bounce_or_set_aside(
        &self,
        msg: &QueuedMessage,
        failed: &[FailedRecipient],
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let why_not = if !msg.origin.may_bounce() {
            Some(msg.origin.why_no_bounce())
        } else if crate::domain::mail::mailbox_of(&msg.sender).is_none() {
            Some("no bounce sent: the message has no sender to return it to (<>)".to_string())
        } else {
            None
        };
        let Some(why_not) = why_not else {
            return match delivery_status_notification(
                self.bounce_sender,
                &msg.sender,
                &msg.id,
                msg.enqueued_at,
                now,
                failed,
                raw,
            ) {
                None => Ok(()),
                Some(b) => self
                    .bouncer
                    .send_raw(&b.from, std::slice::from_ref(&b.to), b.raw)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
        };
        let answers: Vec<String> = failed
            .iter()
            .map(|f| format!("{}: {}", f.address, f.diagnostic))
            .collect();
        let aside = SetAside::of(
            msg,
            AsideKind::Undeliverable,
            failed.iter().map(|f| f.address.clone()).collect(),
            now,
            format!("{}; {why_not}", answers.join("; ")),
        );
        tracing::info!(org = %msg.org_id, id = %msg.id, reason = %aside.reason, "undeliverable: set aside without a bounce");
        self.queue
            .set_aside(&aside, &aside.audit("service:queue"))
            .await
            .map_err(|e| e.to_string())
    }
}

/// The RFC 3463 status in a server's answer (`550 5.1.1 ...`), or `default`.
fn status_of(answer: &str, default: &str) -> String {
    answer
        .split_whitespace()
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && p.iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .unwrap_or(default)
        .to_string()
}

/// The queue's scheduled run.
pub struct Queue<'a> {
    pub store: &'a dyn QueueStore,
    pub mail: &'a dyn MailStore,
    pub courier: Courier<'a>,
    /// Organisations handled at once.
    pub fan_out: usize,
    /// When the run must be over: the invocation's deadline less the time to settle.
    pub deadline: Deadline,
}

/// One organisation's part of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrgTick {
    pub org_id: String,
    pub delivered: usize,
    pub bounced: usize,
    /// Messages tried that are still queued.
    pub deferred: usize,
    pub paused: bool,
    /// Another run held the organisation.
    pub skipped: bool,
    pub error: Option<String>,
}

/// A run's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    pub at: DateTime<Utc>,
    pub organisations: usize,
    pub delivered: usize,
    pub bounced: usize,
    pub deferred: usize,
    /// Organisations that need attention, with reasons.
    pub attention: Vec<OrgTick>,
}

impl Queue<'_> {
    /// Looks at every organisation whose queue is due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let due = self.store.due_orgs(now).await?;
        let results: Vec<OrgTick> = stream::iter(due)
            .map(|d| async move {
                let org_id = d.org_id.clone();
                // One organisation's slow server costs it its own slice, never the others
                // their run: each starts with a budget of its own, and an organisation whose
                // turn comes too late is left (unclaimed) for the next run.
                let started = tokio::time::Instant::now().into_std();
                if !self.deadline.allows(started, MIN_ROUTE_TIME) {
                    return OrgTick {
                        org_id,
                        skipped: true,
                        ..Default::default()
                    };
                }
                let slice = Deadline::within(
                    started,
                    std::time::Duration::from_secs(u64::from(DELIVERY_BUDGET_SECS)),
                )
                .min(self.deadline);
                match self.org(&d, now, slice).await {
                    Ok(t) => t,
                    Err(e) => OrgTick {
                        org_id,
                        error: Some(e.to_string()),
                        ..Default::default()
                    },
                }
            })
            .buffer_unordered(self.fan_out.max(1))
            .collect()
            .await;
        let mut r = TickReport {
            at: now,
            organisations: results.len(),
            ..Default::default()
        };
        for t in results {
            r.delivered += t.delivered;
            r.bounced += t.bounced;
            r.deferred += t.deferred;
            if t.error.is_some() {
                r.attention.push(t);
            }
        }
        Ok(r)
    }

    async fn org(
        &self,
        due: &DueOrg,
        now: DateTime<Utc>,
        slice: Deadline,
    ) -> Result<OrgTick, StoreError> {
        let org_id = due.org_id.as_str();
        let mut t = OrgTick {
            org_id: org_id.to_string(),
            ..Default::default()
        };
        let next_tick = now + Duration::minutes(TICK_MINUTES);
        let Some(state) = self
            .store
            .claim_org(due, now + Duration::minutes(TICK_LEASE_MINUTES))
            .await?
        else {
            t.skipped = true;
            return Ok(t);
        };
        let Some(config) = self.mail.org_config(org_id).await? else {
            t.error = Some("queued mail but no configuration: look again in 30 minutes".into());
            self.store
                .set_wake(org_id, now + Duration::minutes(30), state.failures, None)
                .await?;
            return Ok(t);
        };
        let q = &config.queue;
        if q.paused {
            // Q4: nothing delivered or bounced. Looked at every minute, so that unpausing
            // takes effect at the next run.
            t.paused = true;
            let oldest = self.store.oldest(org_id, HOLD_BATCH).await?;
            if let Err(e) = self.hold_old(&oldest, now).await {
                t.error = Some(e);
            }
            self.store
                .set_wake(org_id, next_tick, state.failures, Some(now))
                .await?;
            return Ok(t);
        }
        let limit = (q.drain_per_minute as usize + 100).min(1000);
        let msgs = self.store.oldest(org_id, limit).await?;
        if msgs.is_empty() {
            self.store.settle_idle(org_id, next_tick).await?;
            return Ok(t);
        }
        if let Err(e) = self.hold_old(&msgs, now).await {
            t.error = Some(e);
        }
        let mut more = msgs.len() >= limit;
        let mut route_failed = None;
        let mut tried = 0u32;
        for m in &msgs {
            // Retention counts from the arrival, or from the end of a pause (Q4).
            let since = state
                .paused_at
                .map_or(m.enqueued_at, |p| p.max(m.enqueued_at));
            if expired(q, since, now) {
                match self.expire(m, q, now).await {
                    Ok(()) => t.bounced += 1,
                    Err(e) => {
                        t.error = Some(e);
                        more = true;
                    }
                }
                continue;
            }
            if m.not_before > now {
                // The inbound function is still on it.
                more = true;
                continue;
            }
            if tried >= q.drain_per_minute
                || !slice.allows(tokio::time::Instant::now().into_std(), MIN_ROUTE_TIME)
            {
                more = true;
                break;
            }
            let raw = match self.courier.raw.get(&m.raw_key).await {
                Ok(r) => r,
                Err(BlobError::NotFound(k)) => {
                    t.error = Some(format!("raw message {k} is missing: {} stays queued", m.id));
                    continue;
                }
                Err(e) => {
                    t.error = Some(e.to_string());
                    more = true;
                    break;
                }
            };
            tried += 1;
            match self.courier.attempt(&config, m, &raw, now, slice).await? {
                Attempt::Done { delivered, bounced } => {
                    if delivered > 0 {
                        t.delivered += 1;
                    } else if bounced > 0 {
                        t.bounced += 1;
                    }
                }
                Attempt::Pending {
                    route_failed: rf,
                    reason,
                    ..
                } => {
                    t.deferred += 1;
                    if rf {
                        route_failed = Some(reason);
                        break;
                    }
                }
            }
        }
        if route_failed.is_some() {
            let f = state.failures.saturating_add(1);
            self.store
                .set_wake(org_id, now + backoff(q, f), f, state.paused_at)
                .await?;
        } else if more {
            self.store
                .set_wake(org_id, next_tick, 0, state.paused_at)
                .await?;
        } else {
            self.store.settle_idle(org_id, next_tick).await?;
        }
        Ok(t)
    }

    /// Copies the raw bytes of messages queued longer than [`HOLD_AFTER_DAYS`] out of the
    /// expiring prefix, and points the queued items at the copies (`msgs` oldest first).
    /// Copy first, then repoint: a crash between the two leaves an extra copy, never a lost one.
    async fn hold_old(&self, msgs: &[QueuedMessage], now: DateTime<Utc>) -> Result<(), String> {
        let cutoff = now - Duration::days(HOLD_AFTER_DAYS);
        for m in msgs
            .iter()
            .take_while(|m| m.enqueued_at < cutoff)
            .filter(|m| !m.raw_key.starts_with(HELD_PREFIX))
            .take(HOLD_BATCH)
        {
            let held = format!("{HELD_PREFIX}{}/{}", m.org_id, m.id);
            match self.courier.raw.copy(&m.raw_key, &held).await {
                Ok(()) => {}
                // Already gone: nothing to keep (delivery or the bounce says so).
                Err(BlobError::NotFound(_)) => continue,
                Err(e) => return Err(format!("keeping raw message {}: {e}", m.id)),
            }
            self.store
                .set_raw_key(m, &held)
                .await
                .map_err(|e| format!("keeping raw message {}: {e}", m.id))?;
            tracing::info!(org = %m.org_id, id = %m.id, key = %held, "long-queued message kept outside the expiring prefix");
        }
        Ok(())
    }

    /// Bounces a message that outlived the retention (Q3) and dequeues it once the bounce went.
    async fn expire(
        &self,
        m: &QueuedMessage,
        q: &QueueSettings,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let raw = match self.courier.raw.get(&m.raw_key).await {
            Ok(r) => r,
            // The bounce quotes the original headers; without the raw it says so instead.
            Err(BlobError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        let failed: Vec<FailedRecipient> = m
            .recipients
            .iter()
            .map(|a| FailedRecipient {
                address: a.clone(),
                status: "4.4.7".into(),
                diagnostic: format!(
                    "the organisation's mail server did not accept the message within {} hours{}",
                    q.retention_hours,
                    m.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
            })
            .collect();
        self.courier
            .bounce_or_set_aside(m, &failed, &raw, now)
            .await
            .map_err(|e| format!("bounce of {} not sent: {e}", m.id))?;
        let why = if m.origin.may_bounce() {
            Departure::Bounced
        } else {
            Departure::Undeliverable
        };
        self.store
            .dequeue(m, why, now)
            .await
            .map_err(|e| e.to_string())?;
        self.courier.release_held(m).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let q = QueueSettings {
            backoff_initial_minutes: 1,
            backoff_max_minutes: 30,
            ..Default::default()
        };
        let got: Vec<i64> = (1..=8).map(|f| backoff(&q, f).num_minutes()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(&q, 0).num_minutes(), 1);
        assert_eq!(backoff(&q, u32::MAX).num_minutes(), 30);
        let q = QueueSettings {
            backoff_initial_minutes: 5,
            backoff_max_minutes: 5,
            ..Default::default()
        };
        assert_eq!(backoff(&q, 3).num_minutes(), 5);
    }

    #[test]
    fn retention() {
        let q = QueueSettings::default();
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(!expired(
            &q,
            t0,
            t0 + Duration::hours(96) - Duration::seconds(1)
        ));
        assert!(expired(&q, t0, t0 + Duration::hours(96)));
    }

    #[test]
    fn status_codes_are_read_from_answers() {
        assert_eq!(
            status_of("RCPT TO: 550 5.1.1 Mailbox unavailable", "5.0.0"),
            "5.1.1"
        );
        assert_eq!(status_of("554 no", "5.0.0"), "5.0.0");
    }
}
