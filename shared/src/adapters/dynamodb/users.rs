//! The user directory's items (`TABLE.md`, "The directory": `USERSYNC`, `USER#`, and the
//! earlier `USERS`): one item per user, so that 5,000 users with their names, mobile numbers and
//! alternate addresses never meet DynamoDB's 400 KB item limit (one item of them all would: at
//! ~150 bytes a user, 5,000 users are ~750 KB).
//!
//! Replaced atomically: an import writes its users under a new generation
//! (`USER#{generation}#{address}`, `BatchWriteItem`, invisible to readers), then switches the
//! `USERSYNC` item to it with one conditional write, in one transaction with the import's audit
//! record (a concurrent import's switch fails and its items are removed). Readers read `USERSYNC`, then the generation's items: the whole old
//! directory or the whole new one, never a mixture. The generation replaced is kept until the
//! next import (a reader between its two reads still finds it); older ones are deleted.

use super::batch::{delete_request, put_request};
use super::codec::{get_s, get_ts, key, n, opt_s, s, ts, Item};
use super::keys::{org_pk, user_prefix, user_sk, SK, USERSYNC_SK, USERS_SK, USER_PREFIX};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::directory::{DirectoryUser, UserDirectory};
use crate::ports::error::StoreError;
use crate::ports::store::CountAudit;
use aws_sdk_dynamodb::types::Put;
use chrono::{DateTime, Utc};

/// A directory generation, as `USERSYNC` names it.
pub(super) struct Generation {
    pub id: String,
    pub synced_at: Option<DateTime<Utc>>,
    pub count: usize,
}

/// Reads a `USERSYNC` item.
pub(super) fn parse_generation(item: &Item) -> Result<Generation, StoreError> {
    Ok(Generation {
        id: get_s(item, "generation")?.to_string(),
        synced_at: get_ts(item, "synced_at")?,
        count: item
            .get("count")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// Reads a `USER#` item.
pub(super) fn parse_user(item: &Item) -> Result<DirectoryUser, StoreError> {
    Ok(DirectoryUser {
        address: get_s(item, "address")?.to_string(),
        name: opt_s(item, "name"),
        mobile: opt_s(item, "mobile"),
        alternate: opt_s(item, "alternate"),
    })
}

fn user_item(org_id: &str, generation: &str, u: &DirectoryUser) -> Item {
    let mut item = key(org_pk(org_id), user_sk(generation, &u.address));
    item.insert("address".into(), s(u.address.to_ascii_lowercase()));
    for (name, v) in [
        ("name", &u.name),
        ("mobile", &u.mobile),
        ("alternate", &u.alternate),
    ] {
        if let Some(v) = v {
            item.insert(name.into(), s(v));
        }
    }
    item
}

impl DynamoStore {
    /// The current generation (one consistent GetItem).
    pub(super) async fn user_generation(
        &self,
        org_id: &str,
    ) -> Result<Option<Generation>, StoreError> {
        match self.get(org_pk(org_id), USERSYNC_SK).await? {
            Some(item) => parse_generation(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The user `address` of generation `generation` (one consistent GetItem).
    pub(super) async fn generation_user(
        &self,
        org_id: &str,
        generation: &str,
        address: &str,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        match self
            .get(org_pk(org_id), &user_sk(generation, address))
            .await?
        {
            Some(item) => parse_user(&item).map(Some),
            None => Ok(None),
        }
    }

    /// The whole directory: `USERSYNC`, then one Query of its generation (all pages). Before the
    /// first import of per-user items, the earlier single `USERS` item (mobile numbers only).
    pub(super) async fn read_user_directory(
        &self,
        org_id: &str,
    ) -> Result<UserDirectory, StoreError> {
        let Some(g) = self.user_generation(org_id).await? else {
            return self.legacy_user_directory(org_id).await;
        };
        let query = self
            .begins_with(org_id, &user_prefix(&g.id))
            .consistent_read(true);
        let users = self.query_all("Query users", query, parse_user).await?;
        Ok(UserDirectory {
            users: users.into_iter().map(|u| (u.address.clone(), u)).collect(),
            synced_at: g.synced_at,
        })
    }

    /// The `USERS` item of imports before per-user items (address -> mobile number).
    async fn legacy_user_directory(&self, org_id: &str) -> Result<UserDirectory, StoreError> {
        let Some(item) = self.get(org_pk(org_id), USERS_SK).await? else {
            return Ok(UserDirectory::default());
        };
        let mut d = UserDirectory {
            synced_at: get_ts(&item, "synced_at")?,
            ..Default::default()
        };
        if let Some(m) = item.get("mobiles").and_then(|v| v.as_m().ok()) {
            for (address, mobile) in m {
                if let Ok(mobile) = mobile.as_s() {
                    d.users.insert(
                        address.clone(),
                        DirectoryUser {
                            address: address.clone(),
                            mobile: Some(mobile.clone()),
                            ..Default::default()
                        },
                    );
                }
            }
        }
        Ok(d)
    }

    /// Replaces the directory (see the module's header); how many users it held before. The
    /// switch and `audit`'s record (made from that count) are one transaction.
    pub(super) async fn replace_user_directory(
        &self,
        org_id: &str,
        d: &UserDirectory,
        audit: Option<&CountAudit<'_>>,
    ) -> Result<usize, StoreError> {
        let old = self.user_generation(org_id).await?;
        let before = match &old {
            Some(g) => g.count,
            None => self.legacy_user_directory(org_id).await?.users.len(),
        };
        let synced_at = d.synced_at.unwrap_or_else(Utc::now);
        let generation = format!(
            "{:013}{:08x}",
            synced_at.timestamp_millis().max(0),
            rand::random::<u32>()
        );
        let puts = d
            .users
            .values()
            .map(|u| put_request(user_item(org_id, &generation, u)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(puts).await?;
        let mut record = key(org_pk(org_id), USERSYNC_SK);
        record.insert("generation".into(), s(&generation));
        record.insert("synced_at".into(), ts(synced_at));
        record.insert("count".into(), n(d.users.len()));
        let put = Put::builder().set_item(Some(record));
        let put = match &old {
            Some(g) => put
                .condition_expression("generation = :old")
                .expression_attribute_values(":old", s(&g.id)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        // The switch makes the import visible; its audit record goes with it (P7): an import
        // is never visible unaudited, nor audited without having happened.
        let items = vec![self.tx_put(put)?];
        let record = audit.map(|a| a(before));
        let switched = match self
            .transact_audited("TransactWriteItems USERSYNC", items, record.as_ref())
            .await
        {
            Ok(Transacted::Written) => true,
            // Refused, or no answer: the switch may still be ours (an answer lost, and the
            // SDK's retry refused because the first attempt had switched). Never take back a
            // generation readers may see: ask which one is current.
            Ok(Transacted::Refused(c)) => match self.user_generation(org_id).await? {
                Some(g) if g.id == generation => true,
                _ if c.failed(0) => false,
                _ => {
                    self.drop_generation(org_id, &generation).await;
                    return Err(c.into_error());
                }
            },
            Err(e) => match self.user_generation(org_id).await {
                Ok(Some(g)) if g.id == generation => true,
                Ok(_) => {
                    self.drop_generation(org_id, &generation).await;
                    return Err(e);
                }
                // Not known: the items stay (the next import deletes them if unused).
                Err(_) => return Err(e),
            },
        };
        if !switched {
            // Another import switched first: ours never became visible; take its items back.
            self.drop_generation(org_id, &generation).await;
            return Err(StoreError::ConditionFailed(
                "another import of the user directory finished first".into(),
            ));
        }
        // The generation replaced stays for readers between their two reads; older ones go.
        let keep: Vec<&str> = [
            Some(generation.as_str()),
            old.as_ref().map(|g| g.id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Err(e) = self.delete_generations(org_id, &keep, false).await {
            tracing::warn!(org = org_id, error = %e, "old directory items stay until the next import");
        }
        Ok(before)
    }

    /// Takes back the items of a generation that never became visible (best effort: the next
    /// import deletes what is left).
    async fn drop_generation(&self, org_id: &str, generation: &str) {
        if let Err(e) = self.delete_generations(org_id, &[generation], true).await {
            tracing::warn!(org = org_id, error = %e, "a lost import's items stay until the next import");
        }
    }

    /// Deletes user items: those of `generations` (`only`), or of every generation but them
    /// (one Query of the keys, then `BatchWriteItem` deletes); and the earlier `USERS` item.
    async fn delete_generations(
        &self,
        org_id: &str,
        generations: &[&str],
        only: bool,
    ) -> Result<(), StoreError> {
        let query = self
            .begins_with(org_id, USER_PREFIX)
            .projection_expression("sk");
        let sks = self
            .query_all("Query user keys", query, |i| Ok(get_s(i, SK)?.to_string()))
            .await?;
        let listed = |sk: &str| generations.iter().any(|g| sk.starts_with(&user_prefix(g)));
        let mut deletes = sks
            .into_iter()
            .filter(|sk| listed(sk) == only)
            .map(|sk| delete_request(key(org_pk(org_id), sk)))
            .collect::<Result<Vec<_>, _>>()?;
        if !only {
            deletes.push(delete_request(key(org_pk(org_id), USERS_SK))?);
        }
        self.batch_write(deletes).await
    }
}
