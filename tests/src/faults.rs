//! The fault-injecting proxy (`infra/local/faultproxy.py`) in front of a local service: a real
//! HTTP hop that answers a chosen share of requests with the service's own error responses
//! (`ThrottlingException`, `ProvisionedThroughputExceededException`, `InternalServerError`,
//! 503) or drops the connection before or after forwarding, so that the production adapters and
//! the SDK's retries meet what AWS gives and DynamoDB Local never does.

use crate::{env, fresh_store, TempDir};
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoStore;
use std::process::Stdio;
use tokio::process::{Child, Command};

/// One proxy process (ended by its PID when dropped).
pub struct FaultProxy {
    pub port: u16,
    dir: TempDir,
    _child: Child,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:port`), injecting nothing until [`Self::set`].
    pub async fn start(upstream: &str) -> Self {
        let dir = TempDir::new("continuity-faults");
        let mut child = Command::new(env("CONTINUITY_PYTHON"))
            .arg(env("CONTINUITY_FAULTPROXY"))
            .args(["--upstream", upstream])
            .arg("--control")
            .arg(dir.path().join("control.json"))
            .arg("--stats")
            .arg(dir.path().join("stats.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start faultproxy.py");
        let port = crate::ready_port(&mut child, "fault proxy").await;
        FaultProxy {
            port,
            dir,
            _child: child,
        }
    }

    /// In front of DynamoDB Local.
    pub async fn dynamodb() -> Self {
        Self::start(&env("AWS_ENDPOINT_URL_DYNAMODB")).await
    }

    /// In front of moto (S3 and the other AWS stand-ins).
    pub async fn moto() -> Self {
        Self::start(&env("AWS_ENDPOINT_URL")).await
    }

    /// The raw-message store of `bucket` with every S3 request through this proxy (`sdk`: the
    /// production settings; path-style addressing as the adapter uses).
    pub fn s3_raw(
        &self,
        sdk: &aws_config::SdkConfig,
        bucket: &str,
    ) -> shared::adapters::s3::S3RawMessages {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .endpoint_url(self.url())
            .force_path_style(true)
            .build();
        shared::adapters::s3::S3RawMessages::new(aws_sdk_s3::Client::from_conf(conf), bucket)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Injects `faults` (share per kind: `throttle`, `throughput`, `internal`, `unavailable`,
    /// `drop_before`, `drop_after`) into every request from now on, with a fixed seed.
    pub fn set(&self, faults: Value) {
        let control = json!({"seed": 20261130, "faults": faults});
        std::fs::write(self.dir.path().join("control.json"), control.to_string())
            .expect("write control");
    }

    /// The whole control document (`operations`, `after`, `limit`, `faults`; see the script).
    pub fn set_control(&self, control: Value) {
        std::fs::write(self.dir.path().join("control.json"), control.to_string())
            .expect("write control");
    }

    /// No more faults.
    pub fn clear(&self) {
        std::fs::write(self.dir.path().join("control.json"), "").expect("clear control");
    }

    /// What the proxy counted: requests, forwarded, injected per kind, requests per operation.
    pub fn stats(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("stats.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// How many faults of every kind were injected so far.
    pub fn injected(&self) -> u64 {
        self.stats()["injected"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    /// A fresh table (created directly) and a store whose every request goes through this
    /// proxy, with the production SDK settings (retries, timeouts).
    pub async fn store(&self) -> DynamoStore {
        let direct = fresh_store().await;
        let sdk = shared::adapters::aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(self.url())
                .build(),
        );
        DynamoStore::new(client, direct.table().to_string())
    }
}
