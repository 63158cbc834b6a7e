//! Pages are askama templates (`functions/api/templates`, compiled into the crate); their style
//! sheets and the inbox's script are files (`functions/api/static`) included at build time.
//! Every value a template prints goes through [`Escape`]; only the service's own style sheets
//! and the sanitised body of a message are marked `|safe`.

use crate::web::error::ApiError;
use askama::Template;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use std::fmt;

/// The portal's style sheet (inlined in its page).
pub const PORTAL_CSS: &str = include_str!("../../static/portal.css");
/// The Online Inbox's style sheet (inlined in its pages).
pub const INBOX_CSS: &str = include_str!("../../static/inbox.css");
/// The sign-in pages' style sheet.
pub const SESSION_CSS: &str = include_str!("../../static/session.css");
/// The plain pages' style sheet (errors, confirmations).
pub const SIMPLE_CSS: &str = include_str!("../../static/simple.css");
/// The passkey pages' script (sign-in and enrolment), served at `/static/passkey.js`.
pub const PASSKEY_JS: &str = include_str!("../../static/passkey.js");
/// The Online Inbox's script, served at `/static/inbox.js`.
pub const INBOX_JS: &str = include_str!("../../static/inbox.js");

/// The templates' HTML escaper (configured in `functions/api/askama.toml`): the service's one
/// escaping, [`shared::domain::alerts::html_escape`] (named entities; control characters as
/// spaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct Escape;

impl askama::filters::Escaper for Escape {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, s: &str) -> fmt::Result {
        dest.write_str(&shared::domain::alerts::html_escape(s))
    }
}

/// A template rendered as a page; a failure to render is a 500 page (and a log line).
pub fn page<T: Template>(t: &T) -> Result<Html<String>, ApiError> {
    t.render()
        .map(Html)
        .map_err(|e| ApiError::internal("rendering a page", e).page())
}

/// A static script, cached briefly by browsers.
pub fn script(body: &'static str) -> Response {
    let mut r = body.into_response();
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

/// A minimal accessible page: errors, and confirmations of routes that have no page of their own.
#[derive(Template)]
#[template(path = "simple.html")]
pub struct SimplePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}
