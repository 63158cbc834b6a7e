//! The directory's items (`TABLE.md`, "The directory": `DELEGATE#`, `GROUP#`, `DIRSYNC`):
//! [`DirectoryStore`] (delegate grants, U5; the distribution lists replaced whole by an import
//! and its record, U6); and `put_group`, with which tests plant one list.

use super::codec::{get_s, get_strings, get_ts, key, n, opt_s, s, strings, ts, Item};
use super::keys::{delegate_prefix, delegate_sk, group_sk, org_pk, DIRSYNC_SK, GROUP_PREFIX, SK};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::AuditRecord;
use crate::domain::directory::{Grant, ImportOutcome, MAX_GROUP_CHANGES};
use crate::ports::error::StoreError;
use crate::ports::store::{DirectoryStore, ImportAudit};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// The `GROUP#` item of a distribution list.
fn group_item(org_id: &str, address: &str, members: &[String], synced_at: DateTime<Utc>) -> Item {
    let mut item = key(org_pk(org_id), group_sk(address));
    item.insert("address".into(), s(address.to_ascii_lowercase()));
    item.insert("members".into(), strings(members));
    item.insert("synced_at".into(), ts(synced_at));
    item
}

impl DynamoStore {
    /// Stores one distribution list's members (one PutItem), for tests; the directory import
    /// replaces every list at once ([`DirectoryStore::replace_groups`]).
    pub async fn put_group(
        &self,
        org_id: &str,
        address: &str,
        members: &[String],
        synced_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.put("PutItem", group_item(org_id, address, members, synced_at))
            .await
    }
}

#[async_trait]
impl DirectoryStore for DynamoStore {
    /// Grants `user` access to `mailbox` (one PutItem; a repeat changes nothing that matters).
    async fn grant_delegate(
        &self,
        org_id: &str,
        g: &Grant,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), delegate_sk(&g.user, &g.mailbox));
        item.insert("user".into(), s(g.user.to_ascii_lowercase()));
        item.insert("mailbox".into(), s(g.mailbox.to_ascii_lowercase()));
        item.insert("granted_by".into(), s(&g.granted_by));
        item.insert("granted_at".into(), ts(g.granted_at));
        let items = vec![self.tx_put(Put::builder().set_item(Some(item)))?];
        match self
            .transact_audited("TransactWriteItems delegate", items, Some(audit))
            .await?
        {
            Transacted::Written => Ok(()),
            // Only the audit record has a condition (read as written): cannot happen.
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// Revokes a grant: one TransactWriteItems, `Delete DELEGATE#..` if present + `Put
    /// AUDIT#..` if absent.
    async fn revoke_delegate(
        &self,
        org_id: &str,
        user: &str,
        mailbox: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let items = vec![self.tx_delete(
            Delete::builder()
                .set_key(Some(key(org_pk(org_id), delegate_sk(user, mailbox))))
                .condition_expression("attribute_exists(pk)"),
        )?];
        match self
            .transact_audited("TransactWriteItems delegate revoked", items, Some(audit))
            .await?
        {
            Transacted::Written => Ok(true),
            Transacted::Refused(_) => Ok(false),
        }
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
        let mut out = Vec::new();
        for item in self
            .all_with_prefix(org_id, &delegate_prefix(user), "Query delegates")
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
    /// present, the `DIRSYNC` record, the audit record): all or nothing.
    async fn replace_groups(
        &self,
        org_id: &str,
        groups: &[(String, Vec<String>)],
        synced_at: DateTime<Utc>,
        audit: &ImportAudit<'_>,
    ) -> Result<ImportOutcome, StoreError> {
        let current = self
            .all_with_prefix(org_id, GROUP_PREFIX, "Query groups")
            .await?;
        let new: HashSet<String> = groups.iter().map(|(a, _)| group_sk(a)).collect();
        let removed: Vec<String> = current
            .iter()
            .filter_map(|i| opt_s(i, SK))
            .filter(|sk| !new.contains(sk))
            .collect();
        let changes = groups.len() + removed.len();
        if changes > MAX_GROUP_CHANGES {
            return Ok(ImportOutcome::TooLarge { changes });
        }
        let outcome = ImportOutcome::Replaced {
            groups: groups.len(),
            removed: removed.len(),
        };
        let mut items = Vec::with_capacity(changes + 2);
        for (address, members) in groups {
            let item = group_item(org_id, address, members, synced_at);
            items.push(self.tx_put(Put::builder().set_item(Some(item)))?);
        }
        for sk in &removed {
            let key = key(org_pk(org_id), sk.clone());
            items.push(self.tx_delete(Delete::builder().set_key(Some(key)))?);
        }
        let mut record = key(org_pk(org_id), DIRSYNC_SK);
        record.insert("synced_at".into(), ts(synced_at));
        record.insert("groups".into(), n(groups.len()));
        items.push(self.tx_put(Put::builder().set_item(Some(record)))?);
        let record = audit(&outcome);
        match self
            .transact_audited("TransactWriteItems groups", items, Some(&record))
            .await?
        {
            Transacted::Written => Ok(outcome),
            // Only the audit record has a condition (read as written): cannot happen.
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// The distribution lists (one Query) and the last import's time (one GetItem).
    async fn groups(
        &self,
        org_id: &str,
    ) -> Result<(Vec<(String, Vec<String>)>, Option<DateTime<Utc>>), StoreError> {
        let mut out = Vec::new();
        for item in self
            .all_with_prefix(org_id, GROUP_PREFIX, "Query groups")
            .await?
        {
            out.push((
                get_s(&item, "address")?.to_string(),
                get_strings(&item, "members"),
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
