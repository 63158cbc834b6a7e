//! What SES receiving judged of a message (Q9, Q10), and the honest MTA hop built on it.
//!
//! SES scans every message its receipt rule covers (`ScanEnabled`) and hands the inbound
//! function five verdicts: spam, virus, SPF, DKIM, DMARC (`receipt.spamVerdict` ... in the
//! event). Three rules follow from them:
//! - a virus is never filed nor delivered: it is set aside (quarantined) with its reason;
//! - spam is delivered with `X-Spam-Flag: YES` and filed in the mailbox's spam folder, apart
//!   from the Online Inbox's main view;
//! - a delivery status notification goes only to a sender whose domain passed SPF or DMARC for
//!   this message (no backscatter to forged senders).
//!
//! Each delivery to the organisation's server carries a `Received:` trace field and an
//! `Authentication-Results:` field (RFC 8601) with SES's SPF, DKIM and DMARC verdicts under the
//! service's own host name, so that the server can judge; fields that claim to be ours already
//! (a sender forging a pass) are removed first, as RFC 8601 section 5 asks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One verdict as SES reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not judged: no policy published (SPF, DMARC), no signature (DKIM), not scanned.
    #[default]
    Gray,
    /// SES could not judge (a DNS failure, a scan error).
    ProcessingFailed,
}

impl Verdict {
    /// The RFC 8601 result word for an authentication method.
    pub fn result(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Gray => "none",
            Verdict::ProcessingFailed => "temperror",
        }
    }

    /// As SES writes it (`PASS`, `FAIL`, `GRAY`, `PROCESSING_FAILED`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Gray => "GRAY",
            Verdict::ProcessingFailed => "PROCESSING_FAILED",
        }
    }
}

/// The five verdicts of one received message. A verdict missing from the event (a rule without
/// scanning, an item stored before verdicts were kept) reads as [`Verdict::Gray`]: not judged,
/// so never a reason to bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Verdicts {
    pub spam: Verdict,
    pub virus: Verdict,
    pub spf: Verdict,
    pub dkim: Verdict,
    pub dmarc: Verdict,
}

/// What becomes of a received message, by its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Filed and delivered as usual.
    Ordinary,
    /// Delivered with a spam flag, filed in the spam folder.
    Spam,
    /// Neither filed nor delivered: set aside for administrators.
    Quarantine,
}

impl Verdicts {
    /// Every verdict a pass: what the service says of mail it originated itself.
    pub const ALL_PASS: Verdicts = Verdicts {
        spam: Verdict::Pass,
        virus: Verdict::Pass,
        spf: Verdict::Pass,
        dkim: Verdict::Pass,
        dmarc: Verdict::Pass,
    };

    /// Quarantine for a virus, the spam folder for spam, otherwise as usual.
    pub fn disposition(&self) -> Disposition {
        if self.virus == Verdict::Fail {
            Disposition::Quarantine
        } else if self.spam == Verdict::Fail {
            Disposition::Spam
        } else {
            Disposition::Ordinary
        }
    }

    /// Q10: whether a bounce may go to the envelope sender: only when the sender's domain
    /// passed SPF (the sending host may use it) or DMARC (the message is aligned with it) for
    /// this message. Anything else may be a forged sender, and a bounce would be backscatter.
    pub fn sender_authenticated(&self) -> bool {
        self.spf == Verdict::Pass || self.dmarc == Verdict::Pass
    }

    /// Why a bounce was withheld, for the queue view and the audit.
    pub fn why_no_bounce(&self) -> String {
        format!(
            "no bounce sent: the sender's domain passed neither SPF ({}) nor DMARC ({}) for this message, so the sender may be forged",
            self.spf.result(),
            self.dmarc.result()
        )
    }
}

/// Where a queued message came from, which decides its trace fields and whether it may bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "origin")]
pub enum Origin {
    /// Received by SES, with its verdicts.
    Received { verdicts: Verdicts },
    /// Sent by a signed-in user through the service (the copy to the server, U8): the sender
    /// is who signed in.
    Submitted,
}

impl Origin {
    pub fn may_bounce(&self) -> bool {
        match self {
            Origin::Received { verdicts } => verdicts.sender_authenticated(),
            Origin::Submitted => true,
        }
    }

    pub fn why_no_bounce(&self) -> String {
        match self {
            Origin::Received { verdicts } => verdicts.why_no_bounce(),
            Origin::Submitted => String::new(),
        }
    }
}

/// What the trace fields of one delivery say.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The service's host name (`SMTP_HELO_NAME`): the `by` of `Received:` and the authserv-id
    /// of `Authentication-Results:`.
    pub host: &'a str,
    /// The SES message id (or the service's own id), as the trace's `id`.
    pub id: &'a str,
    /// When the service received it.
    pub received_at: DateTime<Utc>,
    /// The envelope sender (`smtp.mailfrom`), empty for `<>`.
    pub sender: &'a str,
    /// The recipients of this delivery; `for` is written only for a single one (a trace field
    /// must not tell one recipient who else got the message).
    pub recipients: &'a [String],
    pub origin: Origin,
}

/// Header fields the service writes and so removes from what arrives: ours must be the only
/// ones a downstream server reads under our name.
const SPAM_FLAG: &str = "X-Spam-Flag";

/// The message as delivered: the trace fields, then the original bytes, except for
/// `Authentication-Results:` fields that claim the service's host name and `X-Spam-Flag:`
/// fields (forgeries a downstream filter would otherwise believe). Nothing else is touched.
pub fn stamp(raw: &[u8], hop: &Hop<'_>) -> Vec<u8> {
    let mut out = trace_fields(raw, hop).into_bytes();
    out.extend_from_slice(&strip_claims(raw, hop.host));
    out
}

/// `Received:` and, for received mail, `Authentication-Results:` (and the spam flag).
pub fn trace_fields(raw: &[u8], hop: &Hop<'_>) -> String {
    let host = one_token(hop.host);
    let id = one_token(hop.id);
    let date = hop.received_at.to_rfc2822();
    let for_clause = match hop.recipients {
        [one] if !one.is_empty() => format!("\r\n\tfor <{}>", one_token(one)),
        _ => String::new(),
    };
    let mut out = String::new();
    match hop.origin {
        Origin::Received { verdicts } => {
            out.push_str(&format!(
                "Received: from amazonses.com (Amazon SES receiving)\r\n\tby {host} (email continuity) with ESMTP id {id}{for_clause};\r\n\t{date}\r\n"
            ));
            let mailfrom = if hop.sender.is_empty() {
                String::new()
            } else {
                format!(" smtp.mailfrom={}", one_token(hop.sender))
            };
            let from = header_from_domain(raw)
                .map(|d| format!(" header.from={}", one_token(&d)))
                .unwrap_or_default();
            out.push_str(&format!(
                "Authentication-Results: {host};\r\n\tspf={}{mailfrom};\r\n\tdkim={} (verdict of Amazon SES receiving);\r\n\tdmarc={}{from}\r\n",
                verdicts.spf.result(),
                verdicts.dkim.result(),
                verdicts.dmarc.result(),
            ));
            if verdicts.spam == Verdict::Fail {
                out.push_str(&format!("{SPAM_FLAG}: YES\r\n"));
            }
        }
        Origin::Submitted => {
            out.push_str(&format!(
                "Received: from a signed-in user of email continuity\r\n\tby {host} (email continuity) with HTTPS id {id}{for_clause};\r\n\t{date}\r\n"
            ));
        }
    }
    out
}

/// A value fit for one header token: no spaces, controls or separators.
fn one_token(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !";<>()\"\\".contains(*c))
        .take(320)
        .collect()
}

/// The domain of the `From:` header field (DMARC's `header.from`).
pub fn header_from_domain(raw: &[u8]) -> Option<String> {
    let head = crate::domain::mail::header_block(raw);
    let parsed = mail_parser::MessageParser::default().parse_headers(head)?;
    let addr = parsed.from()?.first()?.address.as_deref()?.to_string();
    let (_, domain) = addr.rsplit_once('@')?;
    let d = domain.trim().to_ascii_lowercase();
    (!d.is_empty()).then_some(d)
}

/// `raw` without the header fields (with their continuation lines) that claim to be ours.
fn strip_claims(raw: &[u8], host: &str) -> Vec<u8> {
    let head = crate::domain::mail::header_block(raw);
    let body = &raw[head.len()..];
    let mut out = Vec::with_capacity(raw.len());
    let mut lines = head.split_inclusive(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let mut field = line.to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                field.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        if !claims_to_be_ours(&field, host) {
            out.extend_from_slice(&field);
        }
    }
    out.extend_from_slice(body);
    out
}

fn claims_to_be_ours(field: &[u8], host: &str) -> bool {
    let text = String::from_utf8_lossy(field);
    let Some((name, value)) = text.split_once(':') else {
        return false;
    };
    let name = name.trim();
    if name.eq_ignore_ascii_case(SPAM_FLAG) {
        return true;
    }
    if !name.eq_ignore_ascii_case("Authentication-Results") {
        return false;
    }
    // The authserv-id is the first token, before the first ';' (comments aside).
    let id = value
        .split(';')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    id.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().expect("time")
    }

    fn verdicts(spf: Verdict, dmarc: Verdict) -> Verdicts {
        Verdicts {
            spf,
            dmarc,
            ..Verdicts::default()
        }
    }

    #[test]
    fn dispositions() {
        let mut v = Verdicts::ALL_PASS;
        assert_eq!(v.disposition(), Disposition::Ordinary);
        v.spam = Verdict::Fail;
        assert_eq!(v.disposition(), Disposition::Spam);
        v.virus = Verdict::Fail;
        assert_eq!(v.disposition(), Disposition::Quarantine, "a virus wins");
        assert_eq!(Verdicts::default().disposition(), Disposition::Ordinary);
    }

    #[test]
    fn bounces_only_to_authenticated_senders() {
        use Verdict::*;
        for (spf, dmarc, ok) in [
            (Pass, Fail, true),
            (Fail, Pass, true),
            (Fail, Fail, false),
            (Gray, Gray, false),
            (ProcessingFailed, Gray, false),
            (Fail, Gray, false),
        ] {
            assert_eq!(
                verdicts(spf, dmarc).sender_authenticated(),
                ok,
                "{spf:?} {dmarc:?}"
            );
        }
        assert!(Origin::Submitted.may_bounce());
        assert!(!Origin::Received {
            verdicts: Verdicts::default()
        }
        .may_bounce());
    }

    #[test]
    fn the_ses_names_are_read() {
        let v: Verdicts =
            serde_json::from_str(r#"{"spam":"FAIL","spf":"PROCESSING_FAILED"}"#).expect("verdicts");
        assert_eq!(v.spam, Verdict::Fail);
        assert_eq!(v.spf, Verdict::ProcessingFailed);
        assert_eq!(v.dkim, Verdict::Gray, "missing: not judged");
    }

    #[test]
    fn a_stamped_message_carries_our_fields_and_no_forged_ones() {
        let raw = b"Authentication-Results: mx.continuity.test;\r\n spf=pass smtp.mailfrom=x@evil.test\r\nAuthentication-Results: other.example; spf=fail\r\nX-Spam-Flag: NO\r\nFrom: Alice <alice@Example.org>\r\nSubject: hi\r\n\r\nAuthentication-Results: mx.continuity.test; body text stays\r\n";
        let rcpts = vec!["bob@acme.test".to_string()];
        let hop = Hop {
            host: "mx.continuity.test",
            id: "ses-1",
            received_at: at(),
            sender: "alice@example.org",
            recipients: &rcpts,
            origin: Origin::Received {
                verdicts: Verdicts {
                    spam: Verdict::Fail,
                    spf: Verdict::Fail,
                    ..Verdicts::ALL_PASS
                },
            },
        };
        let out = String::from_utf8(stamp(raw, &hop)).expect("utf-8");
        assert!(out.starts_with("Received: from amazonses.com"), "{out}");
        assert!(out.contains("by mx.continuity.test (email continuity) with ESMTP id ses-1\r\n\tfor <bob@acme.test>;"));
        assert!(out.contains("Authentication-Results: mx.continuity.test;\r\n\tspf=fail smtp.mailfrom=alice@example.org;\r\n\tdkim=pass (verdict of Amazon SES receiving);\r\n\tdmarc=pass header.from=example.org\r\n"), "{out}");
        assert!(out.contains("X-Spam-Flag: YES\r\n"));
        assert!(!out.contains("X-Spam-Flag: NO"));
        assert!(
            !out.contains("smtp.mailfrom=x@evil.test"),
            "the forged field is gone: {out}"
        );
        assert!(
            out.contains("Authentication-Results: other.example; spf=fail"),
            "others' stay"
        );
        assert!(out.contains("\r\n\r\nAuthentication-Results: mx.continuity.test; body text stays"));
        assert_eq!(
            out.matches("Authentication-Results: mx.continuity.test")
                .count(),
            2
        );
    }

    #[test]
    fn several_recipients_are_not_named_and_submitted_mail_has_no_verdicts() {
        let rcpts = vec!["a@acme.test".to_string(), "b@acme.test".to_string()];
        let hop = Hop {
            host: "mx.continuity.test",
            id: "sent-1",
            received_at: at(),
            sender: "a@acme.test",
            recipients: &rcpts,
            origin: Origin::Submitted,
        };
        let fields = trace_fields(b"From: a@acme.test\r\n\r\nx", &hop);
        assert!(!fields.contains("for <"));
        assert!(!fields.contains("Authentication-Results"));
        assert!(fields.contains("with HTTPS id sent-1"));
    }
}
