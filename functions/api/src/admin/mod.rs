//! The administration API (P7-P10, U5, U6, A6): signed in as an administrator with the identity
//! provider's JWT; JSON in, JSON out (the imports also take CSV).
//!
//! - [`config`]: the configuration (P8), the queue's figures and pause (Q4), the delivery-route
//!   test.
//! - [`continuity`]: the continuity status, actions and planned events (P1-P5, P10), the audit
//!   (P7).
//! - [`directory`]: delegates and distribution lists (U5, U6).
//! - [`users`]: the user directory (A6 notices, sign-in codes: U11) and passkey revocation.
//! - [`domains`]: proven domains (P11): claim, verify through the DNS, the records to publish.
//!
//! Every change is audited with the administrator's subject, `via: console`, and the caller's
//! address, and published on the bus (the continuity events, `ConfigChanged`).

pub mod config;
pub mod continuity;
pub mod directory;
pub mod domains;
pub mod users;

use crate::web::auth::Principal;
use crate::web::ids::request_id;
use crate::AppState;
use axum::routing::{delete, get, post};
use axum::Router;
use shared::app::continuity::Requester;
use shared::domain::continuity::Via;

/// An administrator's request, as the audit records it: who, through the console, from where,
/// with a fresh request id.
pub(crate) fn by_admin(p: &Principal, source: String) -> Requester {
    Requester {
        who: format!("admin:{}", p.subject),
        via: Via::Console,
        source,
        request_id: request_id(),
    }
}

/// The administration API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/config",
            get(config::get_config).put(config::put_config),
        )
        .route("/api/v1/admin/continuity", get(continuity::status))
        .route(
            "/api/v1/admin/continuity/{action}",
            post(continuity::event_action),
        )
        .route("/api/v1/admin/audit", get(continuity::audit))
        .route("/api/v1/admin/queue", get(config::queue))
        .route("/api/v1/admin/queue/{action}", post(config::queue_pause))
        .route("/api/v1/admin/delivery-test", post(config::delivery_test))
        .route("/api/v1/admin/probe-test", post(config::probe_test))
        .route(
            "/api/v1/admin/delegates",
            get(directory::list_delegates).post(directory::grant),
        )
        .route(
            "/api/v1/admin/delegates/{user}/{mailbox}",
            delete(directory::revoke),
        )
        .route(
            "/api/v1/admin/groups",
            get(directory::list_groups).put(directory::import_groups),
        )
        .route("/api/v1/admin/users", get(users::list).put(users::import))
        .route(
            "/api/v1/admin/users/{address}/passkeys",
            delete(users::revoke_passkeys),
        )
        .route(
            "/api/v1/admin/domains",
            get(domains::list).post(domains::claim),
        )
        .route(
            "/api/v1/admin/domains/{domain}/verify",
            post(domains::verify),
        )
}
