//! Proven domains (P11), domain side: which domains an organisation may claim at all, the DNS
//! TXT proof it publishes, and the records its administrators publish for SES (DKIM CNAMEs, MX,
//! an optional custom MAIL FROM) with each one's status.
//!
//! A domain joins an organisation only after the proof: a TXT record at
//! `_email-continuity.{domain}` holding `email-continuity-verification={token}`, the token issued
//! by the service for that organisation and domain. Never eligible: a public suffix (the public
//! suffix list, compiled in), the service's own receiving domain or a name under it, and a
//! subdomain of a domain another organisation proved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The label under which the proof is published.
pub const PROOF_LABEL: &str = "_email-continuity";
/// What the proof's TXT value starts with.
pub const PROOF_PREFIX: &str = "email-continuity-verification=";
/// A claim not proven within this many days lapses (a new claim issues a new token).
pub const CLAIM_DAYS: i64 = 14;

/// Where the proof of `domain` is published.
pub fn proof_name(domain: &str) -> String {
    format!("{PROOF_LABEL}.{domain}")
}

/// The TXT value that proves a claim with `token`.
pub fn proof_value(token: &str) -> String {
    format!("{PROOF_PREFIX}{token}")
}

/// Why a domain cannot be claimed or proven; the messages are for the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?} is not a domain name")]
    NotADomain(String),
    #[error("{0} is a public suffix (the public suffix list): nobody's domain can be all of it")]
    PublicSuffix(String),
    #[error("{0} is the service's own receiving domain (or under it)")]
    ReceivingDomain(String),
    #[error("{domain} is under {parent}, which another organisation proved")]
    UnderAnotherOrganisation { domain: String, parent: String },
    #[error("{0} belongs to another organisation")]
    Taken(String),
}

/// The domain as stored (lower case, no trailing dot), if an organisation may claim it at all:
/// a DNS name, not a public suffix, not the receiving domain nor under it. Pure; the ownership
/// of parents is the caller's to check ([`parents`]).
pub fn eligible(domain: &str, receiving_domain: &str) -> Result<String, Refusal> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !crate::domain::config::is_domain(&d) {
        return Err(Refusal::NotADomain(domain.to_string()));
    }
    if is_public_suffix(&d) {
        return Err(Refusal::PublicSuffix(d));
    }
    let receiving = receiving_domain.trim_end_matches('.').to_ascii_lowercase();
    if !receiving.is_empty() && crate::domain::config::domain_within(&d, &receiving) {
        return Err(Refusal::ReceivingDomain(d));
    }
    Ok(d)
}

/// A public suffix: nothing registrable in it (`co.uk`, `github.io`, `com`).
pub fn is_public_suffix(domain: &str) -> bool {
    psl::domain(domain.as_bytes()).is_none()
}

/// The proper parents of `domain` that could be someone's domain: `a.b.acme.example` ->
/// `b.acme.example`, `acme.example` (public suffixes left out).
pub fn parents(domain: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        if is_public_suffix(parent) {
            break;
        }
        out.push(parent.to_string());
        rest = parent;
    }
    out
}

/// A claim waiting for its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainClaim {
    pub domain: String,
    pub token: String,
    pub claimed_at: DateTime<Utc>,
}

/// What SES says of a proven domain's sending identity (Easy DKIM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStatus {
    /// SES may send as the domain (its DKIM records were found).
    pub verified_for_sending: bool,
    /// `PENDING`, `SUCCESS`, `FAILED`, `TEMPORARY_FAILURE`, `NOT_STARTED`.
    pub dkim_status: String,
    /// The Easy DKIM tokens: `{token}._domainkey.{domain} CNAME {token}.dkim.amazonses.com`.
    pub dkim_tokens: Vec<String>,
    /// The custom MAIL FROM domain, when one is set, and its status.
    pub mail_from_domain: Option<String>,
    pub mail_from_status: Option<String>,
}

/// One DNS record an administrator publishes, with what it is for and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
    pub purpose: &'static str,
    /// `found`, `pending`, `failed`, `not set up`, or SES's own word.
    pub status: String,
    pub optional: bool,
}

/// A domain as the administration API and configuration as code show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainView {
    pub domain: String,
    /// `pending` (waiting for its proof) or `proven`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    pub records: Vec<DnsRecord>,
}

/// The records of a pending claim: the proof alone.
pub fn pending_view(claim: &DomainClaim) -> DomainView {
    DomainView {
        domain: claim.domain.clone(),
        status: "pending",
        claimed_at: Some(claim.claimed_at),
        records: vec![DnsRecord {
            name: proof_name(&claim.domain),
            kind: "TXT",
            value: proof_value(&claim.token),
            purpose: "proves the organisation controls the domain; the service checks it when asked to verify",
            status: "pending".into(),
            optional: false,
        }],
    }
}

/// The records of a proven domain: SES's DKIM CNAMEs, the MX record pointing at SES receiving in
/// `region`, and the optional custom MAIL FROM records.
pub fn proven_view(domain: &str, region: &str, identity: Option<&IdentityStatus>) -> DomainView {
    let dkim_status = identity
        .map(|i| i.dkim_status.to_ascii_lowercase())
        .unwrap_or_else(|| "identity not created yet".into());
    let mut records: Vec<DnsRecord> = identity
        .map(|i| i.dkim_tokens.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|t| DnsRecord {
            name: format!("{t}._domainkey.{domain}"),
            kind: "CNAME",
            value: format!("{t}.dkim.amazonses.com"),
            purpose: "Easy DKIM: SES signs the mail users send from this domain (U3), and may send as it",
            status: dkim_status.clone(),
            optional: false,
        })
        .collect();
    records.push(DnsRecord {
        name: domain.to_string(),
        kind: "MX",
        value: format!("10 inbound-smtp.{region}.amazonaws.com"),
        purpose: "the domain's mail reaches the service (SES receiving); set it when the service should stand in front of the server",
        status: "not checked by the service".into(),
        optional: false,
    });
    let mail_from = format!("mail.{domain}");
    let mail_from_status = identity
        .and_then(|i| i.mail_from_status.clone())
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "not set up".into());
    records.push(DnsRecord {
        name: mail_from.clone(),
        kind: "MX",
        value: format!("10 feedback-smtp.{region}.amazonses.com"),
        purpose: "optional custom MAIL FROM: bounces of users' mail return through SES under the organisation's own domain (SPF alignment)",
        status: mail_from_status.clone(),
        optional: true,
    });
    records.push(DnsRecord {
        name: mail_from,
        kind: "TXT",
        value: "\"v=spf1 include:amazonses.com ~all\"".into(),
        purpose: "optional custom MAIL FROM: SPF for it",
        status: mail_from_status,
        optional: true,
    });
    DomainView {
        domain: domain.to_string(),
        status: "proven",
        claimed_at: None,
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility() {
        assert_eq!(
            eligible("Acme.Example.", "continuity.example.org"),
            Ok("acme.example".into())
        );
        assert_eq!(
            eligible("eu.acme.co.uk", "c.example.org"),
            Ok("eu.acme.co.uk".into())
        );
        for (d, want) in [
            ("co.uk", Refusal::PublicSuffix("co.uk".into())),
            ("github.io", Refusal::PublicSuffix("github.io".into())),
            (
                "continuity.example.org",
                Refusal::ReceivingDomain("continuity.example.org".into()),
            ),
            (
                "x.continuity.example.org",
                Refusal::ReceivingDomain("x.continuity.example.org".into()),
            ),
            ("not a domain", Refusal::NotADomain("not a domain".into())),
            ("com", Refusal::NotADomain("com".into())),
        ] {
            assert_eq!(eligible(d, "continuity.example.org"), Err(want), "{d}");
        }
        assert_eq!(
            eligible("example.org", "continuity.example.org"),
            Ok("example.org".into()),
            "a parent of the receiving domain is someone's domain"
        );
    }

    #[test]
    fn parents_stop_at_the_public_suffix() {
        assert_eq!(
            parents("a.b.acme.co.uk"),
            vec!["b.acme.co.uk", "acme.co.uk"]
        );
        assert!(parents("acme.example").is_empty());
    }

    #[test]
    fn views() {
        let claim = DomainClaim {
            domain: "acme.example".into(),
            token: "t0k".into(),
            claimed_at: "2026-11-23T10:00:00Z".parse().expect("time"),
        };
        let v = pending_view(&claim);
        assert_eq!(v.records[0].name, "_email-continuity.acme.example");
        assert_eq!(v.records[0].value, "email-continuity-verification=t0k");
        let id = IdentityStatus {
            dkim_tokens: vec!["a".into(), "b".into(), "c".into()],
            dkim_status: "PENDING".into(),
            ..Default::default()
        };
        let v = proven_view("acme.example", "eu-west-1", Some(&id));
        assert_eq!(v.records.iter().filter(|r| r.kind == "CNAME").count(), 3);
        assert!(v.records.iter().any(|r| r.kind == "MX"
            && r.value == "10 inbound-smtp.eu-west-1.amazonaws.com"
            && !r.optional));
        assert!(v
            .records
            .iter()
            .any(|r| r.optional && r.name == "mail.acme.example"));
    }
}
