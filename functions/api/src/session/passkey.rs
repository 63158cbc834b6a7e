//! Passkeys (U11): sign-in (`/auth/passkey/start`, `/auth/passkey/finish`, JSON for the page's
//! script), the signed-in user's passkeys (`/auth/passkeys` page; `/api/v1/passkeys` JSON:
//! list, enrol, remove). The ceremonies are the use case's ([`shared::app::passkeys`]); the
//! browser's half is `static/passkey.js`.

use super::{safe_next, with_service_session};
use crate::admin::by_admin;
use crate::web::auth::{same_origin, ClientAddr, PageUser, Principal};
use crate::web::error::ApiError;
use crate::web::extract::Body;
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::app::continuity::Requester;
use shared::ports::store::PasskeyRecord;

/// The relying party, or a clear 503 where passkeys cannot work.
fn webauthn(state: &AppState) -> Result<webauthn_rs::prelude::Webauthn, ApiError> {
    state.webauthn().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "passkeys_unavailable",
            "Passkeys need the portal to be reached by a domain name (PORTAL_BASE_URL).",
        )
    })
}

/// A ceremony started: its id and the options for the browser.
#[derive(Debug, Serialize)]
pub struct Started {
    pub ceremony: String,
    pub options: Value,
}

/// `POST /auth/passkey/start`: a discoverable sign-in challenge (names no one).
pub async fn sign_in_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Started>, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::forbidden(
            "Sign-in must come from this site's own pages.",
        ));
    }
    let w = webauthn(&state)?;
    let (ceremony, options) = state.passkeys(&w).start_sign_in(state.clock.now()).await?;
    Ok(Json(Started { ceremony, options }))
}

#[derive(Debug, Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: Value,
    #[serde(default)]
    next: Option<String>,
}

/// Where the browser goes after a passkey sign-in.
#[derive(Debug, Serialize)]
pub struct Next {
    pub next: String,
}

/// `POST /auth/passkey/finish`: the authenticator's answer; verified, the session cookie.
pub async fn sign_in_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(f): Body<Finish>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::forbidden(
            "Sign-in must come from this site's own pages.",
        ));
    }
    let w = webauthn(&state)?;
    let (token, session) = state
        .passkeys(&w)
        .finish_sign_in(&f.ceremony, f.credential, state.clock.now())
        .await?;
    tracing::info!(org = %session.org_id, "passkey sign-in");
    let resp = Json(Next {
        next: safe_next(f.next.as_deref()),
    })
    .into_response();
    Ok(with_service_session(&state, resp, &token))
}

/// A passkey as its owner sees it.
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<PasskeyRecord> for PasskeyView {
    fn from(r: PasskeyRecord) -> Self {
        PasskeyView {
            id: r.credential_id,
            label: r.label,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// The signed-in user's own address (passkeys are per user).
fn own_address(p: &Principal) -> Result<&str, ApiError> {
    p.email.as_deref().ok_or_else(|| {
        ApiError::forbidden("Your sign-in carries no verified address: passkeys need one.")
    })
}

/// The user's change, as the audit records it.
fn by_user(p: &Principal, source: String) -> Requester {
    let mut r = by_admin(p, source);
    r.who = p.subject.clone();
    r
}

/// `GET /api/v1/passkeys`.
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<PasskeyView>>, ApiError> {
    let w = webauthn(&state)?;
    let all = state.passkeys(&w).list(&p.org_id, own_address(&p)?).await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Deserialize)]
pub struct EnrolStart {
    #[serde(default)]
    label: String,
}

/// `POST /api/v1/passkeys/registration`: a creation challenge for the signed-in user.
pub async fn enrol_start(
    State(state): State<AppState>,
    p: Principal,
    Body(b): Body<EnrolStart>,
) -> Result<Json<Started>, ApiError> {
    let w = webauthn(&state)?;
    let (ceremony, options) = state
        .passkeys(&w)
        .start_enrolment(&p.org_id, own_address(&p)?, &b.label, state.clock.now())
        .await?;
    Ok(Json(Started { ceremony, options }))
}

#[derive(Debug, Deserialize)]
pub struct EnrolFinish {
    ceremony: String,
    credential: Value,
}

/// `POST /api/v1/passkeys`: the authenticator's answer; the passkey stored (audited).
pub async fn enrol_finish(
    State(state): State<AppState>,
    p: Principal,
    ClientAddr(source): ClientAddr,
    Body(b): Body<EnrolFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let w = webauthn(&state)?;
    let record = state
        .passkeys(&w)
        .finish_enrolment(
            &p.org_id,
            own_address(&p)?,
            &b.ceremony,
            b.credential,
            &by_user(&p, source),
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// `DELETE /api/v1/passkeys/{id}` (audited).
pub async fn remove(
    State(state): State<AppState>,
    p: Principal,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let w = webauthn(&state)?;
    state
        .passkeys(&w)
        .remove(
            &p.org_id,
            own_address(&p)?,
            &id,
            &by_user(&p, source),
            state.clock.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's passkeys page.
#[derive(Template)]
#[template(path = "session/passkeys.html")]
pub struct PasskeysPage<'a> {
    pub address: &'a str,
    pub passkeys: Vec<PasskeyView>,
}

/// `GET /auth/passkeys`.
pub async fn page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
) -> Result<Response, ApiError> {
    let w = webauthn(&state).map_err(ApiError::page)?;
    let address = own_address(&p).map_err(|e| e.page())?;
    let all = state
        .passkeys(&w)
        .list(&p.org_id, address)
        .await
        .map_err(|e| ApiError::from(e).page())?;
    Ok(render::page(&PasskeysPage {
        address,
        passkeys: all.into_iter().map(Into::into).collect(),
    })?
    .into_response())
}

/// `POST /auth/passkeys/{id}/remove` (the page's form; audited).
pub async fn remove_from_page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    ClientAddr(source): ClientAddr,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let w = webauthn(&state).map_err(ApiError::page)?;
    state
        .passkeys(&w)
        .remove(
            &p.org_id,
            own_address(&p).map_err(|e| e.page())?,
            &id,
            &by_user(&p, source),
            state.clock.now(),
        )
        .await
        .map_err(|e| ApiError::from(e).page())?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/auth/passkeys")],
    )
        .into_response())
}

/// The passkeys page's script.
pub async fn script() -> Response {
    render::script(render::PASSKEY_JS)
}
