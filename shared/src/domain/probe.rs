//! The synthetic outbound probe (D3), domain side: tokens, addresses, the message, the judgement.
//!
//! A probe for organisation `acme` sent at the start of window `n` goes to
//! `probe+acme.n.<nonce>@<receiving domain>`: the recipient alone tells the inbound path which
//! organisation and window it belongs to (one key lookup), and the random nonce, stored when the
//! probe was sent, stops anybody who guesses the scheme from marking probes as arrived.

use crate::domain::config::is_org_id;
use crate::domain::counter::ProbeObservation;
use crate::domain::window::Window;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Header that marks a probe message (Q7: recognised, recorded, shown to nobody).
pub const PROBE_HEADER: &str = "X-Continuity-Probe";

/// Identifies one probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeToken {
    pub org_id: String,
    pub window: Window,
    /// 128 random bits, hex.
    pub nonce: String,
}

impl ProbeToken {
    /// A new token with a fresh random nonce.
    pub fn new(org_id: &str, window: Window) -> Self {
        let nonce: [u8; 16] = rand::random();
        ProbeToken {
            org_id: org_id.to_string(),
            window,
            nonce: hex::encode(nonce),
        }
    }

    /// Parses `acme.123.abcdef...`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (org, win, nonce) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_org_id(org) {
            return None;
        }
        let window = win.parse::<i64>().ok().filter(|w| *w >= 0)?;
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(ProbeToken {
            org_id: org.to_string(),
            window: Window(window),
            nonce: nonce.to_ascii_lowercase(),
        })
    }

    /// The unique recipient: `probe_address` with `+token` added to its local part.
    pub fn recipient(&self, probe_address: &str) -> String {
        match probe_address.rsplit_once('@') {
            Some((local, domain)) => format!("{local}+{self}@{domain}"),
            None => format!("{probe_address}+{self}"),
        }
    }

    /// The token carried by a recipient address, if it is a probe recipient.
    pub fn from_recipient(address: &str) -> Option<Self> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = address.rsplit_once('@')?;
        let (_, token) = local.split_once('+')?;
        Self::parse(token)
    }
}

impl fmt::Display for ProbeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.org_id, self.window.0, self.nonce)
    }
}

/// The name of the secret that holds `org_id`'s probe credential: `{prefix}{org_id}/probe`.
///
/// Derived, never configured: an organisation id is lower-case letters, digits and hyphens, so
/// no organisation's name reaches into another's (`acme` cannot name `acme-eu/probe` or
/// `other/probe`), and the monitor's role may read only `{prefix}*/probe` secrets.
pub fn probe_secret_name(prefix: &str, org_id: &str) -> String {
    format!("{prefix}{org_id}/probe")
}

/// `prefix` if it can be the start of a secret's name that the template's IAM policy names
/// (`<prefix>*/probe-??????`): Secrets Manager's name characters, ending in `/`.
pub fn checked_secret_prefix(prefix: String) -> Result<String, String> {
    let ok = prefix.len() > 1
        && prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
    if ok {
        Ok(prefix)
    } else {
        Err(format!(
            "PROBE_SECRET_PREFIX {prefix:?} must be letters, digits and /_+=.@- ending in '/'"
        ))
    }
}

/// The probe message as sent (RFC 5322, ASCII only, CRLF line ends).
pub fn probe_message(
    token: &ProbeToken,
    from: &str,
    recipient: &str,
    sent_at: DateTime<Utc>,
) -> String {
    let domain = recipient
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("invalid");
    format!(
        "From: {from}\r\n\
         To: {recipient}\r\n\
         Subject: Continuity probe {token}\r\n\
         Date: {date}\r\n\
         Message-ID: <probe.{token}@{domain}>\r\n\
         {PROBE_HEADER}: {token}\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This message checks that this mailbox's server can send mail.\r\n\
         It was sent by the email continuity service and is discarded on arrival.\r\n",
        date = sent_at.to_rfc2822(),
    )
}

/// State of the probe of one window, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub nonce: String,
    pub status: ProbeStatus,
    /// When the send was attempted (claimed).
    pub claimed_at: DateTime<Utc>,
    /// When the organisation's server accepted the probe.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it could not be sent.
    pub error: Option<String>,
    /// When it arrived at the service's receiving domain.
    pub arrived_at: Option<DateTime<Utc>>,
}

/// Where a probe's sending stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeStatus {
    /// Claimed by a run that has not reported back (still sending, or died while sending).
    Sending,
    Sent,
    Failed,
}

/// Judges the probe of a window at the next window start (D3).
///
/// A probe still marked `Sending` at judgement time belongs to a run that died or hung past the
/// window: the service could not show that the server sends mail, so it counts as not sent.
pub fn judge(record: Option<&ProbeRecord>, acceptable_latency_secs: u32) -> ProbeObservation {
    let Some(r) = record else {
        return ProbeObservation::NotAttempted;
    };
    match r.status {
        ProbeStatus::Sending | ProbeStatus::Failed => ProbeObservation::NotSent,
        ProbeStatus::Sent => match r.arrived_at {
            None => ProbeObservation::Missing,
            Some(arrived) => {
                // Latency runs from the send attempt: a server slow to accept is slow mail too.
                let latency = arrived - r.claimed_at;
                if latency <= chrono::Duration::seconds(i64::from(acceptable_latency_secs)) {
                    ProbeObservation::InTime
                } else {
                    ProbeObservation::Late
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn token_round_trips_through_the_recipient() {
        let tok = ProbeToken::new("acme-eu", Window(14_769_000));
        let rcpt = tok.recipient("probe@probe.continuity.example");
        assert!(rcpt.starts_with("probe+acme-eu.14769000."), "{rcpt}");
        assert!(rcpt.ends_with("@probe.continuity.example"));
        assert_eq!(ProbeToken::from_recipient(&rcpt), Some(tok.clone()));
        assert_eq!(ProbeToken::from_recipient(&format!("<{rcpt}>")), Some(tok));
    }

    #[test]
    fn foreign_recipients_are_not_probes() {
        for a in [
            "probe@probe.continuity.example",
            "alice+news@acme.example",
            "probe+acme.1@x.example",
            "probe+acme.-1.00000000000000000000000000000000@x.example",
            "probe+Acme.1.00000000000000000000000000000000@x.example",
            "probe+acme.1.0000000000000000000000000000000g@x.example",
            "probe+acme.1.00000000000000000000000000000000.x@x.example",
        ] {
            assert_eq!(ProbeToken::from_recipient(a), None, "{a}");
        }
    }

    #[test]
    fn message_carries_the_token() {
        let tok = ProbeToken::new("acme", Window(5));
        let m = probe_message(
            &tok,
            "p@acme.example",
            &tok.recipient("probe@svc.example"),
            t("2026-11-22T10:00:00Z"),
        );
        assert!(m.contains(&format!("{PROBE_HEADER}: {tok}\r\n")));
        assert!(m.is_ascii());
        assert!(m.contains("\r\n\r\n"));
    }

    fn rec(status: ProbeStatus, arrived_after: Option<i64>) -> ProbeRecord {
        let claimed = t("2026-11-22T10:00:00Z");
        ProbeRecord {
            nonce: "n".into(),
            status,
            claimed_at: claimed,
            sent_at: Some(claimed),
            error: None,
            arrived_at: arrived_after.map(|s| claimed + chrono::Duration::seconds(s)),
        }
    }

    #[test]
    fn secret_names_are_the_organisations_own() {
        assert_eq!(
            probe_secret_name("continuity/", "acme"),
            "continuity/acme/probe"
        );
        // Every valid organisation id gives a name of its own under the prefix, ending /probe.
        for id in ["acme", "acme-eu", "a", "0-9"] {
            let n = probe_secret_name("continuity/", id);
            assert!(is_org_id(id));
            assert_eq!(n.strip_prefix("continuity/").unwrap().split('/').count(), 2);
            assert!(n.ends_with("/probe"));
        }
        for id in ["../link", "other/probe", "Acme", "a/b"] {
            assert!(!is_org_id(id), "{id} is not an organisation id");
        }
    }

    #[test]
    fn secret_prefixes() {
        assert!(checked_secret_prefix("continuity/".into()).is_ok());
        assert!(checked_secret_prefix("prod/continuity/".into()).is_ok());
        for bad in ["", "/", "continuity", "conti*nuity/", "a b/"] {
            assert!(checked_secret_prefix(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn judgement() {
        use ProbeObservation::*;
        assert_eq!(judge(None, 60), NotAttempted);
        assert_eq!(judge(Some(&rec(ProbeStatus::Sent, Some(60))), 60), InTime);
        assert_eq!(judge(Some(&rec(ProbeStatus::Sent, Some(61))), 60), Late);
        assert_eq!(judge(Some(&rec(ProbeStatus::Sent, None)), 60), Missing);
        assert_eq!(judge(Some(&rec(ProbeStatus::Failed, None)), 60), NotSent);
        assert_eq!(judge(Some(&rec(ProbeStatus::Sending, None)), 60), NotSent);
    }
}
