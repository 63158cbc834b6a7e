//! Microsoft Graph (D9, D10): sending the probe as the probe mailbox, and Exchange Online's
//! service health.

use crate::domain::provider_health::ReportedIssue;
use async_trait::async_trait;
use std::time::Duration;

/// Why Graph did not do it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error: HTTP status, `error.code`, `error.message`.
    #[error("Microsoft Graph answered HTTP {status} {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No usable answer: connection, timeout, unreadable body.
    #[error("Microsoft Graph unavailable: {0}")]
    Unavailable(String),
}

/// The Graph calls the service makes, each with an app token.
#[async_trait]
pub trait GraphApi: Send + Sync {
    /// `POST /users/{mailbox}/sendMail` with the message as MIME. A 429 is retried after its
    /// `Retry-After` while `within` allows.
    async fn send_mime(
        &self,
        token: &str,
        mailbox: &str,
        mime: &[u8],
        within: Duration,
    ) -> Result<(), GraphError>;

    /// `service`'s health overview with its issues: the overview's status and every issue.
    async fn service_health(
        &self,
        token: &str,
        service: &str,
    ) -> Result<(String, Vec<ReportedIssue>), GraphError>;
}
