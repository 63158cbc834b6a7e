//! The organisation's configuration (P8) and what hangs on it: reading and replacing it (every
//! wrong field named), the queue's figures and its pause switch (Q4), and "test the delivery
//! route" over the configured routes. The rules are [`shared::app::settings`]'s.

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::json_body;
use crate::web::ids::request_id;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::app::settings::RouteTest;
use shared::domain::config::OrgConfig;
use shared::domain::queue::QueuedView;

/// `GET /api/v1/admin/config`.
pub async fn get_config(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<OrgConfig>, ApiError> {
    Ok(Json(state.settings().current(&p.org_id).await?))
}

/// `PUT /api/v1/admin/config`: replaces the configuration (audited, published).
pub async fn put_config(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrgConfig>, ApiError> {
    let cfg: OrgConfig = json_body(&headers, &body)?;
    let by = by_admin(&p, source);
    let now = state.clock.now();
    Ok(Json(
        state.settings().replace(&p.org_id, cfg, &by, now).await?,
    ))
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
/// configuration change, audited).
pub async fn queue_pause(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path(action): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let paused = match action.as_str() {
        "pause" => true,
        "unpause" => false,
        _ => return Err(ApiError::not_found("Use /queue/pause or /queue/unpause.")),
    };
    let by = by_admin(&p, source);
    let changed = state
        .settings()
        .set_queue_paused(&p.org_id, paused, &by, state.clock.now())
        .await?;
    Ok(Json(json!({"paused": paused, "changed": changed})))
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
