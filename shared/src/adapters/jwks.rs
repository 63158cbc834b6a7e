//! The identity provider's keys: fetched over HTTPS and cached ([`RemoteJwks`]), or made on the
//! spot by a local identity provider ([`LocalIssuer`]: local runs and tests sign their own ES256
//! tokens; `JwtVerifier::with_key_set(issuer.settings.clone(), issuer.jwks())` trusts them).

use crate::domain::identity::{AuthError, IdentitySettings};
use crate::ports::identity::JwksSource;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The key set is refetched at most this often when a token names an unknown key.
const MIN_REFRESH: Duration = Duration::from_secs(60);
/// A fetched key set is used for at most this long.
const MAX_AGE: Duration = Duration::from_secs(3600);

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

/// A local identity provider: signs tokens with a fresh ES256 key (local runs and tests).
pub struct LocalIssuer {
    pub settings: IdentitySettings,
    pub(crate) kid: String,
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
        self.sign(&claims)
    }

    /// `claims` exactly as given, signed with this issuer's key (tests of what a provider may
    /// send: a missing or false `email_verified`, odd claim types).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
    }
}
