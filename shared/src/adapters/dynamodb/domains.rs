//! Domain claims and proofs (`TABLE.md`: `DOMAINCLAIM#`, and `proven_at` on `DOMAIN#`):
//! [`DomainClaims`]. A claim lives under the organisation until its proof is recorded; the
//! proof is the domain's ownership item, which only one organisation can hold.

use super::codec::{expire, get_s, get_ts, key, s, ts, Item};
use super::keys::{claim_sk, domain_pk, org_pk, CLAIM_PREFIX, DOMAIN_SK};
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::AuditRecord;
use crate::domain::domains::{DomainClaim, CLAIM_DAYS};
use crate::ports::domains::DomainClaims;
use crate::ports::error::StoreError;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put};
use chrono::{DateTime, Duration, Utc};

fn parse_claim(item: &Item) -> Result<Option<DomainClaim>, StoreError> {
    Ok(get_ts(item, "claimed_at")?.map(|claimed_at| DomainClaim {
        domain: get_s(item, "domain").unwrap_or_default().to_string(),
        token: get_s(item, "token").unwrap_or_default().to_string(),
        claimed_at,
    }))
}

#[async_trait]
impl DomainClaims for DynamoStore {
    /// `PutItem DOMAINCLAIM#{domain}` (replaces an earlier claim; TTL 14 days); with an audit
    /// record, one transaction of both.
    async fn put_claim_audited(
        &self,
        org_id: &str,
        c: &DomainClaim,
        audit: Option<&AuditRecord>,
    ) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), claim_sk(&c.domain));
        item.insert("domain".into(), s(&c.domain));
        item.insert("token".into(), s(&c.token));
        item.insert("claimed_at".into(), ts(c.claimed_at));
        expire(&mut item, c.claimed_at, CLAIM_DAYS);
        let Some(audit) = audit else {
            return self.put("PutItem domain claim", item).await;
        };
        let items = vec![self.tx_put(Put::builder().set_item(Some(item)))?];
        match self
            .transact_audited("TransactWriteItems domain claim", items, Some(audit))
            .await?
        {
            Transacted::Written => Ok(()),
            // Only the audit record has a condition (read as written): cannot happen.
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// `Query begins_with(sk, DOMAINCLAIM#)` (claims are few), lapsed ones left out.
    async fn claims(
        &self,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DomainClaim>, StoreError> {
        let items = self
            .all_with_prefix(org_id, CLAIM_PREFIX, "Query domain claims")
            .await?;
        let mut out = Vec::new();
        for item in &items {
            if let Some(c) = parse_claim(item)? {
                if c.claimed_at + Duration::days(CLAIM_DAYS) > now {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// One transaction: `Put DOMAIN#{d}` (`org_id`, `proven_at`) if absent or this
    /// organisation's + `Delete DOMAINCLAIM#{d}` (+ `Put AUDIT#..` if absent).
    async fn record_proof_audited(
        &self,
        org_id: &str,
        domain: &str,
        now: DateTime<Utc>,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError> {
        let mut item = key(domain_pk(domain), DOMAIN_SK);
        item.insert("org_id".into(), s(org_id));
        item.insert("proven_at".into(), ts(now));
        let items = vec![
            self.tx_put(
                Put::builder()
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk) OR org_id = :org")
                    .expression_attribute_values(":org", s(org_id)),
            )?,
            self.tx_delete(Delete::builder().set_key(Some(key(org_pk(org_id), claim_sk(domain)))))?,
        ];
        match self
            .transact_audited("TransactWriteItems domain proof", items, audit)
            .await?
        {
            Transacted::Written => Ok(true),
            Transacted::Refused(c) if c.failed(0) => Ok(false),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }
}
