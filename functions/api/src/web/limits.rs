//! Requests per source address to alert links (`/l/*`) and sign-in (`/auth/*`) (issue 12): a
//! layer in front of every route counts each such request once
//! ([`shared::app::source_limits`]) and refuses one over its area's limit before any handler
//! runs, so a refused request reads and changes nothing else: 429, `Retry-After` (seconds to
//! the end of the window), a page for links and for browsers, JSON otherwise, and a log line.
//! The rest of the API needs a signed-in caller and is bounded by the stage's throttles
//! (README, "Rate limits").

use crate::web::auth::ClientAddr;
use crate::web::error::{wants_html, ApiError};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::adapters::lambda::env_or;
use shared::app::source_limits::{SourceLimitError, SourceLimitSettings};
use shared::domain::source_limits::{Area, SourceLimit};

/// The limits from the environment (`LINK_SOURCE_REQUESTS`, `LINK_SOURCE_WINDOW_SECS`,
/// `SIGN_IN_SOURCE_REQUESTS`, `SIGN_IN_SOURCE_WINDOW_SECS`), the defaults where unset.
pub fn settings_from_env() -> Result<SourceLimitSettings, String> {
    let d = SourceLimitSettings::default();
    Ok(SourceLimitSettings {
        links: SourceLimit {
            requests: env_or("LINK_SOURCE_REQUESTS", d.links.requests)?,
            window_secs: env_or("LINK_SOURCE_WINDOW_SECS", d.links.window_secs)?,
        }
        .checked("LINK_SOURCE_REQUESTS, LINK_SOURCE_WINDOW_SECS")?,
        sign_in: SourceLimit {
            requests: env_or("SIGN_IN_SOURCE_REQUESTS", d.sign_in.requests)?,
            window_secs: env_or("SIGN_IN_SOURCE_WINDOW_SECS", d.sign_in.window_secs)?,
        }
        .checked("SIGN_IN_SOURCE_REQUESTS, SIGN_IN_SOURCE_WINDOW_SECS")?,
    })
}

impl From<SourceLimitError> for ApiError {
    fn from(e: SourceLimitError) -> Self {
        match e {
            SourceLimitError::Limited(r) => {
                let secs = r.retry_after;
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", r.to_string())
                    .retry_after(secs)
            }
            SourceLimitError::Store(e) => e.into(),
        }
    }
}

/// The layer: counts `/l/*` and `/auth/*` requests per source, passes the rest untouched.
pub async fn per_source(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
    next: Next,
) -> Response {
    let Some(area) = Area::of_path(req.uri().path()) else {
        return next.run(req).await;
    };
    match state
        .source_limits()
        .admit(area, &addr, state.clock.now())
        .await
    {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let e = ApiError::from(e);
            // Links are pages; sign-in's JSON steps (passkeys, `/auth/me`) get JSON.
            if area == Area::Links || wants_html(req.headers()) {
                e.page().into_response()
            } else {
                e.into_response()
            }
        }
    }
}
