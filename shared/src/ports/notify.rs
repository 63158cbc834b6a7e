//! Where alerts and events go out: SMS and email to administrators and users (A1-A6), events
//! on the service's bus for integrators (P7).
//!
//! One [`AlertChannel`] per [`Channel`] (SNS for SMS, SES for email: `crate::adapters`);
//! [`AlertChannels`] finds the one for a kind, so that the use cases name a channel, never a
//! provider.

use crate::domain::alerts::{Channel, Message};
use crate::ports::error::SendError;
use async_trait::async_trait;

/// One channel alerts go out on.
#[async_trait]
pub trait AlertChannel: Send + Sync {
    /// The channel this adapter serves.
    fn kind(&self) -> Channel;
    /// Sends `message` to `to` (an address of this channel's kind); returns the provider's
    /// message id.
    async fn send(&self, to: &str, message: &Message) -> Result<String, SendError>;
}

/// Every channel a deployment sends alerts on, by kind.
#[async_trait]
pub trait AlertChannels: Send + Sync {
    /// The adapter for `kind`, if this deployment has one.
    fn channel(&self, kind: Channel) -> Option<&dyn AlertChannel>;

    /// Sends `message` on channel `kind`; a channel this deployment lacks refuses it.
    async fn send(&self, kind: Channel, to: &str, message: &Message) -> Result<String, SendError> {
        match self.channel(kind) {
            Some(channel) => channel.send(to, message).await,
            None => Err(SendError::Permanent(format!(
                "no {kind} channel is set up in this deployment"
            ))),
        }
    }
}

/// The service's event bus, where integrators react to what happens (P7).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// One event of type `detail_type` (`ContinuityActivated`, `AlertSent`, ...).
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError>;

    /// Publishes as [`EventBus::publish`]; a failure is logged, never fatal: what the event
    /// reports has happened either way.
    async fn publish_or_log(&self, detail_type: &str, detail: serde_json::Value) {
        if let Err(e) = self.publish(detail_type, detail).await {
            tracing::warn!(detail_type, error = %e, "event not published");
        }
    }
}
