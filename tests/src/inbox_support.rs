//! Support for the Online Inbox and client sync tests: an organisation `acme` (domain
//! `acme.test`) on an [`ApiRig`], its SES domain verified in moto, messages filed straight into
//! mailboxes (the inbound function's own store calls: filing and indexing) with their raw bytes
//! in the API's bucket, and small HTTP helpers.

use crate::api::ApiRig;
use crate::{inbound_org, sdk, unique};
use chrono::{DateTime, Utc};
use shared::domain::mail::summarize;
use shared::domain::mailbox::Filing;
use shared::domain::mailbox::{Folder, MessageRef};
use shared::ports::store::ConfigStore;
use shared::ports::store::MailStore;

pub const ORG: &str = "acme";
pub const DOMAIN: &str = "acme.test";

pub struct InboxRig {
    pub api: ApiRig,
    pub http: reqwest::Client,
}

/// `local@acme.test`.
pub fn addr(local: &str) -> String {
    format!("{local}@{DOMAIN}")
}

impl InboxRig {
    pub async fn start(now: DateTime<Utc>) -> Self {
        Self::start_with(now, |_| {}).await
    }

    /// As [`InboxRig::start`], with the API's services adjusted by `adjust` (another verifier,
    /// another portal address).
    pub async fn start_with(now: DateTime<Utc>, adjust: impl FnOnce(&mut api::Services)) -> Self {
        let api = ApiRig::start_with(now, adjust).await;
        let config = inbound_org(ORG, 3);
        api.store()
            .put_config(&config, now)
            .await
            .expect("put config");
        let ses = aws_sdk_ses::Client::new(&sdk().await);
        ses.verify_domain_identity()
            .domain(DOMAIN)
            .send()
            .await
            .expect("verify domain in moto");
        InboxRig {
            api,
            http: ApiRig::http(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        use shared::ports::clock::Clock;
        self.api.clock.now()
    }

    /// A user's token (an administrator when `admin`).
    pub fn token(&self, local: &str, admin: bool) -> String {
        self.api.token(&addr(local), admin)
    }

    /// Files `raw` in `mailbox` as received at `at` (raw stored first, as SES does).
    pub async fn file(&self, mailbox: &str, at: DateTime<Utc>, raw: &[u8]) -> MessageRef {
        self.file_in(mailbox, Folder::Inbox, at, raw).await
    }

    /// As [`InboxRig::file`], in `folder` (the inbox, or Spam for mail SES judged spam).
    pub async fn file_in(
        &self,
        mailbox: &str,
        folder: Folder,
        at: DateTime<Utc>,
        raw: &[u8],
    ) -> MessageRef {
        let ses_id = unique("ses").replace('-', "").to_lowercase();
        let raw_key = format!("inbound/{ses_id}");
        self.api
            .state
            .raw
            .put(&raw_key, raw.to_vec())
            .await
            .expect("put raw");
        let summary = summarize(raw);
        self.api
            .store()
            .file_message(
                &Filing {
                    org_id: ORG,
                    ses_id: &ses_id,
                    received_at: at,
                    raw_key: &raw_key,
                    summary: &summary,
                    folder,
                },
                &[mailbox.to_string()],
            )
            .await
            .expect("file message");
        let r = MessageRef::new(folder, at, &ses_id);
        // Indexed for search as the inbound path does after filing.
        shared::app::search::index_filed(
            self.api.store(),
            ORG,
            &[mailbox.to_string()],
            &r,
            raw,
            &summary,
        )
        .await
        .expect("index message");
        r
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(self.api.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_text(&self, token: &str, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.api.url(path))
            .bearer_auth(token)
            .header("accept", "text/html")
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .http
            .request(method, self.api.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send_json(reqwest::Method::POST, token, path, body)
            .await
    }
}

/// A plain message from `from` with `subject`, Message-ID `<{id}>`.
pub fn plain(from: &str, to: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    crate::mail_fixture(
        "plain.eml",
        &[
            ("FROM", from),
            ("TO", to),
            ("SUBJECT", subject),
            ("MESSAGE_ID", id),
            ("BODY", body),
        ],
    )
}

/// What moto's SES sent whose raw data contains `token`.
pub async fn sent_with(token: &str) -> Vec<(String, Vec<String>, String)> {
    let data = crate::moto_data().await;
    let mut out = Vec::new();
    for m in data["ses"]["RawMessage"].as_array().into_iter().flatten() {
        let raw = m["raw_data"].as_str().unwrap_or_default();
        if !raw.contains(token) {
            continue;
        }
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
            raw.to_string(),
        ));
    }
    out
}

/// The API behind the runner's API Gateway and Lambda conversion, on a loopback port.
pub struct Gateway {
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The rig's API behind the runner's API Gateway shape (10 MB, 6 MB event and answer, 30 s).
pub async fn gateway(rig: &InboxRig) -> Gateway {
    let app = local_runner::gateway::aws_shaped(::api::router(rig.api.state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Gateway { base, server }
}
