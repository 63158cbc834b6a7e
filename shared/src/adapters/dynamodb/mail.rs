//! DynamoDB adapter of the inbound path and the queue (Q2-Q6, U6): domain ownership, mailbox
//! filings, distribution lists, the once-per-SES-message record, queued messages, the queue
//! count and the sparse "due" marker. Item layout in `TABLE.md`.

use super::*;
use crate::domain::mail::MessageSummary;
use crate::domain::mailbox::Filing;
use crate::domain::queue::AcceptOutcome;
use crate::domain::queue::Departure;
use crate::domain::queue::DueOrg;
use crate::domain::queue::QueueState;
use crate::domain::queue::QueuedMessage;
use crate::ports::error::StoreError;
use crate::ports::store::DomainOwners;
use crate::ports::store::MailStore;
use crate::ports::store::QueueStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, PutRequest, ReturnValue, WriteRequest};
use chrono::DateTime;
use chrono::Utc;

/// Partition value of `gsi1` for organisations whose queue needs a look (on `QUEUESTAT`).
pub const QUEUED: &str = "QUEUED";
/// Filings and the once-per-message record are kept this long (U1: 30 days).
pub const MAIL_DAYS: i64 = 30;

pub fn domain_pk(domain: &str) -> String {
    format!("DOMAIN#{}", domain.to_ascii_lowercase())
}
pub const DOMAIN_SK: &str = "DOMAIN";
/// Sort key of a message filed in a mailbox: newest last within the mailbox.
pub fn mailbox_sk(mailbox: &str, received_at: DateTime<Utc>, ses_id: &str) -> String {
    format!(
        "MBX#{mailbox}#{:013}#{ses_id}",
        received_at.timestamp_millis().max(0)
    )
}
/// Sort key of the once-per-SES-message record.
pub fn inmsg_sk(ses_id: &str) -> String {
    format!("INMSG#{ses_id}")
}
/// Sort key of a distribution list.
pub fn group_sk(address: &str) -> String {
    format!("GROUP#{}", address.to_ascii_lowercase())
}
/// The due marker: wake time (13-digit epoch ms), then the organisation.
pub fn wake_key(wake: DateTime<Utc>, org_id: &str) -> String {
    format!("{:013}#{org_id}", wake.timestamp_millis().max(0))
}

pub(super) fn strings(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}
pub(super) fn get_strings(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|x| x.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

/// Cancellation reason codes of a failed transaction (`None`: not a cancellation).
fn cancellation_codes(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        impl std::fmt::Debug,
    >,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

impl DynamoStore {
    /// Stores a distribution list's members (the directory import API's write; U6).
    pub async fn put_group(
        &self,
        org_id: &str,
        address: &str,
        members: &[String],
        synced_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), group_sk(address));
        item.insert("address".into(), s(address.to_ascii_lowercase()));
        item.insert("members".into(), strings(members));
        item.insert("synced_at".into(), ts(synced_at));
        self.put_raw(item).await
    }

    /// The mailbox filings of one mailbox, oldest first (one Query; the Online Inbox reads it
    /// newest first).
    pub async fn mailbox(
        &self,
        org_id: &str,
        mailbox: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":p", s(format!("MBX#{mailbox}#")))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("Query mailbox", e))?;
            self.metrics.read_request(&[]);
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// The once-per-SES-message record's state (`queued`, `delivered`, `bounced`), if any.
    pub async fn message_state(
        &self,
        org_id: &str,
        ses_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(org_pk(org_id), &inmsg_sk(ses_id))
            .await?
            .and_then(|i| i.get("state").and_then(|v| v.as_s().ok()).cloned()))
    }

    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..10u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                self.metrics.request(out.consumed_capacity());
                match out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.is_empty() => {
                        pending = rest;
                        tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6)))
                            .await;
                    }
                    _ => {
                        pending.clear();
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Transient(
                    "BatchWriteItem: items left unprocessed after 10 attempts".into(),
                ));
            }
        }
        Ok(())
    }

    /// Writes the domain ownership items of a configuration and removes those of domains it
    /// no longer lists (part of `put_config`, in the same transaction as the configuration).
    pub(super) fn domain_writes(
        &self,
        config: &OrgConfig,
        previous: Option<&OrgConfig>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::new();
        let org = &config.org_id;
        for d in &config.domains {
            let mut item = key(domain_pk(d), DOMAIN_SK);
            item.insert("org_id".into(), s(org));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR org_id = :org")
                .expression_attribute_values(":org", s(org))
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(prev) = previous {
            for d in prev
                .domains
                .iter()
                .filter(|d| !config.domains.iter().any(|n| n.eq_ignore_ascii_case(d)))
            {
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(domain_pk(d), DOMAIN_SK)))
                    .condition_expression("attribute_not_exists(pk) OR org_id = :org")
                    .expression_attribute_values(":org", s(org))
                    .build()
                    .map_err(|e| StoreError::Permanent(e.to_string()))?;
                items.push(TransactWriteItem::builder().delete(del).build());
            }
        }
        Ok(items)
    }

    fn queued_item(&self, m: &QueuedMessage) -> Item {
        let mut item = key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id));
        item.insert("id".into(), s(&m.id));
        item.insert("enqueued_at".into(), ts(m.enqueued_at));
        item.insert("raw_key".into(), s(&m.raw_key));
        item.insert("sender".into(), s(&m.sender));
        item.insert("recipients".into(), strings(&m.recipients));
        item.insert("attempts".into(), n(m.attempts));
        if let Some(e) = &m.last_error {
            item.insert("last_error".into(), s(e));
        }
        item.insert("not_before".into(), ts(m.not_before));
        item.insert("message_id".into(), s(&m.message_id));
        if let Some(sub) = &m.subject {
            item.insert("subject".into(), s(sub));
        }
        item.insert("size".into(), n(m.size));
        item
    }
}

fn parse_queued(org_id: &str, item: &Item) -> Result<QueuedMessage, StoreError> {
    Ok(QueuedMessage {
        org_id: org_id.to_string(),
        id: get_s(item, "id")?.to_string(),
        enqueued_at: get_ts(item, "enqueued_at")?
            .ok_or_else(|| corrupt(item, "attribute enqueued_at missing"))?,
        raw_key: get_s(item, "raw_key")?.to_string(),
        sender: item
            .get("sender")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        recipients: get_strings(item, "recipients"),
        attempts: get_n_or(item, "attempts", 0)?,
        last_error: item.get("last_error").and_then(|v| v.as_s().ok()).cloned(),
        not_before: get_ts(item, "not_before")?
            .ok_or_else(|| corrupt(item, "attribute not_before missing"))?,
        message_id: item
            .get("message_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        subject: item.get("subject").and_then(|v| v.as_s().ok()).cloned(),
        size: get_n_or(item, "size", 0)?,
    })
}

fn filing_item(f: &Filing<'_>, mailbox: &str) -> Item {
    let item = key(
        org_pk(f.org_id),
        mailbox_sk(mailbox, f.received_at, f.ses_id),
    );
    listed_item(item, mailbox, f.ses_id, f.summary, f.raw_key, f.received_at)
}

/// A message as a mailbox lists it (Online Inbox filings and Sent Items alike): the summary's
/// attributes, the raw message's key, and the 30-day TTL, on the item `item` (its key set).
pub(super) fn listed_item(
    mut item: Item,
    mailbox: &str,
    id: &str,
    sum: &MessageSummary,
    raw_key: &str,
    at: DateTime<Utc>,
) -> Item {
    item.insert("mailbox".into(), s(mailbox));
    item.insert("ses_id".into(), s(id));
    item.insert("message_id".into(), s(&sum.message_id));
    if let Some(from) = &sum.from {
        item.insert("from".into(), s(from));
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
    item.insert(TTL_ATTR.into(), expiry(at, MAIL_DAYS));
    item
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

    /// One `BatchGetItem` of `BLOCK#{mailbox}#{target}` items (U4).
    async fn blocked_mailboxes(
        &self,
        org_id: &str,
        mailboxes: &[String],
        sender: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let candidates = crate::domain::mailbox::block_candidates(sender);
        self.blocking_mailboxes(org_id, mailboxes, &candidates)
            .await
    }

    /// `BatchWriteItem` of one item per mailbox (25 a request), keys derived from the SES id.
    async fn file_message(
        &self,
        filing: &Filing<'_>,
        mailboxes: &[String],
    ) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(mailboxes.len());
        for m in mailboxes {
            let put = PutRequest::builder()
                .set_item(Some(filing_item(filing, m)))
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    /// One `TransactWriteItems`: `Put INMSG#{id}` if new + `Put QUEUE#..` + `Update QUEUESTAT`
    /// (`ADD count 1`, due marker if none).
    async fn accept_message(
        &self,
        m: &QueuedMessage,
        wake: DateTime<Utc>,
    ) -> Result<AcceptOutcome, StoreError> {
        let pk = org_pk(&m.org_id);
        let mut record = key(pk.clone(), inmsg_sk(&m.id));
        record.insert("state".into(), s("queued"));
        record.insert("received_at".into(), ts(m.enqueued_at));
        record.insert("queue_sk".into(), s(queue_sk(m.enqueued_at, &m.id)));
        record.insert(TTL_ATTR.into(), expiry(m.enqueued_at, MAIL_DAYS));
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Permanent(e.to_string());
        let claim = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let queued = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.queued_item(m)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let stat = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, QUEUESTAT_SK)))
            .update_expression("ADD #c :one SET gsi1pk = :q, gsi1sk = if_not_exists(gsi1sk, :w)")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":q", s(QUEUED))
            .expression_attribute_values(":w", s(wake_key(wake, &m.org_id)))
            .build()
            .map_err(build)?;
        for attempt in 0..6u32 {
            let res = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(claim.clone()).build())
                .transact_items(TransactWriteItem::builder().put(queued.clone()).build())
                .transact_items(TransactWriteItem::builder().update(stat.clone()).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match res {
                Ok(out) => {
                    self.metrics.request(out.consumed_capacity());
                    return Ok(AcceptOutcome::Accepted);
                }
                Err(err) => {
                    self.metrics.request(&[]);
                    match cancellation_codes(&err) {
                        Some(c)
                            if c.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
                        {
                            return Ok(AcceptOutcome::Duplicate)
                        }
                        // A concurrent twin holds the same items: try again; it will have won.
                        Some(c) if c.iter().any(|x| x == "TransactionConflict") => {
                            tokio::time::sleep(std::time::Duration::from_millis(
                                25 << attempt.min(4),
                            ))
                            .await;
                        }
                        _ => return Err(classify("TransactWriteItems accept", err)),
                    }
                }
            }
        }
        Err(StoreError::Transient(format!(
            "accepting {} for {}: transaction conflicts persisted",
            m.id, m.org_id
        )))
    }
}

#[async_trait]
impl QueueStore for DynamoStore {
    /// `Query gsi1: gsi1pk = QUEUED AND gsi1sk < {now+1 ms}` (only organisations with a queue).
    async fn due_orgs(&self, now: DateTime<Utc>) -> Result<Vec<DueOrg>, StoreError> {
        let upper = format!("{:013}", now.timestamp_millis().max(0) + 1);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :q AND gsi1sk < :u")
                .expression_attribute_values(":q", s(QUEUED))
                .expression_attribute_values(":u", s(upper.clone()))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("Query gsi1 queued", e))?;
            self.metrics.read_request(page.consumed_capacity.as_slice());
            for item in page.items() {
                let marker = get_s(item, "gsi1sk")?.to_string();
                let org_id = get_s(item, "pk")?.trim_start_matches("ORG#").to_string();
                out.push(DueOrg { org_id, marker });
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// `UpdateItem QUEUESTAT SET gsi1sk = lease` if `gsi1sk` is still the marker read.
    async fn claim_org(
        &self,
        due: &DueOrg,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueueState>, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(&due.org_id), QUEUESTAT_SK)))
            .update_expression("SET gsi1sk = :lease")
            .condition_expression("gsi1sk = :seen")
            .expression_attribute_values(":lease", s(wake_key(lease_until, &due.org_id)))
            .expression_attribute_values(":seen", s(&due.marker))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(Some(match &out.attributes {
                    Some(a) => QueueState {
                        failures: get_n_or(a, "failures", 0u32)?,
                        paused_at: get_ts(a, "paused_at")?,
                    },
                    None => QueueState::default(),
                }))
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify("UpdateItem claim queue", e) {
                    StoreError::ConditionFailed(_) => Ok(None),
                    other => Err(other),
                }
            }
        }
    }

    /// `Query pk = ORG#{org} AND begins_with(sk, QUEUE#)`, `Limit`, consistent.
    async fn oldest(&self, org_id: &str, limit: usize) -> Result<Vec<QueuedMessage>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :q)")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":q", s(QUEUE_PREFIX))
            .limit(limit.clamp(1, 1000) as i32)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query queue", e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
        out.items()
            .iter()
            .map(|i| parse_queued(org_id, i))
            .collect()
    }

    /// One `TransactWriteItems`: `Delete QUEUE#..` if present + `ADD count -1` + the record's state.
    async fn dequeue(
        &self,
        m: &QueuedMessage,
        why: Departure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let pk = org_pk(&m.org_id);
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Permanent(e.to_string());
        let del = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), queue_sk(m.enqueued_at, &m.id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build)?;
        let stat = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), QUEUESTAT_SK)))
            .update_expression("ADD #c :minus")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":minus", n(-1))
            .build()
            .map_err(build)?;
        let record = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, inmsg_sk(&m.id))))
            .update_expression("SET #s = :s, done_at = :t")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":s", s(enum_str(&why)))
            .expression_attribute_values(":t", ts(now))
            .build()
            .map_err(build)?;
        for attempt in 0..6u32 {
            let res = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(del.clone()).build())
                .transact_items(TransactWriteItem::builder().update(stat.clone()).build())
                .transact_items(TransactWriteItem::builder().update(record.clone()).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match res {
                Ok(out) => {
                    self.metrics.request(out.consumed_capacity());
                    return Ok(());
                }
                Err(err) => {
                    self.metrics.request(&[]);
                    match cancellation_codes(&err) {
                        // Already gone: another run dequeued it.
                        Some(c)
                            if c.first().map(String::as_str) == Some("ConditionalCheckFailed") =>
                        {
                            return Ok(())
                        }
                        Some(c) if c.iter().any(|x| x == "TransactionConflict") => {
                            tokio::time::sleep(std::time::Duration::from_millis(
                                25 << attempt.min(4),
                            ))
                            .await;
                        }
                        _ => return Err(classify("TransactWriteItems dequeue", err)),
                    }
                }
            }
        }
        Err(StoreError::Transient(format!(
            "dequeuing {} for {}: transaction conflicts persisted",
            m.id, m.org_id
        )))
    }

    /// `UpdateItem QUEUE#..` if present.
    async fn set_raw_key(&self, m: &QueuedMessage, raw_key: &str) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id))))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET raw_key = :k")
            .expression_attribute_values(":k", s(raw_key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        // A message no longer queued (another run took it out) has nothing to update.
        self.update_if("UpdateItem raw_key", req).await.map(|_| ())
    }

    async fn requeue(&self, m: &QueuedMessage) -> Result<(), StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":r", strings(&m.recipients))
            .expression_attribute_values(":a", n(m.attempts))
            .expression_attribute_values(":nb", ts(m.not_before))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        req = match &m.last_error {
            Some(e) => req
                .update_expression(
                    "SET recipients = :r, attempts = :a, not_before = :nb, last_error = :e",
                )
                .expression_attribute_values(":e", s(e)),
            None => req.update_expression("SET recipients = :r, attempts = :a, not_before = :nb"),
        };
        // A message no longer queued (another run took it out) has nothing to update.
        self.update_if("UpdateItem requeue", req).await.map(|_| ())
    }

    async fn set_wake(
        &self,
        org_id: &str,
        wake: DateTime<Utc>,
        failures: u32,
        paused_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), QUEUESTAT_SK)))
            .expression_attribute_values(":q", s(QUEUED))
            .expression_attribute_values(":w", s(wake_key(wake, org_id)))
            .expression_attribute_values(":f", n(failures))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let req = match paused_at {
            Some(p) => req
                .update_expression("SET gsi1pk = :q, gsi1sk = :w, failures = :f, paused_at = :p")
                .expression_attribute_values(":p", ts(p)),
            None => req.update_expression("SET gsi1pk = :q, gsi1sk = :w, failures = :f"),
        };
        let out = req
            .send()
            .await
            .map_err(|e| classify("UpdateItem queue wake", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }

    /// `UpdateItem QUEUESTAT REMOVE gsi1pk, gsi1sk` if `count <= 0`; else [`Self::set_wake`].
    async fn settle_idle(&self, org_id: &str, fallback: DateTime<Utc>) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), QUEUESTAT_SK)))
            .update_expression("REMOVE gsi1pk, gsi1sk SET failures = :z")
            .condition_expression("attribute_not_exists(#c) OR #c <= :z")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":z", n(0))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(())
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify("UpdateItem queue idle", e) {
                    StoreError::ConditionFailed(_) => {
                        self.set_wake(org_id, fallback, 0, None).await
                    }
                    other => Err(other),
                }
            }
        }
    }
}

#[async_trait]
impl DomainOwners for DynamoStore {
    /// One `BatchGetItem` of `DOMAIN#{d}` items.
    async fn orgs_for_domains(
        &self,
        domains: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut wanted: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        wanted.sort();
        wanted.dedup();
        let keys = wanted
            .iter()
            .map(|d| key(domain_pk(d), DOMAIN_SK))
            .collect();
        let mut out = HashMap::new();
        for item in self.batch_get("BatchGetItem domains", keys, false).await? {
            let d = get_s(&item, "pk")?
                .trim_start_matches("DOMAIN#")
                .to_string();
            out.insert(d, get_s(&item, "org_id")?.to_string());
        }
        Ok(out)
    }
}
