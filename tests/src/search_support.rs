//! Support for the search tests and bench (issue 17): a mailbox of generated messages over 30
//! days, each with a known set of words, sender, time, attachment, folder and read state, filed
//! and indexed as the inbound path and Sent Items do (`file_message` / `file_sent`, then
//! `index_filed`), and the same facts kept beside, so that a test computes the expected results
//! from them independently of the index.

use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt};
use shared::adapters::dynamodb::DynamoStore;
use shared::app::search::index_filed;
use shared::domain::mail::summarize;
use shared::domain::mailbox::{Filing, Folder, MessageRef};
use shared::ports::store::{MailStore, MailboxStore};

/// The words messages are made of (none a stop word, none in an address or a name below).
pub const VOCABULARY: &[&str] = &[
    "budget",
    "invoice",
    "meeting",
    "roadmap",
    "contract",
    "holiday",
    "server",
    "outage",
    "payroll",
    "quarterly",
    "shipment",
    "warehouse",
    "Grüße",
    "café",
    "migration",
    "audit",
    "renewal",
    "training",
    "security",
    "firewall",
    "laptop",
    "printer",
    "canteen",
    "parking",
    "pension",
    "vacancy",
    "interview",
    "forecast",
    "supplier",
    "catalogue",
    "delivery",
    "kickoff",
    "workshop",
    "newsletter",
    "survey",
    "deadline",
    "approval",
    "reminder",
    "schedule",
    "feedback",
];

/// Senders: (display name, address).
pub const SENDERS: &[(&str, &str)] = &[
    ("Zoë Müller", "zoe.muller@northwind.example"),
    ("Jan Kowalski", "jan@contoso.example"),
    ("Priya Natarajan", "priya@fabrikam.example"),
    ("Ólafur Jónsson", "olafur@contoso.example"),
    ("Mei Chen", "mei.chen@tailspin.example"),
    ("Ahmed Karim", "ahmed@northwind.example"),
    ("Lucía Fernández", "lucia@adatum.example"),
];

/// What a generated message is, as the test knows it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub r: MessageRef,
    pub at: DateTime<Utc>,
    /// Indexes into [`VOCABULARY`].
    pub words: Vec<usize>,
    /// Index into [`SENDERS`].
    pub sender: usize,
    pub attachment: bool,
    pub read: bool,
}

impl Generated {
    /// Whether the message has `word` (of the vocabulary, as written there).
    pub fn has(&self, word: &str) -> bool {
        self.words.iter().any(|&w| VOCABULARY[w] == word)
    }
}

/// The facts of message `i` of `n` over the 30 days before `now`: newest first as `i` grows;
/// every 11th a sent item, every 7th with an attachment, every 3rd read.
pub fn spec(i: usize, n: usize, now: DateTime<Utc>) -> Generated {
    let step = (30 * 24 * 3600 * 1000) / n.max(1) as i64;
    let at = now - Duration::milliseconds(i as i64 * step + 1000);
    let v = VOCABULARY.len();
    // Word frequencies differ: word k appears roughly in 1/(k/8+1) of the messages.
    let mut words = vec![i % v, (i * 7 + 3) % v];
    if i.is_multiple_of(5) {
        words.push((i / 5) % 4);
    }
    if i.is_multiple_of(97) {
        words.push(v - 1);
    }
    words.sort();
    words.dedup();
    let folder = if i.is_multiple_of(11) {
        Folder::Sent
    } else {
        Folder::Inbox
    };
    Generated {
        r: MessageRef::new(folder, at, &format!("gen{i:07}")),
        at,
        words,
        sender: (i * 3) % SENDERS.len(),
        attachment: i.is_multiple_of(7),
        read: i.is_multiple_of(3),
    }
}

/// The raw message of `g` for `mailbox`: the subject has the first word, the text body the
/// others; an attachment (a small PDF) when `g.attachment`.
pub fn raw(g: &Generated, mailbox: &str) -> Vec<u8> {
    let (name, address) = SENDERS[g.sender];
    let (from, to) = match g.r.folder {
        Folder::Sent => (format!("<{mailbox}>"), format!("{name} <{address}>")),
        _ => (format!("{name} <{address}>"), format!("<{mailbox}>")),
    };
    let subject = VOCABULARY[g.words[0]];
    let body: Vec<&str> = g.words[1..].iter().map(|&w| VOCABULARY[w]).collect();
    let body = format!("Hello,\r\n\r\n{}\r\n", body.join(" "));
    let head = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}@gen.example>\r\nMIME-Version: 1.0\r\n",
        g.r.id
    );
    let text = if g.attachment {
        format!(
            "{head}Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n--b1\r\nContent-Type: application/pdf; name=\"file.pdf\"\r\nContent-Disposition: attachment; filename=\"file.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
        )
    } else {
        format!("{head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}")
    };
    text.into_bytes()
}

/// Files and indexes `g` in `mailbox` of `org` as the inbound path (or Sent Items) does, and
/// marks it read when it is (the `read_at` attribute of the filing, as opening it does).
pub async fn file(store: &DynamoStore, org: &str, mailbox: &str, g: &Generated) {
    let raw = raw(g, mailbox);
    let summary = summarize(&raw);
    let raw_key = format!("inbound/{}", g.r.id);
    match g.r.folder {
        Folder::Sent => store
            .file_sent(org, mailbox, &g.r, &summary, &raw_key, g.at, false)
            .await
            .expect("file sent"),
        folder => store
            .file_message(
                &Filing {
                    org_id: org,
                    ses_id: &g.r.id,
                    received_at: g.at,
                    raw_key: &raw_key,
                    summary: &summary,
                    folder,
                },
                &[mailbox.to_string()],
            )
            .await
            .expect("file"),
    }
    index_filed(store, org, &[mailbox.to_string()], &g.r, &raw, &summary)
        .await
        .expect("index");
    if g.read && g.r.folder != Folder::Sent {
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{org}")),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S(g.r.sort_key(mailbox)),
            )
            .update_expression("SET read_at = :t")
            .expression_attribute_values(
                ":t",
                aws_sdk_dynamodb::types::AttributeValue::S(g.at.to_rfc3339()),
            )
            .send()
            .await
            .expect("mark read");
    }
}

/// Generates, files and indexes `n` messages in `mailbox` (32 at a time); their facts, newest
/// first.
pub async fn fill(
    store: &DynamoStore,
    org: &str,
    mailbox: &str,
    n: usize,
    now: DateTime<Utc>,
) -> Vec<Generated> {
    let all: Vec<Generated> = (0..n).map(|i| spec(i, n, now)).collect();
    stream::iter(all.iter())
        .map(|g| file(store, org, mailbox, g))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    all
}
