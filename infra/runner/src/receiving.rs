//! A local stand-in for the service's receiving MX (SES receiving in AWS).
//!
//! It speaks enough SMTP for a mail server to deliver to it. Today it accepts probe mail only
//! (D3, Q7): each probe recipient's arrival is recorded through the same [`ProbeArrivals`] port
//! the inbound function uses. Other recipients are deferred with a 451 (never accepted and
//! dropped), until the inbound path files them.

use shared::clock::Clock;
use shared::probe::ProbeToken;
use shared::store::{ArrivalOutcome, ProbeArrivals};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted (probes are tiny).
pub const MAX_MESSAGE: usize = 1 << 20;
const MAX_LINE: usize = 4096;
const MAX_RECIPIENTS: usize = 100;

/// Serves SMTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, arrivals: Arc<dyn ProbeArrivals>, clock: Arc<dyn Clock>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (arrivals, clock) = (arrivals.clone(), clock.clone());
                tokio::spawn(async move {
                    if let Err(e) = session(stream, arrivals.as_ref(), clock.as_ref()).await {
                        tracing::debug!(%peer, error = %e, "receiving session ended with an error");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "receiving listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn read_line(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    buf.clear();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', buf)
        .await?;
    Ok(n > 0)
}

async fn session(
    stream: TcpStream,
    arrivals: &dyn ProbeArrivals,
    clock: &dyn Clock,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 receiving.localhost ESMTP continuity receiving stand-in\r\n")
        .await?;
    let mut line = Vec::new();
    let mut mail_from: Option<String> = None;
    let mut tokens: Vec<ProbeToken> = Vec::new();
    while read_line(&mut r, &mut line).await? {
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-receiving.localhost\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n"
        } else if upper.starts_with("HELO") {
            b"250 receiving.localhost\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = Some(text[10..].trim().to_string());
            tokens.clear();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if mail_from.is_none() {
                b"503 5.5.1 MAIL first\r\n"
            } else if tokens.len() >= MAX_RECIPIENTS {
                b"452 4.5.3 Too many recipients\r\n"
            } else {
                let addr = text[8..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                match ProbeToken::from_recipient(&addr) {
                    Some(t) => {
                        tokens.push(t);
                        b"250 2.1.5 OK\r\n"
                    }
                    None => b"451 4.3.2 This local stand-in accepts probe mail only for now\r\n",
                }
            }
        } else if upper == "DATA" {
            if tokens.is_empty() {
                b"503 5.5.1 No valid recipients\r\n"
            } else {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut size = 0usize;
                let mut too_big = false;
                loop {
                    if !read_line(&mut r, &mut line).await? {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    size += line.len();
                    too_big |= size > MAX_MESSAGE;
                }
                let reply = if too_big {
                    "552 5.3.4 Message too big\r\n".to_string()
                } else {
                    record(arrivals, clock, &tokens).await
                };
                mail_from = None;
                tokens.clear();
                w.write_all(reply.as_bytes()).await?;
                continue;
            }
        } else if upper == "RSET" {
            mail_from = None;
            tokens.clear();
            b"250 2.0.0 OK\r\n"
        } else if upper == "NOOP" {
            b"250 2.0.0 OK\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not recognised\r\n"
        };
        w.write_all(reply).await?;
    }
    Ok(())
}

/// Records every probe of the message; answers 451 if any could not be stored, so the sender
/// retries rather than the arrival being lost.
async fn record(arrivals: &dyn ProbeArrivals, clock: &dyn Clock, tokens: &[ProbeToken]) -> String {
    let at = clock.now();
    for t in tokens {
        match arrivals.record_probe_arrival(t, at).await {
            Ok(ArrivalOutcome::Recorded) => {
                tracing::info!(org = %t.org_id, window = %t.window, "probe arrived")
            }
            Ok(ArrivalOutcome::Duplicate) => {
                tracing::info!(org = %t.org_id, window = %t.window, "probe redelivered")
            }
            Ok(ArrivalOutcome::Unknown) => {
                tracing::warn!(org = %t.org_id, window = %t.window, "unknown probe token ignored")
            }
            Err(e) => {
                tracing::warn!(org = %t.org_id, error = %e, "probe arrival not stored");
                return "451 4.3.0 Could not record the message, try again\r\n".into();
            }
        }
    }
    "250 2.0.0 OK\r\n".into()
}
