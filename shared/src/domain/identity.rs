//! Who signed in (P8, U7): the identity provider's settings, what a verified token says, and why
//! a token is refused.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where tokens come from, and what in them means what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// The `iss` every token must carry (a Cognito pool: `https://cognito-idp.{region}.amazonaws.com/{pool id}`).
    pub issuer: String,
    /// The `aud` (or, for Cognito access tokens, `client_id`) every token must carry.
    pub audience: String,
    /// Members of this group (in [`IdentitySettings::groups_claim`]) are administrators of their organisation.
    pub admin_group: String,
    /// The claim listing the user's groups.
    pub groups_claim: String,
    /// The claim naming the user's organisation; without it, the organisation is the one that
    /// owns the domain of the user's `email`.
    pub org_claim: String,
    /// What an administrator's token must show of a second factor (`ADMIN_MFA_CLAIM`); `None`
    /// when the provider itself asks every sign-in for one (the stack's own user pool, MFA on).
    pub admin_second_factor: Option<ClaimValue>,
}

/// A claim that must carry a value: a string equal to it, a space-separated string holding it,
/// or an array holding it (`amr` is an array of method names, RFC 8176: `mfa`, `otp`, `hwk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimValue {
    pub claim: String,
    pub value: String,
}

impl ClaimValue {
    /// `claim=value` (`amr=mfa`), or `none` for no requirement.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        match text.split_once('=') {
            Some((c, v)) if !c.trim().is_empty() && !v.trim().is_empty() => Ok(Some(ClaimValue {
                claim: c.trim().to_string(),
                value: v.trim().to_string(),
            })),
            _ => Err(format!(
                "{text:?} is neither `claim=value` (for example `amr=mfa`) nor `none`"
            )),
        }
    }
}

impl std::fmt::Display for ClaimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' holding '{}'", self.claim, self.value)
    }
}

impl IdentitySettings {
    /// Cognito's claim names, the given issuer and audience, administrators in `continuity-admins`
    /// who must show a second factor in `amr` (OpenID Connect's authentication methods claim).
    pub fn cognito(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        IdentitySettings {
            issuer: issuer.into(),
            audience: audience.into(),
            admin_group: "continuity-admins".into(),
            groups_claim: "cognito:groups".into(),
            org_claim: "custom:org_id".into(),
            admin_second_factor: Some(ClaimValue {
                claim: "amr".into(),
                value: "mfa".into(),
            }),
        }
    }
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    /// Their address (lower case), when the token carries a verified one.
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// The organisation named by the token, if it names one.
    pub org_claim: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Member of the administrators' group.
    pub admin: bool,
    /// The token shows the second factor [`IdentitySettings::admin_second_factor`] asks of
    /// administrators (always true when nothing is asked).
    pub second_factor: bool,
}

/// Why a token was refused. Every one answers 401 and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("sign-in required: no token was sent")]
    Missing,
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0} is not accepted (asymmetric signatures only)")]
    Algorithm(String),
    #[error("the token is signed with a key the identity provider does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token was issued by {0:?}, not by this service's identity provider")]
    WrongIssuer(String),
    #[error("the token is for another application (audience)")]
    WrongAudience,
    #[error("the token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the token is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
    #[error("the token has no subject")]
    NoSubject,
    #[error("the identity provider's keys cannot be read: {0}")]
    Keys(String),
}

impl AuthError {
    /// The provider's keys could not be read: the service's fault, not the caller's (503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Keys(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_requirement_is_claim_equals_value_or_none() {
        let amr = ClaimValue::parse(" amr=mfa ").unwrap().unwrap();
        assert_eq!((amr.claim.as_str(), amr.value.as_str()), ("amr", "mfa"));
        assert_eq!(amr.to_string(), "'amr' holding 'mfa'");
        assert_eq!(ClaimValue::parse("NONE"), Ok(None));
        let acr = ClaimValue::parse("acr=urn:cognito:loa:3").unwrap().unwrap();
        assert_eq!(acr.value, "urn:cognito:loa:3");
        for bad in ["", "amr", "amr=", "=mfa"] {
            assert!(ClaimValue::parse(bad).is_err(), "{bad:?}");
        }
    }
}
