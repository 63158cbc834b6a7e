//! Secrets Manager adapter with a small cache: a warm function reads each secret at most once
//! per `ttl`, so 10,000 organisations' probe passwords cost 10,000 reads an hour, not a window.

use crate::adapters::aws::{self, Fault};
use crate::ports::error::SecretError;
use crate::ports::secrets::SecretSource;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reads from AWS Secrets Manager (or any endpoint speaking its API).
pub struct SecretsManagerSource {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl SecretsManagerSource {
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretsManagerSource {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The source on a client from the shared SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, ttl: Duration) -> Self {
        Self::new(Client::new(sdk), ttl)
    }

    fn cached(&self, name: &str) -> Option<String> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(v, _)| v.clone())
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn secret(&self, name: &str) -> Result<String, SecretError> {
        if let Some(v) = self.cached(name) {
            return Ok(v);
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                let f = aws::classify("GetSecretValue", &e);
                let name = name.to_string();
                match (f.code.as_str(), f.fault) {
                    ("ResourceNotFoundException", _) => SecretError::NotFound(name),
                    (_, Fault::Transient) => SecretError::Transient {
                        name,
                        reason: f.message,
                    },
                    _ => SecretError::Permanent {
                        name,
                        reason: f.message,
                    },
                }
            })?;
        let value = out.secret_string.ok_or_else(|| SecretError::NotString {
            name: name.to_string(),
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), (value.clone(), Instant::now()));
        Ok(value)
    }

    fn forget(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}
