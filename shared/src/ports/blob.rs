//! Raw messages by key: SES receiving stores each message before anything else happens (Q1, Q6).

use crate::ports::error::BlobError;
use async_trait::async_trait;

/// Reads (and, for local stand-ins and tests, writes) raw messages by key.
#[async_trait]
pub trait RawMessages: Send + Sync {
    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;
    async fn put(&self, key: &str, raw: Vec<u8>) -> Result<(), BlobError>;
    /// Copies an object within the bucket (server-side).
    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError>;
    /// Deletes an object (absent is fine).
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}
