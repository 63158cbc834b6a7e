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
//!   its keys) refetches it, at most once a minute.
//!
//! [`LocalIssuer`] signs tokens for a local run and for tests (ES256, a fresh key per start):
//! the local runner's stand-in for the identity provider.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 60;
/// The key set is refetched at most this often when a token names an unknown key.
const MIN_REFRESH: Duration = Duration::from_secs(60);
/// A fetched key set is used for at most this long.
const MAX_AGE: Duration = Duration::from_secs(3600);

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
}

impl IdentitySettings {
    /// Cognito's claim names, the given issuer and audience, administrators in `continuity-admins`.
    pub fn cognito(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        IdentitySettings {
            issuer: issuer.into(),
            audience: audience.into(),
            admin_group: "continuity-admins".into(),
            groups_claim: "cognito:groups".into(),
            org_claim: "custom:org_id".into(),
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

/// The identity provider's published keys.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The key set; `refresh` asks for a fresh copy (a token named an unknown key).
    async fn keys(&self, refresh: bool) -> Result<Arc<JwkSet>, AuthError>;
}

/// A key set given up front (local runs, tests).
pub struct StaticJwks(pub Arc<JwkSet>);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn keys(&self, _refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        Ok(self.0.clone())
    }
}

/// A key set fetched over HTTPS from the provider's JWKS URL, cached.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    cache: Mutex<Option<(Instant, Arc<JwkSet>)>>,
}

impl RemoteJwks {
    pub fn new(url: impl Into<String>) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::Keys(e.to_string()))?;
        Ok(RemoteJwks {
            url: url.into(),
            http,
            cache: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let resp = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| AuthError::Keys(format!("{}: {e}", self.url)))?;
        if !resp.status().is_success() {
            return Err(AuthError::Keys(format!(
                "{} answered {}",
                self.url,
                resp.status()
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| AuthError::Keys(format!("{}: {e}", self.url)))?;
        serde_json::from_slice(&body).map_err(|e| AuthError::Keys(format!("{}: {e}", self.url)))
    }
}

#[async_trait]
impl JwksSource for RemoteJwks {
    async fn keys(&self, refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, set)) = cache.as_ref() {
            let age = at.elapsed();
            if age < MAX_AGE && (!refresh || age < MIN_REFRESH) {
                return Ok(set.clone());
            }
        }
        match self.fetch().await {
            Ok(set) => {
                let set = Arc::new(set);
                *cache = Some((Instant::now(), set.clone()));
                Ok(set)
            }
            // A failed refetch keeps the cached set usable.
            Err(e) => match cache.as_ref() {
                Some((_, set)) => {
                    tracing::warn!(error = %e, "JWKS refetch failed; using the cached key set");
                    Ok(set.clone())
                }
                None => Err(e),
            },
        }
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
        // An address the provider says is unverified is not used to find mailboxes.
        let verified = match &c.email_verified {
            None => true,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            Some(_) => false,
        };
        let email = c
            .email
            .filter(|_| verified)
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| crate::config::is_address(e));
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
        Ok(Identity {
            subject,
            email,
            groups,
            org_claim,
            expires_at,
            admin,
        })
    }
}

/// A local identity provider: signs tokens with a fresh ES256 key (local runs and tests).
pub struct LocalIssuer {
    pub settings: IdentitySettings,
    kid: String,
    key: EncodingKey,
    jwks: Arc<JwkSet>,
}

/// What a [`LocalIssuer`] puts in a token.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest<'a> {
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub groups: &'a [&'a str],
    pub org: Option<&'a str>,
}

impl LocalIssuer {
    /// A new key, with the issuer and audience of `settings`.
    pub fn generate(settings: IdentitySettings) -> Result<Self, String> {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| format!("key generation: {e}"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|e| format!("key: {e}"))?;
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err("unexpected public key encoding".into());
        }
        let kid = format!("local-{}", &hex::encode(&point[1..9]));
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [jwk] }))
            .map_err(|e| format!("jwks: {e}"))?;
        Ok(LocalIssuer {
            settings,
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwks: Arc::new(jwks),
        })
    }

    /// The published key set (what the runner serves at `/.well-known/jwks.json`).
    pub fn jwks(&self) -> Arc<JwkSet> {
        self.jwks.clone()
    }

    /// A verifier that trusts this issuer.
    pub fn verifier(&self) -> JwtVerifier {
        JwtVerifier::new(self.settings.clone(), Arc::new(StaticJwks(self.jwks())))
    }

    /// A token valid from `now` for `ttl`.
    pub fn issue(
        &self,
        req: &TokenRequest<'_>,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<String, String> {
        let mut claims = serde_json::json!({
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": req.subject,
            "iat": now.timestamp(),
            "exp": (now + ttl).timestamp(),
            "token_use": "id",
        });
        let obj = claims.as_object_mut().ok_or("claims are not an object")?;
        if let Some(e) = req.email {
            obj.insert("email".into(), e.into());
            obj.insert("email_verified".into(), true.into());
        }
        if !req.groups.is_empty() {
            obj.insert(self.settings.groups_claim.clone(), req.groups.into());
        }
        if let Some(o) = req.org {
            obj.insert(self.settings.org_claim.clone(), o.into());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            },
            now(),
            chrono::Duration::hours(1),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_good_token_verifies_and_says_who() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let id = i
            .verifier()
            .verify(&issue(&i, &["continuity-admins"]), now())
            .await
            .unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.email.as_deref(), Some("alice@acme.test"));
        assert!(id.admin);
        let id = i.verifier().verify(&issue(&i, &[]), now()).await.unwrap();
        assert!(!id.admin);
    }

    #[tokio::test]
    async fn refusals() {
        let i = LocalIssuer::generate(settings()).unwrap();
        let v = i.verifier();
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
