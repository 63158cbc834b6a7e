//! The continuity portal opened from alert links (P1-P6): status page, duration buttons, POST
//! actions with an anti-forgery token bound to the link; the rules are
//! [`shared::app::portal`]'s.
//!
//! `GET /l/{token}` only reads (mail scanners open links). Every action is a POST of a form
//! carrying the link's anti-forgery token (an HMAC of the link, see
//! [`shared::domain::continuity::form_token`]) and a request id drawn when the page was
//! rendered, so a resubmitted form changes nothing twice. The pages work without JavaScript.

mod page;

use crate::web::auth::ClientAddr;
use crate::web::error::ApiError;
use crate::web::extract::{form_fields, Paged};
use crate::web::ids::valid_request_id;
use crate::web::render;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use page::Notice;
use shared::app::portal::{Link, PortalError};
use shared::domain::continuity::{self, Action, ActionOutcome};

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/l/{token}", get(status_page))
        .route("/l/{token}/{action}", post(act))
}

impl From<PortalError> for ApiError {
    fn from(e: PortalError) -> Self {
        match e {
            PortalError::KeysUnavailable(e) => ApiError::unavailable("link keys", e),
            PortalError::KeysUnreadable(e) => ApiError::internal("link keys", e),
            PortalError::Expired(e) => ApiError::new(
                StatusCode::GONE,
                "link_expired",
                format!("This link has expired ({e}). Use the link in a newer alert, or sign in to the administration API."),
            ),
            PortalError::BadLink(e) => ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_link",
                format!("This link cannot be used: {e}. Nothing was changed."),
            ),
            PortalError::NotServed => ApiError::not_found(e.to_string()),
            PortalError::NoFormToken => ApiError::internal("form token", e),
            PortalError::ForgedForm => ApiError::forbidden(e.to_string()),
            PortalError::RateLimited { wait_secs, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                    .retry_after(wait_secs)
            }
            PortalError::Store(e) => e.into(),
        }
    }
}

/// The link's page at `now`, with the notice of an action just taken.
async fn render_page(
    state: &AppState,
    link: &Link,
    notice: Option<Notice>,
    now: DateTime<Utc>,
) -> Result<Html<String>, ApiError> {
    let status = state.portal().status(link, now).await.paged()?;
    render::page(&page::status_page(&page::PageInput {
        cfg: &status.config,
        view: &status.view,
        queue: &status.queue,
        now,
        token: link.token(),
        form_token: &status.form_token,
        link_expires: link.claims.expires_at,
        notice,
    }))
}

/// `GET /l/{token}`: the status page; never changes anything.
async fn status_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Html<String>, ApiError> {
    let now = state.clock.now();
    let link = state.portal().open(&token, now).await.paged()?;
    render_page(&state, &link, None, now).await
}

/// The action a portal form names, with its duration.
fn portal_action(name: &str, duration: Option<&str>) -> Result<Action, ApiError> {
    let minutes = || -> Result<u32, ApiError> {
        let d = duration.ok_or_else(|| {
            ApiError::bad_request("Choose a duration (one of the buttons).").page()
        })?;
        continuity::button_minutes(d).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unknown duration {:?}: use one of the buttons (1 h, 4 h, 12 h, 1 d, 3 d).",
                d.chars().take(20).collect::<String>()
            ))
            .page()
        })
    };
    match name {
        "activate" => Ok(Action::Activate {
            minutes: minutes()?,
        }),
        "extend" => Ok(Action::Extend {
            minutes: minutes()?,
        }),
        "suspend" => Ok(Action::Suspend {
            minutes: minutes()?,
        }),
        "stop" => Ok(Action::Stop),
        _ => Err(ApiError::not_found("There is no such action.").page()),
    }
}

/// `POST /l/{token}/{action}`: carries out the form's action, then shows the page with what
/// happened; a refusal is a 409 with the whole page and its explanation.
async fn act(
    State(state): State<AppState>,
    Path((token, name)): Path<(String, String)>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Html<String>), ApiError> {
    let now = state.clock.now();
    let portal = state.portal();
    let link = portal.open(&token, now).await.paged()?;
    let fields = form_fields(&headers, &body).paged()?;
    let field = |name: &str| fields.get(name).map(String::as_str);
    portal
        .check_form(&link, field("form_token").unwrap_or(""))
        .paged()?;
    let rid = field("request_id").unwrap_or("");
    if !valid_request_id(rid) {
        return Err(ApiError::bad_request(
            "The form is malformed (request id). Open the link again; nothing was changed.",
        )
        .page());
    }
    let action = portal_action(&name, field("duration"))?;
    let (status, notice) = match portal
        .act(&link, &action, rid, &source, now)
        .await
        .paged()?
    {
        ActionOutcome::Applied { after, .. } => (StatusCode::OK, Notice::Done { action, after }),
        ActionOutcome::Repeated { current } => {
            (StatusCode::OK, Notice::Repeated { action, current })
        }
        ActionOutcome::Refused { refusal, .. } => {
            (StatusCode::CONFLICT, Notice::Refused(refusal.to_string()))
        }
    };
    Ok((status, render_page(&state, &link, Some(notice), now).await?))
}
