//! Signed-in administrators and users (P8, U7): JSON Web Tokens from the organisation's identity
//! provider (for example a Cognito user pool), verified against its published key set (JWKS)
//! with the issuer, audience, expiry and not-before checked.
//!
//! - Only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA): a token signed with a
//!   shared secret, or with `alg: none`, is refused, and the key is chosen by the token's `kid`
//!   from the provider's set, never from the token.
//! - Expiry is checked against the service's clock (the handlers' `now`), with one minute of
//!   leeway for clock differences.
//! - The key set is fetched once and cached; a token with an unknown `kid` (the provider rotated
//!   its keys) refetches it, at most once a minute, less often while the provider is down
//!   (`crate::adapters::jwks`).
//! - Whether the token shows the second factor administrators must use (a configured claim and
//!   value, `amr` holding `mfa` by default): [`Identity::second_factor`]; the administration API
//!   refuses an administrator's token without it.
//!
//! The keys come through the `JwksSource` port: fetched from the provider, or given by the local
//! runner's own issuer (`crate::adapters::jwks`).

use crate::domain::identity::{AuthError, Identity, IdentitySettings};
use crate::ports::identity::JwksSource;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::sync::Arc;

/// Clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;
/// A key set given up front (local runs, tests).
pub struct StaticJwks(pub Arc<JwkSet>);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn keys(&self, _refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        Ok(self.0.clone())
    }
}

/// Verifies tokens.
pub struct JwtVerifier {
    pub settings: IdentitySettings,
    jwks: Arc<dyn JwksSource>,
}

#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    client_id: Option<String>,
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl JwtVerifier {
    pub fn new(settings: IdentitySettings, jwks: Arc<dyn JwksSource>) -> Self {
        JwtVerifier { settings, jwks }
    }

    /// A verifier that trusts a key set given up front (a local issuer's, in local runs and
    /// tests).
    pub fn with_key_set(settings: IdentitySettings, keys: Arc<JwkSet>) -> Self {
        Self::new(settings, Arc::new(StaticJwks(keys)))
    }

    /// Verifies `token` at `now`.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Identity, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.clone().ok_or(AuthError::UnknownKey)?;
        let mut set = self.jwks.keys(false).await?;
        if set.find(&kid).is_none() {
            set = self.jwks.keys(true).await?;
        }
        let jwk = set.find(&kid).ok_or(AuthError::UnknownKey)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| AuthError::UnknownKey)?;
        if let Some(alg) = jwk.common.key_algorithm {
            if format!("{alg:?}") != format!("{:?}", header.alg) {
                return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
            }
        }
        // Signature only here; the claims are checked below against the service's clock.
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<RawClaims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::Algorithm(format!("{:?}", header.alg))
                }
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        let c = data.claims;
        let iss = c.iss.unwrap_or_default();
        if iss != self.settings.issuer {
            return Err(AuthError::WrongIssuer(iss));
        }
        let audience_ok = match &c.aud {
            Some(Audience::One(a)) => *a == self.settings.audience,
            Some(Audience::Many(v)) => v.contains(&self.settings.audience),
            None => c.client_id.as_deref() == Some(self.settings.audience.as_str()),
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        let exp = c
            .exp
            .ok_or_else(|| AuthError::Malformed("no exp claim".into()))?;
        let expires_at = DateTime::from_timestamp(exp, 0)
            .ok_or_else(|| AuthError::Malformed("exp out of range".into()))?;
        if now.timestamp() > exp + LEEWAY_SECS {
            return Err(AuthError::Expired(expires_at));
        }
        if let Some(nbf) = c.nbf {
            if now.timestamp() + LEEWAY_SECS < nbf {
                return Err(AuthError::NotYetValid(
                    DateTime::from_timestamp(nbf, 0).unwrap_or(now),
                ));
            }
        }
        let subject = c
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::NoSubject)?;
        // Only an address the provider says it verified finds mailboxes: with a provider that
        // omits the claim, a user who can set their own address would read that mailbox.
        let verified = match &c.email_verified {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            Some(_) => false,
        };
        let email = c
            .email
            .filter(|_| verified)
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| crate::domain::config::is_address(e));
        let groups = match c.rest.get(&self.settings.groups_claim) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(s)) => s
                .split([',', ' '])
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let org_claim = c
            .rest
            .get(&self.settings.org_claim)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let admin = groups.contains(&self.settings.admin_group);
        let second_factor = match &self.settings.admin_second_factor {
            None => true,
            Some(req) => match c.rest.get(&req.claim) {
                Some(serde_json::Value::Array(a)) => {
                    a.iter().any(|m| m.as_str() == Some(&req.value))
                }
                Some(serde_json::Value::String(s)) => s.split(' ').any(|m| m == req.value),
                _ => false,
            },
        };
        Ok(Identity {
            subject,
            email,
            groups,
            org_claim,
            expires_at,
            admin,
            second_factor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::jwks::{LocalIssuer, TokenRequest};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::TimeZone;

    fn settings() -> IdentitySettings {
        IdentitySettings::cognito("https://idp.test/pool", "portal")
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn issue(i: &LocalIssuer, groups: &[&str]) -> String {
        i.issue(
            &TokenRequest {
                subject: "u-1",
                email: Some("Alice@Acme.Test"),
                groups,
                org: None,
                second_factor: true,
            },
            now(),
            chrono::Duration::hours(1),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_good_token_verifies_and_says_who() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let id = JwtVerifier::with_key_set(i.settings.clone(), i.jwks())
            .verify(&issue(&i, &["continuity-admins"]), now())
            .await
            .unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.email.as_deref(), Some("alice@acme.test"));
        assert!(id.admin);
        let id = JwtVerifier::with_key_set(i.settings.clone(), i.jwks())
            .verify(&issue(&i, &[]), now())
            .await
            .unwrap();
        assert!(!id.admin);
    }

    #[tokio::test]
    async fn an_address_counts_only_when_the_provider_says_it_verified_it() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let v = JwtVerifier::with_key_set(i.settings.clone(), i.jwks());
        let email = |verified: Option<serde_json::Value>| {
            let mut claims = serde_json::json!({
                "iss": i.settings.issuer, "aud": i.settings.audience, "sub": "u-1",
                "exp": (now() + chrono::Duration::hours(1)).timestamp(),
                "email": "Alice@Acme.Test",
            });
            if let Some(b) = verified {
                claims["email_verified"] = b;
            }
            i.sign(&claims).unwrap()
        };
        for (claim, expected) in [
            (Some(true.into()), Some("alice@acme.test")),
            (Some("true".into()), Some("alice@acme.test")),
            (None, None),
            (Some(false.into()), None),
            (Some("false".into()), None),
            (Some(1.into()), None),
        ] {
            let id = v.verify(&email(claim.clone()), now()).await.unwrap();
            // The token still signs the user in (a code or passkey finds the mailbox instead).
            assert_eq!(id.subject, "u-1");
            assert_eq!(id.email.as_deref(), expected, "email_verified {claim:?}");
        }
    }

    #[tokio::test]
    async fn a_second_factor_counts_only_when_the_configured_claim_holds_its_value() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let token = |amr: Option<serde_json::Value>| {
            let mut claims = serde_json::json!({
                "iss": i.settings.issuer, "aud": i.settings.audience, "sub": "u-1",
                "exp": (now() + chrono::Duration::hours(1)).timestamp(),
            });
            if let Some(a) = amr {
                claims["amr"] = a;
            }
            i.sign(&claims).unwrap()
        };
        let v = JwtVerifier::with_key_set(i.settings.clone(), i.jwks());
        for (amr, expected) in [
            (Some(serde_json::json!(["pwd", "mfa"])), true),
            (Some("pwd mfa".into()), true),
            (Some("mfa".into()), true),
            (Some(serde_json::json!(["pwd"])), false),
            (Some("pwdmfa".into()), false),
            (Some(serde_json::json!({"mfa": true})), false),
            (None, false),
        ] {
            let id = v.verify(&token(amr.clone()), now()).await.unwrap();
            assert_eq!(id.second_factor, expected, "amr {amr:?}");
        }
        // Nothing asked (a provider that asks every sign-in for one): every token shows it.
        let mut s = settings();
        s.admin_second_factor = None;
        let v = JwtVerifier::with_key_set(s, i.jwks());
        assert!(v.verify(&token(None), now()).await.unwrap().second_factor);
    }

    #[tokio::test]
    async fn refusals() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let v = JwtVerifier::with_key_set(i.settings.clone(), i.jwks());
        let tok = issue(&i, &[]);
        // Expired (past the leeway), not yet valid is covered by exp/nbf arithmetic.
        let late = now() + chrono::Duration::hours(1) + chrono::Duration::seconds(LEEWAY_SECS + 1);
        assert!(matches!(
            v.verify(&tok, late).await,
            Err(AuthError::Expired(_))
        ));
        // Another issuer's key.
        let other = LocalIssuer::generate(settings()).unwrap();
        assert_eq!(
            v.verify(&issue(&other, &[]), now()).await,
            Err(AuthError::UnknownKey)
        );
        // Tampered payload.
        let parts: Vec<&str> = tok.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = "u-2".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert_eq!(v.verify(&forged, now()).await, Err(AuthError::BadSignature));
        // alg none and HS256 are refused before any key is looked at.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(v.verify(&none, now()).await.is_err());
        let hs = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, i.kid)),
            parts[1],
            parts[2]
        );
        assert!(matches!(
            v.verify(&hs, now()).await,
            Err(AuthError::Algorithm(_))
        ));
        // Wrong audience and issuer.
        let mut s = settings();
        s.audience = "other-app".into();
        let v2 = JwtVerifier::new(s, Arc::new(StaticJwks(i.jwks())));
        assert_eq!(v2.verify(&tok, now()).await, Err(AuthError::WrongAudience));
        let mut s = settings();
        s.issuer = "https://idp.test/other".into();
        let v3 = JwtVerifier::new(s, Arc::new(StaticJwks(i.jwks())));
        assert!(matches!(
            v3.verify(&tok, now()).await,
            Err(AuthError::WrongIssuer(_))
        ));
        assert!(matches!(
            v.verify("garbage", now()).await,
            Err(AuthError::Malformed(_))
        ));
    }
}
