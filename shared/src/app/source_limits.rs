//! Requests per source address to the API's public doors (issue 12): before an alert-link or
//! sign-in request is handled, one atomic increment of the source's counter for the area and
//! window; over the area's limit the request is refused, before anything else is read or
//! written. The rules (areas, windows, IPv6 /64) are `domain::source_limits`'.
//!
//! A counter that cannot be counted refuses too (the store's error): only the counted source's
//! own partition is hot when one address floods, so the others are still counted and served.

use crate::domain::source_limits::{source_key, Area, SourceLimit, SourceRefusal};
use crate::ports::error::StoreError;
use crate::ports::store::{RateCounter, RateCounters};
use chrono::{DateTime, Duration, Utc};

/// Why a request was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SourceLimitError {
    #[error("{0}")]
    Limited(SourceRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The limits of each area, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimitSettings {
    pub links: SourceLimit,
    pub sign_in: SourceLimit,
}

impl Default for SourceLimitSettings {
    fn default() -> Self {
        SourceLimitSettings {
            links: SourceLimit::LINKS_DEFAULT,
            sign_in: SourceLimit::SIGN_IN_DEFAULT,
        }
    }
}

impl SourceLimitSettings {
    /// The limit of `area`.
    pub fn of(&self, area: Area) -> SourceLimit {
        match area {
            Area::Links => self.links,
            Area::SignIn => self.sign_in,
        }
    }
}

/// The per-source limits over the rate counters.
pub struct SourceLimits<'a> {
    pub rates: &'a dyn RateCounters,
    pub settings: SourceLimitSettings,
}

impl SourceLimits<'_> {
    /// Counts a request from `addr` to `area` at `now` (one `UpdateItem`); `Limited` when the
    /// source has used its window's allowance.
    pub async fn admit(
        &self,
        area: Area,
        addr: &str,
        now: DateTime<Utc>,
    ) -> Result<(), SourceLimitError> {
        let limit = self.settings.of(area);
        let source = source_key(addr);
        let window = limit.window(now);
        // Kept an hour past the window: long enough to read in logs, gone by TTL after.
        let expires = now + Duration::seconds(i64::from(limit.window_secs)) + Duration::hours(1);
        let n = self
            .rates
            .count_request(
                &RateCounter::Source {
                    area,
                    source: source.clone(),
                    window,
                },
                expires,
            )
            .await?;
        if n > limit.requests {
            let retry_after = limit.retry_after(now);
            tracing::info!(
                area = area.name(),
                source,
                limit = limit.requests,
                window_secs = limit.window_secs,
                retry_after,
                "request refused: source over its limit"
            );
            return Err(SourceLimitError::Limited(SourceRefusal {
                area,
                limit,
                retry_after,
            }));
        }
        Ok(())
    }
}
