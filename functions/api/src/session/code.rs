//! Sign-in with a one-time code (U11), as pages that work on a phone without JavaScript:
//!
//! - `GET /auth/code`: the address form (`?address=` fills it in);
//! - `POST /auth/code`: "send me a code"; the answer is the code form, the same page whether or
//!   not the address is a user, no sooner than `Settings::sign_in_floor` after the request;
//! - `POST /auth/code/verify`: the code entered; right, the session cookie and on to `next`.
//!
//! Nothing here signs in on a GET: mail scanners open links. Every POST must come from the
//! service's own pages (`same_origin`). Requests per source address are counted, with the rest
//! of `/auth/*`, before these handlers run (`web::limits`).

use super::{safe_next, with_service_session, NextQuery};
use crate::web::auth::same_origin;
use crate::web::error::ApiError;
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use shared::domain::sign_in::CODE_VALIDITY_MINUTES;

/// The code pages: the address form, or the code form for `address`.
#[derive(Template)]
#[template(path = "session/code.html")]
pub struct CodePage<'a> {
    /// `true`: the code form; `false`: the address form.
    pub code_step: bool,
    pub address: &'a str,
    pub next: &'a str,
    /// `next`, URL-encoded for the links' query strings.
    pub next_q: String,
    /// A refusal to show above the form.
    pub problem: Option<&'a str>,
    pub minutes: i64,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn page(status: StatusCode, p: &CodePage<'_>) -> Result<Response, ApiError> {
    Ok((status, render::page(p)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AddressQuery {
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `GET /auth/code`: the address form.
pub async fn form(Query(q): Query<AddressQuery>) -> Result<Response, ApiError> {
    let next = safe_next(q.next.as_deref());
    let address: String = q.address.unwrap_or_default().chars().take(254).collect();
    page(
        StatusCode::OK,
        &CodePage {
            code_step: false,
            address: &address,
            next: &next,
            next_q: encode(&next),
            problem: None,
            minutes: CODE_VALIDITY_MINUTES,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct RequestForm {
    address: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /auth/code`: sends a code if the address may have one; the same answer either way.
pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RequestForm>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::forbidden("Sign-in must come from this site's own form.").page());
    }
    let next = safe_next(f.next.as_deref());
    let now = state.clock.now();
    // The answer waits for the floor whatever happened: its timing tells nothing.
    let (result, ()) = tokio::join!(
        async { state.sign_in().request_code(&f.address, now).await },
        tokio::time::sleep(state.settings.sign_in_floor),
    );
    let address = f.address.trim().to_ascii_lowercase();
    match result {
        Ok(_) => page(
            StatusCode::OK,
            &CodePage {
                code_step: true,
                address: &address,
                next: &next,
                next_q: encode(&next),
                problem: None,
                minutes: CODE_VALIDITY_MINUTES,
            },
        ),
        Err(e) => {
            let e = ApiError::from(e);
            tracing::info!(status = e.status.as_u16(), reason = %e.message, "code request refused");
            let problem = e.message.clone();
            page(
                e.status,
                &CodePage {
                    code_step: false,
                    address: &address,
                    next: &next,
                    next_q: encode(&next),
                    problem: Some(&problem),
                    minutes: CODE_VALIDITY_MINUTES,
                },
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    address: String,
    code: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /auth/code/verify`: the code entered; right, a session.
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<VerifyForm>,
) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::forbidden("Sign-in must come from this site's own form.").page());
    }
    let next = safe_next(f.next.as_deref());
    let now = state.clock.now();
    match state.sign_in().enter_code(&f.address, &f.code, now).await {
        Ok((token, _)) => {
            let resp = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
            Ok(with_service_session(&state, resp, &token))
        }
        Err(e) => {
            let e = ApiError::from(e);
            tracing::info!(status = e.status.as_u16(), reason = %e.message, "code refused");
            let problem = e.message.clone();
            let address = f.address.trim().to_ascii_lowercase();
            page(
                e.status,
                &CodePage {
                    code_step: true,
                    address: &address,
                    next: &next,
                    next_q: encode(&next),
                    problem: Some(&problem),
                    minutes: CODE_VALIDITY_MINUTES,
                },
            )
        }
    }
}

/// `GET /auth/start`: every way in, on one page (what a page without a session leads to).
#[derive(Template)]
#[template(path = "session/start.html")]
pub struct StartPage<'a> {
    pub next: &'a str,
    /// `next`, URL-encoded.
    pub next_q: String,
    /// The organisation's identity provider (or, in local runs, the local form) is offered.
    pub idp: bool,
    /// Passkeys can work here (the portal has a domain name).
    pub passkeys: bool,
}

/// `GET /auth/start`.
pub async fn start(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Result<Response, ApiError> {
    let next = safe_next(q.next.as_deref());
    let idp = state.local_issuer.is_some() || state.settings.hosted_sign_in.is_some();
    Ok(render::page(&StartPage {
        next: &next,
        next_q: encode(&next),
        idp,
        passkeys: state.webauthn().is_some(),
    })?
    .into_response())
}
