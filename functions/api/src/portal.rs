//! The continuity portal opened from alert links (P1-P6): status page, duration buttons, POST actions with an anti-forgery token bound to the link.

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
