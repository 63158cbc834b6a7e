//! What every function's entry point needs: settings from the environment (read once, failing
//! fast with the variable's name), logging, the scheduled event, and errors as Lambda reports
//! them (retryable or not).

use crate::ports::error::Failure;

/// Reads a required environment variable, naming it when missing.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("environment variable {name} must be set"))
}

/// Checks `SMTP_HELO_NAME`'s value (each function reads the variable itself): the service's
/// real host name (organisations' servers and connectors check the name a client announces, and
/// it names the service in the trace fields it adds), never a `.invalid` placeholder.
/// Lower-cased.
pub fn helo_name(value: &str) -> Result<String, String> {
    let name = value.trim().to_ascii_lowercase();
    if !crate::domain::config::is_domain(&name) || name.ends_with(".invalid") {
        return Err(format!(
            "SMTP_HELO_NAME {name:?} must be the service's real host name (for example smtp.continuity.example.org)"
        ));
    }
    Ok(name)
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

/// The event of an EventBridge schedule, as the monitor and the queue read it: only `time`, the
/// tick's scheduled time (a retried or duplicated event carries the same one, so it names the
/// same run). A manual invocation may send `{}` or `{"time": "..."}`: without a time, the run is
/// for the current time. The rest of the event (`detail-type`, `resources`, ...) is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ScheduledEvent {
    #[serde(default)]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
}

impl ScheduledEvent {
    /// Reads the event as Lambda hands it over; anything else is a bad event.
    pub fn parse(event: serde_json::Value) -> Result<Self, BadEvent> {
        serde_json::from_value(event).map_err(|e| BadEvent(format!("scheduled event: {e}")))
    }

    /// The time the run is for: the event's, or `now` when it has none.
    pub fn at(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        self.time.unwrap_or(now)
    }
}

/// An event a function cannot read: the same event will never succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event: {0}")]
pub struct BadEvent(pub String);

/// `error` as Lambda's diagnostic: `errorType` `Retryable.{kind}` or `NonRetryable.{kind}`, the
/// message the error's text.
pub fn diagnostic(error: &dyn Failure) -> lambda_runtime::Diagnostic {
    let retry = if error.retryable() {
        "Retryable"
    } else {
        "NonRetryable"
    };
    lambda_runtime::Diagnostic {
        error_type: format!("{retry}.{}", error.kind()),
        error_message: error.to_string(),
    }
}

impl Failure for BadEvent {
    fn retryable(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "BadEvent"
    }
}

impl From<BadEvent> for lambda_runtime::Diagnostic {
    fn from(e: BadEvent) -> Self {
        diagnostic(&e)
    }
}

/// A function that cannot start: its settings are wrong or a client cannot be built. Nothing
/// an event carries can fix it; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{function} start-up: {reason}")]
pub struct StartupError {
    pub function: &'static str,
    pub reason: String,
}

impl StartupError {
    /// A start-up failure of `function` (`monitor`, `api`, ...), for `map_err`.
    pub fn of(function: &'static str) -> impl Fn(String) -> StartupError {
        move |reason| StartupError { function, reason }
    }
}

impl Failure for StartupError {
    fn retryable(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "StartUp"
    }
}

impl From<StartupError> for lambda_runtime::Diagnostic {
    fn from(e: StartupError) -> Self {
        diagnostic(&e)
    }
}

/// The invocation's deadline as Lambda gives it (`Context::deadline`, epoch milliseconds),
/// turned into an instant of this process's clock, `margin` earlier: the time the work of the
/// invocation must be over by, with `margin` left to settle what it did.
pub fn deadline_of(
    context: &lambda_runtime::Context,
    margin: std::time::Duration,
) -> crate::domain::delivery::Deadline {
    use crate::domain::delivery::Deadline;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(context.deadline.saturating_sub(now_ms));
    Deadline::within(tokio::time::Instant::now().into_std(), left).less(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::inbound::InboundError;
    use crate::ports::error::{BlobError, StoreError};

    #[test]
    fn the_helo_name_is_a_real_host_name() {
        assert_eq!(
            helo_name(" SMTP.Continuity.Example.org "),
            Ok("smtp.continuity.example.org".into())
        );
        for bad in [
            "continuity.invalid",
            "localhost",
            "smtp continuity.example",
            "",
        ] {
            assert!(
                helo_name(bad).is_err_and(|e| e.contains("SMTP_HELO_NAME")),
                "{bad:?}"
            );
        }
    }

    const SCHEDULED: &str = include_str!("../../../tests/fixtures/eventbridge-scheduled.json");

    #[test]
    fn the_scheduled_event_is_read_as_eventbridge_sends_it() {
        let full: aws_lambda_events::event::eventbridge::EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(SCHEDULED).unwrap();
        let ours = ScheduledEvent::parse(serde_json::from_str(SCHEDULED).unwrap()).unwrap();
        assert_eq!(ours.time, full.time);
        assert!(ours.time.is_some());
        let manual = ScheduledEvent::parse(serde_json::json!({})).unwrap();
        let now = chrono::Utc::now();
        assert_eq!(manual.at(now), now);
    }

    #[test]
    fn a_malformed_event_is_not_retried() {
        let e = ScheduledEvent::parse(serde_json::json!({ "time": "yesterday" })).unwrap_err();
        let d = lambda_runtime::Diagnostic::from(e);
        assert_eq!(d.error_type, "NonRetryable.BadEvent");
        assert!(
            d.error_message.contains("scheduled event"),
            "{}",
            d.error_message
        );
        let e = ScheduledEvent::parse(serde_json::json!([1, 2])).unwrap_err();
        assert_eq!(diagnostic(&e).error_type, "NonRetryable.BadEvent");
    }

    #[test]
    fn errors_say_whether_a_retry_may_help() {
        let cases: Vec<(Box<dyn Failure>, &str)> = vec![
            (
                Box::new(StoreError::Transient("throttled".into())),
                "Retryable.StoreUnavailable",
            ),
            (
                Box::new(StoreError::Permanent("no such table".into())),
                "NonRetryable.StoreRefused",
            ),
            (
                Box::new(StoreError::ConditionFailed("x".into())),
                "NonRetryable.StoreConditionFailed",
            ),
            (
                Box::new(StoreError::Corrupt {
                    key: "k".into(),
                    reason: "r".into(),
                }),
                "NonRetryable.CorruptItem",
            ),
            (
                Box::new(InboundError::Raw(BlobError::Transient("503".into()))),
                "Retryable.RawMessageUnavailable",
            ),
            (
                Box::new(InboundError::Raw(BlobError::NotFound("k".into()))),
                "NonRetryable.RawMessageMissing",
            ),
            (
                Box::new(InboundError::Store(StoreError::Transient("t".into()))),
                "Retryable.StoreUnavailable",
            ),
            (
                Box::new(StartupError::of("monitor")("TABLE_NAME must be set".into())),
                "NonRetryable.StartUp",
            ),
        ];
        for (error, expected) in cases {
            let d = diagnostic(error.as_ref());
            assert_eq!(d.error_type, expected, "{error}");
            assert_eq!(d.error_message, error.to_string());
        }
    }

    #[test]
    fn inbound_errors_are_retried_exactly_when_transient() {
        for e in [
            InboundError::Raw(BlobError::Transient("t".into())),
            InboundError::Raw(BlobError::Permanent("p".into())),
            InboundError::Raw(BlobError::NotFound("n".into())),
            InboundError::Store(StoreError::Transient("t".into())),
            InboundError::Store(StoreError::Permanent("p".into())),
            InboundError::Store(StoreError::ConditionFailed("c".into())),
        ] {
            assert_eq!(e.retryable(), e.is_transient(), "{e}");
        }
    }
}
