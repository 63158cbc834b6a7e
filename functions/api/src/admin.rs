//! The administration API (P7-P10): configuration, events, audit, queue, delivery-route test; signed in as an administrator.

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
