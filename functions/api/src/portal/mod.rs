//! The continuity portal opened from alert links (P1-P6): status page, duration buttons, POST
//! actions with an anti-forgery token bound to the link.
//!
//! `GET /l/{token}` only reads (mail scanners open links). Every action is a POST of a form
//! carrying the link's anti-forgery token (an HMAC of the link, see
//! [`shared::domain::continuity::form_token`]) and a request id drawn when the page was rendered, so a
//! resubmitted form changes nothing twice. The pages work without JavaScript.

mod page;

use crate::web::auth::ClientAddr;
use crate::web::error::ApiError;
use crate::web::extract::form_fields;
use crate::web::ids::valid_request_id;
use crate::web::render;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use shared::app::continuity::Requester;
use shared::domain::continuity::ActionOutcome;
use shared::domain::continuity::{self, Action, Via};
use shared::domain::links::{LinkClaims, LinkKeys};
use shared::domain::window::Window;

use page::Notice;

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/l/{token}", get(status_page))
        .route("/l/{token}/{action}", post(act))
}

/// The link key set, from the secret store (cached by the secret source).
pub async fn link_keys(state: &AppState) -> Result<LinkKeys, ApiError> {
    let text = state
        .secrets
        .secret(&state.settings.link_keys_secret)
        .await
        .map_err(|e| ApiError::unavailable("link keys", e))?;
    LinkKeys::from_json(&text).map_err(|e| ApiError::internal("link keys", e))
}

/// Verifies the link; a refusal is a clear page.
async fn verified(state: &AppState, token: &str) -> Result<(LinkKeys, LinkClaims), ApiError> {
    let keys = link_keys(state).await.map_err(ApiError::page)?;
    let claims = keys.verify(token, state.clock.now()).map_err(|e| {
        let e = match e {
            shared::domain::links::LinkError::Expired(_) => ApiError::new(
                StatusCode::GONE,
                "link_expired",
                format!("This link has expired ({e}). Use the link in a newer alert, or sign in to the administration API."),
            ),
            _ => ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_link",
                format!("This link cannot be used: {e}. Nothing was changed."),
            ),
        };
        e.page()
    })?;
    Ok((keys, claims))
}

async fn render_page(
    state: &AppState,
    keys: &LinkKeys,
    claims: &LinkClaims,
    token: &str,
    notice: Option<Notice>,
) -> Result<String, ApiError> {
    let now = state.clock.now();
    let to = Window::containing(now).prev();
    let from = Window(to.0 - 719);
    let view = state
        .views
        .portal_view(&claims.org_id, from, to)
        .await
        .map_err(|e| ApiError::from(e).page())?;
    let Some(cfg) = view.config.as_ref() else {
        return Err(ApiError::not_found(
            "The organisation of this link is not served by this service any more.",
        )
        .page());
    };
    let form_token = continuity::form_token(keys, &claims.key_id, token)
        .ok_or_else(|| ApiError::internal("form token", "link key unreadable").page())?;
    let page = page::status_page(&page::PageInput {
        cfg,
        view: &view,
        now,
        token,
        form_token: &form_token,
        link_expires: claims.expires_at,
        notice,
    });
    Ok(render::page(&page)?.0)
}

async fn status_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let result = async {
        let (keys, claims) = verified(&state, &token).await?;
        render_page(&state, &keys, &claims, &token, None).await
    }
    .await;
    match result {
        Ok(html) => Html(html).into_response(),
        Err(e) => e.into_response(),
    }
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

async fn act(
    State(state): State<AppState>,
    Path((token, name)): Path<(String, String)>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match try_act(&state, &token, &name, &source, &headers, &body).await {
        Ok((status, html)) => (status, Html(html)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn try_act(
    state: &AppState,
    token: &str,
    name: &str,
    source: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, String), ApiError> {
    let (keys, claims) = verified(state, token).await?;
    let fields = form_fields(headers, body).map_err(ApiError::page)?;
    let given = fields.get("form_token").map(String::as_str).unwrap_or("");
    if !continuity::form_token_ok(&keys, &claims.key_id, token, given) {
        return Err(ApiError::forbidden(
            "This form is not from this link's page (missing or wrong anti-forgery token). Open the link again; nothing was changed.",
        )
        .page());
    }
    let rid = fields.get("request_id").map(String::as_str).unwrap_or("");
    if !valid_request_id(rid) {
        return Err(ApiError::bad_request(
            "The form is malformed (request id). Open the link again; nothing was changed.",
        )
        .page());
    }
    let action = portal_action(name, fields.get("duration").map(String::as_str))?;
    let who = format!("link:{}", claims.alert_id);
    let by = Requester {
        who,
        via: Via::Link,
        source: source.to_string(),
        request_id: rid.to_string(),
    };
    let outcome = state
        .continuity()
        .perform(&claims.org_id, &action, &by, state.clock.now())
        .await
        .map_err(|e| ApiError::from(e).page())?;
    let notice = match outcome {
        ActionOutcome::Applied { after, .. } => Notice::Done { action, after },
        ActionOutcome::Repeated { current } => Notice::Repeated { action, current },
        ActionOutcome::Refused { refusal, .. } => Notice::Refused(refusal.to_string()),
    };
    let refused = matches!(notice, Notice::Refused(_));
    let html = render_page(state, &keys, &claims, token, Some(notice)).await?;
    // A refusal is a 409 with the whole page and its explanation.
    let status = if refused {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, html))
}
