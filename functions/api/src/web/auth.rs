//! Who is calling: a signed-in [`Principal`] (a bearer token or the session cookie: the
//! identity provider's JWT, or a session the service opened after a one-time code or a passkey,
//! U11), an [`Admin`] (through the identity provider only), a [`PageUser`] (a page route's signed-in user), and
//! the caller's address ([`ClientAddr`]).
//!
//! Organisation: the token's organisation claim when present, otherwise the organisation that
//! owns the domain of the token's verified address (one BatchGetItem of the domain and its
//! parents). A token that leads to no organisation is refused (403).
//!
//! Cross-site requests: a request authenticated by the cookie with an unsafe method (POST, PUT,
//! PATCH, DELETE) must come from the service's own pages: its `Origin` must be this host (or,
//! without `Origin`, `Sec-Fetch-Site` must be `same-origin`). The cookie is also `SameSite=Strict`.
//! Bearer tokens are not sent by browsers on their own, so they need no such check.

use crate::web::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use shared::app::mailbox::User;
use shared::app::sign_in::SESSION_PREFIX;
use shared::domain::sign_in::SignInMethod;
use std::net::SocketAddr;

/// Name of the session cookie (holds the identity provider's ID token, or the token of a session
/// the service opened after a code or a passkey).
pub const SESSION_COOKIE: &str = "ec_session";

/// Where a page without a session sends the browser: every way in (the identity provider, a
/// one-time code, a passkey).
pub const SIGN_IN_START: &str = "/auth/start";

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    Bearer,
    Cookie,
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub org_id: String,
    /// The identity provider's subject (`sub`): the audit's "who".
    pub subject: String,
    /// Their own mailbox address, when the token carries a verified one.
    pub email: Option<String>,
    /// Administrator of `org_id` (only ever through the identity provider: a one-time code or
    /// a passkey never makes an administrator).
    pub admin: bool,
    /// The identity provider's token shows the second factor administrators must use
    /// (`ADMIN_MFA_CLAIM`; true when the provider asks every sign-in for one). False for the
    /// service's own sessions.
    pub second_factor: bool,
    pub credential: Credential,
    /// How they signed in: the identity provider, or the service's own code or passkey.
    pub method: SignInMethod,
}

impl Principal {
    /// The signed-in person as the inbox use cases see them.
    pub fn user(&self) -> User<'_> {
        User {
            org_id: &self.org_id,
            subject: &self.subject,
            email: self.email.as_deref(),
        }
    }
}

/// A signed-in administrator of their organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Principal);

/// The caller's address: API Gateway's source IP in AWS, the peer address locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

/// The token a request carries, and how.
pub fn credential(headers: &HeaderMap) -> Option<(String, Credential)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some((v[7..].trim().to_string(), Credential::Bearer));
        }
    }
    cookie(headers, SESSION_COOKIE).map(|t| (t, Credential::Cookie))
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether an unsafe request comes from this service's own pages.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    // `Origin: null` is what Chrome sends on a form POST from a page with
    // `Referrer-Policy: no-referrer` (every page here): it says nothing, so the browser's
    // `Sec-Fetch-Site` decides, as without `Origin` (opaque origins get `cross-site` there).
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    {
        let Some(host) = host else { return false };
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or("");
        return origin_host.eq_ignore_ascii_case(host);
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin")
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, how) = credential(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                "Sign-in required: send the identity provider's token as 'Authorization: Bearer <token>'.",
            )
        })?;
        if how == Credential::Cookie && unsafe_method(&parts.method) && !same_origin(&parts.headers)
        {
            return Err(ApiError::forbidden(
                "This request did not come from the service's own pages (cross-site request refused).",
            ));
        }
        if token.starts_with(SESSION_PREFIX) {
            return service_session(state, &token, how).await;
        }
        let id = state.verifier.verify(&token, state.clock.now()).await?;
        let org_id = match (&id.org_claim, &id.email) {
            (Some(org), _) if shared::domain::config::is_org_id(org) => org.clone(),
            (Some(_), _) => {
                return Err(ApiError::forbidden(
                    "The token's organisation claim is not a valid organisation id.",
                ))
            }
            (None, Some(email)) => org_for_address(state, email).await?.ok_or_else(|| {
                ApiError::forbidden(
                    "Your account's address is not on a domain of any organisation this service serves.",
                )
            })?,
            (None, None) => {
                return Err(ApiError::forbidden(
                    "The token names no organisation and carries no verified address.",
                ))
            }
        };
        Ok(Principal {
            org_id,
            subject: id.subject,
            email: id.email,
            admin: id.admin,
            second_factor: id.second_factor,
            credential: how,
            method: SignInMethod::IdentityProvider,
        })
    }
}

/// A session the service opened (a code or a passkey, U11): one GetItem; the organisation and
/// address are the directory's as at sign-in, asked again at most every
/// `SESSION_RECHECK_MINUTES` (a removed user is refused). Never an administrator.
async fn service_session(
    state: &AppState,
    token: &str,
    how: Credential,
) -> Result<Principal, ApiError> {
    let now = state.clock.now();
    let session = state.sign_in().session(token, now).await?.ok_or_else(|| {
        ApiError::unauthorized(
            "Your session has ended (signed out, expired, or your account is no longer in your organisation's directory); sign in again.",
        )
    })?;
    Ok(Principal {
        org_id: session.org_id,
        subject: format!("user:{}", session.address),
        email: Some(session.address),
        admin: false,
        second_factor: false,
        credential: how,
        method: session.method,
    })
}

/// The organisation owning the domain of `address` (the most specific owned domain).
pub async fn org_for_address(state: &AppState, address: &str) -> Result<Option<String>, ApiError> {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return Ok(None);
    };
    let candidates = shared::app::inbound::parent_domains(&domain.to_ascii_lowercase());
    let owners = state.domains.orgs_for_domains(&candidates).await?;
    Ok(candidates.iter().find_map(|d| owners.get(d).cloned()))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let p = Principal::from_request_parts(parts, state).await?;
        if p.method != SignInMethod::IdentityProvider {
            return Err(ApiError::forbidden(
                "Administrators sign in through the identity provider; a one-time code or a passkey does not open the administration API.",
            ));
        }
        if !p.admin {
            return Err(ApiError::forbidden(format!(
                "Administrators only: your account is not in the '{}' group.",
                state.settings.identity.admin_group
            )));
        }
        if !p.second_factor {
            let required = state
                .settings
                .identity
                .admin_second_factor
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::info!(
                org = %p.org_id,
                subject = %p.subject,
                "administration refused: the token shows no second factor"
            );
            return Err(ApiError::forbidden(format!(
                "Administrators must sign in with a second factor: your identity provider's token does not show one (its claim {required}). Sign out, then sign in again with your authenticator app."
            )));
        }
        Ok(Admin(p))
    }
}

/// A signed-in user of a page route: without a session, a GET goes to the sign-in page (and
/// back here afterwards); other refusals are pages.
pub struct PageUser(pub Principal);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match Principal::from_request_parts(parts, state).await {
            Ok(p) => Ok(PageUser(p)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED && parts.method == Method::GET => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|x| x.as_str())
                    .unwrap_or("/inbox");
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Err(Redirect::to(&format!("{SIGN_IN_START}?next={next}")).into_response())
            }
            Err(e) => Err(e.page().into_response()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            let ip = match ctx {
                RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
                #[allow(unreachable_patterns)]
                _ => None,
            };
            if let Some(ip) = ip {
                return Ok(ClientAddr(ip));
            }
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(ClientAddr(addr.ip().to_string()));
        }
        Ok(ClientAddr("unknown".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_before_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ec_session=tok2"),
        );
        assert_eq!(credential(&h), Some(("tok2".into(), Credential::Cookie)));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok1"),
        );
        assert_eq!(credential(&h), Some(("tok1".into(), Credential::Bearer)));
    }

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("portal.example:8080"),
        );
        assert!(!same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://portal.example:8080"),
        );
        assert!(same_origin(&h));
        // A form POST under no-referrer: Origin null, Sec-Fetch-Site decides.
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}
