//! Telling users when a continuity event starts and ends (A6): at the start an SMS to each user
//! with a mobile number and an email to each user with an alternate address, saying where to read
//! and send mail meanwhile and how to get in (the sign-in page, the address to sign in as, a
//! one-time code: U11); at the end an SMS saying it is over. Per organisation, optional
//! (`alerts.notify_users`). The monitor calls this at the first run after an event starts and
//! after it ends, with the directory the administrator imported; each send is claimed under the
//! event, the phase, the user (and `#email` for the email), so a repeated or concurrent run sends
//! nothing twice.

use crate::domain::alerts::{
    user_activation_email, user_notice_sms, Channel, Message, STALE_SEND_MINUTES,
};
use crate::domain::config::{is_address, is_e164, OrgConfig};
use crate::domain::directory::DirectoryUser;
use crate::ports::notify::AlertChannels;
use crate::ports::store::AlertStore;
use chrono::{DateTime, Utc};

/// What [`notify_users`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoticeReport {
    pub sent: u32,
    pub failed: u32,
    /// Already sent by an earlier call, or the user has no usable number or address.
    pub skipped: u32,
}

/// Sends the start (`started`) or end notice of event `event_id` to `users`; `sign_in_url` is
/// the service's sign-in page.
#[allow(clippy::too_many_arguments)]
pub async fn notify_users(
    store: &dyn AlertStore,
    channels: &dyn AlertChannels,
    cfg: &OrgConfig,
    event_id: &str,
    started: bool,
    users: &[DirectoryUser],
    sign_in_url: &str,
    now: DateTime<Utc>,
) -> Result<NoticeReport, String> {
    let mut report = NoticeReport::default();
    if !cfg.alerts.notify_users {
        return Ok(report);
    }
    let phase = if started { "start" } else { "end" };
    for u in users {
        let sms = u.mobile.as_deref().map(|m| {
            (
                Channel::Sms,
                m,
                is_e164(m),
                format!("user#{event_id}#{phase}#{}", u.address),
                Message::Text(user_notice_sms(
                    &cfg.name,
                    started,
                    sign_in_url,
                    Some(&u.address),
                )),
            )
        });
        // The activation email goes at the start only: at the end the usual mailbox is back.
        let email = u.alternate.as_deref().filter(|_| started).map(|a| {
            (
                Channel::Email,
                a,
                is_address(a),
                format!("user#{event_id}#{phase}#{}#email", u.address),
                Message::Email(user_activation_email(
                    &cfg.name,
                    sign_in_url,
                    &u.address,
                    u.mobile.is_some(),
                )),
            )
        });
        if sms.is_none() && email.is_none() {
            report.skipped += 1;
        }
        for (channel, to, usable, key, message) in sms.into_iter().chain(email) {
            if !usable {
                tracing::warn!(org = %cfg.org_id, user = %u.address, %channel, "user notice skipped: unusable number or address");
                report.skipped += 1;
                continue;
            }
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
                .send(channel, to, &message)
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
    }
    Ok(report)
}
