//! The Online Inbox's JSON for reading (U1, U2): the caller's mailboxes, a folder page by page,
//! one message opened, its raw .eml and its attachments. Every route authorises the mailbox
//! first (own or delegated, else 404) through [`shared::app::mailbox`].

use super::message::{download, open_raw, MessageJson, OpenedJson};
use crate::web::auth::Principal;
use crate::web::error::ApiError;
use crate::web::extract::Qs;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::app::downloads::Download;

/// Which folder, from where, how many.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// `threads`: the page's messages grouped by conversation (the list page only).
    #[serde(default)]
    pub view: Option<String>,
}

/// `GET /api/v1/mailboxes`: the caller's own mailbox, then the delegated ones.
pub async fn mailboxes(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Value>, ApiError> {
    let boxes = state.inbox().reachable(&p.user()).await?;
    let synced = state.directory.directory_synced_at(&p.org_id).await?;
    Ok(Json(json!({
        "own": boxes.first(),
        "mailboxes": boxes,
        "directory_synced_at": synced,
    })))
}

/// `GET /api/v1/mailboxes/{mailbox}/messages`: a page of a folder, newest first.
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    let l = inbox
        .page(
            &p.org_id,
            &mailbox,
            q.folder.as_deref(),
            q.cursor.as_deref(),
            q.limit,
            state.clock.now(),
        )
        .await?;
    let items: Vec<MessageJson> = l.items.iter().map(MessageJson::from).collect();
    Ok(Json(json!({
        "mailbox": mailbox,
        "folder": l.folder,
        "messages": items,
        "next_cursor": l.next,
    })))
}

/// `GET /api/v1/mailboxes/{mailbox}/messages/{id}`: the message opened (HTML sanitised, no
/// remote images).
pub async fn message(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Json<OpenedJson>, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    let l = inbox.message(&p.org_id, &mailbox, &id).await?;
    let o = open_raw(&inbox.raw(&l).await?, false);
    Ok(Json(OpenedJson {
        message: MessageJson::from(&l),
        text: o.text,
        html: o.html,
        attachment_list: o.attachments,
    }))
}

/// `GET /api/v1/mailboxes/{mailbox}/messages/{id}/raw`: the .eml, as a download: a redirect
/// to a presigned link of the stored message (mail is up to 40 MB, an answer at most 6 MB).
pub async fn raw(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let d = state.downloads().raw(&p.user(), &mailbox, &id).await?;
    Ok(answer(d))
}

/// `GET /api/v1/mailboxes/{mailbox}/messages/{id}/attachments/{index}`: one attachment, as a
/// download: inline when small, else a redirect to a presigned link of its decoded copy.
pub async fn attachment(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id, index)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::not_found("There is no such attachment."))?;
    let d = state
        .downloads()
        .attachment(&p.user(), &mailbox, &id, index)
        .await?;
    Ok(answer(d))
}

/// A download as HTTP: 303 to the link (never cached: it expires), or the bytes.
fn answer(d: Download) -> Response {
    match d {
        Download::Link(url) => {
            let mut r = Redirect::to(&url).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Download::Inline { bytes, filename } => download(bytes, &filename),
    }
}
