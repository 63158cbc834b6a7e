//! Inbound messages, domain side (Q2, Q3, Q8): what is filed for a mailbox, and the delivery
//! status notification (RFC 3464) sent when a message cannot be delivered.
//!
//! Parsing is tolerant: [`summarize`] never fails and never panics, whatever the bytes. Broken
//! MIME, 8-bit headers, NUL bytes and missing fields give a summary with what could be read; the
//! message itself is always kept and delivered as it came (the raw bytes are never rewritten).
//!
//! Raw 8-bit header lines that declare no charset are read as UTF-8 when they are valid UTF-8
//! and as windows-1252 otherwise, as mail clients do ([`utf8_headers`]): a Latin-1 "Grüße" is
//! not shown as "Gr��e".

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Longest text [`clean_text`] keeps (characters).
pub const MAX_FILED_TEXT: usize = 998;
/// A text field of the full summary is cut at this many bytes (on a character boundary): the
/// summary keeps every address and attachment name and the whole subject, bounded only by the
/// message's own size and this. What a filing item keeps is cut further, in bytes
/// ([`crate::domain::item_budget::fit`]).
pub const MAX_SUMMARY_TEXT_BYTES: usize = 1024 * 1024;
/// The original headers quoted in a bounce are cut at this many bytes.
pub const MAX_QUOTED_HEADERS: usize = 64 * 1024;
/// The list's one-line preview of the text body, in characters (whitespace collapsed).
pub const PREVIEW_CHARS: usize = 140;

/// What a mailbox shows of a message before it is opened (U1, C2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// The `Message-ID` header without angle brackets, or one derived from the content's hash
    /// (`sha256-<hex>@continuity.invalid`) when the message has none: stable across retries.
    pub message_id: String,
    /// Whether `message_id` was derived rather than read.
    pub message_id_derived: bool,
    pub from: Option<String>,
    /// The sender's display name (`Alice Example` of `Alice Example <alice@example.org>`).
    #[serde(default)]
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub to_count: usize,
    pub cc: Vec<String>,
    pub cc_count: usize,
    pub subject: Option<String>,
    /// The `Date` header, when it could be read.
    pub date: Option<DateTime<Utc>>,
    /// Size of the raw message in bytes.
    pub size: u64,
    /// Attachment names (or content types of unnamed attachments).
    pub attachments: Vec<String>,
    pub kind: MessageKind,
    /// The first [`PREVIEW_CHARS`] characters of the text body, whitespace collapsed.
    #[serde(default)]
    pub preview: Option<String>,
    /// The conversation the message belongs to ([`thread_key`] of the first `References` id,
    /// else `In-Reply-To`, else its own Message-ID).
    #[serde(default)]
    pub thread: String,
}

/// What kind of message it is, for continuity sync (C2): ordinary messages and calendar items
/// are offered during an event; other kinds (reports, receipts) wait until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageKind {
    Message,
    Calendar,
    Other,
}

/// Reads what can be read of `raw`. Never fails. The summary is whole (every address, every
/// attachment name, the whole subject): what is written to an item is cut to its byte budget by
/// [`crate::domain::item_budget::fit`].
pub fn summarize(raw: &[u8]) -> MessageSummary {
    let size = raw.len() as u64;
    let headers_fixed = utf8_headers(raw);
    let parsed = MessageParser::default().parse(&headers_fixed[..]);
    let Some(m) = parsed else {
        let message_id = derived_message_id(raw);
        return MessageSummary {
            thread: thread_key(&message_id),
            message_id,
            message_id_derived: true,
            from: None,
            from_name: None,
            to: vec![],
            to_count: 0,
            cc: vec![],
            cc_count: 0,
            subject: None,
            date: None,
            size,
            attachments: vec![],
            kind: MessageKind::Message,
            preview: None,
        };
    };
    let (message_id, message_id_derived) = match m
        .message_id()
        .map(|id| clean_full(id.trim().trim_start_matches('<').trim_end_matches('>')))
        .filter(|id| !id.is_empty())
    {
        Some(id) => (id, false),
        None => (derived_message_id(raw), true),
    };
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> (Vec<String>, usize) {
        let all: Vec<String> = a
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address.as_deref())
                    .map(clean_full)
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let n = all.len();
        (all, n)
    };
    let (to, to_count) = addresses(m.to());
    let (cc, cc_count) = addresses(m.cc());
    let first_from = m.from().and_then(|a| a.first());
    let from = first_from
        .and_then(|a| a.address.as_deref())
        .map(clean_full)
        .filter(|s| !s.is_empty());
    let from_name = first_from
        .and_then(|a| a.name.as_deref())
        .map(clean_full)
        .map(|n| {
            n.trim_matches(|c| c == '"' || c == '\'' || c == ' ')
                .to_string()
        })
        .filter(|n| !n.is_empty());
    let preview = m
        .body_text(0)
        .map(|t| one_line_preview(&t))
        .filter(|p| !p.is_empty());
    let root = |v: &mail_parser::HeaderValue<'_>| -> Option<String> {
        v.as_text_list()?
            .iter()
            .map(|id| {
                id.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .find(|id| !id.is_empty())
    };
    let thread = thread_key(
        &root(m.references())
            .or_else(|| root(m.in_reply_to()))
            .unwrap_or_else(|| message_id.clone()),
    );
    let subject = m.subject().map(clean_full);
    let date = m
        .date()
        .and_then(|d| DateTime::parse_from_rfc3339(&d.to_rfc3339()).ok())
        .map(|d| d.with_timezone(&Utc));
    let attachments = m
        .attachments()
        .map(|p| match p.attachment_name() {
            Some(n) => clean_full(n),
            None => p
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into()),
        })
        .collect();
    let is = |p: &mail_parser::MessagePart<'_>, t: &str, s: &str| {
        p.content_type().is_some_and(|c| {
            c.ctype().eq_ignore_ascii_case(t)
                && c.subtype().is_some_and(|x| x.eq_ignore_ascii_case(s))
        })
    };
    let root = m.parts.first();
    let kind = if root.is_some_and(|r| {
        is(r, "multipart", "report")
            || is(r, "message", "disposition-notification")
            || is(r, "message", "delivery-status")
    }) {
        MessageKind::Other
    } else if m
        .parts
        .iter()
        .any(|p| is(p, "text", "calendar") || is(p, "application", "ics"))
    {
        MessageKind::Calendar
    } else {
        MessageKind::Message
    };
    MessageSummary {
        message_id,
        message_id_derived,
        from,
        from_name,
        to,
        to_count,
        cc,
        cc_count,
        subject,
        date,
        size,
        attachments,
        kind,
        preview,
        thread,
    }
}

/// The thread key of a conversation whose first message has Message-ID `root`: 16 hex
/// characters of its SHA-256 (short on the filing; the same for every reply that names it).
pub fn thread_key(root: &str) -> String {
    hex::encode(&Sha256::digest(root.trim().as_bytes())[..8])
}

/// A text body as the list's one line: whitespace collapsed, control characters gone, at most
/// [`PREVIEW_CHARS`] characters.
pub fn one_line_preview(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= PREVIEW_CHARS {
            break;
        }
    }
    out.chars()
        .filter(|c| !c.is_control())
        .take(PREVIEW_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The raw message with each header line that is not valid UTF-8 re-encoded from windows-1252
/// (a superset of Latin-1) to UTF-8; valid lines, encoded words and the body are untouched.
/// Borrowed (no copy) when every header line is already ASCII or UTF-8, the usual case.
pub fn utf8_headers(raw: &[u8]) -> Cow<'_, [u8]> {
    let end = header_end(raw);
    let head = &raw[..end];
    if head.is_ascii()
        || head
            .split(|b| *b == b'\n')
            .all(|line| std::str::from_utf8(line).is_ok())
    {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 8);
    for (i, line) in head.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        match std::str::from_utf8(line) {
            Ok(_) => out.extend_from_slice(line),
            Err(_) => {
                let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(line);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out.extend_from_slice(&raw[end..]);
    Cow::Owned(out)
}

/// Where the header block ends (after its last line's line break), or the message's length.
fn header_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len())
}

/// A Message-ID for a message that has none, stable for the same bytes.
pub fn derived_message_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    format!("sha256-{}@continuity.invalid", hex::encode(&digest[..16]))
}

/// Text safe to file and show: control characters (NUL, CR, LF, ...) become spaces, and it is
/// cut at [`MAX_FILED_TEXT`] characters.
pub fn clean_text(s: &str) -> String {
    s.chars()
        .take(MAX_FILED_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// As [`clean_text`], cut at [`MAX_SUMMARY_TEXT_BYTES`] bytes instead: the full summary's texts.
pub fn clean_full(s: &str) -> String {
    let cleaned: String = crate::domain::item_budget::prefix_bytes(s, MAX_SUMMARY_TEXT_BYTES)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().to_string()
}

/// The mailbox an envelope address files into: without angle brackets, lower case. `None` for
/// something that is not an address (no `@`, spaces, control characters).
pub fn mailbox_of(address: &str) -> Option<String> {
    let a = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = a.rsplit_once('@')?;
    if local.is_empty()
        || domain.is_empty()
        || a.len() > 320
        || a.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>#".contains(c))
    {
        return None;
    }
    Some(a.to_lowercase())
}

/// The domain of an address, lower case.
pub fn domain_of(address: &str) -> Option<String> {
    mailbox_of(address).and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
}

/// The header block of a raw message (up to the first empty line), cut at
/// [`MAX_QUOTED_HEADERS`] bytes on a line boundary.
pub fn header_block(raw: &[u8]) -> &[u8] {
    let block = &raw[..header_end(raw)];
    if block.len() <= MAX_QUOTED_HEADERS {
        return block;
    }
    let cut = &block[..MAX_QUOTED_HEADERS];
    match cut.iter().rposition(|b| *b == b'\n') {
        Some(p) => &cut[..=p],
        None => cut,
    }
}

/// Why one recipient of a bounced message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    pub address: String,
    /// RFC 3463 status, e.g. `5.1.1` (refused by the server) or `4.4.7` (retention expired).
    pub status: String,
    /// What the server said, or why the service gave up.
    pub diagnostic: String,
}

/// A bounce to send: the DSN's envelope and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The DSN's sender (the service's bounce address).
    pub from: String,
    /// The original message's envelope sender.
    pub to: String,
    pub raw: Vec<u8>,
}

/// Builds a delivery status notification (RFC 3464: `multipart/report` with a human part,
/// `message/delivery-status`, and the original headers as `text/rfc822-headers`).
///
/// Returns `None` when the original sender is empty (`<>`) or not an address: a bounce is never
/// sent to an empty sender (it would answer a bounce with a bounce).
#[allow(clippy::too_many_arguments)]
pub fn delivery_status_notification(
    bounce_sender: &str,
    original_sender: &str,
    original_id: &str,
    arrived_at: DateTime<Utc>,
    now: DateTime<Utc>,
    failed: &[FailedRecipient],
    original_raw: &[u8],
) -> Option<Bounce> {
    let to = mailbox_of(original_sender)?;
    if failed.is_empty() {
        return None;
    }
    let reporting = bounce_sender
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("continuity.invalid");
    let boundary = format!(
        "dsn-{}",
        hex::encode(&Sha256::digest(format!("{original_id}{now}").as_bytes())[..12])
    );
    let crlf = |s: &str| s.replace("\r\n", "\n").replace('\n', "\r\n");
    let human = failed
        .iter()
        .map(|f| format!("  <{}>: {}", one_line(&f.address), one_line(&f.diagnostic)))
        .collect::<Vec<_>>()
        .join("\n");
    let per_recipient = failed
        .iter()
        .map(|f| {
            format!(
                "Final-Recipient: rfc822; {}\nAction: failed\nStatus: {}\nDiagnostic-Code: smtp; {}\nLast-Attempt-Date: {}\n",
                one_line(&f.address),
                one_line(&f.status),
                one_line(&f.diagnostic),
                now.to_rfc2822()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let head = crlf(&format!(
        "From: Mail Delivery System <{bounce_sender}>\n\
         To: <{to}>\n\
         Subject: Undelivered mail returned to sender\n\
         Date: {date}\n\
         Message-ID: <dsn.{id}@{reporting}>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\n\
         \n\
         This is a delivery status notification (RFC 3464).\n\
         \n\
         --{boundary}\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         Your message could not be delivered to these recipients:\n\
         \n\
         {human}\n\
         \n\
         The message arrived at the organisation's continuity service on {arrived}.\n\
         \n\
         --{boundary}\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; {reporting}\n\
         Arrival-Date: {arrived}\n\
         \n\
         {per_recipient}\n\
         --{boundary}\n\
         Content-Type: text/rfc822-headers\n\
         \n",
        date = now.to_rfc2822(),
        id = hex::encode(&Sha256::digest(format!("{original_id}/{to}").as_bytes())[..16]),
        arrived = arrived_at.to_rfc2822(),
    ));
    let mut raw = head.into_bytes();
    // Quoted as UTF-8 (invalid bytes replaced): a report must not carry bytes that no charset names.
    let headers = String::from_utf8_lossy(header_block(original_raw)).replace('\0', " ");
    raw.extend_from_slice(headers.as_bytes());
    if !headers.ends_with('\n') {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Some(Bounce {
        from: bounce_sender.to_string(),
        to,
        raw,
    })
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_message() {
        let raw = b"From: Alice <alice@example.org>\r\nTo: bob@acme.test, Carol <carol@acme.test>\r\nCc: dan@acme.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <abc@example.org>\r\n\r\nHello\r\n";
        let s = summarize(raw);
        assert_eq!(s.message_id, "abc@example.org");
        assert!(!s.message_id_derived);
        assert_eq!(s.from.as_deref(), Some("alice@example.org"));
        assert_eq!(s.to, vec!["bob@acme.test", "carol@acme.test"]);
        assert_eq!(s.cc, vec!["dan@acme.test"]);
        assert_eq!(s.subject.as_deref(), Some("Grüße"));
        assert_eq!(
            s.date,
            Some(
                DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .to_utc()
            )
        );
        assert_eq!(s.kind, MessageKind::Message);
        assert_eq!(s.size, raw.len() as u64);
    }

    #[test]
    fn raw_8bit_headers_are_utf8_when_valid_and_windows_1252_otherwise() {
        // Latin-1 / windows-1252 bytes, as old clients send them: ü ß ö, and 0x80 (the euro sign).
        let latin1 = b"From: J\xfcrgen <j@example.org>\r\nSubject: Gr\xfc\xdfe aus K\xf6ln \x80\r\n\r\nbody \xfc stays\r\n";
        let s = summarize(latin1);
        assert_eq!(s.subject.as_deref(), Some("Grüße aus Köln €"));
        assert_eq!(s.from_name.as_deref(), Some("Jürgen"));
        assert_eq!(s.from.as_deref(), Some("j@example.org"));
        // Raw UTF-8 is read as UTF-8 (not as windows-1252 mojibake).
        let utf8 = "Subject: Grüße 日本\r\n\r\nx\r\n".as_bytes();
        assert_eq!(summarize(utf8).subject.as_deref(), Some("Grüße 日本"));
        // Line by line: one Latin-1 header does not change a UTF-8 one beside it.
        let mixed = b"Subject: \xc3\xa9t\xc3\xa9\r\nFrom: Ren\xe9 <r@example.org>\r\n\r\n";
        let m = summarize(mixed);
        assert_eq!(m.subject.as_deref(), Some("été"));
        assert_eq!(m.from_name.as_deref(), Some("René"));
        // Encoded words still win, and the body bytes are left as they are.
        let fixed = utf8_headers(latin1);
        assert!(fixed.ends_with(b"body \xfc stays\r\n"));
        assert!(matches!(utf8_headers(utf8), Cow::Borrowed(_)));
    }

    #[test]
    fn preview_is_one_line_of_the_text() {
        let raw =
            b"From: a@b.test\r\nSubject: x\r\n\r\n  Hello\r\n\r\n\tworld,  how   are\r\nyou?\r\n";
        assert_eq!(
            summarize(raw).preview.as_deref(),
            Some("Hello world, how are you?")
        );
        let long = format!("From: a@b.test\r\n\r\n{}\r\n", "word ".repeat(100));
        let p = summarize(long.as_bytes()).preview.unwrap_or_default();
        assert!(
            (PREVIEW_CHARS - 5..=PREVIEW_CHARS).contains(&p.chars().count()),
            "{p}"
        );
        assert!(summarize(b"From: a@b.test\r\n\r\n").preview.is_none());
        let html = b"From: a@b.test\r\nContent-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n";
        assert_eq!(summarize(html).preview.as_deref(), Some("Hi there"));
    }

    #[test]
    fn a_thread_is_keyed_by_its_first_message() {
        let root = summarize(b"Message-ID: <root@x>\r\nSubject: Plan\r\n\r\n");
        let reply = summarize(b"Message-ID: <r1@x>\r\nIn-Reply-To: <root@x>\r\n\r\n");
        let deeper = summarize(
            b"Message-ID: <r2@x>\r\nIn-Reply-To: <r1@x>\r\nReferences: <root@x>\r\n <r1@x>\r\n\r\n",
        );
        let other = summarize(b"Message-ID: <other@x>\r\n\r\n");
        assert_eq!(root.thread, thread_key("root@x"));
        assert_eq!(reply.thread, root.thread);
        assert_eq!(deeper.thread, root.thread);
        assert_ne!(other.thread, root.thread);
        assert_eq!(root.thread.len(), 16);
    }

    #[test]
    fn calendar_and_report_kinds() {
        let cal = b"From: a@b.test\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n--x--\r\n";
        assert_eq!(summarize(cal).kind, MessageKind::Calendar);
        let report = b"From: a@b.test\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nbounced\r\n--x--\r\n";
        assert_eq!(summarize(report).kind, MessageKind::Other);
    }

    #[test]
    fn no_message_id_gives_a_stable_derived_one() {
        let raw = b"From: a@b.test\r\nSubject: x\r\n\r\nbody\r\n";
        let (a, b) = (summarize(raw), summarize(raw));
        assert!(a.message_id_derived);
        assert_eq!(a.message_id, b.message_id);
        assert!(a.message_id.ends_with("@continuity.invalid"));
        assert_ne!(
            a.message_id,
            summarize(b"From: a@b.test\r\n\r\nother\r\n").message_id
        );
    }

    #[test]
    fn hostile_bytes_give_a_summary() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"Subject: \xff\xfe caf\xe9\r\nFrom: \x00<a@b>\r\n\r\n\0",
            b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
            b"\r\n\r\n\r\n",
            b"From:\r\n To:\r\n\tCc:",
        ] {
            let s = summarize(raw);
            assert!(!s.message_id.is_empty());
            assert!(s.subject.iter().all(|t| !t.chars().any(char::is_control)));
        }
    }

    #[test]
    fn ten_thousand_recipients_are_all_in_the_summary_but_not_all_filed() {
        let to: Vec<String> = (0..10_000).map(|i| format!("u{i}@acme.test")).collect();
        let raw = format!("From: a@b.test\r\nTo: {}\r\n\r\nx\r\n", to.join(", "));
        let s = summarize(raw.as_bytes());
        assert_eq!(s.to_count, 10_000);
        assert_eq!(s.to, to);
        let filed = crate::domain::item_budget::fit(&s);
        assert!(filed.overflowed);
        assert_eq!(
            filed.summary.to.len(),
            crate::domain::item_budget::MAX_FILED_ADDRESSES
        );
    }

    #[test]
    fn mailboxes() {
        assert_eq!(
            mailbox_of("<Bob@Acme.Test>").as_deref(),
            Some("bob@acme.test")
        );
        for bad in [
            "",
            "bob",
            "@acme.test",
            "bob@",
            "a b@c.test",
            "a\r\n@c.test",
            "a#b@c.test",
        ] {
            assert_eq!(mailbox_of(bad), None, "{bad:?}");
        }
        assert_eq!(
            domain_of("x@Sub.Acme.test").as_deref(),
            Some("sub.acme.test")
        );
    }

    #[test]
    fn dsn_is_a_multipart_report_with_the_original_headers() {
        let original = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nsecret body\r\n";
        let now = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .to_utc();
        let b = delivery_status_notification(
            "mailer-daemon@continuity.test",
            "a@example.org",
            "ses-1",
            now - chrono::Duration::days(4),
            now,
            &[FailedRecipient {
                address: "bob@acme.test".into(),
                status: "4.4.7".into(),
                diagnostic: "the organisation's server did not accept the message within 96 hours"
                    .into(),
            }],
            original,
        )
        .unwrap();
        let text = String::from_utf8(b.raw).unwrap();
        assert_eq!(b.to, "a@example.org");
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status"));
        assert!(text.contains("Content-Type: message/delivery-status"));
        assert!(text
            .contains("Final-Recipient: rfc822; bob@acme.test\r\nAction: failed\r\nStatus: 4.4.7"));
        assert!(text.contains("Subject: hello"));
        assert!(
            !text.contains("secret body"),
            "only the headers are returned"
        );
        let parsed = summarize(text.as_bytes());
        assert_eq!(parsed.kind, MessageKind::Other);
    }

    #[test]
    fn never_a_bounce_to_an_empty_sender() {
        let f = [FailedRecipient {
            address: "b@acme.test".into(),
            status: "5.1.1".into(),
            diagnostic: "no".into(),
        }];
        let now = Utc::now();
        for sender in ["", "<>", "  "] {
            assert!(
                delivery_status_notification("m@s.test", sender, "x", now, now, &f, b"").is_none()
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const BASE: &[u8] = b"From: A <a@example.org>\r\nTo: b@acme.test\r\nSubject: hi\r\nMessage-ID: <x@y>\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nbody\r\n--q\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n--q--\r\n";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes: a summary, a Message-ID, nothing unprintable filed, the real size.
        #[test]
        fn any_bytes_summarize(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let s = summarize(&raw);
            prop_assert!(!s.message_id.is_empty());
            prop_assert_eq!(s.size, raw.len() as u64);
            for t in s.subject.iter().chain(s.from.iter()).chain(s.to.iter()) {
                prop_assert!(!t.chars().any(char::is_control));
                prop_assert!(t.len() <= MAX_SUMMARY_TEXT_BYTES);
            }
        }

        /// A real message with random bytes changed, removed or inserted.
        #[test]
        fn mutated_messages_summarize(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..40)) {
            let mut m = BASE.to_vec();
            for (i, b, op) in edits {
                if m.is_empty() { m.push(b); continue; }
                let p = i.index(m.len());
                match op { 0 => m[p] = b, 1 => { m.remove(p); } _ => m.insert(p, b) }
            }
            let s = summarize(&m);
            prop_assert!(!s.message_id.is_empty());
            let _ = header_block(&m);
            let now = Utc::now();
            let f = [FailedRecipient { address: "b@acme.test".into(), status: "5.0.0".into(), diagnostic: "x".into() }];
            if let Some(b) = delivery_status_notification("m@s.test", "a@example.org", "id", now, now, &f, &m) {
                prop_assert!(std::str::from_utf8(&b.raw).is_ok());
            }
        }
    }
}
