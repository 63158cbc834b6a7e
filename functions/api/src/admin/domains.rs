//! Proven domains (P11): an administrator claims a domain (the service issues a token to publish
//! as a TXT record), then asks the service to verify it through the DNS; proven, the domain joins
//! the organisation with its SES identity. The list shows every record to publish (the proof,
//! DKIM CNAMEs, MX, the optional custom MAIL FROM) and its status. The rules are
//! [`shared::app::domains`]'s.

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::{if_match, json_body};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::domains::DomainView;

/// `GET /api/v1/admin/domains`: proven domains and pending claims, with their records.
pub async fn list(State(state): State<AppState>, Admin(p): Admin) -> Result<Json<Value>, ApiError> {
    let domains = state.domains().list(&p.org_id, state.clock.now()).await?;
    Ok(Json(json!({ "domains": domains })))
}

/// The domain to claim.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    domain: String,
}

/// `POST /api/v1/admin/domains`: claims a domain; the answer names the TXT record to publish.
pub async fn claim(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DomainView>, ApiError> {
    let b: ClaimBody = json_body(&headers, &body)?;
    let by = by_admin(&p, source);
    Ok(Json(
        state
            .domains()
            .claim(&p.org_id, &b.domain, &by, state.clock.now())
            .await?,
    ))
}

/// `POST /api/v1/admin/domains/{domain}/verify`: checks the claim's TXT record through the DNS;
/// the configuration write that adds the domain is conditional on `If-Match` when sent.
pub async fn verify(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path(domain): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DomainView>, ApiError> {
    let expected = if_match(&headers)?;
    let by = by_admin(&p, source);
    Ok(Json(
        state
            .domains()
            .verify(&p.org_id, &domain, expected, &by, state.clock.now())
            .await?,
    ))
}
