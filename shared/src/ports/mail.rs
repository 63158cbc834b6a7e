//! Mail going out: to the organisation's server over its routes (Q2), the probe through its
//! submission server (D3), and everything the service sends as mail (bounces, alert email,
//! users' mail) through one sender.

use crate::domain::config::{ProbeMailbox, Route};
use crate::domain::delivery::RcptResult;
use crate::ports::error::SendError;
use async_trait::async_trait;
use std::time::Duration;

/// One SMTP conversation with one route: a result per recipient, in the order given.
#[async_trait]
pub trait RouteTransport: Send + Sync {
    async fn attempt(
        &self,
        route: &Route,
        timeout: Duration,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Vec<RcptResult>;
}

/// Why a probe could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct ProbeSendError {
    pub kind: SendFailure,
    pub detail: String,
}

/// The step at which sending failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// Bad address or TLS setup on our side.
    Setup,
    /// No connection, or TLS failed.
    Connection,
    /// No answer within the timeout.
    Timeout,
    /// The server refused the credentials.
    Auth,
    /// The server refused the message for now (4xx).
    Transient,
    /// The server refused the message (5xx).
    Permanent,
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendFailure::Setup => "probe setup",
            SendFailure::Connection => "could not connect to the submission server",
            SendFailure::Timeout => "the submission server did not answer in time",
            SendFailure::Auth => "the submission server refused the login",
            SendFailure::Transient => "the submission server deferred the probe",
            SendFailure::Permanent => "the submission server refused the probe",
        })
    }
}

/// Sends one probe message.
#[async_trait]
pub trait ProbeSender: Send + Sync {
    async fn send_probe(
        &self,
        mailbox: &ProbeMailbox,
        password: &str,
        recipient: &str,
        message: &[u8],
    ) -> Result<(), ProbeSendError>;
}

/// Sends a message exactly as built (raw MIME) from `from`, which must be an identity the
/// provider lets the service send as, to `recipients` (the envelope); returns the provider's
/// message id. Bounces (Q3), alert email (A1) and users' mail (U3) all go out through it.
#[async_trait]
pub trait MailSender: Send + Sync {
    async fn send_raw(
        &self,
        from: &str,
        recipients: &[String],
        raw: Vec<u8>,
    ) -> Result<String, SendError>;
}
