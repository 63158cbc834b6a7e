//! Lambda entry point of the monitor: settings and clients once, then the handler per event.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use monitor::{handle, Deps, RunSummary, ScheduledEvent, Settings};
use shared::adapters::clock::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::lambda::init_lambda_logging();
    let settings = Settings::from_env().map_err(|e| format!("monitor start-up: {e}"))?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let deps = Arc::new(Deps::new(&settings, &sdk, Arc::new(SystemClock))?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ScheduledEvent>| {
        let deps = deps.clone();
        async move { Ok::<RunSummary, Error>(handle(&deps, event.payload).await?.into()) }
    }))
    .await
}
