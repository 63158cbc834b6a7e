//! SMTP adapter for inbound delivery (Q2): one conversation with one route of the organisation's
//! server, answering per recipient. Commands are written as they came (no address rewriting),
//! every step is bounded by the route timeout, and only the server's 250 to the end of DATA
//! counts as delivered: a connection dropped after the data leaves the recipients deferred
//! (delivered again later, a possible duplicate, never lost). With a client certificate, every
//! TLS session presents it, for connectors that identify the service by certificate (I6).

use crate::adapters::error_chain;
use crate::domain::config::{Route, RouteTls};
use crate::domain::delivery::RcptResult;
use crate::ports::mail::RouteTransport;
use async_trait::async_trait;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Identity, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::future::Future;
use std::time::Duration;

/// Recipients per SMTP transaction: servers commonly refuse more than 100 RCPTs per message
/// (a queue item holds at most this many, or whole multiples of it).
pub const RECIPIENTS_PER_TRANSACTION: usize = crate::domain::queue::MAX_PART_RECIPIENTS;

/// Delivers over SMTP with lettre's connection (no pooling: routes are tried rarely in parallel
/// per organisation, and a fresh connection per message tells us the route's state now).
pub struct SmtpRelay {
    helo: String,
    extra_roots: Vec<Vec<u8>>,
    identity: Option<Identity>,
}

impl SmtpRelay {
    /// `helo`: the name this service announces; `extra_roots_pem`: extra trusted CAs (PEM) for
    /// routes with `starttls-required` whose certificate is not from a public CA.
    pub fn new(helo: impl Into<String>, extra_roots_pem: Option<Vec<u8>>) -> Self {
        SmtpRelay {
            helo: helo.into(),
            extra_roots: extra_roots_pem
                .map(crate::adapters::smtp::probe::split_pem)
                .unwrap_or_default(),
            identity: None,
        }
    }

    /// Presents the client certificate in `pem` (the certificate first, then any chain, and its
    /// private key, as one PEM text) in every TLS session. The certificate and key are checked
    /// here, so that a wrong secret stops the function at start-up with the reason instead of
    /// failing every delivery. Only the first certificate is sent: lettre presents one.
    pub fn with_client_certificate(mut self, pem: &str) -> Result<Self, String> {
        let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .ok_or("no certificate (-----BEGIN CERTIFICATE-----) in the PEM")?
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        if !pem.contains("PRIVATE KEY-----") {
            return Err("no private key (-----BEGIN PRIVATE KEY-----) in the PEM".into());
        }
        // lettre's rustls backend takes the certificate as DER, the key as PEM.
        let identity = Identity::from_pem(cert.as_ref(), pem.as_bytes())
            .map_err(|e| format!("unusable certificate or key: {}", error_chain(&e)))?;
        self.identity = Some(identity);
        self.tls("localhost", true)
            .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
        Ok(self)
    }

    /// Whether TLS sessions present a client certificate.
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    fn tls(&self, host: &str, verify: bool) -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.to_string());
        if verify {
            for pem in &self.extra_roots {
                let cert =
                    Certificate::from_pem(pem).map_err(|e| format!("bad CA certificate: {e}"))?;
                b = b.add_root_certificate(cert);
            }
        } else {
            // Opportunistic TLS (RFC 7435): encrypt when offered, without authenticating the
            // server, as MTAs do between themselves; a route that needs authentication says
            // `starttls-required`.
            b = b.dangerous_accept_invalid_certs(true);
        }
        if let Some(identity) = &self.identity {
            b = b.identify_with(identity.clone());
        }
        b.build()
            .map_err(|e| format!("TLS parameters for {host}: {e}"))
    }
}

/// A failed step: the server's answer (with its code) or what went wrong.
enum Step {
    Permanent(String),
    Transient(String),
    /// The connection is unusable (timeout, reset, TLS): stop talking to this route.
    Broken(String),
}

async fn step<T>(
    t: Duration,
    what: &str,
    f: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Step> {
    match tokio::time::timeout(t, f).await {
        Err(_) => Err(Step::Broken(format!(
            "{what}: no answer within {} s",
            t.as_secs()
        ))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let detail = format!("{what}: {}", error_chain(&e));
            if e.status().is_some() {
                if e.is_permanent() {
                    Err(Step::Permanent(detail))
                } else {
                    Err(Step::Transient(detail))
                }
            } else {
                Err(Step::Broken(detail))
            }
        }
    }
}

/// Closes a connection in trouble: `abort` sends QUIT and waits for the answer, which a hung
/// server never gives, so it is bounded too (dropping the connection closes the socket).
async fn abort(conn: &mut AsyncSmtpConnection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.abort()).await;
}

/// An address that can go into a command as it is (no CR, LF, angle brackets or spaces).
fn safe(address: &str) -> bool {
    !address
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
}

#[async_trait]
impl RouteTransport for SmtpRelay {
    async fn attempt(
        &self,
        route: &Route,
        timeout: Duration,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Vec<RcptResult> {
        let mut results: Vec<Option<RcptResult>> = vec![None; recipients.len()];
        let error = self
            .converse(route, timeout, sender, recipients, raw, &mut results)
            .await
            .err()
            .unwrap_or_else(|| "no answer for this recipient".into());
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| RcptResult::Deferred(error.clone())))
            .collect()
    }
}

impl SmtpRelay {
    /// Fills `results`; an error leaves the unanswered recipients deferred with its reason.
    async fn converse(
        &self,
        route: &Route,
        t: Duration,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
        results: &mut [Option<RcptResult>],
    ) -> Result<(), String> {
        let hello = ClientId::Domain(self.helo.clone());
        let broken = |s: Step| match s {
            Step::Permanent(m) | Step::Transient(m) | Step::Broken(m) => m,
        };
        let mut conn = step(
            t,
            "connect",
            AsyncSmtpConnection::connect_tokio1(
                (route.host.as_str(), route.port),
                Some(t),
                &hello,
                None,
                None,
            ),
        )
        .await
        .map_err(broken)?;
        match route.tls {
            RouteTls::None => {}
            RouteTls::Opportunistic => {
                if conn.can_starttls() {
                    let p = self.tls(&route.host, false)?;
                    step(t, "STARTTLS", conn.starttls(p, &hello))
                        .await
                        .map_err(broken)?;
                }
            }
            RouteTls::StarttlsRequired => {
                if !conn.can_starttls() {
                    abort(&mut conn).await;
                    return Err(
                        "the route requires STARTTLS but the server does not offer it".into(),
                    );
                }
                let p = self.tls(&route.host, true)?;
                step(t, "STARTTLS", conn.starttls(p, &hello))
                    .await
                    .map_err(broken)?;
            }
        }
        let mut params = String::new();
        if !raw.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push_str(" BODY=8BITMIME");
        }
        if !(sender.is_ascii() && recipients.iter().all(|r| r.is_ascii()))
            && conn.server_info().supports_feature(Extension::SmtpUtfEight)
        {
            params.push_str(" SMTPUTF8");
        }
        let sender = if safe(sender) { sender } else { "" };
        // DATA may carry 40 MB: allow it a second per MB on top of the step timeout.
        let data_t = t + Duration::from_secs(raw.len() as u64 / 1_000_000 + 1);

        let indices: Vec<usize> = (0..recipients.len()).collect();
        for chunk in indices.chunks(RECIPIENTS_PER_TRANSACTION) {
            match step(
                t,
                "MAIL FROM",
                conn.command(format!("MAIL FROM:<{sender}>{params}\r\n")),
            )
            .await
            {
                Ok(_) => {}
                Err(Step::Permanent(m)) => {
                    for &i in chunk {
                        results[i] = Some(RcptResult::Rejected(m.clone()));
                    }
                    let _ = step(t, "RSET", conn.command("RSET\r\n")).await;
                    continue;
                }
                Err(Step::Transient(m)) | Err(Step::Broken(m)) => {
                    abort(&mut conn).await;
                    return Err(m);
                }
            }
            let mut accepted = Vec::new();
            for &i in chunk {
                let r = &recipients[i];
                if !safe(r) || !r.contains('@') {
                    results[i] = Some(RcptResult::Rejected(format!(
                        "{r:?} is not a deliverable address"
                    )));
                    continue;
                }
                match step(t, "RCPT TO", conn.command(format!("RCPT TO:<{r}>\r\n"))).await {
                    Ok(_) => accepted.push(i),
                    Err(Step::Permanent(m)) => results[i] = Some(RcptResult::Rejected(m)),
                    Err(Step::Transient(m)) => results[i] = Some(RcptResult::Deferred(m)),
                    Err(Step::Broken(m)) => {
                        abort(&mut conn).await;
                        return Err(m);
                    }
                }
            }
            if accepted.is_empty() {
                let _ = step(t, "RSET", conn.command("RSET\r\n")).await;
                continue;
            }
            let outcome = match step(t, "DATA", conn.command("DATA\r\n")).await {
                Ok(_) => step(data_t, "end of DATA", conn.message(raw)).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => {
                    for i in accepted {
                        results[i] = Some(RcptResult::Delivered);
                    }
                }
                Err(Step::Permanent(m)) => {
                    for i in accepted {
                        results[i] = Some(RcptResult::Rejected(m.clone()));
                    }
                }
                Err(Step::Transient(m)) => {
                    for i in accepted {
                        results[i] = Some(RcptResult::Deferred(m.clone()));
                    }
                }
                Err(Step::Broken(m)) => {
                    abort(&mut conn).await;
                    return Err(m);
                }
            }
        }
        let _ = tokio::time::timeout(t, conn.quit()).await;
        Ok(())
    }
}
