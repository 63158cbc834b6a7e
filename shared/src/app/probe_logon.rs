//! How the probe logs on (D9) and what the provider says of its health (D10), for the monitor's
//! probe and for the administrators' "test the probe logon".
//!
//! The credential is read from the secret the service names for the organisation
//! ([`probe_secret_name`]), never from a name in the configuration. Access tokens are cached
//! per organisation until shortly before they expire ([`TokenCache`]): one fetch per
//! organisation at a time, however many runs want one, and a token the server refused is
//! dropped so that the next window fetches a new one.

use crate::domain::config::{AppCredential, MicrosoftApp, OrgConfig, ProbeLogon, ProbeMailbox};
use crate::domain::probe::probe_secret_name;
use crate::domain::probe_refusal::{explain, Answer, Way};
use crate::domain::provider_health::{open_incident, ProviderIncident, EXCHANGE_ONLINE};
use crate::ports::graph::{GraphApi, GraphError};
use crate::ports::mail::{ProbeSendError, ProbeSender, SendFailure, SmtpLogon};
use crate::ports::oauth::{Grant, Issuer, TokenEndpoint, TokenError, TokenRequest};
use crate::ports::secrets::SecretSource;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Scope of a token for SMTP AUTH XOAUTH2 to Exchange Online.
pub const OUTLOOK_SCOPE: &str = "https://outlook.office365.com/.default";
/// Scope of a token for Microsoft Graph (sendMail, service health).
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Scope of a token for Gmail's SMTP (XOAUTH2).
pub const GMAIL_SCOPE: &str = "https://mail.google.com/";
/// A cached token is used until this long before it expires (a probe takes up to a minute, a
/// clock may be a little off).
pub const REFRESH_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

/// A token held for one organisation, scope and credential.
#[derive(Debug, Clone)]
struct Cached {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Access tokens per organisation, scope and credential (a rotated secret makes a new key), for
/// the life of a warm function.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    fetches: AtomicU64,
}

impl TokenCache {
    /// How many tokens were fetched from a token endpoint (the benchmark's figure).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn slot(&self, key: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.to_string()).or_default().clone()
    }

    /// Forgets the token under `key` (the server refused it).
    async fn drop_token(&self, key: &str) {
        *self.slot(key).lock().await = None;
    }
}

/// Why the logon test or a send failed, or how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogonReport {
    /// `password`, `oauth2-client-credentials`, `graph-sendmail` or `google-xoauth2`.
    pub method: &'static str,
    /// The secret the credential was read from.
    pub secret: String,
    /// A token was obtained (OAuth methods).
    pub token: bool,
    /// The logon succeeded (nothing was sent).
    pub ok: bool,
    /// What failed, in the refusal table's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What logging on needs.
pub struct ProbeLogons<'a> {
    pub secrets: &'a dyn SecretSource,
    pub tokens: &'a dyn TokenEndpoint,
    pub cache: &'a TokenCache,
    pub smtp: &'a dyn ProbeSender,
    pub graph: &'a dyn GraphApi,
    /// Prefix of the derived secret names (`continuity/`).
    pub secret_prefix: &'a str,
    /// How long one probe may take, all steps together (Graph's retries stay within it; a
    /// logon test is cut off at it).
    pub budget: Duration,
}

fn fail(kind: SendFailure, detail: impl Into<String>) -> ProbeSendError {
    ProbeSendError::new(kind, detail)
}

/// A token endpoint's refusal, explained.
fn token_failure(e: TokenError, way: Way) -> ProbeSendError {
    match e {
        TokenError::Refused {
            status,
            error,
            description,
        } => {
            let answer = Answer::Token {
                status,
                error: &error,
                description: &description,
            };
            ProbeSendError::explained(SendFailure::Token, explain(&answer, way).text)
        }
        TokenError::Unavailable(d) => fail(SendFailure::Token, d),
        TokenError::BadCredential(d) => fail(SendFailure::Credential, d),
    }
}

/// Graph's refusal, explained.
fn graph_failure(e: GraphError) -> ProbeSendError {
    match e {
        GraphError::Refused {
            status,
            code,
            message,
        } => {
            let answer = Answer::Graph {
                status,
                code: &code,
                message: &message,
            };
            let kind = if status == 429 || status >= 500 {
                SendFailure::Transient
            } else {
                SendFailure::GraphRefused
            };
            ProbeSendError::explained(kind, explain(&answer, Way::Graph).text)
        }
        GraphError::Unavailable(d) => {
            fail(SendFailure::Connection, format!("Microsoft Graph: {d}"))
        }
    }
}

impl ProbeLogons<'_> {
    /// The organisation's probe secret's name.
    pub fn secret_name(&self, org_id: &str) -> String {
        probe_secret_name(self.secret_prefix, org_id)
    }

    async fn credential(&self, org_id: &str) -> Result<String, ProbeSendError> {
        self.secrets
            .secret(&self.secret_name(org_id))
            .await
            .map_err(|e| fail(SendFailure::Credential, format!("probe credential: {e}")))
    }

    /// The grant of a Microsoft app with `secret` (a client secret, or a certificate's key).
    fn microsoft_grant(app: &MicrosoftApp, secret: String) -> Grant {
        match app.credential {
            AppCredential::ClientSecret => Grant::ClientSecret {
                client_id: app.client_id.clone(),
                secret,
            },
            AppCredential::Certificate => Grant::ClientCertificate {
                client_id: app.client_id.clone(),
                thumbprint_hex: app.certificate_thumbprint.clone().unwrap_or_default(),
                key_pem: secret,
            },
        }
    }

    /// The token request for `mailbox`'s method and `scope`, with the credential `secret`.
    fn request(mailbox: &ProbeMailbox, scope: &str, secret: String) -> Option<TokenRequest> {
        let (issuer, grant) = match &mailbox.logon {
            ProbeLogon::Password => return None,
            ProbeLogon::Oauth2ClientCredentials(app) | ProbeLogon::GraphSendmail(app) => (
                Issuer::Microsoft {
                    tenant: app.tenant.clone(),
                },
                Self::microsoft_grant(app, secret),
            ),
            ProbeLogon::GoogleXoauth2 => (
                Issuer::Google,
                Grant::ServiceAccount {
                    key_json: secret,
                    subject: mailbox.username.clone(),
                },
            ),
        };
        Some(TokenRequest {
            issuer,
            grant,
            scope: scope.to_string(),
        })
    }

    /// A token for `org_id`'s `request`, from the cache while it has more than
    /// [`REFRESH_BEFORE`] left; otherwise fetched, one fetch per key at a time. Returns the
    /// token and its cache key.
    async fn token(
        &self,
        org_id: &str,
        request: &TokenRequest,
        way: Way,
        now: DateTime<Utc>,
    ) -> Result<(String, String), ProbeSendError> {
        let fingerprint = hex::encode(&Sha256::digest(format!("{:?}", request.grant))[..8]);
        let key = format!("{org_id}#{}#{fingerprint}", request.scope);
        let slot = self.cache.slot(&key);
        // Held across the fetch: a second caller for the same key waits, then finds the token.
        let mut held = slot.lock().await;
        if let Some(c) = held
            .as_ref()
            .filter(|c| c.expires_at - REFRESH_BEFORE > now)
        {
            return Ok((c.token.clone(), key));
        }
        let t = self
            .tokens
            .token(request)
            .await
            .map_err(|e| token_failure(e, way))?;
        self.cache.fetches.fetch_add(1, Ordering::Relaxed);
        let lifetime =
            chrono::Duration::from_std(t.expires_in).unwrap_or(chrono::Duration::hours(1));
        *held = Some(Cached {
            token: t.token.clone(),
            expires_at: now + lifetime,
        });
        Ok((t.token, key))
    }

    /// Sends `message` to `recipient` from `cfg`'s probe mailbox, logging on as configured.
    pub async fn send(
        &self,
        cfg: &OrgConfig,
        mailbox: &ProbeMailbox,
        recipient: &str,
        message: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), ProbeSendError> {
        self.logon(cfg, mailbox, Some((recipient, message)), now)
            .await
            .map(|_| ())
    }

    /// Gets a token if the method needs one and logs on, sending nothing ("test the probe
    /// logon"). For `graph-sendmail`, whose only logon is the token, the token is the test.
    pub async fn test(&self, cfg: &OrgConfig, now: DateTime<Utc>) -> LogonReport {
        let Some(mailbox) = cfg.probe.as_ref() else {
            return LogonReport {
                method: "none",
                secret: String::new(),
                token: false,
                ok: false,
                error: Some("no probe mailbox is configured".into()),
            };
        };
        // Bounded as a whole: the administrator waits for the answer (behind API Gateway's
        // 29 s), whatever the token endpoint and the server do.
        let result = tokio::time::timeout(self.budget, self.logon(cfg, mailbox, None, now))
            .await
            .unwrap_or_else(|_| {
                Err(fail(
                    SendFailure::Timeout,
                    format!("no complete answer within {} s", self.budget.as_secs()),
                ))
            });
        LogonReport {
            method: mailbox.logon.name(),
            secret: self.secret_name(&cfg.org_id),
            token: mailbox.logon != ProbeLogon::Password
                && match &result {
                    Ok(_) => true,
                    Err(e) => !matches!(e.kind, SendFailure::Token | SendFailure::Credential),
                },
            ok: result.is_ok(),
            error: result.err().map(|e| e.text()),
        }
    }

    /// Logs on and sends `send` if given. `Ok(true)` when a token was used. When the credential
    /// itself was refused (a password, a client secret, a key), its cached copy is dropped:
    /// the next attempt reads the secret again and finds what the administrator stored since.
    async fn logon(
        &self,
        cfg: &OrgConfig,
        mailbox: &ProbeMailbox,
        send: Option<(&str, &[u8])>,
        now: DateTime<Utc>,
    ) -> Result<bool, ProbeSendError> {
        let result = self.logon_once(cfg, mailbox, send, now).await;
        if let Err(e) = &result {
            let password_refused =
                mailbox.logon == ProbeLogon::Password && e.kind == SendFailure::Auth;
            if password_refused || matches!(e.kind, SendFailure::Token | SendFailure::Credential) {
                self.secrets.forget(&self.secret_name(&cfg.org_id));
            }
        }
        result
    }

    async fn logon_once(
        &self,
        cfg: &OrgConfig,
        mailbox: &ProbeMailbox,
        send: Option<(&str, &[u8])>,
        now: DateTime<Utc>,
    ) -> Result<bool, ProbeSendError> {
        let secret = self.credential(&cfg.org_id).await?;
        let way = Way::of(&mailbox.logon);
        let scope = match &mailbox.logon {
            ProbeLogon::Password => {
                let logon = SmtpLogon::Password(&secret);
                match send {
                    Some((rcpt, msg)) => self.smtp.send_probe(mailbox, logon, rcpt, msg).await?,
                    None => self.smtp.check_logon(mailbox, logon).await?,
                }
                return Ok(false);
            }
            ProbeLogon::Oauth2ClientCredentials(_) => OUTLOOK_SCOPE,
            ProbeLogon::GraphSendmail(_) => GRAPH_SCOPE,
            ProbeLogon::GoogleXoauth2 => GMAIL_SCOPE,
        };
        let Some(request) = Self::request(mailbox, scope, secret) else {
            return Err(fail(SendFailure::Setup, "no token request for this method"));
        };
        let (token, key) = self.token(&cfg.org_id, &request, way, now).await?;
        let result = match (&mailbox.logon, send) {
            (ProbeLogon::GraphSendmail(_), Some((_, msg))) => self
                .graph
                .send_mime(&token, &mailbox.username, msg, self.budget)
                .await
                .map_err(graph_failure),
            (ProbeLogon::GraphSendmail(_), None) => Ok(()),
            (_, Some((rcpt, msg))) => {
                self.smtp
                    .send_probe(mailbox, SmtpLogon::Xoauth2(&token), rcpt, msg)
                    .await
            }
            (_, None) => {
                self.smtp
                    .check_logon(mailbox, SmtpLogon::Xoauth2(&token))
                    .await
            }
        };
        if let Err(e) = &result {
            // A refused token may be revoked or stale: the next attempt fetches a new one.
            if matches!(e.kind, SendFailure::Auth | SendFailure::GraphRefused) {
                self.cache.drop_token(&key).await;
            }
        }
        result.map(|_| true)
    }

    /// Exchange Online's open incident as Microsoft's service health reports it (D10), when
    /// the organisation asked for it; `Err` with the reason when it could not be read (shown
    /// nowhere but the log: health never moves the counter).
    pub async fn provider_health(
        &self,
        cfg: &OrgConfig,
        now: DateTime<Utc>,
    ) -> Result<Option<ProviderIncident>, String> {
        let Some(mailbox) = cfg.probe.as_ref().filter(|p| p.provider_health) else {
            return Ok(None);
        };
        let Some(app) = mailbox.logon.microsoft_app() else {
            return Ok(None);
        };
        let secret = self.credential(&cfg.org_id).await.map_err(|e| e.text())?;
        let request = TokenRequest {
            issuer: Issuer::Microsoft {
                tenant: app.tenant.clone(),
            },
            grant: Self::microsoft_grant(app, secret),
            scope: GRAPH_SCOPE.into(),
        };
        let (token, key) = self
            .token(&cfg.org_id, &request, Way::Graph, now)
            .await
            .map_err(|e| e.text())?;
        match self.graph.service_health(&token, EXCHANGE_ONLINE).await {
            Ok((_status, issues)) => Ok(open_incident(&issues)),
            Err(e) => {
                if matches!(e, GraphError::Refused { status: 401, .. }) {
                    self.cache.drop_token(&key).await;
                }
                Err(e.to_string())
            }
        }
    }
}
