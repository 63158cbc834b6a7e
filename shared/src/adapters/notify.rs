//! The alert channels and the event bus of a deployment, built from one [`ChannelSettings`]:
//! SMS through SNS ([`SnsSms`]), email through SES ([`SesEmail`]), events on EventBridge
//! ([`EventBridgeBus`]). A new channel is one adapter implementing
//! [`AlertChannel`](crate::ports::notify::AlertChannel) and one field of [`AwsChannels`].

use crate::adapters::eventbridge::EventBridgeBus;
use crate::adapters::lambda::required_env;
use crate::adapters::ses::{SesEmail, SesMailSender};
use crate::adapters::sns::SnsSms;
use crate::domain::alerts::Channel;
use crate::domain::config::is_address;
use crate::ports::error::SendError;
use crate::ports::notify::{AlertChannel, AlertChannels, EventBus};
use async_trait::async_trait;

/// The settings of the alert channels and the bus, as the functions read them from the
/// environment (the monitor and the API set the same four).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// `ALERT_SENDER`: the service's own verified SES address alert email comes from.
    pub sender: String,
    /// `ALERT_SENDER_NAME`: its display name (default [`ChannelSettings::DEFAULT_SENDER_NAME`]).
    pub sender_name: String,
    /// `SMS_SENDER_ID`: optional alphanumeric sender id for SMS.
    pub sms_sender_id: Option<String>,
    /// `EVENT_BUS_NAME`: the service's EventBridge bus.
    pub event_bus: String,
}

impl ChannelSettings {
    /// The sender's display name when `ALERT_SENDER_NAME` is unset or blank.
    pub const DEFAULT_SENDER_NAME: &'static str = "Email continuity";

    /// The one reader of the four variables, for every function that alerts or publishes:
    /// `ALERT_SENDER` and `EVENT_BUS_NAME` required, `ALERT_SENDER_NAME` and `SMS_SENDER_ID`
    /// optional. The SAM template sets them on each such function (not in `Globals`), and
    /// `tests/tests/template_agreement.rs` attributes them to every function crate that calls
    /// this, so a function that calls it without the variables set fails that test.
    pub fn from_env() -> Result<Self, String> {
        Self::new(
            required_env("ALERT_SENDER")?,
            std::env::var("ALERT_SENDER_NAME").ok(),
            std::env::var("SMS_SENDER_ID").ok(),
            required_env("EVENT_BUS_NAME")?,
        )
    }

    /// Checks and completes the settings as read: the sender must be an address; a blank name
    /// or sender id means the default (none for the sender id).
    pub fn new(
        sender: String,
        sender_name: Option<String>,
        sms_sender_id: Option<String>,
        event_bus: String,
    ) -> Result<Self, String> {
        if !is_address(&sender) {
            return Err(format!("ALERT_SENDER {sender:?} is not an email address"));
        }
        let present = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Ok(ChannelSettings {
            sender,
            sender_name: present(sender_name)
                .unwrap_or_else(|| Self::DEFAULT_SENDER_NAME.to_string()),
            sms_sender_id: present(sms_sender_id),
            event_bus,
        })
    }
}

/// SNS, SES and EventBridge: every alert channel and the event bus.
#[derive(Debug, Clone)]
pub struct AwsChannels {
    pub sms: SnsSms,
    pub email: SesEmail,
    pub bus: EventBridgeBus,
}

impl AwsChannels {
    /// The channels and the bus on the SDK's clients.
    pub fn new(sdk: &aws_config::SdkConfig, settings: &ChannelSettings) -> Self {
        AwsChannels {
            sms: SnsSms::new(
                aws_sdk_sns::Client::new(sdk),
                settings.sms_sender_id.clone(),
            ),
            email: SesEmail {
                mail: SesMailSender::new(aws_sdk_ses::Client::new(sdk)),
                sender: settings.sender.clone(),
                sender_name: settings.sender_name.clone(),
            },
            bus: EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                settings.event_bus.clone(),
            ),
        }
    }
}

#[async_trait]
impl AlertChannels for AwsChannels {
    fn channel(&self, kind: Channel) -> Option<&dyn AlertChannel> {
        let all: [&dyn AlertChannel; 2] = [&self.sms, &self.email];
        all.into_iter().find(|c| c.kind() == kind)
    }
}

#[async_trait]
impl EventBus for AwsChannels {
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError> {
        self.bus.publish(detail_type, detail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_completed() {
        let s = ChannelSettings::new(
            "alerts@continuity.example".into(),
            Some("  ".into()),
            Some(String::new()),
            "bus".into(),
        )
        .unwrap();
        assert_eq!(s.sender_name, "Email continuity");
        assert_eq!(s.sms_sender_id, None);
        let e = ChannelSettings::new("not an address".into(), None, None, "bus".into());
        assert!(e.unwrap_err().contains("ALERT_SENDER"));
    }

    #[tokio::test]
    async fn every_channel_has_its_adapter() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let settings =
            ChannelSettings::new("a@continuity.example".into(), None, None, "bus".into()).unwrap();
        let channels = AwsChannels::new(&sdk, &settings);
        for kind in Channel::ALL {
            assert_eq!(channels.channel(kind).map(|c| c.kind()), Some(kind));
        }
    }
}
