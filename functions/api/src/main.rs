//! Lambda entry point of the HTTP API (API Gateway HTTP API, payload 2.0): settings and clients
//! once per container, then the router per request.

use api::{router, AppState, Services, Settings};
use shared::adapters::clock::SystemClock;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::adapters::lambda::init_lambda_logging();
    let settings = Settings::from_env().map_err(|e| format!("api start-up: {e}"))?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let services = Services::new(settings, &sdk, Arc::new(SystemClock))
        .map_err(|e| format!("api start-up: {e}"))?;
    lambda_http::run(router(AppState(Arc::new(services)))).await
}
