//! Block rules (U4): a user blocks a sender or a domain, or marks it as spam, for a mailbox;
//! its later mail does not appear in that Online Inbox. JSON under
//! `/api/v1/mailboxes/{mailbox}/blocks`, and the message page's buttons.

use crate::web::auth::{PageUser, Principal};
use crate::web::error::ApiError;
use crate::web::extract::{Body, Paged};
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::mailbox::{BlockKind, MessageRef};

/// `GET /api/v1/mailboxes/{mailbox}/blocks`.
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    let blocks = inbox.blocks(&p.org_id, &mailbox).await?;
    Ok(Json(json!({ "mailbox": mailbox, "blocks": blocks })))
}

/// A rule to add.
#[derive(Debug, Deserialize)]
pub struct BlockRequest {
    /// An address, or a domain (`example.org` or `@example.org`).
    pub target: String,
    /// `block` (default) or `spam`.
    pub kind: Option<String>,
}

/// `POST /api/v1/mailboxes/{mailbox}/blocks`.
pub async fn add(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Body(req): Body<BlockRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    let (target, kind) = inbox
        .add_block(
            &p.org_id,
            &mailbox,
            &req.target,
            req.kind.as_deref(),
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"target": target, "kind": kind})),
    ))
}

/// `DELETE /api/v1/mailboxes/{mailbox}/blocks/{target}`.
pub async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, target)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    inbox.remove_block(&p.org_id, &mailbox, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A button of the message page: `rule` is `block:{target}` or `spam:{target}`; `back` the
/// message it was pressed on.
#[derive(Debug, Deserialize)]
pub struct BlockForm {
    rule: String,
    #[serde(default)]
    back: String,
}

#[derive(Template)]
#[template(path = "inbox/blocked.html")]
struct BlockedPage<'a> {
    title: &'static str,
    nav: Option<&'a str>,
    mailbox: &'a str,
    target: &'a str,
    what: &'static str,
    /// The message to go back to.
    back: Option<&'a str>,
}

/// `POST /inbox/{mailbox}/blocks`: adds the rule, then says so.
pub async fn add_from_page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    form: Result<Form<BlockForm>, axum::extract::rejection::FormRejection>,
) -> Result<Html<String>, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await.paged()?;
    let Form(f) =
        form.map_err(|e| ApiError::bad_request(format!("The form could not be read: {e}")).page())?;
    let (kind, target) = f
        .rule
        .split_once(':')
        .ok_or_else(|| ApiError::bad_request("Unknown rule.").page())?;
    let (target, kind) = inbox
        .add_block(&p.org_id, &mailbox, target, Some(kind), state.clock.now())
        .await
        .paged()?;
    render::page(&BlockedPage {
        title: "Blocked",
        nav: Some(&mailbox),
        mailbox: &mailbox,
        target: &target,
        what: match kind {
            BlockKind::Block => "blocked",
            BlockKind::Spam => "marked as spam",
        },
        back: Some(f.back.as_str()).filter(|b| MessageRef::parse(b).is_some()),
    })
}
