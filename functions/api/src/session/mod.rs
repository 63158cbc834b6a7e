//! Browser sign-in (U7, P8): the session cookie holds the identity provider's ID token, verified
//! on every request like a bearer token.
//!
//! - In AWS: the identity provider's hosted sign-in (OAuth 2.0 authorization code flow with
//!   PKCE, a public client): `/auth/login` redirects there with a random `state` and code
//!   challenge kept in a short-lived cookie; `/auth/callback` checks the state, exchanges the code
//!   for tokens, verifies the ID token and sets the session cookie.
//! - In a local run: `/auth/login` shows a form that signs in any address of a configured
//!   organisation with the runner's own issuer (demo users; never available in AWS).
//!
//! - Owned by the service (U11), beside them and working with no identity provider at all:
//!   one-time codes ([`code`]) and passkeys ([`passkey`]); both open a session the service keeps
//!   (its token in the same cookie). `/auth/start` offers every way in.
//!
//! The session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` (except plain-HTTP local runs),
//! and lives as long as the token. After the provider's redirect the callback answers a small page
//! that moves on to the inbox itself, so that the next request is a same-site one and carries
//! the Strict cookie.

pub mod code;
pub mod passkey;

use crate::web::auth::{cookie, org_for_address, same_origin, Principal, SESSION_COOKIE};
use crate::web::error::ApiError;
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::adapters::jwks::TokenRequest;

/// Cookie carrying the sign-in attempt (`state.verifier.next`) between login and callback.
const OAUTH_COOKIE: &str = "ec_oauth";
/// Where a signed-in user goes by default.
const DEFAULT_NEXT: &str = "/inbox";
/// Local sign-ins last this long.
const LOCAL_SESSION_HOURS: i64 = 8;

/// The sign-in routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/local", post(local_sign_in))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/start", get(code::start))
        .route("/auth/code", get(code::form).post(code::request))
        .route("/auth/code/verify", post(code::verify))
        .route("/auth/passkey/start", post(passkey::sign_in_start))
        .route("/auth/passkey/finish", post(passkey::sign_in_finish))
        .route("/auth/passkeys", get(passkey::page))
        .route(
            "/auth/passkeys/{id}/remove",
            post(passkey::remove_from_page),
        )
        .route("/static/passkey.js", get(passkey::script))
        .route(
            "/api/v1/passkeys",
            get(passkey::list).post(passkey::enrol_finish),
        )
        .route("/api/v1/passkeys/registration", post(passkey::enrol_start))
        .route("/api/v1/passkeys/{id}", delete(passkey::remove))
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only paths on this site: `/x...`, never `//host` or a scheme.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 512 =>
        {
            n.to_string()
        }
        _ => DEFAULT_NEXT.to_string(),
    }
}

fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(raw)
}

fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("ec_invalid=1"))
}

/// `resp` with the cookie of a session the service opened (a code or a passkey; U11): the
/// same cookie as the identity provider's sessions, for as long as the session lasts.
fn with_service_session(state: &AppState, mut resp: Response, token: &str) -> Response {
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            state,
            SESSION_COOKIE,
            token,
            shared::domain::sign_in::SESSION_HOURS * 3600,
            "Strict",
        ),
    );
    resp
}

/// The local sign-in form (local runs only).
#[derive(Template)]
#[template(path = "session/login.html")]
struct LoginPage<'a> {
    next: &'a str,
}

/// After the provider's redirect: moves on by itself, as a same-site request.
#[derive(Template)]
#[template(path = "session/signed_in.html")]
struct SignedInPage<'a> {
    next: &'a str,
}

/// Starts a sign-in: the local form, or a redirect to the identity provider.
async fn login(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Result<Response, ApiError> {
    let next = safe_next(q.next.as_deref());
    if state.local_issuer.is_some() {
        return Ok(render::page(&LoginPage { next: &next })?.into_response());
    }
    let Some(idp) = &state.settings.hosted_sign_in else {
        return Err(ApiError::not_found(
            "Browser sign-in is not configured for this deployment (no SignInDomain); use the API with a bearer token.",
        )
        .page());
    };
    let st = random_token(24);
    let verifier = random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&idp.authorize_url)
        .map_err(|e| ApiError::internal("sign-in authorize URL", e))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &idp.client_id)
        .append_pair("redirect_uri", &callback_url(&state))
        .append_pair("scope", "openid email profile")
        .append_pair("state", &st)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let attempt = format!(
        "{st}.{verifier}.{}",
        URL_SAFE_NO_PAD.encode(next.as_bytes())
    );
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(url.as_str())
            .map_err(|e| ApiError::internal("sign-in redirect", e))?,
    );
    // Lax: the provider's redirect back is a cross-site top-level GET.
    h.insert(
        header::SET_COOKIE,
        set_cookie(&state, OAUTH_COOKIE, &attempt, 600, "Lax"),
    );
    Ok(resp)
}

fn callback_url(state: &AppState) -> String {
    format!(
        "{}/auth/callback",
        state.settings.portal_base_url.trim_end_matches('/')
    )
}

#[derive(Debug, Deserialize)]
pub struct LocalForm {
    email: String,
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// Local runs only: signs in `email` with the runner's issuer.
async fn local_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LocalForm>,
) -> Result<Response, ApiError> {
    let Some(issuer) = &state.local_issuer else {
        return Err(ApiError::not_found("Local sign-in exists only in local runs.").page());
    };
    if !same_origin(&headers) {
        return Err(ApiError::forbidden("Sign-in must come from this site's own form.").page());
    }
    let email = f.email.trim().to_ascii_lowercase();
    if !shared::domain::config::is_address(&email) {
        return Err(ApiError::bad_request(format!("{email:?} is not an email address.")).page());
    }
    if org_for_address(&state, &email).await?.is_none() {
        return Err(ApiError::forbidden(
            "That address is not on a domain of any organisation configured here.",
        )
        .page());
    }
    let admin = f.admin.is_some();
    let groups: &[&str] = if admin {
        &[state.settings.identity.admin_group.as_str()]
    } else {
        &[]
    };
    let now = state.clock.now();
    let token = issuer
        .issue(
            &TokenRequest {
                subject: &format!("local:{email}"),
                email: Some(&email),
                groups,
                org: None,
                // The local form stands in for the provider's sign-in, which asks for the
                // second factor (local runs only: never set in AWS).
                second_factor: true,
            },
            now,
            chrono::Duration::hours(LOCAL_SESSION_HOURS),
        )
        .map_err(|e| ApiError::internal("local token", e))?;
    tracing::info!(email = %email, admin, "local sign-in");
    let next = safe_next(f.next.as_deref());
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &state,
            SESSION_COOKIE,
            &token,
            LOCAL_SESSION_HOURS * 3600,
            "Strict",
        ),
    );
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The identity provider's redirect back: checks the state, exchanges the code, sets the session.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    if let Some(e) = q.error {
        let d = q.error_description.unwrap_or_default();
        return Err(ApiError::unauthorized(format!(
            "The identity provider refused the sign-in: {e} {d}"
        ))
        .page());
    }
    let Some(idp) = &state.settings.hosted_sign_in else {
        return Err(
            ApiError::not_found("Browser sign-in is not configured for this deployment.").page(),
        );
    };
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return Err(ApiError::bad_request(
            "The sign-in answer is incomplete (no code or state); start again.",
        )
        .page());
    };
    let attempt = cookie(&headers, OAUTH_COOKIE).unwrap_or_default();
    let mut parts = attempt.splitn(3, '.');
    let (Some(expected), Some(verifier), Some(next)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::bad_request(
            "No sign-in was started from this browser, or it took too long; start again.",
        )
        .page());
    };
    if !constant_time_eq(expected.as_bytes(), st.as_bytes()) {
        return Err(ApiError::bad_request(
            "The sign-in answer does not belong to this browser's sign-in; start again.",
        )
        .page());
    }
    let next = URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let next = safe_next(next.as_deref());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| ApiError::internal("token client", e))?;
    let resp = http
        .post(&idp.token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", idp.client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", callback_url(&state).as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(|e| ApiError::unavailable("token endpoint", e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(ApiError::unauthorized(format!(
            "The identity provider did not accept the sign-in code ({status}); start again."
        ))
        .page());
    }
    let tokens: TokenResponse = resp
        .json()
        .await
        .map_err(|e| ApiError::unavailable("token endpoint answer", e))?;
    let id_token = tokens
        .id_token
        .ok_or_else(|| ApiError::unauthorized("The identity provider sent no ID token.").page())?;
    let id = state
        .verifier
        .verify(&id_token, state.clock.now())
        .await
        .map_err(|e| ApiError::from(e).page())?;
    let max_age = (id.expires_at - state.clock.now()).num_seconds().max(0);
    let mut resp = render::page(&SignedInPage { next: &next })?.into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &id_token, max_age, "Strict"),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, OAUTH_COOKIE, "", 0, "Lax"),
    );
    Ok(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ends the browser session (the token itself stays valid at the provider until it expires).
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !same_origin(&headers) {
        return Err(ApiError::forbidden("Sign-out must come from this site's own pages.").page());
    }
    // A session the service opened ends here and now, not only in this browser.
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.sign_in().end_session(&token).await?;
    }
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/auth/start")]).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0, "Strict"),
    );
    // What the Online Inbox kept on this device (its service worker's saved pages, drafts) goes
    // with the session: the next person at this browser sees none of it (issue 17).
    resp.headers_mut().insert(
        header::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\", \"storage\""),
    );
    Ok(resp)
}

/// Who the caller is, as the service sees them.
async fn me(p: Principal) -> Json<Principal> {
    Json(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(Some("/inbox?x=1")), "/inbox?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "inbox",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), DEFAULT_NEXT, "{bad}");
        }
        assert_eq!(safe_next(None), DEFAULT_NEXT);
    }
}
