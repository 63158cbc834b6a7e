//! Sending mail from the Online Inbox (U3, U8) as one use case: a new message, a reply, reply
//! all or a forward, from the user's own mailbox or one delegated to them.
//!
//! At most once per idempotency key, whatever fails and whoever retries:
//! 1. The key is claimed (a conditional write). A send still running answers "in progress".
//! 2. The message is built and stored, then handed to the [`MailSender`] (SES, without the
//!    SDK's retries). A definite refusal releases the claim, so a retry sends. Otherwise the
//!    claim is settled at once: `sent` with SES's id when SES accepted, `unknown` when no
//!    definite answer came (a timeout, a dropped connection, a 5xx: it may have been sent).
//! 3. Then, from the settled claim: filed in Sent Items (marked unconfirmed when unknown),
//!    indexed, and during continuity with `bcc_to_server` on, a copy queued for the mailbox on
//!    the organisation's server; the claim is marked complete. Each of these steps is
//!    repeatable by key, so a retry with the same key finishes what a failure left undone,
//!    and never sends.
//!
//! A claim left `sending` for [`SEND_CLAIM_STALE_MINUTES`] (its process stopped, perhaps while
//! SES had the message) is settled as unknown by the next retry, never sent again.
//!
//! Attachments come in the request (small) or as uploads staged in the mail bucket beforehand
//! ([`crate::app::uploads`]), named by id.

use crate::app::mailbox::{MailboxError, Mailboxes, User};
use crate::app::overflow::keep_overflow;
use crate::app::search::index_filed;
use crate::domain::compose;
use crate::domain::compose::{ComposeMode, Draft, SendClaim, SendOutcome, SentRecord};
use crate::domain::continuity::Phase;
use crate::domain::mail::summarize;
use crate::domain::mailbox::{Folder, MessageRef};
use crate::domain::queue::QueuedMessage;
use crate::ports::blob::RawMessages;
use crate::ports::error::{BlobError, SendError, StoreError};
use crate::ports::mail::MailSender;
use crate::ports::store::{ConfigStore, ContinuityViews, DirectoryStore, MailStore, MailboxStore};
use chrono::{DateTime, Utc};

/// A send claim older than this whose send never ended is settled as unconfirmed by a retry.
pub const SEND_CLAIM_STALE_MINUTES: i64 = 2;

/// What the user is told when the mail service never confirmed a send.
pub const UNCONFIRMED_NOTICE: &str = "The mail service did not confirm this message. It was \
probably sent and is in Sent Items marked unconfirmed; it will not be sent again automatically. \
If a recipient did not get it, send it again as a new message.";

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
    /// SES accepted it. `false`: no definite answer came; it may have been sent, is filed as
    /// unconfirmed and is never sent again automatically ([`UNCONFIRMED_NOTICE`]).
    pub confirmed: bool,
    /// What to tell the user when it is not simply sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
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
    /// Sent (or perhaps sent), but recording it failed: never sent again; a retry with the same
    /// key finishes filing it.
    #[error("The message was handed to the mail service, but recording it failed ({0}). It will not be sent again; retry the same request in a few minutes to see it in Sent Items.")]
    Unrecorded(StoreError),
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
        let raw_key = format!("sent/{org}/{from}/{sid}");
        let mut done = Settling {
            org,
            from,
            idem,
            raw_key: &raw_key,
            message_id,
        };
        match self
            .mailboxes
            .claim_send_key(org, from, idem, &r, now, stale)
            .await?
        {
            SendClaim::Claimed => {}
            SendClaim::Settled(record) => return self.settle(&mut done, &record, None).await,
            SendClaim::InProgress => return Err(SendMailError::InProgress),
        }
        // Decided before sending, recorded with SES's answer: a retry queues the copy if and
        // only if the first send meant to.
        let copy = match self.copy_wanted(org, now).await {
            Ok(c) => c,
            Err(e) => {
                self.release(org, from, idem).await;
                return Err(e.into());
            }
        };
        // Threading: only replies and forwards carry In-Reply-To / References.
        let threading = original.as_ref().filter(|_| out.mode != ComposeMode::New);
        let own = user.own_mailbox();
        let raw =
            match compose::build_mime(&valid, own.as_deref(), &done.message_id, threading, now) {
                Ok(raw) => raw,
                Err(e) => {
                    // Nothing stored or sent: a retry (a smaller message) may claim the key again.
                    self.release(org, from, idem).await;
                    return Err(refusal(e));
                }
            };
        if let Err(e) = self.raw.put(&raw_key, raw.clone()).await {
            self.release(org, from, idem).await;
            return Err(SendMailError::Storing(e));
        }
        let outcome = match self
            .sender
            .send_raw(from, &valid.recipients(), raw.clone())
            .await
        {
            Ok(provider_id) => SendOutcome::Accepted { provider_id, copy },
            Err(e) if e.maybe_sent() => {
                tracing::warn!(org = %org, error = %e, "the mail service did not confirm a send: recorded as unconfirmed, never sent again");
                SendOutcome::Unconfirmed {
                    reason: e.to_string(),
                }
            }
            Err(e) => {
                self.release(org, from, idem).await;
                tracing::warn!(error = %e, "sending the user's message failed");
                return Err(SendMailError::Refused(e));
            }
        };
        // Settled before anything else: from here on, no retry sends.
        if let Err(e) = self
            .mailboxes
            .finish_send_key(org, from, idem, &outcome)
            .await
        {
            tracing::error!(org = %org, error = %e, "a send's outcome was not recorded: its claim will settle as unconfirmed");
            return Err(SendMailError::Unrecorded(e));
        }
        let confirmed = matches!(outcome, SendOutcome::Accepted { .. });
        let record = SentRecord {
            r#ref: r,
            confirmed,
            copy: copy && confirmed,
            complete: false,
        };
        let mut sent = self.settle(&mut done, &record, Some(raw)).await?;
        sent.repeated = false;
        if confirmed {
            tracing::info!(org = %org, sent = %sent.id, recipients = valid.recipients().len(), "message sent");
        }
        Ok(sent)
    }

    /// Whether a copy of what is sent now goes to the mailbox on the organisation's server:
    /// during continuity with `bcc_to_server` on (U8).
    async fn copy_wanted(&self, org: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let Some(config) = self.config.get_config(org).await? else {
            return Ok(false);
        };
        Ok(config.continuity.bcc_to_server
            && matches!(
                self.views.continuity_state(org).await?.phase(now),
                Phase::Continuity { .. }
            ))
    }

    /// Does what a settled send still lacks (Sent Items, the index, the copy; each repeatable
    /// by key) and answers it. `raw`: the message when this call just sent it (read back from
    /// the store otherwise). Never sends.
    async fn settle(
        &self,
        s: &mut Settling<'_>,
        record: &SentRecord,
        raw: Option<Vec<u8>>,
    ) -> Result<Sent, SendMailError> {
        let r = &record.r#ref;
        let mut copy_queued = false;
        if !record.complete {
            let raw = match raw {
                Some(raw) => Some(raw),
                None => match self.raw.get(s.raw_key).await {
                    Ok(raw) => Some(raw),
                    // A claim settled as stale whose process stopped before storing: nothing
                    // to file (and nothing was sent).
                    Err(BlobError::NotFound(_)) => None,
                    Err(e) => return Err(SendMailError::Storing(e)),
                },
            };
            if let Some(raw) = raw {
                copy_queued = self
                    .file(s, record, &raw)
                    .await
                    .map_err(SendMailError::Unrecorded)?;
            }
            self.mailboxes
                .complete_send_key(s.org, s.from, s.idem)
                .await
                .map_err(SendMailError::Unrecorded)?;
        }
        Ok(Sent {
            id: r.encode(),
            message_id: std::mem::take(&mut s.message_id),
            repeated: true,
            copy_queued,
            confirmed: record.confirmed,
            notice: (!record.confirmed).then(|| UNCONFIRMED_NOTICE.to_string()),
        })
    }

    /// Files the sent message in Sent Items, indexes it, and queues the copy when the record
    /// says so; whether a copy was queued.
    async fn file(
        &self,
        s: &Settling<'_>,
        record: &SentRecord,
        raw: &[u8],
    ) -> Result<bool, StoreError> {
        let r = &record.r#ref;
        let at = DateTime::from_timestamp_millis(r.received_ms).unwrap_or_default();
        let full = summarize(raw);
        // Sent Items' item is capped in bytes like a filing; the message is sent, so a failure
        // to keep the whole summary only leaves the message view with what the list shows.
        let summary = match keep_overflow(self.raw, s.raw_key, &full).await {
            Ok(fitted) => fitted,
            Err(e) => {
                tracing::warn!(error = %e, "keeping a sent message's whole summary failed");
                crate::domain::item_budget::fit(&full).summary
            }
        };
        // The store cuts the whole summary the same way and names where it is.
        self.mailboxes
            .file_sent(s.org, s.from, r, &full, s.raw_key, at, !record.confirmed)
            .await?;
        // A failed indexing only leaves this item out of searches: not worth failing for.
        if let Err(e) = index_filed(
            self.mailboxes,
            s.org,
            &[s.from.to_string()],
            r,
            raw,
            &summary,
        )
        .await
        {
            tracing::warn!(error = %e, "indexing a sent message failed");
        }
        if !record.copy {
            return Ok(false);
        }
        let msg = QueuedMessage::new(s.org, format!("sent-{}", r.id), s.raw_key, at, &summary)
            .envelope(s.from, vec![s.from.to_string()])
            .origin(crate::domain::verdicts::Origin::Submitted);
        // Keyed on the message: a retry finds it queued and changes nothing.
        // One recipient (the user's own mailbox): one queue item.
        self.queue
            .accept_message(std::slice::from_ref(&msg), at)
            .await?;
        Ok(true)
    }

    /// Releases a claim whose send did not happen, so that a retry sends (best effort: a claim
    /// left behind is taken over once stale).
    async fn release(&self, org: &str, from: &str, idem: &str) {
        if let Err(e) = self.mailboxes.release_send_key(org, from, idem).await {
            tracing::warn!(error = %e, "releasing a send claim failed");
        }
    }
}

/// Which send a settling step is about.
struct Settling<'a> {
    org: &'a str,
    from: &'a str,
    idem: &'a str,
    raw_key: &'a str,
    message_id: String,
}
