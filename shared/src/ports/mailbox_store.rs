//! Storage ports of the Online Inbox (U1-U4, U9, C3) and its search (issue 17): what the
//! mailbox use cases need from the table. Re-exported by [`super::store`], beside the other
//! storage ports; the DynamoDB adapter is `crate::adapters::dynamodb` (`mailbox.rs`, `search.rs`).

use crate::domain::compose::{SendClaim, SendOutcome};
use crate::domain::mail::MessageSummary;
use crate::domain::mailbox::{
    BlockKind, BlockRule, Folder, Listed, MessageRef, Page, StateChange, Unread,
};
use crate::ports::error::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A user's mailboxes in the Online Inbox (U1-U4, U9) and what mail clients were handed (C3).
#[async_trait]
pub trait MailboxStore: SearchIndex {
    /// A page of `folder`, newest first, received since `since`, before `before` (exclusive).
    async fn mailbox_page(
        &self,
        org_id: &str,
        mailbox: &str,
        folder: Folder,
        since: DateTime<Utc>,
        before: Option<&MessageRef>,
        limit: usize,
    ) -> Result<Page, StoreError>;
    /// Inbox messages received since `since`, oldest first, after `after` (the clients' sync, C2).
    async fn inbox_since(
        &self,
        org_id: &str,
        mailbox: &str,
        since: DateTime<Utc>,
        after: Option<&MessageRef>,
        limit: usize,
    ) -> Result<Page, StoreError>;
    /// One message of the mailbox.
    async fn mailbox_message(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
    ) -> Result<Option<Listed>, StoreError>;
    /// Changes a message's read state and flag (issue 17); `None` when there is no such
    /// message (nothing changed). Idempotent.
    async fn set_message_state(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
        change: StateChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Listed>, StoreError>;
    /// How many messages of `folder` received since `since` are unread (up to a cap).
    async fn unread_count(
        &self,
        org_id: &str,
        mailbox: &str,
        folder: Folder,
        since: DateTime<Utc>,
    ) -> Result<Unread, StoreError>;
    /// Files a sent message in Online Sent Items (U3), marked `unconfirmed` when the mail
    /// service never confirmed it. Repeatable: the same item on a retry.
    #[allow(clippy::too_many_arguments)]
    async fn file_sent(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
        summary: &MessageSummary,
        raw_key: &str,
        at: DateTime<Utc>,
        unconfirmed: bool,
    ) -> Result<(), StoreError>;
    /// Claims a send's idempotency key: a retry with the same key sends once (U3). A claim
    /// older than `stale_after` whose send never ended is settled as unconfirmed (its process
    /// stopped, perhaps during the send), never taken over to send again.
    async fn claim_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        r: &MessageRef,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<SendClaim, StoreError>;
    /// Records how a claimed send ended with the mail service (before anything else is done).
    async fn finish_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        outcome: &SendOutcome,
    ) -> Result<(), StoreError>;
    /// Records that everything after the send is done (Sent Items, index, copy).
    async fn complete_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
    ) -> Result<(), StoreError>;
    /// Releases a claim whose send was refused for certain: a retry sends.
    async fn release_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
    ) -> Result<(), StoreError>;
    /// Blocks a sender or domain, or marks it as spam, for the mailbox (U4).
    async fn put_block(
        &self,
        org_id: &str,
        mailbox: &str,
        target: &str,
        kind: BlockKind,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn delete_block(
        &self,
        org_id: &str,
        mailbox: &str,
        target: &str,
    ) -> Result<(), StoreError>;
    async fn blocks(&self, org_id: &str, mailbox: &str) -> Result<Vec<BlockRule>, StoreError>;
    /// Records which messages (Message-ID, reference) a client was handed (C3).
    async fn record_handouts(
        &self,
        org_id: &str,
        mailbox: &str,
        handed: &[(String, MessageRef)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// What was handed out: (Message-ID, reference, when).
    async fn handouts(
        &self,
        org_id: &str,
        mailbox: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError>;
}

/// One page of a term's postings in a mailbox, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Postings {
    /// Positions (`crate::domain::search::position`), newest first.
    pub positions: Vec<String>,
    /// Whether the range was read to its end (no more postings below the last).
    pub complete: bool,
}

/// The search index of the Online Inbox (issue 17): one posting per (mailbox, term, message),
/// written as a message is filed, expiring with the filing. Every store that files mail
/// ([`MailStore`], [`MailboxStore`]) indexes it too, so no filing path can forget it.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// Indexes the message `r` of each of `mailboxes` under `terms` (idempotent: a repeat writes
    /// the same items).
    async fn index_message(
        &self,
        org_id: &str,
        mailboxes: &[String],
        r: &MessageRef,
        terms: &[String],
    ) -> Result<(), StoreError>;
    /// The postings of `term` in `mailbox` received from `since_ms` to `until_ms` (ms, both
    /// included) and strictly below the position `below`, newest first, at most `limit`.
    #[allow(clippy::too_many_arguments)]
    async fn postings(
        &self,
        org_id: &str,
        mailbox: &str,
        term: &str,
        since_ms: i64,
        until_ms: i64,
        below: Option<&str>,
        limit: usize,
    ) -> Result<Postings, StoreError>;
    /// Which of the (term, position) pairs of `mailbox` are indexed (key lookups).
    async fn indexed(
        &self,
        org_id: &str,
        mailbox: &str,
        pairs: &[(String, String)],
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError>;
    /// The filings of `refs` in `mailbox` that still exist, each with whether it is unread (no
    /// `read_at`), in no particular order (key lookups).
    async fn filings(
        &self,
        org_id: &str,
        mailbox: &str,
        refs: &[MessageRef],
    ) -> Result<Vec<(Listed, bool)>, StoreError>;
}
