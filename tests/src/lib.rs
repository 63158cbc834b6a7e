//! Test support: the local services started by `infra/local/test.sh` (DynamoDB Local, moto
//! server), a real SMTP server per test (`infra/local/mailserver.py`, aiosmtpd) that a test can
//! stop, make refuse or make hang, and fixtures.
//!
//! Nothing here fakes a service: a test that needs one and finds no endpoint fails, naming the
//! command that provides it.

pub mod api;
pub mod browser;
pub mod day;
pub mod dns;
pub mod faults;
pub mod inbox_support;
pub mod lambda_api;
pub mod oauth;
pub mod path_cost;
pub mod portal_support;
pub mod pricing;
pub mod search_support;
pub mod sign_in_support;

use aws_sdk_dynamodb::Client as DynamoClient;
use shared::adapters::dynamodb::DynamoStore;
use shared::ports::store::ConfigStore;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with infra/local/test.sh, which starts the local services")
    })
}

/// The SDK configuration for the local services.
pub async fn sdk() -> aws_config::SdkConfig {
    env("AWS_ENDPOINT_URL_DYNAMODB");
    env("AWS_ENDPOINT_URL");
    shared::adapters::aws::sdk_config().await
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// A fresh table of its own for one test. Its client carries the benches' pricing meter
/// ([`pricing::Meter`]), idle unless a bench started it.
pub async fn fresh_store() -> DynamoStore {
    let sdk = sdk().await;
    let client = DynamoClient::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(pricing::Meter)
            .build(),
    );
    let table = unique("continuity-test");
    DynamoStore::create_table_without_expiry(&client, &table)
        .await
        .expect("create table");
    DynamoStore::new(client, table)
}

/// Stores a secret in the local Secrets Manager (moto).
pub async fn put_secret(name: &str, value: &str) {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    if client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .is_err()
    {
        client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .expect("put secret");
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A self-signed certificate for `localhost` / 127.0.0.1, made once per test process.
pub fn test_cert() -> &'static (PathBuf, PathBuf) {
    static CERT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    CERT.get_or_init(|| {
        let dir = std::env::temp_dir().join(unique("continuity-cert"));
        let status = std::process::Command::new("bash")
            .arg(repo_root().join("infra/local/make-test-cert.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run make-test-cert.sh");
        assert!(status.success(), "make-test-cert.sh failed");
        (dir.join("cert.pem"), dir.join("key.pem"))
    })
}

/// Options of a mail server stand-in.
#[derive(Debug, Clone, Default)]
pub struct MailServerOptions {
    /// STARTTLS with the test certificate (required before AUTH and MAIL).
    pub tls: bool,
    /// Required login.
    pub auth: Option<(String, String)>,
    /// `(domain, port)`: mail for `domain` is relayed to 127.0.0.1:port.
    pub relay: Vec<(String, u16)>,
    /// Largest message accepted (bytes); default aiosmtpd's 32 MiB.
    pub max_size: Option<usize>,
    /// RCPT TO beyond this many per transaction get `452 4.5.3` (RFC 5321 obliges 100).
    pub max_recipients: Option<usize>,
    /// With `tls`: a client certificate issued by this CA (PEM file) is required, as a connector
    /// that identifies its sender by certificate requires it.
    pub client_ca: Option<PathBuf>,
    /// AUTH XOAUTH2 against the local token endpoint (see [`oauth`]).
    pub xoauth2: Option<oauth::Xoauth2>,
    /// Answer every AUTH PLAIN/LOGIN with this reply (`550 5.7.30 ...`).
    pub password_refusal: Option<String>,
}

/// The port a stand-in started by the tests listens on: the one line `READY <port>` it prints
/// on stdout once listening (within 20 s).
pub(crate) async fn ready_port(child: &mut Child, what: &str) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} did not start in 20 s"))
    .unwrap_or_else(|e| panic!("read {what} stdout: {e}"))
    .unwrap_or_else(|| panic!("{what} exited before it was ready"));
    line.strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected {what} line {line:?}"))
}

/// A real SMTP server (aiosmtpd) on 127.0.0.1, standing in for the organisation's server.
pub struct MailServer {
    pub port: u16,
    pub dir: TempDir,
    options: MailServerOptions,
    child: Option<Child>,
}

impl MailServer {
    pub async fn start(options: MailServerOptions) -> Self {
        let dir = TempDir::new("continuity-mail");
        let mut s = MailServer {
            port: 0,
            dir,
            options,
            child: None,
        };
        s.spawn(0).await;
        s
    }

    async fn spawn(&mut self, port: u16) {
        let mut cmd = Command::new(env("CONTINUITY_PYTHON"));
        cmd.arg(env("CONTINUITY_MAILSERVER"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--maildir")
            .arg(self.dir.path().join("maildir"))
            .arg("--mode-file")
            .arg(self.mode_file());
        if self.options.tls {
            let (cert, key) = test_cert();
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            if let Some(ca) = &self.options.client_ca {
                cmd.arg("--tls-client-ca").arg(ca);
            }
        }
        if let Some((u, p)) = &self.options.auth {
            cmd.args(["--auth-user", u, "--auth-password", p]);
        }
        for (domain, port) in &self.options.relay {
            cmd.arg("--relay").arg(format!("{domain}=127.0.0.1:{port}"));
        }
        if let Some(max) = self.options.max_size {
            cmd.arg("--max-size").arg(max.to_string());
        }
        if let Some(max) = self.options.max_recipients {
            cmd.arg("--max-recipients").arg(max.to_string());
        }
        if let Some(x) = &self.options.xoauth2 {
            cmd.args(["--xoauth2-jwks", &x.jwks])
                .args(["--xoauth2-audience", &x.audience])
                .args(["--xoauth2-style", x.style]);
            for m in &x.mailboxes {
                cmd.args(["--xoauth2-mailbox", m]);
            }
        }
        if let Some(r) = &self.options.password_refusal {
            cmd.args(["--password-refusal", r]);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start mailserver.py");
        self.port = ready_port(&mut child, "mail server").await;
        self.child = Some(child);
    }

    pub fn mode_file(&self) -> PathBuf {
        self.dir.path().join("mode")
    }

    /// `accept`, `tempfail`, `permfail`, `hang`, `drop-after-data`, `hang-after-data`,
    /// `tempfail-after-N` (451 once N messages are stored), ... (see `mailserver.py`).
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.mode_file(), mode).expect("write mode file");
    }

    /// Stops the server (by its PID).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let port = self.port;
        for _ in 0..50 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.spawn(port).await;
    }

    /// Raw messages stored so far.
    pub fn messages(&self) -> Vec<String> {
        let dir = self.dir.path().join("maildir/new");
        let mut out: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let t = e.metadata().ok()?.modified().ok()?;
                        Some((t, std::fs::read_to_string(e.path()).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out.into_iter().map(|(_, m)| m).collect()
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
}

use chrono::{DateTime, Utc};
use local_runner::Runner;
use monitor::Deps;
pub use shared::adapters::clock::VirtualClock;
use shared::adapters::secrets_manager::SecretsManagerSource;
use shared::adapters::smtp::probe::SmtpProbeSender;
use shared::domain::config::{Monitoring, OrgConfig, ProbeMailbox, Route, RouteTls, SubmissionTls};
pub use shared::domain::verdicts::{Verdict, Verdicts};
pub use shared::ports::blob::RawMessages;
pub use shared::ports::clock::Clock;
use std::sync::Arc;

/// The service's receiving domain in tests.
pub const PROBE_DOMAIN: &str = "probe.continuity.test";
/// The service's own mail domain in tests (never an organisation's, P11).
pub const RECEIVING_DOMAIN: &str = "continuity.test";
/// The service's host name in tests (`SMTP_HELO_NAME`; the trace fields' `by`).
pub const SERVICE_HOST: &str = "mx.continuity.test";
/// Login of the probe mailbox on the test mail servers.
pub const PROBE_USER: &str = "continuity-probe@acme.test";

/// A clock that reads another clock shifted by a fixed offset (a slow mail path).
pub struct OffsetClock(pub VirtualClock, pub chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now() + self.1
    }
}

/// An organisation with the inbound check only.
pub fn inbound_org(org_id: &str, threshold: u32) -> OrgConfig {
    OrgConfig {
        org_id: org_id.to_string(),
        name: format!("Org {org_id}"),
        domains: vec![format!("{org_id}.test")],
        routes: vec![Route {
            host: "127.0.0.1".into(),
            port: 25,
            tls: RouteTls::Opportunistic,
        }],
        monitoring: Monitoring {
            enabled: true,
            inbound_check: true,
            outbound_check: false,
            threshold,
            acceptable_latency_secs: 60,
        },
        probe: None,
        alerts: Default::default(),
        queue: Default::default(),
        delivery: Default::default(),
        time_zone: "UTC".into(),
        continuity: Default::default(),
        sign_in: Default::default(),
    }
}

/// An organisation with both checks, its probe mailbox on 127.0.0.1:`smtp_port` (STARTTLS, AUTH
/// with a password read from the organisation's derived secret).
pub fn probed_org(org_id: &str, threshold: u32, smtp_port: u16) -> OrgConfig {
    let mut c = inbound_org(org_id, threshold);
    c.monitoring.outbound_check = true;
    c.probe = Some(ProbeMailbox {
        host: "127.0.0.1".into(),
        port: smtp_port,
        tls: SubmissionTls::Starttls,
        username: PROBE_USER.into(),
        logon: Default::default(),
        password_secret: None,
        from_address: format!("continuity-probe@{org_id}.test"),
        probe_address: format!("probe@{PROBE_DOMAIN}"),
        provider_health: false,
    });
    c
}

/// The organisation's server with submission (STARTTLS, AUTH as [`PROBE_USER`] with a fresh
/// password stored in Secrets Manager under `secret`, the organisation's derived name: see
/// [`probe_secret`]), relaying as given.
pub async fn submission_server(secret: &str, relay: Vec<(String, u16)>) -> MailServer {
    let password = unique("pw");
    put_secret(secret, &password).await;
    MailServer::start(MailServerOptions {
        tls: true,
        auth: Some((PROBE_USER.into(), password)),
        relay,
        ..Default::default()
    })
    .await
}

/// The service's alert sender in tests (its domain is verified in moto's SES).
pub const ALERT_SENDER: &str = "alerts@continuity.test";
/// Portal base of links in tests.
pub const PORTAL: &str = "https://continuity.test";

/// Per test: an event bus of its own (with an SQS queue receiving everything on it, so that
/// tests read back what was published) and a link key set.
pub struct AlertEnv {
    pub bus: String,
    pub events_queue_url: String,
    pub link_keys_secret: String,
    pub link_keys: shared::domain::links::LinkKeys,
}

impl AlertEnv {
    pub async fn create() -> Self {
        let sdk = sdk().await;
        let ses = aws_sdk_ses::Client::new(&sdk);
        ses.verify_domain_identity()
            .domain("continuity.test")
            .send()
            .await
            .expect("verify SES domain");
        let bus = unique("bus");
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("create bus");
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = sqs
            .create_queue()
            .queue_name(unique("events"))
            .send()
            .await
            .expect("queue");
        let events_queue_url = queue.queue_url.expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&events_queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn")
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("arn");
        let rule = unique("all");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(r#"{"source":["email-continuity"]}"#)
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("targets");
        let link_keys_secret = unique("continuity/link-keys");
        let json = format!(
            r#"{{"current":"k1","keys":{{"k1":{{"secret":"{}"}}}}}}"#,
            shared::domain::links::generate_key_secret()
        );
        put_secret(&link_keys_secret, &json).await;
        AlertEnv {
            bus,
            events_queue_url,
            link_keys: shared::domain::links::LinkKeys::from_json(&json).expect("keys"),
            link_keys_secret,
        }
    }

    /// The monitor's channel settings in tests: the test sender, an SMS sender id, this bus.
    pub fn channel_settings(&self) -> shared::adapters::notify::ChannelSettings {
        shared::adapters::notify::ChannelSettings {
            sender: ALERT_SENDER.into(),
            sender_name: "Email continuity".into(),
            sms_sender_id: Some("Continuity".into()),
            event_bus: self.bus.clone(),
        }
    }

    /// Events published on this bus so far (each returned once): (detail-type, detail).
    pub async fn events(&self) -> Vec<(String, serde_json::Value)> {
        let sqs = aws_sdk_sqs::Client::new(&sdk().await);
        let mut out = Vec::new();
        loop {
            let r = sqs
                .receive_message()
                .queue_url(&self.events_queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let msgs = r.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                let v: serde_json::Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).expect("event json");
                out.push((
                    v["detail-type"].as_str().unwrap_or_default().to_string(),
                    v["detail"].clone(),
                ));
                if let Some(h) = m.receipt_handle() {
                    let _ = sqs
                        .delete_message()
                        .queue_url(&self.events_queue_url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
        }
    }
}

/// The name of `org_id`'s probe secret under `deps`' prefix (each set of dependencies has a
/// prefix of its own, so that tests running at once with the same organisation ids never share
/// a secret).
pub fn probe_secret(deps: &Deps, org_id: &str) -> String {
    shared::domain::probe::probe_secret_name(&deps.probe_secret_prefix, org_id)
}

/// The monitor's dependencies on the local services, with the test CA trusted for SMTP.
pub async fn deps(
    store: shared::adapters::dynamodb::DynamoStore,
    clock: Arc<dyn Clock>,
    smtp_timeout: Duration,
) -> Deps {
    deps_with(store, clock, smtp_timeout, &AlertEnv::create().await).await
}

/// As [`deps`], with a given alert environment.
pub async fn deps_with(
    store: shared::adapters::dynamodb::DynamoStore,
    clock: Arc<dyn Clock>,
    smtp_timeout: Duration,
    env: &AlertEnv,
) -> Deps {
    deps_oauth(store, clock, smtp_timeout, env, Default::default()).await
}

/// As [`deps_with`], with the token endpoints and Graph at `oauth` (the loopback stand-ins of
/// [`oauth`]).
pub async fn deps_oauth(
    store: shared::adapters::dynamodb::DynamoStore,
    clock: Arc<dyn Clock>,
    smtp_timeout: Duration,
    env: &AlertEnv,
    oauth: shared::adapters::oauth::OauthEndpoints,
) -> Deps {
    let sdk = sdk().await;
    let ca = std::fs::read(&test_cert().0).expect("read test cert");
    Deps {
        store,
        secrets: SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            Duration::from_secs(3600),
        ),
        sender: SmtpProbeSender::new(smtp_timeout, Some(ca)).announcing(SERVICE_HOST),
        tokens: shared::adapters::oauth::HttpTokenEndpoint::new(oauth.clone(), smtp_timeout)
            .expect("token client"),
        graph: shared::adapters::graph::HttpGraph::new(&oauth.graph, smtp_timeout)
            .expect("graph client"),
        token_cache: Default::default(),
        probe_secret_prefix: format!("{}/", unique("continuity")),
        probe_budget: smtp_timeout * 3,
        channels: shared::adapters::notify::AwsChannels::new(&sdk, &env.channel_settings()),
        clock,
        fan_out: 64,
        link_keys_secret: env.link_keys_secret.clone(),
        portal_base_url: PORTAL.into(),
    }
}

/// SMS moto recorded for `phone`.
pub async fn sms_to(phone: &str) -> Vec<String> {
    let v = moto_data().await;
    v["sns"]["SMS"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["phone_number"] == phone)
                .filter_map(|m| m["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Raw emails moto recorded for `address`.
pub async fn emails_to(address: &str) -> Vec<String> {
    let v = moto_data().await;
    v["ses"]["RawMessage"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["destinations"].to_string().contains(address))
                .filter_map(|m| m["raw_data"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A whole local set-up on virtual time: a fresh table, the runner (monitor and queue), and the
/// receiving stand-in (SES receiving: S3 then the inbound handler; probe arrivals are stamped
/// `arrival_delay` after the virtual now).
pub struct Rig {
    pub clock: VirtualClock,
    pub alerts: AlertEnv,
    pub runner: Arc<Runner>,
    pub receiving_port: u16,
    /// The DNS the receiving stand-in judges SPF, DKIM and DMARC against (no records unless a
    /// test adds some).
    pub dns: dns::DnsServer,
    receiving: tokio::task::JoinHandle<()>,
}

impl Rig {
    pub async fn start(start: DateTime<Utc>, arrival_delay: chrono::Duration) -> Self {
        Self::start_oauth(start, arrival_delay, Default::default()).await
    }

    /// As [`Rig::start`], with the token endpoints and Graph at `oauth`.
    pub async fn start_oauth(
        start: DateTime<Utc>,
        arrival_delay: chrono::Duration,
        oauth: shared::adapters::oauth::OauthEndpoints,
    ) -> Self {
        init_tracing();
        let store = fresh_store().await;
        let clock = VirtualClock::new(start);
        let alerts = AlertEnv::create().await;
        let deps = Arc::new(
            deps_oauth(
                store.clone(),
                Arc::new(clock.clone()),
                Duration::from_secs(3),
                &alerts,
                oauth,
            )
            .await,
        );
        let mail = Arc::new(mail_deps(store, Arc::new(clock.clone())).await);
        let runner = Arc::new(
            Runner::new(deps, Some(clock.clone()), Duration::from_secs(5))
                .with_inbound(mail.clone()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiving");
        let receiving_port = listener.local_addr().expect("addr").port();
        let dns = dns::DnsServer::start(&[]).await;
        let judge = Arc::new(
            local_runner::verdicts::Judge::new(&dns.servers(), "receiving.localhost")
                .expect("judge"),
        );
        let receiving = tokio::spawn(local_runner::receiving::serve(
            listener,
            mail,
            Arc::new(OffsetClock(clock.clone(), arrival_delay)),
            judge,
        ));
        Rig {
            clock,
            alerts,
            runner,
            receiving_port,
            dns,
            receiving,
        }
    }

    pub fn store(&self) -> &shared::adapters::dynamodb::DynamoStore {
        &self.runner.deps.store
    }

    /// The name of `org_id`'s probe secret in this rig.
    pub fn probe_secret(&self, org_id: &str) -> String {
        probe_secret(&self.runner.deps, org_id)
    }

    /// A mail server stand-in with STARTTLS and AUTH whose outbound mail for the receiving
    /// domain reaches this rig's receiving stand-in; the probe password is stored in `org_id`'s
    /// probe secret.
    pub async fn org_server(&self, org_id: &str) -> MailServer {
        submission_server(
            &self.probe_secret(org_id),
            vec![(PROBE_DOMAIN.into(), self.receiving_port)],
        )
        .await
    }

    /// Advances virtual time to exactly `t`, running every schedule tick on the way.
    pub async fn advance_to(&self, t: DateTime<Utc>) -> Vec<local_runner::Tick> {
        let by = t - self.clock.now();
        self.runner.advance(by).await.expect("advance")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.receiving.abort();
    }
}

/// Parses an RFC 3339 time.
pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// Inbound mail and the queue.

/// The bounce sender of the tests (verified in moto by [`mail_deps`]).
pub const BOUNCE_SENDER: &str = "mailer-daemon@continuity.test";

/// The inbound and queue functions' settings in tests: `store`'s table, a fresh mail bucket.
pub fn mail_settings(store: &shared::adapters::dynamodb::DynamoStore) -> inbound::Settings {
    inbound::Settings {
        table: store.table().to_string(),
        bucket: unique("mail").to_lowercase(),
        prefix: "inbound/".into(),
        bounce_sender: BOUNCE_SENDER.into(),
        helo: SERVICE_HOST.into(),
        ca_bundle: None,
        client_cert_secret: None,
        fan_out: 16,
    }
}

/// The inbound and queue functions' dependencies on the local services: `store`'s table, a
/// fresh mail bucket, the bounce sender verified in moto's SES.
pub async fn mail_deps(
    store: shared::adapters::dynamodb::DynamoStore,
    clock: Arc<dyn Clock>,
) -> inbound::Deps {
    let settings = mail_settings(&store);
    mail_deps_from(&settings, store, clock)
        .await
        .expect("inbound deps")
}

/// As [`mail_deps`] with `settings`, started as the functions start ([`inbound::Deps::start`]:
/// the client certificate read from moto's Secrets Manager): its refusal as it is.
pub async fn mail_deps_from(
    settings: &inbound::Settings,
    store: shared::adapters::dynamodb::DynamoStore,
    clock: Arc<dyn Clock>,
) -> Result<inbound::Deps, String> {
    let sdk = sdk().await;
    let mut deps = inbound::Deps::start(settings, &sdk, clock).await?;
    deps.store = store;
    deps.raw.ensure_bucket().await.expect("create bucket");
    deps.bouncer
        .verify_sender(BOUNCE_SENDER)
        .await
        .expect("verify bounce sender");
    Ok(deps)
}

/// The inbound handler run as Lambda runs it: the function's deadline from now (300 s, less
/// the margin to settle).
pub async fn handle_ses_now(
    deps: &inbound::Deps,
    event: &inbound::SesEvent,
) -> Result<Vec<shared::app::inbound::InboundReport>, shared::app::inbound::InboundError> {
    inbound::handle_ses(
        deps,
        event,
        inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
    )
    .await
}

/// A set-up for inbound mail on virtual time: a fresh table, the functions' dependencies, and
/// the organisation's mail servers (real aiosmtpd processes the test can stop or misconfigure).
pub struct MailRig {
    pub clock: VirtualClock,
    pub deps: Arc<inbound::Deps>,
}

impl MailRig {
    pub async fn start(start: DateTime<Utc>) -> Self {
        Self::start_with(start, fresh_store().await, |_| {}).await
    }

    /// As [`MailRig::start`], on `store`, with the functions' dependencies adjusted by `adjust`
    /// (for example a store or an S3 client whose requests go through a
    /// [`faults::FaultProxy`]).
    pub async fn start_with(
        start: DateTime<Utc>,
        store: shared::adapters::dynamodb::DynamoStore,
        adjust: impl FnOnce(&mut inbound::Deps),
    ) -> Self {
        init_tracing();
        let clock = VirtualClock::new(start);
        let mut deps = mail_deps(store, Arc::new(clock.clone())).await;
        adjust(&mut deps);
        MailRig {
            clock,
            deps: Arc::new(deps),
        }
    }

    pub fn store(&self) -> &shared::adapters::dynamodb::DynamoStore {
        &self.deps.store
    }

    /// Stores an organisation receiving mail for `{org_id}.test`, delivering to `ports` in order
    /// (plain SMTP on 127.0.0.1), inbound check only.
    pub async fn org(&self, org_id: &str, ports: &[u16]) -> OrgConfig {
        let mut c = inbound_org(org_id, 3);
        c.routes = ports
            .iter()
            .map(|p| Route {
                host: "127.0.0.1".into(),
                port: *p,
                tls: RouteTls::Opportunistic,
            })
            .collect();
        c.delivery.timeout_secs = 2;
        self.store()
            .put_config(&c, self.clock.now())
            .await
            .expect("put config");
        c
    }

    pub async fn put_config(&self, c: &OrgConfig) {
        self.store()
            .put_config(c, self.clock.now())
            .await
            .expect("put config");
    }

    /// Receives a message as SES would from a genuine sender (every verdict a pass, as in
    /// `tests/fixtures/ses-receipt.json`): the raw in S3 under a fresh id, then the inbound handler.
    pub async fn receive(
        &self,
        sender: &str,
        rcpts: &[&str],
        raw: &[u8],
    ) -> (String, shared::app::inbound::InboundReport) {
        self.receive_judged(sender, rcpts, raw, Verdicts::ALL_PASS)
            .await
    }

    /// As [`MailRig::receive`], with SES's verdicts as given.
    pub async fn receive_judged(
        &self,
        sender: &str,
        rcpts: &[&str],
        raw: &[u8],
        verdicts: Verdicts,
    ) -> (String, shared::app::inbound::InboundReport) {
        let id = unique("ses").replace('-', "");
        self.deps
            .raw
            .put(&format!("{}{id}", self.deps.prefix), raw.to_vec())
            .await
            .expect("put raw");
        let report = self.deliver_judged(&id, sender, rcpts, verdicts).await;
        (id, report)
    }

    /// Runs the inbound handler for an already stored message (a repeated event).
    pub async fn deliver_event(
        &self,
        id: &str,
        sender: &str,
        rcpts: &[&str],
    ) -> shared::app::inbound::InboundReport {
        self.deliver_judged(id, sender, rcpts, Verdicts::ALL_PASS)
            .await
    }

    /// As [`MailRig::deliver_event`], with SES's verdicts as given.
    pub async fn deliver_judged(
        &self,
        id: &str,
        sender: &str,
        rcpts: &[&str],
        verdicts: Verdicts,
    ) -> shared::app::inbound::InboundReport {
        let event = inbound::SesEvent::single(
            id,
            self.clock.now(),
            sender,
            rcpts.iter().map(|r| r.to_string()).collect(),
            verdicts,
        );
        let mut r = handle_ses_now(&self.deps, &event)
            .await
            .expect("inbound handler");
        r.remove(0)
    }

    /// Moves virtual time to `t` and runs one queue tick there.
    pub async fn tick_at(&self, t: DateTime<Utc>) -> shared::app::queue::TickReport {
        self.clock.set(t);
        inbound::handle_queue(
            &self.deps,
            inbound::ScheduledEvent { time: Some(t) },
            inbound::invocation_deadline(inbound::QUEUE_TIMEOUT),
        )
        .await
        .expect("queue tick")
    }

    /// Runs a queue tick every `step` from now until `until` (inclusive).
    pub async fn tick_every(&self, step: chrono::Duration, until: DateTime<Utc>) -> (usize, usize) {
        let (mut delivered, mut bounced) = (0, 0);
        let mut t = self.clock.now() + step;
        while t <= until {
            let r = self.tick_at(t).await;
            delivered += r.delivered;
            bounced += r.bounced;
            t += step;
        }
        (delivered, bounced)
    }

    pub async fn figures(&self, org: &str) -> shared::domain::queue::QueueFigures {
        use shared::ports::store::QueueFiguresSource;
        self.store().queue_figures(org).await.expect("figures")
    }
}

/// A plain SMTP server (no TLS, no AUTH) standing in for the organisation's inbound port.
pub async fn plain_server() -> MailServer {
    MailServer::start(MailServerOptions::default()).await
}

/// A message from `tests/fixtures/mail/` (see its README), byte for byte, with each `{{NAME}}`
/// placeholder replaced by its value.
pub fn mail_fixture(name: &str, vars: &[(&str, &str)]) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/mail")
        .join(name);
    let mut raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (k, v) in vars {
        let key = format!("{{{{{k}}}}}");
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = &raw[..];
        while let Some(i) = rest.windows(key.len()).position(|w| w == key.as_bytes()) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(v.as_bytes());
            rest = &rest[i + key.len()..];
        }
        out.extend_from_slice(rest);
        raw = out;
    }
    raw
}

/// A simple message with a unique subject token (`plain.eml`).
pub fn message(token: &str, to: &str) -> Vec<u8> {
    mail_fixture(
        "plain.eml",
        &[
            ("FROM", "Alice <alice@example.org>"),
            ("TO", to),
            ("SUBJECT", token),
            ("MESSAGE_ID", &format!("{token}@example.org")),
            ("BODY", &format!("Body of {token}")),
        ],
    )
}

/// What moto's SES sent (`ses.RawMessage[]`), as `(source, destinations, raw_data)`.
pub async fn ses_raw_messages() -> Vec<(String, Vec<String>, String)> {
    let data = moto_data().await;
    let mut out = Vec::new();
    if let Some(msgs) = data["ses"]["RawMessage"].as_array() {
        for m in msgs {
            out.push((
                m["source"].as_str().unwrap_or_default().to_string(),
                m["destinations"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                m["raw_data"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Bounces (DSNs) moto's SES sent that mention `token` (the original subject is quoted).
pub async fn bounces_mentioning(token: &str) -> Vec<(String, Vec<String>, String)> {
    ses_raw_messages()
        .await
        .into_iter()
        .filter(|(src, _, raw)| src == BOUNCE_SENDER && raw.contains(token))
        .collect()
}

/// `GET /moto-api/data.json` of the local moto server. moto builds that dump from live state and
/// can answer with an error while another test changes that state at the same moment: a failed
/// read is tried again (20 times, 100 ms apart) before the test fails.
pub async fn moto_data() -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = env("MOTO_ENDPOINT");
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut last = String::new();
    for _ in 0..20 {
        match tokio::net::TcpStream::connect(hostport).await {
            Ok(mut s) => {
                let req = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
                let mut buf = Vec::new();
                if s.write_all(req.as_bytes()).await.is_ok()
                    && s.read_to_end(&mut buf).await.is_ok()
                {
                    let text = String::from_utf8_lossy(&buf);
                    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                    match serde_json::from_str(body) {
                        Ok(v) => return v,
                        Err(e) => {
                            last = format!("{e}: {}", &body.chars().take(200).collect::<String>())
                        }
                    }
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's data.json did not answer with JSON in 20 attempts: {last}")
}
