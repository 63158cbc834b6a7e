//! What the inbound path writes and reads per message (`TABLE.md`, "Inbound mail and the
//! queue" and the `MBX#` filings of "The Online Inbox"): [`MailStore`] (the organisation's
//! configuration, distribution lists, blocked mailboxes, the filings, and taking a message once
//! into the queue: Q2-Q6, U4, U6); and the reads tests call directly (`mailbox`,
//! `message_state`).

use super::batch::put_request;
use super::codec::{expire, get_n_or, get_s, get_strings, key, n, opt_s, s, ts, Item};
use super::keys::{
    block_prefix, block_sk, folder_prefix, group_sk, inmsg_sk, message_sk, org_pk, queue_sk,
    wake_key, MAIL_DAYS, QUEUED, QUEUESTAT_SK, SK,
};
use super::mailbox::{index_unread, listed_item};
use super::queue::queued_item;
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::config::OrgConfig;
use crate::domain::continuity::AuditRecord;
use crate::domain::mailbox::{block_candidates, Filing, Folder, MessageRef};
use crate::domain::queue::{AcceptOutcome, QueuedMessage, SetAside, MAX_PARTS};
use crate::ports::error::StoreError;
use crate::ports::store::{ConfigStore, MailStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, Update};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// The `MBX#` item of a message filed in `mailbox` (keys derived from the SES id: a repeat
/// overwrites the same item), filed unread (in its folder's unread index).
fn filing_item(f: &Filing<'_>, mailbox: &str) -> Item {
    let r = MessageRef::new(f.folder, f.received_at, f.ses_id);
    let mut item = key(org_pk(f.org_id), message_sk(mailbox, &r));
    index_unread(&mut item, f.org_id, mailbox, &r);
    listed_item(item, mailbox, f.ses_id, f.summary, f.raw_key, f.received_at)
}

/// The `INMSG#` record of a message taken into the queue (Q6) as `parts` queue items, from its
/// first part (whose id is the SES id).
fn inmsg_item(m: &QueuedMessage, parts: usize) -> Item {
    let mut record = key(org_pk(&m.org_id), inmsg_sk(&m.id));
    record.insert("state".into(), s("queued"));
    record.insert("parts_left".into(), n(parts));
    record.insert("received_at".into(), ts(m.enqueued_at));
    record.insert("queue_sk".into(), s(queue_sk(m.enqueued_at, &m.id)));
    expire(&mut record, m.enqueued_at, MAIL_DAYS);
    record
}

impl DynamoStore {
    /// The mailbox filings of one mailbox, oldest first (one consistent Query, every page; the
    /// Online Inbox reads pages newest first).
    pub async fn mailbox(
        &self,
        org_id: &str,
        mailbox: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let prefix = folder_prefix(Folder::Inbox, mailbox);
        self.all_with_prefix(org_id, &prefix, "Query mailbox").await
    }

    /// The once-per-SES-message record's state (`queued`, `delivered`, `bounced`), if any:
    /// `queued` while any of its parts is.
    pub async fn message_state(
        &self,
        org_id: &str,
        ses_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(item) = self.get(org_pk(org_id), &inmsg_sk(ses_id)).await? else {
            return Ok(None);
        };
        if get_n_or::<i64>(&item, "parts_left", 0)? > 0 {
            return Ok(Some("queued".into()));
        }
        Ok(opt_s(&item, "state"))
    }
}

#[async_trait]
impl MailStore for DynamoStore {
    async fn org_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError> {
        self.get_config(org_id).await
    }

    /// One `BatchGetItem` of `GROUP#{address}` items (100 a request).
    async fn group_members(
        &self,
        org_id: &str,
        addresses: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut wanted: Vec<String> = addresses.iter().map(|a| a.to_ascii_lowercase()).collect();
        wanted.sort();
        wanted.dedup();
        let keys = wanted
            .iter()
            .map(|a| key(org_pk(org_id), group_sk(a)))
            .collect();
        let mut out = HashMap::new();
        for item in self.batch_get("BatchGetItem groups", keys, false).await? {
            out.insert(
                get_s(&item, "address")?.to_string(),
                get_strings(&item, "members"),
            );
        }
        Ok(out)
    }

    /// Which of `mailboxes` block mail from `sender` (its address, domain and parent domains):
    /// one `BatchGetItem` of `BLOCK#{mailbox}#{target}` items (U4: the inbound path's one extra
    /// read per message).
    async fn blocked_mailboxes(
        &self,
        org_id: &str,
        mailboxes: &[String],
        sender: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let candidates = block_candidates(sender);
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
            let sk = get_s(&item, SK)?;
            if let Some(m) = mailboxes.iter().find(|m| sk.starts_with(&block_prefix(m))) {
                out.insert(m.clone());
            }
        }
        Ok(out)
    }

    /// `BatchWriteItem` of one item per mailbox (25 a request), keys derived from the SES id.
    async fn file_message(
        &self,
        filing: &Filing<'_>,
        mailboxes: &[String],
    ) -> Result<(), StoreError> {
        let requests = mailboxes
            .iter()
            .map(|m| put_request(filing_item(filing, m)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// `UpdateItem INMSG#{id} SET filed_at` (only if the record exists).
    async fn mark_filed(
        &self,
        org_id: &str,
        ses_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), inmsg_sk(ses_id)))
            .update_expression("SET filed_at = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", ts(at));
        self.update("UpdateItem filed", req).await.map(|_| ())
    }

    /// One consistent `GetItem INMSG#{id}` (the repeated-event path only).
    async fn filed(&self, org_id: &str, ses_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(org_pk(org_id), &inmsg_sk(ses_id))
            .await?
            .is_some_and(|i| i.contains_key("filed_at")))
    }

    /// One `TransactWriteItems`: `Put INMSG#{id}` if new + `Put QUEUE#..` per part +
    /// `Update QUEUESTAT` (`ADD count {parts}`, due marker if none): at most 100 items.
    async fn accept_message(
        &self,
        parts: &[QueuedMessage],
        wake: DateTime<Utc>,
    ) -> Result<AcceptOutcome, StoreError> {
        let Some(first) = parts.first() else {
            return Err(StoreError::Permanent("a message without parts".into()));
        };
        if parts.len() > MAX_PARTS {
            return Err(StoreError::Permanent(format!(
                "{} parts: one transaction takes {MAX_PARTS}",
                parts.len()
            )));
        }
        let mut items = vec![self.tx_put(
            Put::builder()
                .set_item(Some(inmsg_item(first, parts.len())))
                .condition_expression("attribute_not_exists(pk)"),
        )?];
        for m in parts {
            items.push(
                self.tx_put(
                    Put::builder()
                        .set_item(Some(queued_item(m)))
                        .condition_expression("attribute_not_exists(pk)"),
                )?,
            );
        }
        items.push(
            self.tx_update(
                Update::builder()
                    .set_key(Some(key(org_pk(&first.org_id), QUEUESTAT_SK)))
                    .update_expression(
                        "ADD #c :k SET gsi1pk = :q, gsi1sk = if_not_exists(gsi1sk, :w)",
                    )
                    .expression_attribute_names("#c", "count")
                    .expression_attribute_values(":k", n(parts.len()))
                    .expression_attribute_values(":q", s(QUEUED))
                    .expression_attribute_values(":w", s(wake_key(wake, &first.org_id))),
            )?,
        );
        // A concurrent twin holding the same items is retried by `transact`; it will have won.
        match self.transact("TransactWriteItems accept", items).await? {
            Transacted::Written => Ok(AcceptOutcome::Accepted),
            Transacted::Refused(c) if c.failed(0) => Ok(AcceptOutcome::Duplicate),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// One transaction: `Put INMSG#{id}` if new + `Put ASIDE#..` + `Put AUDIT#..`.
    async fn quarantine(
        &self,
        record: &SetAside,
        audit: &AuditRecord,
    ) -> Result<AcceptOutcome, StoreError> {
        self.quarantine_message(record, audit).await
    }
}
