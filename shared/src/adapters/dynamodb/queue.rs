//! The queue's items (`TABLE.md`, "Inbound mail and the queue": `QUEUESTAT` and its `QUEUED`
//! due marker, `QUEUE#`, and the state of `INMSG#` when a message leaves): [`QueueStore`] (due
//! organisations, the claim of one for a run, the oldest messages, leaving the queue, backoff);
//! and the queued message's item, which the inbound path writes (`mail.rs`).

use super::codec::{
    corrupt, enum_str, get_n_or, get_s, get_strings, get_ts, key, n, opt_s, s, strings, ts, Item,
};
use super::keys::{
    due_before, inmsg_sk, org_of, org_pk, queue_sk, wake_key, GSI1, GSI1SK, PK, QUEUED,
    QUEUESTAT_SK, QUEUE_PREFIX,
};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::AuditRecord;
use crate::domain::item_budget::{cap, MAX_NOTE_BYTES};
use crate::domain::queue::{Departure, DueOrg, QueueState, QueuedMessage, SetAside};
use crate::domain::verdicts::Origin;
use crate::ports::error::StoreError;
use crate::ports::store::QueueStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, ReturnValue, Update};
use chrono::{DateTime, Utc};

/// The `QUEUE#` item of a queued message.
pub(super) fn queued_item(m: &QueuedMessage) -> Item {
    let mut item = key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id));
    item.insert("id".into(), s(&m.id));
    if let Some(whole) = &m.part_of {
        item.insert("part_of".into(), s(whole));
    }
    item.insert("enqueued_at".into(), ts(m.enqueued_at));
    item.insert("raw_key".into(), s(&m.raw_key));
    item.insert("sender".into(), s(&m.sender));
    item.insert("recipients".into(), strings(&m.recipients));
    item.insert("attempts".into(), n(m.attempts));
    if let Some(e) = &m.last_error {
        item.insert("last_error".into(), s(cap(e, MAX_NOTE_BYTES)));
    }
    item.insert("not_before".into(), ts(m.not_before));
    item.insert("message_id".into(), s(&m.message_id));
    if let Some(sub) = &m.subject {
        item.insert("subject".into(), s(sub));
    }
    item.insert("size".into(), n(m.size));
    if let Ok(origin) = serde_json::to_string(&m.origin) {
        item.insert("origin".into(), s(origin));
    }
    item
}

/// Reads a `QUEUE#` item of `org_id`.
fn parse_queued(org_id: &str, item: &Item) -> Result<QueuedMessage, StoreError> {
    Ok(QueuedMessage {
        org_id: org_id.to_string(),
        id: get_s(item, "id")?.to_string(),
        part_of: opt_s(item, "part_of"),
        enqueued_at: get_ts(item, "enqueued_at")?
            .ok_or_else(|| corrupt(item, "attribute enqueued_at missing"))?,
        raw_key: get_s(item, "raw_key")?.to_string(),
        sender: opt_s(item, "sender").unwrap_or_default(),
        recipients: get_strings(item, "recipients"),
        attempts: get_n_or(item, "attempts", 0)?,
        last_error: opt_s(item, "last_error"),
        not_before: get_ts(item, "not_before")?
            .ok_or_else(|| corrupt(item, "attribute not_before missing"))?,
        message_id: opt_s(item, "message_id").unwrap_or_default(),
        subject: opt_s(item, "subject"),
        size: get_n_or(item, "size", 0)?,
        // Items queued before verdicts were kept read as received and not judged (no bounce).
        origin: match opt_s(item, "origin") {
            Some(o) => {
                serde_json::from_str(&o).map_err(|e| corrupt(item, format!("origin: {e}")))?
            }
            None => Origin::Received {
                verdicts: Default::default(),
            },
        },
    })
}

/// Reads the queued count of the `QUEUESTAT` item (never below 0).
pub(super) fn parse_queue_count(item: &Item) -> Result<u64, StoreError> {
    Ok(get_n_or::<i64>(item, "count", 0)?.max(0) as u64)
}

impl DynamoStore {
    /// The organisation's oldest queued items, at most `limit` (1 to 1,000): one consistent
    /// `Query pk = ORG#{org} AND begins_with(sk, QUEUE#)`.
    pub(super) async fn queue_head(
        &self,
        org_id: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .begins_with(org_id, QUEUE_PREFIX)
            .limit(limit.clamp(1, 1000) as i32)
            .consistent_read(true);
        Ok(self
            .query_page("Query queue", query)
            .await?
            .items
            .unwrap_or_default())
    }
}

#[async_trait]
impl QueueStore for DynamoStore {
    /// `Query gsi1: gsi1pk = QUEUED AND gsi1sk < {now+1 ms}` (only organisations with a queue).
    async fn due_orgs(&self, now: DateTime<Utc>) -> Result<Vec<DueOrg>, StoreError> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :q AND gsi1sk < :u")
            .expression_attribute_values(":q", s(QUEUED))
            .expression_attribute_values(":u", s(due_before(now)));
        self.query_all("Query gsi1 queued", query, |item| {
            Ok(DueOrg {
                marker: get_s(item, GSI1SK)?.to_string(),
                org_id: org_of(get_s(item, PK)?).to_string(),
            })
        })
        .await
    }

    /// `UpdateItem QUEUESTAT SET gsi1sk = lease` if `gsi1sk` is still the marker read.
    async fn claim_org(
        &self,
        due: &DueOrg,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueueState>, StoreError> {
        let req = self
            .update_item(key(org_pk(&due.org_id), QUEUESTAT_SK))
            .update_expression("SET gsi1sk = :lease")
            .condition_expression("gsi1sk = :seen")
            .expression_attribute_values(":lease", s(wake_key(lease_until, &due.org_id)))
            .expression_attribute_values(":seen", s(&due.marker))
            .return_values(ReturnValue::AllNew);
        let Some(out) = self.update_if("UpdateItem claim queue", req).await? else {
            return Ok(None);
        };
        Ok(Some(match &out.attributes {
            Some(a) => QueueState {
                failures: get_n_or(a, "failures", 0u32)?,
                paused_at: get_ts(a, "paused_at")?,
            },
            None => QueueState::default(),
        }))
    }

    /// `Query pk = ORG#{org} AND begins_with(sk, QUEUE#)`, `Limit`, consistent.
    async fn oldest(&self, org_id: &str, limit: usize) -> Result<Vec<QueuedMessage>, StoreError> {
        self.queue_head(org_id, limit)
            .await?
            .iter()
            .map(|i| parse_queued(org_id, i))
            .collect()
    }

    /// One transaction: `Delete QUEUE#..` if present + `ADD count -1` + the state of the
    /// message's once-per-message record (`INMSG#{SES id}`: a part's is its whole's, so the
    /// state is that of the last part to leave; `parts_left` counts down to 0).
    async fn dequeue(
        &self,
        m: &QueuedMessage,
        why: Departure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let pk = org_pk(&m.org_id);
        let items = vec![
            self.tx_delete(
                Delete::builder()
                    .set_key(Some(key(pk.clone(), queue_sk(m.enqueued_at, &m.id))))
                    .condition_expression("attribute_exists(pk)"),
            )?,
            self.tx_update(
                Update::builder()
                    .set_key(Some(key(pk.clone(), QUEUESTAT_SK)))
                    .update_expression("ADD #c :minus")
                    .expression_attribute_names("#c", "count")
                    .expression_attribute_values(":minus", n(-1)),
            )?,
            self.tx_update(
                Update::builder()
                    .set_key(Some(key(pk, inmsg_sk(m.message_key()))))
                    .update_expression("SET #s = :s, done_at = :t ADD parts_left :minus")
                    .expression_attribute_names("#s", "state")
                    .expression_attribute_values(":s", s(enum_str(&why)))
                    .expression_attribute_values(":t", ts(now))
                    .expression_attribute_values(":minus", n(-1)),
            )?,
        ];
        match self.transact("TransactWriteItems dequeue", items).await? {
            Transacted::Written => Ok(()),
            // Already gone: another run dequeued it.
            Transacted::Refused(c) if c.failed(0) => Ok(()),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// `UpdateItem QUEUE#..` if present.
    async fn set_raw_key(&self, m: &QueuedMessage, raw_key: &str) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET raw_key = :k")
            .expression_attribute_values(":k", s(raw_key));
        // A message no longer queued (another run took it out) has nothing to update.
        self.update_if("UpdateItem raw_key", req).await.map(|_| ())
    }

    /// `UpdateItem QUEUE#..` if present: the recipients still to deliver, attempts, lease, error.
    async fn requeue(&self, m: &QueuedMessage) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(&m.org_id), queue_sk(m.enqueued_at, &m.id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":r", strings(&m.recipients))
            .expression_attribute_values(":a", n(m.attempts))
            .expression_attribute_values(":nb", ts(m.not_before));
        let req = match &m.last_error {
            Some(e) => req
                .update_expression(
                    "SET recipients = :r, attempts = :a, not_before = :nb, last_error = :e",
                )
                // A server's answer is not ours to size: cut in bytes.
                .expression_attribute_values(":e", s(cap(e, MAX_NOTE_BYTES))),
            None => req.update_expression("SET recipients = :r, attempts = :a, not_before = :nb"),
        };
        // A message no longer queued (another run took it out) has nothing to update.
        self.update_if("UpdateItem requeue", req).await.map(|_| ())
    }

    /// `UpdateItem QUEUESTAT SET gsi1pk, gsi1sk, failures[, paused_at]`.
    async fn set_wake(
        &self,
        org_id: &str,
        wake: DateTime<Utc>,
        failures: u32,
        paused_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), QUEUESTAT_SK))
            .expression_attribute_values(":q", s(QUEUED))
            .expression_attribute_values(":w", s(wake_key(wake, org_id)))
            .expression_attribute_values(":f", n(failures));
        let req = match paused_at {
            Some(p) => req
                .update_expression("SET gsi1pk = :q, gsi1sk = :w, failures = :f, paused_at = :p")
                .expression_attribute_values(":p", ts(p)),
            None => req.update_expression("SET gsi1pk = :q, gsi1sk = :w, failures = :f"),
        };
        self.update("UpdateItem queue wake", req).await.map(|_| ())
    }

    /// `UpdateItem QUEUESTAT REMOVE gsi1pk, gsi1sk` if `count <= 0`; else [`Self::set_wake`].
    async fn settle_idle(&self, org_id: &str, fallback: DateTime<Utc>) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), QUEUESTAT_SK))
            .update_expression("REMOVE gsi1pk, gsi1sk SET failures = :z")
            .condition_expression("attribute_not_exists(#c) OR #c <= :z")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":z", n(0));
        match self.update_if("UpdateItem queue idle", req).await? {
            Some(_) => Ok(()),
            None => self.set_wake(org_id, fallback, 0, None).await,
        }
    }

    /// One transaction: `Put ASIDE#..` + `Put AUDIT#..`, each if absent.
    async fn set_aside(&self, record: &SetAside, audit: &AuditRecord) -> Result<(), StoreError> {
        self.put_aside(record, audit).await
    }
}
