//! Secrets Manager adapter with a small cache: a warm function reads each secret at most once
//! per `ttl`, so 10,000 organisations' probe passwords cost 10,000 reads an hour, not a window.

use crate::error::SecretError;
use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something that hands out secret strings by name.
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret(&self, name: &str) -> Result<String, SecretError>;
}

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
                let code = e.code().unwrap_or_default().to_string();
                let reason = format!("{code} {}", e.message().unwrap_or_default())
                    .trim()
                    .to_string();
                match (&e, code.as_str()) {
                    (_, "ResourceNotFoundException") => SecretError::NotFound(name.to_string()),
                    (
                        SdkError::TimeoutError(_)
                        | SdkError::DispatchFailure(_)
                        | SdkError::ResponseError(_),
                        _,
                    )
                    | (_, "ThrottlingException" | "InternalServiceError") => {
                        SecretError::Transient {
                            name: name.to_string(),
                            reason: if reason.is_empty() {
                                e.to_string()
                            } else {
                                reason
                            },
                        }
                    }
                    _ => SecretError::Permanent {
                        name: name.to_string(),
                        reason: if reason.is_empty() {
                            e.to_string()
                        } else {
                            reason
                        },
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
}
