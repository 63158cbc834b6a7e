//! Attachments uploaded before a send (issue 13): where a staged upload is kept, what an upload
//! id looks like, what a user may have staged. A file goes straight to the mail bucket through a
//! presigned PUT (an HTTP API request is at most 6 MB, mail up to 40 MB); the service derives
//! its key from the signed-in user and a random id, so that a client never names a key and an
//! id is only ever looked up under the caller's own prefix: another user's or organisation's id
//! is simply not there.

use sha2::{Digest, Sha256};

/// The bucket prefix of staged uploads; a lifecycle rule in the template expires it after a day.
pub const STAGING_PREFIX: &str = "staging/";
/// Uploads are counted against a user's allowance for this long (the lifecycle rule's day).
pub const STAGED_HOURS: i64 = 24;
/// The file name kept with an upload: an S3 user metadata key (`x-amz-meta-filename`).
pub const NAME_META: &str = "filename";
/// Longest content type accepted.
const MAX_CONTENT_TYPE: usize = 100;

/// How much a user may upload (settings, read once at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// One file (`UPLOAD_MAX_FILE_BYTES`, default 25 MiB: 33.4 MiB once base64'd, so a message
    /// with it and its text still fits SES v2's 40 MB).
    pub file_bytes: u64,
    /// Everything a user staged in the last day (`UPLOAD_MAX_STAGED_BYTES`, default 200 MiB).
    pub staged_bytes: u64,
    /// Uploads a user may ask for in an hour (`UPLOADS_PER_HOUR`, default 60), counted when
    /// asked: a presigned link not yet used is counted too.
    pub per_hour: u32,
    /// How long a presigned upload works, in minutes (`UPLOAD_URL_MINUTES`, default 10).
    pub url_minutes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            file_bytes: 25 * 1024 * 1024,
            staged_bytes: 200 * 1024 * 1024,
            per_hour: 60,
            url_minutes: 10,
        }
    }
}

/// Why an upload is not offered or not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error("The file is too large ({size} bytes); a file may be at most {limit} bytes.")]
    FileTooLarge { size: u64, limit: u64 },
    #[error("The file is empty.")]
    Empty,
    #[error("You have uploaded {staged} bytes in the last day; with this file it would be more than the {limit} bytes allowed. Try again tomorrow, or send smaller files.")]
    StagedTooMuch { staged: u64, limit: u64 },
    #[error("Too many uploads in the last hour (at most {0}); try again later.")]
    TooMany(u32),
    #[error("The file needs a name (at most 200 characters).")]
    BadName,
    #[error("The content type is not valid (type/subtype).")]
    BadContentType,
}

/// The folder of `subject`'s uploads in organisation `org`: a digest of the identity provider's
/// subject (any characters; the key names no person).
pub fn user_prefix(org: &str, subject: &str) -> String {
    format!("{STAGING_PREFIX}{org}/{}/", user_digest(subject))
}

/// A user's name in keys: the first 16 bytes of the SHA-256 of their subject, in hex.
pub fn user_digest(subject: &str) -> String {
    hex::encode(&Sha256::digest(subject.as_bytes())[..16])
}

/// The key of upload `id` of `subject` in `org`.
pub fn staging_key(org: &str, subject: &str, id: &str) -> String {
    format!("{}{id}", user_prefix(org, subject))
}

/// An upload id as the service makes them: 22 characters of URL-safe base64 (128 random bits).
pub fn valid_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A declared content type, lower-cased, or `application/octet-stream` when none; a value a
/// header could not carry is refused.
pub fn content_type(declared: Option<&str>) -> Result<String, UploadRefusal> {
    let t = declared.map(str::trim).unwrap_or_default();
    if t.is_empty() {
        return Ok("application/octet-stream".into());
    }
    let ok = t.len() <= MAX_CONTENT_TYPE
        && t.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
            };
            token(a) && token(b)
        });
    if ok {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(UploadRefusal::BadContentType)
    }
}

/// A file name as kept in the object's metadata: percent-encoded UTF-8 (metadata is ASCII).
pub fn encode_name(name: &str) -> Result<String, UploadRefusal> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(UploadRefusal::BadName);
    }
    Ok(crate::domain::downloads::percent_encode(name, b"-_.~ "))
}

/// The name kept by [`encode_name`]; `None` when it is not one.
pub fn decode_name(kept: &str) -> Option<String> {
    let b = kept.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = kept.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.trim().is_empty())
}

/// Whether a file of `size` bytes may be staged by a user who staged `staged` bytes in the
/// last day.
pub fn admit(size: u64, staged: u64, limits: &UploadLimits) -> Result<(), UploadRefusal> {
    if size == 0 {
        return Err(UploadRefusal::Empty);
    }
    if size > limits.file_bytes {
        return Err(UploadRefusal::FileTooLarge {
            size,
            limit: limits.file_bytes,
        });
    }
    if staged.saturating_add(size) > limits.staged_bytes {
        return Err(UploadRefusal::StagedTooMuch {
            staged,
            limit: limits.staged_bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_organisation_and_user_and_never_name_the_subject() {
        let a = staging_key("org1", "alice|sub", "AAAAAAAAAAAAAAAAAAAAAA");
        assert!(a.starts_with("staging/org1/"));
        assert!(!a.contains("alice"));
        assert_ne!(user_prefix("org1", "alice|sub"), user_prefix("org1", "bob"));
        assert_ne!(user_prefix("org1", "x"), user_prefix("org2", "x"));
        assert!(a.starts_with(&user_prefix("org1", "alice|sub")));
    }

    #[test]
    fn ids_are_22_url_safe_characters() {
        assert!(valid_id("abcdefghijklmnopqrstu-"));
        assert!(!valid_id("abcdefghijklmnopqrstu/"));
        assert!(!valid_id("../../inbound/x"));
        assert!(!valid_id(""));
    }

    #[test]
    fn names_round_trip_through_metadata() {
        for n in ["report.pdf", "Prüfung 2026 (final).xlsx", "a%b.txt"] {
            let kept = encode_name(n).unwrap();
            assert!(kept.is_ascii(), "{kept}");
            assert_eq!(decode_name(&kept).as_deref(), Some(n));
        }
        assert_eq!(encode_name(" "), Err(UploadRefusal::BadName));
        assert_eq!(encode_name("a\nb"), Err(UploadRefusal::BadName));
        assert_eq!(decode_name("%zz"), None);
    }

    #[test]
    fn content_types_are_tokens() {
        assert_eq!(content_type(None).unwrap(), "application/octet-stream");
        assert_eq!(content_type(Some("Text/CSV")).unwrap(), "text/csv");
        assert!(content_type(Some("text/plain\r\nX: y")).is_err());
        assert!(content_type(Some("nope")).is_err());
    }

    #[test]
    fn the_caps_hold() {
        let l = UploadLimits::default();
        assert!(admit(l.file_bytes, 0, &l).is_ok());
        assert!(matches!(
            admit(l.file_bytes + 1, 0, &l),
            Err(UploadRefusal::FileTooLarge { .. })
        ));
        assert!(matches!(
            admit(1, l.staged_bytes, &l),
            Err(UploadRefusal::StagedTooMuch { .. })
        ));
        assert_eq!(admit(0, 0, &l), Err(UploadRefusal::Empty));
        // The biggest file, base64'd, leaves room in SES v2's 40 MB for the rest.
        assert!(
            (l.file_bytes as usize).div_ceil(3) * 4 < crate::domain::compose::MAX_MESSAGE_BYTES
        );
    }
}
