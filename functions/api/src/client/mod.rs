//! Continuity mode for mail clients (C1-C3): status and sync endpoints over
//! [`shared::app::client_sync`], which decides what a client is told and handed.
//!
//! - `GET /api/v1/client/status`: normal, continuity or post-event, the event's window, the
//!   duplicate-resolution window, and when to poll next (3 minutes).
//! - `GET /api/v1/client/sync`: new messages of a mailbox since a cursor, oldest first; during
//!   continuity, reports and receipts are held back until the event is over.
//! - `GET /api/v1/client/handed-out`: what was handed out in the duplicate-resolution window, so
//!   that a client can drop the organisation's server's own later copy of the same message.

use crate::web::auth::Principal;
use crate::web::error::ApiError;
use crate::web::extract::Qs;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::app::client_sync::ClientStatus;
use shared::domain::mail::MessageKind;
use shared::domain::mailbox::{Folder, Listed, SyncCursor};

/// The mail clients' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/client/status", get(status))
        .route("/api/v1/client/sync", get(sync))
        .route("/api/v1/client/handed-out", get(handed_out))
}

async fn status(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<ClientStatus>, ApiError> {
    let now = state.clock.now();
    Ok(Json(state.client_sync().status(&p.org_id, now).await?))
}

/// Which mailbox (the caller's own by default), and from where.
#[derive(Debug, Deserialize, Default)]
pub struct SyncQuery {
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// One message handed to a client.
#[derive(Debug, Serialize)]
pub struct SyncMessage {
    /// Stable id in this mailbox.
    pub id: String,
    pub message_id: String,
    pub kind: MessageKind,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub size: u64,
    /// Where the raw message (.eml) is downloaded.
    pub raw_url: String,
}

impl SyncMessage {
    fn new(mailbox: &str, l: Listed) -> Self {
        let id = l.r#ref.encode();
        SyncMessage {
            raw_url: format!("/api/v1/mailboxes/{mailbox}/messages/{id}/raw"),
            id,
            message_id: l.summary.message_id,
            kind: l.summary.kind,
            from: l.summary.from,
            to: l.summary.to,
            cc: l.summary.cc,
            subject: l.summary.subject,
            date: l.summary.date,
            received_at: l.received_at,
            size: l.summary.size,
        }
    }
}

async fn sync(
    State(state): State<AppState>,
    p: Principal,
    Qs(q): Qs<SyncQuery>,
) -> Result<Json<Value>, ApiError> {
    let clients = state.client_sync();
    let mailbox = clients.mailbox(&p.user(), q.mailbox.as_deref()).await?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => SyncCursor::decode(c).ok_or_else(|| {
            ApiError::bad_request("The cursor is not valid; sync again without one.")
        })?,
        None => SyncCursor::default(),
    };
    let page = clients
        .sync(&p.org_id, &mailbox, &cursor, state.clock.now())
        .await?;
    let messages: Vec<SyncMessage> = page
        .messages
        .into_iter()
        .map(|l| SyncMessage::new(&mailbox, l))
        .collect();
    Ok(Json(json!({
        "mailbox": mailbox,
        "mode": if page.continuity { "continuity" } else { "normal" },
        "messages": messages,
        "cursor": page.cursor.encode(),
        "more": page.more,
        "held_back": page.held_back,
        "recorded_for_dedupe": page.recorded,
        "folder": Folder::Inbox,
    })))
}

async fn handed_out(
    State(state): State<AppState>,
    p: Principal,
    Qs(q): Qs<SyncQuery>,
) -> Result<Json<Value>, ApiError> {
    let clients = state.client_sync();
    let mailbox = clients.mailbox(&p.user(), q.mailbox.as_deref()).await?;
    let items: Vec<Value> = clients
        .handed_out(&p.org_id, &mailbox)
        .await?
        .into_iter()
        .map(|(m, id, at)| json!({"message_id": m, "id": id, "handed_out_at": at}))
        .collect();
    Ok(Json(json!({"mailbox": mailbox, "handed_out": items})))
}
