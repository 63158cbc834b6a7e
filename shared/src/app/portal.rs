//! The continuity portal opened from alert links (P1-P6) as a use case: a link is verified
//! against the link key set (from the secret store); its page shows the organisation's status
//! and the counter's last 24 hours; its forms carry an anti-forgery token bound to the link
//! ([`continuity::form_token`]) and act through the continuity use case as `link:{alert id}`.
//! The page also says why mail waits: the oldest queued messages with their last error, and the
//! mail set aside (Q9, Q10), as the administrators' queue view does.

use crate::app::continuity::{Continuity, Requester};
use crate::domain::config::OrgConfig;
use crate::domain::continuity::{self, Action, ActionOutcome, Via};
use crate::domain::links::{LinkClaims, LinkError, LinkKeys};
use crate::domain::monitoring::PortalView;
use crate::domain::window::Window;
use crate::ports::error::{SecretError, StoreError};
use crate::ports::secrets::SecretSource;
use crate::ports::store::{ContinuityViews, QueueSnapshot, QueueViews, RateCounter, RateCounters};
use chrono::{DateTime, Utc};

/// Windows of history the page's chart shows (24 hours of 2-minute windows).
pub const HISTORY_WINDOWS: i64 = 720;
/// Queued (oldest first) and set-aside messages the page lists, at most each.
pub const QUEUE_ROWS: usize = 20;

/// Why a link, its page or its form was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The secret store did not answer.
    #[error("link keys unavailable: {0}")]
    KeysUnavailable(SecretError),
    /// The key set is stored but cannot be read (a deployment fault).
    #[error("link keys unreadable: {0}")]
    KeysUnreadable(String),
    #[error("{0}")]
    Expired(LinkError),
    /// Damaged, altered or signed with an unknown key.
    #[error("{0}")]
    BadLink(LinkError),
    #[error("The organisation of this link is not served by this service any more.")]
    NotServed,
    /// The link's key cannot make the form token (a deployment fault).
    #[error("link key unreadable")]
    NoFormToken,
    #[error("This form is not from this link's page (missing or wrong anti-forgery token). Open the link again; nothing was changed.")]
    ForgedForm,
    /// Too many actions in this hour, through this link or all of the organisation's.
    #[error("{what} carried out {limit} actions in this hour, the most allowed; try again after {}. Nothing was changed.", continuity::utc_text(*until))]
    RateLimited {
        what: &'static str,
        limit: u32,
        until: DateTime<Utc>,
        /// Seconds from the refusal to `until`.
        wait_secs: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified link.
pub struct Link {
    keys: LinkKeys,
    /// What the link says: organisation, alert, expiry.
    pub claims: LinkClaims,
    token: String,
}

impl Link {
    /// The link's token, as in its URL.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// What the link's page shows.
pub struct PortalStatus {
    pub config: OrgConfig,
    pub view: PortalView,
    /// Why mail waits: the oldest queued messages and the mail set aside ([`QUEUE_ROWS`]).
    pub queue: QueueSnapshot,
    /// The anti-forgery token of the page's forms.
    pub form_token: String,
}

/// The portal's collaborators.
pub struct Portal<'a> {
    pub secrets: &'a dyn SecretSource,
    /// The name of the secret holding the link key set (A3).
    pub keys_secret: &'a str,
    pub views: &'a dyn ContinuityViews,
    pub queue: &'a dyn QueueViews,
    pub continuity: Continuity<'a>,
    /// The action counters of links (per link, per organisation).
    pub rates: &'a dyn RateCounters,
}

impl Portal<'_> {
    /// Verifies the link `token` at `now`.
    pub async fn open(&self, token: &str, now: DateTime<Utc>) -> Result<Link, PortalError> {
        let text = self
            .secrets
            .secret(self.keys_secret)
            .await
            .map_err(PortalError::KeysUnavailable)?;
        let keys =
            LinkKeys::from_json(&text).map_err(|e| PortalError::KeysUnreadable(e.to_string()))?;
        let claims = keys.verify(token, now).map_err(|e| match e {
            LinkError::Expired(_) => PortalError::Expired(e),
            _ => PortalError::BadLink(e),
        })?;
        Ok(Link {
            keys,
            claims,
            token: token.to_string(),
        })
    }

    /// The link's organisation's status at `now`, with the last 24 hours of the counter.
    pub async fn status(
        &self,
        link: &Link,
        now: DateTime<Utc>,
    ) -> Result<PortalStatus, PortalError> {
        let to = Window::containing(now).prev();
        let from = Window(to.0 - (HISTORY_WINDOWS - 1));
        let mut view = self
            .views
            .portal_view(&link.claims.org_id, from, to)
            .await?;
        let config = view.config.take().ok_or(PortalError::NotServed)?;
        let form_token = continuity::form_token(&link.keys, &link.claims.key_id, &link.token)
            .ok_or(PortalError::NoFormToken)?;
        let queue = self
            .queue
            .queue_snapshot(&link.claims.org_id, QUEUE_ROWS)
            .await?;
        Ok(PortalStatus {
            config,
            view,
            queue,
            form_token,
        })
    }

    /// Checks that a posted form came from this link's page (its anti-forgery token).
    pub fn check_form(&self, link: &Link, given: &str) -> Result<(), PortalError> {
        if continuity::form_token_ok(&link.keys, &link.claims.key_id, &link.token, given) {
            Ok(())
        } else {
            Err(PortalError::ForgedForm)
        }
    }

    /// Carries out `action` for the link's organisation, once per `request_id`, from `source`.
    pub async fn act(
        &self,
        link: &Link,
        action: &Action,
        request_id: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, PortalError> {
        self.count_action(link, now).await?;
        let by = Requester {
            who: format!("link:{}", link.claims.alert_id),
            via: Via::Link,
            source: source.to_string(),
            request_id: request_id.to_string(),
        };
        Ok(self
            .continuity
            .perform(&link.claims.org_id, action, &by, now)
            .await?)
    }

    /// Counts one action of `link` in the clock hour of `now`, against the link's limit and the
    /// organisation's ([`continuity::LINK_ACTIONS_PER_HOUR`],
    /// [`continuity::ORG_LINK_ACTIONS_PER_HOUR`]). Repeats count too: a form resubmitted in a
    /// loop is as much a flood as new requests.
    async fn count_action(&self, link: &Link, now: DateTime<Utc>) -> Result<(), PortalError> {
        let window = now.timestamp() - now.timestamp().rem_euclid(3600);
        let until = DateTime::from_timestamp(window + 3600, 0).unwrap_or(now);
        let org_id = link.claims.org_id.clone();
        let checks = [
            (
                RateCounter::Link {
                    org_id: org_id.clone(),
                    alert_id: link.claims.alert_id.clone(),
                    window,
                },
                "This link",
                continuity::LINK_ACTIONS_PER_HOUR,
            ),
            (
                RateCounter::OrgLinks { org_id, window },
                "The organisation's alert links",
                continuity::ORG_LINK_ACTIONS_PER_HOUR,
            ),
        ];
        for (counter, what, limit) in checks {
            let n = self
                .rates
                .count_request(&counter, until + chrono::Duration::hours(1))
                .await?;
            if n > limit {
                tracing::info!(org = %link.claims.org_id, alert = %link.claims.alert_id, what, limit,
                    "portal action refused: over the hourly limit");
                let wait_secs = (until - now).num_seconds().clamp(1, 3600) as u64;
                return Err(PortalError::RateLimited {
                    what,
                    limit,
                    until,
                    wait_secs,
                });
            }
        }
        Ok(())
    }
}
