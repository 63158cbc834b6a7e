//! The administration API (P7-P10): configuration, events, audit, queue, delivery-route test;
//! signed in as an administrator with the identity provider's JWT. JSON in, JSON out.
//!
//! Every change is audited with the administrator's subject, `via: console`, and the caller's
//! address, and published on the bus (the continuity events, `ConfigChanged`). Event actions
//! take an optional `Idempotency-Key` header: a retried request with the same key changes
//! nothing twice.

use crate::auth::{Admin, ClientAddr};
use crate::error::ApiError;
use crate::portal::{request_id, valid_request_id};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::app::continuity::Requester;
use shared::app::delivery::deliver;
use shared::domain::config::OrgConfig;
use shared::domain::continuity::{self, Action, AuditRecord, Via};
use shared::domain::continuity::{ActionOutcome, ContinuityState};
use shared::domain::window::Window;
use shared::ports::error::PutConfigError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/config", get(get_config).put(put_config))
        .route("/api/v1/admin/continuity", get(status))
        .route("/api/v1/admin/continuity/{action}", post(event_action))
        .route("/api/v1/admin/audit", get(audit))
        .route("/api/v1/admin/queue", get(queue))
        .route("/api/v1/admin/queue/{action}", post(queue_pause))
        .route("/api/v1/admin/delivery-test", post(delivery_test))
}

/// A JSON body: content type checked, then parsed; every problem is a 4xx naming it.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(ApiError::unsupported_media_type(
            "Send the body as application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Malformed body: {e}")))
}

async fn current_config(state: &AppState, org: &str) -> Result<OrgConfig, ApiError> {
    state
        .config
        .get_config(org)
        .await?
        .ok_or_else(|| ApiError::not_found("Your organisation has no configuration yet."))
}

async fn get_config(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<OrgConfig>, ApiError> {
    Ok(Json(current_config(&state, &p.org_id).await?))
}

/// Stores a new configuration (validated: every wrong field named), audited and published.
async fn store_config(
    state: &AppState,
    p: &crate::auth::Principal,
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

async fn put_config(
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

/// The continuity status as JSON (P1).
fn status_json(s: &ContinuityState, now: DateTime<Utc>) -> Value {
    let planned = continuity::planned(s, now).map(|(a, b)| json!({"start": a, "end": b}));
    json!({
        "active": s.active(now),
        "phase": s.phase(now),
        "event_until": s.event_until,
        "event_end": s.event_end(),
        "suspended": s.suspended(now),
        "suspended_until": s.suspended_until.filter(|u| *u > now),
        "planned": planned,
        "state": s,
    })
}

async fn status(State(state): State<AppState>, Admin(p): Admin) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let to = Window::containing(now).prev();
    let view = state
        .views
        .portal_view(&p.org_id, Window(to.0 - 719), to)
        .await?;
    let cfg = view
        .config
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Your organisation has no configuration yet."))?;
    let mut v = status_json(&view.state, now);
    v["counter"] = json!({
        "value": view.counter.map(|c| c.value).unwrap_or(0),
        "threshold": cfg.monitoring.threshold,
    });
    v["queue"] = json!(view.queue);
    v["time_zone"] = json!(cfg.time_zone);
    v["history"] = json!(view
        .history
        .iter()
        .map(|h| json!({"window_start": h.window.start(), "value": h.step.value, "delta": h.step.delta, "threshold": h.threshold}))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    /// Minutes (1 to 14 days).
    #[serde(default)]
    minutes: Option<i64>,
    /// Or one of the portal's buttons: `1h`, `4h`, `12h`, `1d`, `3d`.
    #[serde(default)]
    duration: Option<String>,
    /// A planned event (P10).
    #[serde(default)]
    start: Option<DateTime<Utc>>,
    #[serde(default)]
    end: Option<DateTime<Utc>>,
}

fn api_action(name: &str, b: &ActionBody) -> Result<Action, ApiError> {
    let minutes = || -> Result<u32, ApiError> {
        match (b.minutes, b.duration.as_deref()) {
            (Some(m), None) => continuity::check_minutes(m).map_err(ApiError::unprocessable),
            (None, Some(d)) => continuity::button_minutes(d).ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "duration {d:?} is not one of 1h, 4h, 12h, 1d, 3d (or give minutes)"
                ))
            }),
            (Some(_), Some(_)) => Err(ApiError::unprocessable(
                "give minutes or duration, not both",
            )),
            (None, None) => Err(ApiError::unprocessable("minutes (or duration) is required")),
        }
    };
    Ok(match name {
        "activate" => Action::Activate {
            minutes: minutes()?,
        },
        "extend" => Action::Extend {
            minutes: minutes()?,
        },
        "suspend" => Action::Suspend {
            minutes: minutes()?,
        },
        "stop" => Action::Stop,
        "schedule" => match (b.start, b.end) {
            (Some(start), Some(end)) => Action::Schedule { start, end },
            _ => return Err(ApiError::unprocessable("start and end are required")),
        },
        "cancel-planned" => Action::CancelPlanned,
        _ => return Err(ApiError::not_found("There is no such continuity action.")),
    })
}

async fn event_action(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: ActionBody = if body.is_empty() {
        ActionBody {
            minutes: None,
            duration: None,
            start: None,
            end: None,
        }
    } else {
        json_body(&headers, &body)?
    };
    let action = api_action(&name, &b)?;
    let rid = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => request_id(),
        Some(Ok(k)) if valid_request_id(k) => k.to_string(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Idempotency-Key: 8 to 64 letters, digits, '-' or '_'.",
            ))
        }
    };
    let by = Requester {
        who: format!("admin:{}", p.subject),
        via: Via::Console,
        source,
        request_id: rid,
    };
    let now = state.clock.now();
    match state
        .continuity()
        .perform(&p.org_id, &action, &by, now)
        .await?
    {
        ActionOutcome::Applied { after, .. } => Ok((
            StatusCode::OK,
            Json(
                json!({"outcome": "applied", "message": action.confirmation(), "status": status_json(&after, now)}),
            ),
        )),
        ActionOutcome::Repeated { current } => Ok((
            StatusCode::OK,
            Json(
                json!({"outcome": "repeated", "message": action.confirmation(), "status": status_json(&current, now)}),
            ),
        )),
        ActionOutcome::Refused { refusal, .. } => Err(match refusal {
            continuity::Refusal::Invalid(m) => ApiError::unprocessable(m),
            r => ApiError::new(StatusCode::CONFLICT, "refused", r.to_string()),
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i32>,
}

async fn audit(
    State(state): State<AppState>,
    Admin(p): Admin,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(format!("Query: {e}")))?;
    let now = state.clock.now();
    let to = q.to.unwrap_or(now);
    let from = q.from.unwrap_or(to - Duration::days(7));
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) || from > to {
        return Err(ApiError::bad_request(
            "limit is 1 to 1000 and from is before to.",
        ));
    }
    let records = state.views.audit(&p.org_id, from, to, limit).await?;
    Ok(Json(json!({ "records": records })))
}

async fn queue(State(state): State<AppState>, Admin(p): Admin) -> Result<Json<Value>, ApiError> {
    let cfg = current_config(&state, &p.org_id).await?;
    let figures = state.queue.queue_figures(&p.org_id).await?;
    Ok(Json(json!({
        "count": figures.count,
        "oldest": figures.oldest,
        "paused": cfg.queue.paused,
        "retention_hours": cfg.queue.retention_hours,
    })))
}

/// Pauses or resumes deliveries from the queue (a configuration change, audited).
async fn queue_pause(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryTestBody {
    /// A mailbox of the organisation that receives the test message.
    recipient: String,
}

/// "Test the delivery route" (P8): sends a short test message to one of the organisation's
/// mailboxes over its routes, in order, and reports what each route answered.
async fn delivery_test(
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
    let sender = state.settings.channels.sender.clone();
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
