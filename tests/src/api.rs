//! The HTTP API on a loopback port, on virtual time, against the local services: a fresh table,
//! a mail bucket, an event bus read back through SQS, a link key set, and a local identity
//! provider that issues tokens for test users and administrators.

use crate::{fresh_store, init_tracing, sdk, unique, AlertEnv};
use api::{AppState, Services, Settings};
use chrono::{DateTime, Utc};
use shared::adapters::clock::VirtualClock;
use shared::adapters::jwks::{LocalIssuer, TokenRequest};
use shared::domain::identity::IdentitySettings;
use shared::ports::clock::Clock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const ISSUER: &str = "http://idp.test/local";
pub const AUDIENCE: &str = "continuity-test";
/// The service's sender (verified in moto's SES by [`ApiRig::start`]).
pub const SERVICE_SENDER: &str = "alerts@continuity.test";

pub struct ApiRig {
    /// `http://127.0.0.1:{port}`
    pub base: String,
    pub state: AppState,
    /// The fresh table behind every storage port of `state` (same client, same metrics).
    store: shared::adapters::dynamodb::DynamoStore,
    pub clock: VirtualClock,
    pub issuer: Arc<LocalIssuer>,
    pub env: AlertEnv,
    server: tokio::task::JoinHandle<()>,
    /// Whether the server listens (see [`ApiRig::serve`]).
    serving: tokio::sync::watch::Sender<bool>,
}

impl Drop for ApiRig {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ApiRig {
    /// The API as the local runner serves it (its own issuer offers the local sign-in form).
    pub async fn start(start: DateTime<Utc>) -> Self {
        Self::start_with(start, |_| {}).await
    }

    /// As [`ApiRig::start`], with the services adjusted by `adjust` before the server starts.
    pub async fn start_with(start: DateTime<Utc>, adjust: impl FnOnce(&mut Services)) -> Self {
        Self::start_configured(start, |_| {}, adjust).await
    }

    /// As [`ApiRig::start_with`], with the settings (as the environment would give them)
    /// adjusted by `configure` before the services are built from them.
    pub async fn start_configured(
        start: DateTime<Utc>,
        configure: impl FnOnce(&mut Settings),
        adjust: impl FnOnce(&mut Services),
    ) -> Self {
        init_tracing();
        let sdk = sdk().await;
        let store = fresh_store().await;
        let env = AlertEnv::create().await;
        let clock = VirtualClock::new(start);
        let identity = IdentitySettings::cognito(ISSUER, AUDIENCE);
        let issuer = Arc::new(LocalIssuer::generate(identity.clone()).expect("issuer"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut settings = Settings {
            table: store.table().to_string(),
            portal_base_url: base.clone(),
            link_keys_secret: env.link_keys_secret.clone(),
            channels: shared::adapters::notify::ChannelSettings {
                sender: SERVICE_SENDER.into(),
                sender_name: "Email Continuity".into(),
                sms_sender_id: None,
                event_bus: env.bus.clone(),
            },
            mail_bucket: unique("mail").to_lowercase(),
            mail_prefix: "inbound/".into(),
            identity,
            jwks_url: format!("{ISSUER}/.well-known/jwks.json"),
            hosted_sign_in: None,
            secure_cookies: false,
            secret_cache: Duration::from_secs(0),
            sign_in_floor: Duration::from_millis(50),
            session_recheck: chrono::Duration::minutes(5),
            receiving_domain: crate::RECEIVING_DOMAIN.into(),
            // Nothing listens on port 9: a test that proves domains gives its own DNS server.
            dns_servers: vec![SocketAddr::from(([127, 0, 0, 1], 9))],
            // A prefix of its own: rigs running at once with the same organisation ids never
            // share a probe secret.
            probe_secret_prefix: format!("{}/", unique("continuity")),
            oauth: Default::default(),
            // The test servers' CA, as the local stack sets SMTP_CA_BUNDLE.
            smtp_ca_bundle: Some(crate::test_cert().0.to_string_lossy().to_string()),
            // The defaults, as in AWS; tests of the limits set their own.
            source_limits: Default::default(),
            downloads: Default::default(),
            uploads: Default::default(),
        };
        configure(&mut settings);
        let mut services = Services::with_verifier(
            settings,
            &sdk,
            Arc::new(clock.clone()) as Arc<dyn Clock>,
            shared::app::auth::JwtVerifier::with_key_set(issuer.settings.clone(), issuer.jwks()),
        );
        services.use_store(store.clone());
        services.local_issuer = Some(issuer.clone());
        shared::adapters::s3::S3RawMessages::from_sdk(&sdk, &services.settings.mail_bucket)
            .ensure_bucket()
            .await
            .expect("bucket");
        adjust(&mut services);
        let state = AppState(Arc::new(services));
        let app = api::router(state.clone());
        let (serving, mut up) = tokio::sync::watch::channel(true);
        let server = tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let l = match listener.take() {
                    Some(l) => l,
                    None => match tokio::net::TcpListener::bind(addr).await {
                        Ok(l) => l,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let mut down = up.clone();
                let _ = axum::serve(
                    l,
                    app.clone()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = down.wait_for(|on| !*on).await;
                })
                .await;
                if up.wait_for(|on| *on).await.is_err() {
                    return;
                }
            }
        });
        ApiRig {
            base,
            state,
            store,
            clock,
            issuer,
            env,
            server,
            serving,
        }
    }

    /// Stops the server (`false`: its port refuses connections, open ones are closed, as when the
    /// service cannot be reached) or starts it again on the same port (`true`); returns once
    /// the port answers as asked (at most 10 s).
    pub async fn serve(&self, on: bool) {
        let _ = self.serving.send(on);
        let addr = self.base.trim_start_matches("http://").to_string();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() == on {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the API on {addr} did not {}",
            if on { "start" } else { "stop" }
        );
    }

    pub fn store(&self) -> &shared::adapters::dynamodb::DynamoStore {
        &self.store
    }

    /// A token for `email` (its organisation found by domain), an administrator when `admin`.
    pub fn token(&self, email: &str, admin: bool) -> String {
        let groups: &[&str] = if admin { &["continuity-admins"] } else { &[] };
        self.issuer
            .issue(
                &TokenRequest {
                    subject: &format!("sub-{email}"),
                    email: Some(email),
                    groups,
                    org: None,
                    second_factor: true,
                },
                self.clock.now(),
                chrono::Duration::hours(1),
            )
            .expect("token")
    }

    /// An HTTP client that does not follow redirects (tests look at them) and keeps no cookies.
    pub fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A JSON request (`GET`, `PUT`, `POST`) to `path` with `token` as bearer and `headers`: the
    /// status, the answer's headers and its JSON body (`null` when it has none).
    pub async fn json_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let c = Self::http();
        let url = self.url(path);
        let mut req = match method {
            "GET" => c.get(url),
            "PUT" => c.put(url),
            "DELETE" => c.delete(url),
            _ => c.post(url),
        };
        if let Some(tk) = token {
            req = req.bearer_auth(tk);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body.filter(|_| method != "DELETE") {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (
            status,
            headers,
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }
}
