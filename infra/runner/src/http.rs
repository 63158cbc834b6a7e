//! The runner's control API on localhost: the monitor's state, the clock, and the local identity
//! provider (its key set, and bearer tokens for demo users). The portal, administration API and
//! Online Inbox are the `api` crate's router, served on a port of their own.

use crate::Runner;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shared::domain::config::is_org_id;
use shared::domain::window::Window;
use shared::ports::store::MonitorStore;
use std::fmt::Write;
use std::sync::Arc;

pub fn router(runner: Arc<Runner>) -> Router {
    Router::new()
        .route("/", get(text_status))
        .route("/status", get(status))
        .route("/orgs/{org}/history", get(history))
        .route("/orgs/{org}/queue", get(queue))
        .route("/run/queue", post(run_queue))
        .route("/run/monitor", post(run_monitor))
        .route("/clock/advance", post(advance))
        .with_state(runner)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::warn!(%status, %message, "control API request refused");
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Serialize)]
struct OrgStatus {
    org_id: String,
    counter: Option<u32>,
    threshold: Option<u32>,
    last_window: Option<Window>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct StatusBody {
    now: chrono::DateTime<chrono::Utc>,
    clock: &'static str,
    organisations: Vec<OrgStatus>,
}

async fn collect(runner: &Runner) -> Result<StatusBody, Response> {
    let store = &runner.deps.store;
    let orgs = store
        .monitored_orgs()
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut out = Vec::new();
    for o in orgs {
        let counter = store.counter(&o.org_id).await.ok().flatten();
        out.push(OrgStatus {
            counter: counter.map(|c| c.value),
            threshold: o.config.as_ref().ok().map(|c| c.monitoring.threshold),
            last_window: counter.map(|c| c.window),
            problem: o.config.err(),
            org_id: o.org_id,
        });
    }
    Ok(StatusBody {
        now: runner.now(),
        clock: if runner.virtual_clock.is_some() {
            "virtual"
        } else {
            "machine"
        },
        organisations: out,
    })
}

async fn status(State(runner): State<Arc<Runner>>) -> Response {
    match collect(&runner).await {
        Ok(b) => Json(b).into_response(),
        Err(r) => r,
    }
}

/// Plain text, so that nothing from the table is ever interpreted by a browser.
async fn text_status(State(runner): State<Arc<Runner>>) -> Response {
    let body = match collect(&runner).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "email continuity, local run    now {} ({} clock)\n",
        body.now.format("%Y-%m-%d %H:%M:%S UTC"),
        body.clock
    );
    let _ = writeln!(
        t,
        "{:<24} {:>8} {:>10}  last window (start)",
        "organisation", "counter", "threshold"
    );
    for o in &body.organisations {
        let last = o
            .last_window
            .map(|w| w.start().format("%H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "{:<24} {:>8} {:>10}  {}{}",
            o.org_id,
            o.counter
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            o.threshold
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            last,
            o.problem
                .as_ref()
                .map(|p| format!("   PROBLEM: {p}"))
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(t, "\nhistory: GET /orgs/ORG/history?windows=30   run now: POST /run/monitor, POST /run/queue   queue: GET /orgs/ORG/queue   virtual clock: POST /clock/advance?minutes=N");
    ([("content-type", "text/plain; charset=utf-8")], t).into_response()
}

#[derive(Deserialize)]
struct HistoryQuery {
    windows: Option<i64>,
}

async fn history(
    State(runner): State<Arc<Runner>>,
    Path(org): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if !is_org_id(&org) {
        return error(StatusCode::BAD_REQUEST, "not an organisation id");
    }
    let windows = q.windows.unwrap_or(720);
    if !(1..=21_600).contains(&windows) {
        return error(
            StatusCode::BAD_REQUEST,
            "windows must be between 1 and 21600 (30 days)",
        );
    }
    let to = Window::just_ended(runner.now());
    let from = Window(to.0 - windows + 1);
    match runner.deps.store.history(&org, from, to).await {
        Ok(h) => Json(h).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn run_monitor(State(runner): State<Arc<Runner>>) -> Response {
    match runner.run_monitor(None).await {
        Ok(r) => Json(monitor::RunSummary::from(r)).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// The queue's figures (D8, P1) and its oldest messages.
async fn queue(State(runner): State<Arc<Runner>>, Path(org): Path<String>) -> Response {
    use shared::ports::store::{QueueFiguresSource, QueueStore};
    if !is_org_id(&org) {
        return error(StatusCode::BAD_REQUEST, "not an organisation id");
    }
    let store = &runner.deps.store;
    let figures = match store.queue_figures(&org).await {
        Ok(f) => f,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    match store.oldest(&org, 20).await {
        Ok(m) => Json(serde_json::json!({ "figures": figures, "oldest": m })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn run_queue(State(runner): State<Arc<Runner>>) -> Response {
    match runner.run_queue(runner.now()).await {
        None => error(StatusCode::CONFLICT, "the runner has no inbound functions"),
        Some(Ok(r)) => Json(r).into_response(),
        Some(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
struct AdvanceQuery {
    minutes: i64,
}

async fn advance(State(runner): State<Arc<Runner>>, Query(q): Query<AdvanceQuery>) -> Response {
    if !(1..=43_200).contains(&q.minutes) {
        return error(
            StatusCode::BAD_REQUEST,
            "minutes must be between 1 and 43200 (30 days)",
        );
    }
    match runner.advance(chrono::Duration::minutes(q.minutes)).await {
        Ok(ticks) => {
            let brief: Vec<_> = ticks
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "at": t.at, "window": t.summary.window, "committed": t.summary.committed,
                        "failed": t.summary.failed, "probes_sent": t.summary.probes_sent,
                        "probes_not_sent": t.summary.probes_not_sent,
                    })
                })
                .collect();
            Json(serde_json::json!({ "now": runner.now(), "ticks": brief })).into_response()
        }
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    email: String,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    hours: Option<i64>,
}

/// The local identity provider: `GET /local-idp/.well-known/jwks.json` (its keys) and
/// `GET /dev/token?email=...&admin=true` (a bearer token for a demo user, as the organisation's
/// identity provider would issue after sign-in).
pub fn identity_router(
    issuer: Arc<shared::adapters::jwks::LocalIssuer>,
    clock: Arc<dyn shared::ports::clock::Clock>,
) -> Router {
    let jwks = issuer.jwks();
    Router::new()
        .route(
            "/local-idp/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { Json((*jwks).clone()) }
            }),
        )
        .route(
            "/dev/token",
            get(move |Query(q): Query<TokenQuery>| {
                let issuer = issuer.clone();
                let clock = clock.clone();
                async move {
                    let email = q.email.trim().to_ascii_lowercase();
                    if !shared::domain::config::is_address(&email) {
                        return error(
                            StatusCode::BAD_REQUEST,
                            format!("{email:?} is not an email address"),
                        );
                    }
                    let group = issuer.settings.admin_group.clone();
                    let groups: Vec<&str> = if q.admin {
                        vec![group.as_str()]
                    } else {
                        vec![]
                    };
                    let hours = q.hours.unwrap_or(8).clamp(1, 24);
                    match issuer.issue(
                        &shared::adapters::jwks::TokenRequest {
                            subject: &format!("local:{email}"),
                            email: Some(&email),
                            groups: &groups,
                            org: None,
                            // As the local sign-in form: the stand-in of a provider that
                            // asked for the second factor.
                            second_factor: true,
                        },
                        clock.now(),
                        chrono::Duration::hours(hours),
                    ) {
                        Ok(t) => Json(serde_json::json!({"token": t, "expires_in_hours": hours}))
                            .into_response(),
                        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                    }
                }
            }),
        )
}
