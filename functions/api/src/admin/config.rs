//! The organisation's configuration (P8) and what hangs on it: reading and replacing it (every
//! wrong field named), the queue's figures and its pause switch (Q4), and "test the delivery
//! route" over the configured routes.

use crate::web::auth::{Admin, ClientAddr, Principal};
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
use shared::app::delivery::deliver;
use shared::domain::config::OrgConfig;
use shared::domain::continuity::{AuditRecord, Via};
use shared::ports::error::PutConfigError;

/// The organisation's configuration, or a 404 naming that it has none yet.
async fn current_config(state: &AppState, org: &str) -> Result<OrgConfig, ApiError> {
    state
        .config
        .get_config(org)
        .await?
        .ok_or_else(|| ApiError::not_found("Your organisation has no configuration yet."))
}

/// `GET /api/v1/admin/config`.
pub async fn get_config(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<OrgConfig>, ApiError> {
    Ok(Json(current_config(&state, &p.org_id).await?))
}

/// Stores a new configuration (validated: every wrong field named), audited and published.
async fn store_config(
    state: &AppState,
    p: &Principal,
    source: &str,
    before: Option<OrgConfig>,
    cfg: OrgConfig,
    what: &str,
) -> Result<OrgConfig, ApiError> {
    if cfg.org_id != p.org_id {
        return Err(ApiError::forbidden(format!(
            "org_id {:?} is not your organisation ({:?}).",
            cfg.org_id, p.org_id
        )));
    }
    let now = state.clock.now();
    match state.config.put_config(&cfg, now).await {
        Ok(()) => {}
        Err(PutConfigError::Invalid(errors)) => {
            // The message names every wrong field by its path (`routes[1].port`).
            tracing::info!(org = %p.org_id, %errors, "configuration refused");
            return Err(ApiError::unprocessable(format!(
                "Invalid configuration: {errors}"
            )));
        }
        Err(PutConfigError::DomainTaken(d)) => {
            return Err(ApiError::conflict(format!(
                "domains: {d:?} belongs to another organisation."
            )))
        }
        Err(PutConfigError::Store(e)) => return Err(e.into()),
    }
    let record = AuditRecord {
        org_id: p.org_id.clone(),
        at: now,
        who: format!("admin:{}", p.subject),
        via: Via::Console,
        what: what.into(),
        minutes: None,
        before: serde_json::to_value(&before).unwrap_or_default(),
        after: serde_json::to_value(&cfg).unwrap_or_default(),
        source: source.into(),
        request_id: request_id(),
    };
    state
        .continuity()
        .record(&record, "ConfigChanged", &[])
        .await;
    Ok(cfg)
}

/// `PUT /api/v1/admin/config`.
pub async fn put_config(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OrgConfig>, ApiError> {
    let cfg: OrgConfig = json_body(&headers, &body)?;
    let before = state.config.get_config(&p.org_id).await?;
    Ok(Json(
        store_config(&state, &p, &source, before, cfg, "config").await?,
    ))
}

/// `GET /api/v1/admin/queue`: the queue's figures and settings.
pub async fn queue(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<Value>, ApiError> {
    let cfg = current_config(&state, &p.org_id).await?;
    let figures = state.queue.queue_figures(&p.org_id).await?;
    Ok(Json(json!({
        "count": figures.count,
        "oldest": figures.oldest,
        "paused": cfg.queue.paused,
        "retention_hours": cfg.queue.retention_hours,
    })))
}

/// `POST /api/v1/admin/queue/{pause|unpause}`: pauses or resumes deliveries from the queue (a configuration change, audited).
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
    let before = current_config(&state, &p.org_id).await?;
    if before.queue.paused == paused {
        return Ok(Json(json!({"paused": paused, "changed": false})));
    }
    let mut cfg = before.clone();
    cfg.queue.paused = paused;
    store_config(
        &state,
        &p,
        &source,
        Some(before),
        cfg,
        &format!("queue-{action}"),
    )
    .await?;
    Ok(Json(json!({"paused": paused, "changed": true})))
}

/// Where the test message goes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryTestBody {
    /// A mailbox of the organisation that receives the test message.
    recipient: String,
}

/// "Test the delivery route" (P8): sends a short test message to one of the organisation's
/// mailboxes over its routes, in order, and reports what each route answered.
pub async fn delivery_test(
    State(state): State<AppState>,
    Admin(p): Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: DeliveryTestBody = json_body(&headers, &body)?;
    let cfg = current_config(&state, &p.org_id).await?;
    if !shared::domain::config::is_address(&b.recipient) || !cfg.owns_address(&b.recipient) {
        return Err(ApiError::unprocessable(
            "recipient must be an address on one of your organisation's domains.",
        ));
    }
    let now = state.clock.now();
    let helo = url::Url::parse(&state.settings.portal_base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let sender = state.settings.alert_sender.clone();
    let raw = format!(
        "From: {sender}\r\nTo: {to}\r\nSubject: Email continuity: delivery route test\r\n\
         Date: {date}\r\nMessage-ID: <route-test-{id}@{helo}>\r\nAuto-Submitted: auto-generated\r\n\r\n\
         This is a test of the delivery route from the email continuity service to your server.\r\n",
        to = b.recipient,
        date = now.to_rfc2822(),
        id = request_id(),
    );
    let relay = shared::adapters::smtp::relay::SmtpRelay::new(helo, None);
    let report = deliver(
        &relay,
        &cfg.routes,
        std::time::Duration::from_secs(u64::from(cfg.delivery.timeout_secs).min(30)),
        &sender,
        std::slice::from_ref(&b.recipient),
        raw.as_bytes(),
    )
    .await;
    Ok(Json(json!({
        "delivered": !report.delivered.is_empty(),
        "rejected": report.rejected.iter().map(|(r, why)| json!({"recipient": r, "reason": why})).collect::<Vec<_>>(),
        "errors": report.errors,
    })))
}
