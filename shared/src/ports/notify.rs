//! Where alerts and events go out: SMS and email to administrators and users (A1-A6), events
//! on the service's bus for integrators (P7).

use crate::domain::alerts::EmailContent;
use crate::ports::error::SendError;
use async_trait::async_trait;

/// Where alerts go out.
#[async_trait]
pub trait AlertChannels: Send + Sync {
    /// One SMS; returns the provider's message id.
    async fn send_sms(&self, to: &str, text: &str) -> Result<String, SendError>;
    /// One email to one address; returns the provider's message id.
    async fn send_email(&self, to: &str, content: &EmailContent) -> Result<String, SendError>;
}

/// The service's event bus, where integrators react to what happens (P7).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// One event of type `detail_type` (`ContinuityActivated`, `AlertSent`, ...).
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError>;
}
