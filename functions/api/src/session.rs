//! Browser sign-in: the identity provider's authorization code flow with PKCE, or the local runner's sign-in page; the session cookie.

use crate::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
