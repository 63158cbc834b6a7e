//! Secrets by name (probe passwords, the link-signing key set).

use crate::ports::error::SecretError;
use async_trait::async_trait;

/// Something that hands out secret strings by name.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret(&self, name: &str) -> Result<String, SecretError>;
}
