//! The Online Inbox's items (`TABLE.md`, "The Online Inbox": `MBX#`, `SENT#`, `SENDKEY#`,
//! `BLOCK#`, `HANDOUT#`): [`MailboxStore`] (pages, messages, sent items, idempotent sends,
//! block rules, the client hand-out record: U1-U4, U8, C1-C3); and the item layout of a listed
//! message, which the inbound path's filings share (`mail.rs`).
//!
//! Every key is built from the *authorised* mailbox (the handler checked it) and a
//! [`MessageRef`]: nothing a caller sends can name another mailbox's item.

use super::batch::put_request;
use super::codec::{
    corrupt, enum_str, expire, get_enum, get_n_or, get_s, get_strings, get_ts, key, n, opt_s, s,
    strings, ts, Item,
};
use super::keys::{
    block_prefix, block_sk, folder_range, handout_prefix, handout_sk, message_sk, org_pk,
    sendkey_sk, unread_pk, unread_since, unread_sk, GSI1, GSI1PK, GSI1SK, MAIL_DAYS, SK,
};
use super::DynamoStore;
use crate::domain::compose::{SendClaim, SendOutcome, SentRecord};
use crate::domain::item_budget::{fit, overflow_key};
use crate::domain::mail::{MessageKind, MessageSummary};
use crate::domain::mailbox::{
    BlockKind, BlockRule, Folder, Listed, MessageRef, Page, StateChange, Unread, UNREAD_COUNT_CAP,
};
use crate::ports::error::StoreError;
use crate::ports::store::MailboxStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Select};
use chrono::{DateTime, Utc};

/// A message as a mailbox lists it (Online Inbox filings and Sent Items alike): the summary's
/// attributes cut to their byte budget, the raw message's key, and the 30-day TTL, on the item
/// `item` (its key set). `full` is the summary as read from the message: when it has to be cut,
/// `summary_key` names where the whole one is ([`overflow_key`]), which the caller stored there
/// first (`app::overflow::keep_overflow`).
pub(super) fn listed_item(
    mut item: Item,
    mailbox: &str,
    id: &str,
    full: &MessageSummary,
    raw_key: &str,
    at: DateTime<Utc>,
) -> Item {
    let fitted = fit(full);
    let sum = &fitted.summary;
    if fitted.overflowed {
        item.insert("summary_key".into(), s(overflow_key(raw_key)));
    }
    item.insert("mailbox".into(), s(mailbox));
    item.insert("ses_id".into(), s(id));
    item.insert("message_id".into(), s(&sum.message_id));
    if let Some(from) = &sum.from {
        item.insert("from".into(), s(from));
    }
    if let Some(name) = &sum.from_name {
        item.insert("from_name".into(), s(name));
    }
    if let Some(p) = &sum.preview {
        item.insert("preview".into(), s(p));
    }
    if !sum.thread.is_empty() {
        item.insert("thread".into(), s(&sum.thread));
    }
    item.insert("to".into(), strings(&sum.to));
    item.insert("to_count".into(), n(sum.to_count));
    item.insert("cc".into(), strings(&sum.cc));
    item.insert("cc_count".into(), n(sum.cc_count));
    if let Some(sub) = &sum.subject {
        item.insert("subject".into(), s(sub));
    }
    if let Some(d) = sum.date {
        item.insert("date".into(), ts(d));
    }
    item.insert("size".into(), n(sum.size));
    item.insert("attachments".into(), strings(&sum.attachments));
    item.insert("kind".into(), s(enum_str(&sum.kind)));
    item.insert("raw_key".into(), s(raw_key));
    item.insert("received_at".into(), ts(at));
    expire(&mut item, at, MAIL_DAYS);
    item
}

/// Puts a received message (inbox or junk filing, `r`) in its folder's sparse unread index:
/// it is filed unread. Sent items are read and never indexed.
pub(super) fn index_unread(item: &mut Item, org_id: &str, mailbox: &str, r: &MessageRef) {
    if r.folder != Folder::Sent {
        item.insert(GSI1PK.into(), s(unread_pk(org_id, r.folder, mailbox)));
        item.insert(GSI1SK.into(), s(unread_sk(r)));
    }
}

/// Reads a filing (`MBX#`) or sent item (`SENT#`) of `mailbox`.
pub(super) fn parse_listed(mailbox: &str, item: &Item) -> Result<Listed, StoreError> {
    let sk = get_s(item, SK)?;
    let r = MessageRef::from_sort_key(mailbox, sk)
        .ok_or_else(|| corrupt(item, "not a message key of this mailbox"))?;
    let received_at = get_ts(item, "received_at")?
        .ok_or_else(|| corrupt(item, "attribute received_at missing"))?;
    let summary = MessageSummary {
        message_id: opt_s(item, "message_id").unwrap_or_default(),
        message_id_derived: false,
        from: opt_s(item, "from"),
        from_name: opt_s(item, "from_name"),
        to: get_strings(item, "to"),
        to_count: get_n_or(item, "to_count", 0)?,
        cc: get_strings(item, "cc"),
        cc_count: get_n_or(item, "cc_count", 0)?,
        subject: opt_s(item, "subject"),
        date: get_ts(item, "date")?,
        size: get_n_or(item, "size", 0)?,
        attachments: get_strings(item, "attachments"),
        kind: get_enum(item, "kind")?.unwrap_or(MessageKind::Message),
        preview: opt_s(item, "preview"),
        thread: opt_s(item, "thread").unwrap_or_default(),
    };
    Ok(Listed {
        r#ref: r,
        summary,
        raw_key: get_s(item, "raw_key")?.to_string(),
        summary_key: opt_s(item, "summary_key"),
        received_at,
        read_at: get_ts(item, "read_at")?,
        flagged: matches!(item.get("flagged"), Some(AttributeValue::Bool(true))),
        unconfirmed: matches!(item.get("unconfirmed"), Some(AttributeValue::Bool(true))),
    })
}

/// A Query's answer as a page of a mailbox: its readable items (an unreadable one is logged and
/// skipped), and the cursor after the last item DynamoDB looked at.
fn page_of(mailbox: &str, out: &QueryOutput) -> Page {
    let mut items = Vec::with_capacity(out.items().len());
    for item in out.items() {
        match parse_listed(mailbox, item) {
            Ok(l) => items.push(l),
            Err(e) => tracing::warn!(error = %e, "unreadable mailbox item skipped"),
        }
    }
    let next = out
        .last_evaluated_key
        .as_ref()
        .and_then(|k| k.get(SK))
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| MessageRef::from_sort_key(mailbox, sk));
    Page { items, next }
}

#[async_trait]
impl MailboxStore for DynamoStore {
    /// One page of a mailbox's folder, newest first, received at or after `since` and before
    /// `before` (the previous page's last item): one Query, `Limit` = `limit`.
    async fn mailbox_page(
        &self,
        org_id: &str,
        mailbox: &str,
        folder: Folder,
        since: DateTime<Utc>,
        before: Option<&MessageRef>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let (lo, hi) = folder_range(folder, mailbox, since);
        let start = match before {
            Some(r) if r.folder == folder => {
                let sk = message_sk(mailbox, r);
                if sk < lo {
                    // The cursor is older than the window: nothing more to show.
                    return Ok(Page {
                        items: vec![],
                        next: None,
                    });
                }
                Some(key(org_pk(org_id), sk))
            }
            _ => None,
        };
        let query = self
            .between(org_id, lo, hi)
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start);
        let out = self.query_page("Query mailbox page", query).await?;
        Ok(page_of(mailbox, &out))
    }

    /// The inbox filings after `after` (oldest first; from `since` when there is none or it is
    /// older): one Query for the client sync (C2).
    async fn inbox_since(
        &self,
        org_id: &str,
        mailbox: &str,
        since: DateTime<Utc>,
        after: Option<&MessageRef>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let (lo, hi) = folder_range(Folder::Inbox, mailbox, since);
        let start = after
            .filter(|r| r.folder == Folder::Inbox)
            .map(|r| message_sk(mailbox, r))
            .filter(|sk| *sk >= lo)
            .map(|sk| key(org_pk(org_id), sk));
        let query = self
            .between(org_id, lo, hi)
            .scan_index_forward(true)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start);
        let out = self.query_page("Query inbox since", query).await?;
        Ok(page_of(mailbox, &out))
    }

    /// One message of a mailbox (one GetItem); `None` when the mailbox has no such message.
    async fn mailbox_message(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
    ) -> Result<Option<Listed>, StoreError> {
        match self.get(org_pk(org_id), &message_sk(mailbox, r)).await? {
            Some(item) => parse_listed(mailbox, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Files a sent message in Online Sent Items (one PutItem; the same key on a retry).
    async fn file_sent(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
        summary: &MessageSummary,
        raw_key: &str,
        at: DateTime<Utc>,
        unconfirmed: bool,
    ) -> Result<(), StoreError> {
        let mut item = listed_item(
            key(org_pk(org_id), message_sk(mailbox, r)),
            mailbox,
            &r.id,
            summary,
            raw_key,
            at,
        );
        // What the user sent is read (`read_at` absent means unread for every reader).
        item.insert("read_at".into(), ts(at));
        if unconfirmed {
            item.insert("unconfirmed".into(), AttributeValue::Bool(true));
        }
        self.put("PutItem", item).await
    }

    /// Changes a message's read state and flag (one conditional UpdateItem, the new item
    /// returned); `None` when the mailbox has no such message (nothing written). Read: `read_at`
    /// set once (a repeat keeps the first time) and the message leaves the unread index;
    /// unread: `read_at` removed and the message back in the index (received mail only: what
    /// the user sent stays read).
    async fn set_message_state(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
        change: StateChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Listed>, StoreError> {
        let mut set: Vec<&str> = Vec::new();
        let mut remove: Vec<&str> = Vec::new();
        let mut req = self
            .update_item(key(org_pk(org_id), message_sk(mailbox, r)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllNew);
        match change.read {
            Some(true) => {
                set.push("read_at = if_not_exists(read_at, :now)");
                remove.extend(["gsi1pk", "gsi1sk"]);
                req = req.expression_attribute_values(":now", ts(now));
            }
            Some(false) if r.folder != Folder::Sent => {
                remove.push("read_at");
                set.extend(["gsi1pk = :upk", "gsi1sk = :usk"]);
                req = req
                    .expression_attribute_values(":upk", s(unread_pk(org_id, r.folder, mailbox)))
                    .expression_attribute_values(":usk", s(unread_sk(r)));
            }
            _ => {}
        }
        match change.flagged {
            Some(true) => {
                set.push("flagged = :t");
                req = req.expression_attribute_values(":t", AttributeValue::Bool(true));
            }
            Some(false) => remove.push("flagged"),
            None => {}
        }
        if set.is_empty() && remove.is_empty() {
            // Nothing to change: read the message as it is (its existence is the answer).
            return self.mailbox_message(org_id, mailbox, r).await;
        }
        let mut expr = String::new();
        if !set.is_empty() {
            expr.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let req = req.update_expression(expr.trim());
        match self.update_if("UpdateItem message state", req).await? {
            Some(out) => {
                let item = out.attributes.unwrap_or_default();
                parse_listed(mailbox, &item).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The unread messages of a folder received since `since`: one `Query gsi1` on the folder's
    /// unread partition, `Select COUNT`, `Limit` [`UNREAD_COUNT_CAP`] (never more than one
    /// request: above the cap the answer is "at least").
    async fn unread_count(
        &self,
        org_id: &str,
        mailbox: &str,
        folder: Folder,
        since: DateTime<Utc>,
    ) -> Result<Unread, StoreError> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :u AND gsi1sk >= :since")
            .expression_attribute_values(":u", s(unread_pk(org_id, folder, mailbox)))
            .expression_attribute_values(":since", s(unread_since(since)))
            .select(Select::Count)
            .limit(UNREAD_COUNT_CAP as i32);
        let out = self.query_page("Query gsi1 unread count", query).await?;
        Ok(Unread {
            count: out.count.max(0) as usize,
            more: out.last_evaluated_key.is_some_and(|k| !k.is_empty()),
        })
    }

    /// Claims an idempotency key for one send (conditional PutItem). When it is taken, one
    /// GetItem reads how far that send went; a claim left `sending` for `stale_after` (its
    /// process stopped, perhaps while SES had the message) is settled as `unknown` (one
    /// conditional UpdateItem) and never sent again.
    async fn claim_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        r: &MessageRef,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<SendClaim, StoreError> {
        let sk = sendkey_sk(mailbox, idem);
        let mut item = key(org_pk(org_id), sk.clone());
        item.insert("state".into(), s("sending"));
        item.insert("ref".into(), s(r.encode()));
        item.insert("claimed_at".into(), ts(now));
        expire(&mut item, now, MAIL_DAYS);
        let req = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk)");
        if self.put_if("PutItem send key", req).await? {
            return Ok(SendClaim::Claimed);
        }
        let Some(existing) = self.get(org_pk(org_id), &sk).await? else {
            return Ok(SendClaim::InProgress);
        };
        let Some(r) = opt_s(&existing, "ref").and_then(|x| MessageRef::parse(&x)) else {
            return Err(corrupt(&existing, "send key without its sent item"));
        };
        let flag = |name: &str| matches!(existing.get(name), Some(AttributeValue::Bool(true)));
        let record = |confirmed: bool| SentRecord {
            r#ref: r.clone(),
            confirmed,
            copy: flag("copy_wanted"),
            complete: flag("steps_done"),
        };
        match opt_s(&existing, "state").as_deref() {
            Some("sent") => Ok(SendClaim::Settled(record(true))),
            Some("unknown") => Ok(SendClaim::Settled(record(false))),
            _ => {
                let claimed = get_ts(&existing, "claimed_at")?;
                if claimed.is_some_and(|c| c > now - stale_after) {
                    return Ok(SendClaim::InProgress);
                }
                let why = "the sending request stopped without recording the answer";
                match self.send_key_unknown(org_id, mailbox, idem, why).await? {
                    true => Ok(SendClaim::Settled(record(false))),
                    // Settled or released meanwhile: the next retry reads which.
                    false => Ok(SendClaim::InProgress),
                }
            }
        }
    }

    /// Records how the send ended (one UpdateItem): accepted (with SES's id and whether the
    /// copy is wanted; whatever the claim says by now, since SES's answer is the fact) or
    /// unconfirmed (only over a claim still `sending`).
    async fn finish_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        outcome: &SendOutcome,
    ) -> Result<(), StoreError> {
        match outcome {
            SendOutcome::Accepted { provider_id, copy } => {
                let req = self
                    .update_item(key(org_pk(org_id), sendkey_sk(mailbox, idem)))
                    .update_expression("SET #st = :sent, ses_message_id = :m, copy_wanted = :c")
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":sent", s("sent"))
                    .expression_attribute_values(":m", s(provider_id))
                    .expression_attribute_values(":c", AttributeValue::Bool(*copy));
                self.update("UpdateItem send key sent", req)
                    .await
                    .map(|_| ())
            }
            SendOutcome::Unconfirmed { reason } => self
                .send_key_unknown(org_id, mailbox, idem, reason)
                .await
                .map(|_| ()),
        }
    }

    /// Marks what follows the send as done (one UpdateItem).
    async fn complete_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
    ) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), sendkey_sk(mailbox, idem)))
            .update_expression("SET steps_done = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true));
        self.update("UpdateItem send key complete", req)
            .await
            .map(|_| ())
    }

    /// Releases a claim whose send failed for good, so that the user may try again
    /// (DeleteItem if still `sending`; a claim already gone or sent is left as it is).
    async fn release_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
    ) -> Result<(), StoreError> {
        let req = self
            .delete_item(key(org_pk(org_id), sendkey_sk(mailbox, idem)))
            .condition_expression("#st = :sending")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"));
        self.delete_if("DeleteItem send key", req).await.map(|_| ())
    }

    /// Adds (or changes) a block rule (one PutItem).
    async fn put_block(
        &self,
        org_id: &str,
        mailbox: &str,
        target: &str,
        kind: BlockKind,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), block_sk(mailbox, target));
        item.insert("target".into(), s(target));
        item.insert("kind".into(), s(enum_str(&kind)));
        item.insert("created_at".into(), ts(now));
        self.put("PutItem", item).await
    }

    /// Removes a block rule (one DeleteItem; absent is fine).
    async fn delete_block(
        &self,
        org_id: &str,
        mailbox: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        self.delete(
            "DeleteItem block",
            key(org_pk(org_id), block_sk(mailbox, target)),
        )
        .await
    }

    /// A mailbox's block rules (one Query).
    async fn blocks(&self, org_id: &str, mailbox: &str) -> Result<Vec<BlockRule>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .all_with_prefix(org_id, &block_prefix(mailbox), "Query blocks")
            .await?
        {
            out.push(BlockRule {
                target: get_s(&item, "target")?.to_string(),
                kind: get_enum(&item, "kind")?.unwrap_or(BlockKind::Block),
                created_at: get_ts(&item, "created_at")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Records what a client was handed during the duplicate-resolution window (C3):
    /// `BatchWriteItem` of `HANDOUT#` items (25 a request; a repeat overwrites the same keys).
    async fn record_handouts(
        &self,
        org_id: &str,
        mailbox: &str,
        handed: &[(String, MessageRef)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(handed.len());
        for (message_id, r) in handed {
            let mut item = key(org_pk(org_id), handout_sk(mailbox, message_id));
            item.insert("message_id".into(), s(message_id));
            item.insert("ref".into(), s(r.encode()));
            item.insert("handed_at".into(), ts(now));
            expire(&mut item, now, MAIL_DAYS);
            requests.push(put_request(item)?);
        }
        self.batch_write(requests).await
    }

    /// The Message-IDs handed out to a mailbox's clients (one Query): (Message-ID, stable id, when).
    async fn handouts(
        &self,
        org_id: &str,
        mailbox: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .all_with_prefix(org_id, &handout_prefix(mailbox), "Query handouts")
            .await?
        {
            out.push((
                get_s(&item, "message_id")?.to_string(),
                opt_s(&item, "ref").unwrap_or_default(),
                get_ts(&item, "handed_at")?.unwrap_or_default(),
            ));
        }
        Ok(out)
    }
}

impl DynamoStore {
    /// Settles a send key still `sending` as `unknown` (one conditional UpdateItem): it may
    /// have been sent, so it never will be again. Whether this call settled it.
    async fn send_key_unknown(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), sendkey_sk(mailbox, idem)))
            .update_expression("SET #st = :unknown, unconfirmed_reason = :why")
            .condition_expression("#st = :sending")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":unknown", s("unknown"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":why", s(why));
        Ok(self
            .update_if("UpdateItem send key unknown", req)
            .await?
            .is_some())
    }
}
