//! Secrets by name (probe passwords, the link-signing key set).

use crate::ports::error::SecretError;
use async_trait::async_trait;

/// Something that hands out secret strings by name.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret(&self, name: &str) -> Result<String, SecretError>;

    /// Drops what is cached of `name`: the other side refused the credential, and an
    /// administrator who stores a new one expects the next attempt to use it, not the old one
    /// until the cache expires.
    fn forget(&self, _name: &str) {}
}
