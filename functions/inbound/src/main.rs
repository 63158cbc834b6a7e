//! Lambda entry point of `inbound` (SES receipt rule action): settings and clients once, then the
//! handler per event. Errors reach Lambda as diagnostics saying whether a retry may help.

use inbound::{handle_event, Deps, Settings};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use shared::adapters::clock::SystemClock;
use shared::adapters::lambda::{deadline_of, StartupError};
use shared::domain::delivery::AFTER_DELIVERY_MARGIN;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Diagnostic> {
    shared::adapters::lambda::init_lambda_logging();
    let startup = StartupError::of("inbound");
    let settings = Settings::from_env().map_err(&startup)?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let deps = Arc::new(
        Deps::start(&settings, &sdk, Arc::new(SystemClock))
            .await
            .map_err(&startup)?,
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let deps = deps.clone();
        let deadline = deadline_of(&event.context, AFTER_DELIVERY_MARGIN);
        async move { handle_event(&deps, event.payload, deadline).await }
    }))
    .await
    .map_err(Diagnostic::from)
}
