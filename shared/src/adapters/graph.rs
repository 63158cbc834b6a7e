//! Microsoft Graph over HTTPS (D9, D10): the probe sent as MIME with `sendMail`, and Exchange
//! Online's health overview with its issues. The base address is a setting
//! ([`super::oauth::OauthEndpoints::graph`]).

use crate::domain::provider_health::ReportedIssue;
use crate::ports::graph::{GraphApi, GraphError};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Graph over HTTP.
pub struct HttpGraph {
    base: String,
    http: reqwest::Client,
}

impl HttpGraph {
    /// `base` is `https://graph.microsoft.com` (or a loopback stand-in); `timeout` bounds each
    /// request.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpGraph {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }
}

/// Graph's error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// What Graph refused, from its answer.
async fn refusal(resp: reqwest::Response) -> GraphError {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => GraphError::Refused {
            status,
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => GraphError::Refused {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
    }
}

fn unavailable(e: reqwest::Error) -> GraphError {
    GraphError::Unavailable(crate::adapters::error_chain(&e))
}

/// A `serviceHealth` with its `issues` (`$expand=issues`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceHealth {
    #[serde(default)]
    status: String,
    #[serde(default)]
    issues: Vec<Issue>,
}

/// A `serviceHealthIssue` (the fields used).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Issue {
    id: String,
    #[serde(default)]
    title: String,
    start_date_time: DateTime<Utc>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    classification: String,
    #[serde(default)]
    is_resolved: bool,
}

/// The longest wait a `Retry-After` is honoured for inside one send.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[async_trait]
impl GraphApi for HttpGraph {
    async fn send_mime(
        &self,
        token: &str,
        mailbox: &str,
        mime: &[u8],
        within: Duration,
    ) -> Result<(), GraphError> {
        let started = Instant::now();
        let url = format!(
            "{}/v1.0/users/{}/sendMail",
            self.base,
            utf8_percent(mailbox)
        );
        // MIME content is sent base64-encoded as text/plain (Graph's "send message in MIME
        // format"); the probe keeps its headers and Message-ID as built.
        let body = STANDARD.encode(mime);
        loop {
            let resp = self
                .http
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "text/plain")
                .body(body.clone())
                .send()
                .await
                .map_err(unavailable)?;
            let status = resp.status().as_u16();
            if status == 202 || status == 200 {
                return Ok(());
            }
            if status == 429 || status == 503 {
                // Throttled: wait as told, if the window leaves time for it.
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(Duration::from_secs_f64)
                    .unwrap_or(Duration::from_secs(2))
                    .min(MAX_RETRY_AFTER);
                if started.elapsed() + wait < within {
                    tracing::info!(
                        mailbox,
                        status,
                        wait_ms = wait.as_millis() as u64,
                        "Graph throttled the probe; retrying after Retry-After"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(refusal(resp).await);
        }
    }

    async fn service_health(
        &self,
        token: &str,
        service: &str,
    ) -> Result<(String, Vec<ReportedIssue>), GraphError> {
        let url = format!(
            "{}/v1.0/admin/serviceAnnouncement/healthOverviews/{}?$expand=issues",
            self.base,
            utf8_percent(service)
        );
        let resp = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        if !resp.status().is_success() {
            return Err(refusal(resp).await);
        }
        let h: ServiceHealth = resp
            .json()
            .await
            .map_err(|e| GraphError::Unavailable(format!("unreadable health overview: {e}")))?;
        let issues = h
            .issues
            .into_iter()
            .map(|i| ReportedIssue {
                id: i.id,
                title: i.title,
                since: i.start_date_time,
                status: i.status,
                classification: i.classification,
                is_resolved: i.is_resolved,
            })
            .collect();
        Ok((h.status, issues))
    }
}

/// Percent-encodes a path segment (a mailbox address, a service name with spaces).
fn utf8_percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(super::utf8_percent("Exchange Online"), "Exchange%20Online");
        assert_eq!(
            super::utf8_percent("probe@contoso.com"),
            "probe@contoso.com"
        );
        assert_eq!(super::utf8_percent("a/../b"), "a%2F..%2Fb");
    }
}
