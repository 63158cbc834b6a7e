//! Alert channels, adapters side: SMS through SNS (transactional), email through SES (raw MIME:
//! an HTML and a plain-text part), events on the service's EventBridge bus.

use crate::alerts::EmailContent;
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{channel}: {message}")]
pub struct SendError {
    pub channel: &'static str,
    pub message: String,
}

/// Where alerts go out.
#[async_trait]
pub trait AlertChannels: Send + Sync {
    /// One SMS; returns the provider's message id.
    async fn send_sms(&self, to: &str, text: &str) -> Result<String, SendError>;
    /// One email to one address; returns the provider's message id.
    async fn send_email(&self, to: &str, content: &EmailContent) -> Result<String, SendError>;
    /// One event on the service's bus.
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError>;
}

/// The `source` of every event the service publishes.
pub const EVENT_SOURCE: &str = "email-continuity";

/// SNS, SES and EventBridge.
pub struct AwsChannels {
    pub sns: aws_sdk_sns::Client,
    pub ses: aws_sdk_ses::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// The service's own verified sender address (never an organisation's domain).
    pub sender: String,
    /// Display name of the sender.
    pub sender_name: String,
    /// SMS sender id where the destination country supports one.
    pub sms_sender_id: Option<String>,
    pub bus: String,
}

fn err(channel: &'static str, e: impl std::fmt::Display) -> SendError {
    SendError {
        channel,
        message: e.to_string(),
    }
}

fn sdk_err<E: std::error::Error + 'static>(channel: &'static str, e: &E) -> SendError {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    SendError { channel, message }
}

fn attr(value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| err("sms", e))
}

#[async_trait]
impl AlertChannels for AwsChannels {
    async fn send_sms(&self, to: &str, text: &str) -> Result<String, SendError> {
        let mut req = self
            .sns
            .publish()
            .phone_number(to)
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", attr("Transactional")?);
        if let Some(id) = &self.sms_sender_id {
            req = req.message_attributes("AWS.SNS.SMS.SenderID", attr(id)?);
        }
        let out = req.send().await.map_err(|e| sdk_err("sms", &e))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn send_email(&self, to: &str, content: &EmailContent) -> Result<String, SendError> {
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
            .map_err(|e| err("email", e))?;
        let message = aws_sdk_ses::types::RawMessage::builder()
            .data(aws_sdk_ses::primitives::Blob::new(raw))
            .build()
            .map_err(|e| err("email", e))?;
        let out = self
            .ses
            .send_raw_email()
            .source(&self.sender)
            .destinations(to)
            .raw_message(message)
            .send()
            .await
            .map_err(|e| sdk_err("email", &e))?;
        Ok(out.message_id)
    }

    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| sdk_err("events", &e))?;
        if out.failed_entry_count > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(err("events", format!("event not accepted: {why}")));
        }
        Ok(())
    }
}
