//! What the monitor tells contacts and users about continuity events after a window: it
//! activates continuity mode by itself when the policy says so and tells the contacts (P9),
//! has the continuity use case announce a planned event's start and every event's end on the
//! bus (P6, P10), and tells users by SMS when an event starts and ends (A6, through
//! [`user_notice`](crate::app::user_notice)). None of it fails the run.

use super::evaluate::PostWindow;
use super::Monitor;
use crate::app::continuity::{automatic_activation_due, ended, Continuity};
use crate::app::user_notice::notify_users;
use crate::domain::alerts::{send_key, Channel, Episode, Notice, STALE_SEND_MINUTES};
use crate::domain::config::OrgConfig;
use crate::domain::continuity::{utc_text, ContinuityState, Phase, USER_NOTICE_EVENTS_PER_DAY};
use crate::ports::store::ContinuityStore;
use chrono::{DateTime, Utc};

impl Monitor<'_> {
    /// Continuity events the monitor owns (P6, P9, P10): activates continuity mode by itself
    /// when the policy says so, announces a planned event's start and every event's end once
    /// (the continuity use case), and tells users (A6).
    pub(super) async fn continuity_events(
        &self,
        cfg: &OrgConfig,
        post: &PostWindow,
        now: DateTime<Utc>,
    ) {
        let Some(cs) = self.store.continuity() else {
            return;
        };
        let org = cfg.org_id.as_str();
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
                    self.tell_auto_activation(cfg, ep, &after, now).await;
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
                && self.notice_budget(cfg, cs, event_id, now).await
            {
                self.tell_users(cfg, cs, event_id, true, now).await;
            }
            // The end too: an event that started and ended between two runs counts here.
            if ended(&post.continuity, now).is_some()
                && marks.users_told_end.as_deref() != Some(event_id)
                && self.notice_budget(cfg, cs, event_id, now).await
            {
                self.tell_users(cfg, cs, event_id, false, now).await;
            }
        }
    }

    /// Whether users may be told of event `event_id` ([`USER_NOTICE_EVENTS_PER_DAY`] events a
    /// day). Over the budget, the event is marked as told at its start and its end, so that no
    /// later run texts anyone about it, and the reason is logged; a store fault tells nobody
    /// this run and is tried again at the next.
    async fn notice_budget(
        &self,
        cfg: &OrgConfig,
        cs: &dyn ContinuityStore,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let org = cfg.org_id.as_str();
        let day = now.format("%Y-%m-%d").to_string();
        match cs
            .claim_notice_event(org, &day, event_id, USER_NOTICE_EVENTS_PER_DAY)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    org,
                    event = event_id,
                    day,
                    cap = USER_NOTICE_EVENTS_PER_DAY,
                    "user notices not sent: the organisation's users were told of the most events allowed today"
                );
                for start in [true, false] {
                    if let Err(e) = cs.mark_users_told(org, event_id, start).await {
                        tracing::warn!(org, error = %e, "over the notice budget, mark not stored");
                    }
                }
                false
            }
            Err(e) => {
                tracing::warn!(org, error = %e, "user notices not sent: notice budget unreadable; tried again next run");
                false
            }
        }
    }

    /// Sends the A6 notice of event `event_id`'s start (`started`) or end to every user of the
    /// directory (by SMS and, at the start, email to the alternate address), then marks the event so that later runs do not
    /// look again. Each user's send is claimed under the event and phase, so a repeated or
    /// concurrent run sends nobody a second one; a failed send leaves the mark unset and is
    /// retried at the next run.
    async fn tell_users(
        &self,
        cfg: &OrgConfig,
        cs: &dyn ContinuityStore,
        event_id: &str,
        started: bool,
        now: DateTime<Utc>,
    ) {
        let org = cfg.org_id.as_str();
        let directory = match cs.user_directory(org).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(org, error = %e, "user notices not sent: directory unreadable");
                return;
            }
        };
        let users: Vec<_> = directory.users.into_values().collect();
        let sign_in_url = format!(
            "{}{}",
            self.alerting.portal_base_url.trim_end_matches('/'),
            crate::domain::sign_in::SIGN_IN_PATH
        );
        match notify_users(
            self.alerting.store,
            self.alerting.channels,
            cfg,
            event_id,
            started,
            &users,
            &sign_in_url,
            now,
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
    /// contact and channel (claimed like alerts, under `auto-{episode}`).
    async fn tell_auto_activation(
        &self,
        cfg: &OrgConfig,
        ep: &Episode,
        s: &ContinuityState,
        now: DateTime<Utc>,
    ) {
        let a = &self.alerting;
        let org = cfg.org_id.as_str();
        let alert_id = format!("auto-{}", ep.id);
        let until = s.event_until.map(utc_text).unwrap_or_default();
        let url = match self.link(org, &alert_id, now).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(org, error = %e, "automatic activation notice not sent: no link");
                return;
            }
        };
        let notice = Notice::AutoActivated { until: &until };
        for (i, c) in cfg.alerts.contacts.iter().enumerate() {
            for channel in Channel::ALL {
                let Some(to) = channel.address(c) else {
                    continue;
                };
                let key = send_key(&alert_id, i, channel);
                let stale = chrono::Duration::minutes(STALE_SEND_MINUTES);
                match a.store.claim_send(org, &key, now, stale).await {
                    Ok(true) => {}
                    // Claimed by another run, or the claim failed: nothing is sent twice.
                    _ => continue,
                }
                let message = channel.render(cfg, &notice, &url);
                let result = a.channels.send(channel, to, &message).await;
                let _ = a
                    .store
                    .finish_send(org, &key, result.map_err(|e| e.to_string()))
                    .await;
            }
        }
    }
}
