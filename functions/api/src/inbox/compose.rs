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
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use shared::app::send_mail::{Outgoing, Sent};
use shared::domain::compose as rules;
use shared::domain::compose::{ComposeMode, Draft, OutgoingAttachment};
use shared::domain::mail::mailbox_of;
use shared::domain::multipart;
use shared::domain::uploads::UploadLimits;

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
    /// What the page says of attachments: without the script the form's 4 MB, with it each
    /// file's cap (MB).
    form_mb: usize,
    file_mb: u64,
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
    limits: &'a UploadLimits,
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
        form_mb: FORM_MAX_BYTES / (1024 * 1024),
        file_mb: f.limits.file_bytes / (1024 * 1024),
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

/// `GET /inbox/{mailbox}/compose`: the form, filled in for a reply or forward. Its CSP lets
/// the page's script reach the mail bucket (uploads through presigned links), nothing else.
pub async fn page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ComposeQuery>,
) -> Result<Response, ApiError> {
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
    let html = compose_page(ComposeView {
        mailbox: &mailbox,
        allowed: &allowed,
        draft: &draft,
        mode,
        original: original.unwrap_or(""),
        error: None,
        idempotency_key: &new_idempotency_key(),
        kept: &kept,
        limits: &state.settings.uploads,
    })?;
    let mut resp = html.into_response();
    // Without the bucket's origin the script cannot upload, and the form still posts small
    // files itself: a failure here only logs.
    match state.raw.origin().await {
        Ok(origin) => {
            let csp = crate::web::error::CSP.replace(
                "connect-src 'self'",
                &format!("connect-src 'self' {origin}"),
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&csp) {
                resp.headers_mut()
                    .insert(axum::http::header::CONTENT_SECURITY_POLICY, v);
            }
        }
        Err(e) => tracing::warn!(error = %e, "the mail bucket's origin for the compose page"),
    }
    Ok(resp)
}

/// Largest compose form posted without the script, fields and files together: API Gateway
/// hands Lambda a binary body in base64 (a third larger) inside its 6 MB event, so 4 MiB leaves
/// room for the rest of the event. Bigger files go through uploads (the page's script).
pub const FORM_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The compose form as posted (`application/x-www-form-urlencoded`, or `multipart/form-data`
/// with files).
#[derive(Debug, Default)]
pub struct ComposeForm {
    idempotency_key: String,
    mode: String,
    original: String,
    from: String,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    text: String,
    /// Ids of files the page's script uploaded beforehand, comma-separated.
    uploads: String,
    /// Files posted with the form itself.
    files: Vec<OutgoingAttachment>,
}

impl ComposeForm {
    fn set(&mut self, name: &str, value: String) {
        let field = match name {
            "idempotency_key" => &mut self.idempotency_key,
            "mode" => &mut self.mode,
            "original" => &mut self.original,
            "from" => &mut self.from,
            "to" => &mut self.to,
            "cc" => &mut self.cc,
            "bcc" => &mut self.bcc,
            "subject" => &mut self.subject,
            "text" => &mut self.text,
            "uploads" => &mut self.uploads,
            _ => return,
        };
        *field = value;
    }

    /// The form in `body`, as its content type says; files only from a multipart body.
    fn read(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let mut f = ComposeForm::default();
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(boundary) = multipart::boundary(content_type) else {
            for (k, v) in url::form_urlencoded::parse(body) {
                f.set(&k, v.into_owned());
            }
            return Ok(f);
        };
        let parts = multipart::parse(body, &boundary).map_err(|e| {
            ApiError::bad_request(format!("The form could not be read: {e}")).page()
        })?;
        for p in parts {
            match p.filename {
                // A file input with nothing chosen posts an empty part without a name.
                Some(name) if name.is_empty() && p.data.is_empty() => {}
                Some(name) => f.files.push(OutgoingAttachment {
                    name: if name.is_empty() {
                        "attachment".into()
                    } else {
                        name
                    },
                    content_type: shared::domain::uploads::content_type(p.content_type.as_deref())
                        .unwrap_or_else(|_| "application/octet-stream".into()),
                    data: p.data,
                }),
                None => f.set(&p.name, String::from_utf8_lossy(&p.data).into_owned()),
            }
        }
        Ok(f)
    }
}

/// A form above [`FORM_MAX_BYTES`] (or above what the API reads at all): a readable 413 page.
fn form_too_large(file_bytes: u64) -> ApiError {
    tracing::info!(limit = FORM_MAX_BYTES, "compose form refused: too large");
    ApiError::too_large(format!(
        "The form is larger than the {} MB a message's files may be when sent without JavaScript. Nothing was sent. Go back and attach smaller files, or turn JavaScript on: with it, each file may be up to {} MB.",
        FORM_MAX_BYTES / (1024 * 1024),
        file_bytes / (1024 * 1024)
    ))
    .page()
}

/// `POST /inbox/{mailbox}/compose`: sends, then shows the sent message; a message that cannot be
/// sent as written comes back in the form with the reason.
pub async fn send_form(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await.paged()?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            form_too_large(state.settings.uploads.file_bytes)
        } else {
            ApiError::bad_request(format!("The form could not be read: {e}")).page()
        }
    })?;
    if body.len() > FORM_MAX_BYTES {
        return Err(form_too_large(state.settings.uploads.file_bytes));
    }
    let f = ComposeForm::read(&headers, &body)?;
    drop(body);
    let mode = ComposeMode::from_name(&f.mode)
        .ok_or_else(|| ApiError::bad_request("Unknown compose mode.").page())?;
    let had_files = !f.files.is_empty() || !f.uploads.trim().is_empty();
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
        attachments: f.files,
    };
    let out = Outgoing {
        idempotency_key: f.idempotency_key.clone(),
        draft: draft.clone(),
        mode,
        original: Some(f.original.clone()),
        keep_attachments: true,
        uploads: f
            .uploads
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
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
            // Show the form again, as typed, with the reason (a browser cannot fill a file
            // input again: the files must be chosen again).
            tracing::info!(reason = %e.message, "compose refused");
            let message = if had_files {
                format!("{} Nothing was sent; choose the files again.", e.message)
            } else {
                e.message
            };
            let allowed = inbox.reachable(&p.user()).await.paged()?;
            let page = compose_page(ComposeView {
                mailbox: &mailbox,
                allowed: &allowed,
                draft: &Draft {
                    attachments: vec![],
                    ..draft
                },
                mode,
                original: &f.original,
                error: Some(&message),
                idempotency_key: &f.idempotency_key,
                kept: &[],
                limits: &state.settings.uploads,
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
    /// Attachments uploaded beforehand (`POST .../uploads`), by id.
    #[serde(default)]
    pub uploads: Vec<String>,
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
            uploads: self.uploads,
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
