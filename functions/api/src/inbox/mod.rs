//! The Online Inbox and Online Sent Items (U1-U8): web pages under `/inbox` and JSON under
//! `/api/v1/mailboxes`.
//!
//! - [`app`]: the installable app: manifest, icons, service worker, offline page (issue 17);
//! - [`pages`]: the mailboxes, a folder, a message and its print view (and the list's script);
//! - [`read`]: the same as JSON, the .eml and attachments as downloads;
//! - [`compose`]: the compose page and sending (page form, with files, and JSON);
//! - [`uploads`]: presigned uploads of attachments for a later send (issue 13);
//! - [`blocks`]: block and spam rules;
//! - [`state`]: read / unread and flag (the list's buttons and the JSON `PATCH`);
//! - [`search`]: searching a mailbox (page and JSON);
//! - [`message`]: what an opened message shows (sanitised HTML, attachments).
//!
//! Who sees what (U7): a signed-in user reaches their own mailbox and the mailboxes delegated to
//! them (U5), nothing else: any other mailbox, and any message not in a reachable mailbox,
//! answers 404 on every route (pages, JSON, .eml, attachments). The rule is the use case's,
//! [`shared::app::mailbox`]; sending is [`shared::app::send_mail`].

pub mod app;
pub mod blocks;
pub mod compose;
pub mod message;
pub mod pages;
pub mod read;
pub mod search;
pub mod state;
pub mod uploads;

use crate::AppState;
use axum::routing::{delete, get, post};
use axum::Router;

/// The Online Inbox's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/inbox.js", get(pages::script))
        .route("/static/pwa.js", get(app::script))
        .route("/static/inbox.webmanifest", get(app::manifest))
        .route("/static/icons/icon.svg", get(app::icon_svg))
        .route("/static/icons/icon-192.png", get(app::icon_192))
        .route("/static/icons/icon-512.png", get(app::icon_512))
        .route("/inbox/sw.js", get(app::service_worker))
        .route("/inbox/offline", get(app::offline))
        .route("/inbox", get(pages::home))
        .route("/inbox/{mailbox}", get(pages::list))
        .route("/inbox/{mailbox}/messages/{id}", get(pages::message))
        .route("/inbox/{mailbox}/messages/{id}/print", get(pages::print))
        .route(
            "/inbox/{mailbox}/messages/{id}/state",
            post(state::post_form),
        )
        .route(
            "/inbox/{mailbox}/compose",
            get(compose::page).post(compose::send_form),
        )
        .route("/inbox/{mailbox}/blocks", post(blocks::add_from_page))
        .route("/inbox/{mailbox}/search", get(search::page))
        .route("/api/v1/mailboxes", get(read::mailboxes))
        .route("/api/v1/mailboxes/{mailbox}/messages", get(read::list))
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}",
            get(read::message).patch(state::patch),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}/raw",
            get(read::raw),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/messages/{id}/attachments/{index}",
            get(read::attachment),
        )
        .route("/api/v1/mailboxes/{mailbox}/send", post(compose::send_json))
        .route("/api/v1/mailboxes/{mailbox}/uploads", post(uploads::create))
        .route("/api/v1/mailboxes/{mailbox}/search", get(search::json))
        .route(
            "/api/v1/mailboxes/{mailbox}/blocks",
            get(blocks::list).post(blocks::add),
        )
        .route(
            "/api/v1/mailboxes/{mailbox}/blocks/{target}",
            delete(blocks::remove),
        )
}
