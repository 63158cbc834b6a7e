//! Alert channels: SMS through SNS (transactional), email through SES (raw MIME: an HTML and a
//! plain-text part, sent by [`SesMailSender`]), events on the service's EventBridge bus.

use crate::adapters::aws::send_error;
use crate::adapters::ses::SesMailSender;
use crate::domain::alerts::EmailContent;
use crate::ports::error::SendError;
use crate::ports::mail::MailSender;
use crate::ports::notify::{AlertChannels, EventBus};
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

/// The `source` of every event the service publishes.
pub const EVENT_SOURCE: &str = "email-continuity";

/// SNS, SES and EventBridge.
pub struct AwsChannels {
    pub sns: aws_sdk_sns::Client,
    /// Alert email goes out through the one SES sender.
    pub mail: SesMailSender,
    pub events: aws_sdk_eventbridge::Client,
    /// The service's own verified sender address (never an organisation's domain).
    pub sender: String,
    /// Display name of the sender.
    pub sender_name: String,
    /// SMS sender id where the destination country supports one.
    pub sms_sender_id: Option<String>,
    pub bus: String,
}

/// A request that could not be built: it will not succeed as it is.
fn err(channel: &'static str, e: impl std::fmt::Display) -> SendError {
    SendError::Permanent(format!("{channel}: {e}"))
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
        let out = req
            .send()
            .await
            .map_err(|e| send_error("SNS Publish (SMS)", e))?;
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
        self.mail
            .send_raw(&self.sender, &[to.to_string()], raw)
            .await
    }
}

#[async_trait]
impl EventBus for AwsChannels {
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
            .map_err(|e| send_error("EventBridge PutEvents", e))?;
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
