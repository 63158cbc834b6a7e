//! Users' mail out through SES v2 `SendEmail` with raw content (40 MB a message; v1's
//! `SendRawEmail` takes 10 MB): [`SesV2MailSender`]. Organisations' sending identities through SES v2 (P11): each proven domain gets an Easy DKIM
//! identity (`CreateEmailIdentity`), whose three DKIM tokens the administrators publish as
//! CNAMEs; `GetEmailIdentity` tells each record's status. A custom MAIL FROM (`mail.{domain}`)
//! is set with "use the default when its MX is missing", so that publishing its records is
//! optional.

use crate::adapters::aws::{send_error, send_once_error};
use crate::domain::domains::IdentityStatus;
use crate::ports::domains::SendingIdentities;
use crate::ports::error::SendError;
use crate::ports::mail::MailSender;
use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{BehaviorOnMxFailure, Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;

/// SES v2 `SendEmail` with `Content::Raw`: the message exactly as built, the recipients as the
/// envelope (Bcc recipients are in no header).
#[derive(Debug, Clone)]
pub struct SesV2MailSender {
    client: Client,
}

impl SesV2MailSender {
    /// The sender on a client from the shared SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_conf(aws_sdk_sesv2::config::Builder::from(sdk))
    }

    /// The sender on a client of `conf` (another endpoint, other time limits), without the
    /// SDK's retries: a `SendEmail` repeated after a timeout or a dropped connection may send
    /// the message twice, so every error is answered to the caller, read by
    /// [`send_once_error`] (definite refusal, or "may have been sent").
    pub fn from_conf(conf: aws_sdk_sesv2::config::Builder) -> Self {
        SesV2MailSender {
            client: Client::from_conf(
                conf.retry_config(aws_config::retry::RetryConfig::disabled())
                    .build(),
            ),
        }
    }
}

#[async_trait]
impl MailSender for SesV2MailSender {
    async fn send_raw(
        &self,
        from: &str,
        recipients: &[String],
        raw: Vec<u8>,
    ) -> Result<String, SendError> {
        let message = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| SendError::Permanent(format!("SendEmail: {e}")))?;
        let out = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(recipients.to_vec()))
                    .build(),
            )
            .content(EmailContent::builder().raw(message).build())
            .send()
            .await
            .map_err(|e| send_once_error("SendEmail", e))?;
        // Accepted either way: a missing id must not make the caller send again.
        Ok(out.message_id.unwrap_or_default())
    }
}

/// SES v2 identities.
#[derive(Debug, Clone)]
pub struct SesIdentities {
    client: Client,
    region: String,
}

impl SesIdentities {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        SesIdentities {
            client: Client::new(sdk),
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
        }
    }
}

#[async_trait]
impl SendingIdentities for SesIdentities {
    async fn ensure_identity(&self, domain: &str) -> Result<IdentityStatus, SendError> {
        match self
            .client
            .create_email_identity()
            .email_identity(domain)
            .send()
            .await
        {
            Ok(_) => {
                // Best effort: the identity works without it (SES's own MAIL FROM domain).
                if let Err(e) = self
                    .client
                    .put_email_identity_mail_from_attributes()
                    .email_identity(domain)
                    .mail_from_domain(format!("mail.{domain}"))
                    .behavior_on_mx_failure(BehaviorOnMxFailure::UseDefaultValue)
                    .send()
                    .await
                {
                    tracing::warn!(domain, error = %crate::adapters::error_chain(&e), "custom MAIL FROM not set");
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) => {}
            Err(e) => return Err(send_error("CreateEmailIdentity", e)),
        }
        self.identity(domain).await?.ok_or_else(|| {
            SendError::Transient(format!(
                "SES identity {domain} not readable just after creation"
            ))
        })
    }

    async fn identity(&self, domain: &str) -> Result<Option<IdentityStatus>, SendError> {
        let out = match self
            .client
            .get_email_identity()
            .email_identity(domain)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(send_error("GetEmailIdentity", e)),
        };
        let dkim = out.dkim_attributes();
        let mail_from = out.mail_from_attributes();
        Ok(Some(IdentityStatus {
            verified_for_sending: out.verified_for_sending_status(),
            dkim_status: dkim
                .and_then(|d| d.status())
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "NOT_STARTED".into()),
            dkim_tokens: dkim.map(|d| d.tokens().to_vec()).unwrap_or_default(),
            mail_from_domain: mail_from
                .map(|m| m.mail_from_domain().to_string())
                .filter(|d| !d.is_empty()),
            mail_from_status: mail_from.map(|m| m.mail_from_domain_status().as_str().to_string()),
        }))
    }

    fn region(&self) -> String {
        self.region.clone()
    }
}
