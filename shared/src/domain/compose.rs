//! Composing mail in the Online Inbox (U3, U5, U8), domain side: drafts and their validation,
//! reply / reply all / forward prefilled from the original, threading headers, the MIME built
//! for SES, the ids that make a retried send send once. Pure: the use case is
//! `crate::app::send_mail`.

use crate::domain::mail::{mailbox_of, MessageSummary};
use crate::domain::mailbox::MessageRef;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
/// At most this many recipients (To + Cc + Bcc) a message (U3).
pub const MAX_RECIPIENTS: usize = 50;
/// The largest message sent, as encoded (attachments in base64): SES v2 `SendEmail` takes
/// 40 MB per message (SES v1 `SendRawEmail` only 10 MB), "including attachments"
/// (docs.aws.amazon.com/ses/latest/dg/attachments.html, .../dg/quotas.html).
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;
/// Longest subject accepted.
pub const MAX_SUBJECT: usize = 998;

/// An attachment of a message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What the user asked to send, as entered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The mailbox it is sent from (their own or a delegated one).
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<OutgoingAttachment>,
}

/// Why a message was not sent (U3), each with a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("You cannot send from {0}: it is neither your own mailbox nor one delegated to you.")]
    FromNotAllowed(String),
    #[error("The {0} contains a line break, which is not allowed in a header.")]
    LineBreak(&'static str),
    #[error("'{0}' is not an email address.")]
    BadAddress(String),
    #[error("A message may have at most {MAX_RECIPIENTS} recipients; this one has {0}.")]
    TooManyRecipients(usize),
    #[error("Add at least one recipient.")]
    NoRecipients,
    #[error("The message is too large ({0} bytes); the limit is {MAX_MESSAGE_BYTES} bytes.")]
    TooLarge(usize),
    #[error("The subject is too long (at most {MAX_SUBJECT} characters).")]
    SubjectTooLong,
}

/// The original message a reply or forward refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    pub message_id: String,
    /// Its `References`, oldest first, without angle brackets.
    pub references: Vec<String>,
    pub from: Option<String>,
    pub reply_to: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    pub text: String,
    pub attachments: Vec<OutgoingAttachment>,
}

/// How a message relates to an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComposeMode {
    New,
    Reply,
    ReplyAll,
    Forward,
}

impl ComposeMode {
    pub fn from_name(s: &str) -> Option<ComposeMode> {
        match s {
            "new" | "" => Some(ComposeMode::New),
            "reply" => Some(ComposeMode::Reply),
            "reply-all" => Some(ComposeMode::ReplyAll),
            "forward" => Some(ComposeMode::Forward),
            _ => None,
        }
    }
}

/// Splits an address field as typed (commas, semicolons, new lines) into addresses.
pub fn split_addresses(s: &str) -> Vec<String> {
    s.split([',', ';', '\n', '\r'])
        .map(|a| {
            let a = a.trim();
            // "Name <addr>" -> addr
            match (a.rfind('<'), a.rfind('>')) {
                (Some(l), Some(r)) if l < r => a[l + 1..r].trim().to_string(),
                _ => a.to_string(),
            }
        })
        .filter(|a| !a.is_empty())
        .collect()
}

/// The subject of a reply (`Re: `) or forward (`Fwd: `), without stacking prefixes.
pub fn prefixed_subject(mode: ComposeMode, subject: &str) -> String {
    let s = subject.trim();
    let lower = s.to_ascii_lowercase();
    match mode {
        ComposeMode::Reply | ComposeMode::ReplyAll if !lower.starts_with("re:") => {
            format!("Re: {s}")
        }
        ComposeMode::Forward if !lower.starts_with("fwd:") && !lower.starts_with("fw:") => {
            format!("Fwd: {s}")
        }
        _ => s.to_string(),
    }
}

/// A draft prefilled for a reply, reply all or forward of `original`, from `mailbox`.
pub fn prefill(mode: ComposeMode, mailbox: &str, original: &Original) -> Draft {
    let me = mailbox.to_ascii_lowercase();
    let sender: Vec<String> = if !original.reply_to.is_empty() {
        original.reply_to.clone()
    } else {
        original.from.iter().cloned().collect()
    };
    let mut to = Vec::new();
    let mut cc = Vec::new();
    match mode {
        ComposeMode::Reply => to = sender,
        ComposeMode::ReplyAll => {
            to = sender;
            to.extend(original.to.iter().cloned());
            cc = original.cc.clone();
        }
        _ => {}
    }
    let norm = |v: Vec<String>, seen: &mut Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter_map(|a| mailbox_of(&a))
            .filter(|a| {
                let keep = *a != me && !seen.contains(a);
                if keep {
                    seen.push(a.clone());
                }
                keep
            })
            .collect()
    };
    let mut seen = Vec::new();
    let to = norm(to, &mut seen);
    let cc = norm(cc, &mut seen);
    let to = if to.is_empty() && mode == ComposeMode::Reply {
        // Replying to one's own message: to its recipients.
        original.from.iter().filter_map(|a| mailbox_of(a)).collect()
    } else {
        to
    };
    let when = original
        .date
        .map(|d| d.format("%a, %d %b %Y %H:%M UTC").to_string())
        .unwrap_or_else(|| "an earlier date".into());
    let who = original.from.clone().unwrap_or_else(|| "someone".into());
    let text = match mode {
        ComposeMode::New => String::new(),
        ComposeMode::Reply | ComposeMode::ReplyAll => {
            let quoted: String = original
                .text
                .lines()
                .map(|l| format!("> {l}\n"))
                .collect();
            format!("\n\nOn {when}, {who} wrote:\n{quoted}")
        }
        ComposeMode::Forward => format!(
            "\n\n---------- Forwarded message ----------\nFrom: {who}\nDate: {when}\nSubject: {}\nTo: {}\n\n{}",
            original.subject,
            original.to.join(", "),
            original.text
        ),
    };
    Draft {
        from: mailbox.to_string(),
        to,
        cc,
        bcc: vec![],
        subject: prefixed_subject(mode, &original.subject),
        text,
        attachments: if mode == ComposeMode::Forward {
            original.attachments.clone()
        } else {
            vec![]
        },
    }
}

/// A validated message, ready to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidDraft {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<OutgoingAttachment>,
}

impl ValidDraft {
    /// Every envelope recipient.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

fn no_breaks(field: &'static str, v: &str) -> Result<(), ComposeError> {
    if v.contains(['\r', '\n']) {
        Err(ComposeError::LineBreak(field))
    } else {
        Ok(())
    }
}

/// Checks a draft (U3): From one of `allowed` (the user's own and delegated mailboxes), no line
/// break in any header value, real addresses, 1 to [`MAX_RECIPIENTS`] recipients, at most
/// [`MAX_MESSAGE_BYTES`] (the attachments counted as base64).
pub fn validate(draft: &Draft, allowed: &[String]) -> Result<ValidDraft, ComposeError> {
    no_breaks("From address", &draft.from)?;
    let from = mailbox_of(&draft.from)
        .filter(|f| allowed.iter().any(|a| a.eq_ignore_ascii_case(f)))
        .ok_or_else(|| ComposeError::FromNotAllowed(draft.from.trim().to_string()))?;
    no_breaks("subject", &draft.subject)?;
    if draft.subject.chars().count() > MAX_SUBJECT {
        return Err(ComposeError::SubjectTooLong);
    }
    let mut lists = Vec::new();
    for (field, list) in [("To", &draft.to), ("Cc", &draft.cc), ("Bcc", &draft.bcc)] {
        let mut out = Vec::new();
        for a in list {
            no_breaks(field, a)?;
            out.push(mailbox_of(a).ok_or_else(|| ComposeError::BadAddress(a.clone()))?);
        }
        lists.push(out);
    }
    for a in &draft.attachments {
        no_breaks("attachment name", &a.name)?;
        no_breaks("attachment type", &a.content_type)?;
    }
    let bcc = lists.pop().unwrap_or_default();
    let cc = lists.pop().unwrap_or_default();
    let to = lists.pop().unwrap_or_default();
    let count = to.len() + cc.len() + bcc.len();
    if count == 0 {
        return Err(ComposeError::NoRecipients);
    }
    if count > MAX_RECIPIENTS {
        return Err(ComposeError::TooManyRecipients(count));
    }
    let size = draft.text.len()
        + draft.subject.len()
        + draft
            .attachments
            .iter()
            .map(|a| a.data.len().div_ceil(3) * 4)
            .sum::<usize>();
    if size > MAX_MESSAGE_BYTES {
        return Err(ComposeError::TooLarge(size));
    }
    Ok(ValidDraft {
        from,
        to,
        cc,
        bcc,
        subject: draft.subject.trim().to_string(),
        text: draft.text.replace("\r\n", "\n"),
        attachments: draft.attachments.clone(),
    })
}

/// A message id the service gives the mail it sends: stable for one idempotency key.
pub fn sent_message_id(mailbox: &str, idempotency_key: &str, domain: &str) -> String {
    let h = Sha256::digest(format!("{mailbox}\n{idempotency_key}").as_bytes());
    format!("{}@{}", hex::encode(&h[..16]), domain)
}

/// The id of a sent item (letters and digits): stable for one idempotency key.
pub fn sent_id(mailbox: &str, idempotency_key: &str) -> String {
    let h = Sha256::digest(format!("sent\n{mailbox}\n{idempotency_key}").as_bytes());
    hex::encode(&h[..16])
}

/// Builds the MIME message (U3). `sender` is the signed-in user when they send on behalf of a
/// delegated mailbox (a `Sender` header); `reply_to` the original for threading headers.
/// The Bcc recipients are not written into the message (they are envelope recipients only).
pub fn build_mime(
    d: &ValidDraft,
    sender: Option<&str>,
    message_id: &str,
    original: Option<&Original>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ComposeError> {
    use mail_builder::headers::address::Address;
    use mail_builder::headers::message_id::MessageId;
    let mut b = mail_builder::MessageBuilder::new()
        .from(Address::from(d.from.clone()))
        .subject(d.subject.clone())
        .message_id(message_id.to_string())
        .date(now.timestamp())
        .text_body(d.text.replace('\n', "\r\n"));
    if !d.to.is_empty() {
        b = b.to(Address::new_list(
            d.to.iter().map(|a| Address::from(a.clone())).collect(),
        ));
    }
    if !d.cc.is_empty() {
        b = b.cc(Address::new_list(
            d.cc.iter().map(|a| Address::from(a.clone())).collect(),
        ));
    }
    if let Some(s) = sender.filter(|s| !s.eq_ignore_ascii_case(&d.from)) {
        b = b.sender(Address::from(s.to_string()));
    }
    if let Some(o) = original.filter(|o| !o.message_id.is_empty()) {
        let mut refs: Vec<String> = o.references.clone();
        if !refs.contains(&o.message_id) {
            refs.push(o.message_id.clone());
        }
        b = b
            .in_reply_to(MessageId::new(o.message_id.clone()))
            .references(MessageId::new_list(refs.into_iter()));
    }
    for a in &d.attachments {
        b = b.attachment(a.content_type.clone(), a.name.clone(), a.data.clone());
    }
    let raw = b
        .write_to_vec()
        .map_err(|_| ComposeError::TooLarge(MAX_MESSAGE_BYTES + 1))?;
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ComposeError::TooLarge(raw.len()));
    }
    Ok(raw)
}

/// Reads what a reply or forward needs of a raw message.
pub fn original_of(raw: &[u8], summary: &MessageSummary) -> Original {
    use mail_parser::{MessageParser, MimeHeaders};
    let Some(m) = MessageParser::default().parse(raw) else {
        return Original {
            message_id: summary.message_id.clone(),
            from: summary.from.clone(),
            to: summary.to.clone(),
            cc: summary.cc.clone(),
            subject: summary.subject.clone().unwrap_or_default(),
            date: summary.date,
            ..Original::default()
        };
    };
    let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref())
                .map(|x| x.to_string())
                .collect()
        })
        .unwrap_or_default()
    };
    let references = m
        .references()
        .as_text_list()
        .map(|l| l.iter().map(|x| x.to_string()).collect())
        .or_else(|| m.references().as_text().map(|t| vec![t.to_string()]))
        .unwrap_or_default();
    let text = m
        .body_text(0)
        .map(|t| t.into_owned())
        .or_else(|| m.body_html(0).map(|h| html_to_text(&h)))
        .unwrap_or_default();
    let attachments = m
        .attachments()
        .map(|p| OutgoingAttachment {
            name: p
                .attachment_name()
                .map(crate::domain::mail::clean_text)
                .unwrap_or_else(|| "attachment".into()),
            content_type: p
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into()),
            data: p.contents().to_vec(),
        })
        .collect();
    Original {
        message_id: summary.message_id.clone(),
        references,
        from: summary.from.clone(),
        reply_to: addrs(m.reply_to()),
        to: summary.to.clone(),
        cc: summary.cc.clone(),
        subject: summary.subject.clone().unwrap_or_default(),
        date: summary.date,
        text,
        attachments,
    }
}

/// A crude text rendering of HTML (for quoting an HTML-only message): tags dropped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What an idempotency key found (U3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendClaim {
    /// This call sends.
    Claimed,
    /// The send happened (or may have): never sent again; what is left to do is in the record.
    Settled(SentRecord),
    /// Another call is sending it now.
    InProgress,
}

/// A send that is over as far as the mail service goes: SES accepted it, or its answer never
/// came (a timeout, a dropped connection, a 5xx, or a claim left behind by a process that
/// stopped): then it may have been sent and is never sent again automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// The item in Sent Items (filed, or to file).
    pub r#ref: MessageRef,
    /// SES accepted it; `false`: unconfirmed.
    pub confirmed: bool,
    /// A copy is to be queued for the mailbox on the organisation's server (U8).
    pub copy: bool,
    /// Filed in Sent Items, indexed and copied: nothing left to do.
    pub complete: bool,
}

/// How a claimed send ended with the mail service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// SES accepted it: its message id, and whether the copy to the server is wanted.
    Accepted { provider_id: String, copy: bool },
    /// No definite answer: it may have been sent (why, for the record).
    Unconfirmed { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn draft() -> Draft {
        Draft {
            from: "bob@acme.test".into(),
            to: vec!["Alice@Example.org".into()],
            subject: "Hello".into(),
            text: "Hi\nthere".into(),
            ..Draft::default()
        }
    }
    #[test]
    fn compose_refusals() {
        let allowed = vec!["bob@acme.test".to_string(), "sales@acme.test".to_string()];
        assert!(validate(&draft(), &allowed).is_ok());
        let mut d = draft();
        d.from = "ceo@acme.test".into();
        assert!(matches!(
            validate(&d, &allowed),
            Err(ComposeError::FromNotAllowed(_))
        ));
        let mut d = draft();
        d.subject = "hi\r\nBcc: victim@x.test".into();
        assert_eq!(
            validate(&d, &allowed),
            Err(ComposeError::LineBreak("subject"))
        );
        let mut d = draft();
        d.to = vec!["a@b.test\nBcc: c@d.test".into()];
        assert_eq!(validate(&d, &allowed), Err(ComposeError::LineBreak("To")));
        let mut d = draft();
        d.to = (0..51).map(|i| format!("u{i}@x.test")).collect();
        assert_eq!(
            validate(&d, &allowed),
            Err(ComposeError::TooManyRecipients(51))
        );
        let mut d = draft();
        d.to = (0..30).map(|i| format!("u{i}@x.test")).collect();
        d.bcc = (0..21).map(|i| format!("b{i}@x.test")).collect();
        assert_eq!(
            validate(&d, &allowed),
            Err(ComposeError::TooManyRecipients(51))
        );
        let mut d = draft();
        d.to = vec![];
        assert_eq!(validate(&d, &allowed), Err(ComposeError::NoRecipients));
        let mut d = draft();
        d.attachments = vec![OutgoingAttachment {
            name: "big.bin".into(),
            content_type: "application/octet-stream".into(),
            data: vec![0; MAX_MESSAGE_BYTES],
        }];
        assert!(matches!(
            validate(&d, &allowed),
            Err(ComposeError::TooLarge(_))
        ));
        let mut d = draft();
        d.to = vec!["not-an-address".into()];
        assert!(matches!(
            validate(&d, &allowed),
            Err(ComposeError::BadAddress(_))
        ));
    }
    #[test]
    fn replies_thread_and_quote() {
        let o = Original {
            message_id: "m2@example.org".into(),
            references: vec!["m1@example.org".into()],
            from: Some("alice@example.org".into()),
            to: vec!["bob@acme.test".into(), "carol@acme.test".into()],
            cc: vec!["dan@example.org".into()],
            subject: "Plans".into(),
            text: "line one\nline two".into(),
            ..Original::default()
        };
        let d = prefill(ComposeMode::ReplyAll, "bob@acme.test", &o);
        assert_eq!(d.subject, "Re: Plans");
        assert_eq!(d.to, vec!["alice@example.org", "carol@acme.test"]);
        assert_eq!(d.cc, vec!["dan@example.org"]);
        assert!(d.text.contains("> line one\n> line two"));
        let v = validate(&d, &["bob@acme.test".into()]).unwrap();
        let raw = build_mime(
            &v,
            None,
            "r1@acme.test",
            Some(&o),
            t("2026-11-23T10:00:00Z"),
        )
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("In-Reply-To: <m2@example.org>"), "{text}");
        assert!(
            text.contains("References: <m1@example.org> <m2@example.org>"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <r1@acme.test>"));
        let single = prefill(ComposeMode::Reply, "bob@acme.test", &o);
        assert_eq!(single.to, vec!["alice@example.org"]);
        assert!(single.cc.is_empty());
        assert_eq!(prefixed_subject(ComposeMode::Reply, "RE: x"), "RE: x");
        assert_eq!(prefixed_subject(ComposeMode::Forward, "x"), "Fwd: x");
    }
    #[test]
    fn delegates_send_on_behalf_and_bcc_stays_off_the_headers() {
        let d = Draft {
            from: "sales@acme.test".into(),
            bcc: vec!["hidden@x.test".into()],
            ..draft()
        };
        let v = validate(&d, &["bob@acme.test".into(), "sales@acme.test".into()]).unwrap();
        assert_eq!(v.recipients(), vec!["alice@example.org", "hidden@x.test"]);
        let raw = build_mime(&v, Some("bob@acme.test"), "x@acme.test", None, Utc::now()).unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("From: <sales@acme.test>"), "{text}");
        assert!(text.contains("Sender: <bob@acme.test>"), "{text}");
        assert!(!text.contains("hidden@x.test"));
    }
    #[test]
    fn forwards_keep_attachments() {
        let raw = b"From: a@example.org\r\nTo: bob@acme.test\r\nSubject: Report\r\nMessage-ID: <f1@example.org>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let s = crate::domain::mail::summarize(raw);
        let o = original_of(raw, &s);
        let d = prefill(ComposeMode::Forward, "bob@acme.test", &o);
        assert_eq!(d.subject, "Fwd: Report");
        assert_eq!(d.attachments.len(), 1);
        assert_eq!(d.attachments[0].name, "r.pdf");
        assert_eq!(d.attachments[0].data, b"%PDF-");
        assert!(d.text.contains("see attached"));
    }
}
