//! Writing mail (U3, U8): the compose page (new, reply, reply all, forward), its form's POST,
//! and `POST /api/v1/mailboxes/{mailbox}/send`. Both send through the one use case,
//! [`shared::app::send_mail`]: once per idempotency key, filed in Sent Items, and during
//! continuity copied to the mailbox on the organisation's server.

use crate::web::auth::{PageUser, Principal};
use crate::web::error::ApiError;
use crate::web::extract::{Paged, Qs};
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::Engine;
use serde::Deserialize;
use shared::app::send_mail::{Outgoing, Sent};
use shared::domain::compose as rules;
use shared::domain::compose::{ComposeMode, Draft, OutgoingAttachment};
use shared::domain::mail::mailbox_of;

/// The compose form.
#[derive(Template)]
#[template(path = "inbox/compose.html")]
struct ComposePage<'a> {
    title: &'static str,
    nav: Option<&'a str>,
    mailbox: &'a str,
    heading: &'static str,
    error: Option<&'a str>,
    idempotency_key: &'a str,
    mode: &'static str,
    original: &'a str,
    /// Every mailbox the user may send from, and whether it is the one chosen.
    froms: Vec<(&'a str, bool)>,
    to: String,
    cc: String,
    bcc: String,
    subject: &'a str,
    text: &'a str,
    /// The names of the original's attachments that a forward keeps.
    kept: String,
}

/// What the compose form shows.
struct ComposeView<'a> {
    mailbox: &'a str,
    allowed: &'a [String],
    draft: &'a Draft,
    mode: ComposeMode,
    original: &'a str,
    error: Option<&'a str>,
    idempotency_key: &'a str,
    kept: &'a [String],
}

fn compose_page(f: ComposeView<'_>) -> Result<Html<String>, ApiError> {
    let (heading, mode) = match f.mode {
        ComposeMode::New => ("New message", "new"),
        ComposeMode::Reply => ("Reply", "reply"),
        ComposeMode::ReplyAll => ("Reply all", "reply-all"),
        ComposeMode::Forward => ("Forward", "forward"),
    };
    render::page(&ComposePage {
        title: "Compose",
        nav: Some(f.mailbox),
        mailbox: f.mailbox,
        heading,
        error: f.error,
        idempotency_key: f.idempotency_key,
        mode,
        original: f.original,
        froms: f
            .allowed
            .iter()
            .map(|a| (a.as_str(), a.eq_ignore_ascii_case(&f.draft.from)))
            .collect(),
        to: f.draft.to.join(", "),
        cc: f.draft.cc.join(", "),
        bcc: f.draft.bcc.join(", "),
        subject: &f.draft.subject,
        text: &f.draft.text,
        kept: f.kept.join(", "),
    })
}

/// A fresh idempotency key for one compose form.
fn new_idempotency_key() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Which form: `new` (default), `reply`, `reply-all`, `forward`, and of which message.
#[derive(Debug, Deserialize, Default)]
pub struct ComposeQuery {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    original: Option<String>,
}

/// `GET /inbox/{mailbox}/compose`: the form, filled in for a reply or forward.
pub async fn page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ComposeQuery>,
) -> Result<Html<String>, ApiError> {
    let inbox = state.inbox();
    let user = p.user();
    let mailbox = inbox.authorise(&user, &mailbox).await.paged()?;
    let allowed = inbox.reachable(&user).await.paged()?;
    let mode = ComposeMode::from_name(q.mode.as_deref().unwrap_or("new"))
        .ok_or_else(|| ApiError::bad_request("Unknown compose mode.").page())?;
    let original = q.original.as_deref().filter(|s| !s.is_empty());
    let mut draft = Draft {
        from: mailbox.clone(),
        ..Draft::default()
    };
    let mut kept = vec![];
    if let (Some(id), true) = (original, mode != ComposeMode::New) {
        let l = inbox.message(&p.org_id, &mailbox, id).await.paged()?;
        let raw = inbox.raw(&l).await.paged()?;
        draft = rules::prefill(mode, &mailbox, &rules::original_of(&raw, &l.summary));
        kept = draft.attachments.iter().map(|a| a.name.clone()).collect();
    }
    compose_page(ComposeView {
        mailbox: &mailbox,
        allowed: &allowed,
        draft: &draft,
        mode,
        original: original.unwrap_or(""),
        error: None,
        idempotency_key: &new_idempotency_key(),
        kept: &kept,
    })
}

/// The compose form as posted.
#[derive(Debug, Deserialize)]
pub struct ComposeForm {
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    original: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cc: String,
    #[serde(default)]
    bcc: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
}

/// `POST /inbox/{mailbox}/compose`: sends, then shows the sent message; a message that cannot be
/// sent as written comes back in the form with the reason.
pub async fn send_form(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    form: Result<Form<ComposeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await.paged()?;
    let Form(f) =
        form.map_err(|e| ApiError::bad_request(format!("The form could not be read: {e}")).page())?;
    let mode = ComposeMode::from_name(&f.mode)
        .ok_or_else(|| ApiError::bad_request("Unknown compose mode.").page())?;
    let draft = Draft {
        from: if f.from.is_empty() {
            mailbox.clone()
        } else {
            f.from.clone()
        },
        to: rules::split_addresses(&f.to),
        cc: rules::split_addresses(&f.cc),
        bcc: rules::split_addresses(&f.bcc),
        subject: f.subject.clone(),
        text: f.text.clone(),
        attachments: vec![],
    };
    let out = Outgoing {
        idempotency_key: f.idempotency_key.clone(),
        draft: draft.clone(),
        mode,
        original: Some(f.original.clone()),
        keep_attachments: true,
    };
    let sent = state
        .send_mail()
        .send(&p.user(), &mailbox, out, state.clock.now())
        .await
        .map_err(ApiError::from);
    match sent {
        Ok(sent) => {
            let from = mailbox_of(&draft.from).unwrap_or(mailbox);
            Ok(Redirect::to(&format!("/inbox/{from}/messages/{}", sent.id)).into_response())
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            // Show the form again, as typed, with the reason.
            tracing::info!(reason = %e.message, "compose refused");
            let allowed = inbox.reachable(&p.user()).await.paged()?;
            let page = compose_page(ComposeView {
                mailbox: &mailbox,
                allowed: &allowed,
                draft: &draft,
                mode,
                original: &f.original,
                error: Some(&e.message),
                idempotency_key: &f.idempotency_key,
                kept: &[],
            })?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.page()),
    }
}

/// A message to send (JSON).
#[derive(Debug, Deserialize)]
pub struct SendRequest {
    /// Client-chosen key: a retry with the same key sends once (letters, digits, `-`, `_`).
    pub idempotency_key: Option<String>,
    /// Defaults to the mailbox in the path.
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub text: String,
    /// `new` (default), `reply`, `reply-all`, `forward`.
    pub mode: Option<String>,
    /// The id of the message replied to or forwarded (same mailbox).
    pub original: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
    /// On forward, keep the original's attachments (default true).
    pub keep_attachments: Option<bool>,
}

/// An attachment sent with a message.
#[derive(Debug, Deserialize)]
pub struct AttachmentIn {
    pub name: String,
    pub content_type: Option<String>,
    /// Base64 (standard alphabet).
    pub data: String,
}

impl SendRequest {
    /// The message to send from `mailbox`; the key from the body or the `Idempotency-Key` header.
    fn outgoing(self, mailbox: &str, headers: &HeaderMap) -> Result<Outgoing, ApiError> {
        let mode =
            ComposeMode::from_name(self.mode.as_deref().unwrap_or("new")).ok_or_else(|| {
                ApiError::bad_request("mode must be one of new, reply, reply-all, forward.")
            })?;
        let mut attachments = Vec::new();
        for a in &self.attachments {
            let data = base64::engine::general_purpose::STANDARD
                .decode(a.data.trim())
                .map_err(|_| {
                    ApiError::bad_request(format!("Attachment '{}' is not valid base64.", a.name))
                })?;
            attachments.push(OutgoingAttachment {
                name: a.name.clone(),
                content_type: a
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                data,
            });
        }
        let idempotency_key = self
            .idempotency_key
            .or_else(|| {
                headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Ok(Outgoing {
            idempotency_key,
            draft: Draft {
                from: self.from.unwrap_or_else(|| mailbox.to_string()),
                to: self.to,
                cc: self.cc,
                bcc: self.bcc,
                subject: self.subject,
                text: self.text,
                attachments,
            },
            mode,
            original: self.original,
            keep_attachments: self.keep_attachments.unwrap_or(true),
        })
    }
}

/// `POST /api/v1/mailboxes/{mailbox}/send`: 201 when sent, 200 when a retry of a sent message.
pub async fn send_json(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let mailbox = state.inbox().authorise(&p.user(), &mailbox).await?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                e.status(),
                "too_large",
                format!(
                    "The request is larger than the {} MB a request may be (attachments that big cannot be sent in the request). Nothing was sent.",
                    crate::MAX_BODY_BYTES / (1024 * 1024)
                ),
            )
        } else {
            ApiError::bad_request(format!("The request body could not be read: {e}"))
        }
    })?;
    let req: SendRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("The request body is not a valid message: {e}"))
    })?;
    let out = req.outgoing(&mailbox, &headers)?;
    let sent = state
        .send_mail()
        .send(&p.user(), &mailbox, out, state.clock.now())
        .await?;
    // Unconfirmed (the mail service never answered for certain): 202, with the notice.
    let status = match (sent.confirmed, sent.repeated) {
        (false, _) => StatusCode::ACCEPTED,
        (true, true) => StatusCode::OK,
        (true, false) => StatusCode::CREATED,
    };
    Ok((status, Json(sent)))
}
