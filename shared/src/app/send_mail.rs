//! Sending mail from the Online Inbox (U3, U8) as one use case: a new message, a reply, reply
//! all or a forward, from the user's own mailbox or one delegated to them.
//!
//! Once per idempotency key: the key is claimed first (a retry of a finished send answers the
//! first send's result; a send still running is refused; a claim left unfinished for
//! [`SEND_CLAIM_STALE_MINUTES`] is taken over). Then the message is stored, sent through the
//! [`MailSender`], filed in Sent Items and, during continuity with `bcc_to_server` on, queued
//! for the mailbox on the organisation's server. When storing or sending fails, the claim is
//! released so that a retry sends. Attachments come in the request (small) or as uploads staged
//! in the mail bucket beforehand ([`crate::app::uploads`]), named by id.

use crate::app::mailbox::{MailboxError, Mailboxes, User};
use crate::app::overflow::keep_overflow;
use crate::app::search::index_filed;
use crate::domain::compose;
use crate::domain::compose::{ComposeMode, Draft, SendClaim};
use crate::domain::continuity::Phase;
use crate::domain::mail::summarize;
use crate::domain::mailbox::{Folder, MessageRef};
use crate::domain::queue::QueuedMessage;
use crate::ports::blob::RawMessages;
use crate::ports::error::{BlobError, SendError, StoreError};
use crate::ports::mail::MailSender;
use crate::ports::store::{ConfigStore, ContinuityViews, DirectoryStore, MailStore, MailboxStore};
use chrono::{DateTime, Utc};

/// A send claim older than this that never finished is taken over by a retry.
pub const SEND_CLAIM_STALE_MINUTES: i64 = 2;

/// A message to send, as the user composed it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Client-chosen: a retry with the same key sends once (up to 100 letters, digits, `-`, `_`).
    pub idempotency_key: String,
    pub draft: Draft,
    pub mode: ComposeMode,
    /// The id of the message replied to or forwarded (same mailbox).
    pub original: Option<String>,
    /// On forward, keep the original's attachments.
    pub keep_attachments: bool,
    /// Uploaded attachments by id (`app::uploads`), the caller's own: read from staging and
    /// attached after `draft.attachments`.
    pub uploads: Vec<String>,
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    /// The message's id in Sent Items.
    pub id: String,
    pub message_id: String,
    /// A retry of an earlier send with the same key: nothing was sent again.
    pub repeated: bool,
    /// A copy was queued for the mailbox on the organisation's server (U8).
    pub copy_queued: bool,
}

/// Why nothing (more) was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendMailError {
    #[error("idempotency_key is required: up to 100 letters, digits, '-' or '_', the same on every retry.")]
    BadKey,
    /// The mailbox or the original message cannot be used.
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// The message is not acceptable as composed (addresses, size, sender): say why, to fix it.
    #[error("{0}")]
    Invalid(String),
    /// Above what SES sends (40 MB): nothing was sent.
    #[error("{0}")]
    TooLarge(String),
    #[error("This message is being sent by an earlier request; look in Sent Items in a moment.")]
    InProgress,
    /// The sent message could not be stored: nothing was sent.
    #[error("storing the sent message: {0}")]
    Storing(BlobError),
    /// The mail service did not take the message: nothing was sent.
    #[error("the mail service did not accept the message: {0}")]
    Refused(SendError),
    /// An uploaded attachment cannot be used (not the caller's, unknown, gone, too big).
    #[error(transparent)]
    Upload(#[from] crate::app::uploads::UploadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sending use case's collaborators.
pub struct SendMail<'a> {
    /// Send claims, Sent Items, and the original of a reply or forward.
    pub mailboxes: &'a dyn MailboxStore,
    /// Delegations: which mailboxes the user may send from.
    pub directory: &'a dyn DirectoryStore,
    /// The raw messages: the original's, and the sent message's.
    pub raw: &'a dyn RawMessages,
    pub sender: &'a dyn MailSender,
    pub config: &'a dyn ConfigStore,
    pub views: &'a dyn ContinuityViews,
    /// The inbound queue, for the copy to the organisation's server (U8).
    pub queue: &'a dyn MailStore,
    /// Uploaded attachments (issue 13).
    pub uploads: crate::app::uploads::Uploads<'a>,
}

/// A draft's refusal: too large is its own answer (413), the rest is to fix (422).
fn refusal(e: compose::ComposeError) -> SendMailError {
    match e {
        compose::ComposeError::TooLarge(_) => SendMailError::TooLarge(e.to_string()),
        e => SendMailError::Invalid(e.to_string()),
    }
}

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 100
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl SendMail<'_> {
    fn reader(&self) -> Mailboxes<'_> {
        Mailboxes {
            store: self.mailboxes,
            directory: self.directory,
            raw: self.raw,
        }
    }

    /// Sends `out` for `user` from the authorised `mailbox` (the original is read there) at `now`.
    pub async fn send(
        &self,
        user: &User<'_>,
        mailbox: &str,
        out: Outgoing,
        now: DateTime<Utc>,
    ) -> Result<Sent, SendMailError> {
        if !key_ok(&out.idempotency_key) {
            return Err(SendMailError::BadKey);
        }
        let org = user.org_id;
        let idem = out.idempotency_key.as_str();
        let reader = self.reader();
        let allowed = reader.reachable(user).await?;
        let mut draft = out.draft;
        // Uploads are read from the caller's own staging prefix (one HEAD and one GET each)
        // before anything is claimed: a refused id leaves nothing behind. They stay staged, so a
        // retry with the same key reads them again and answers the first send's result.
        if !out.uploads.is_empty() {
            let staged = self.uploads.attachments(user, &out.uploads).await?;
            draft.attachments.extend(staged);
        }
        let mut original = None;
        if let Some(id) = out.original.as_deref().filter(|s| !s.is_empty()) {
            let l = reader.message(org, mailbox, id).await?;
            let o = compose::original_of(&reader.raw(&l).await?, &l.summary);
            if out.mode == ComposeMode::Forward && out.keep_attachments {
                draft.attachments.extend(o.attachments.iter().cloned());
            }
            if out.mode != ComposeMode::New {
                // Left empty, recipients and subject are those of a reply (all) or forward.
                let pre = compose::prefill(out.mode, mailbox, &o);
                if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
                    draft.to = pre.to;
                    draft.cc = pre.cc;
                }
                if draft.subject.trim().is_empty() {
                    draft.subject = pre.subject;
                }
            }
            original = Some(o);
        }
        let valid = compose::validate(&draft, &allowed).map_err(refusal)?;
        let from = valid.from.as_str();
        let sid = compose::sent_id(from, idem);
        let r = MessageRef::new(Folder::Sent, now, &sid);
        let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let message_id = compose::sent_message_id(from, idem, domain);
        let stale = chrono::Duration::minutes(SEND_CLAIM_STALE_MINUTES);
        match self
            .mailboxes
            .claim_send_key(org, from, idem, &r, now, stale)
            .await?
        {
            SendClaim::Claimed => {}
            SendClaim::Sent(existing) => {
                return Ok(Sent {
                    id: existing.encode(),
                    message_id,
                    repeated: true,
                    copy_queued: false,
                })
            }
            SendClaim::InProgress => return Err(SendMailError::InProgress),
        }
        // Threading: only replies and forwards carry In-Reply-To / References.
        let threading = original.as_ref().filter(|_| out.mode != ComposeMode::New);
        let own = user.own_mailbox();
        let raw = match compose::build_mime(&valid, own.as_deref(), &message_id, threading, now) {
            Ok(raw) => raw,
            Err(e) => {
                // Nothing stored or sent: a retry (a smaller message) may claim the key again.
                self.release(org, from, idem).await;
                return Err(refusal(e));
            }
        };
        let raw_key = format!("sent/{org}/{from}/{sid}");
        if let Err(e) = self.raw.put(&raw_key, raw.clone()).await {
            self.release(org, from, idem).await;
            return Err(SendMailError::Storing(e));
        }
        let provider_id = match self
            .sender
            .send_raw(from, &valid.recipients(), raw.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.release(org, from, idem).await;
                tracing::warn!(error = %e, "sending the user's message failed");
                return Err(SendMailError::Refused(e));
            }
        };
        let full = summarize(&raw);
        // Sent Items' item is capped in bytes like a filing; the message is sent, so a failure
        // to keep the whole summary only leaves the message view with what the list shows.
        let summary = match keep_overflow(self.raw, &raw_key, &full).await {
            Ok(fitted) => fitted,
            Err(e) => {
                tracing::warn!(error = %e, "keeping a sent message's whole summary failed");
                crate::domain::item_budget::fit(&full).summary
            }
        };
        // The store cuts the whole summary the same way and names where it is.
        self.mailboxes
            .file_sent(org, from, &r, &full, &raw_key, now)
            .await?;
        // The message is sent: a failed indexing must not fail the request (a retry would
        // send it again once the claim is stale); it only leaves this item out of searches.
        if let Err(e) =
            index_filed(self.mailboxes, org, &[from.to_string()], &r, &raw, &summary).await
        {
            tracing::warn!(error = %e, "indexing a sent message failed");
        }
        // U8: during continuity, a copy for the mailbox on the organisation's server.
        let mut copy_queued = false;
        if let Some(config) = self.config.get_config(org).await? {
            if config.continuity.bcc_to_server
                && matches!(
                    self.views.continuity_state(org).await?.phase(now),
                    Phase::Continuity { .. }
                )
            {
                let msg =
                    QueuedMessage::new(org, format!("sent-{sid}"), raw_key.as_str(), now, &summary)
                        .envelope(from, vec![from.to_string()])
                        .origin(crate::domain::verdicts::Origin::Submitted);
                self.queue.accept_message(&msg, now).await?;
                copy_queued = true;
            }
        }
        self.mailboxes
            .finish_send_key(org, from, idem, &provider_id)
            .await?;
        tracing::info!(org = %org, sent = %r.encode(), recipients = valid.recipients().len(), "message sent");
        Ok(Sent {
            id: r.encode(),
            message_id,
            repeated: false,
            copy_queued,
        })
    }

    /// Releases a claim whose send did not happen, so that a retry sends (best effort: a claim
    /// left behind is taken over once stale).
    async fn release(&self, org: &str, from: &str, idem: &str) {
        if let Err(e) = self.mailboxes.release_send_key(org, from, idem).await {
            tracing::warn!(error = %e, "releasing a send claim failed");
        }
    }
}
