//! Signed portal links (A3): bound to one organisation and one alert, valid 24 hours, verified in
//! constant time, signed with a rotatable key.
//!
//! A token is base64url (no padding) of a compact binary record, so that the whole link fits an
//! SMS: version, key id, issued-at (u32 seconds), organisation, alert id, then the first 128 bits
//! of HMAC-SHA256 over all of that *and the expiry*. About 55 characters for a short org id.
//!
//! Rotation: the key set (from Secrets Manager) names the current key and keeps older ones; a link
//! verifies with the key whose id it carries, so links signed before a rotation keep working until
//! they expire. A key marked retired refuses links issued after its retirement.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::BTreeMap;

/// How long a link is valid.
pub const LINK_VALIDITY_SECS: i64 = 24 * 3600;
/// Tolerated clock difference for an issued-at in the future.
const MAX_SKEW_SECS: i64 = 300;
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// What a valid link proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub org_id: String,
    pub alert_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub key_id: String,
}

/// Why a link was refused. The portal shows one clear page for all of them and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is damaged or incomplete")]
    Malformed,
    #[error("the link's signature does not match (it was altered, or signed with an unknown key)")]
    BadSignature,
    #[error("the link expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the link belongs to another organisation")]
    OtherOrganisation,
}

/// One signing key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LinkKey {
    /// Base64 (standard) of at least 32 random bytes.
    pub secret: String,
    /// Links issued after this are refused (the key is out of service).
    #[serde(default)]
    pub retired_at: Option<DateTime<Utc>>,
}

/// The key set, as stored in Secrets Manager:
/// `{"current": "k2", "keys": {"k2": {"secret": "..."}, "k1": {"secret": "...", "retired_at": "..."}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LinkKeys {
    pub current: String,
    pub keys: BTreeMap<String, LinkKey>,
}

/// Why a key set is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link key set: {0}")]
pub struct KeySetError(pub String);

impl LinkKeys {
    /// Parses and checks the stored JSON. Two forms are accepted: the full one above, and the
    /// flat one Secrets Manager generates at deploy (`{"current": "k1", "k1": "<64 random
    /// letters and digits>"}`, read as base64), which an operator extends by hand when rotating.
    pub fn from_json(text: &str) -> Result<Self, KeySetError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| KeySetError(e.to_string()))?;
        let keys: LinkKeys = if value.get("keys").is_some() {
            serde_json::from_value(value).map_err(|e| KeySetError(e.to_string()))?
        } else {
            let obj = value
                .as_object()
                .ok_or_else(|| KeySetError("not a JSON object".into()))?;
            let current = obj
                .get("current")
                .and_then(|v| v.as_str())
                .ok_or_else(|| KeySetError("no \"current\" key id".into()))?
                .to_string();
            let keys = obj
                .iter()
                .filter(|(k, _)| k.as_str() != "current")
                .map(|(k, v)| {
                    let secret = v
                        .as_str()
                        .ok_or_else(|| KeySetError(format!("key {k}: not a string")))?
                        .to_string();
                    Ok((
                        k.clone(),
                        LinkKey {
                            secret,
                            retired_at: None,
                        },
                    ))
                })
                .collect::<Result<_, KeySetError>>()?;
            LinkKeys { current, keys }
        };
        if !keys.keys.contains_key(&keys.current) {
            return Err(KeySetError(format!(
                "current key {:?} is not in the set",
                keys.current
            )));
        }
        for (id, k) in &keys.keys {
            if id.is_empty()
                || id.len() > 16
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(KeySetError(format!(
                    "key id {id:?}: 1-16 letters, digits or hyphens"
                )));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&k.secret)
                .map_err(|e| KeySetError(format!("key {id}: {e}")))?;
            if raw.len() < 32 {
                return Err(KeySetError(format!(
                    "key {id}: at least 32 bytes are required"
                )));
            }
        }
        Ok(keys)
    }

    fn secret(&self, id: &str) -> Option<(Vec<u8>, Option<DateTime<Utc>>)> {
        let k = self.keys.get(id)?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&k.secret)
            .ok()?;
        Some((raw, k.retired_at))
    }

    /// The current key's id and bytes, for other MACs of the service (sign-in codes: each
    /// MAC names its purpose in what it signs, so that no MAC of one kind passes for another).
    pub fn current_key(&self) -> Option<(&str, Vec<u8>)> {
        self.secret(&self.current)
            .map(|(raw, _)| (self.current.as_str(), raw))
    }

    /// The bytes of key `id` (retired or not: a MAC made before a rotation still checks).
    pub fn key_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.secret(id).map(|(raw, _)| raw)
    }

    /// Signs a link for `org_id` and `alert_id`, issued at `now`, with the current key.
    pub fn sign(
        &self,
        org_id: &str,
        alert_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, KeySetError> {
        let (secret, _) = self
            .secret(&self.current)
            .ok_or_else(|| KeySetError("current key unreadable".into()))?;
        if org_id.len() > 255 || alert_id.len() > 255 {
            return Err(KeySetError(
                "organisation or alert id too long for a link".into(),
            ));
        }
        let issued =
            u32::try_from(now.timestamp()).map_err(|_| KeySetError("time out of range".into()))?;
        let mut body = Vec::with_capacity(64);
        body.push(VERSION);
        push_str(&mut body, &self.current);
        body.extend_from_slice(&issued.to_be_bytes());
        push_str(&mut body, org_id);
        push_str(&mut body, alert_id);
        let tag = mac(&secret, &body, expiry_of(issued));
        body.extend_from_slice(&tag[..TAG_LEN]);
        Ok(URL_SAFE_NO_PAD.encode(body))
    }

    /// Verifies a token at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<LinkClaims, LinkError> {
        if token.len() > 400 {
            return Err(LinkError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Malformed)?;
        if raw.len() <= TAG_LEN {
            return Err(LinkError::Malformed);
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut r = Reader(body);
        if r.byte()? != VERSION {
            return Err(LinkError::Malformed);
        }
        let key_id = r.str()?;
        let issued = u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| LinkError::Malformed)?);
        let org_id = r.str()?;
        let alert_id = r.str()?;
        if !r.0.is_empty() {
            return Err(LinkError::Malformed);
        }
        let (secret, retired_at) = self.secret(&key_id).ok_or(LinkError::BadSignature)?;
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret)
            .map_err(|_| LinkError::BadSignature)?;
        m.update(body);
        m.update(&expiry_of(issued).to_be_bytes());
        // Constant-time comparison of the truncated tag.
        m.verify_truncated_left(tag)
            .map_err(|_| LinkError::BadSignature)?;

        let issued_at = Utc
            .timestamp_opt(i64::from(issued), 0)
            .single()
            .ok_or(LinkError::Malformed)?;
        let expires_at = Utc
            .timestamp_opt(i64::from(expiry_of(issued)), 0)
            .single()
            .ok_or(LinkError::Malformed)?;
        if let Some(retired) = retired_at {
            if issued_at > retired {
                return Err(LinkError::BadSignature);
            }
        }
        if issued_at > now + chrono::Duration::seconds(MAX_SKEW_SECS) {
            return Err(LinkError::Malformed);
        }
        if now >= expires_at {
            return Err(LinkError::Expired(expires_at));
        }
        Ok(LinkClaims {
            org_id,
            alert_id,
            issued_at,
            expires_at,
            key_id,
        })
    }

    /// Verifies a token and that it belongs to `org_id`.
    pub fn verify_for(
        &self,
        token: &str,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkClaims, LinkError> {
        let claims = self.verify(token, now)?;
        if claims.org_id != org_id {
            return Err(LinkError::OtherOrganisation);
        }
        Ok(claims)
    }
}

fn expiry_of(issued: u32) -> u32 {
    issued.saturating_add(LINK_VALIDITY_SECS as u32)
}

fn mac(secret: &[u8], body: &[u8], expiry: u32) -> Vec<u8> {
    // HMAC accepts keys of any length; a failure here is impossible, an empty tag would not verify.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(body);
            m.update(&expiry.to_be_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => vec![0; 32],
    }
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LinkError> {
        if self.0.len() < n {
            return Err(LinkError::Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn byte(&mut self) -> Result<u8, LinkError> {
        Ok(self.take(1)?[0])
    }
    fn str(&mut self) -> Result<String, LinkError> {
        let n = self.byte()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| LinkError::Malformed)
    }
}

/// A fresh random key, base64, for key sets made by tools and tests.
pub fn generate_key_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn keys(current: &str, ids: &[&str]) -> LinkKeys {
        let keys = ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    LinkKey {
                        secret: base64::engine::general_purpose::STANDARD
                            .encode([id.as_bytes()[1]; 32]),
                        retired_at: None,
                    },
                )
            })
            .collect();
        LinkKeys {
            current: current.into(),
            keys,
        }
    }

    #[test]
    fn round_trip() {
        let k = keys("k1", &["k1"]);
        let now = t("2026-11-23T12:06:00Z");
        let tok = k.sign("acme", "14961962-0", now).unwrap();
        assert!(tok.len() <= 60, "{} chars", tok.len());
        let c = k
            .verify_for(&tok, "acme", now + chrono::Duration::hours(23))
            .unwrap();
        assert_eq!(c.alert_id, "14961962-0");
        assert_eq!(c.expires_at, now + chrono::Duration::hours(24));
    }

    #[test]
    fn refusals() {
        let k = keys("k1", &["k1"]);
        let now = t("2026-11-23T12:06:00Z");
        let tok = k.sign("acme", "a-1", now).unwrap();
        // Every single-character change is refused.
        let chars: Vec<char> = tok.chars().collect();
        for i in 0..chars.len() {
            let mut c = chars.clone();
            c[i] = if c[i] == 'A' { 'B' } else { 'A' };
            let bad: String = c.into_iter().collect();
            assert!(k.verify(&bad, now).is_err(), "position {i}");
        }
        assert_eq!(
            k.verify(&tok, now + chrono::Duration::hours(24)),
            Err(LinkError::Expired(now + chrono::Duration::hours(24)))
        );
        assert_eq!(
            k.verify_for(&tok, "other", now),
            Err(LinkError::OtherOrganisation)
        );
        assert_eq!(k.verify("", now), Err(LinkError::Malformed));
        assert_eq!(k.verify("not base64 !", now), Err(LinkError::Malformed));
        assert_eq!(
            k.verify(&tok, now - chrono::Duration::hours(1)),
            Err(LinkError::Malformed),
            "issued in the future"
        );
        // Signed with a key this set does not hold.
        let stranger = keys("k9", &["k9"]).sign("acme", "a-1", now).unwrap();
        assert_eq!(k.verify(&stranger, now), Err(LinkError::BadSignature));
    }

    #[test]
    fn rotation_keeps_old_links_until_they_expire() {
        let now = t("2026-11-23T12:06:00Z");
        let old = keys("k1", &["k1"]).sign("acme", "a-1", now).unwrap();
        let mut rotated = keys("k2", &["k1", "k2"]);
        assert!(rotated
            .verify(&old, now + chrono::Duration::hours(2))
            .is_ok());
        let new = rotated.sign("acme", "a-2", now).unwrap();
        assert_eq!(rotated.verify(&new, now).unwrap().key_id, "k2");
        // Retiring k1 refuses links it would sign later, not those it signed before.
        rotated.keys.get_mut("k1").unwrap().retired_at = Some(now + chrono::Duration::minutes(1));
        assert!(rotated
            .verify(&old, now + chrono::Duration::hours(2))
            .is_ok());
        let late = keys("k1", &["k1"])
            .sign("acme", "a-3", now + chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(
            rotated.verify(&late, now + chrono::Duration::hours(2)),
            Err(LinkError::BadSignature)
        );
        assert!(
            rotated
                .verify(&old, now + chrono::Duration::hours(25))
                .is_err(),
            "expired at last"
        );
    }

    #[test]
    fn key_set_is_checked() {
        let good = format!(
            r#"{{"current":"k1","keys":{{"k1":{{"secret":"{}"}}}}}}"#,
            generate_key_secret()
        );
        assert!(LinkKeys::from_json(&good).is_ok());
        assert!(
            LinkKeys::from_json(r#"{"current":"k2","keys":{"k1":{"secret":"AAAA"}}}"#).is_err()
        );
        assert!(
            LinkKeys::from_json(r#"{"current":"k1","keys":{"k1":{"secret":"AAAA"}}}"#).is_err(),
            "too short"
        );
    }
}
