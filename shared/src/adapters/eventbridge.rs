//! Events on the service's EventBridge bus (`PutEvents`, source [`EVENT_SOURCE`]): the
//! [`EventBus`] integrators subscribe to (P7).

use crate::adapters::aws::send_error;
use crate::ports::error::SendError;
use crate::ports::notify::EventBus;
use async_trait::async_trait;

/// The `source` of every event the service publishes.
pub const EVENT_SOURCE: &str = "email-continuity";

/// One EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, detail_type: &str, detail: serde_json::Value) -> Result<(), SendError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
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
            // The bus refused the entry itself: sending it again as it is will not help.
            return Err(SendError::Permanent(format!(
                "events: event not accepted: {why}"
            )));
        }
        Ok(())
    }
}
