//! The configuration and domain ownership items (`TABLE.md`, "The organisation and
//! monitoring": `CONFIG`, `DOMAIN#`): [`ConfigStore`] (the configuration and, in the same
//! transaction, the ownership of its domains) and [`DomainOwners`] (which organisation
//! receives mail for a domain).

use super::codec::{corrupt, get_s, key, s, ts, Item};
use super::keys::{
    domain_of, domain_pk, org_pk, CONFIG_SK, DOMAIN_SK, GSI1PK, GSI1SK, MONITORED, PK,
};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::config::OrgConfig;
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

/// The `CONFIG` item of `config`; monitoring on puts it in the sparse `MONITORED` listing.
fn config_item(config: &OrgConfig, now: DateTime<Utc>) -> Result<Item, StoreError> {
    let doc = serde_dynamo::to_attribute_value(config)
        .map_err(|e| StoreError::Permanent(e.to_string()))?;
    let mut item = key(org_pk(&config.org_id), CONFIG_SK);
    item.insert("org_id".into(), s(&config.org_id));
    item.insert("config".into(), doc);
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
        match self.get(org_pk(org_id), CONFIG_SK).await? {
            None => Ok(None),
            Some(item) => parse_config(&item).map(Some),
        }
    }

    /// Validates and stores an organisation's configuration: one GetItem (the previous
    /// domains) and one transaction (the configuration, its domains' ownership items).
    async fn put_config(
        &self,
        config: &OrgConfig,
        now: DateTime<Utc>,
    ) -> Result<(), PutConfigError> {
        config.validate()?;
        let item = config_item(config, now)?;
        // The configuration and its domain ownership items (the inbound path finds the
        // organisation of a recipient by its domain) change together, in one transaction.
        let previous = self.get_config(&config.org_id).await.ok().flatten();
        let mut items = vec![self.tx_put(Put::builder().set_item(Some(item)))?];
        items.extend(self.domain_writes(config, previous.as_ref())?);
        let c = match self.transact("TransactWriteItems config", items).await? {
            Transacted::Written => return Ok(()),
            Transacted::Refused(c) => c,
        };
        // Item 0 is the configuration; items 1.. are the domains' puts, then deletes.
        let taken = c.failed_items().find(|&i| i > 0);
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
