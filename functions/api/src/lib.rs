//! The HTTP API: one axum router, served by API Gateway through `lambda_http` in AWS and by the
//! local runner on localhost. One folder per thing it serves, each with its routes and pages:
//!
//! - [`portal`]: the continuity portal opened from alert links (P1-P6): server-rendered pages,
//!   POST actions guarded by an anti-forgery token bound to the link.
//! - [`admin`]: the administration API (P7-P10, U5, U6, A6): configuration, continuity actions,
//!   audit, queue, delivery test, delegates and distribution lists, users' mobile numbers;
//!   signed in with the identity provider's JWT.
//! - [`session`]: browser sign-in (authorization code flow with PKCE against the identity
//!   provider; a local sign-in page in local runs; one-time codes and passkeys owned by the
//!   service, U11), the session cookie.
//! - [`inbox`]: the Online Inbox and Online Sent Items (U1-U8), web pages and JSON.
//! - [`client`]: continuity mode for mail clients (C1-C3): status and sync.
//!
//! What they share is in [`web`] (the error type, the signed-in principal, extractors, request
//! ids, page rendering) and in `shared` (the use cases); no feature imports another's handlers.
//! Pages are askama templates (`templates/`), their CSS and JS files (`static/`) included at build
//! time. [`AppState`] holds the settings and the ports, built once per container.

pub mod admin;
pub mod client;
pub mod inbox;
pub mod portal;
pub mod session;
pub mod web;

use axum::Router;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::graph::HttpGraph;
use shared::adapters::jwks::{LocalIssuer, RemoteJwks};
use shared::adapters::lambda::{env_or, required_env};
use shared::adapters::notify::{AwsChannels, ChannelSettings};
use shared::adapters::oauth::{HttpTokenEndpoint, OauthEndpoints};
use shared::adapters::s3::S3RawMessages;
use shared::adapters::secrets_manager::SecretsManagerSource;
use shared::adapters::smtp::probe::SmtpProbeSender;
use shared::adapters::smtp::relay::SmtpRelay;
use shared::app::auth::JwtVerifier;
use shared::app::client_sync::ClientSync;
use shared::app::continuity::Continuity;
use shared::app::downloads::{DownloadSettings, Downloads};
use shared::app::mailbox::Mailboxes;
use shared::app::passkeys::Passkeys;
use shared::app::probe_logon::{ProbeLogons, TokenCache};
use shared::app::send_mail::SendMail;
use shared::app::sign_in::SignIn;
use shared::app::source_limits::{SourceLimitSettings, SourceLimits};
use shared::app::uploads::Uploads;
use shared::domain::identity::{ClaimValue, IdentitySettings};
use shared::domain::uploads::UploadLimits;
use shared::ports::blob::RawMessages;
use shared::ports::clock::Clock;
use shared::ports::domains::{DomainClaims, DomainProofs, SendingIdentities};
use shared::ports::graph::GraphApi;
use shared::ports::mail::ProbeSender;
use shared::ports::mail::{MailSender, RouteTransport};
use shared::ports::notify::{AlertChannels, EventBus};
use shared::ports::oauth::TokenEndpoint;
use shared::ports::secrets::SecretSource;
use shared::ports::store::{
    ConfigStore, ContinuityStore, ContinuityViews, DirectoryStore, DomainOwners, MailStore,
    MailboxStore, PasskeyStore, QueueFiguresSource, QueueViews, RateCounters, SignInStore,
};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// The identity provider's browser sign-in endpoints (authorization code flow with PKCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedSignIn {
    /// e.g. `https://auth.example.com/oauth2/authorize` (a Cognito hosted UI domain).
    pub authorize_url: String,
    /// e.g. `https://auth.example.com/oauth2/token`.
    pub token_url: String,
    /// The app client id (a public client: no secret).
    pub client_id: String,
}

/// Each step of a probe logon test (connect, each SMTP command, each HTTP request). The test
/// as a whole gets three times this ([`ProbeLogons::test`]), 24 s: inside API Gateway's 29 s
/// and the function's timeout, so that a server that never answers still gets the
/// administrator a readable answer rather than a gateway timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// Settings, from the environment in AWS.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    /// Where the API is reached, e.g. `https://continuity.example.com` (links, redirects).
    pub portal_base_url: String,
    /// Secrets Manager secret holding the link key set (A3).
    pub link_keys_secret: String,
    /// The alert channels and the event bus; `channels.sender` is the service's verified
    /// sender (notices, A6; route tests, P8).
    pub channels: ChannelSettings,
    /// The mail bucket (raw messages; .eml downloads, attachments).
    pub mail_bucket: String,
    pub mail_prefix: String,
    pub identity: IdentitySettings,
    /// The identity provider's JWKS URL.
    pub jwks_url: String,
    /// Browser sign-in; `None` when only bearer tokens are accepted (or the local sign-in is used).
    pub hosted_sign_in: Option<HostedSignIn>,
    /// Cookies carry `Secure` (off only for plain-HTTP local runs).
    pub secure_cookies: bool,
    pub secret_cache: Duration,
    /// A code request is answered no sooner than this after it arrived, whatever the address
    /// (`SIGN_IN_MIN_RESPONSE_MS`): the sends to a real user must not make its answer slower
    /// than the answer for an address that is nobody's (U11).
    pub sign_in_floor: Duration,
    /// `SESSION_RECHECK_MINUTES`: a session opened by a code or a passkey asks the directory
    /// again whether its user is still there at most this often (issue 12).
    pub session_recheck: chrono::Duration,
    /// `RECEIVING_DOMAIN`: the service's own mail domain, never an organisation's (P11).
    pub receiving_domain: String,
    /// `DNS_SERVERS`: the resolver's name servers for domain proofs (empty: the system's).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// `PROBE_SECRET_PREFIX`: where organisations' probe credentials are ("test the probe logon").
    pub probe_secret_prefix: String,
    /// `MICROSOFT_LOGIN_URL`, `GOOGLE_TOKEN_URL`, `GRAPH_URL`: the token endpoints and Graph.
    pub oauth: OauthEndpoints,
    /// `SMTP_CA_BUNDLE`: optional PEM file of extra trusted CAs for the route and probe logon
    /// tests, as the monitor and the inbound function trust them (empty in AWS: public CAs).
    pub smtp_ca_bundle: Option<String>,
    /// Requests per source address to alert links and to sign-in (`LINK_SOURCE_*`,
    /// `SIGN_IN_SOURCE_*`; issue 12).
    pub source_limits: SourceLimitSettings,
    /// Downloads through presigned links (`DOWNLOAD_URL_MINUTES`, `INLINE_DOWNLOAD_BYTES`).
    pub downloads: DownloadSettings,
    /// Attachments uploaded before a send (`UPLOAD_MAX_FILE_BYTES`, `UPLOAD_MAX_STAGED_BYTES`,
    /// `UPLOADS_PER_HOUR`, `UPLOAD_URL_MINUTES`; issue 13).
    pub uploads: UploadLimits,
}

/// The upload caps: `UPLOAD_MAX_FILE_BYTES` (1 byte to 28 MiB, default 25 MiB: base64'd it must
/// leave room in SES v2's 40 MB), `UPLOAD_MAX_STAGED_BYTES` (at least one file; default 200 MiB),
/// `UPLOADS_PER_HOUR` (1 to 1000, default 60), `UPLOAD_URL_MINUTES` (1 to 60, default 10).
pub fn upload_limits_from_env() -> Result<UploadLimits, String> {
    let d = UploadLimits::default();
    let l = UploadLimits {
        file_bytes: env_or("UPLOAD_MAX_FILE_BYTES", d.file_bytes)?,
        staged_bytes: env_or("UPLOAD_MAX_STAGED_BYTES", d.staged_bytes)?,
        per_hour: env_or("UPLOADS_PER_HOUR", d.per_hour)?,
        url_minutes: env_or("UPLOAD_URL_MINUTES", d.url_minutes)?,
    };
    if !(1..=28 * 1024 * 1024).contains(&l.file_bytes) {
        return Err(format!(
            "UPLOAD_MAX_FILE_BYTES: {} is not between 1 and 29360128 (28 MiB base64'd is 37.3 MiB of SES v2's 40 MB)",
            l.file_bytes
        ));
    }
    if l.staged_bytes < l.file_bytes {
        return Err(format!(
            "UPLOAD_MAX_STAGED_BYTES: {} is below UPLOAD_MAX_FILE_BYTES",
            l.staged_bytes
        ));
    }
    if !(1..=1000).contains(&l.per_hour) {
        return Err(format!(
            "UPLOADS_PER_HOUR: {} is not between 1 and 1000",
            l.per_hour
        ));
    }
    if !(1..=60).contains(&l.url_minutes) {
        return Err(format!(
            "UPLOAD_URL_MINUTES: {} is not between 1 and 60",
            l.url_minutes
        ));
    }
    Ok(l)
}

/// `DOWNLOAD_URL_MINUTES` (1 to 60, default 5) and `INLINE_DOWNLOAD_BYTES` (at most 4 MiB:
/// base64 makes it a third larger inside Lambda's 6 MB answer; default 1 MiB).
pub fn download_settings_from_env() -> Result<DownloadSettings, String> {
    let d = DownloadSettings::default();
    let minutes: u64 = env_or("DOWNLOAD_URL_MINUTES", d.expires.as_secs() / 60)?;
    if !(1..=60).contains(&minutes) {
        return Err(format!(
            "DOWNLOAD_URL_MINUTES: {minutes} is not between 1 and 60"
        ));
    }
    let inline_bytes: usize = env_or("INLINE_DOWNLOAD_BYTES", d.inline_bytes)?;
    if inline_bytes > 4 * 1024 * 1024 {
        return Err(format!(
            "INLINE_DOWNLOAD_BYTES: {inline_bytes} is above 4194304 (Lambda answers at most 6 MB, base64 included)"
        ));
    }
    Ok(DownloadSettings {
        expires: Duration::from_secs(minutes * 60),
        inline_bytes,
    })
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let issuer = required_env("JWT_ISSUER")?;
        let audience = required_env("JWT_AUDIENCE")?;
        let mut identity = IdentitySettings::cognito(issuer.clone(), audience.clone());
        identity.admin_group = env_or("ADMIN_GROUP", identity.admin_group)?;
        identity.groups_claim = env_or("GROUPS_CLAIM", identity.groups_claim)?;
        identity.org_claim = env_or("ORG_CLAIM", identity.org_claim)?;
        // Unset or empty: the safe default (`amr` must hold `mfa`); `none` only where the
        // provider itself asks every sign-in for a second factor.
        if let Some(v) = std::env::var("ADMIN_MFA_CLAIM")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            identity.admin_second_factor =
                ClaimValue::parse(&v).map_err(|e| format!("ADMIN_MFA_CLAIM: {e}"))?;
        }
        let recheck_minutes: i64 = env_or("SESSION_RECHECK_MINUTES", 5)?;
        if !(1..=60).contains(&recheck_minutes) {
            return Err(format!(
                "SESSION_RECHECK_MINUTES: {recheck_minutes} is not between 1 and 60"
            ));
        }
        let hosted_domain = std::env::var("SIGN_IN_DOMAIN")
            .ok()
            .filter(|v| !v.trim().is_empty());
        let prefix = env_or("PROBE_SECRET_PREFIX", "continuity/".to_string())?;
        Ok(Settings {
            table: required_env("TABLE_NAME")?,
            portal_base_url: required_env("PORTAL_BASE_URL")?,
            link_keys_secret: required_env("LINK_KEYS_SECRET")?,
            channels: ChannelSettings::from_env()?,
            mail_bucket: required_env("MAIL_BUCKET")?,
            mail_prefix: env_or("MAIL_PREFIX", "inbound/".to_string())?,
            jwks_url: env_or("JWKS_URL", format!("{issuer}/.well-known/jwks.json"))?,
            hosted_sign_in: hosted_domain.map(|d| {
                let d = d.trim_end_matches('/').to_string();
                HostedSignIn {
                    authorize_url: format!("{d}/oauth2/authorize"),
                    token_url: format!("{d}/oauth2/token"),
                    client_id: audience.clone(),
                }
            }),
            identity,
            secure_cookies: true,
            secret_cache: Duration::from_secs(env_or("SECRET_CACHE_SECS", 300u64)?),
            sign_in_floor: Duration::from_millis(env_or("SIGN_IN_MIN_RESPONSE_MS", 1500u64)?),
            session_recheck: chrono::Duration::minutes(recheck_minutes),
            receiving_domain: required_env("RECEIVING_DOMAIN")?.to_ascii_lowercase(),
            dns_servers: shared::adapters::dns::parse_servers(
                &std::env::var("DNS_SERVERS").unwrap_or_default(),
            )?,
            probe_secret_prefix: shared::domain::probe::checked_secret_prefix(prefix)?,
            oauth: OauthEndpoints::from_env()?,
            smtp_ca_bundle: std::env::var("SMTP_CA_BUNDLE")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            source_limits: web::limits::settings_from_env()?,
            downloads: download_settings_from_env()?,
            uploads: upload_limits_from_env()?,
        })
    }
}

/// Everything a handler needs, built once per container. Handlers reach the world only
/// through these ports; [`Services::with_verifier`] wires them to the AWS adapters.
pub struct Services {
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
    /// The organisation's configuration (P8).
    pub config: Arc<dyn ConfigStore>,
    /// Which organisation owns a domain (sign-in).
    pub domains: Arc<dyn DomainOwners>,
    /// Continuity actions, the audit and the user directory (P2-P7, A6).
    pub continuity_store: Arc<dyn ContinuityStore>,
    /// What the portal and the API show (P1, P7).
    pub views: Arc<dyn ContinuityViews>,
    pub queue: Arc<dyn QueueFiguresSource>,
    /// The inbound queue, for BCC copies to the server (U8).
    pub mail: Arc<dyn MailStore>,
    /// The Online Inbox and Sent Items (U1-U4), and what clients were handed (C3).
    pub mailboxes: Arc<dyn MailboxStore>,
    /// Delegates and distribution lists (U5, U6).
    pub directory: Arc<dyn DirectoryStore>,
    /// The service's own sign-in: codes, counters, sessions (U11).
    pub sign_in_store: Arc<dyn SignInStore>,
    /// Passkeys and their ceremonies (U11).
    pub passkey_store: Arc<dyn PasskeyStore>,
    /// Rate limits' counters (alert links' actions, requests per source address).
    pub rates: Arc<dyn RateCounters>,
    pub secrets: Arc<dyn SecretSource>,
    /// SMS and email notices (A6).
    pub channels: Arc<dyn AlertChannels>,
    /// The service's event bus (P7).
    pub bus: Arc<dyn EventBus>,
    /// Users' mail out (U3).
    pub mail_sender: Arc<dyn MailSender>,
    /// Raw messages (.eml downloads, attachments, sent mail).
    pub raw: Arc<dyn RawMessages>,
    /// Delivery to the organisation's server ("test the delivery route", P8).
    pub relay: Arc<dyn RouteTransport>,
    /// Why mail waits: the queue, its next look, what was set aside (P8, Q9, Q10).
    pub queue_views: Arc<dyn QueueViews>,
    /// Domain claims and proofs (P11).
    pub claims: Arc<dyn DomainClaims>,
    /// The DNS, for domain proofs (P11).
    pub proofs: Arc<dyn DomainProofs>,
    /// Organisations' sending identities in SES (P11).
    pub identities: Arc<dyn SendingIdentities>,
    /// "Test the probe logon" (D9): the token endpoints, Graph, SMTP submission, the tokens.
    pub probe_tokens: Arc<dyn TokenEndpoint>,
    pub probe_graph: Arc<dyn GraphApi>,
    pub probe_smtp: Arc<dyn ProbeSender>,
    pub token_cache: Arc<TokenCache>,
    pub verifier: JwtVerifier,
    /// A local run's own identity provider: `/auth/login` then offers a sign-in form that issues
    /// its tokens (never set in AWS).
    pub local_issuer: Option<Arc<LocalIssuer>>,
}

impl Services {
    /// Clients from the SDK configuration; the verifier fetches the provider's JWKS.
    pub fn new(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let jwks = RemoteJwks::new(settings.jwks_url.clone()).map_err(|e| e.to_string())?;
        let verifier = JwtVerifier::new(settings.identity.clone(), Arc::new(jwks));
        Ok(Self::with_verifier(settings, sdk, clock, verifier))
    }

    /// As [`Services::new`], with a given verifier (the local runner's own issuer, tests).
    pub fn with_verifier(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
        verifier: JwtVerifier,
    ) -> Self {
        let store = Arc::new(DynamoStore::from_sdk(sdk, &settings.table));
        let channels = Arc::new(AwsChannels::new(sdk, &settings.channels));
        let helo = url::Url::parse(&settings.portal_base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        let proofs = shared::adapters::dns::DnsTxtProofs::new(&settings.dns_servers)
            .unwrap_or_else(|e| panic!("DNS_SERVERS: {e}"));
        // Read once at start-up; a bundle that cannot be read stops the function here.
        let roots = settings.smtp_ca_bundle.as_ref().map(|path| {
            std::fs::read(path).unwrap_or_else(|e| panic!("SMTP_CA_BUNDLE {path}: {e}"))
        });
        Services {
            queue_views: store.clone(),
            claims: store.clone(),
            proofs: Arc::new(proofs),
            identities: Arc::new(shared::adapters::sesv2::SesIdentities::from_sdk(sdk)),
            config: store.clone(),
            domains: store.clone(),
            continuity_store: store.clone(),
            views: store.clone(),
            queue: store.clone(),
            mail: store.clone(),
            mailboxes: store.clone(),
            directory: store.clone(),
            sign_in_store: store.clone(),
            rates: store.clone(),
            passkey_store: store,
            clock,
            secrets: Arc::new(SecretsManagerSource::from_sdk(sdk, settings.secret_cache)),
            channels: channels.clone(),
            bus: channels,
            // Users' mail through SES v2 raw: 40 MB a message (v1: 10 MB).
            mail_sender: Arc::new(shared::adapters::sesv2::SesV2MailSender::from_sdk(sdk)),
            raw: Arc::new(S3RawMessages::from_sdk(sdk, &settings.mail_bucket)),
            relay: Arc::new(SmtpRelay::new(helo, roots.clone())),
            probe_tokens: Arc::new(
                HttpTokenEndpoint::new(settings.oauth.clone(), PROBE_TIMEOUT)
                    .unwrap_or_else(|e| panic!("token endpoint client: {e}")),
            ),
            probe_graph: Arc::new(
                HttpGraph::new(&settings.oauth.graph, PROBE_TIMEOUT)
                    .unwrap_or_else(|e| panic!("Graph client: {e}")),
            ),
            probe_smtp: Arc::new(SmtpProbeSender::new(PROBE_TIMEOUT, roots)),
            token_cache: Arc::new(TokenCache::default()),
            verifier,
            local_issuer: None,
            settings,
        }
    }

    /// Points every storage port at `store` (tests and the local runner use their own table).
    pub fn use_store(&mut self, store: DynamoStore) {
        let store = Arc::new(store);
        self.queue_views = store.clone();
        self.claims = store.clone();
        self.config = store.clone();
        self.domains = store.clone();
        self.continuity_store = store.clone();
        self.views = store.clone();
        self.queue = store.clone();
        self.mail = store.clone();
        self.mailboxes = store.clone();
        self.directory = store.clone();
        self.sign_in_store = store.clone();
        self.rates = store.clone();
        self.passkey_store = store;
    }

    /// The service's own sign-in use case (codes, sessions; U11).
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            store: self.sign_in_store.as_ref(),
            domains: self.domains.as_ref(),
            channels: self.channels.as_ref(),
            secrets: self.secrets.as_ref(),
            keys_secret: &self.settings.link_keys_secret,
            portal_base_url: &self.settings.portal_base_url,
            recheck: self.settings.session_recheck,
        }
    }

    /// The relying party of passkeys: the portal's host and origin. `None` when the portal's
    /// address cannot be one (an IP address: WebAuthn needs a domain name).
    pub fn webauthn(&self) -> Option<webauthn_rs::prelude::Webauthn> {
        let origin = url::Url::parse(&self.settings.portal_base_url).ok()?;
        let host = origin.domain()?.to_string();
        webauthn_rs::prelude::WebauthnBuilder::new(&host, &origin)
            .ok()?
            .rp_name("Email continuity")
            .build()
            .ok()
    }

    /// The passkeys use case over `webauthn` (enrolment, sign-in, removal; U11).
    pub fn passkeys<'a>(&'a self, webauthn: &'a webauthn_rs::prelude::Webauthn) -> Passkeys<'a> {
        Passkeys {
            webauthn,
            store: self.passkey_store.as_ref(),
            sign_in: self.sign_in(),
            continuity: self.continuity(),
        }
    }

    /// How the probe logs on, over these ports ("test the probe logon").
    pub fn probe_logons(&self) -> ProbeLogons<'_> {
        ProbeLogons {
            secrets: self.secrets.as_ref(),
            tokens: self.probe_tokens.as_ref(),
            cache: self.token_cache.as_ref(),
            smtp: self.probe_smtp.as_ref(),
            graph: self.probe_graph.as_ref(),
            secret_prefix: &self.settings.probe_secret_prefix,
            budget: PROBE_TIMEOUT * 3,
        }
    }

    /// The continuity use case (actions, their audit and events) over these ports.
    pub fn continuity(&self) -> Continuity<'_> {
        Continuity {
            store: self.continuity_store.as_ref(),
            bus: self.bus.as_ref(),
        }
    }

    /// Delegates and distribution lists, each change audited (U5, U6, P7).
    pub fn directory(&self) -> shared::app::directory::Directory<'_> {
        shared::app::directory::Directory {
            store: self.directory.as_ref(),
            continuity: self.continuity(),
        }
    }

    /// The alert-link portal use case (verified links, their page, their actions).
    pub fn portal(&self) -> shared::app::portal::Portal<'_> {
        shared::app::portal::Portal {
            secrets: self.secrets.as_ref(),
            keys_secret: &self.settings.link_keys_secret,
            views: self.views.as_ref(),
            queue: self.queue_views.as_ref(),
            continuity: self.continuity(),
            rates: self.rates.as_ref(),
        }
    }

    /// Requests per source address to alert links and sign-in (issue 12).
    pub fn source_limits(&self) -> SourceLimits<'_> {
        SourceLimits {
            rates: self.rates.as_ref(),
            settings: self.settings.source_limits,
        }
    }

    /// The administrators' settings use case (configuration, queue pause, users import).
    pub fn settings(&self) -> shared::app::settings::Settings<'_> {
        shared::app::settings::Settings {
            config: self.config.as_ref(),
            owners: self.domains.as_ref(),
            continuity: self.continuity(),
        }
    }

    /// The proven-domains use case (claims, DNS proofs, SES identities; P11).
    pub fn domains(&self) -> shared::app::domains::Domains<'_> {
        shared::app::domains::Domains {
            claims: self.claims.as_ref(),
            owners: self.domains.as_ref(),
            config: self.config.as_ref(),
            proofs: self.proofs.as_ref(),
            identities: self.identities.as_ref(),
            bus: self.bus.as_ref(),
            receiving_domain: &self.settings.receiving_domain,
        }
    }

    /// The Online Inbox use case (who reaches which mailbox, reading it, block rules).
    pub fn inbox(&self) -> Mailboxes<'_> {
        Mailboxes {
            store: self.mailboxes.as_ref(),
            directory: self.directory.as_ref(),
            raw: self.raw.as_ref(),
        }
    }

    /// Downloads (.eml, attachments) through presigned links (U2).
    pub fn downloads(&self) -> Downloads<'_> {
        Downloads {
            mailboxes: self.inbox(),
            settings: self.settings.downloads,
        }
    }

    /// The search use case (issue 17): the mailbox store's index, the inbox's authorisation.
    pub fn search(&self) -> shared::app::search::Search<'_> {
        shared::app::search::Search {
            index: self.mailboxes.as_ref(),
            mailboxes: self.inbox(),
        }
    }

    /// The sending use case (compose, reply, forward, the copy to the server).
    pub fn send_mail(&self) -> SendMail<'_> {
        SendMail {
            mailboxes: self.mailboxes.as_ref(),
            directory: self.directory.as_ref(),
            raw: self.raw.as_ref(),
            sender: self.mail_sender.as_ref(),
            config: self.config.as_ref(),
            views: self.views.as_ref(),
            queue: self.mail.as_ref(),
            uploads: self.uploads(),
        }
    }

    /// Attachments uploaded before a send (issue 13): presigned uploads, staged reads.
    pub fn uploads(&self) -> Uploads<'_> {
        Uploads {
            raw: self.raw.as_ref(),
            rates: self.rates.as_ref(),
            limits: self.settings.uploads,
        }
    }

    /// The mail clients' use case (status, sync, what was handed out).
    pub fn client_sync(&self) -> ClientSync<'_> {
        ClientSync {
            views: self.views.as_ref(),
            mailboxes: self.inbox(),
        }
    }
}

/// The router's state: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Largest request body accepted: what Lambda takes in one synchronous invocation (6 MB, the
/// event's JSON included; API Gateway's own limit is 10 MB). Bigger attachments are uploaded
/// to the mail bucket, and forwarded ones are read there.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(portal::routes())
        .merge(admin::routes())
        .merge(session::routes())
        .merge(inbox::routes())
        .merge(client::routes())
        .fallback(web::error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::limits::per_source,
        ))
        .layer(axum::middleware::from_fn(web::error::security_headers))
        .layer(axum::middleware::from_fn(web::compress::compress))
        .with_state(state)
}
