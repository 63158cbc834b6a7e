//! Alerts after a window (A1-A5, D8): open, repeat and close alert episodes, send each alert
//! once per contact and channel, with a signed portal link (A3), and publish what happened.

use super::evaluate::PostWindow;
use super::Monitor;
use crate::domain::alerts::{
    self, send_key, AlertContext, Channel, Episode, Notice, Plan, Situation, STALE_SEND_MINUTES,
};
use crate::domain::config::OrgConfig;
use crate::domain::links::LinkKeys;
use crate::domain::queue::QueueFigures;
use crate::ports::notify::{AlertChannels, EventBus};
use crate::ports::store::{AlertStore, QueueFiguresSource};
use chrono::{DateTime, Utc};
use serde::Serialize;

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

/// One send this run claimed: its key, channel, address and the contact's name.
struct Claimed<'c> {
    key: String,
    channel: Channel,
    to: &'c str,
    contact: &'c str,
}

impl Monitor<'_> {
    /// Raises, repeats and clears alerts for one organisation at `now` (A1-A5, D8). Never fails
    /// the run.
    pub(super) async fn alert(
        &self,
        cfg: &OrgConfig,
        post: &PostWindow,
        now: DateTime<Utc>,
    ) -> AlertOutcome {
        let mut out = AlertOutcome::default();
        if let Err(e) = self.try_alert(cfg, post, now, &mut out).await {
            tracing::warn!(org = %cfg.org_id, error = %e, "alerting failed; due alerts are retried next run");
            out.error = Some(e);
        }
        out
    }

    async fn try_alert(
        &self,
        cfg: &OrgConfig,
        post: &PostWindow,
        now: DateTime<Utc>,
        out: &mut AlertOutcome,
    ) -> Result<(), String> {
        let a = &self.alerting;
        let org = cfg.org_id.as_str();
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
                    a.bus
                        .publish_or_log(
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
                    let seq = Some(episode.seq_at(now));
                    self.dispatch(cfg, &episode, seq, post, now, out).await
                } else {
                    out.suppressed = true;
                    Ok(())
                }
            }
            Plan::Repeat { seq, send } => match (&post.episode, send) {
                (Some(e), true) => self.dispatch(cfg, e, Some(seq), post, now, out).await,
                _ => {
                    out.suppressed = true;
                    Ok(())
                }
            },
            Plan::End => {
                let Some(e) = &post.episode else {
                    return Ok(());
                };
                self.dispatch(cfg, e, None, post, now, out).await?;
                if a.store
                    .end_episode(org, &e.id)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    out.ended = true;
                    tracing::info!(org, since = %e.since, "condition cleared: alert episode closed");
                    a.bus
                        .publish_or_log(
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
        post: &PostWindow,
        now: DateTime<Utc>,
        out: &mut AlertOutcome,
    ) -> Result<(), String> {
        let a = &self.alerting;
        let counter = post.counter;
        let context = AlertContext {
            why: post.outbound_reason.as_deref(),
            provider: post.provider.as_ref(),
        };
        let org = cfg.org_id.as_str();
        let alert_id = match seq {
            Some(n) => episode.alert_id(n),
            None => episode.recovery_id(),
        };
        let notice = match seq {
            Some(seq) => Notice::Alert {
                counter,
                episode,
                seq,
                context,
            },
            None => Notice::Recovery { episode },
        };
        let mut won = Vec::new();
        for (i, c) in cfg.alerts.contacts.iter().enumerate() {
            if seq.is_none() && !c.recovery_notice {
                continue;
            }
            for channel in Channel::ALL {
                let Some(to) = channel.address(c) else {
                    continue;
                };
                let key = send_key(&alert_id, i, channel);
                let stale = chrono::Duration::minutes(STALE_SEND_MINUTES);
                if a.store
                    .claim_send(org, &key, now, stale)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    won.push(Claimed {
                        key,
                        channel,
                        to,
                        contact: c.name.as_str(),
                    });
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
                for c in &won {
                    let _ = a.store.finish_send(org, &c.key, Err(e.clone())).await;
                }
                out.failed += won.len() as u32;
                return Err(e);
            }
        };
        for Claimed {
            key,
            channel,
            to,
            contact,
        } in won
        {
            let message = channel.render(cfg, &notice, &url);
            let result = a.channels.send(channel, to, &message).await;
            let ok = result.is_ok();
            if let Err(e) = &result {
                tracing::warn!(org, alert = %alert_id, %channel, contact, error = %e, "alert send failed; retried next run");
            }
            a.store
                .finish_send(org, &key, result.map_err(|e| e.to_string()))
                .await
                .map_err(|e| e.to_string())?;
            if ok {
                out.sent += 1;
                tracing::info!(org, alert = %alert_id, %channel, contact, "alert sent");
                a.bus
                    .publish_or_log(
                        "AlertSent",
                        serde_json::json!({
                            "org_id": org, "alert_id": alert_id, "channel": channel.name(),
                            "contact": contact,
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
    pub(super) async fn link(
        &self,
        org: &str,
        alert_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
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
}
