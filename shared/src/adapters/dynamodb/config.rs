//! The configuration and domain ownership items (`TABLE.md`, "The organisation and
//! monitoring": `CONFIG`, `DOMAIN#`): [`ConfigStore`] (the configuration and, in the same
//! transaction, the ownership of its domains) and [`DomainOwners`] (which organisation
//! receives mail for a domain).
//!
//! The `CONFIG` item carries a `version` number; every write stores the next one on condition
//! that the version it replaces is still there. The domain items it adds and removes are in the
//! same transaction, computed from that same version, so two concurrent writers cannot both
//! succeed, and a loser leaves no domain item behind. So is the change's audit record (P7): a
//! failure leaves neither the change nor its audit, a success both.

use super::codec::{corrupt, get_n_or, get_s, key, n, s, ts, Item};
use super::keys::{
    domain_of, domain_pk, org_pk, CONFIG_SK, DOMAIN_SK, GSI1PK, GSI1SK, MONITORED, PK,
};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::config::{OrgConfig, StoredConfig};
use crate::domain::continuity::AuditRecord;
use crate::ports::error::{PutConfigError, StoreError};
use crate::ports::store::{ConfigStore, DomainOwners};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Reads the `CONFIG` item's document.
pub(super) fn parse_config(item: &Item) -> Result<OrgConfig, StoreError> {
    let doc = item
        .get("config")
        .ok_or_else(|| corrupt(item, "attribute config missing"))?;
    let mut config = serde_dynamo::from_attribute_value::<_, OrgConfig>(doc.clone())
        .map_err(|e| corrupt(item, e.to_string()))?;
    // Stored before the probe secret's name was derived: the old field is dropped (the probe
    // reads the derived name), so that the organisation goes on being monitored.
    if config.forget_legacy_fields() {
        tracing::warn!(org = %config.org_id, "probe.password_secret ignored: the probe's credential is read from the organisation's derived secret name");
    }
    Ok(config)
}

/// The `CONFIG` item's version attribute (absent on items stored before versions: 0).
const VERSION: &str = "version";

/// The `CONFIG` item of `config` as `version`; monitoring on puts it in the sparse `MONITORED`
/// listing.
fn config_item(config: &OrgConfig, version: u64, now: DateTime<Utc>) -> Result<Item, StoreError> {
    let doc = serde_dynamo::to_attribute_value(config)
        .map_err(|e| StoreError::Permanent(e.to_string()))?;
    let mut item = key(org_pk(&config.org_id), CONFIG_SK);
    item.insert("org_id".into(), s(&config.org_id));
    item.insert("config".into(), doc);
    item.insert(VERSION.into(), n(version));
    item.insert("updated_at".into(), ts(now));
    if config.monitoring.enabled {
        item.insert(GSI1PK.into(), s(MONITORED));
        item.insert(GSI1SK.into(), s(org_pk(&config.org_id)));
    }
    Ok(item)
}

impl DynamoStore {
    /// The domain ownership writes of a configuration: a `Put DOMAIN#{d}` per domain it lists
    /// (if no other organisation owns it), then a `Delete` per domain `previous` listed and it
    /// no longer does (if still this organisation's).
    fn domain_writes(
        &self,
        config: &OrgConfig,
        previous: Option<&OrgConfig>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut items = Vec::new();
        let org = &config.org_id;
        for d in &config.domains {
            let mut item = key(domain_pk(d), DOMAIN_SK);
            item.insert("org_id".into(), s(org));
            items.push(
                self.tx_put(
                    Put::builder()
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk) OR org_id = :org")
                        .expression_attribute_values(":org", s(org)),
                )?,
            );
        }
        if let Some(prev) = previous {
            for d in prev
                .domains
                .iter()
                .filter(|d| !config.domains.iter().any(|n| n.eq_ignore_ascii_case(d)))
            {
                items.push(
                    self.tx_delete(
                        Delete::builder()
                            .set_key(Some(key(domain_pk(d), DOMAIN_SK)))
                            .condition_expression("attribute_not_exists(pk) OR org_id = :org")
                            .expression_attribute_values(":org", s(org)),
                    )?,
                );
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl ConfigStore for DynamoStore {
    /// An organisation's configuration (one GetItem).
    async fn get_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError> {
        Ok(self.stored_config(org_id).await?.map(|c| c.config))
    }

    /// The configuration and its version (one consistent GetItem).
    async fn stored_config(&self, org_id: &str) -> Result<Option<StoredConfig>, StoreError> {
        match self.get(org_pk(org_id), CONFIG_SK).await? {
            None => Ok(None),
            Some(item) => Ok(Some(StoredConfig {
                config: parse_config(&item)?,
                version: get_n_or(&item, VERSION, 0)?,
            })),
        }
    }

    /// Validates and stores a configuration as the version after `previous`: one transaction
    /// (the configuration if its version is still `previous`'s, its domains' ownership items,
    /// and the audit record if given: at most 1 + 48 + 48 + 1 items of DynamoDB's 100).
    async fn replace_config_audited(
        &self,
        config: &OrgConfig,
        previous: Option<&StoredConfig>,
        now: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<u64, PutConfigError> {
        config.validate()?;
        let read = previous.map_or(0, |p| p.version);
        let version = read + 1;
        let put = Put::builder()
            .set_item(Some(config_item(config, version, now)?))
            .expression_attribute_names("#v", VERSION);
        // The version replaced must still be there: none at all, one stored before versions
        // (no attribute), or exactly the one read.
        let put = match previous {
            None => {
                put.condition_expression("attribute_not_exists(pk) AND attribute_not_exists(#v)")
            }
            Some(_) if read == 0 => {
                put.condition_expression("attribute_exists(pk) AND attribute_not_exists(#v)")
            }
            Some(_) => put
                .condition_expression("#v = :read")
                .expression_attribute_values(":read", n(read)),
        };
        // The configuration and its domain ownership items (the inbound path finds the
        // organisation of a recipient by its domain) change together, in one transaction.
        let mut items = vec![self.tx_put(put)?];
        items.extend(self.domain_writes(config, previous.map(|p| &p.config))?);
        let domain_items = items.len() - 1;
        // A lost answer's retry finds the version moved and its own audit record: written.
        let c = match self
            .transact_audited("TransactWriteItems config", items, audit)
            .await?
        {
            Transacted::Written => return Ok(version),
            Transacted::Refused(c) => c,
        };
        if c.failed(0) {
            return Err(PutConfigError::Stale { read });
        }
        // Items 1.. are the domains' puts, then deletes (then the audit record).
        let taken = c.failed_items().find(|&i| i > 0 && i <= domain_items);
        match taken {
            Some(i) => Err(PutConfigError::DomainTaken(
                config
                    .domains
                    .get(i - 1)
                    .cloned()
                    .unwrap_or_else(|| "a removed domain".into()),
            )),
            None => Err(c.into_error().into()),
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
            let d = domain_of(get_s(&item, PK)?).to_string();
            out.insert(d, get_s(&item, "org_id")?.to_string());
        }
        Ok(out)
    }
}
