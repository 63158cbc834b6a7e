//! The OAuth stand-ins of the probe's logon tests (D9, D10), each a real process on 127.0.0.1
//! started per test and ended by its PID: the token endpoint (`infra/local/oauthserver.py`:
//! client credentials and the JWT-bearer grant, tokens it signs and serves the keys of; also
//! the identity provider of the sign-in attacks: ID tokens, and a key set that can be made to
//! fail or hang) and Microsoft Graph's stand-in (`infra/local/graphserver.py`: sendMail, service
//! health, with the response bodies of `tests/fixtures/graph/`). Keys and certificates are made
//! with openssl, as an administrator makes them for the app registration.

use crate::{env, unique, TempDir};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A Microsoft tenant the token endpoint knows.
pub const TENANT: &str = "acme-test.onmicrosoft.com";
/// The probe app's client id.
pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// The Google service account's address.
pub const SERVICE_ACCOUNT: &str = "continuity-probe@acme-test.iam.gserviceaccount.com";
/// The resource of an SMTP token, as the mail server checks it.
pub const OUTLOOK: &str = "https://outlook.office365.com";
/// The resource of a Graph token.
pub const GRAPH: &str = "https://graph.microsoft.com";

/// AUTH XOAUTH2 settings of a mail server stand-in.
#[derive(Debug, Clone)]
pub struct Xoauth2 {
    /// The token endpoint's JWKS URL.
    pub jwks: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// `microsoft` or `google`.
    pub style: &'static str,
    /// Mailboxes the app's service principal may send as (Microsoft).
    pub mailboxes: Vec<String>,
}

/// An SMTP stand-in with STARTTLS and AUTH XOAUTH2 verifying `tokens`' tokens in `style`
/// (`microsoft`: Exchange Online's, the app's service principal may send as `mailboxes`;
/// `google`: Gmail's, the token's user), relaying as `relay` says.
pub async fn xoauth2_mail_server(
    tokens: &TokenServer,
    style: &'static str,
    mailboxes: &[&str],
    relay: Vec<(String, u16)>,
) -> crate::MailServer {
    crate::MailServer::start(crate::MailServerOptions {
        tls: true,
        relay,
        xoauth2: Some(Xoauth2 {
            jwks: tokens.jwks(),
            audience: if style == "google" {
                "https://mail.google.com/".into()
            } else {
                OUTLOOK.into()
            },
            style,
            mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
        }),
        ..Default::default()
    })
    .await
}

/// Reads the `READY <port>` line of a stand-in.
async fn ready(child: &mut Child, what: &str) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} did not start in 20 s"))
        .expect("read stdout")
        .unwrap_or_else(|| panic!("{what} exited before it was ready"));
    line.strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected {what} line {line:?}"))
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

/// The token endpoint stand-in.
pub struct TokenServer {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

impl TokenServer {
    /// Starts it with `registry` (see the script's header for its form).
    pub async fn start(registry: Value) -> Self {
        let dir = TempDir::new("continuity-oauth");
        let path = dir.path().join("registry.json");
        std::fs::write(&path, registry.to_string()).expect("write registry");
        let mut child = Command::new(env("CONTINUITY_PYTHON"))
            .arg(env("CONTINUITY_OAUTHSERVER"))
            .args(["--host", "127.0.0.1", "--port", "0", "--registry"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start oauthserver.py");
        let port = ready(&mut child, "oauthserver.py").await;
        TokenServer { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn jwks(&self) -> String {
        format!("{}/keys", self.url())
    }

    /// Replaces the registry (read again at the next request).
    pub fn set_registry(&self, registry: &Value) {
        std::fs::write(self.dir.path().join("registry.json"), registry.to_string())
            .expect("write registry");
    }

    /// Tokens issued per client, and the refusals' errors.
    pub async fn stats(&self) -> Value {
        get_json(&format!("{}/control/stats", self.url())).await
    }

    /// Tokens issued to `client` so far.
    pub async fn issued(&self, client: &str) -> u64 {
        self.stats().await["issued"][client].as_u64().unwrap_or(0)
    }

    /// A new signing key: every token issued before is refused from now on.
    pub async fn rotate_key(&self) {
        reqwest::Client::new()
            .post(format!("{}/control/rotate-key", self.url()))
            .send()
            .await
            .expect("rotate");
    }

    /// How its key set (`/keys`) answers from now on: `serve`, `fail` (503) or `hang` (held
    /// until the mode changes).
    pub async fn set_keys_mode(&self, mode: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/control/keys-mode", self.url()))
            .body(mode.to_string())
            .send()
            .await
            .expect("keys mode");
        assert!(r.status().is_success(), "keys mode {mode}: {}", r.status());
    }

    /// Requests its key set received so far, and how many it holds right now (`hang`).
    pub async fn keys_requests(&self) -> (u64, u64) {
        let s = self.stats().await;
        (
            s["keys_requests"].as_u64().expect("keys_requests"),
            s["keys_waiting"].as_u64().expect("keys_waiting"),
        )
    }

    /// `claims` signed RS256 with its current key: an ID token as an identity provider (Cognito)
    /// issues them, verifiable against [`TokenServer::jwks`].
    pub async fn id_token(&self, claims: &Value) -> String {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/control/id-token", self.url()))
            .body(claims.to_string())
            .send()
            .await
            .expect("id token")
            .json()
            .await
            .expect("id token JSON");
        r["token"].as_str().expect("token").to_string()
    }

    /// Stops it (by its PID).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// The Graph stand-in.
pub struct GraphServer {
    pub port: u16,
    pub dir: TempDir,
    _child: Child,
}

impl GraphServer {
    /// Starts it on `port` (0: any) trusting `tokens`' keys, relaying sent mail for `relay` domains, allowing only
    /// `allowed` mailboxes to send (the application access policy), health as in the fixture
    /// `health` of `tests/fixtures/graph/`.
    pub async fn start(
        port: u16,
        tokens: &TokenServer,
        relay: &[(String, u16)],
        allowed: &[&str],
        health: &str,
    ) -> Self {
        let dir = TempDir::new("continuity-graph");
        copy_health(&dir, health);
        let mut cmd = Command::new(env("CONTINUITY_PYTHON"));
        cmd.arg(env("CONTINUITY_GRAPHSERVER"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--jwks", &tokens.jwks()])
            .arg("--fixtures")
            .arg(fixtures())
            .arg("--mode-file")
            .arg(dir.path().join("mode"))
            .arg("--health-file")
            .arg(dir.path().join("health.json"));
        for a in allowed {
            cmd.args(["--allowed-mailbox", a]);
        }
        for (domain, port) in relay {
            cmd.arg("--relay").arg(format!("{domain}=127.0.0.1:{port}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start graphserver.py");
        let port = ready(&mut child, "graphserver.py").await;
        GraphServer {
            port,
            dir,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `accept`, `throttle N`, `forbidden`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).expect("write mode");
    }

    /// Serves the health fixture `name` from now on.
    pub fn set_health(&self, name: &str) {
        copy_health(&self.dir, name);
    }

    /// `{"sent": n, "throttled": n, "forbidden": n}`.
    pub async fn stats(&self) -> Value {
        get_json(&format!("{}/control/stats", self.url())).await
    }
}

fn copy_health(dir: &TempDir, name: &str) {
    std::fs::copy(fixtures().join(name), dir.path().join("health.json"))
        .expect("copy health fixture");
}

fn fixtures() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/graph")
}

/// An RSA key and a self-signed certificate for it, made with openssl: (key PEM, certificate
/// PEM, public key PEM, SHA-1 thumbprint in hex as Entra ID shows it).
pub struct AppKey {
    pub key_pem: String,
    pub cert_pem: String,
    pub public_pem: String,
    pub thumbprint: String,
}

impl AppKey {
    pub fn generate() -> Self {
        let dir = TempDir::new("continuity-appkey");
        let p = |n: &str| dir.path().join(n);
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let (key, cert, public) = (p("key.pem"), p("cert.pem"), p("public.pem"));
        let s = |p: &PathBuf| p.to_string_lossy().to_string();
        run(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &s(&key),
        ]);
        run(&[
            "req",
            "-x509",
            "-key",
            &s(&key),
            "-subj",
            "/CN=continuity-probe",
            "-days",
            "2",
            "-out",
            &s(&cert),
        ]);
        run(&["pkey", "-in", &s(&key), "-pubout", "-out", &s(&public)]);
        let fp = run(&["x509", "-in", &s(&cert), "-noout", "-fingerprint", "-sha1"]);
        let thumbprint = fp
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .replace(':', "");
        let read = |p: &PathBuf| std::fs::read_to_string(p).expect("read key file");
        AppKey {
            key_pem: read(&key),
            cert_pem: read(&cert),
            public_pem: read(&public),
            thumbprint,
        }
    }

    /// A Google service-account key file (JSON) for this key.
    pub fn service_account_json(&self, token_url: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "acme-test",
            "private_key_id": unique("kid"),
            "private_key": self.key_pem,
            "client_email": SERVICE_ACCOUNT,
            "client_id": "103456789012345678901",
            "token_uri": token_url,
        })
        .to_string()
    }
}

/// A registry with the Microsoft app (`secret`, and `cert` when given; SMTP.SendAsApp for
/// Exchange Online, Mail.Send and ServiceHealth.Read.All for Graph) and, when given, the
/// Google service account (delegated for Gmail, acting for `google_users`).
pub fn registry(secret: &str, cert: Option<&AppKey>, google: Option<(&AppKey, &[&str])>) -> Value {
    let mut app = json!({
        "secret": secret,
        "consented": true,
        "roles": {
            OUTLOOK: ["SMTP.SendAsApp"],
            GRAPH: ["Mail.Send", "ServiceHealth.Read.All"],
        },
    });
    if let Some(c) = cert {
        app["certificate_pem"] = c.cert_pem.clone().into();
    }
    let mut r = json!({
        "lifetime": 3599,
        "microsoft": {"tenants": [TENANT], "apps": {CLIENT_ID: app}},
        "google": {"users": [], "service_accounts": {}},
    });
    if let Some((key, users)) = google {
        r["google"] = json!({
            "users": users,
            "service_accounts": {SERVICE_ACCOUNT: {
                "public_key_pem": key.public_pem,
                "client_id": "103456789012345678901",
                "delegated_scopes": ["https://mail.google.com/"],
            }},
        });
    }
    r
}

/// The endpoints of the stand-ins, as the functions' settings name them: the token endpoint,
/// and Graph on 127.0.0.1:`graph_port` (started after the rig that needs its address).
pub fn endpoints(tokens: &TokenServer, graph_port: u16) -> shared::adapters::oauth::OauthEndpoints {
    shared::adapters::oauth::OauthEndpoints {
        microsoft_login: tokens.url(),
        google_token: format!("{}/token", tokens.url()),
        graph: format!("http://127.0.0.1:{graph_port}"),
    }
}
