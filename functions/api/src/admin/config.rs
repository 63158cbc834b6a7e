//! The organisation's configuration (P8) and what hangs on it: reading and replacing it (every
//! wrong field named), the queue's figures and its pause switch (Q4), and "test the delivery
//! route" over the configured routes. The rules are [`shared::app::settings`]'s.
//!
//! Versions: GET answers the configuration with its `version` (and the same as `ETag`); a write
//! is conditional on the version the administrator read, sent as `If-Match` (a PUT of the
//! document GET returned, which carries `version`, is conditional on it the same way), or else
//! on the version the request reads itself. A stale write is a 409 that says to read again;
//! nothing changes.

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::{etag, if_match, json_body};
use crate::web::ids::request_id;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::app::settings::RouteTest;
use shared::domain::config::OrgConfig;
use shared::domain::config::StoredConfig;
use shared::domain::queue::QueuedView;

/// The configuration as answered: the document with its `version`, and `ETag` the same.
fn versioned(stored: &StoredConfig) -> Response {
    let mut doc = serde_json::to_value(&stored.config).unwrap_or_default();
    if let Some(fields) = doc.as_object_mut() {
        fields.insert("version".into(), json!(stored.version));
    }
    ([(header::ETAG, etag(stored.version))], Json(doc)).into_response()
}

/// `GET /api/v1/admin/config`: the configuration, its `version` and `ETag`.
pub async fn get_config(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Response, ApiError> {
    Ok(versioned(&state.settings().versioned(&p.org_id).await?))
}

/// `PUT /api/v1/admin/config`: replaces the configuration (audited, published) if the version
/// named by `If-Match` or the body's `version` (the same if both) is still the stored one.
pub async fn put_config(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut doc: Value = json_body(&headers, &body)?;
    let in_body = match doc.as_object_mut().and_then(|o| o.remove("version")) {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| ApiError::bad_request("version must be the number GET returned."))?,
        ),
    };
    let expected = match (if_match(&headers)?, in_body) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::bad_request(format!(
            "If-Match names version {h} and the body version {b}: send the version you read once."
        )))
        }
        (h, b) => h.or(b),
    };
    let cfg: OrgConfig = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request(format!("Malformed body: {e}")))?;
    let by = by_admin(&p, source);
    let now = state.clock.now();
    let stored = state
        .settings()
        .replace(&p.org_id, cfg, expected, &by, now)
        .await?;
    Ok(versioned(&stored))
}

/// Queued messages listed by the queue view, at most (oldest first).
pub const QUEUE_VIEW_LIMIT: usize = 100;

/// `GET /api/v1/admin/queue`: the queue's figures and settings, and why mail waits: the queued
/// messages oldest first (attempts, last error, next retry), and the mail set aside in the last
/// 30 days (quarantined viruses, undeliverable mail whose bounce was withheld) with reasons.
pub async fn queue(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<Value>, ApiError> {
    let cfg = state.settings().current(&p.org_id).await?;
    let figures = state.queue.queue_figures(&p.org_id).await?;
    let snap = state
        .queue_views
        .queue_snapshot(&p.org_id, QUEUE_VIEW_LIMIT)
        .await?;
    let messages: Vec<QueuedView> = snap
        .queued
        .iter()
        .map(|m| QueuedView::of(m, snap.next_look))
        .collect();
    Ok(Json(json!({
        "count": figures.count,
        "oldest": figures.oldest,
        "paused": cfg.queue.paused,
        "retention_hours": cfg.queue.retention_hours,
        "next_attempt": snap.next_look,
        "consecutive_failures": snap.failures,
        "messages": messages,
        "set_aside": snap.set_aside,
    })))
}

/// `POST /api/v1/admin/queue/{pause|unpause}`: pauses or resumes deliveries from the queue (a
/// configuration change, audited; conditional on `If-Match` when sent).
pub async fn queue_pause(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path(action): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let paused = match action.as_str() {
        "pause" => true,
        "unpause" => false,
        _ => return Err(ApiError::not_found("Use /queue/pause or /queue/unpause.")),
    };
    let expected = if_match(&headers)?;
    let by = by_admin(&p, source);
    let (changed, version) = state
        .settings()
        .set_queue_paused(&p.org_id, paused, expected, &by, state.clock.now())
        .await?;
    Ok((
        [(header::ETAG, etag(version))],
        Json(json!({"paused": paused, "changed": changed, "version": version})),
    )
        .into_response())
}

/// Where the test message goes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTestBody {
    /// A mailbox of the organisation that receives the test message.
    recipient: String,
}

/// `POST /api/v1/admin/delivery-test` (P8): a short test message to one of the organisation's
/// mailboxes over its routes, in order; what each route answered.
pub async fn delivery_test(
    State(state): State<AppState>,
    Admin(p): Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: DeliveryTestBody = json_body(&headers, &body)?;
    let host = url::Url::parse(&state.settings.portal_base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let test = RouteTest {
        sender: &state.settings.channels.sender,
        recipient: &b.recipient,
        host: &host,
        id: &request_id(),
    };
    let report = state
        .settings()
        .test_delivery(&p.org_id, state.relay.as_ref(), &test, state.clock.now())
        .await?;
    Ok(Json(json!({
        "delivered": !report.delivered.is_empty(),
        "rejected": report.rejected.iter().map(|(r, why)| json!({"recipient": r, "reason": why})).collect::<Vec<_>>(),
        "errors": report.errors,
    })))
}

/// `POST /api/v1/admin/probe-test` (D9): "test the probe logon". Gets a token when the method
/// needs one and logs on to the probe mailbox's server, sending nothing; what failed in the
/// refusal table's words (the history and the alerts say the same).
pub async fn probe_test(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<shared::app::probe_logon::LogonReport>, ApiError> {
    let cfg = state.settings().current(&p.org_id).await?;
    if cfg.probe.is_none() {
        return Err(ApiError::unprocessable(
            "no probe mailbox is configured: set probe in the configuration first",
        ));
    }
    let report = state.probe_logons().test(&cfg, state.clock.now()).await;
    tracing::info!(org = %p.org_id, method = report.method, ok = report.ok, error = ?report.error, "probe logon tested");
    Ok(Json(report))
}
