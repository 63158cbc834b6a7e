//! Proven domains as one use case (P11): claim a domain (a token to publish), verify the proof
//! through the DNS, list the domains with the records to publish and their status. The
//! administration API and configuration as code both call it; a configuration change may add a
//! domain only once it is proven ([`Domains::require_proven`]).
//!
//! Order on verify: the eligibility and other organisations' domains are checked again (a claim
//! may be days old), the TXT record is read, the proof recorded (the ownership item, one
//! organisation only), the domain added to the configuration, then its SES identity created. A
//! failure after the proof leaves a proven domain; verifying again completes the rest. The
//! configuration write is versioned like every other ([`crate::app::settings`]): conditional on
//! the version read (or named by the administrator), refused as [`DomainError::Stale`] when
//! another write came first.

use crate::app::continuity::publish_audit;
use crate::app::settings::{audit_record, change_record};
use crate::domain::config::OrgConfig;
use crate::domain::continuity::Via;
use crate::domain::domains::{
    eligible, parents, pending_view, proof_name, proof_value, proven_view, DomainClaim, DomainView,
    Refusal,
};
use crate::ports::domains::{DomainClaims, DomainProofs, ProofError, SendingIdentities};
use crate::ports::error::{PutConfigError, StoreError};
use crate::ports::notify::EventBus;
use crate::ports::store::{ConfigStore, DomainOwners};
use chrono::{DateTime, Utc};
use serde_json::json;

/// Why a domain was not claimed, proven or accepted; the messages are for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("There is no pending claim of {0}: claim it first (POST /api/v1/admin/domains), then publish the TXT record it gives.")]
    NoClaim(String),
    #[error("No TXT record {value:?} was found at {name}. Publish it (DNS changes can take a while to be visible), then verify again.")]
    ProofMissing { name: String, value: String },
    #[error("The TXT records at {name} do not hold {value:?} (found: {found}). Publish exactly that value, then verify again.")]
    ProofWrong {
        name: String,
        value: String,
        found: String,
    },
    #[error("{0}; nothing changed, try again later.")]
    Dns(#[from] ProofError),
    #[error("domains[{index}]: {domain} is not proven for this organisation: claim and verify it first (POST /api/v1/admin/domains, then /api/v1/admin/domains/{domain}/verify).")]
    NotProven { index: usize, domain: String },
    /// The configuration is no longer the version read (or named): nothing of it changed.
    #[error("The configuration was changed by someone else since version {read} was read; version {stored} is stored now. The domain was not added to it: read it again (GET /api/v1/admin/config) and verify again (with If-Match: \"{stored}\" if you send one).")]
    Stale { read: u64, stored: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The use case's collaborators.
pub struct Domains<'a> {
    pub claims: &'a dyn DomainClaims,
    pub owners: &'a dyn DomainOwners,
    pub config: &'a dyn ConfigStore,
    pub proofs: &'a dyn DomainProofs,
    pub identities: &'a dyn SendingIdentities,
    /// The service's event bus: claims and proofs are published as `DomainsChanged` (P7).
    pub bus: &'a dyn EventBus,
    /// The service's own receiving domain: never an organisation's.
    pub receiving_domain: &'a str,
}

/// Who asks (the audit's who, via, source, request id).
pub use crate::app::continuity::Requester;

impl Domains<'_> {
    /// Eligible and not another organisation's (nor under one's): the domain as stored, and
    /// whether this organisation already proved it.
    async fn check(&self, org: &str, domain: &str) -> Result<(String, bool), DomainError> {
        let d = eligible(domain, self.receiving_domain)?;
        let mut names = vec![d.clone()];
        names.extend(parents(&d));
        let owners = self.owners.orgs_for_domains(&names).await?;
        if let Some(owner) = owners.get(&d) {
            if owner != org {
                return Err(Refusal::Taken(d).into());
            }
            return Ok((d, true));
        }
        for p in parents(&d) {
            if owners.get(&p).is_some_and(|o| o != org) {
                return Err(Refusal::UnderAnotherOrganisation {
                    domain: d,
                    parent: p,
                }
                .into());
            }
        }
        Ok((d, false))
    }

    /// Claims `domain` for `org`: a fresh token to publish (a new claim replaces an earlier one).
    pub async fn claim(
        &self,
        org: &str,
        domain: &str,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<DomainView, DomainError> {
        let (d, proven) = self.check(org, domain).await?;
        if proven {
            return Ok(self.proven(&d).await);
        }
        let claim = DomainClaim {
            domain: d.clone(),
            token: hex::encode(rand::random::<[u8; 16]>()),
            claimed_at: now,
        };
        // The claim and its audit record in one transaction (P7).
        let record = domain_audit(org, "domain-claim", &d, by, now);
        self.claims
            .put_claim_audited(org, &claim, Some(&record))
            .await?;
        publish_audit(self.bus, &record, "DomainsChanged", &[]).await;
        Ok(pending_view(&claim))
    }

    /// Verifies the proof of `org`'s claim of `domain` through the DNS; proven, the domain is
    /// the organisation's, listed in its configuration (if `expected`, when given, is still its
    /// version), with its SES identity.
    pub async fn verify(
        &self,
        org: &str,
        domain: &str,
        expected: Option<u64>,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<DomainView, DomainError> {
        let (d, proven) = self.check(org, domain).await?;
        let stored = self.config.stored_config(org).await?;
        let version = stored.as_ref().map_or(0, |c| c.version);
        if let Some(read) = expected.filter(|&read| read != version) {
            tracing::info!(org, domain = %d, read, stored = version, "domain verify refused: stale configuration version");
            return Err(DomainError::Stale {
                read,
                stored: version,
            });
        }
        if !proven {
            let claim = self
                .claims
                .claims(org, now)
                .await?
                .into_iter()
                .find(|c| c.domain == d)
                .ok_or_else(|| DomainError::NoClaim(d.clone()))?;
            let name = proof_name(&d);
            let value = proof_value(&claim.token);
            let found = self.proofs.txt_records(&name).await?;
            if !found.iter().any(|v| v.trim() == value) {
                tracing::info!(org, domain = %d, found = ?found, "domain proof not found");
                return Err(if found.is_empty() {
                    DomainError::ProofMissing { name, value }
                } else {
                    DomainError::ProofWrong {
                        name,
                        value,
                        found: found.join(" | "),
                    }
                });
            }
            // The proof (the domain becomes this organisation's) and its audit record in one
            // transaction (P7).
            let record = domain_audit(org, "domain-proven", &d, by, now);
            if !self
                .claims
                .record_proof_audited(org, &d, now, Some(&record))
                .await?
            {
                return Err(Refusal::Taken(d).into());
            }
            publish_audit(self.bus, &record, "DomainsChanged", &[]).await;
        }
        if let Some(stored) = stored {
            if !stored
                .config
                .domains
                .iter()
                .any(|x| x.eq_ignore_ascii_case(&d))
            {
                let mut cfg = stored.config.clone();
                cfg.domains.push(d.clone());
                // A configuration change like any other: audited in its transaction, as a
                // record of its own (the proof's record has this request's key already).
                let by = Requester {
                    request_id: format!("{}-config", by.request_id),
                    ..by.clone()
                };
                let record = audit_record(
                    org,
                    "domain-added",
                    &by,
                    now,
                    (
                        json!({"domains": stored.config.domains}),
                        json!({"domains": cfg.domains}),
                    ),
                );
                match self
                    .config
                    .replace_config_audited(&cfg, Some(&stored), now, Some(&record))
                    .await
                {
                    Ok(_) => publish_audit(self.bus, &record, "ConfigChanged", &[]).await,
                    Err(PutConfigError::Store(e)) => return Err(e.into()),
                    Err(PutConfigError::Stale { read }) => {
                        let now_stored = self
                            .config
                            .stored_config(org)
                            .await?
                            .map_or(0, |c| c.version);
                        tracing::info!(org, domain = %d, read, stored = now_stored, "proven domain not added: the configuration changed meanwhile");
                        return Err(DomainError::Stale {
                            read,
                            stored: now_stored,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(org, domain = %d, error = %e, "proven domain not added to the configuration")
                    }
                }
            }
        }
        if let Err(e) = self.identities.ensure_identity(&d).await {
            tracing::warn!(org, domain = %d, error = %e, "SES identity not created: verify again to retry");
        }
        Ok(self.proven(&d).await)
    }

    /// The organisation's domains: proven ones (its configuration's) with their records and
    /// status, then pending claims with the record to publish.
    pub async fn list(
        &self,
        org: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DomainView>, DomainError> {
        let mut out = Vec::new();
        let domains = self
            .config
            .get_config(org)
            .await?
            .map(|c| c.domains)
            .unwrap_or_default();
        for d in &domains {
            out.push(self.proven(d).await);
        }
        for c in self.claims.claims(org, now).await? {
            if !domains.iter().any(|d| d.eq_ignore_ascii_case(&c.domain)) {
                out.push(pending_view(&c));
            }
        }
        Ok(out)
    }

    async fn proven(&self, d: &str) -> DomainView {
        let identity = match self.identities.identity(d).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(domain = d, error = %e, "SES identity not readable");
                None
            }
        };
        proven_view(d, &self.identities.region(), identity.as_ref())
    }

    /// A configuration change may add only domains this organisation proved (P11); removing
    /// one is always allowed.
    pub async fn require_proven(
        &self,
        org: &str,
        before: Option<&OrgConfig>,
        after: &OrgConfig,
    ) -> Result<(), DomainError> {
        require_proven(self.owners, org, before, after).await
    }
}

/// The audit record of a claim or a proof of `domain`.
fn domain_audit(
    org: &str,
    what: &str,
    domain: &str,
    by: &Requester,
    now: DateTime<Utc>,
) -> crate::domain::continuity::AuditRecord {
    change_record(org, what, by, now, json!({ "domain": domain }))
}

/// [`Domains::require_proven`] with only the ownership reader (the settings use case has it).
pub async fn require_proven(
    owners: &dyn DomainOwners,
    org: &str,
    before: Option<&OrgConfig>,
    after: &OrgConfig,
) -> Result<(), DomainError> {
    let added: Vec<(usize, String)> = after
        .domains
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            !before.is_some_and(|b| b.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
        })
        .map(|(i, d)| (i, d.to_ascii_lowercase()))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = added.iter().map(|(_, d)| d.clone()).collect();
    let owners = owners.orgs_for_domains(&names).await?;
    for (index, domain) in added {
        match owners.get(&domain).map(String::as_str) {
            Some(o) if o == org => {}
            // Another organisation's: the conflict the store would report too.
            Some(_) => return Err(DomainError::Refused(Refusal::Taken(domain))),
            None => return Err(DomainError::NotProven { index, domain }),
        }
    }
    Ok(())
}

/// Requests of the service itself (configuration as code, the local runner).
pub fn operator(request_id: &str) -> Requester {
    Requester {
        who: "operator:configuration-as-code".into(),
        via: Via::Console,
        source: "-".into(),
        request_id: request_id.into(),
    }
}
