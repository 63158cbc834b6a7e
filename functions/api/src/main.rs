//! Lambda entry point of the HTTP API (API Gateway HTTP API, payload 2.0): settings and clients
//! once per container, then the router per request. A request's failure is an HTTP response;
//! only a failed start-up reaches Lambda as an error (not retryable: the settings are wrong).

use api::{router, AppState, Services, Settings};
use lambda_http::lambda_runtime::Diagnostic;
use shared::adapters::clock::SystemClock;
use shared::adapters::lambda::StartupError;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Diagnostic> {
    shared::adapters::lambda::init_lambda_logging();
    let startup = StartupError::of("api");
    let settings = Settings::from_env().map_err(&startup)?;
    let sdk = shared::adapters::aws::sdk_config().await;
    let services = Services::new(settings, &sdk, Arc::new(SystemClock)).map_err(&startup)?;
    lambda_http::run(router(AppState(Arc::new(services))))
        .await
        .map_err(Diagnostic::from)
}
