//! SMTP adapter for the probe (D3): submission with TLS (STARTTLS or implicit) and AUTH, as the
//! organisation's own users send mail. Errors say which step failed, in words an administrator
//! can act on.

use crate::adapters::error_chain;
use crate::domain::config::{ProbeMailbox, SubmissionTls};
use crate::ports::mail::ProbeSendError;
use crate::ports::mail::ProbeSender;
use crate::ports::mail::SendFailure;
use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// Real SMTP submission with lettre.
pub struct SmtpProbeSender {
    timeout: Duration,
    extra_roots: Vec<Vec<u8>>,
    /// The name announced in EHLO; `None`: the machine's host name (lettre's default).
    helo: Option<String>,
}

impl SmtpProbeSender {
    /// `timeout` bounds each SMTP command; `extra_roots_pem` adds trusted CA certificates (PEM)
    /// for servers whose certificate is not from a public CA.
    pub fn new(timeout: Duration, extra_roots_pem: Option<Vec<u8>>) -> Self {
        SmtpProbeSender {
            timeout,
            extra_roots: extra_roots_pem.map(split_pem).unwrap_or_default(),
            helo: None,
        }
    }

    /// Announces `name` (the service's real host name) in EHLO instead of the machine's name,
    /// which in Lambda is an internal one that servers' checks would frown on.
    pub fn announcing(mut self, name: &str) -> Self {
        self.helo = Some(name.to_string());
        self
    }

    fn tls(&self, host: &str) -> Result<TlsParameters, ProbeSendError> {
        let mut b = TlsParameters::builder(host.to_string());
        for pem in &self.extra_roots {
            let cert = Certificate::from_pem(pem)
                .map_err(|e| setup(format!("bad CA certificate: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        b.build()
            .map_err(|e| setup(format!("TLS parameters for {host}: {e}")))
    }
}

fn setup(detail: String) -> ProbeSendError {
    ProbeSendError {
        kind: SendFailure::Setup,
        detail,
    }
}

/// Splits a PEM bundle into single certificates (lettre takes one at a time).
pub(crate) fn split_pem(bundle: Vec<u8>) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(&bundle);
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter(|c| c.contains("-----BEGIN CERTIFICATE-----"))
        .map(|c| c.trim().as_bytes().to_vec())
        .collect()
}

fn classify(e: lettre::transport::smtp::Error) -> ProbeSendError {
    let detail = error_chain(&e);
    let kind = if e.is_timeout() {
        SendFailure::Timeout
    } else if let Some(code) = e.status() {
        // 530/534/535/538: authentication required / too weak / failed / encryption required.
        let c = code.to_string();
        if matches!(c.as_str(), "530" | "534" | "535" | "538" | "454") {
            SendFailure::Auth
        } else if e.is_transient() {
            SendFailure::Transient
        } else {
            SendFailure::Permanent
        }
    } else if e.is_tls() || e.is_client() || detail.to_ascii_lowercase().contains("connect") {
        SendFailure::Connection
    } else if e.is_transient() {
        SendFailure::Transient
    } else if e.is_permanent() {
        SendFailure::Permanent
    } else {
        SendFailure::Connection
    };
    ProbeSendError { kind, detail }
}

#[async_trait]
impl ProbeSender for SmtpProbeSender {
    async fn send_probe(
        &self,
        mailbox: &ProbeMailbox,
        password: &str,
        recipient: &str,
        message: &[u8],
    ) -> Result<(), ProbeSendError> {
        let from: Address = mailbox
            .from_address
            .parse()
            .map_err(|e| setup(format!("probe.from_address: {e}")))?;
        let to: Address = recipient
            .parse()
            .map_err(|e| setup(format!("probe recipient: {e}")))?;
        let envelope = Envelope::new(Some(from), vec![to]).map_err(|e| setup(e.to_string()))?;
        let params = self.tls(&mailbox.host)?;
        let tls = match mailbox.tls {
            SubmissionTls::Starttls => Tls::Required(params),
            SubmissionTls::Implicit => Tls::Wrapper(params),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mailbox.host);
        if let Some(name) = &self.helo {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        let transport = builder
            .port(mailbox.port)
            .tls(tls)
            .timeout(Some(self.timeout))
            .credentials(Credentials::new(
                mailbox.username.clone(),
                password.to_string(),
            ))
            .authentication(vec![Mechanism::Plain, Mechanism::Login])
            .build();
        // The whole exchange is bounded too: a server that trickles bytes must not hold a slot.
        match tokio::time::timeout(self.timeout * 3, transport.send_raw(&envelope, message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(ProbeSendError {
                kind: SendFailure::Timeout,
                detail: format!(
                    "no complete answer within {} s",
                    (self.timeout * 3).as_secs()
                ),
            }),
        }
    }
}
