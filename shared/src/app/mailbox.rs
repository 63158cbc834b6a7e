//! Reading the Online Inbox and Online Sent Items (U1-U7) as one use case: who reaches which
//! mailbox, a folder page by page, one message and its raw content, and a mailbox's block rules.
//! The inbox's pages and JSON, sending mail and the mail clients' sync all go through it.
//!
//! Who sees what (U7): a user reaches their own mailbox and the mailboxes delegated to them (U5),
//! nothing else; every other mailbox answers [`MailboxError::NoMailbox`]. Keys are built from the
//! authorised mailbox, so a message id or a cursor cannot reach into another mailbox.

use crate::app::overflow;
use crate::domain::mail::mailbox_of;
use crate::domain::mailbox::{
    self as rules, BlockKind, BlockRule, Folder, Listed, MessageRef, StateChange, Unread, PAGE_SIZE,
};
use crate::ports::blob::RawMessages;
use crate::ports::error::{BlobError, StoreError};
use crate::ports::store::{DirectoryStore, MailboxStore};
use chrono::{DateTime, Utc};

/// Why a mailbox request was refused; the messages are for the user.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// Not a mailbox this user reaches (or none at all): indistinguishable on purpose.
    #[error("There is no such mailbox, or it is not yours.")]
    NoMailbox,
    /// No mailbox was named and the user's token carries no address.
    #[error("Your account has no mailbox address.")]
    NoOwnMailbox,
    #[error("There is no such message in this mailbox.")]
    NoMessage,
    #[error("There is no such attachment.")]
    NoAttachment,
    /// The message is listed but its raw content has expired.
    #[error("The message's content is no longer stored (older than the retention).")]
    ContentGone,
    #[error("There is no such block rule.")]
    NoBlockRule,
    /// The request itself is wrong (folder, cursor, rule kind).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but its content is not acceptable (a block target).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The raw message store failed (not a missing object: that is [`MailboxError::ContentGone`]).
    #[error("raw message: {0}")]
    Blob(BlobError),
}

/// A signed-in user, as the inbox sees them.
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    pub org_id: &'a str,
    /// The identity provider's subject (logs).
    pub subject: &'a str,
    /// Their verified address, when the token carries one.
    pub email: Option<&'a str>,
}

impl User<'_> {
    /// The user's own mailbox.
    pub fn own_mailbox(&self) -> Option<String> {
        self.email.and_then(mailbox_of)
    }
}

/// One page of a folder, newest first.
#[derive(Debug, Clone)]
pub struct Listing {
    pub folder: Folder,
    pub items: Vec<Listed>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// The Online Inbox's collaborators.
pub struct Mailboxes<'a> {
    pub store: &'a dyn MailboxStore,
    pub directory: &'a dyn DirectoryStore,
    pub raw: &'a dyn RawMessages,
}

impl Mailboxes<'_> {
    /// The user's own mailbox first, then the delegated ones (one Query).
    pub async fn reachable(&self, user: &User<'_>) -> Result<Vec<String>, StoreError> {
        let Some(me) = user.own_mailbox() else {
            return Ok(vec![]);
        };
        let mut out = vec![me.clone()];
        for g in self.directory.delegates(user.org_id, Some(&me)).await? {
            if !out.contains(&g.mailbox) {
                out.push(g.mailbox);
            }
        }
        Ok(out)
    }

    /// The mailbox `requested` if the user may use it (their own, or delegated to them).
    pub async fn authorise(
        &self,
        user: &User<'_>,
        requested: &str,
    ) -> Result<String, MailboxError> {
        let (Some(wanted), Some(me)) = (mailbox_of(requested), user.own_mailbox()) else {
            return Err(MailboxError::NoMailbox);
        };
        if wanted == me
            || self
                .directory
                .is_delegate(user.org_id, &me, &wanted)
                .await?
        {
            Ok(wanted)
        } else {
            tracing::info!(org = %user.org_id, subject = %user.subject, "mailbox not reachable for this user");
            Err(MailboxError::NoMailbox)
        }
    }

    /// One message of an authorised mailbox, by its id, with its whole summary (one GetItem,
    /// and one GetObject only when its item had to be cut, [`overflow::complete`]).
    pub async fn message(
        &self,
        org: &str,
        mailbox: &str,
        id: &str,
    ) -> Result<Listed, MailboxError> {
        let l = self.listed(org, mailbox, id).await?;
        overflow::complete(self.raw, l)
            .await
            .map_err(MailboxError::Blob)
    }

    /// One message of an authorised mailbox as its item lists it (one GetItem): for what needs
    /// only its keys (downloads), not the whole summary.
    pub async fn listed(&self, org: &str, mailbox: &str, id: &str) -> Result<Listed, MailboxError> {
        let r = MessageRef::parse(id).ok_or(MailboxError::NoMessage)?;
        self.store
            .mailbox_message(org, mailbox, &r)
            .await?
            .ok_or(MailboxError::NoMessage)
    }

    /// One message of an authorised mailbox opened by its user on the message page: marked
    /// read the first time (one UpdateItem; none when it is already read).
    ///
    /// Safe on a GET: the page is only served to the signed-in user (a session cookie that is
    /// `SameSite=Strict`, so a link followed from another site or a mail scanner opening a URL
    /// has no session and only reaches the sign-in page); marking read destroys nothing and the
    /// user can mark it unread again; and a repeat finds it read and writes nothing.
    pub async fn open(
        &self,
        org: &str,
        mailbox: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Listed, MailboxError> {
        let l = self.message(org, mailbox, id).await?;
        if !l.unread() {
            return Ok(l);
        }
        let read = StateChange {
            read: Some(true),
            flagged: None,
        };
        Ok(
            match self
                .store
                .set_message_state(org, mailbox, &l.r#ref, read, now)
                .await?
            {
                // The new state, with the whole summary already read.
                Some(updated) => Listed {
                    summary: l.summary,
                    ..updated
                },
                None => l,
            },
        )
    }

    /// Marks a message of an authorised mailbox read or unread, flagged or not (idempotent);
    /// the message as it now is. An unknown message changes nothing.
    pub async fn set_state(
        &self,
        org: &str,
        mailbox: &str,
        id: &str,
        change: StateChange,
        now: DateTime<Utc>,
    ) -> Result<Listed, MailboxError> {
        let r = MessageRef::parse(id).ok_or(MailboxError::NoMessage)?;
        let l = self
            .store
            .set_message_state(org, mailbox, &r, change, now)
            .await?
            .ok_or(MailboxError::NoMessage)?;
        tracing::info!(org = %org, read = ?change.read, flagged = ?change.flagged, "message state changed");
        Ok(l)
    }

    /// The unread counts of the received folders (Inbox, Spam) of an authorised mailbox, within
    /// the last 30 days at `now`: one `Query` (Select COUNT, capped) of the unread index per
    /// folder.
    pub async fn unread_counts(
        &self,
        org: &str,
        mailbox: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Folder, Unread)>, MailboxError> {
        let since = rules::window_start(now);
        let (inbox, junk) = futures::future::try_join(
            self.store.unread_count(org, mailbox, Folder::Inbox, since),
            self.store.unread_count(org, mailbox, Folder::Junk, since),
        )
        .await?;
        Ok(vec![(Folder::Inbox, inbox), (Folder::Junk, junk)])
    }

    /// The raw message (.eml) of a listed message.
    pub async fn raw(&self, listed: &Listed) -> Result<Vec<u8>, MailboxError> {
        match self.raw.get(&listed.raw_key).await {
            Ok(raw) => Ok(raw),
            Err(BlobError::NotFound(_)) => Err(MailboxError::ContentGone),
            Err(e) => Err(MailboxError::Blob(e)),
        }
    }

    /// One page of `folder` (`inbox` by default, or `sent`) of an authorised mailbox, within the
    /// last 30 days at `now`, after `cursor`; at most `limit` (and [`PAGE_SIZE`]) messages.
    pub async fn page(
        &self,
        org: &str,
        mailbox: &str,
        folder: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<Listing, MailboxError> {
        let folder = Folder::from_name(folder.unwrap_or("inbox"))
            .ok_or_else(|| MailboxError::BadRequest("folder must be 'inbox' or 'sent'.".into()))?;
        let before = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(rules::decode_cursor(c, folder).ok_or_else(|| {
                MailboxError::BadRequest(
                    "The cursor is not valid for this list; start from the first page.".into(),
                )
            })?),
            None => None,
        };
        let limit = limit.unwrap_or(PAGE_SIZE).clamp(1, PAGE_SIZE);
        let page = self
            .store
            .mailbox_page(
                org,
                mailbox,
                folder,
                rules::window_start(now),
                before.as_ref(),
                limit,
            )
            .await?;
        Ok(Listing {
            folder,
            next: page.next.as_ref().map(rules::encode_cursor),
            items: page.items,
        })
    }

    /// The block rules of an authorised mailbox.
    pub async fn blocks(&self, org: &str, mailbox: &str) -> Result<Vec<BlockRule>, MailboxError> {
        Ok(self.store.blocks(org, mailbox).await?)
    }

    /// Blocks a sender or a domain (`kind` `block`, the default) or marks it as spam (U4) for an
    /// authorised mailbox; the rule as stored.
    pub async fn add_block(
        &self,
        org: &str,
        mailbox: &str,
        target: &str,
        kind: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, BlockKind), MailboxError> {
        let target = rules::block_target(target).ok_or_else(|| {
            MailboxError::Invalid("Block an email address or a domain (example.org).".into())
        })?;
        let kind = match kind.unwrap_or("block") {
            "block" | "" => BlockKind::Block,
            "spam" => BlockKind::Spam,
            _ => {
                return Err(MailboxError::BadRequest(
                    "kind must be 'block' or 'spam'.".into(),
                ))
            }
        };
        self.store
            .put_block(org, mailbox, &target, kind.clone(), now)
            .await?;
        tracing::info!(org = %org, ?kind, "block rule added");
        Ok((target, kind))
    }

    /// Removes a block rule of an authorised mailbox (absent is fine).
    pub async fn remove_block(
        &self,
        org: &str,
        mailbox: &str,
        target: &str,
    ) -> Result<(), MailboxError> {
        let target = rules::block_target(target).ok_or(MailboxError::NoBlockRule)?;
        Ok(self.store.delete_block(org, mailbox, &target).await?)
    }
}
