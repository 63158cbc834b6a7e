//! DynamoDB adapter of the Online Inbox (U1-U8, C1-C3): pages, sent items, blocks, delegates,
//! the directory import, idempotent sends and the client hand-out record. Item layout and
//! access patterns in `TABLE.md`.
//!
//! Every key is built from the *authorised* mailbox (the handler checked it) and a
//! [`MessageRef`]: nothing a caller sends can name another mailbox's item.

use super::*;
use crate::domain::directory::Grant;
use crate::domain::directory::ImportOutcome;
use crate::domain::directory::MAX_GROUP_CHANGES;
use crate::domain::mail::{MessageKind, MessageSummary};
use crate::domain::mailbox::BlockRule;
use crate::domain::mailbox::Listed;
use crate::domain::mailbox::Page;
use crate::domain::mailbox::SendClaim;
use crate::domain::mailbox::{BlockKind, Folder, MessageRef};
use crate::ports::error::StoreError;
use crate::ports::store::DirectoryStore;
use crate::ports::store::MailboxStore;
use aws_sdk_dynamodb::types::{Delete, PutRequest, WriteRequest};
use chrono::DateTime;
use chrono::Utc;
use std::collections::HashSet;

/// Sort key of a delegate grant: `user` may act for `mailbox`.
pub fn delegate_sk(user: &str, mailbox: &str) -> String {
    format!(
        "DELEGATE#{}#{}",
        user.to_ascii_lowercase(),
        mailbox.to_ascii_lowercase()
    )
}
/// Sort key of a block rule of a mailbox.
pub fn block_sk(mailbox: &str, target: &str) -> String {
    format!("BLOCK#{mailbox}#{target}")
}
/// Sort key of a send's idempotency record.
pub fn sendkey_sk(mailbox: &str, key: &str) -> String {
    format!("SENDKEY#{mailbox}#{key}")
}
/// Sort key of a hand-out record (C3).
pub fn handout_sk(mailbox: &str, message_id: &str) -> String {
    format!("HANDOUT#{mailbox}#{message_id}")
}
/// Sort key of the directory import's record (U6).
pub const DIRSYNC_SK: &str = "DIRSYNC";
/// A Query's answer as a page of a mailbox: its readable items (an unreadable one is logged and
/// skipped), and the cursor after the last item DynamoDB looked at.
fn page_of(mailbox: &str, out: &aws_sdk_dynamodb::operation::query::QueryOutput) -> Page {
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
        .and_then(|k| k.get("sk"))
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| MessageRef::from_sort_key(mailbox, sk));
    Page { items, next }
}

fn strs(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}
fn get_strs(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|x| x.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}
fn opt_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}
fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Permanent(e.to_string())
}

/// Reads a filing (`MBX#`) or sent item (`SENT#`) of `mailbox`.
pub fn parse_listed(mailbox: &str, item: &Item) -> Result<Listed, StoreError> {
    let sk = get_s(item, "sk")?;
    let r = MessageRef::from_sort_key(mailbox, sk)
        .ok_or_else(|| corrupt(item, "not a message key of this mailbox"))?;
    let received_at = get_ts(item, "received_at")?
        .ok_or_else(|| corrupt(item, "attribute received_at missing"))?;
    let summary = MessageSummary {
        message_id: opt_s(item, "message_id").unwrap_or_default(),
        message_id_derived: false,
        from: opt_s(item, "from"),
        to: get_strs(item, "to"),
        to_count: get_n_or(item, "to_count", 0)?,
        cc: get_strs(item, "cc"),
        cc_count: get_n_or(item, "cc_count", 0)?,
        subject: opt_s(item, "subject"),
        date: get_ts(item, "date")?,
        size: get_n_or(item, "size", 0)?,
        attachments: get_strs(item, "attachments"),
        kind: get_enum(item, "kind")?.unwrap_or(MessageKind::Message),
    };
    Ok(Listed {
        r#ref: r,
        summary,
        raw_key: get_s(item, "raw_key")?.to_string(),
        received_at,
    })
}

impl DynamoStore {
    /// Which of `mailboxes` block mail from `candidates` (the sender's address and domains):
    /// one BatchGetItem (the inbound path's one extra read per message, U4).
    pub async fn blocking_mailboxes(
        &self,
        org_id: &str,
        mailboxes: &[String],
        candidates: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        if candidates.is_empty() || mailboxes.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<Item> = mailboxes
            .iter()
            .flat_map(|m| {
                candidates
                    .iter()
                    .map(move |c| key(org_pk(org_id), block_sk(m, c)))
            })
            .collect();
        let mut out = HashSet::new();
        for item in self.batch_get("BatchGetItem blocks", keys, false).await? {
            let sk = get_s(&item, "sk")?;
            if let Some(m) = mailboxes
                .iter()
                .find(|m| sk.starts_with(&format!("BLOCK#{m}#")))
            {
                out.insert(m.clone());
            }
        }
        Ok(out)
    }

    async fn delete(&self, pk: String, sk: String, op: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }

    /// Every item of the organisation whose sort key begins with `prefix` (one Query, paged at 1 MB).
    async fn query_prefix(
        &self,
        org_id: &str,
        prefix: &str,
        op: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":p", s(prefix))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify(op, e))?;
            self.metrics.read_request(page.consumed_capacity.as_slice());
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
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
        let lo = format!(
            "{}#{mailbox}#{:013}",
            folder.prefix(),
            since.timestamp_millis().max(0)
        );
        let hi = format!("{}#{mailbox}#~", folder.prefix());
        let start = match before {
            Some(r) if r.folder == folder => {
                let sk = r.sort_key(mailbox);
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
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query mailbox page", e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
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
        let lo = format!("MBX#{mailbox}#{:013}", since.timestamp_millis().max(0));
        let hi = format!("MBX#{mailbox}#~");
        let start = after
            .filter(|r| r.folder == Folder::Inbox)
            .map(|r| r.sort_key(mailbox))
            .filter(|sk| *sk >= lo)
            .map(|sk| key(org_pk(org_id), sk));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(true)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query inbox since", e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
        Ok(page_of(mailbox, &out))
    }

    /// One message of a mailbox (one GetItem); `None` when the mailbox has no such message.
    async fn mailbox_message(
        &self,
        org_id: &str,
        mailbox: &str,
        r: &MessageRef,
    ) -> Result<Option<Listed>, StoreError> {
        match self.get(org_pk(org_id), &r.sort_key(mailbox)).await? {
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
    ) -> Result<(), StoreError> {
        let item = super::mail::listed_item(
            key(org_pk(org_id), r.sort_key(mailbox)),
            mailbox,
            &r.id,
            summary,
            raw_key,
            at,
        );
        self.put_raw(item).await
    }

    /// Claims an idempotency key for one send (conditional PutItem); a claim older than
    /// `stale_after` that never finished is taken over (its send failed or was cut off).
    async fn claim_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        r: &MessageRef,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<SendClaim, StoreError> {
        let mut item = key(org_pk(org_id), sendkey_sk(mailbox, idem));
        item.insert("state".into(), s("sending"));
        item.insert("ref".into(), s(r.encode()));
        item.insert("claimed_at".into(), ts(now));
        item.insert(TTL_ATTR.into(), expiry(now, MAIL_DAYS));
        let stale = (now - stale_after).to_rfc3339_opts(SecondsFormat::Millis, true);
        if self
            .put_if(
                "PutItem send key",
                item,
                "attribute_not_exists(pk) OR (#st = :sending AND claimed_at < :stale)",
                &[("#st", "state")],
                vec![(":sending", s("sending")), (":stale", s(stale))],
            )
            .await?
        {
            return Ok(SendClaim::Claimed);
        }
        let Some(existing) = self.get(org_pk(org_id), &sendkey_sk(mailbox, idem)).await? else {
            return Ok(SendClaim::InProgress);
        };
        match (
            opt_s(&existing, "state").as_deref(),
            opt_s(&existing, "ref").and_then(|x| MessageRef::parse(&x)),
        ) {
            (Some("sent"), Some(r)) => Ok(SendClaim::Sent(r)),
            _ => Ok(SendClaim::InProgress),
        }
    }

    /// Marks a send done (UpdateItem).
    async fn finish_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
        ses_message_id: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), sendkey_sk(mailbox, idem))))
            .update_expression("SET #st = :sent, ses_message_id = :m")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":m", s(ses_message_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("UpdateItem send key", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }

    /// Releases a claim whose send failed for good, so that the user may try again.
    async fn release_send_key(
        &self,
        org_id: &str,
        mailbox: &str,
        idem: &str,
    ) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), sendkey_sk(mailbox, idem))))
            .condition_expression("#st = :sending")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"))
            .send()
            .await;
        self.metrics.request(&[]);
        match out.map_err(|e| classify("DeleteItem send key", e)) {
            Ok(_) | Err(StoreError::ConditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
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
        self.put_raw(item).await
    }

    /// Removes a block rule (one DeleteItem; absent is fine).
    async fn delete_block(
        &self,
        org_id: &str,
        mailbox: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        self.delete(
            org_pk(org_id),
            block_sk(mailbox, target),
            "DeleteItem block",
        )
        .await
    }

    /// A mailbox's block rules (one Query).
    async fn blocks(&self, org_id: &str, mailbox: &str) -> Result<Vec<BlockRule>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .query_prefix(org_id, &format!("BLOCK#{mailbox}#"), "Query blocks")
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
            item.insert(TTL_ATTR.into(), expiry(now, MAIL_DAYS));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(build_err)?;
            requests.push(WriteRequest::builder().put_request(put).build());
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
            .query_prefix(org_id, &format!("HANDOUT#{mailbox}#"), "Query handouts")
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

#[async_trait]
impl DirectoryStore for DynamoStore {
    /// Grants `user` access to `mailbox` (one PutItem; a repeat changes nothing that matters).
    async fn grant_delegate(&self, org_id: &str, g: &Grant) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), delegate_sk(&g.user, &g.mailbox));
        item.insert("user".into(), s(g.user.to_ascii_lowercase()));
        item.insert("mailbox".into(), s(g.mailbox.to_ascii_lowercase()));
        item.insert("granted_by".into(), s(&g.granted_by));
        item.insert("granted_at".into(), ts(g.granted_at));
        self.put_raw(item).await
    }

    /// Revokes a grant (one DeleteItem; absent is fine).
    async fn revoke_delegate(
        &self,
        org_id: &str,
        user: &str,
        mailbox: &str,
    ) -> Result<(), StoreError> {
        self.delete(
            org_pk(org_id),
            delegate_sk(user, mailbox),
            "DeleteItem delegate",
        )
        .await
    }

    /// Whether `user` may act for `mailbox` (one consistent GetItem).
    async fn is_delegate(
        &self,
        org_id: &str,
        user: &str,
        mailbox: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .get(org_pk(org_id), &delegate_sk(user, mailbox))
            .await?
            .is_some())
    }

    /// The grants of one user (`Some`) or of the whole organisation (one Query).
    async fn delegates(&self, org_id: &str, user: Option<&str>) -> Result<Vec<Grant>, StoreError> {
        let prefix = match user {
            Some(u) => format!("DELEGATE#{}#", u.to_ascii_lowercase()),
            None => "DELEGATE#".to_string(),
        };
        let mut out = Vec::new();
        for item in self
            .query_prefix(org_id, &prefix, "Query delegates")
            .await?
        {
            out.push(Grant {
                user: get_s(&item, "user")?.to_string(),
                mailbox: get_s(&item, "mailbox")?.to_string(),
                granted_by: opt_s(&item, "granted_by").unwrap_or_default(),
                granted_at: get_ts(&item, "granted_at")?.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Replaces every distribution list with `groups` and records the import's time: one Query
    /// of the current lists' keys, then one TransactWriteItems (puts, deletes of lists no longer
    /// present, the `DIRSYNC` record): all or nothing.
    async fn replace_groups(
        &self,
        org_id: &str,
        groups: &[(String, Vec<String>)],
        synced_at: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError> {
        let current = self.query_prefix(org_id, "GROUP#", "Query groups").await?;
        let new: HashSet<String> = groups.iter().map(|(a, _)| group_sk(a)).collect();
        let removed: Vec<String> = current
            .iter()
            .filter_map(|i| opt_s(i, "sk"))
            .filter(|sk| !new.contains(sk))
            .collect();
        let changes = groups.len() + removed.len();
        if changes > MAX_GROUP_CHANGES {
            return Ok(ImportOutcome::TooLarge { changes });
        }
        let mut items = Vec::with_capacity(changes + 1);
        for (address, members) in groups {
            let mut item = key(org_pk(org_id), group_sk(address));
            item.insert("address".into(), s(address.to_ascii_lowercase()));
            item.insert("members".into(), strs(members));
            item.insert("synced_at".into(), ts(synced_at));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for sk in &removed {
            let del = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(org_pk(org_id), sk.clone())))
                .build()
                .map_err(build_err)?;
            items.push(TransactWriteItem::builder().delete(del).build());
        }
        let mut record = key(org_pk(org_id), DIRSYNC_SK);
        record.insert("synced_at".into(), ts(synced_at));
        record.insert("groups".into(), n(groups.len()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .build()
            .map_err(build_err)?;
        items.push(TransactWriteItem::builder().put(put).build());
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("TransactWriteItems groups", e))?;
        self.metrics.request(out.consumed_capacity());
        Ok(ImportOutcome::Replaced {
            groups: groups.len(),
            removed: removed.len(),
        })
    }

    /// The distribution lists (one Query) and the last import's time (one GetItem).
    async fn groups(
        &self,
        org_id: &str,
    ) -> Result<(Vec<(String, Vec<String>)>, Option<DateTime<Utc>>), StoreError> {
        let mut out = Vec::new();
        for item in self.query_prefix(org_id, "GROUP#", "Query groups").await? {
            out.push((
                get_s(&item, "address")?.to_string(),
                get_strs(&item, "members"),
            ));
        }
        Ok((out, self.directory_synced_at(org_id).await?))
    }

    /// When the directory was last imported (one GetItem).
    async fn directory_synced_at(&self, org_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.get(org_pk(org_id), DIRSYNC_SK).await? {
            Some(item) => get_ts(&item, "synced_at"),
            None => Ok(None),
        }
    }
}
