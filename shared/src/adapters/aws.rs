//! What every AWS adapter shares: the SDK configuration, and one reading of SDK errors.
//!
//! Endpoints come from the SDK's own settings (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, ...), so a local stack needs no code path of its own.
//!
//! [`classify`] reads any SDK call's error the same way (every `aws-sdk-*` crate re-exports the
//! same smithy `SdkError`): a fault of the connection or a throttle is [`Fault::Transient`], a
//! lost condition [`Fault::ConditionFailed`], the rest [`Fault::Permanent`]. Each adapter maps
//! that onto its port's error type, so that callers act on kinds, never on strings.

use super::error_chain;
use crate::ports::error::{BlobError, SendError, StoreError};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Attempts per call (the first and the retries) for throttling, 5xx and dropped connections.
/// With one request in five throttled, six attempts fail once in 15,000 calls; the SDK's
/// retry quota still stops a storm when a service is down.
pub const MAX_ATTEMPTS: u32 = 6;

/// Loads the shared SDK configuration from the environment, with the retries and time limits
/// the functions need: DynamoDB throttles, S3 answers 503 SlowDown, connections drop, and an
/// HTTP API request has 29 seconds. The SDK's defaults back off up to 20 s a retry and let a
/// hung connection wait for ever; these back off from 50 ms to at most 2 s (full jitter) and
/// give up on one attempt after 15 s (a 40 MB object to S3 included) and on a call after 28 s.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(15))
                .operation_timeout(Duration::from_secs(28))
                .build(),
        )
        .load()
        .await
}

/// What an SDK error means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttling, a timeout, a 5xx, a dropped connection: the same call may succeed later.
    Transient,
    /// A conditional write lost (DynamoDB): someone else changed the item first.
    ConditionFailed,
    /// Anything else: bad request, access denied, missing resource.
    Permanent,
}

/// An SDK error, read: its kind, the service's error code (empty when the call never reached
/// the service) and a message naming the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    pub fault: Fault,
    pub code: String,
    pub message: String,
}

/// Error codes that mean "try again" across the services this project calls.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalServiceError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SlowDown",
    "RequestTimeout",
];

/// Reads an SDK error of operation `op` (for example `PutItem`).
pub fn classify<E, R>(op: &str, err: &SdkError<E, R>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SdkFailure {
                fault: Fault::Transient,
                code: String::new(),
                message: format!("{op}: {}", error_chain(err)),
            }
        }
        _ => {
            let code = err.code().unwrap_or_default().to_string();
            let message = match (code.is_empty(), err.message()) {
                (false, Some(m)) => format!("{op}: {code}: {m}"),
                (false, None) => format!("{op}: {code}"),
                (true, _) => format!("{op}: {}", error_chain(err)),
            };
            let fault = if code == "ConditionalCheckFailedException" {
                Fault::ConditionFailed
            } else if TRANSIENT_CODES.contains(&code.as_str()) {
                Fault::Transient
            } else {
                Fault::Permanent
            };
            SdkFailure {
                fault,
                code,
                message,
            }
        }
    }
}

impl SdkFailure {
    /// As the storage ports report it.
    pub fn into_store_error(self) -> StoreError {
        match self.fault {
            Fault::ConditionFailed => StoreError::ConditionFailed(self.message),
            Fault::Transient => StoreError::Transient(self.message),
            Fault::Permanent => StoreError::Permanent(self.message),
        }
    }

    /// As the sending ports (mail, SMS, events) report it.
    pub fn into_send_error(self) -> SendError {
        match self.fault {
            Fault::Transient => SendError::Transient(self.message),
            Fault::ConditionFailed | Fault::Permanent => SendError::Permanent(self.message),
        }
    }

    /// As the raw message store reports it.
    pub fn into_blob_error(self) -> BlobError {
        match self.fault {
            Fault::Transient => BlobError::Transient(self.message),
            Fault::ConditionFailed | Fault::Permanent => BlobError::Permanent(self.message),
        }
    }
}

/// An SDK error of a sending call (SES, SNS, EventBridge), as the sending ports report it.
pub fn send_error<E, R>(op: &str, err: SdkError<E, R>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    classify(op, &err).into_send_error()
}

/// An SDK error of a call that must not be repeated blindly (SES `SendEmail`, `SendRawEmail`):
/// whether the service may have acted on it. Definite answers are [`SendError::Permanent`]
/// (a 4xx: rejected, invalid, too big) or [`SendError::Transient`] (throttled, or no
/// connection made: nothing was sent). A timeout, a connection lost once the request was on
/// its way, an unreadable answer or a 5xx leave the outcome open: [`SendError::Unknown`].
pub fn send_once_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let read = classify(op, &err);
    match &err {
        SdkError::ConstructionFailure(_) => SendError::Permanent(read.message),
        // No connection was made (refused, DNS): nothing left this process. hyper-util names
        // that kind "Connect"; any other dispatch failure may follow a request written out.
        SdkError::DispatchFailure(_) if read.message.contains("client error (Connect)") => {
            SendError::Transient(read.message)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            SendError::Unknown(read.message)
        }
        SdkError::ServiceError(e) => match e.raw().status().as_u16() {
            500.. => SendError::Unknown(read.message),
            429 => SendError::Transient(read.message),
            _ if read.fault == Fault::Transient => SendError::Transient(read.message),
            _ => SendError::Permanent(read.message),
        },
        _ => SendError::Unknown(read.message),
    }
}
