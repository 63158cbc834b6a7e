//! Passkeys' items (`TABLE.md`, "Sign-in"): [`PasskeyStore`]. A passkey is stored in its
//! user's organisation (`PASSKEY#{address}#{credential id}`, listed with one Query), and its
//! credential id has an item of its own (`CREDENTIAL#{id}`), which a passkey sign-in reads
//! first: the browser names the credential, not the user. Both are written and removed in one
//! transaction. A ceremony's state (the challenge a browser must sign) is one item, taken once
//! by a conditional delete.

use super::codec::{get_s, get_ts, key, n, opt_s, s, ts, Item};
use super::keys::{
    ceremony_pk, credential_pk, org_pk, passkey_prefix, passkey_sk, CEREMONY_SK, CREDENTIAL_SK,
    TTL_ATTR,
};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::AuditRecord;
use crate::ports::error::StoreError;
use crate::ports::store::{PasskeyRecord, PasskeyStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put};
use chrono::{DateTime, Utc};

fn parse_passkey(item: &Item) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        org_id: get_s(item, "org_id")?.to_string(),
        address: get_s(item, "address")?.to_string(),
        credential_id: get_s(item, "credential_id")?.to_string(),
        passkey: get_s(item, "passkey")?.to_string(),
        label: opt_s(item, "label").unwrap_or_default(),
        created_at: get_ts(item, "created_at")?.unwrap_or_default(),
        last_used_at: get_ts(item, "last_used_at")?,
    })
}

fn passkey_item(r: &PasskeyRecord) -> Item {
    let mut item = key(org_pk(&r.org_id), passkey_sk(&r.address, &r.credential_id));
    item.insert("org_id".into(), s(&r.org_id));
    item.insert("address".into(), s(&r.address));
    item.insert("credential_id".into(), s(&r.credential_id));
    item.insert("passkey".into(), s(&r.passkey));
    item.insert("label".into(), s(&r.label));
    item.insert("created_at".into(), ts(r.created_at));
    if let Some(t) = r.last_used_at {
        item.insert("last_used_at".into(), ts(t));
    }
    item
}

#[async_trait]
impl PasskeyStore for DynamoStore {
    /// One consistent Query of `PASSKEY#{address}#`.
    async fn passkeys(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Vec<PasskeyRecord>, StoreError> {
        let query = self
            .begins_with(org_id, &passkey_prefix(address))
            .consistent_read(true);
        self.query_all("Query passkeys", query, parse_passkey).await
    }

    /// `GetItem CREDENTIAL#{id}`, then `GetItem` of the passkey it names (both consistent).
    async fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StoreError> {
        let Some(owner) = self
            .get(credential_pk(credential_id), CREDENTIAL_SK)
            .await?
        else {
            return Ok(None);
        };
        let (org, address) = (get_s(&owner, "org_id")?, get_s(&owner, "address")?);
        match self
            .get(org_pk(org), &passkey_sk(address, credential_id))
            .await?
        {
            Some(item) => parse_passkey(&item).map(Some),
            None => Ok(None),
        }
    }

    /// One `TransactWriteItems`: `Put CREDENTIAL#{id}` if absent, `Put PASSKEY#..` (+ `Put
    /// AUDIT#..` if absent).
    async fn add_passkey_audited(
        &self,
        r: &PasskeyRecord,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut owner = key(credential_pk(&r.credential_id), CREDENTIAL_SK);
        owner.insert("org_id".into(), s(&r.org_id));
        owner.insert("address".into(), s(&r.address));
        let items = vec![
            self.tx_put(
                Put::builder()
                    .set_item(Some(owner))
                    .condition_expression("attribute_not_exists(pk)"),
            )?,
            self.tx_put(Put::builder().set_item(Some(passkey_item(r))))?,
        ];
        match self
            .transact_audited("TransactWriteItems passkey", items, audit)
            .await?
        {
            Transacted::Written => Ok(true),
            Transacted::Refused(c) if c.failed(0) => Ok(false),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// One `PutItem` of the passkey's item, if it is still there.
    async fn touch_passkey(&self, r: &PasskeyRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut r = r.clone();
        r.last_used_at = Some(now);
        let req = self
            .put_item(passkey_item(&r))
            .condition_expression("attribute_exists(pk)");
        // Removed meanwhile: nothing to update.
        self.put_if("PutItem passkey used", req).await.map(|_| ())
    }

    /// One `TransactWriteItems`: `Delete PASSKEY#..` if present, `Delete CREDENTIAL#{id}` if
    /// it names this user (+ `Put AUDIT#..` if absent).
    async fn remove_passkey_audited(
        &self,
        org_id: &str,
        address: &str,
        credential_id: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError> {
        let items = vec![
            self.tx_delete(
                Delete::builder()
                    .set_key(Some(key(
                        org_pk(org_id),
                        passkey_sk(address, credential_id),
                    )))
                    .condition_expression("attribute_exists(pk)"),
            )?,
            self.tx_delete(
                Delete::builder()
                    .set_key(Some(key(credential_pk(credential_id), CREDENTIAL_SK)))
                    .condition_expression("org_id = :org AND address = :a")
                    .expression_attribute_values(":org", s(org_id))
                    .expression_attribute_values(":a", s(address.to_ascii_lowercase())),
            )?,
        ];
        match self
            .transact_audited("TransactWriteItems passkey removal", items, audit)
            .await?
        {
            Transacted::Written => Ok(true),
            Transacted::Refused(_) => Ok(false),
        }
    }

    /// One `TransactWriteItems`: for each passkey, `Delete PASSKEY#..` and `Delete
    /// CREDENTIAL#{id}` unless it names someone else (both may be gone already), and `Put
    /// AUDIT#..` if absent: at most 2 x 10 + 1 items.
    async fn remove_passkeys_audited(
        &self,
        org_id: &str,
        address: &str,
        credential_ids: &[String],
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(2 * credential_ids.len());
        for id in credential_ids {
            items.push(self.tx_delete(
                Delete::builder().set_key(Some(key(org_pk(org_id), passkey_sk(address, id)))),
            )?);
            items.push(
                self.tx_delete(
                    Delete::builder()
                        .set_key(Some(key(credential_pk(id), CREDENTIAL_SK)))
                        .condition_expression(
                            "attribute_not_exists(pk) OR (org_id = :org AND address = :a)",
                        )
                        .expression_attribute_values(":org", s(org_id))
                        .expression_attribute_values(":a", s(address.to_ascii_lowercase())),
                )?,
            );
        }
        match self
            .transact_audited("TransactWriteItems passkeys revoked", items, Some(audit))
            .await?
        {
            Transacted::Written => Ok(()),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// One `PutItem` of `WEBAUTHN#{id}`.
    async fn put_ceremony(
        &self,
        id: &str,
        state: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = key(ceremony_pk(id), CEREMONY_SK);
        item.insert("state".into(), s(state));
        item.insert("expires".into(), n(expires.timestamp()));
        item.insert(TTL_ATTR.into(), n(expires.timestamp()));
        self.put("PutItem ceremony", item).await
    }

    /// One conditional `DeleteItem` returning the old item: the first taker gets it.
    async fn take_ceremony(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let req = self
            .delete_item(key(ceremony_pk(id), CEREMONY_SK))
            .condition_expression("attribute_exists(pk)");
        let Some(item) = self.take_if("DeleteItem ceremony", req).await? else {
            return Ok(None);
        };
        let expires: i64 = item
            .get("expires")
            .and_then(|v| v.as_n().ok()?.parse().ok())
            .unwrap_or(0);
        if expires <= now.timestamp() {
            return Ok(None);
        }
        Ok(Some(get_s(&item, "state")?.to_string()))
    }
}
