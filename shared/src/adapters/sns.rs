//! SMS through SNS (`Publish` to a phone number, transactional): the [`Channel::Sms`] alert
//! channel.

use crate::adapters::aws::send_error;
use crate::domain::alerts::{Channel, Message};
use crate::ports::error::SendError;
use crate::ports::notify::AlertChannel;
use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

/// SMS through SNS.
#[derive(Debug, Clone)]
pub struct SnsSms {
    client: aws_sdk_sns::Client,
    /// Alphanumeric sender id where the destination country supports one.
    sender_id: Option<String>,
}

impl SnsSms {
    pub fn new(client: aws_sdk_sns::Client, sender_id: Option<String>) -> Self {
        SnsSms { client, sender_id }
    }
}

/// An SMS attribute; a value SNS cannot take will not succeed as it is.
fn attr(value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| SendError::Permanent(format!("sms: {e}")))
}

#[async_trait]
impl AlertChannel for SnsSms {
    fn kind(&self) -> Channel {
        Channel::Sms
    }

    async fn send(&self, to: &str, message: &Message) -> Result<String, SendError> {
        let Message::Text(text) = message else {
            return Err(SendError::Permanent("sms: only text can be sent".into()));
        };
        let mut req = self
            .client
            .publish()
            .phone_number(to)
            .message(text)
            .message_attributes("AWS.SNS.SMS.SMSType", attr("Transactional")?);
        if let Some(id) = &self.sender_id {
            req = req.message_attributes("AWS.SNS.SMS.SenderID", attr(id)?);
        }
        let out = req
            .send()
            .await
            .map_err(|e| send_error("SNS Publish (SMS)", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}
