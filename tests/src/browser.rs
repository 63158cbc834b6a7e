//! A real browser for end-to-end tests: Debian's `chromium`, headless, driven through
//! `chromedriver` (WebDriver) started per test on a free loopback port and ended by its PID.
//! `infra/local/test.sh` installs both packages.

use fantoccini::{Client, ClientBuilder};
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: crate::TempDir,
}

fn find(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

impl Browser {
    pub async fn start() -> Self {
        Self::start_sized(412, 915).await
    }

    /// As [`Browser::start`], with a window of `width` x `height` CSS pixels.
    pub async fn start_sized(width: u32, height: u32) -> Self {
        let driver_bin = std::env::var("CHROMEDRIVER")
            .ok()
            .or_else(|| find(&["/usr/bin/chromedriver"]))
            .expect("chromedriver not found: run the tests with infra/local/test.sh, which installs Debian's chromium and chromium-driver");
        let chrome_bin = std::env::var("CHROMIUM")
            .ok()
            .or_else(|| find(&["/usr/bin/chromium"]))
            .expect("chromium not found: infra/local/test.sh installs it");
        let port = crate::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let profile = crate::TempDir::new("chromium-profile");
        let caps: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chrome_bin,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }))
            .expect("capabilities");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("webdriver client")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("chromedriver on {url} did not start a session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Saves a screenshot as a test artifact: `target/test-artifacts/{name}.png` (or under
    /// `TEST_ARTIFACTS`), and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var("TEST_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts")
            });
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Adds Chrome's virtual authenticator (WebDriver's `webauthn/authenticator` command, which
    /// chromedriver implements): a platform authenticator that keeps discoverable credentials,
    /// verifies its user and answers without a person. Its id.
    pub async fn virtual_authenticator(&self) -> String {
        let v = self
            .client
            .issue_cmd(Raw::post(
                "webauthn/authenticator",
                serde_json::json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true
                }),
            ))
            .await
            .expect("add a virtual authenticator");
        v.as_str().expect("authenticator id").to_string()
    }

    /// The credentials the virtual authenticator `id` holds.
    pub async fn credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let v = self
            .client
            .issue_cmd(Raw::get(&format!(
                "webauthn/authenticator/{id}/credentials"
            )))
            .await
            .expect("read credentials");
        v.as_array().cloned().unwrap_or_default()
    }

    /// A Chrome DevTools Protocol command on the page (chromedriver's `goog/cdp/execute`).
    pub async fn cdp(&self, cmd: &str, params: serde_json::Value) -> serde_json::Value {
        self.client
            .issue_cmd(Raw::post(
                "goog/cdp/execute",
                serde_json::json!({"cmd": cmd, "params": params}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// A phone's screen (390 x 844 CSS pixels, 3 device pixels each, touch), as DevTools' device
    /// mode sets it.
    pub async fn phone(&self) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true}),
        )
        .await;
        self.cdp(
            "Emulation.setTouchEmulationEnabled",
            serde_json::json!({"enabled": true, "maxTouchPoints": 5}),
        )
        .await;
    }

    /// The network as DevTools' "Offline" switch sets it (`offline`), or back as it was.
    pub async fn offline(&self, offline: bool) {
        self.cdp("Network.enable", serde_json::json!({})).await;
        self.cdp(
            "Network.emulateNetworkConditions",
            serde_json::json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    }

    /// axe-core's serious and critical violations on the page shown (its rule id, impact, and the
    /// elements), run in the page: `axe.min.js` from `$CONTINUITY_HOME/axe-core`
    /// (`infra/local/install.sh` installs it), injected through WebDriver's execute-script.
    pub async fn axe(&self) -> Vec<serde_json::Value> {
        let home = std::env::var("CONTINUITY_HOME").unwrap_or_else(|_| {
            format!(
                "{}/.cache/email-continuity",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let path = format!("{home}/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{path}: {e} (infra/local/install.sh installs axe-core there)")
        });
        self.client
            .execute(&format!("{axe}\nreturn null;"), vec![])
            .await
            .expect("inject axe-core");
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        v.as_array().cloned().unwrap_or_default()
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// A WebDriver command fantoccini has no method for, sent as it is on the session.
#[derive(Debug)]
pub struct Raw {
    path: String,
    body: Option<serde_json::Value>,
}

impl Raw {
    pub fn post(path: &str, body: serde_json::Value) -> Self {
        Raw {
            path: path.into(),
            body: Some(body),
        }
    }
    pub fn get(path: &str) -> Self {
        Raw {
            path: path.into(),
            body: None,
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for Raw {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        match &self.body {
            Some(b) => (axum::http::Method::POST, Some(b.to_string())),
            None => (axum::http::Method::GET, None),
        }
    }
}

/// Polls `check` until it holds, for up to 20 s (a bounded wait for the page, not a timing
/// assertion); fails the test naming `what` otherwise.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the page never showed: {what}");
}
