//! The Online Inbox and Online Sent Items (U1-U8): web pages under `/inbox` and JSON under
//! `/api/v1/mailboxes`; the administrators' delegates and distribution lists are in
//! [`directory`], mounted from here.
//!
//! Who sees what (U7): a signed-in user reaches their own mailbox and the mailboxes delegated to
//! them (U5), nothing else: any other mailbox, and any message not in a reachable mailbox,
//! answers 404 on every route (pages, JSON, .eml, attachments). Keys are built from the
//! authorised mailbox, so an id or cursor cannot reach into another mailbox.
//!
//! Message content is never live: text is escaped; HTML bodies go through an allow-list
//! sanitiser (no script, no event handlers, no styles, no remote images unless the user asks,
//! links opened in a new context without referrer); attachments are served as downloads.

// The administrators' directory routes live beside this file (mounted from [`routes`]).
#[path = "directory.rs"]
pub mod directory;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::domain::alerts::html_escape;
use shared::domain::continuity::Phase;
use shared::domain::mail::{mailbox_of, summarize, MessageKind};
use shared::domain::mailbox::{
    self as domain, BlockKind, ComposeMode, Draft, Folder, MessageRef, Original,
    OutgoingAttachment, PAGE_SIZE,
};
use shared::domain::mailbox::{Listed, SendClaim};
use shared::domain::queue::QueuedMessage;

/// A send claim older than this that never finished is taken over by a retry.
const SEND_CLAIM_STALE_MINUTES: i64 = 2;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/inbox.js", get(script))
        .route("/inbox", get(page_home))
        .route("/inbox/{mailbox}", get(page_list))
        .route("/inbox/{mailbox}/messages/{id}", get(page_message))
        .route("/inbox/{mailbox}/messages/{id}/print", get(page_print))
        .route(
            "/inbox/{mailbox}/compose",
            get(page_compose).post(page_send),
        )
        .route("/inbox/{mailbox}/blocks", post(page_block))
        .route("/api/v1/mailboxes", get(api_mailboxes))
        .route("/api/v1/mailboxes/{mailbox}/messages", get(api_list))
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}",
            get(api_message),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}/raw",
            get(api_raw),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}/attachments/{index}",
            get(api_attachment),
        )
        .route("/api/v1/mailboxes/{mailbox}/send", post(api_send))
        .route(
            "/api/v1/mailboxes/{mailbox}/blocks",
            get(api_blocks).post(api_add_block),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/blocks/{target}",
            delete(api_remove_block),
        )
        .merge(directory::routes())
}

// ---------------------------------------------------------------- access

/// A query string, refused with a clear 400 (and a log line) when it does not parse.
pub struct Qs<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Qs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Qs(v))
            .map_err(|e| {
                ApiError::bad_request(format!("The query string is not valid: {}", e.body_text()))
            })
    }
}

/// A JSON body, refused with a clear 400 (and a log line) when it does not parse.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| {
                ApiError::bad_request(format!("The request body is not valid: {}", e.body_text()))
            })
    }
}

/// A signed-in user of a page route: without a session, a GET goes to the sign-in page (and
/// back here afterwards); other refusals are pages.
pub struct PageUser(pub Principal);

impl axum::extract::FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        match Principal::from_request_parts(parts, state).await {
            Ok(p) => Ok(PageUser(p)),
            Err(e)
                if e.status == StatusCode::UNAUTHORIZED
                    && parts.method == axum::http::Method::GET =>
            {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|x| x.as_str())
                    .unwrap_or("/inbox");
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Err(Redirect::to(&format!("/auth/login?next={next}")).into_response())
            }
            Err(e) => Err(e.page().into_response()),
        }
    }
}

/// Errors of page routes render as pages.
trait Paged<T> {
    fn paged(self) -> Result<T, ApiError>;
}
impl<T, E: Into<ApiError>> Paged<T> for Result<T, E> {
    fn paged(self) -> Result<T, ApiError> {
        self.map_err(|e| e.into().page())
    }
}

fn no_mailbox() -> ApiError {
    ApiError::not_found("There is no such mailbox, or it is not yours.")
}
fn no_message() -> ApiError {
    ApiError::not_found("There is no such message in this mailbox.")
}

/// The caller's own mailbox.
pub fn own_mailbox(p: &Principal) -> Option<String> {
    p.email.as_deref().and_then(mailbox_of)
}

/// The mailbox `requested` if the caller may use it (their own, or delegated): else 404.
pub async fn authorise(
    state: &AppState,
    p: &Principal,
    requested: &str,
) -> Result<String, ApiError> {
    let Some(wanted) = mailbox_of(requested) else {
        return Err(no_mailbox());
    };
    let Some(me) = own_mailbox(p) else {
        return Err(no_mailbox());
    };
    if wanted == me || state.directory.is_delegate(&p.org_id, &me, &wanted).await? {
        Ok(wanted)
    } else {
        tracing::info!(org = %p.org_id, subject = %p.subject, "mailbox not reachable for this user");
        Err(no_mailbox())
    }
}

/// The caller's own mailbox first, then the delegated ones (one Query).
pub async fn reachable(state: &AppState, p: &Principal) -> Result<Vec<String>, ApiError> {
    let Some(me) = own_mailbox(p) else {
        return Ok(vec![]);
    };
    let mut out = vec![me.clone()];
    for g in state.directory.delegates(&p.org_id, Some(&me)).await? {
        if !out.contains(&g.mailbox) {
            out.push(g.mailbox);
        }
    }
    Ok(out)
}

fn parse_ref(id: &str) -> Result<MessageRef, ApiError> {
    MessageRef::parse(id).ok_or_else(no_message)
}

async fn load(state: &AppState, org: &str, mailbox: &str, id: &str) -> Result<Listed, ApiError> {
    let r = parse_ref(id)?;
    state
        .mailboxes
        .mailbox_message(org, mailbox, &r)
        .await?
        .ok_or_else(no_message)
}

async fn raw_of(state: &AppState, l: &Listed) -> Result<Vec<u8>, ApiError> {
    match state.raw.get(&l.raw_key).await {
        Ok(raw) => Ok(raw),
        Err(shared::ports::error::BlobError::NotFound(_)) => Err(ApiError::not_found(
            "The message's content is no longer stored (older than the retention).",
        )),
        Err(e) => Err(ApiError::unavailable("raw message", e)),
    }
}

// ---------------------------------------------------------------- JSON

/// A message in a listing.
#[derive(Debug, Serialize)]
pub struct MessageJson {
    pub id: String,
    pub folder: Folder,
    pub message_id: String,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub size: u64,
    pub attachments: Vec<String>,
    pub kind: MessageKind,
}

impl From<&Listed> for MessageJson {
    fn from(l: &Listed) -> Self {
        MessageJson {
            id: l.r#ref.encode(),
            folder: l.r#ref.folder,
            message_id: l.summary.message_id.clone(),
            from: l.summary.from.clone(),
            to: l.summary.to.clone(),
            cc: l.summary.cc.clone(),
            subject: l.summary.subject.clone(),
            date: l.summary.date,
            received_at: l.received_at,
            size: l.summary.size,
            attachments: l.summary.attachments.clone(),
            kind: l.summary.kind,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

struct Listing {
    folder: Folder,
    items: Vec<Listed>,
    next: Option<String>,
}

async fn list(
    state: &AppState,
    org: &str,
    mailbox: &str,
    q: &ListQuery,
) -> Result<Listing, ApiError> {
    let folder = Folder::from_name(q.folder.as_deref().unwrap_or("inbox"))
        .ok_or_else(|| ApiError::bad_request("folder must be 'inbox' or 'sent'."))?;
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(domain::decode_cursor(c, folder).ok_or_else(|| {
            ApiError::bad_request(
                "The cursor is not valid for this list; start from the first page.",
            )
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(PAGE_SIZE).clamp(1, PAGE_SIZE);
    let now = state.clock.now();
    let page = state
        .mailboxes
        .mailbox_page(
            org,
            mailbox,
            folder,
            domain::window_start(now),
            before.as_ref(),
            limit,
        )
        .await?;
    Ok(Listing {
        folder,
        next: page.next.as_ref().map(domain::encode_cursor),
        items: page.items,
    })
}

async fn api_mailboxes(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let boxes = reachable(&state, &p).await?;
    let synced = state.directory.directory_synced_at(&p.org_id).await?;
    Ok(Json(serde_json::json!({
        "own": boxes.first(),
        "mailboxes": boxes,
        "directory_synced_at": synced,
    })))
}

async fn api_list(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let l = list(&state, &p.org_id, &mailbox, &q).await?;
    let items: Vec<MessageJson> = l.items.iter().map(MessageJson::from).collect();
    Ok(Json(serde_json::json!({
        "mailbox": mailbox,
        "folder": l.folder,
        "messages": items,
        "next_cursor": l.next,
    })))
}

/// A message opened: headers, text, sanitised HTML, attachments.
#[derive(Debug, Serialize)]
pub struct OpenedJson {
    #[serde(flatten)]
    pub message: MessageJson,
    pub text: Option<String>,
    /// The HTML body, sanitised (no remote images).
    pub html: Option<String>,
    pub attachment_list: Vec<AttachmentJson>,
}

#[derive(Debug, Serialize)]
pub struct AttachmentJson {
    pub index: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

struct Opened {
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<AttachmentJson>,
    reply_to: Vec<String>,
    /// The HTML body had images (not loaded unless asked).
    has_images: bool,
}

fn open_raw(raw: &[u8], images: bool) -> Opened {
    use mail_parser::{MessageParser, MimeHeaders};
    let Some(m) = MessageParser::default().parse(raw) else {
        return Opened {
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            html: None,
            attachments: vec![],
            reply_to: vec![],
            has_images: false,
        };
    };
    // Only a real HTML part (mail-parser also renders plain text as HTML).
    let raw_html = m
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|_| m.body_html(0));
    let has_images = raw_html
        .as_ref()
        .is_some_and(|h| h.to_ascii_lowercase().contains("<img"));
    let html = raw_html.map(|h| sanitize_html(&h, images));
    let text = m.body_text(0).map(|t| t.into_owned());
    let attachments = m
        .attachments()
        .enumerate()
        .map(|(i, a)| AttachmentJson {
            index: i,
            name: a
                .attachment_name()
                .map(shared::domain::mail::clean_text)
                .unwrap_or_else(|| format!("attachment-{}", i + 1)),
            content_type: a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: a.contents().len(),
        })
        .collect();
    let reply_to = m
        .reply_to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref().map(shared::domain::mail::clean_text))
                .collect()
        })
        .unwrap_or_default();
    Opened {
        text,
        html,
        attachments,
        reply_to,
        has_images,
    }
}

/// Sanitises an HTML body (U2): an allow-list of tags and attributes, no script, no event
/// handlers, no `style` (CSS expressions), only http/https/mailto links (opened with
/// `noopener noreferrer`, in a new context), no images unless `images` (then only http(s)).
pub fn sanitize_html(html: &str, images: bool) -> String {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .rm_tag_attributes("a", &["target"])
        .strip_comments(true);
    if !images {
        b.rm_tags(&["img"]);
    }
    b.clean(html).to_string()
}

async fn api_message(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Json<OpenedJson>, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let l = load(&state, &p.org_id, &mailbox, &id).await?;
    let raw = raw_of(&state, &l).await?;
    let o = open_raw(&raw, false);
    Ok(Json(OpenedJson {
        message: MessageJson::from(&l),
        text: o.text,
        html: o.html,
        attachment_list: o.attachments,
    }))
}

/// A file name safe in a `Content-Disposition` header.
fn safe_filename(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let n = n.trim().trim_start_matches('.').to_string();
    if n.is_empty() {
        "attachment".into()
    } else {
        n
    }
}

fn download(bytes: Vec<u8>, filename: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        safe_filename(filename)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

async fn api_raw(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let l = load(&state, &p.org_id, &mailbox, &id).await?;
    let raw = raw_of(&state, &l).await?;
    Ok(download(raw, &format!("{}.eml", l.r#ref.encode())))
}

async fn api_attachment(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id, index)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    use mail_parser::{MessageParser, MimeHeaders};
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let l = load(&state, &p.org_id, &mailbox, &id).await?;
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::not_found("There is no such attachment."))?;
    let raw = raw_of(&state, &l).await?;
    let m = MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| ApiError::not_found("There is no such attachment."))?;
    let a = m
        .attachments()
        .nth(index)
        .ok_or_else(|| ApiError::not_found("There is no such attachment."))?;
    let name = a
        .attachment_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("attachment-{}", index + 1));
    Ok(download(a.contents().to_vec(), &name))
}

// ---------------------------------------------------------------- sending

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

#[derive(Debug, Deserialize)]
pub struct AttachmentIn {
    pub name: String,
    pub content_type: Option<String>,
    /// Base64 (standard alphabet).
    pub data: String,
}

/// What a send did.
#[derive(Debug, Serialize)]
pub struct SentJson {
    pub id: String,
    pub message_id: String,
    /// A retry of an earlier send with the same key: nothing was sent again.
    pub repeated: bool,
    /// A copy was queued for the mailbox on the organisation's server (U8).
    pub copy_queued: bool,
}

fn idem_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 100
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

struct SendInput {
    idem: String,
    draft: Draft,
    mode: ComposeMode,
    original: Option<String>,
    keep_attachments: bool,
}

async fn send(
    state: &AppState,
    p: &Principal,
    mailbox: &str,
    input: SendInput,
) -> Result<SentJson, ApiError> {
    if !idem_ok(&input.idem) {
        return Err(ApiError::bad_request(
            "idempotency_key is required: up to 100 letters, digits, '-' or '_', the same on every retry.",
        ));
    }
    let org = &p.org_id;
    let allowed = reachable(state, p).await?;
    let mut draft = input.draft;
    let mut original: Option<Original> = None;
    if let Some(id) = input.original.as_deref().filter(|s| !s.is_empty()) {
        let l = load(state, org, mailbox, id).await?;
        let raw = raw_of(state, &l).await?;
        let o = domain::original_of(&raw, &l.summary);
        if input.mode == ComposeMode::Forward && input.keep_attachments {
            draft.attachments.extend(o.attachments.iter().cloned());
        }
        if input.mode != ComposeMode::New {
            // Left empty, recipients and subject are those of a reply (all) or forward.
            let pre = domain::prefill(input.mode, mailbox, &o);
            if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
                draft.to = pre.to;
                draft.cc = pre.cc;
            }
            if draft.subject.trim().is_empty() {
                draft.subject = pre.subject;
            }
        }
        original = Some(o);
    }
    let valid =
        domain::validate(&draft, &allowed).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let now = state.clock.now();
    let sid = domain::sent_id(&valid.from, &input.idem);
    let r = MessageRef::new(Folder::Sent, now, &sid);
    let domain_part = valid
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let message_id = domain::sent_message_id(&valid.from, &input.idem, &domain_part);
    match state
        .mailboxes
        .claim_send_key(
            org,
            &valid.from,
            &input.idem,
            &r,
            now,
            chrono::Duration::minutes(SEND_CLAIM_STALE_MINUTES),
        )
        .await?
    {
        SendClaim::Claimed => {}
        SendClaim::Sent(existing) => {
            return Ok(SentJson {
                id: existing.encode(),
                message_id,
                repeated: true,
                copy_queued: false,
            })
        }
        SendClaim::InProgress => {
            return Err(ApiError::conflict(
                "This message is being sent by an earlier request; look in Sent Items in a moment.",
            ))
        }
    }
    let me = own_mailbox(p);
    // Threading: only replies and forwards carry In-Reply-To / References.
    let threading = if input.mode == ComposeMode::New {
        None
    } else {
        original.as_ref()
    };
    let raw = domain::build_mime(&valid, me.as_deref(), &message_id, threading, now)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let raw_key = format!("sent/{org}/{}/{sid}", valid.from);
    if let Err(e) = state.raw.put(&raw_key, raw.clone()).await {
        let _ = state
            .mailboxes
            .release_send_key(org, &valid.from, &input.idem)
            .await;
        return Err(ApiError::unavailable("storing the sent message", e));
    }
    let sent = state
        .mail_sender
        .send_raw(&valid.from, &valid.recipients(), raw.clone())
        .await;
    let ses_id = match sent {
        Ok(id) => id,
        Err(e) => {
            let _ = state
                .mailboxes
                .release_send_key(org, &valid.from, &input.idem)
                .await;
            tracing::warn!(error = %e, "SendRawEmail failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "send_failed",
                "The mail service did not accept the message; nothing was sent. Try again.",
            ));
        }
    };
    let summary = summarize(&raw);
    state
        .mailboxes
        .file_sent(org, &valid.from, &r, &summary, &raw_key, now)
        .await?;
    // U8: during continuity, a copy for the mailbox on the organisation's server.
    let mut copy_queued = false;
    if let Some(config) = state.config.get_config(org).await? {
        if config.continuity.bcc_to_server {
            let phase = state.views.continuity_state(org).await?.phase(now);
            if matches!(phase, Phase::Continuity { .. }) {
                let msg =
                    QueuedMessage::new(org, format!("sent-{sid}"), raw_key.as_str(), now, &summary)
                        .envelope(&valid.from, vec![valid.from.clone()]);
                state.mail.accept_message(&msg, now).await?;
                copy_queued = true;
            }
        }
    }
    state
        .mailboxes
        .finish_send_key(org, &valid.from, &input.idem, &ses_id)
        .await?;
    tracing::info!(org = %org, sent = %r.encode(), recipients = valid.recipients().len(), "message sent");
    Ok(SentJson {
        id: r.encode(),
        message_id,
        repeated: false,
        copy_queued,
    })
}

async fn api_send(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SentJson>), ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let req: SendRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("The request body is not a valid message: {e}"))
    })?;
    let mode = ComposeMode::from_name(req.mode.as_deref().unwrap_or("new")).ok_or_else(|| {
        ApiError::bad_request("mode must be one of new, reply, reply-all, forward.")
    })?;
    let mut attachments = Vec::new();
    for a in &req.attachments {
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
    let idem = req
        .idempotency_key
        .clone()
        .or_else(|| {
            headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.to_string())
        })
        .unwrap_or_default();
    let input = SendInput {
        idem,
        draft: Draft {
            from: req.from.clone().unwrap_or_else(|| mailbox.clone()),
            to: req.to,
            cc: req.cc,
            bcc: req.bcc,
            subject: req.subject,
            text: req.text,
            attachments,
        },
        mode,
        original: req.original,
        keep_attachments: req.keep_attachments.unwrap_or(true),
    };
    let out = send(&state, &p, &mailbox, input).await?;
    let status = if out.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)))
}

// ---------------------------------------------------------------- blocks

#[derive(Debug, Deserialize)]
pub struct BlockRequest {
    /// An address, or a domain (`example.org` or `@example.org`).
    pub target: String,
    /// `block` (default) or `spam`.
    pub kind: Option<String>,
}

fn block_kind(s: Option<&str>) -> Result<BlockKind, ApiError> {
    match s.unwrap_or("block") {
        "block" | "" => Ok(BlockKind::Block),
        "spam" => Ok(BlockKind::Spam),
        _ => Err(ApiError::bad_request("kind must be 'block' or 'spam'.")),
    }
}

async fn api_blocks(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let blocks = state.mailboxes.blocks(&p.org_id, &mailbox).await?;
    Ok(Json(
        serde_json::json!({ "mailbox": mailbox, "blocks": blocks }),
    ))
}

async fn add_block(
    state: &AppState,
    p: &Principal,
    mailbox: &str,
    req: &BlockRequest,
) -> Result<(String, BlockKind), ApiError> {
    let target = domain::block_target(&req.target).ok_or_else(|| {
        ApiError::unprocessable("Block an email address or a domain (example.org).")
    })?;
    let kind = block_kind(req.kind.as_deref())?;
    state
        .mailboxes
        .put_block(&p.org_id, mailbox, &target, kind.clone(), state.clock.now())
        .await?;
    tracing::info!(org = %p.org_id, ?kind, "block rule added");
    Ok((target, kind))
}

async fn api_add_block(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Body(req): Body<BlockRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let (target, kind) = add_block(&state, &p, &mailbox, &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"target": target, "kind": kind})),
    ))
}

async fn api_remove_block(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, target)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await?;
    let target = domain::block_target(&target)
        .ok_or_else(|| ApiError::not_found("There is no such block rule."))?;
    state
        .mailboxes
        .delete_block(&p.org_id, &mailbox, &target)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- pages

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fff;line-height:1.4}\
header{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;padding:.6rem 1rem;background:#0b3d91;color:#fff}\
header a{color:#fff}main{padding:0 1rem 2rem;max-width:60rem}\
table{border-collapse:collapse;width:100%}td{padding:.35rem .4rem;border-bottom:1px solid #ddd;vertical-align:top}\
td.when{white-space:nowrap;color:#555;font-size:.9em}a{color:#0b3d91}\
.btn,button{display:inline-block;padding:.4rem .8rem;border:1px solid #0b3d91;border-radius:4px;background:#fff;color:#0b3d91;text-decoration:none;font:inherit;cursor:pointer}\
.body{white-space:pre-wrap;border-top:1px solid #ddd;padding-top:1rem;overflow-wrap:anywhere}\
.html{border-top:1px solid #ddd;padding-top:1rem;overflow-wrap:anywhere}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem}dt{font-weight:600}\
label{display:block;margin-top:.6rem;font-weight:600}input[type=text],textarea{width:100%;box-sizing:border-box;font:inherit;padding:.3rem}\
.note{background:#fff6d6;padding:.5rem;border:1px solid #e8d58a}\
@media print{header,.actions,.no-print{display:none}}";

fn page(title: &str, mailbox: Option<&str>, body: &str) -> Html<String> {
    let nav = match mailbox {
        Some(m) => {
            let m = html_escape(m);
            format!(
                "<header><strong>Online Inbox</strong><span>{m}</span>\
                 <a href=\"/inbox/{m}\">Inbox</a><a href=\"/inbox/{m}?folder=sent\">Sent Items</a>\
                 <a href=\"/inbox/{m}/compose\">New message</a><a href=\"/inbox\">Mailboxes</a></header>"
            )
        }
        None => {
            "<header><strong>Online Inbox</strong><a href=\"/inbox\">Mailboxes</a></header>".into()
        }
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style><script src=\"/static/inbox.js\" defer></script></head>\
         <body>{nav}<main>{body}</main></body></html>",
        t = html_escape(title)
    ))
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The small script of the list page: loads the next page when the "more" link comes into view
/// (the link works without it).
const SCRIPT: &str = r#"(function () {
  function hook() {
    var more = document.getElementById('more');
    var rows = document.getElementById('rows');
    if (!more || !rows || !('IntersectionObserver' in window)) return;
    var busy = false;
    var io = new IntersectionObserver(function (entries) {
      if (busy || !entries.some(function (e) { return e.isIntersecting; })) return;
      busy = true;
      fetch(more.href, { credentials: 'same-origin' }).then(function (r) { return r.text(); }).then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('rows');
        if (next) { while (next.firstChild) rows.appendChild(next.firstChild); }
        var nextMore = doc.getElementById('more');
        if (nextMore) { more.href = nextMore.href; busy = false; } else { io.disconnect(); more.remove(); }
      }).catch(function () { busy = false; });
    });
    io.observe(more);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', hook); else hook();
})();
"#;

async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

async fn page_home(
    State(state): State<AppState>,
    PageUser(p): PageUser,
) -> Result<Response, ApiError> {
    let boxes = reachable(&state, &p).await.paged()?;
    if boxes.is_empty() {
        return Err(ApiError::forbidden("Your account has no mailbox address.").page());
    }
    let synced = state
        .directory
        .directory_synced_at(&p.org_id)
        .await
        .paged()?;
    let list: String = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let b = html_escape(b);
            format!(
                "<li><a href=\"/inbox/{b}\">{b}</a>{}</li>",
                if i == 0 {
                    " (your mailbox)"
                } else {
                    " (delegated)"
                }
            )
        })
        .collect();
    let sync = match synced {
        Some(t) => format!("<p>Distribution lists as of the directory sync of {}.</p>", fmt_time(t)),
        None => "<p>No directory sync yet: mail to distribution lists is shown to the list's address only.</p>".into(),
    };
    Ok(page(
        "Mailboxes",
        None,
        &format!("<h1>Your mailboxes</h1><ul>{list}</ul>{sync}"),
    )
    .into_response())
}

async fn page_list(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ListQuery>,
) -> Result<Html<String>, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await.paged()?;
    let l = list(&state, &p.org_id, &mailbox, &q).await.paged()?;
    let m = html_escape(&mailbox);
    let mut rows = String::new();
    for item in &l.items {
        let who = match l.folder {
            Folder::Inbox => item.summary.from.clone().unwrap_or_default(),
            Folder::Sent => format!("To: {}", item.summary.to.join(", ")),
        };
        let subject = item
            .summary
            .subject
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "(no subject)".into());
        rows.push_str(&format!(
            "<tr><td class=\"when\">{}</td><td>{}</td><td><a href=\"/inbox/{m}/messages/{}\">{}</a>{}</td></tr>",
            fmt_time(item.received_at),
            html_escape(&who),
            item.r#ref.encode(),
            html_escape(&subject),
            if item.summary.attachments.is_empty() { "" } else { " 📎" }
        ));
    }
    let title = match l.folder {
        Folder::Inbox => "Inbox",
        Folder::Sent => "Sent Items",
    };
    let more = match &l.next {
        Some(c) => format!(
            "<p><a id=\"more\" class=\"btn\" href=\"/inbox/{m}?folder={}&amp;cursor={c}\">More</a></p>",
            l.folder.name()
        ),
        None => String::new(),
    };
    let empty = if l.items.is_empty() && q.cursor.is_none() {
        "<p>No messages in the last 30 days.</p>"
    } else {
        ""
    };
    Ok(page(
        &format!("{title} - {mailbox}"),
        Some(&mailbox),
        &format!("<h1>{title}</h1>{empty}<table><tbody id=\"rows\">{rows}</tbody></table>{more}"),
    ))
}

#[derive(Debug, Deserialize, Default)]
pub struct ViewQuery {
    #[serde(default)]
    images: Option<String>,
}

fn message_html(mailbox: &str, l: &Listed, o: &Opened, images: bool, print: bool) -> String {
    let m = html_escape(mailbox);
    let id = l.r#ref.encode();
    let s = &l.summary;
    let subject = s.subject.clone().unwrap_or_else(|| "(no subject)".into());
    let mut out = format!("<h1>{}</h1><dl>", html_escape(&subject));
    let mut row = |k: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("<dt>{k}</dt><dd>{}</dd>", html_escape(v)));
        }
    };
    row("From", s.from.as_deref().unwrap_or(""));
    row("To", &s.to.join(", "));
    row("Cc", &s.cc.join(", "));
    row("Reply-To", &o.reply_to.join(", "));
    row(
        "Date",
        &s.date
            .or(Some(l.received_at))
            .map(fmt_time)
            .unwrap_or_default(),
    );
    out.push_str("</dl>");
    if !print {
        out.push_str(&format!(
            "<p class=\"actions\"><a class=\"btn\" href=\"/inbox/{m}/compose?mode=reply&amp;original={id}\">Reply</a> \
             <a class=\"btn\" href=\"/inbox/{m}/compose?mode=reply-all&amp;original={id}\">Reply all</a> \
             <a class=\"btn\" href=\"/inbox/{m}/compose?mode=forward&amp;original={id}\">Forward</a> \
             <a class=\"btn\" href=\"/inbox/{m}/messages/{id}/print\">Print</a> \
             <a class=\"btn\" href=\"/api/v1/mailboxes/{m}/messages/{id}/raw\">Save (.eml)</a></p>"
        ));
    }
    if !o.attachments.is_empty() {
        out.push_str("<h2>Attachments</h2><ul>");
        for a in &o.attachments {
            out.push_str(&format!(
                "<li><a href=\"/api/v1/mailboxes/{m}/messages/{id}/attachments/{}\">{}</a> ({}, {} bytes)</li>",
                a.index,
                html_escape(&a.name),
                html_escape(&a.content_type),
                a.size
            ));
        }
        out.push_str("</ul>");
    }
    match (&o.html, &o.text) {
        (Some(h), _) => {
            if !images && !print && o.has_images {
                out.push_str(&format!(
                    "<p class=\"note no-print\">Remote images are not loaded. <a href=\"/inbox/{m}/messages/{id}?images=1\">Show images</a></p>"
                ));
            }
            out.push_str(&format!("<div class=\"html\">{h}</div>"));
        }
        (None, Some(t)) => out.push_str(&format!("<div class=\"body\">{}</div>", html_escape(t))),
        (None, None) => out.push_str("<p>(no text)</p>"),
    }
    if !print && l.r#ref.folder == Folder::Inbox {
        if let Some(from) = s.from.as_deref().and_then(mailbox_of) {
            let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            let f = html_escape(&from);
            let d = html_escape(domain);
            out.push_str(&format!(
                "<form class=\"actions\" method=\"post\" action=\"/inbox/{m}/blocks\">\
                 <input type=\"hidden\" name=\"back\" value=\"{id}\">\
                 <button name=\"rule\" value=\"block:{f}\">Block sender</button> \
                 <button name=\"rule\" value=\"block:@{d}\">Block domain {d}</button> \
                 <button name=\"rule\" value=\"spam:{f}\">Mark sender as spam</button> \
                 <button name=\"rule\" value=\"spam:@{d}\">Mark domain as spam</button></form>"
            ));
        }
    }
    out
}

async fn view(
    state: &AppState,
    p: &Principal,
    mailbox: &str,
    id: &str,
    images: bool,
    print: bool,
) -> Result<Response, ApiError> {
    let mailbox = authorise(state, p, mailbox).await.paged()?;
    let l = load(state, &p.org_id, &mailbox, id).await.paged()?;
    let raw = raw_of(state, &l).await.paged()?;
    let o = open_raw(&raw, images);
    let body = message_html(&mailbox, &l, &o, images, print);
    let title = l
        .summary
        .subject
        .clone()
        .unwrap_or_else(|| "Message".into());
    let mut resp = if print {
        page(&title, None, &body).into_response()
    } else {
        page(&title, Some(&mailbox), &body).into_response()
    };
    if images {
        // The user asked for remote images: allow them for this page only (still no script).
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    Ok(resp)
}

async fn page_message(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path((mailbox, id)): Path<(String, String)>,
    Qs(q): Qs<ViewQuery>,
) -> Result<Response, ApiError> {
    let images = q.images.as_deref() == Some("1");
    view(&state, &p, &mailbox, &id, images, false).await
}

async fn page_print(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    view(&state, &p, &mailbox, &id, false, true).await
}

#[derive(Debug, Deserialize, Default)]
pub struct ComposeQuery {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    original: Option<String>,
}

fn new_idem() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[allow(clippy::too_many_arguments)]
fn compose_form(
    mailbox: &str,
    allowed: &[String],
    d: &Draft,
    mode: ComposeMode,
    original: Option<&str>,
    error: Option<&str>,
    idem: &str,
    kept: &[String],
) -> String {
    let m = html_escape(mailbox);
    let froms: String = allowed
        .iter()
        .map(|a| {
            let sel = if a.eq_ignore_ascii_case(&d.from) {
                " selected"
            } else {
                ""
            };
            let a = html_escape(a);
            format!("<option value=\"{a}\"{sel}>{a}</option>")
        })
        .collect();
    let mode_name = match mode {
        ComposeMode::New => "new",
        ComposeMode::Reply => "reply",
        ComposeMode::ReplyAll => "reply-all",
        ComposeMode::Forward => "forward",
    };
    let err = error
        .map(|e| format!("<p class=\"note\" role=\"alert\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!(
            "<p>Attachments forwarded: {}</p>",
            html_escape(&kept.join(", "))
        )
    };
    format!(
        "<h1>{title}</h1>{err}<form method=\"post\" action=\"/inbox/{m}/compose\">\
         <input type=\"hidden\" name=\"idempotency_key\" value=\"{idem}\">\
         <input type=\"hidden\" name=\"mode\" value=\"{mode_name}\">\
         <input type=\"hidden\" name=\"original\" value=\"{orig}\">\
         <label for=\"from\">From</label><select id=\"from\" name=\"from\">{froms}</select>\
         <label for=\"to\">To</label><input type=\"text\" id=\"to\" name=\"to\" value=\"{to}\">\
         <label for=\"cc\">Cc</label><input type=\"text\" id=\"cc\" name=\"cc\" value=\"{cc}\">\
         <label for=\"bcc\">Bcc</label><input type=\"text\" id=\"bcc\" name=\"bcc\" value=\"{bcc}\">\
         <label for=\"subject\">Subject</label><input type=\"text\" id=\"subject\" name=\"subject\" value=\"{subject}\">\
         <label for=\"text\">Message</label><textarea id=\"text\" name=\"text\" rows=\"14\">{text}</textarea>\
         {kept}<p><button type=\"submit\" id=\"send\">Send</button></p></form>",
        title = match mode {
            ComposeMode::New => "New message",
            ComposeMode::Reply => "Reply",
            ComposeMode::ReplyAll => "Reply all",
            ComposeMode::Forward => "Forward",
        },
        orig = html_escape(original.unwrap_or("")),
        to = html_escape(&d.to.join(", ")),
        cc = html_escape(&d.cc.join(", ")),
        bcc = html_escape(&d.bcc.join(", ")),
        subject = html_escape(&d.subject),
        text = html_escape(&d.text),
    )
}

async fn page_compose(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    Qs(q): Qs<ComposeQuery>,
) -> Result<Html<String>, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await.paged()?;
    let allowed = reachable(&state, &p).await.paged()?;
    let mode = ComposeMode::from_name(q.mode.as_deref().unwrap_or("new"))
        .ok_or_else(|| ApiError::bad_request("Unknown compose mode.").page())?;
    let original = q.original.as_deref().filter(|s| !s.is_empty());
    let mut draft = Draft {
        from: mailbox.clone(),
        ..Draft::default()
    };
    let mut kept = vec![];
    if let (Some(id), true) = (original, mode != ComposeMode::New) {
        let l = load(&state, &p.org_id, &mailbox, id).await.paged()?;
        let raw = raw_of(&state, &l).await.paged()?;
        let o = domain::original_of(&raw, &l.summary);
        draft = domain::prefill(mode, &mailbox, &o);
        kept = draft.attachments.iter().map(|a| a.name.clone()).collect();
    }
    Ok(page(
        "Compose",
        Some(&mailbox),
        &compose_form(
            &mailbox,
            &allowed,
            &draft,
            mode,
            original,
            None,
            &new_idem(),
            &kept,
        ),
    ))
}

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

async fn page_send(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    form: Result<Form<ComposeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await.paged()?;
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
        to: domain::split_addresses(&f.to),
        cc: domain::split_addresses(&f.cc),
        bcc: domain::split_addresses(&f.bcc),
        subject: f.subject.clone(),
        text: f.text.clone(),
        attachments: vec![],
    };
    let input = SendInput {
        idem: f.idempotency_key.clone(),
        draft: draft.clone(),
        mode,
        original: Some(f.original.clone()),
        keep_attachments: true,
    };
    match send(&state, &p, &mailbox, input).await {
        Ok(sent) => {
            let from = mailbox_of(&draft.from).unwrap_or(mailbox);
            Ok(Redirect::to(&format!("/inbox/{from}/messages/{}", sent.id)).into_response())
        }
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            // Show the form again, as typed, with the reason.
            let allowed = reachable(&state, &p).await.paged()?;
            let body = compose_form(
                &mailbox,
                &allowed,
                &draft,
                mode,
                Some(&f.original),
                Some(&e.message),
                &f.idempotency_key,
                &[],
            );
            tracing::info!(reason = %e.message, "compose refused");
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                page("Compose", Some(&mailbox), &body),
            )
                .into_response())
        }
        Err(e) => Err(e.page()),
    }
}

#[derive(Debug, Deserialize)]
pub struct BlockForm {
    rule: String,
    #[serde(default)]
    back: String,
}

async fn page_block(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    form: Result<Form<BlockForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let mailbox = authorise(&state, &p, &mailbox).await.paged()?;
    let Form(f) =
        form.map_err(|e| ApiError::bad_request(format!("The form could not be read: {e}")).page())?;
    let (kind, target) = f
        .rule
        .split_once(':')
        .ok_or_else(|| ApiError::bad_request("Unknown rule.").page())?;
    let req = BlockRequest {
        target: target.to_string(),
        kind: Some(kind.to_string()),
    };
    let (target, kind) = add_block(&state, &p, &mailbox, &req).await.paged()?;
    let what = match kind {
        BlockKind::Block => "blocked",
        BlockKind::Spam => "marked as spam",
    };
    let back = if MessageRef::parse(&f.back).is_some() {
        format!(
            "<p><a href=\"/inbox/{m}/messages/{b}\">Back to the message</a></p>",
            m = html_escape(&mailbox),
            b = f.back
        )
    } else {
        String::new()
    };
    Ok(page(
        "Blocked",
        Some(&mailbox),
        &format!(
            "<h1>Done</h1><p>{} is {what}: their later mail will not appear in this Online Inbox.</p>{back}",
            html_escape(&target)
        ),
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitiser_makes_hostile_html_inert() {
        let corpus = [
            "<script>alert(1)</script>hello",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<a href=\"  javascript:alert(1)\">x</a>",
            "<svg onload=alert(1)><circle/></svg>",
            "<div style=\"width: expression(alert(1))\">css</div>",
            "<style>body{background:url(javascript:alert(1))}</style>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<object data=x></object><embed src=x>",
            "<body onload=alert(1)>",
            "<scr<script>ipt>alert(1)</script>",
            "<<script>script>alert(1)<</script>/script>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d</a>",
            "<form action=\"https://evil.example\"><input name=p></form>",
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
            "<base href=\"https://evil.example/\">",
            "<img src=\"https://tracker.example/p.gif\">",
            "<p onclick=\"alert(1)\" onmouseover='x'>p</p>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
            "<div <script>alert(1)</script>",
        ];
        for html in corpus {
            let out = sanitize_html(html, false).to_ascii_lowercase();
            for bad in [
                "<script",
                "javascript:",
                "onerror",
                "onload",
                "onclick",
                "onmouseover",
                "expression(",
                "<style",
                "<iframe",
                "<object",
                "<embed",
                "<svg",
                "<form",
                "<meta",
                "<base",
                "<img",
                "data:text",
            ] {
                assert!(!out.contains(bad), "{html:?} -> {out:?} contains {bad}");
            }
        }
        let link = sanitize_html("<a href=\"https://example.org/\">ok</a>", false);
        assert!(
            link.contains("rel=\"noopener noreferrer nofollow\""),
            "{link}"
        );
        assert!(link.contains("target=\"_blank\""), "{link}");
        let img = sanitize_html("<img src=\"https://example.org/a.png\" onerror=x>", true);
        assert!(
            img.contains("<img src=\"https://example.org/a.png\">"),
            "{img}"
        );
        assert!(!sanitize_html("<img src=\"javascript:x\">", true).contains("javascript"));
    }

    #[test]
    fn filenames_are_header_safe() {
        assert_eq!(safe_filename("a\r\nb\".pdf"), "a__b_.pdf");
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename(""), "attachment");
    }
}
