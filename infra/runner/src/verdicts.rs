//! The verdicts SES receiving gives each message, computed locally the way SES computes them,
//! so that the whole mail path runs from any SMTP client (Q9, Q10): SPF, DKIM and DMARC by a
//! real implementation (Stalwart's `mail-auth`) against a real DNS server (`DNS_SERVERS`:
//! locally dnsmasq on loopback), a virus FAIL for the EICAR test file (SES's scanner reports it
//! like any virus), and a spam FAIL for the GTUBE test string (SES has no public spam test
//! string; GTUBE is what spam filters use for that).

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult};
use shared::domain::verdicts::{Verdict, Verdicts};
use std::net::{IpAddr, SocketAddr};

/// The EICAR anti-virus test file: every scanner reports it as a virus.
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// The GTUBE spam test string.
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// Judges received messages.
pub struct Judge {
    auth: MessageAuthenticator,
    /// The receiving host's name (SPF's host domain).
    host: String,
}

impl Judge {
    /// A judge asking the name servers `servers` (the system's when empty).
    pub fn new(servers: &[SocketAddr], host: &str) -> Result<Self, String> {
        let (config, opts) = shared::adapters::dns::resolver_config(servers)?;
        Ok(Judge {
            auth: MessageAuthenticator::new(config, opts)
                .map_err(|e| format!("DNS resolver: {e}"))?,
            host: host.to_string(),
        })
    }

    /// From `DNS_SERVERS`.
    pub fn from_env(host: &str) -> Result<Self, String> {
        Self::new(
            &shared::adapters::dns::parse_servers(
                &std::env::var("DNS_SERVERS").unwrap_or_default(),
            )?,
            host,
        )
    }

    /// The five verdicts of `raw`, received from `ip` that said `helo`, with envelope `sender`.
    pub async fn judge(&self, ip: IpAddr, helo: &str, sender: &str, raw: &[u8]) -> Verdicts {
        let spf = if sender.is_empty() {
            self.auth
                .verify_spf(SpfParameters::verify_ehlo(ip, helo, &self.host))
                .await
        } else {
            self.auth
                .verify_spf(SpfParameters::verify_mail_from(
                    ip, helo, &self.host, sender,
                ))
                .await
        };
        let (dkim, dmarc) = match AuthenticatedMessage::parse(raw) {
            Some(msg) => {
                let dkim = self.auth.verify_dkim(&msg).await;
                let domain = sender.rsplit_once('@').map(|(_, d)| d).unwrap_or(helo);
                let dmarc = self
                    .auth
                    .verify_dmarc(DmarcParameters::new(&msg, &dkim, domain, &spf))
                    .await;
                (
                    dkim_verdict(dkim.iter().map(|o| o.result())),
                    dmarc_verdict(&dmarc.result()),
                )
            }
            None => (Verdict::ProcessingFailed, Verdict::ProcessingFailed),
        };
        Verdicts {
            spam: if contains_anywhere(raw, GTUBE) {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            virus: if contains_anywhere(raw, EICAR) {
                Verdict::Fail
            } else {
                Verdict::Pass
            },
            spf: spf_verdict(spf.result()),
            dkim,
            dmarc,
        }
    }
}

/// SES's word for an SPF result: a soft fail is a fail (the domain says the host is not its).
fn spf_verdict(r: SpfResult) -> Verdict {
    match r {
        SpfResult::Pass => Verdict::Pass,
        SpfResult::Fail | SpfResult::SoftFail => Verdict::Fail,
        SpfResult::Neutral | SpfResult::None => Verdict::Gray,
        SpfResult::TempError | SpfResult::PermError => Verdict::ProcessingFailed,
    }
}

/// Any passing signature passes; no signature is gray.
fn dkim_verdict<'a>(results: impl Iterator<Item = &'a DkimResult>) -> Verdict {
    let mut out = Verdict::Gray;
    for r in results {
        match r {
            DkimResult::Pass => return Verdict::Pass,
            DkimResult::Fail(_) | DkimResult::PermError(_) | DkimResult::Neutral(_) => {
                out = Verdict::Fail
            }
            DkimResult::TempError(_) if out == Verdict::Gray => out = Verdict::ProcessingFailed,
            _ => {}
        }
    }
    out
}

fn dmarc_verdict(r: &DmarcResult) -> Verdict {
    match r {
        DmarcResult::Pass => Verdict::Pass,
        DmarcResult::Fail(_) => Verdict::Fail,
        DmarcResult::None => Verdict::Gray,
        DmarcResult::TempError(_) | DmarcResult::PermError(_) => Verdict::ProcessingFailed,
    }
}

/// `needle` in the raw bytes or in any decoded part (an attachment in base64).
fn contains_anywhere(raw: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    let found = |hay: &[u8]| hay.windows(n.len()).any(|w| w == n);
    if found(raw) {
        return true;
    }
    mail_parser::MessageParser::default()
        .parse(raw)
        .is_some_and(|m| m.parts.iter().any(|p| found(p.contents())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eicar_is_found_in_a_base64_attachment() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(EICAR);
        let raw = format!("From: a@b.test\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=eicar.com\r\n\r\n{b64}\r\n--x--\r\n");
        assert!(contains_anywhere(raw.as_bytes(), EICAR));
        assert!(!contains_anywhere(
            b"From: a@b.test\r\n\r\nclean\r\n",
            EICAR
        ));
    }
}
