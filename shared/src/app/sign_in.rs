//! Sign-in owned by the service (U11): one-time codes by SMS and email, and the service's own
//! sessions (which passkey sign-in opens too). It works with no identity provider at all: what
//! it reads is the directory the administrator imported, the organisation's configuration and
//! the service's key set.
//!
//! No enumeration: a code request does the same work whatever the address (the counters, the
//! organisation's and the user's lookups, a code made, its MAC computed and stored) and gives
//! the same answer; only the sends differ, and the handler answers no sooner than a fixed time
//! after the request (a floor longer than the sends take), so that the answer's timing does not
//! tell either. An address that is nobody's gets a code no one received, which no entry matches.

use crate::app::inbound::parent_domains;
use crate::domain::alerts::{Channel, Message};
use crate::domain::config::is_address;
use crate::domain::links::LinkKeys;
use crate::domain::sign_in::{
    address_window, before_try, code_email, code_from, code_mac, code_sms, codes_offered,
    normalise_code, same_mac, session_digest, CodeRefusal, Session, SignInMethod, StoredCode,
    ADDRESS_REQUESTS_PER_HOUR, COOL_DOWN_MINUTES, MAX_TRIES, SESSION_HOURS, SIGN_IN_PATH,
};
use crate::ports::error::{SecretError, StoreError};
use crate::ports::notify::AlertChannels;
use crate::ports::secrets::SecretSource;
use crate::ports::store::{DomainOwners, RateCounter, SignInContext, SignInStore};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};

/// The prefix of the service's session tokens (the identity provider's JWTs never start so).
pub const SESSION_PREFIX: &str = "s1.";

/// Why sign-in did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{0:?} is not an email address.")]
    BadAddress(String),
    #[error("{0}")]
    Refused(CodeRefusal),
    /// The user of a passkey or code is no longer in the directory, or their organisation no
    /// longer offers this way in.
    #[error("This sign-in is not available for your account any more; ask your administrator.")]
    NotAvailable,
    #[error("the service's key set is unavailable: {0}")]
    Keys(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SecretError> for SignInError {
    fn from(e: SecretError) -> Self {
        SignInError::Keys(e.to_string())
    }
}

/// What a code request did (for logs and figures; the user is told the same either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodeSent {
    pub sms: bool,
    pub email: bool,
}

/// The sign-in use case's collaborators.
pub struct SignIn<'a> {
    pub store: &'a dyn SignInStore,
    pub domains: &'a dyn DomainOwners,
    pub channels: &'a dyn AlertChannels,
    pub secrets: &'a dyn SecretSource,
    /// The secret holding the service's key set (the link keys, A3).
    pub keys_secret: &'a str,
    /// Where the service is reached (the code email's link, the SMS's WebOTP host).
    pub portal_base_url: &'a str,
    /// A session asks the directory again whether its user is still one of the organisation's
    /// at most this often (`SESSION_RECHECK_MINUTES`): a removed user, or an organisation no
    /// longer served, loses the session within this.
    pub recheck: Duration,
}

/// An address as typed, as the service keys it.
pub fn normalise_address(typed: &str) -> Result<String, SignInError> {
    let a = typed.trim().to_ascii_lowercase();
    if a.len() > 254 || !is_address(&a) {
        return Err(SignInError::BadAddress(
            typed.trim().chars().take(80).collect(),
        ));
    }
    Ok(a)
}

impl SignIn<'_> {
    async fn keys(&self) -> Result<LinkKeys, SignInError> {
        let text = self.secrets.secret(self.keys_secret).await?;
        LinkKeys::from_json(&text).map_err(|e| SignInError::Keys(e.to_string()))
    }

    pub async fn context(&self, address: &str) -> Result<(String, SignInContext), SignInError> {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let candidates = parent_domains(domain);
        let owners = self.domains.orgs_for_domains(&candidates).await?;
        let org = candidates
            .iter()
            .find_map(|d| owners.get(d).cloned())
            .unwrap_or_default();
        let ctx = self.store.sign_in_context(&org, address).await?;
        Ok((org, ctx))
    }

    /// "Send me a code" for the address typed: see the module's header. `Ok` whatever the
    /// address; an error only for a malformed address, a limit reached, or a fault.
    pub async fn request_code(
        &self,
        typed: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeSent, SignInError> {
        let address = normalise_address(typed)?;
        let n = self
            .store
            .count_request(
                &RateCounter::Address {
                    address: address.clone(),
                    window: address_window(now),
                },
                now + Duration::hours(2),
            )
            .await?;
        if n > ADDRESS_REQUESTS_PER_HOUR {
            tracing::info!(address, "code refused: address over its hourly limit");
            return Err(SignInError::Refused(CodeRefusal::RateLimited));
        }
        let (org, ctx) = self.context(&address).await?;
        let keys = self.keys().await?;
        let (key_id, key) = keys
            .current_key()
            .ok_or_else(|| SignInError::Keys("current key unreadable".into()))?;
        let code = code_from(rand::random_range(0..100_000_000u32));
        let eligible = match (&ctx.config, &ctx.user) {
            (Some(cfg), Some(u)) => {
                codes_offered(cfg, &ctx.continuity, now)
                    && (u.mobile.is_some() || u.alternate.is_some())
            }
            _ => false,
        };
        let stored = StoredCode {
            org_id: if eligible { org.clone() } else { String::new() },
            mac: code_mac(&key, &address, now, &code),
            key_id: key_id.to_string(),
            issued_at: now,
            tries: 0,
            used_at: None,
            locked_until: None,
        };
        let written = self.store.put_code(&address, &stored).await?;
        let mut sent = CodeSent::default();
        let (Some(cfg), Some(user), true, true) = (&ctx.config, &ctx.user, eligible, written)
        else {
            tracing::info!(eligible, written, "code request: nothing sent");
            return Ok(sent);
        };
        let host = url::Url::parse(self.portal_base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let page = format!(
            "{}{SIGN_IN_PATH}",
            self.portal_base_url.trim_end_matches('/')
        );
        if let Some(mobile) = &user.mobile {
            let day = now.format("%Y-%m-%d").to_string();
            if self
                .store
                .take_sms(&org, &day, cfg.sign_in.sms_per_day)
                .await?
            {
                let text = Message::Text(code_sms(&cfg.name, &code, &host));
                match self.channels.send(Channel::Sms, mobile, &text).await {
                    Ok(_) => sent.sms = true,
                    Err(e) => tracing::warn!(org, error = %e, "code SMS not sent"),
                }
            } else {
                tracing::warn!(
                    org,
                    cap = cfg.sign_in.sms_per_day,
                    "code SMS not sent: the organisation's daily SMS budget is spent"
                );
            }
        }
        if let Some(alternate) = &user.alternate {
            let mail = Message::Email(code_email(&cfg.name, &code, &page));
            match self.channels.send(Channel::Email, alternate, &mail).await {
                Ok(_) => sent.email = true,
                Err(e) => tracing::warn!(org, error = %e, "code email not sent"),
            }
        }
        tracing::info!(org, sms = sent.sms, email = sent.email, "sign-in code sent");
        Ok(sent)
    }

    /// A code entered for `typed`: a session when it is the address's current code, fresh,
    /// unused and within its tries; the fifth wrong try starts the cool-down.
    pub async fn enter_code(
        &self,
        typed: &str,
        typed_code: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), SignInError> {
        let address = normalise_address(typed)?;
        let refused = |r| Err(SignInError::Refused(r));
        let Some(stored) = self.store.code(&address).await? else {
            return refused(CodeRefusal::NoCode);
        };
        if let Err(r) = before_try(&stored, now) {
            return refused(r);
        }
        let keys = self.keys().await?;
        let right = match (normalise_code(typed_code), keys.key_bytes(&stored.key_id)) {
            (Some(code), Some(key)) => same_mac(
                &stored.mac,
                &code_mac(&key, &address, stored.issued_at, &code),
            ),
            _ => false,
        };
        let Some(tries) = self.store.spend_try(&address, stored.issued_at).await? else {
            return refused(CodeRefusal::Spent);
        };
        if !right || stored.org_id.is_empty() {
            if tries >= MAX_TRIES {
                let until = now + Duration::minutes(COOL_DOWN_MINUTES);
                self.store.lock_address(&address, until).await?;
                tracing::info!(address, "sign-in code: last try wrong, cool-down started");
                return refused(CodeRefusal::Locked);
            }
            return refused(CodeRefusal::Wrong);
        }
        if !self.store.use_code(&address, stored.issued_at, now).await? {
            return refused(CodeRefusal::Spent);
        }
        // The directory decides, now: a user removed since the code was sent gets no session.
        let (org, ctx) = self.context(&address).await?;
        let offered = ctx
            .config
            .as_ref()
            .is_some_and(|c| codes_offered(c, &ctx.continuity, now));
        if org != stored.org_id || ctx.user.is_none() || !offered {
            return Err(SignInError::NotAvailable);
        }
        self.open_session(&org, &address, SignInMethod::Code, now)
            .await
    }

    /// Opens a session for `address` of `org` (its token, shown once, and the session).
    pub async fn open_session(
        &self,
        org: &str,
        address: &str,
        method: SignInMethod,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), SignInError> {
        let raw: [u8; 32] = rand::random();
        let token = format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let session = Session {
            org_id: org.to_string(),
            address: address.to_string(),
            method,
            created_at: now,
            expires_at: now + Duration::hours(SESSION_HOURS),
            checked_at: now,
        };
        self.store
            .put_session(&session_digest(&token), &session)
            .await?;
        tracing::info!(org, method = method.name(), "session opened");
        Ok((token, session))
    }

    /// The live session of `token`, if any. One GetItem; when the directory was last asked
    /// [`SignIn::recheck`] ago or more, it is asked again (the sign-in context's two reads and
    /// one UpdateItem): a user no longer in the directory, or an organisation no longer served,
    /// ends the session (one DeleteItem) and the caller is refused.
    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        if !token.starts_with(SESSION_PREFIX) || token.len() > 100 {
            return Ok(None);
        }
        let digest = session_digest(token);
        let Some(mut session) = self
            .store
            .session(&digest)
            .await?
            .filter(|s| s.expires_at > now)
        else {
            return Ok(None);
        };
        if !session.due_for_check(now, self.recheck) {
            return Ok(Some(session));
        }
        let ctx = self
            .store
            .sign_in_context(&session.org_id, &session.address)
            .await?;
        if ctx.config.is_none() || ctx.user.is_none() {
            self.store.delete_session(&digest).await?;
            tracing::info!(
                org = %session.org_id,
                method = session.method.name(),
                "session ended: the user is no longer in the organisation's directory"
            );
            return Ok(None);
        }
        if !self.store.session_checked(&digest, now).await? {
            // Signed out (or ended by an administrator) while we looked.
            return Ok(None);
        }
        session.checked_at = now;
        Ok(Some(session))
    }

    /// Ends the session of `token` (sign-out).
    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        if token.starts_with(SESSION_PREFIX) {
            self.store.delete_session(&session_digest(token)).await?;
        }
        Ok(())
    }
}
