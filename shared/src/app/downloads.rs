//! Downloads of a mailbox's mail (U2) as one use case: the raw message (.eml) and each
//! attachment, for a user who may read the mailbox (own or delegated, U7).
//!
//! Mail is up to 40 MB and an HTTP API answer at most 6 MB (Lambda; base64 makes binary bodies
//! a third larger), so a download leaves as a short-lived presigned GET of the object itself,
//! built only after the mailbox and the message were authorised. An attachment is a part
//! inside the raw message: above [`DownloadSettings::inline_bytes`] it is decoded once into a
//! derived object ([`part_key`]: same key every time, written only when absent) and that object
//! is presigned; smaller ones are answered inline.

use crate::app::mailbox::{MailboxError, Mailboxes, User};
use crate::domain::downloads::part_key;
use crate::ports::blob::DownloadAs;
use crate::ports::error::BlobError;
use std::time::Duration;

/// How downloads are served (settings read once at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadSettings {
    /// How long a presigned link works (`DOWNLOAD_URL_MINUTES`, default 5).
    pub expires: Duration,
    /// Attachments up to this size are answered inline (`INLINE_DOWNLOAD_BYTES`, default 1 MiB).
    pub inline_bytes: usize,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            expires: Duration::from_secs(5 * 60),
            inline_bytes: 1024 * 1024,
        }
    }
}

/// A download, as the handler answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// Redirect the caller to this presigned URL.
    Link(String),
    /// A small attachment, answered in the response itself.
    Inline { bytes: Vec<u8>, filename: String },
}

/// The downloads use case over the inbox's ports.
pub struct Downloads<'a> {
    pub mailboxes: Mailboxes<'a>,
    pub settings: DownloadSettings,
}

fn blob_error(e: BlobError) -> MailboxError {
    match e {
        BlobError::NotFound(_) => MailboxError::ContentGone,
        e => MailboxError::Blob(e),
    }
}

impl Downloads<'_> {
    /// The raw message `id` of `mailbox` (.eml) for `user`: a presigned link.
    pub async fn raw(
        &self,
        user: &User<'_>,
        mailbox: &str,
        id: &str,
    ) -> Result<Download, MailboxError> {
        let inbox = &self.mailboxes;
        let mailbox = inbox.authorise(user, mailbox).await?;
        let l = inbox.listed(user.org_id, &mailbox, id).await?;
        let name = format!("{}.eml", l.r#ref.encode());
        self.link(&l.raw_key, &name).await
    }

    /// Attachment `index` of message `id` of `mailbox` for `user`: inline when small, else a
    /// presigned link to its decoded copy.
    pub async fn attachment(
        &self,
        user: &User<'_>,
        mailbox: &str,
        id: &str,
        index: usize,
    ) -> Result<Download, MailboxError> {
        use mail_parser::{MessageParser, MimeHeaders};
        let inbox = &self.mailboxes;
        let mailbox = inbox.authorise(user, mailbox).await?;
        let l = inbox.listed(user.org_id, &mailbox, id).await?;
        let key = part_key(user.org_id, &mailbox, &l.r#ref.id, index);
        let listed_name = l.summary.attachments.get(index).cloned();
        // Decoded before (only big parts are): one HEAD, the raw message is not read again.
        let mut looked = false;
        if let Some(name) = &listed_name {
            if inbox.raw.exists(&key).await.map_err(blob_error)? {
                return self.link(&key, name).await;
            }
            looked = true;
        }
        let raw = inbox.raw(&l).await?;
        let m = MessageParser::default()
            .parse(&raw)
            .ok_or(MailboxError::NoAttachment)?;
        let a = m
            .attachments()
            .nth(index)
            .ok_or(MailboxError::NoAttachment)?;
        let name = a
            .attachment_name()
            .map(crate::domain::mail::clean_text)
            .or(listed_name)
            .unwrap_or_else(|| format!("attachment-{}", index + 1));
        let bytes = a.contents();
        if bytes.len() <= self.settings.inline_bytes {
            return Ok(Download::Inline {
                bytes: bytes.to_vec(),
                filename: name,
            });
        }
        // The same bytes under the same key every time: a concurrent first download writes
        // what the other writes.
        if looked || !inbox.raw.exists(&key).await.map_err(blob_error)? {
            inbox
                .raw
                .put(&key, bytes.to_vec())
                .await
                .map_err(blob_error)?;
        }
        self.link(&key, &name).await
    }

    async fn link(&self, key: &str, filename: &str) -> Result<Download, MailboxError> {
        let how = DownloadAs {
            filename,
            expires: self.settings.expires,
        };
        let url = self
            .mailboxes
            .raw
            .presign_get(key, &how)
            .await
            .map_err(blob_error)?;
        Ok(Download::Link(url))
    }
}
