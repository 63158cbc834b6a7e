//! What proving domains needs (P11): the DNS (the proof's TXT record), SES (each proven
//! domain's sending identity), and the table (claims and proofs).

use crate::domain::continuity::AuditRecord;
use crate::domain::domains::{DomainClaim, IdentityStatus};
use crate::ports::error::{SendError, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Why the DNS could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProofError {
    /// A timeout, a SERVFAIL: asking again later may work.
    #[error("the DNS did not answer: {0}")]
    Unavailable(String),
}

/// TXT records through a real resolver.
#[async_trait]
pub trait DomainProofs: Send + Sync {
    /// The TXT values published at `name` (each record's strings joined); empty when none.
    async fn txt_records(&self, name: &str) -> Result<Vec<String>, ProofError>;
}

/// Organisations' sending identities in SES (Easy DKIM).
#[async_trait]
pub trait SendingIdentities: Send + Sync {
    /// Creates the domain's identity if it has none; its status either way.
    async fn ensure_identity(&self, domain: &str) -> Result<IdentityStatus, SendError>;
    /// The domain's identity, if any.
    async fn identity(&self, domain: &str) -> Result<Option<IdentityStatus>, SendError>;
    /// The region SES receives mail in (the MX target).
    fn region(&self) -> String;
}

/// Claims and proofs in the table.
#[async_trait]
pub trait DomainClaims: Send + Sync {
    /// Stores (or replaces) the organisation's claim of a domain; given `audit`, its record in
    /// the same transaction (P7).
    async fn put_claim_audited(
        &self,
        org_id: &str,
        claim: &DomainClaim,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError>;
    /// [`DomainClaims::put_claim_audited`] without an audit record (tests).
    async fn put_claim(&self, org_id: &str, claim: &DomainClaim) -> Result<(), StoreError> {
        self.put_claim_audited(org_id, claim, None).await
    }
    /// The organisation's pending claims, not lapsed at `now`.
    async fn claims(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DomainClaim>, StoreError>;
    /// Records the proof: the domain's ownership item, for `org_id`, with the proof's time, if
    /// no other organisation owns it (`false` otherwise); the claim is removed. Given `audit`,
    /// its record is written in the same transaction (P7).
    async fn record_proof_audited(
        &self,
        org_id: &str,
        domain: &str,
        now: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError>;
    /// [`DomainClaims::record_proof_audited`] without an audit record (tests).
    async fn record_proof(
        &self,
        org_id: &str,
        domain: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.record_proof_audited(org_id, domain, now, None).await
    }
}
