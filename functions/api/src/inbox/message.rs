//! A message as the inbox shows it: its listing fields and its opened content (text, sanitised
//! HTML, attachments) as JSON and for the pages, and downloads (.eml, attachments).
//!
//! Message content is never live: text is escaped by the templates; HTML bodies go through an
//! allow-list sanitiser (no script, no event handlers, no styles, no remote images unless the
//! user asks, links opened in a new context without referrer); attachments are served as
//! downloads.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::mail::MessageKind;
use shared::domain::mailbox::{Folder, Listed};

/// A message in a listing.
#[derive(Debug, Serialize)]
pub struct MessageJson {
    pub id: String,
    pub folder: Folder,
    pub message_id: String,
    pub from: Option<String>,
    /// The sender's display name.
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub size: u64,
    pub attachments: Vec<String>,
    pub kind: MessageKind,
    /// The first characters of the text body, on one line.
    pub preview: Option<String>,
    /// The conversation's key (the same for every message of a thread).
    pub thread: String,
    /// Read (opened on the message page, or marked read); what the user sent is read.
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub flagged: bool,
    /// Sent Items: the mail service never confirmed the send (it may have gone out).
    pub unconfirmed: bool,
}

impl From<&Listed> for MessageJson {
    fn from(l: &Listed) -> Self {
        MessageJson {
            id: l.r#ref.encode(),
            folder: l.r#ref.folder,
            message_id: l.summary.message_id.clone(),
            from: l.summary.from.clone(),
            from_name: l.summary.from_name.clone(),
            to: l.summary.to.clone(),
            cc: l.summary.cc.clone(),
            subject: l.summary.subject.clone(),
            date: l.summary.date,
            received_at: l.received_at,
            size: l.summary.size,
            attachments: l.summary.attachments.clone(),
            kind: l.summary.kind,
            preview: l.summary.preview.clone(),
            thread: l.summary.thread.clone(),
            read: !l.unread(),
            read_at: l.read_at,
            flagged: l.flagged,
            unconfirmed: l.unconfirmed,
        }
    }
}

/// A message opened: headers, text, sanitised HTML, attachments.
#[derive(Debug, Serialize)]
pub struct OpenedJson {
    #[serde(flatten)]
    pub message: MessageJson,
    pub text: Option<String>,
    /// The HTML body, sanitised (no remote images).
    pub html: Option<String>,
    pub attachment_list: Vec<AttachmentJson>,
}

/// An attachment of an opened message.
#[derive(Debug, Serialize)]
pub struct AttachmentJson {
    pub index: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// A raw message read for showing.
pub struct Opened {
    pub text: Option<String>,
    /// The HTML body, sanitised.
    pub html: Option<String>,
    pub attachments: Vec<AttachmentJson>,
    pub reply_to: Vec<String>,
    /// The HTML body had images (not loaded unless asked).
    pub has_images: bool,
}

/// Reads a raw message; the HTML body sanitised, with images only if `images`.
pub fn open_raw(raw: &[u8], images: bool) -> Opened {
    use mail_parser::{MessageParser, MimeHeaders};
    let fixed = shared::domain::mail::utf8_headers(raw);
    let Some(m) = MessageParser::default().parse(&fixed[..]) else {
        return Opened {
            text: Some(String::from_utf8_lossy(raw).into_owned()),
            html: None,
            attachments: vec![],
            reply_to: vec![],
            has_images: false,
        };
    };
    // Only a real HTML part (mail-parser also renders plain text as HTML).
    let raw_html = m
        .html_part(0)
        .filter(|p| p.is_text_html())
        .and_then(|_| m.body_html(0));
    let has_images = raw_html
        .as_ref()
        .is_some_and(|h| h.to_ascii_lowercase().contains("<img"));
    let html = raw_html.map(|h| sanitize_html(&h, images));
    let text = m.body_text(0).map(|t| t.into_owned());
    let attachments = m
        .attachments()
        .enumerate()
        .map(|(i, a)| AttachmentJson {
            index: i,
            name: a
                .attachment_name()
                .map(shared::domain::mail::clean_text)
                .unwrap_or_else(|| format!("attachment-{}", i + 1)),
            content_type: a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: a.contents().len(),
        })
        .collect();
    let reply_to = m
        .reply_to()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref().map(shared::domain::mail::clean_text))
                .collect()
        })
        .unwrap_or_default();
    Opened {
        text,
        html,
        attachments,
        reply_to,
        has_images,
    }
}

/// Sanitises an HTML body (U2): an allow-list of tags and attributes, no script, no event
/// handlers, no `style` (CSS expressions), only http/https/mailto links (opened with
/// `noopener noreferrer`, in a new context), no images unless `images` (then only http(s)).
pub fn sanitize_html(html: &str, images: bool) -> String {
    let mut b = ammonia::Builder::default();
    b.url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .rm_tag_attributes("a", &["target"])
        .strip_comments(true);
    if !images {
        b.rm_tags(&["img"]);
    }
    b.clean(html).to_string()
}

/// Bytes as a download named `filename`.
pub fn download(bytes: Vec<u8>, filename: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&shared::domain::downloads::content_disposition(filename))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitiser_makes_hostile_html_inert() {
        let corpus = [
            "<script>alert(1)</script>hello",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<a href=\"  javascript:alert(1)\">x</a>",
            "<svg onload=alert(1)><circle/></svg>",
            "<div style=\"width: expression(alert(1))\">css</div>",
            "<style>body{background:url(javascript:alert(1))}</style>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<object data=x></object><embed src=x>",
            "<body onload=alert(1)>",
            "<scr<script>ipt>alert(1)</script>",
            "<<script>script>alert(1)<</script>/script>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d</a>",
            "<form action=\"https://evil.example\"><input name=p></form>",
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
            "<base href=\"https://evil.example/\">",
            "<img src=\"https://tracker.example/p.gif\">",
            "<p onclick=\"alert(1)\" onmouseover='x'>p</p>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
            "<div <script>alert(1)</script>",
        ];
        for html in corpus {
            let out = sanitize_html(html, false).to_ascii_lowercase();
            for bad in [
                "<script",
                "javascript:",
                "onerror",
                "onload",
                "onclick",
                "onmouseover",
                "expression(",
                "<style",
                "<iframe",
                "<object",
                "<embed",
                "<svg",
                "<form",
                "<meta",
                "<base",
                "<img",
                "data:text",
            ] {
                assert!(!out.contains(bad), "{html:?} -> {out:?} contains {bad}");
            }
        }
        let link = sanitize_html("<a href=\"https://example.org/\">ok</a>", false);
        assert!(
            link.contains("rel=\"noopener noreferrer nofollow\""),
            "{link}"
        );
        assert!(link.contains("target=\"_blank\""), "{link}");
        let img = sanitize_html("<img src=\"https://example.org/a.png\" onerror=x>", true);
        assert!(
            img.contains("<img src=\"https://example.org/a.png\">"),
            "{img}"
        );
        assert!(!sanitize_html("<img src=\"javascript:x\">", true).contains("javascript"));
    }
}
