//! What every function's `main` needs: settings from the environment (read once, failing fast
//! with the variable's name) and logging.

/// Reads a required environment variable, naming it when missing.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} must be set"))
}

/// Reads an optional numeric setting, naming it when unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("environment variable {name}: {v:?} is not a valid value")),
    }
}

/// Logging of every function: JSON lines to stdout (CloudWatch Logs adds the time), level from
/// `RUST_LOG` (default `info`). Called once at start-up.
pub fn init_lambda_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .without_time()
        .init();
}
