//! Lambda entry point of `queue` (EventBridge schedule, every minute): settings and clients
//! once, then one queue run per event. Errors reach Lambda as diagnostics saying whether a
//! retry may help.

use inbound::{handle_queue_event, Deps, Settings};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use shared::adapters::clock::SystemClock;
use shared::adapters::lambda::StartupError;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Diagnostic> {
    shared::adapters::lambda::init_lambda_logging();
    let startup = StartupError::of("queue");
    let settings = Settings::from_env().map_err(&startup)?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let deps = Arc::new(
        Deps::start(&settings, &sdk, Arc::new(SystemClock))
            .await
            .map_err(&startup)?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        async move { handle_queue_event(&deps, event.payload).await }
    }))
    .await
    .map_err(Diagnostic::from)
}
