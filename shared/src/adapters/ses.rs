//! Mail out through SES (v1 `SendRawEmail`, 10 MB a message): the [`MailSender`] for bounces
//! (Q3, RFC 3464 `multipart/report` exactly as built) and alert email (A1); and [`SesEmail`], the
//! [`Channel::Email`] alert channel on top of it. Users' mail from the Online Inbox (U3), up to
//! 40 MB, goes through SES v2 (`crate::adapters::sesv2::SesV2MailSender`).

use crate::adapters::aws::{send_error, send_once_error};
use crate::domain::alerts::{Channel, Message};
use crate::ports::error::SendError;
use crate::ports::mail::MailSender;
use crate::ports::notify::AlertChannel;
use async_trait::async_trait;
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::RawMessage;
use aws_sdk_ses::Client;

/// SES (v1 API) `SendRawEmail`.
#[derive(Debug, Clone)]
pub struct SesMailSender {
    client: Client,
}

impl SesMailSender {
    pub fn new(client: Client) -> Self {
        SesMailSender { client }
    }

    /// The sender on a client from the shared SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(sdk))
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
            .map_err(|e| send_error("VerifyEmailIdentity", e))
    }
}

#[async_trait]
impl MailSender for SesMailSender {
    async fn send_raw(
        &self,
        from: &str,
        recipients: &[String],
        raw: Vec<u8>,
    ) -> Result<String, SendError> {
        let message = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| SendError::Permanent(format!("SendRawEmail: {e}")))?;
        let out = self
            .client
            .send_raw_email()
            .source(from)
            .set_destinations(Some(recipients.to_vec()))
            .raw_message(message)
            .send()
            .await
            .map_err(|e| send_once_error("SendRawEmail", e))?;
        Ok(out.message_id)
    }
}

/// Alert email: an HTML and a plain-text part, from the service's own verified address (never
/// an organisation's domain: that mail may be what is down), sent by [`SesMailSender`].
#[derive(Debug, Clone)]
pub struct SesEmail {
    pub mail: SesMailSender,
    /// The service's verified sender address.
    pub sender: String,
    /// Display name of the sender.
    pub sender_name: String,
}

#[async_trait]
impl AlertChannel for SesEmail {
    fn kind(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, to: &str, message: &Message) -> Result<String, SendError> {
        let Message::Email(content) = message else {
            return Err(SendError::Permanent(
                "email: only an email can be sent".into(),
            ));
        };
        let raw = mail_builder::MessageBuilder::new()
            .from((self.sender_name.as_str(), self.sender.as_str()))
            .to(to)
            .subject(content.subject.as_str())
            .header(
                "Auto-Submitted",
                mail_builder::headers::text::Text::new("auto-generated"),
            )
            .text_body(content.text.as_str())
            .html_body(content.html.as_str())
            .write_to_vec()
            .map_err(|e| SendError::Permanent(format!("email: {e}")))?;
        self.mail
            .send_raw(&self.sender, &[to.to_string()], raw)
            .await
    }
}
