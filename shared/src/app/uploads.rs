//! Attachments uploaded before a send (issue 13) as one use case: offering a presigned upload
//! to the signed-in user, and reading the uploads a send names.
//!
//! A request to the API is at most 6 MB (Lambda's event), mail up to 40 MB (SES v2): a file
//! goes straight to the mail bucket through a presigned PUT whose length, type and name are
//! signed. Its key is derived here from the caller (`domain::uploads::staging_key`), so an id is
//! only ever looked up under the caller's own prefix: another user's or organisation's id,
//! an unknown one and one whose object never arrived (or expired) all answer "not found" and
//! nothing is sent. Staged objects are kept (a lifecycle rule removes them after a day), so a
//! retry of the same send (same idempotency key) finds them again.

use crate::app::mailbox::User;
use crate::domain::compose::OutgoingAttachment;
use crate::domain::uploads::{self, UploadLimits, UploadRefusal, NAME_META, STAGED_HOURS};
use crate::ports::blob::{PresignedUpload, RawMessages, UploadAs};
use crate::ports::error::{BlobError, StoreError};
use crate::ports::store::{RateCounter, RateCounters};
use chrono::{DateTime, Duration, Utc};

/// At most this many objects are read to count what a user staged (one ListObjectsV2 page):
/// more than that is refused as too much.
const LIST_MAX: i32 = 1000;

/// What the client asks to upload.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct UploadRequest {
    /// The file's name, as the message will carry it.
    pub name: String,
    pub content_type: Option<String>,
    /// Its exact size in bytes.
    pub size: u64,
}

/// An upload offered: PUT the file to `upload` before `expires_at`, then name `id` in a send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadOffer {
    pub id: String,
    pub upload: PresignedUpload,
    pub expires_at: DateTime<Utc>,
    pub max_file_bytes: u64,
}

/// Why no upload was offered, or a named upload cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Refused(#[from] UploadRefusal),
    /// Not the caller's, never uploaded, or expired: nothing is sent.
    #[error("The upload '{0}' was not found: uploads are kept for a day, for the user who made them. Upload the file again.")]
    NotFound(String),
    /// The object is bigger than any upload may be (a store that did not hold the signed length).
    #[error("The upload '{id}' holds {size} bytes, more than the {limit} a file may have.")]
    TooLarge { id: String, size: u64, limit: u64 },
    #[error("the mail bucket: {0}")]
    Blob(BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The uploads use case over the mail bucket and the rate counters.
pub struct Uploads<'a> {
    pub raw: &'a dyn RawMessages,
    pub rates: &'a dyn RateCounters,
    pub limits: UploadLimits,
}

fn random_id() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Uploads<'_> {
    /// A presigned upload of `req` for `user` at `now`: one counter `UpdateItem`, one
    /// ListObjectsV2 of the user's staging prefix, and a signature (no request).
    pub async fn offer(
        &self,
        user: &User<'_>,
        req: &UploadRequest,
        now: DateTime<Utc>,
    ) -> Result<UploadOffer, UploadError> {
        let limits = &self.limits;
        let name_meta = uploads::encode_name(&req.name)?;
        let content_type = uploads::content_type(req.content_type.as_deref())?;
        // The file alone first: a refusal that needs no request.
        uploads::admit(req.size, 0, limits)?;
        let prefix = uploads::user_prefix(user.org_id, user.subject);
        // Counted when asked, so that links handed out but not yet used count too.
        let window = now.timestamp() - now.timestamp().rem_euclid(3600);
        let n = self
            .rates
            .count_request(
                &RateCounter::Uploads {
                    org_id: user.org_id.to_string(),
                    user: uploads::user_digest(user.subject),
                    window,
                },
                now + Duration::hours(2),
            )
            .await?;
        if n > limits.per_hour {
            tracing::info!(
                org = user.org_id,
                limit = limits.per_hour,
                "upload refused: too many in the hour"
            );
            return Err(UploadRefusal::TooMany(limits.per_hour).into());
        }
        let listed = self
            .raw
            .list(&prefix, LIST_MAX)
            .await
            .map_err(UploadError::Blob)?;
        let since = now - Duration::hours(STAGED_HOURS);
        let staged: u64 = if listed.len() >= LIST_MAX as usize {
            u64::MAX
        } else {
            listed
                .iter()
                .filter(|o| o.last_modified.is_none_or(|t| t > since))
                .map(|o| o.size)
                .sum()
        };
        if let Err(e) = uploads::admit(req.size, staged, limits) {
            tracing::info!(org = user.org_id, staged, "upload refused: {e}");
            return Err(e.into());
        }
        let id = random_id();
        let expires = std::time::Duration::from_secs(limits.url_minutes * 60);
        let upload = self
            .raw
            .presign_put(
                &uploads::staging_key(user.org_id, user.subject, &id),
                &UploadAs {
                    content_length: req.size,
                    content_type: &content_type,
                    name_meta: &name_meta,
                    expires,
                },
            )
            .await
            .map_err(UploadError::Blob)?;
        tracing::info!(org = user.org_id, upload = %id, size = req.size, "upload offered");
        Ok(UploadOffer {
            id,
            upload,
            expires_at: now + Duration::minutes(limits.url_minutes as i64),
            max_file_bytes: limits.file_bytes,
        })
    }

    /// The attachments `ids` of `user`, read from their staging prefix: per id one HEAD (its
    /// real size, before reading it) and one GET.
    pub async fn attachments(
        &self,
        user: &User<'_>,
        ids: &[String],
    ) -> Result<Vec<OutgoingAttachment>, UploadError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = id.trim();
            if !uploads::valid_id(id) {
                return Err(UploadError::NotFound(id.chars().take(40).collect()));
            }
            let key = uploads::staging_key(user.org_id, user.subject, id);
            let Some(info) = self.raw.head(&key).await.map_err(UploadError::Blob)? else {
                tracing::info!(
                    org = user.org_id,
                    upload = id,
                    "upload named in a send not found"
                );
                return Err(UploadError::NotFound(id.to_string()));
            };
            if info.size > self.limits.file_bytes {
                return Err(UploadError::TooLarge {
                    id: id.to_string(),
                    size: info.size,
                    limit: self.limits.file_bytes,
                });
            }
            let data = match self.raw.get(&key).await {
                Ok(d) => d,
                Err(BlobError::NotFound(_)) => return Err(UploadError::NotFound(id.to_string())),
                Err(e) => return Err(UploadError::Blob(e)),
            };
            let name = info
                .metadata
                .iter()
                .find(|(k, _)| k == NAME_META)
                .and_then(|(_, v)| uploads::decode_name(v))
                .unwrap_or_else(|| "attachment".into());
            out.push(OutgoingAttachment {
                name,
                content_type: uploads::content_type(info.content_type.as_deref())
                    .unwrap_or_else(|_| "application/octet-stream".into()),
                data,
            });
        }
        Ok(out)
    }
}
