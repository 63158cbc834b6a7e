//! Sending mail through SES: the queue's bounces (Q3). `SendRawEmail`, so that the DSN goes out
//! exactly as built (RFC 3464 `multipart/report`).

use crate::error::SendError;
use crate::mail::Bounce;
use async_trait::async_trait;
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::RawMessage;
use aws_sdk_ses::Client;

/// Sends a built bounce.
#[async_trait]
pub trait BounceSender: Send + Sync {
    async fn send_bounce(&self, bounce: &Bounce) -> Result<(), SendError>;
}

/// SES (v1 API) `SendRawEmail`.
#[derive(Debug, Clone)]
pub struct SesBounceSender {
    client: Client,
}

impl SesBounceSender {
    pub fn new(client: Client) -> Self {
        SesBounceSender { client }
    }

    /// Verifies the sender's address (local stacks and tests: moto, like SES, refuses mail from
    /// unverified senders; in AWS the template verifies the domain).
    pub async fn verify_sender(&self, address: &str) -> Result<(), SendError> {
        self.client
            .verify_email_identity()
            .email_address(address)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("VerifyEmailIdentity", e))
    }
}

fn classify<E, R>(op: &str, err: SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or_default().to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SendError::Transient(format!("{op}: {err}"))
        }
        _ => {
            let msg = format!(
                "{op}: {code}{}",
                err.message().map(|m| format!(": {m}")).unwrap_or_default()
            );
            match code.as_str() {
                "Throttling" | "ThrottlingException" | "ServiceUnavailable" | "InternalFailure" => {
                    SendError::Transient(msg)
                }
                _ => SendError::Permanent(msg),
            }
        }
    }
}

#[async_trait]
impl BounceSender for SesBounceSender {
    async fn send_bounce(&self, bounce: &Bounce) -> Result<(), SendError> {
        let raw = RawMessage::builder()
            .data(Blob::new(bounce.raw.clone()))
            .build()
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.client
            .send_raw_email()
            .source(&bounce.from)
            .destinations(&bounce.to)
            .raw_message(raw)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("SendRawEmail", e))
    }
}
