//! Mail set aside (`TABLE.md`, "Inbound mail and the queue": `ASIDE#`): quarantined viruses
//! (Q9) and undeliverable mail whose sender may be forged, so that no bounce went (Q10); and
//! [`QueueViews`], the administrators' view of why mail waits (the queue, its next look, what
//! was set aside). Each record is written with its audit item in one transaction.

use super::codec::{corrupt, expire, get_n_or, get_s, key, opt_s, s, ts, Item};
use super::continuity::audit_item;
use super::keys::{aside_sk, inmsg_sk, org_pk, ASIDE_PREFIX, GSI1SK, MAIL_DAYS, QUEUESTAT_SK};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::AuditRecord;
use crate::domain::queue::{AcceptOutcome, SetAside};
use crate::ports::error::StoreError;
use crate::ports::store::{QueueSnapshot, QueueViews};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};

/// The `ASIDE#` item of a record (kept 30 days, like the mailboxes; the raw message is kept by
/// the bucket's lifecycle for 35).
fn aside_item(r: &SetAside) -> Result<Item, StoreError> {
    let mut item = key(org_pk(&r.org_id), aside_sk(r.at, &r.id, r.kind.name()));
    let doc = serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))?;
    item.insert("record".into(), s(doc));
    item.insert("kind".into(), s(r.kind.name()));
    item.insert("at".into(), ts(r.at));
    expire(&mut item, r.at, MAIL_DAYS);
    Ok(item)
}

fn parse_aside(item: &Item) -> Result<SetAside, StoreError> {
    serde_json::from_str(get_s(item, "record")?).map_err(|e| corrupt(item, format!("record: {e}")))
}

impl DynamoStore {
    /// `Put` of `item` if absent, as one transaction item.
    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        self.tx_put(
            Put::builder()
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)"),
        )
    }

    /// Quarantine (Q9): `Put INMSG#{id}` (state `quarantined`) if new + `Put ASIDE#..` +
    /// `Put AUDIT#..`, one transaction; a failed first condition is a repeated event.
    pub(super) async fn quarantine_message(
        &self,
        r: &SetAside,
        audit: &AuditRecord,
    ) -> Result<AcceptOutcome, StoreError> {
        let mut record = key(org_pk(&r.org_id), inmsg_sk(&r.id));
        record.insert("state".into(), s("quarantined"));
        record.insert("received_at".into(), ts(r.received_at));
        record.insert("done_at".into(), ts(r.at));
        expire(&mut record, r.received_at, MAIL_DAYS);
        let items = vec![
            self.put_new(record)?,
            self.put_new(aside_item(r)?)?,
            self.put_new(audit_item(audit)?)?,
        ];
        match self
            .transact("TransactWriteItems quarantine", items)
            .await?
        {
            Transacted::Written => Ok(AcceptOutcome::Accepted),
            Transacted::Refused(c) if c.failed_items().next().is_some() => {
                Ok(AcceptOutcome::Duplicate)
            }
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// Undeliverable without a bounce (Q10): `Put ASIDE#..` + `Put AUDIT#..`, one transaction,
    /// each if absent (a repeated run at the same time finds both: nothing changes).
    pub(super) async fn put_aside(
        &self,
        r: &SetAside,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let items = vec![
            self.put_new(aside_item(r)?)?,
            self.put_new(audit_item(audit)?)?,
        ];
        match self.transact("TransactWriteItems set aside", items).await? {
            Transacted::Written => Ok(()),
            Transacted::Refused(c) if c.failed_items().next().is_some() => Ok(()),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }
}

#[async_trait]
impl QueueViews for DynamoStore {
    /// `GetItem QUEUESTAT` + `Query QUEUE#` (oldest first, `Limit`) + `Query ASIDE#` (newest
    /// first, `Limit`).
    async fn queue_snapshot(
        &self,
        org_id: &str,
        limit: usize,
    ) -> Result<QueueSnapshot, StoreError> {
        let stat = self.get(org_pk(org_id), QUEUESTAT_SK).await?;
        let next_look = stat
            .as_ref()
            .and_then(|i| opt_s(i, GSI1SK))
            .and_then(|marker| wake_of(&marker));
        let failures = match &stat {
            Some(i) => get_n_or(i, "failures", 0u32)?,
            None => 0,
        };
        let queued = crate::ports::store::QueueStore::oldest(self, org_id, limit).await?;
        let query = self
            .begins_with(org_id, ASIDE_PREFIX)
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32);
        let set_aside = self
            .query_page("Query set aside", query)
            .await?
            .items
            .unwrap_or_default()
            .iter()
            .map(parse_aside)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QueueSnapshot {
            next_look,
            failures,
            queued,
            set_aside,
        })
    }
}

/// The wake time of a `QUEUED` marker (`{epoch ms}#{org}`).
fn wake_of(marker: &str) -> Option<DateTime<Utc>> {
    let ms: i64 = marker.split('#').next()?.parse().ok()?;
    DateTime::from_timestamp_millis(ms)
}
