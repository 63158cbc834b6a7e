//! Configuration as code, against a table: plan (show what would change) and apply (store what
//! changed, through the same validation as the administration API), the user directory a file
//! carries (`users`) included. Used by the
//! `continuity-config` command (AWS or local) and by the local runner's `--config` files.
//!
//! Domains are proven here as in the administration API (P11): a file may add a domain only once
//! its DNS proof is verified. Apply claims a domain it meets for the first time and stops with
//! the TXT record to publish; applied again once it is published, it verifies the proof through
//! the DNS (the resolver of `DNS_SERVERS`), creates the SES identity, and goes on.

use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::DynamoStore;
use shared::app::domains::{operator, DomainError, Domains};
use shared::domain::config_as_code::{self, OrgPlan};
use shared::ports::store::{ConfigStore, ContinuityStore, DomainOwners};
use std::path::Path;

/// Reads, validates and plans every file; nothing is written.
pub async fn plan(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
) -> Result<Vec<(OrgPlan, shared::domain::config::OrgConfig)>, String> {
    plan_at(store, files, chrono::Utc::now()).await
}

/// As [`plan`], at `now` (the directory's import time).
async fn plan_at(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
    now: DateTime<Utc>,
) -> Result<Vec<(OrgPlan, shared::domain::config::OrgConfig)>, String> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| format!("{name}: {e}"))?;
        for (cfg, users) in
            config_as_code::parse_documents(&name, &text).map_err(|e| e.to_string())?
        {
            if out
                .iter()
                .any(|(p, _): &(OrgPlan, _)| p.org_id == cfg.org_id)
            {
                return Err(format!(
                    "organisation {} is configured by more than one file",
                    cfg.org_id
                ));
            }
            let stored = store
                .get_config(&cfg.org_id)
                .await
                .map_err(|e| format!("{name}: reading organisation {}: {e}", cfg.org_id))?;
            let mut p = config_as_code::plan(stored.as_ref(), &cfg);
            if let Some(rows) = users {
                let current = store
                    .user_directory(&cfg.org_id)
                    .await
                    .map_err(|e| format!("{name}: reading organisation {}: {e}", cfg.org_id))?;
                p = p
                    .with_users(&cfg, &rows, &current, now)
                    .map_err(|e| format!("{name}: organisation {}: {e}", cfg.org_id))?;
            }
            out.push((p, cfg));
        }
    }
    Ok(out)
}

/// Plans, then stores every configuration that differs; returns the plans (all files are
/// validated before anything is written). Domains not yet proven are claimed or verified first
/// through `domains` (P11); one still unproven stops the apply with the record to publish.
pub async fn apply(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
    now: DateTime<Utc>,
    domains: &Domains<'_>,
) -> Result<Vec<OrgPlan>, String> {
    let plans = plan_at(store, files, now).await?;
    let by = operator(&format!("iac-{}", now.timestamp_millis()));
    let mut waiting = Vec::new();
    for (_, cfg) in &plans {
        let stored = store
            .get_config(&cfg.org_id)
            .await
            .map_err(|e| format!("organisation {}: {e}", cfg.org_id))?;
        let Err(DomainError::NotProven { .. }) = domains
            .require_proven(&cfg.org_id, stored.as_ref(), cfg)
            .await
        else {
            continue;
        };
        let owners = store
            .orgs_for_domains(&cfg.domains)
            .await
            .map_err(|e| e.to_string())?;
        for d in cfg.domains.iter().map(|d| d.to_ascii_lowercase()) {
            if owners.get(&d) == Some(&cfg.org_id) {
                continue;
            }
            let org = &cfg.org_id;
            match domains.verify(org, &d, None, &by, now).await {
                Ok(_) => {}
                Err(DomainError::NoClaim(_)) => {
                    let view = domains
                        .claim(org, &d, &by, now)
                        .await
                        .map_err(|e| format!("organisation {org}: {e}"))?;
                    let r = &view.records[0];
                    waiting.push(format!(
                        "organisation {org}: prove {d}: publish {} {} \"{}\", then apply again",
                        r.name, r.kind, r.value
                    ));
                }
                Err(e) => waiting.push(format!("organisation {org}: {d}: {e}")),
            }
        }
    }
    if !waiting.is_empty() {
        return Err(waiting.join("\n"));
    }
    let mut out = Vec::new();
    for (p, cfg) in plans {
        let config_changed = p.create || p.changes.iter().any(|c| c.path != "users");
        if config_changed {
            store
                .put_config(&cfg, now)
                .await
                .map_err(|e| format!("organisation {}: {e}", cfg.org_id))?;
        }
        if let Some(d) = &p.users {
            store
                .put_user_directory(&cfg.org_id, d)
                .await
                .map_err(|e| format!("organisation {}: users: {e}", cfg.org_id))?;
        }
        out.push(p);
    }
    Ok(out)
}

/// The records each organisation of `files` publishes for its domains, with their status (what
/// `continuity-config plan` shows beside the changes).
pub async fn domain_records(
    domains: &Domains<'_>,
    orgs: &[String],
    now: DateTime<Utc>,
) -> Result<String, String> {
    let mut out = String::new();
    for org in orgs {
        for v in domains.list(org, now).await.map_err(|e| e.to_string())? {
            out.push_str(&format!("{org}: {} ({})\n", v.domain, v.status));
            for r in v.records {
                out.push_str(&format!(
                    "    {} {} {}  [{}{}]\n",
                    r.name,
                    r.kind,
                    r.value,
                    r.status,
                    if r.optional { ", optional" } else { "" }
                ));
            }
        }
    }
    Ok(out)
}

/// What proving domains needs outside the API: the table, the DNS (`DNS_SERVERS`), SES, and the
/// receiving domain (`RECEIVING_DOMAIN`, or the domain of `ALERT_SENDER`).
pub struct DomainPorts {
    pub store: DynamoStore,
    pub proofs: shared::adapters::dns::DnsTxtProofs,
    pub identities: shared::adapters::sesv2::SesIdentities,
    /// The service's bus (`EVENT_BUS_NAME`), where claims and proofs are published (P7).
    pub bus: OperatorBus,
    pub receiving_domain: String,
}

/// The event bus of the operator's commands: the service's bus when `EVENT_BUS_NAME` names it;
/// without it, every publication fails with that reason, which is logged (the audit record is
/// stored either way).
pub struct OperatorBus(Option<shared::adapters::eventbridge::EventBridgeBus>);

impl OperatorBus {
    /// The bus `EVENT_BUS_NAME` names, if any.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        OperatorBus(
            std::env::var("EVENT_BUS_NAME")
                .ok()
                .filter(|b| !b.trim().is_empty())
                .map(|b| {
                    shared::adapters::eventbridge::EventBridgeBus::new(
                        aws_sdk_eventbridge::Client::new(sdk),
                        b,
                    )
                }),
        )
    }
}

#[async_trait::async_trait]
impl shared::ports::notify::EventBus for OperatorBus {
    async fn publish(
        &self,
        detail_type: &str,
        detail: serde_json::Value,
    ) -> Result<(), shared::ports::error::SendError> {
        match &self.0 {
            Some(bus) => bus.publish(detail_type, detail).await,
            None => Err(shared::ports::error::SendError::Permanent(
                "EVENT_BUS_NAME is not set: the event was not published".into(),
            )),
        }
    }
}

impl DomainPorts {
    pub fn from_env(sdk: &aws_config::SdkConfig, store: DynamoStore) -> Result<Self, String> {
        let receiving_domain = std::env::var("RECEIVING_DOMAIN")
            .ok()
            .filter(|d| !d.trim().is_empty())
            .or_else(|| {
                std::env::var("ALERT_SENDER")
                    .ok()
                    .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
            })
            .ok_or("RECEIVING_DOMAIN is not set (the service's own mail domain)")?;
        Ok(DomainPorts {
            store,
            proofs: shared::adapters::dns::DnsTxtProofs::from_env()?,
            identities: shared::adapters::sesv2::SesIdentities::from_sdk(sdk),
            bus: OperatorBus::from_env(sdk),
            receiving_domain: receiving_domain.to_ascii_lowercase(),
        })
    }

    pub fn domains(&self) -> Domains<'_> {
        Domains {
            claims: &self.store,
            owners: &self.store,
            config: &self.store,
            proofs: &self.proofs,
            identities: &self.identities,
            bus: &self.bus,
            receiving_domain: &self.receiving_domain,
        }
    }
}
