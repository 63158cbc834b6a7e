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
#[error("{}", self.text())]
pub struct ProbeSendError {
    pub kind: SendFailure,
    pub detail: String,
    /// `detail` is a sentence of the refusal table (what happened and what to do), complete
    /// by itself.
    pub explained: bool,
}

impl ProbeSendError {
    /// An error of `kind` with the other side's words.
    pub fn new(kind: SendFailure, detail: impl Into<String>) -> Self {
        ProbeSendError {
            kind,
            detail: detail.into(),
            explained: false,
        }
    }

    /// An error explained by the refusal table.
    pub fn explained(kind: SendFailure, sentence: String) -> Self {
        ProbeSendError {
            kind,
            detail: sentence,
            explained: true,
        }
    }

    /// What the history and the alert say.
    pub fn text(&self) -> String {
        if self.explained {
            self.detail.clone()
        } else {
            format!("{}: {}", self.kind, self.detail)
        }
    }
}

/// The step at which sending failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// Bad address or TLS setup on our side.
    Setup,
    /// The probe's credential is missing from Secrets Manager or cannot be used.
    Credential,
    /// The identity platform's token endpoint refused the app (or could not be reached).
    Token,
    /// No connection, or TLS failed.
    Connection,
    /// No answer within the timeout.
    Timeout,
    /// The server refused the credentials (a password or an access token).
    Auth,
    /// Microsoft Graph refused the probe (permission, mailbox, token).
    GraphRefused,
    /// The server refused the message for now (4xx), or Graph kept throttling.
    Transient,
    /// The server refused the message (5xx).
    Permanent,
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendFailure::Setup => "probe setup",
            SendFailure::Credential => "the probe's credential is not usable",
            SendFailure::Token => "could not get an access token",
            SendFailure::Connection => "could not connect to the submission server",
            SendFailure::Timeout => "the submission server did not answer in time",
            SendFailure::Auth => "the submission server refused the login",
            SendFailure::GraphRefused => "Microsoft Graph refused the probe",
            SendFailure::Transient => "the submission server deferred the probe",
            SendFailure::Permanent => "the submission server refused the probe",
        })
    }
}

/// How the probe authenticates to the submission server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpLogon<'a> {
    /// AUTH PLAIN or LOGIN with the mailbox's password.
    Password(&'a str),
    /// AUTH XOAUTH2 with an access token (`user=<username>^Aauth=Bearer <token>^A^A`).
    Xoauth2(&'a str),
}

/// Sends one probe message over SMTP submission; or only logs on, to test the logon.
#[async_trait]
pub trait ProbeSender: Send + Sync {
    async fn send_probe(
        &self,
        mailbox: &ProbeMailbox,
        logon: SmtpLogon<'_>,
        recipient: &str,
        message: &[u8],
    ) -> Result<(), ProbeSendError>;

    /// Connects, logs on and quits: sends nothing.
    async fn check_logon(
        &self,
        mailbox: &ProbeMailbox,
        logon: SmtpLogon<'_>,
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
