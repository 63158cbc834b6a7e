//! One error type for every handler: a status, a stable code, a readable message; rendered as
//! JSON (`{"error": {"code": ..., "message": ...}}`) or, for browsers, as a plain page. Every
//! error is logged with its reason; server faults (5xx) keep their detail in the log only.

use crate::web::render::SimplePage;
use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use shared::app::mailbox::MailboxError;
use shared::app::send_mail::SendMailError;
use shared::app::settings::SettingsError;
use shared::app::uploads::UploadError;
use shared::domain::uploads::UploadRefusal;
use shared::ports::error::StoreError;

/// An error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable (`bad_request`, `unauthorized`, `not_found`, ...).
    pub code: &'static str,
    /// Shown to the caller.
    pub message: String,
    /// Render as an HTML page rather than JSON.
    pub html: bool,
    /// Seconds for a `Retry-After` header (a rate limit's refusal).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            html: false,
            retry_after: None,
        }
    }
    /// With `Retry-After: secs`: when the caller may try again.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// The same error as a page (for browser routes).
    pub fn page(mut self) -> Self {
        self.html = true;
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", m)
    }
    pub fn unsupported_media_type(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            m,
        )
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m)
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
    }
    /// A fault of the service or a dependency: the detail goes to the log, the caller gets a
    /// generic message (503 for transient faults, to be retried; 500 otherwise).
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(context, error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side; nothing was changed by this request. Try again shortly.",
        )
    }
    pub fn unavailable(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::warn!(context, error = %detail, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is busy or a dependency is unavailable; try again in a moment.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Transient(_) => ApiError::unavailable("store", e),
            StoreError::ConditionFailed(_) => ApiError::conflict(
                "Someone else changed this at the same moment; reload and try again.",
            ),
            _ => ApiError::internal("store", e),
        }
    }
}

impl From<MailboxError> for ApiError {
    fn from(e: MailboxError) -> Self {
        match e {
            MailboxError::NoMailbox
            | MailboxError::NoOwnMailbox
            | MailboxError::NoMessage
            | MailboxError::NoAttachment
            | MailboxError::ContentGone
            | MailboxError::NoBlockRule => ApiError::not_found(e.to_string()),
            MailboxError::BadRequest(m) => ApiError::bad_request(m),
            MailboxError::Invalid(m) => ApiError::unprocessable(m),
            MailboxError::Store(e) => e.into(),
            MailboxError::Blob(e) => ApiError::unavailable("raw message", e),
        }
    }
}

impl From<SendMailError> for ApiError {
    fn from(e: SendMailError) -> Self {
        match e {
            SendMailError::BadKey => ApiError::bad_request(e.to_string()),
            SendMailError::Mailbox(e) => e.into(),
            SendMailError::Invalid(m) => ApiError::unprocessable(m),
            SendMailError::TooLarge(m) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m)
            }
            SendMailError::InProgress => ApiError::conflict(e.to_string()),
            SendMailError::Storing(e) => ApiError::unavailable("storing the sent message", e),
            SendMailError::Refused(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "send_failed",
                "The mail service did not accept the message; nothing was sent. Try again.",
            ),
            SendMailError::Upload(e) => e.into(),
            SendMailError::Unrecorded(ref cause) => {
                tracing::error!(error = %cause, "a send was not recorded");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "send_unrecorded",
                    e.to_string(),
                )
            }
            SendMailError::Store(e) => e.into(),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Refused(
                UploadRefusal::FileTooLarge { .. } | UploadRefusal::StagedTooMuch { .. },
            )
            | UploadError::TooLarge { .. } => ApiError::too_large(e.to_string()),
            UploadError::Refused(UploadRefusal::TooMany(_)) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                    .retry_after(3600)
            }
            UploadError::Refused(_) | UploadError::NotFound(_) => {
                ApiError::unprocessable(e.to_string())
            }
            UploadError::Blob(e) => ApiError::unavailable("the mail bucket (uploads)", e),
            UploadError::Store(e) => e.into(),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::OtherOrganisation { .. } => ApiError::forbidden(e.to_string()),
            SettingsError::NoConfiguration => ApiError::not_found(e.to_string()),
            SettingsError::Invalid(_)
            | SettingsError::InvalidUser(_)
            | SettingsError::NotOurRecipient
            | SettingsError::DomainNotProven(_) => ApiError::unprocessable(e.to_string()),
            SettingsError::DomainTaken(_) | SettingsError::Stale { .. } => {
                ApiError::conflict(e.to_string())
            }
            SettingsError::TooManyUsers(_) => ApiError::too_large(e.to_string()),
            SettingsError::Store(e) => e.into(),
        }
    }
}

impl From<shared::app::sign_in::SignInError> for ApiError {
    fn from(e: shared::app::sign_in::SignInError) -> Self {
        use shared::app::sign_in::SignInError;
        use shared::domain::sign_in::CodeRefusal;
        match e {
            SignInError::BadAddress(_) => ApiError::bad_request(e.to_string()),
            SignInError::Refused(CodeRefusal::RateLimited) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            }
            SignInError::Refused(_) => ApiError::unauthorized(e.to_string()),
            SignInError::NotAvailable => ApiError::forbidden(e.to_string()),
            SignInError::Keys(_) => ApiError::unavailable("sign-in keys", e),
            SignInError::Store(e) => e.into(),
        }
    }
}

impl From<shared::app::passkeys::PasskeyError> for ApiError {
    fn from(e: shared::app::passkeys::PasskeyError) -> Self {
        use shared::app::passkeys::PasskeyError;
        match e {
            PasskeyError::NoCeremony => ApiError::bad_request(e.to_string()),
            PasskeyError::Rejected(_) | PasskeyError::UnknownPasskey => {
                ApiError::unauthorized(e.to_string())
            }
            PasskeyError::AlreadyRegistered | PasskeyError::TooMany => {
                ApiError::conflict(e.to_string())
            }
            PasskeyError::NotInDirectory => ApiError::forbidden(e.to_string()),
            PasskeyError::NoSuchPasskey => ApiError::not_found(e.to_string()),
            PasskeyError::SignIn(e) => e.into(),
            PasskeyError::Store(e) => e.into(),
        }
    }
}

impl From<shared::app::domains::DomainError> for ApiError {
    fn from(e: shared::app::domains::DomainError) -> Self {
        use shared::app::domains::DomainError as D;
        use shared::domain::domains::Refusal;
        match e {
            D::Refused(Refusal::Taken(_))
            | D::Refused(Refusal::UnderAnotherOrganisation { .. }) => {
                ApiError::conflict(e.to_string())
            }
            D::Stale { .. } => ApiError::conflict(e.to_string()),
            D::NoClaim(_) => ApiError::not_found(e.to_string()),
            D::Dns(_) => ApiError::unavailable("DNS", e),
            D::Store(e) => e.into(),
            D::Refused(_) | D::ProofMissing { .. } | D::ProofWrong { .. } | D::NotProven { .. } => {
                ApiError::unprocessable(e.to_string())
            }
        }
    }
}

impl From<shared::domain::identity::AuthError> for ApiError {
    fn from(e: shared::domain::identity::AuthError) -> Self {
        if e.is_unavailable() {
            ApiError::unavailable("identity provider keys", e)
        } else {
            ApiError::unauthorized(e.to_string())
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, reason = %self.message, "request refused");
        }
        let mut response = self.body();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        response
    }
}

impl ApiError {
    fn body(&self) -> Response {
        if self.html {
            let title = self.status.canonical_reason().unwrap_or("Error");
            let page = SimplePage {
                title,
                message: &self.message,
            };
            // The page has no part that can fail to render; the message alone is the fallback.
            let html = page.render().unwrap_or_else(|_| self.message.clone());
            return (self.status, Html(html)).into_response();
        }
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// Whether the caller is a browser asking for a page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Unknown routes: 404 with the code `no_route` (told apart from a route's own 404 by the
/// OpenAPI agreement test), as a page for browsers.
pub async fn not_found(headers: HeaderMap) -> ApiError {
    let e = ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        "There is no such page or API route.",
    );
    if wants_html(&headers) {
        e.page()
    } else {
        e
    }
}

/// The content security policy of every page: no inline script and no remote content; the
/// Online Inbox's service worker and web app manifest from this site only (`worker-src`,
/// `manifest-src`: without them `default-src 'none'` refuses both).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers on every response: no caching of personal pages, no framing, no sniffing, no referrer
/// (link tokens are in URLs), and a content security policy that allows no inline script and no
/// remote content.
pub async fn security_headers(req: Request<axum::body::Body>, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        if !h.contains_key(&k) {
            h.insert(k, HeaderValue::from_static(v));
        }
    };
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    resp
}
