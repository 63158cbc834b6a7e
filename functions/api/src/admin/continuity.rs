//! Continuity through the administration API (P1-P5, P7, P10): the status with the counter's
//! history, the actions (activate, extend, suspend, stop, schedule, cancel-planned) through the
//! continuity use case, and the audit. An action takes an optional `Idempotency-Key` header: a
//! retried request with the same key changes nothing twice.

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::json_body;
use crate::web::ids::valid_request_id;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::app::portal::HISTORY_WINDOWS;
use shared::domain::continuity::{self, Action};
use shared::domain::continuity::{ActionOutcome, ContinuityState};
use shared::domain::window::Window;

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

/// `GET /api/v1/admin/continuity`.
pub async fn status(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let to = Window::containing(now).prev();
    let view = state
        .views
        .portal_view(&p.org_id, Window(to.0 - (HISTORY_WINDOWS - 1)), to)
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
    // The provider's open incident (D10) and the probe's refusal (D9) of the latest window.
    let latest = view.history.last();
    v["provider_incident"] = json!(latest.and_then(|h| h.provider.as_ref()));
    v["probe_refused"] = json!(latest.and_then(|h| h.outbound_reason.as_deref()));
    v["history"] = json!(view
        .history
        .iter()
        .map(|h| json!({"window_start": h.window.start(), "value": h.step.value, "delta": h.step.delta, "threshold": h.threshold, "probe_refused": h.outbound_reason, "provider_incident": h.provider}))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

/// An action's parameters: a duration, or a planned event's start and end.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
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

/// `POST /api/v1/admin/continuity/{action}`.
pub async fn event_action(
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
    let mut by = by_admin(&p, source);
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => {}
        Some(Ok(k)) if valid_request_id(k) => by.request_id = k.to_string(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Idempotency-Key: 8 to 64 letters, digits, '-' or '_'.",
            ))
        }
    }
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
            r @ continuity::Refusal::TooFar { .. } => ApiError::unprocessable(r.to_string()),
            r => ApiError::new(StatusCode::CONFLICT, "refused", r.to_string()),
        }),
    }
}

/// Which audit records: between `from` and `to`, at most `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<i32>,
}

/// `GET /api/v1/admin/audit`: records between `from` and `to` (the last 7 days by default).
pub async fn audit(
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
