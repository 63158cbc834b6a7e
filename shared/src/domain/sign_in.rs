//! Sign-in owned by the service (U11): the rules of one-time codes, their limits, the messages
//! that carry them, and the service's own sessions. Pure: time is a parameter, randomness and
//! keys are given.
//!
//! - A code is 8 digits, valid [`CODE_VALIDITY_MINUTES`], used once, tried at most
//!   [`MAX_TRIES`] times; the fifth wrong try locks the address for [`COOL_DOWN_MINUTES`]. It is
//!   stored only as an HMAC keyed with the service's secret (bound to the address and the
//!   code's issue time), so that a read of the table does not give codes away, nor a code for
//!   one address open another.
//! - Code requests are counted per address ([`ADDRESS_REQUESTS_PER_HOUR`]) whether or not the
//!   address is a user: the limit behaves the same for everyone, so it tells an attacker
//!   nothing. Every sign-in request is also counted per source address, with the rest of
//!   `/auth/*`, before it is handled (`domain::source_limits`).
//! - The answer to a code request is the same whether or not the address exists.
//! - The service's sessions are random tokens; the table keeps only their SHA-256.

use crate::domain::config::{CodePolicy, OrgConfig};
use crate::domain::continuity::{ContinuityState, Phase};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The sign-in page users are sent to (A6, the activation email): an address, then a code.
pub const SIGN_IN_PATH: &str = "/auth/code";

/// Digits of a code.
pub const CODE_DIGITS: u32 = 8;
/// A code is valid this long after it was sent.
pub const CODE_VALIDITY_MINUTES: i64 = 10;
/// Tries of one code (right or wrong) before it is spent.
pub const MAX_TRIES: u32 = 5;
/// After the last wrong try, the address takes no code for this long.
pub const COOL_DOWN_MINUTES: i64 = 15;
/// Code requests one address may make in an hour.
pub const ADDRESS_REQUESTS_PER_HOUR: u32 = 5;
/// A session the service opened lasts this long.
pub const SESSION_HOURS: i64 = 12;

/// How a user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignInMethod {
    /// The organisation's identity provider (its JWT).
    IdentityProvider,
    /// A one-time code by SMS or email.
    Code,
    /// A passkey enrolled before.
    Passkey,
}

impl SignInMethod {
    pub fn name(self) -> &'static str {
        match self {
            SignInMethod::IdentityProvider => "identity-provider",
            SignInMethod::Code => "code",
            SignInMethod::Passkey => "passkey",
        }
    }
}

/// Whether `cfg` offers codes at `now` (its policy, and whether an event is active).
pub fn codes_offered(cfg: &OrgConfig, state: &ContinuityState, now: DateTime<Utc>) -> bool {
    match cfg.sign_in.codes {
        CodePolicy::Always => true,
        CodePolicy::DuringEvents => matches!(state.phase(now), Phase::Continuity { .. }),
        CodePolicy::Off => false,
    }
}

/// A code, as stored: its HMAC and its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// The organisation of the user; empty for an address that is nobody's (a code that no
    /// one received and no entry can match, written so that unknown addresses cost the same).
    pub org_id: String,
    /// Hex HMAC of the code ([`code_mac`]).
    pub mac: String,
    /// Key id of the secret the HMAC was made with.
    pub key_id: String,
    pub issued_at: DateTime<Utc>,
    /// Tries so far.
    pub tries: u32,
    /// When it was used (a code signs in once).
    pub used_at: Option<DateTime<Utc>>,
    /// No code is taken for the address before this (after the last wrong try).
    pub locked_until: Option<DateTime<Utc>>,
}

impl StoredCode {
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.issued_at + Duration::minutes(CODE_VALIDITY_MINUTES)
    }

    /// Whether the address is in its cool-down at `now`.
    pub fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// Why an entered code did not sign in. None of them depends on whether the address is a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("That code is not right. Check it and try again, or ask for a new code.")]
    Wrong,
    #[error("That code has expired (codes last 10 minutes). Ask for a new code.")]
    Expired,
    #[error("That code was already used, or replaced by a newer one. Ask for a new code.")]
    Spent,
    #[error("Too many wrong codes for this address: wait 15 minutes, then ask for a new code.")]
    Locked,
    #[error("No code was asked for this address, or it expired. Ask for a code first.")]
    NoCode,
    #[error("Too many sign-in attempts from your network or for this address; wait a little and try again.")]
    RateLimited,
}

/// What is wrong with `code` before a try is spent on it (lock, use, expiry), at `now`.
pub fn before_try(code: &StoredCode, now: DateTime<Utc>) -> Result<(), CodeRefusal> {
    if code.locked(now) {
        return Err(CodeRefusal::Locked);
    }
    if code.used_at.is_some() || code.tries >= MAX_TRIES {
        return Err(CodeRefusal::Spent);
    }
    if now >= code.expires_at() {
        return Err(CodeRefusal::Expired);
    }
    Ok(())
}

/// The HMAC of `code` for `address`, issued at `issued_at`, under `key` (hex).
pub fn code_mac(key: &[u8], address: &str, issued_at: DateTime<Utc>, code: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"sign-in-code/v1\0");
    mac.update(address.as_bytes());
    mac.update(b"\0");
    mac.update(issued_at.timestamp_millis().to_string().as_bytes());
    mac.update(b"\0");
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether two MACs are equal, in constant time.
pub fn same_mac(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A code from a random number (uniform over the codes when `n` is uniform below `10^8`).
pub fn code_from(n: u32) -> String {
    format!("{:08}", n % 10u32.pow(CODE_DIGITS))
}

/// What a user typed, as a code: digits only (spaces and dashes dropped), or `None`.
pub fn normalise_code(typed: &str) -> Option<String> {
    let digits: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (digits.len() == CODE_DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// The start of the hour containing `now` (the per-address window), as epoch seconds.
pub fn address_window(now: DateTime<Utc>) -> i64 {
    now.timestamp() - now.timestamp().rem_euclid(3600)
}

/// The SHA-256 (hex) of a session token: what the table keeps.
pub fn session_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A session the service opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub org_id: String,
    pub address: String,
    pub method: SignInMethod,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When the directory last said the user is still one of the organisation's (at sign-in,
    /// then at most every few minutes: [`Session::due_for_check`]).
    pub checked_at: DateTime<Utc>,
}

impl Session {
    /// Whether the directory must be asked again at `now`: `every` has passed since the last
    /// look (a session outlives a user's removal by at most that).
    pub fn due_for_check(&self, now: DateTime<Utc>, every: chrono::Duration) -> bool {
        now >= self.checked_at + every
    }
}

/// The code SMS: the code first (phones offer it from the notification), the validity, and the
/// WebOTP line that lets a phone's browser fill it in on the service's own site only.
pub fn code_sms(org_name: &str, code: &str, host: &str) -> String {
    let name = crate::domain::alerts::gsm7(org_name.trim());
    let name: String = name.chars().take(40).collect();
    format!(
        "{code} is your {name} Online Inbox sign-in code. It expires in {CODE_VALIDITY_MINUTES} minutes. Do not share it.\n\n@{host} #{code}"
    )
}

/// The code email's subject, plain text and HTML.
pub fn code_email(
    org_name: &str,
    code: &str,
    sign_in_url: &str,
) -> crate::domain::alerts::EmailContent {
    use crate::domain::alerts::html_escape;
    let name = org_name.replace(['\r', '\n'], " ");
    let subject = format!("{name} Online Inbox: your sign-in code");
    let text = format!(
        "Your sign-in code for the {name} Online Inbox is:\r\n\r\n    {code}\r\n\r\n\
         Type it on the sign-in page ({sign_in_url}). It expires in {CODE_VALIDITY_MINUTES} minutes and works once.\r\n\
         If you did not ask for it, ignore this message: nobody can sign in without the code.\r\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Arial,Helvetica,sans-serif\">\
         <p>Your sign-in code for the {n} Online Inbox is:</p>\
         <p style=\"font-size:28px;font-weight:bold;letter-spacing:4px\">{c}</p>\
         <p>Type it on the sign-in page (<a href=\"{u}\">{u}</a>). It expires in {CODE_VALIDITY_MINUTES} minutes and works once.</p>\
         <p style=\"color:#444\">If you did not ask for it, ignore this message: nobody can sign in without the code.</p>\
         </body></html>",
        n = html_escape(&name),
        c = html_escape(code),
        u = html_escape(sign_in_url),
    );
    crate::domain::alerts::EmailContent {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn code(issued: &str) -> StoredCode {
        StoredCode {
            org_id: "acme".into(),
            mac: "m".into(),
            key_id: "k1".into(),
            issued_at: t(issued),
            tries: 0,
            used_at: None,
            locked_until: None,
        }
    }

    #[test]
    fn a_code_is_tried_only_while_fresh_unused_and_unlocked() {
        let c = code("2026-11-23T10:00:00Z");
        assert_eq!(before_try(&c, t("2026-11-23T10:09:59Z")), Ok(()));
        assert_eq!(
            before_try(&c, t("2026-11-23T10:10:00Z")),
            Err(CodeRefusal::Expired)
        );
        let mut used = c.clone();
        used.used_at = Some(t("2026-11-23T10:01:00Z"));
        assert_eq!(
            before_try(&used, t("2026-11-23T10:02:00Z")),
            Err(CodeRefusal::Spent)
        );
        let mut tried = c.clone();
        tried.tries = MAX_TRIES;
        assert_eq!(
            before_try(&tried, t("2026-11-23T10:02:00Z")),
            Err(CodeRefusal::Spent)
        );
        let mut locked = tried.clone();
        locked.locked_until = Some(t("2026-11-23T10:17:00Z"));
        assert_eq!(
            before_try(&locked, t("2026-11-23T10:16:59Z")),
            Err(CodeRefusal::Locked)
        );
        assert!(!locked.locked(t("2026-11-23T10:17:00Z")));
    }

    #[test]
    fn the_mac_binds_the_code_to_its_address_and_issue() {
        let key = [7u8; 32];
        let at = t("2026-11-23T10:00:00Z");
        let m = code_mac(&key, "bob@acme.test", at, "12345678");
        assert_eq!(m.len(), 64);
        assert!(same_mac(
            &m,
            &code_mac(&key, "bob@acme.test", at, "12345678")
        ));
        assert!(!same_mac(
            &m,
            &code_mac(&key, "eve@acme.test", at, "12345678")
        ));
        assert!(!same_mac(
            &m,
            &code_mac(&key, "bob@acme.test", at, "12345679")
        ));
        assert!(!same_mac(
            &m,
            &code_mac(&key, "bob@acme.test", at + Duration::seconds(1), "12345678")
        ));
        assert!(!same_mac(
            &m,
            &code_mac(&[8u8; 32], "bob@acme.test", at, "12345678")
        ));
    }

    #[test]
    fn codes_are_eight_digits_typed_loosely() {
        assert_eq!(code_from(42), "00000042");
        assert_eq!(code_from(u32::MAX).len(), 8);
        assert_eq!(normalise_code(" 1234 5678 "), Some("12345678".into()));
        assert_eq!(normalise_code("1234-5678"), Some("12345678".into()));
        assert_eq!(normalise_code("1234567"), None);
        assert_eq!(normalise_code("1234567a"), None);
        assert_eq!(normalise_code("１２３４５６７８"), None);
    }

    #[test]
    fn windows_are_aligned() {
        let now = t("2026-11-23T10:37:12Z");
        assert_eq!(address_window(now), t("2026-11-23T10:00:00Z").timestamp());
    }

    #[test]
    fn the_code_messages_carry_the_code_and_nothing_from_outside_unescaped() {
        let sms = code_sms("Acme & Co", "12345678", "continuity.example");
        assert!(sms.starts_with("12345678 is your Acme & Co"));
        assert!(sms.ends_with("@continuity.example #12345678"));
        let e = code_email("<b>Acme</b>", "12345678", "https://c.example/auth/code");
        assert!(e.text.contains("12345678"));
        assert!(e.html.contains("&lt;b&gt;Acme&lt;/b&gt;"));
        assert!(!e.html.contains("<b>Acme"));
    }

    #[test]
    fn policies() {
        let mut cfg = crate::domain::config::tests::sample();
        let now = t("2026-11-23T10:00:00Z");
        let quiet = ContinuityState::default();
        let active = ContinuityState {
            event_started_at: Some(now - Duration::minutes(5)),
            event_until: Some(now + Duration::hours(1)),
            ..Default::default()
        };
        assert!(codes_offered(&cfg, &quiet, now));
        cfg.sign_in.codes = CodePolicy::DuringEvents;
        assert!(!codes_offered(&cfg, &quiet, now));
        assert!(codes_offered(&cfg, &active, now));
        cfg.sign_in.codes = CodePolicy::Off;
        assert!(!codes_offered(&cfg, &active, now));
    }
}
