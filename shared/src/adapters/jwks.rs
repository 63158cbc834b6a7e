//! The identity provider's keys: fetched over HTTPS and cached ([`RemoteJwks`]), or made on the
//! spot by a local identity provider ([`LocalIssuer`]: local runs and tests sign their own ES256
//! tokens; `JwtVerifier::with_key_set(issuer.settings.clone(), issuer.jwks())` trusts them).
//!
//! The cache must not let a provider that is down or slow take sign-in with it (issue 12):
//! - no lock is held across the network call: a request whose token names a cached key is
//!   answered from the cache while a refetch is under way, whatever the provider does;
//! - one fetch at a time (single flight): requests that need a fresh set (an unknown `kid`, or
//!   nothing cached yet) share the fetch under way instead of starting their own;
//! - a failed fetch backs off: the next attempt comes no sooner than a delay that doubles with
//!   each failure up to a cap, and after a good fetch an unknown `kid` refetches at most once per
//!   [`JwksPolicy::min_refresh`]; so tokens with made-up key ids cannot make the service hammer
//!   the provider, and are refused (401) from the cached set;
//! - every fetch is bounded by [`JwksPolicy::timeout`].
//!
//! The decisions are [`KeyCache::plan`] and [`KeyCache::fetched`]: pure, given the monotonic
//! `now`, unit-tested below.

use crate::domain::identity::{AuthError, IdentitySettings};
use crate::ports::identity::JwksSource;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The figures of the key-set cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// A fetched set is refetched once it is this old (served meanwhile, and for as long as the
    /// provider cannot be reached).
    pub max_age: Duration,
    /// After a good fetch, a token naming an unknown key refetches the set at most this often
    /// (a key rotation is seen within this; made-up key ids cost the provider nothing more).
    pub min_refresh: Duration,
    /// After the first failed fetch, the next attempt waits this long; each further failure
    /// doubles the wait, up to [`JwksPolicy::backoff_cap`].
    pub backoff_first: Duration,
    pub backoff_cap: Duration,
    /// One fetch takes at most this long (connecting included).
    pub timeout: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            max_age: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(60),
            backoff_first: Duration::from_secs(15),
            backoff_cap: Duration::from_secs(300),
            timeout: Duration::from_secs(3),
        }
    }
}

impl JwksPolicy {
    /// The wait after `failures` failed fetches in a row (at least one).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.backoff_first
            .saturating_mul(1 << doublings)
            .min(self.backoff_cap)
    }
}

/// What a request does with the cache.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Use this set (fresh enough, or the provider may not be asked again yet).
    Serve(Arc<JwkSet>),
    /// Ask the provider now.
    Fetch,
    /// Nothing cached and the provider may not be asked again for this long.
    Refuse(Duration),
}

/// The cache's state: the last good set, and the attempts.
#[derive(Debug, Default)]
pub struct KeyCache {
    set: Option<(Instant, Arc<JwkSet>)>,
    /// When the last fetch started (good or not).
    last_attempt: Option<Instant>,
    /// Failed fetches since the last good one.
    failures: u32,
    last_error: Option<String>,
}

impl KeyCache {
    /// When the provider may be asked again.
    fn next_allowed(&self, p: &JwksPolicy) -> Option<Instant> {
        let last = self.last_attempt?;
        Some(if self.failures == 0 {
            last + p.min_refresh
        } else {
            last + p.backoff(self.failures)
        })
    }

    /// What a request does at `now`: `refresh` when its token names a key the set lacks.
    pub fn plan(&self, refresh: bool, now: Instant, p: &JwksPolicy) -> Plan {
        let next = self.next_allowed(p);
        let may_fetch = next.is_none_or(|t| now >= t);
        match &self.set {
            Some((at, set)) => {
                let stale = now.saturating_duration_since(*at) >= p.max_age;
                if (refresh || stale) && may_fetch {
                    Plan::Fetch
                } else {
                    Plan::Serve(set.clone())
                }
            }
            None if may_fetch => Plan::Fetch,
            None => Plan::Refuse(next.map_or(Duration::ZERO, |t| t - now)),
        }
    }

    /// A fetch starts at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_attempt = Some(now);
    }

    /// A fetch ended at `now`: the set to answer with (the new one, or the cached one when the
    /// fetch failed), or the error when nothing is cached.
    pub fn fetched(
        &mut self,
        result: Result<JwkSet, AuthError>,
        now: Instant,
    ) -> Result<Arc<JwkSet>, AuthError> {
        match result {
            Ok(set) => {
                let set = Arc::new(set);
                self.set = Some((now, set.clone()));
                self.failures = 0;
                self.last_error = None;
                Ok(set)
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some(e.to_string());
                match &self.set {
                    Some((_, set)) => Ok(set.clone()),
                    None => Err(e),
                }
            }
        }
    }

    /// Why nothing can be served for `wait` more.
    fn refusal(&self, wait: Duration) -> AuthError {
        AuthError::Keys(format!(
            "{}; next attempt in {} s",
            self.last_error.as_deref().unwrap_or("not fetched yet"),
            wait.as_secs().max(1)
        ))
    }
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<JwkSet>, AuthError>>>;

struct Inner {
    cache: KeyCache,
    /// The fetch under way, shared by every request that waits for it.
    in_flight: Option<Fetch>,
}

/// A key set fetched over HTTPS from the provider's JWKS URL, cached (see the module's header).
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    policy: JwksPolicy,
    inner: Arc<Mutex<Inner>>,
}

impl RemoteJwks {
    /// The cache with the default policy.
    pub fn new(url: impl Into<String>) -> Result<Self, AuthError> {
        Self::with_policy(url, JwksPolicy::default())
    }

    /// The cache with `policy`'s figures.
    pub fn with_policy(url: impl Into<String>, policy: JwksPolicy) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .build()
            .map_err(|e| AuthError::Keys(e.to_string()))?;
        Ok(RemoteJwks {
            url: url.into(),
            http,
            policy,
            inner: Arc::new(Mutex::new(Inner {
                cache: KeyCache::default(),
                in_flight: None,
            })),
        })
    }

    /// The state, even after a panic elsewhere (it holds no invariant a panic could break).
    fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
        inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fetch that records its own outcome in the cache when it ends.
    fn start_fetch(&self, inner: &mut Inner, now: Instant) -> Fetch {
        inner.cache.started(now);
        let (http, url, state) = (self.http.clone(), self.url.clone(), self.inner.clone());
        let fetch = async move {
            let result = fetch(&http, &url).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "JWKS fetch failed; backing off");
            }
            let mut inner = Self::lock(&state);
            inner.in_flight = None;
            inner.cache.fetched(result, Instant::now())
        }
        .boxed()
        .shared();
        inner.in_flight = Some(fetch.clone());
        // Driven by a task of its own: it completes (and records its outcome) even when every
        // request waiting for it is cancelled, or when no request waits at all.
        tokio::spawn(fetch.clone());
        fetch
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<JwkSet, AuthError> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(AuthError::Keys(format!("{url} answered {}", resp.status())));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| AuthError::Keys(format!("{url}: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| AuthError::Keys(format!("{url}: {e}")))
}

#[async_trait]
impl JwksSource for RemoteJwks {
    async fn keys(&self, refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        let fetch = {
            let mut inner = Self::lock(&self.inner);
            let cached = inner.cache.set.as_ref().map(|(_, s)| s.clone());
            match (inner.in_flight.clone(), &cached) {
                // Someone is asking the provider: those who need its answer wait for it...
                (Some(f), _) if refresh || cached.is_none() => f,
                // ...the others use the cached set meanwhile.
                (Some(_), Some(set)) => return Ok(set.clone()),
                _ => match inner.cache.plan(refresh, Instant::now(), &self.policy) {
                    Plan::Serve(set) => return Ok(set),
                    Plan::Refuse(wait) => return Err(inner.cache.refusal(wait)),
                    Plan::Fetch => {
                        let f = self.start_fetch(&mut inner, Instant::now());
                        match cached {
                            // The set is only old: refreshed in the background, served now.
                            Some(set) if !refresh => return Ok(set),
                            _ => f,
                        }
                    }
                },
            }
        };
        fetch.await
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
    /// The sign-in used a second factor: `amr` is `["pwd", "mfa"]` (otherwise `["pwd"]`), as
    /// OpenID Connect providers say how the user authenticated (RFC 8176).
    pub second_factor: bool,
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
        let amr: &[&str] = if req.second_factor {
            &["pwd", "mfa"]
        } else {
            &["pwd"]
        };
        obj.insert("amr".into(), amr.into());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": [] })).unwrap()
    }

    fn down() -> Result<JwkSet, AuthError> {
        Err(AuthError::Keys("idp answered 503".into()))
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let p = JwksPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [15, 30, 60, 120, 240, 300, 300]);
        assert_eq!(p.backoff(u32::MAX), p.backoff_cap);
    }

    #[test]
    fn a_cached_set_is_served_and_an_unknown_key_refetches_once_a_minute() {
        let p = JwksPolicy::default();
        let t0 = Instant::now();
        let mut c = KeyCache::default();
        assert_eq!(c.plan(false, t0, &p), Plan::Fetch, "nothing cached yet");
        c.started(t0);
        c.fetched(Ok(set()), t0).unwrap();
        assert!(matches!(c.plan(false, t0 + S(59), &p), Plan::Serve(_)));
        // An unknown kid within the minute: the cached set (its token is refused).
        assert!(matches!(c.plan(true, t0 + S(59), &p), Plan::Serve(_)));
        assert_eq!(c.plan(true, t0 + S(60), &p), Plan::Fetch);
        // An old set is refetched even for known keys.
        assert!(matches!(c.plan(false, t0 + S(3599), &p), Plan::Serve(_)));
        assert_eq!(c.plan(false, t0 + S(3600), &p), Plan::Fetch);
    }

    #[test]
    fn a_provider_that_is_down_is_asked_ever_less_often_and_the_cached_set_still_serves() {
        let p = JwksPolicy::default();
        let t0 = Instant::now();
        let mut c = KeyCache::default();
        c.started(t0);
        c.fetched(Ok(set()), t0).unwrap();
        // Refetches for unknown keys fail: each answers with the cached set, and the next
        // attempt waits 15 s, 30 s, 60 s, ...
        let mut t = t0 + S(60);
        for wait in [15, 30, 60, 120, 240, 300, 300] {
            assert_eq!(c.plan(true, t, &p), Plan::Fetch);
            c.started(t);
            assert!(c.fetched(down(), t).is_ok(), "the cached set answers");
            assert!(matches!(c.plan(true, t + S(wait - 1), &p), Plan::Serve(_)));
            t += S(wait);
        }
        // The provider is back: one good fetch resets the backoff.
        c.started(t);
        c.fetched(Ok(set()), t).unwrap();
        assert_eq!(c.plan(true, t + S(60), &p), Plan::Fetch);
    }

    #[test]
    fn with_nothing_cached_a_down_provider_is_refused_until_the_next_attempt() {
        let p = JwksPolicy::default();
        let t0 = Instant::now();
        let mut c = KeyCache::default();
        c.started(t0);
        assert!(c.fetched(down(), t0).is_err());
        assert_eq!(c.plan(false, t0 + S(5), &p), Plan::Refuse(S(10)));
        let why = c.refusal(S(10)).to_string();
        assert!(
            why.contains("503") && why.contains("next attempt in 10 s"),
            "{why}"
        );
        assert_eq!(c.plan(false, t0 + S(15), &p), Plan::Fetch);
    }
}
