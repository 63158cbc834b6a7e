//! A local stand-in for SES receiving (the service's MX).
//!
//! It speaks enough SMTP for a mail server to deliver to it, and does what SES receiving and its
//! receipt rule do: a recipient is accepted when it is a probe address or on a domain an
//! organisation owns (550 otherwise, as SES refuses unverified domains); at the end of DATA the
//! raw message is stored in the mail bucket (S3, moto locally) under a fresh SES-style message id,
//! then the inbound function's handler runs with an SES-shaped event. The client gets 250 only
//! after both succeeded, 451 otherwise (it keeps the message and retries: nothing is lost here).
//! Like SES, it judges each message first ([`crate::verdicts`]: SPF, DKIM and DMARC against the
//! DNS, viruses, spam) and prepends its own `Received:` field to what it stores.

use crate::verdicts::Judge;
use inbound::{handle_ses, SesEvent};
use shared::domain::mail::{domain_of, mailbox_of};
use shared::domain::probe::ProbeToken;
use shared::ports::blob::RawMessages;
use shared::ports::clock::Clock;
use shared::ports::store::DomainOwners;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest message accepted: SES receiving's limit (40 MB, headers included).
pub const MAX_MESSAGE: usize = 40 * 1024 * 1024;
const MAX_LINE: usize = 4096;
/// Recipients per message (SES accepts 50; a local stand-in is generous, for tests).
pub const MAX_RECIPIENTS: usize = 1000;

/// Serves SMTP on `listener` until the task is dropped. `clock` stamps the receipt time.
pub async fn serve(
    listener: TcpListener,
    deps: Arc<inbound::Deps>,
    clock: Arc<dyn Clock>,
    judge: Arc<Judge>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (deps, clock, judge) = (deps.clone(), clock.clone(), judge.clone());
                tokio::spawn(async move {
                    let c = Client {
                        ip: peer.ip(),
                        judge: &judge,
                    };
                    if let Err(e) = session(stream, &deps, clock.as_ref(), &c).await {
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

/// Whether SES would take mail for `address`: a probe, or a domain an organisation owns.
async fn accepts(deps: &inbound::Deps, address: &str) -> Result<bool, String> {
    if ProbeToken::from_recipient(address).is_some() {
        return Ok(true);
    }
    let Some(domain) = domain_of(address) else {
        return Ok(false);
    };
    let mut candidates = vec![domain.clone()];
    let mut rest = domain.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        candidates.push(parent.to_string());
        rest = parent;
    }
    deps.store
        .orgs_for_domains(&candidates)
        .await
        .map(|m| !m.is_empty())
        .map_err(|e| e.to_string())
}

/// An id shaped like SES's (lower-case letters and digits).
fn ses_message_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..40)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Who is connected, and who judges what they send.
struct Client<'a> {
    ip: std::net::IpAddr,
    judge: &'a Judge,
}

async fn session(
    stream: TcpStream,
    deps: &inbound::Deps,
    clock: &dyn Clock,
    client: &Client<'_>,
) -> std::io::Result<()> {
    let mut helo = String::new();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 receiving.localhost ESMTP continuity receiving stand-in (SES)\r\n")
        .await?;
    let mut line = Vec::new();
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    while read_line(&mut r, &mut line).await? {
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            helo = text[4..].trim().to_string();
        }
        let reply: String = if upper.starts_with("EHLO") {
            format!("250-receiving.localhost\r\n250-8BITMIME\r\n250 SIZE {MAX_MESSAGE}\r\n")
        } else if upper.starts_with("HELO") {
            "250 receiving.localhost\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            let arg = text[10..].split_whitespace().next().unwrap_or("");
            mail_from = Some(
                arg.trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
            rcpts.clear();
            "250 2.1.0 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            if mail_from.is_none() {
                "503 5.5.1 MAIL first\r\n".into()
            } else if rcpts.len() >= MAX_RECIPIENTS {
                "452 4.5.3 Too many recipients\r\n".into()
            } else {
                let addr = text[8..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string();
                if mailbox_of(&addr).is_none() {
                    "553 5.1.3 Not a valid address\r\n".into()
                } else {
                    match accepts(deps, &addr).await {
                        Ok(true) => {
                            rcpts.push(addr);
                            "250 2.1.5 OK\r\n".into()
                        }
                        Ok(false) => {
                            "550 5.1.1 No organisation here receives mail for this domain\r\n"
                                .into()
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "receiving: domain lookup failed");
                            "451 4.3.0 Try again later\r\n".into()
                        }
                    }
                }
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() {
                "503 5.5.1 No valid recipients\r\n".into()
            } else {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut raw = Vec::new();
                let mut too_big = false;
                loop {
                    if !read_line(&mut r, &mut line).await? {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    if too_big {
                        continue;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2).
                    let l = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    raw.extend_from_slice(l);
                    too_big = raw.len() > MAX_MESSAGE;
                }
                let reply = if too_big {
                    "552 5.3.4 Message too big (SES receives at most 40 MB)\r\n".to_string()
                } else {
                    let sender = mail_from.take().unwrap_or_default();
                    let env = Envelope {
                        helo: &helo,
                        sender: &sender,
                        rcpts: std::mem::take(&mut rcpts),
                    };
                    receive(deps, clock, client, env, raw).await
                };
                mail_from = None;
                rcpts.clear();
                w.write_all(reply.as_bytes()).await?;
                continue;
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpts.clear();
            "250 2.0.0 OK\r\n".into()
        } else if upper == "NOOP" {
            "250 2.0.0 OK\r\n".into()
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognised\r\n".into()
        };
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// One message's envelope.
struct Envelope<'a> {
    helo: &'a str,
    sender: &'a str,
    rcpts: Vec<String>,
}

/// Judges the message, stores it (with this hop's `Received:` field, as SES stores it), then
/// runs the inbound handler as the receipt rule would, with the verdicts in the event.
async fn receive(
    deps: &inbound::Deps,
    clock: &dyn Clock,
    client: &Client<'_>,
    env: Envelope<'_>,
    raw: Vec<u8>,
) -> String {
    let id = ses_message_id();
    let verdicts = client
        .judge
        .judge(client.ip, env.helo, env.sender, &raw)
        .await;
    let mut stored = format!(
        "Received: from {helo} ([{ip}])\r\n\tby receiving.localhost (SES receiving stand-in) with ESMTP id {id};\r\n\t{date}\r\n",
        helo = env.helo.chars().filter(|c| c.is_ascii_graphic()).take(255).collect::<String>(),
        ip = client.ip,
        date = clock.now().to_rfc2822(),
    )
    .into_bytes();
    stored.extend_from_slice(&raw);
    let (sender, rcpts) = (env.sender, env.rcpts);
    if let Err(e) = deps.raw.put(&format!("{}{id}", deps.prefix), stored).await {
        tracing::warn!(error = %e, "receiving: raw message not stored");
        return "451 4.3.0 Could not store the message, try again\r\n".into();
    }
    let event = SesEvent::single(&id, clock.now(), sender, rcpts, verdicts);
    // As Lambda runs it: the deliveries give up by the invocation's deadline, and an
    // invocation still running at the function's timeout is ended.
    let invocation = handle_ses(
        deps,
        &event,
        inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
    );
    match tokio::time::timeout(inbound::INBOUND_TIMEOUT, invocation).await {
        Ok(Ok(_)) => format!("250 2.0.0 OK {id}\r\n"),
        Err(_) => {
            tracing::warn!(ses_id = %id, timeout_secs = inbound::INBOUND_TIMEOUT.as_secs(), "receiving: inbound handler timed out (Lambda would end it here)");
            "451 4.3.0 Could not process the message, try again\r\n".into()
        }
        Ok(Err(e)) => {
            tracing::warn!(ses_id = %id, error = %e, "receiving: inbound handler failed");
            "451 4.3.0 Could not process the message, try again\r\n".into()
        }
    }
}
