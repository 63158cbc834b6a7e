//! The alerts' items (`TABLE.md`, "Alerts": `ALERT`, `ALERTSEND#`): [`AlertStore`], the open
//! episode (started and ended once, conditionally on its id) and each alert send's claim (A4:
//! a retried run never sends twice); and `send_status`, which tests read.

use super::codec::{corrupt, enum_str, expire, get_s, get_ts, key, opt_s, s, ts, Item};
use super::keys::{org_pk, send_sk, ALERT_SK, SEND_DAYS};
use super::DynamoStore;
use crate::domain::alerts::Episode;
use crate::ports::error::StoreError;
use crate::ports::store::AlertStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Reads the `ALERT` item.
pub(super) fn parse_episode(item: &Item) -> Result<Episode, StoreError> {
    let failing = match item.get("failing").and_then(|v| v.as_s().ok()) {
        None => Vec::new(),
        Some(s) if s.is_empty() => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|f| {
                serde_json::from_value(serde_json::Value::String(f.to_string()))
                    .map_err(|e| corrupt(item, format!("attribute failing: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Episode {
        id: get_s(item, "episode")?.to_string(),
        since: get_ts(item, "since")?.ok_or_else(|| corrupt(item, "attribute since missing"))?,
        failing,
    })
}

impl DynamoStore {
    /// A send claim's status (`sending`, `sent`, `failed`), for tests and diagnosis.
    pub async fn send_status(
        &self,
        org_id: &str,
        send_key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(org_pk(org_id), &send_sk(send_key))
            .await?
            .and_then(|i| opt_s(&i, "status")))
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    /// `PutItem ALERT` if there is none.
    async fn start_episode(&self, org_id: &str, e: &Episode) -> Result<bool, StoreError> {
        let mut item = key(org_pk(org_id), ALERT_SK);
        item.insert("episode".into(), s(&e.id));
        item.insert("since".into(), ts(e.since));
        let failing: Vec<String> = e.failing.iter().map(enum_str).collect();
        item.insert("failing".into(), s(failing.join(",")));
        let req = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk)");
        self.put_if("PutItem episode", req).await
    }

    /// The open episode (one GetItem).
    async fn episode(&self, org_id: &str) -> Result<Option<Episode>, StoreError> {
        self.get(org_pk(org_id), ALERT_SK)
            .await?
            .map(|i| parse_episode(&i))
            .transpose()
    }

    /// `DeleteItem ALERT` if it is still episode `id`.
    async fn end_episode(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        let req = self
            .delete_item(key(org_pk(org_id), ALERT_SK))
            .condition_expression("episode = :e")
            .expression_attribute_values(":e", s(id));
        self.delete_if("DeleteItem episode", req).await
    }

    /// `PutItem ALERTSEND#..` if new, failed, or claimed by a send that never finished.
    async fn claim_send(
        &self,
        org_id: &str,
        send_key: &str,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut item = key(org_pk(org_id), send_sk(send_key));
        item.insert("status".into(), s("sending"));
        item.insert("claimed_at".into(), ts(now));
        item.insert("attempts_at".into(), ts(now));
        expire(&mut item, now, SEND_DAYS);
        let req = self
            .put_item(item)
            .condition_expression(
                "attribute_not_exists(pk) OR #s = :failed OR (#s = :sending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":stale", ts(now - stale_after));
        self.put_if("PutItem send claim", req).await
    }

    /// `UpdateItem ALERTSEND#..` if present: sent (with the provider's id) or failed.
    async fn finish_send(
        &self,
        org_id: &str,
        send_key: &str,
        result: Result<String, String>,
    ) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), send_sk(send_key)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status");
        let req = match result {
            Ok(provider_id) => req
                .update_expression("SET #s = :s, provider_id = :p REMOVE #e")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":s", s("sent"))
                .expression_attribute_values(":p", s(provider_id)),
            Err(reason) => req
                .update_expression("SET #s = :s, #e = :e")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":s", s("failed"))
                .expression_attribute_values(":e", s(reason)),
        };
        self.update("UpdateItem send", req).await.map(|_| ())
    }
}
