//! Lambda entry point of `queue` (EventBridge schedule, every minute): settings and clients
//! once, then one queue run per event.

use inbound::{handle_queue, Deps, ScheduledEvent, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::clock::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::lambda::init_lambda_logging();
    let settings = Settings::from_env().map_err(|e| format!("queue start-up: {e}"))?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let deps = Arc::new(Deps::new(&settings, &sdk, Arc::new(SystemClock))?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ScheduledEvent>| {
        let deps = deps.clone();
        async move {
            let report = handle_queue(&deps, event.payload).await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
