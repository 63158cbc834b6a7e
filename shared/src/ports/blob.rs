//! Raw messages by key: SES receiving stores each message before anything else happens (Q1, Q6).
//! Big objects leave through short-lived links to the store itself ([`RawMessages::presign_get`]):
//! an HTTP API answer is at most 6 MB (Lambda), less once base64'd, while mail is up to 40 MB.

use crate::ports::error::BlobError;
use async_trait::async_trait;
use std::time::Duration;

/// How a presigned download presents itself to the browser: always a download (never shown
/// inline, so no stored content is ever rendered by the store's origin), as `filename`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadAs<'a> {
    /// The file name offered (sanitised by the caller's rules, see `domain::downloads`).
    pub filename: &'a str,
    /// How long the link works.
    pub expires: Duration,
}

/// Reads (and, for local stand-ins and tests, writes) raw messages by key.
#[async_trait]
pub trait RawMessages: Send + Sync {
    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;
    async fn put(&self, key: &str, raw: Vec<u8>) -> Result<(), BlobError>;
    /// Copies an object within the bucket (server-side).
    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError>;
    /// Deletes an object (absent is fine).
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Whether the object exists (one HEAD).
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;
    /// A URL that lets whoever holds it GET exactly the object `key`, for `how.expires`, its
    /// answer forced to `Content-Disposition: attachment` and `application/octet-stream`.
    /// Built locally (a signature, no request): callers authorise before asking for one.
    async fn presign_get(&self, key: &str, how: &DownloadAs<'_>) -> Result<String, BlobError>;
}
