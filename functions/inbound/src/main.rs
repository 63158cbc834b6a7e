//! Lambda entry point of `inbound` (SES receipt rule action): settings and clients once, then the
//! handler per event.

use inbound::{handle_ses, Deps, SesEvent, Settings};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::clock::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::lambda::init_lambda_logging();
    let settings = Settings::from_env().map_err(|e| format!("inbound start-up: {e}"))?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let deps = Arc::new(Deps::new(&settings, &sdk, Arc::new(SystemClock))?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SesEvent>| {
        let deps = deps.clone();
        async move {
            let reports = handle_ses(&deps, &event.payload).await?;
            Ok::<_, Error>(serde_json::to_value(reports)?)
        }
    }))
    .await
}
