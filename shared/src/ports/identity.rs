//! The identity provider's published keys (JWKS), as sign-in needs them.

use crate::domain::identity::AuthError;
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use std::sync::Arc;

/// The identity provider's published keys.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The key set; `refresh` asks for a fresh copy (a token named an unknown key).
    async fn keys(&self, refresh: bool) -> Result<Arc<JwkSet>, AuthError>;
}
