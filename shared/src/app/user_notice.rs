//! Telling users when a continuity event starts and ends (A6): one SMS each, saying where to read
//! and send mail meanwhile. Per organisation, optional (`alerts.notify_users`). The monitor calls
//! this at the first run after an event starts and after it ends, with the users' numbers the
//! administrator imported (`USERS`); each send is claimed under the event, the phase and the
//! user, so a repeated or concurrent run sends nothing twice.

use crate::domain::alerts::{user_notice_sms, Channel, Message, STALE_SEND_MINUTES};
use crate::domain::config::{is_e164, OrgConfig};
use crate::ports::notify::AlertChannels;
use crate::ports::store::AlertStore;
use chrono::{DateTime, Utc};

/// A user to tell, with a mobile number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPhone {
    pub user_id: String,
    pub mobile: String,
}

/// What [`notify_users`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeReport {
    pub sent: u32,
    pub failed: u32,
    /// Already sent by an earlier call, or the user has no usable number.
    pub skipped: u32,
}

/// Sends the start (`started`) or end notice of event `event_id` to `users`.
#[allow(clippy::too_many_arguments)]
pub async fn notify_users(
    store: &dyn AlertStore,
    channels: &dyn AlertChannels,
    cfg: &OrgConfig,
    event_id: &str,
    started: bool,
    users: &[UserPhone],
    inbox_url: &str,
    now: DateTime<Utc>,
) -> Result<NoticeReport, String> {
    let mut report = NoticeReport::default();
    if !cfg.alerts.notify_users {
        return Ok(report);
    }
    let text = Message::Text(user_notice_sms(&cfg.name, started, inbox_url));
    let phase = if started { "start" } else { "end" };
    for u in users {
        if !is_e164(&u.mobile) {
            tracing::warn!(org = %cfg.org_id, user = %u.user_id, "user notice skipped: mobile number is not E.164");
            report.skipped += 1;
            continue;
        }
        let key = format!("user#{event_id}#{phase}#{}", u.user_id);
        let claimed = store
            .claim_send(
                &cfg.org_id,
                &key,
                now,
                chrono::Duration::minutes(STALE_SEND_MINUTES),
            )
            .await
            .map_err(|e| e.to_string())?;
        if !claimed {
            report.skipped += 1;
            continue;
        }
        let result = channels
            .send(Channel::Sms, &u.mobile, &text)
            .await
            .map_err(|e| e.to_string());
        if result.is_ok() {
            report.sent += 1;
        } else {
            report.failed += 1;
        }
        store
            .finish_send(&cfg.org_id, &key, result)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(report)
}
