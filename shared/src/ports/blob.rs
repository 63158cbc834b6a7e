//! Raw messages by key: SES receiving stores each message before anything else happens (Q1, Q6).
//! Big objects leave through short-lived links to the store itself ([`RawMessages::presign_get`]):
//! an HTTP API answer is at most 6 MB (Lambda), less once base64'd, while mail is up to 40 MB.
//! Big attachments come in the same way: a presigned PUT ([`RawMessages::presign_put`]).

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

/// What a presigned upload lets its holder write: exactly `content_length` bytes of
/// `content_type`, with the file's name as metadata, for `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadAs<'a> {
    pub content_length: u64,
    pub content_type: &'a str,
    /// The file's name as kept in metadata (`domain::uploads::encode_name`).
    pub name_meta: &'a str,
    pub expires: Duration,
}

/// A presigned upload: the client sends `PUT url` with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresignedUpload {
    pub method: &'static str,
    pub url: String,
    /// Header name and value, each signed: another value makes the store refuse the upload.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// A stored object as a HEAD (or a listing) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`, names lower-cased); empty in a listing.
    pub metadata: Vec<(String, String)>,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
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
    /// A presigned PUT of exactly the object `key`, bound to `how` (length, type and name are
    /// signed headers). Built locally (no request): callers authorise before asking for one.
    async fn presign_put(
        &self,
        key: &str,
        how: &UploadAs<'_>,
    ) -> Result<PresignedUpload, BlobError>;
    /// The object's size, type and metadata (one HEAD); `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError>;
    /// Where presigned links point (`scheme://host[:port]`): a page that uploads through them
    /// names it in its `connect-src`. Built locally (no request).
    async fn origin(&self) -> Result<String, BlobError>;
    /// The objects under `prefix` (one ListObjectsV2 page of up to `max` keys; no metadata).
    async fn list(&self, prefix: &str, max: i32) -> Result<Vec<ObjectInfo>, BlobError>;
}
