//! Continuity mode for mail clients (C1-C3): status and sync endpoints.

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
