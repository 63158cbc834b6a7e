//! The Online Inbox and Online Sent Items (U1-U8): pages and JSON, message view, compose, blocks, delegates, distribution lists.

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
