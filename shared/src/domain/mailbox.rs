//! The Online Inbox and Online Sent Items (U1-U8, C1-C3), domain side: message references and
//! cursors, compose validation and MIME building (reply, reply all, forward), block rules, and
//! the client sync cursor. Pure: no AWS here; the store is the `MailboxStore` port
//! (`crate::ports::store`), in DynamoDB `crate::adapters::dynamodb::mailbox`.
//!
//! A message is named by a [`MessageRef`]: its folder, its receipt time (ms) and its id (the SES
//! id for received mail, the service's own id for sent mail). The ref is the tail of the item's
//! sort key, so the store rebuilds the full key from the *authorised* mailbox and the ref: a ref
//! or cursor can never reach into another mailbox, whatever it contains.

use crate::domain::mail::{mailbox_of, MessageSummary};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A filed copy of a message in one mailbox (U1).
#[derive(Debug, Clone)]
pub struct Filing<'a> {
    pub org_id: &'a str,
    pub ses_id: &'a str,
    pub received_at: DateTime<Utc>,
    pub raw_key: &'a str,
    /// The whole summary: the store cuts it to the item's byte budget
    /// ([`crate::domain::item_budget::fit`]) and names the kept whole one when it does.
    pub summary: &'a crate::domain::mail::MessageSummary,
    /// [`Folder::Inbox`], or [`Folder::Junk`] for spam (Q9).
    pub folder: Folder,
}

/// The Online Inbox shows this many days (U1).
pub const WINDOW_DAYS: i64 = 30;
/// Messages a page by default (U1), and the most a caller may ask for.
pub const PAGE_SIZE: usize = 100;
/// Unread messages counted per folder at most (one Query of at most this many index entries);
/// above it the list says "1000+", as mail clients do, rather than read a whole 30 days.
pub const UNREAD_COUNT_CAP: usize = 1000;

/// A folder's unread messages as counted: `count`, and `more` when there are more than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unread {
    pub count: usize,
    pub more: bool,
}

impl Unread {
    /// As the list shows it: `3`, or `1000+`.
    pub fn shown(&self) -> String {
        if self.more {
            format!("{}+", self.count)
        } else {
            self.count.to_string()
        }
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Which list a message is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Folder {
    /// Received mail (the inbound function's `MBX#` filings).
    Inbox,
    /// Mail the user sent through the service (`SENT#`).
    Sent,
    /// Received mail SES judged to be spam (`JUNK#`, Q9): filed apart from the Inbox's main
    /// view, and never offered to mail clients' sync.
    Junk,
}

impl Folder {
    /// The sort key prefix of the folder's items.
    pub fn prefix(self) -> &'static str {
        match self {
            Folder::Inbox => "MBX",
            Folder::Sent => "SENT",
            Folder::Junk => "JUNK",
        }
    }
    fn letter(self) -> char {
        match self {
            Folder::Inbox => 'i',
            Folder::Sent => 's',
            Folder::Junk => 'j',
        }
    }
    /// `inbox` / `sent` / `junk`, as in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Sent => "sent",
            Folder::Junk => "junk",
        }
    }
    pub fn from_name(s: &str) -> Option<Folder> {
        match s {
            "inbox" | "" => Some(Folder::Inbox),
            "sent" => Some(Folder::Sent),
            "junk" => Some(Folder::Junk),
            _ => None,
        }
    }
}

/// A message's stable id within a mailbox: `{i|s}{received ms, 13 digits}{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageRef {
    pub folder: Folder,
    pub received_ms: i64,
    pub id: String,
}

/// Whether `id` may be part of a key (SES ids and the service's ids: letters, digits, `-`, `_`, `.`).
fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl MessageRef {
    pub fn new(folder: Folder, received_at: DateTime<Utc>, id: &str) -> Self {
        MessageRef {
            folder,
            received_ms: received_at.timestamp_millis().max(0),
            id: id.to_string(),
        }
    }

    /// The stable id shown to callers.
    pub fn encode(&self) -> String {
        format!(
            "{}{:013}{}",
            self.folder.letter(),
            self.received_ms,
            self.id
        )
    }

    /// Reads an id; `None` for anything not made by [`MessageRef::encode`].
    pub fn parse(s: &str) -> Option<MessageRef> {
        let folder = match s.chars().next()? {
            'i' => Folder::Inbox,
            's' => Folder::Sent,
            'j' => Folder::Junk,
            _ => return None,
        };
        let digits = s.get(1..14)?;
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let id = s.get(14..)?;
        if !id_ok(id) {
            return None;
        }
        Some(MessageRef {
            folder,
            received_ms: digits.parse().ok()?,
            id: id.to_string(),
        })
    }

    /// The item's sort key in `mailbox`.
    pub fn sort_key(&self, mailbox: &str) -> String {
        format!(
            "{}#{mailbox}#{:013}#{}",
            self.folder.prefix(),
            self.received_ms,
            self.id
        )
    }

    /// Reads a sort key of `mailbox` back (`None` if it is not one of that mailbox's items).
    pub fn from_sort_key(mailbox: &str, sk: &str) -> Option<MessageRef> {
        for folder in [Folder::Inbox, Folder::Sent, Folder::Junk] {
            let prefix = format!("{}#{mailbox}#", folder.prefix());
            if let Some(rest) = sk.strip_prefix(&prefix) {
                let (ms, id) = rest.split_once('#')?;
                if ms.len() != 13 || !ms.chars().all(|c| c.is_ascii_digit()) || !id_ok(id) {
                    return None;
                }
                return Some(MessageRef {
                    folder,
                    received_ms: ms.parse().ok()?,
                    id: id.to_string(),
                });
            }
        }
        None
    }
}

/// The opaque cursor of a listing page: the last message shown. Only a position: the store
/// rebuilds the key in the authorised mailbox and folder.
pub fn encode_cursor(last: &MessageRef) -> String {
    B64.encode(last.encode())
}

/// Reads a cursor of `folder`; `None` when it is not one (tampered, another folder).
pub fn decode_cursor(cursor: &str, folder: Folder) -> Option<MessageRef> {
    let bytes = B64.decode(cursor.trim()).ok()?;
    let r = MessageRef::parse(std::str::from_utf8(&bytes).ok()?)?;
    (r.folder == folder).then_some(r)
}

/// The oldest receipt time a listing shows at `now` (U1: 30 days).
pub fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(WINDOW_DAYS)
}

/// The client sync cursor (C2): everything up to `after` was offered, except the kinds held back
/// during an event, the first of which is `held` (offered once the event is over).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(rename = "h", skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl SyncCursor {
    pub fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }
    /// Reads a cursor; both positions must be message refs of the inbox.
    pub fn decode(s: &str) -> Option<SyncCursor> {
        let c: SyncCursor = serde_json::from_slice(&B64.decode(s.trim()).ok()?).ok()?;
        // `held` may be "" (from the beginning of the window).
        for r in c
            .after
            .iter()
            .chain(c.held.iter().filter(|h| !h.is_empty()))
        {
            if MessageRef::parse(r)?.folder != Folder::Inbox {
                return None;
            }
        }
        Some(c)
    }
}

/// What a block rule matches: one address, or a domain (and its subdomains).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    /// Blocked by the user.
    Block,
    /// Marked as spam by the user.
    Spam,
}

/// A normalised block target: `alice@example.org` or `@example.org`. `None` when it is neither.
pub fn block_target(input: &str) -> Option<String> {
    let t = input.trim().to_ascii_lowercase();
    if let Some(domain) = t.strip_prefix('@') {
        return domain_ok(domain).then(|| format!("@{domain}"));
    }
    if !t.contains('@') {
        return domain_ok(&t).then(|| format!("@{t}"));
    }
    mailbox_of(&t)
}

fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The block targets that would stop mail from `from`: the address, its domain and the domain's
/// parents (`@eu.example.org`, `@example.org`; never a bare top-level domain).
pub fn block_candidates(from: &str) -> Vec<String> {
    let Some(addr) = mailbox_of(from) else {
        return vec![];
    };
    let mut out = vec![addr.clone()];
    if let Some((_, domain)) = addr.rsplit_once('@') {
        let mut rest = domain;
        loop {
            if rest.contains('.') {
                out.push(format!("@{rest}"));
            }
            match rest.split_once('.') {
                Some((_, p)) if p.contains('.') => rest = p,
                _ => break,
            }
        }
    }
    out
}

/// Whether a message received at `at` falls in an event's duplicate-resolution window (C3):
/// from [`crate::domain::continuity::DEDUPE_LEAD_MINUTES`] before its start to
/// [`crate::domain::continuity::POST_EVENT_MINUTES`] after its end.
pub fn in_dedupe_window(at: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    at >= start - Duration::minutes(crate::domain::continuity::DEDUPE_LEAD_MINUTES)
        && at < end + Duration::minutes(crate::domain::continuity::POST_EVENT_MINUTES)
}

/// A message in a listing (U1) or the sync (C2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub r#ref: MessageRef,
    pub summary: MessageSummary,
    pub raw_key: String,
    /// Where the whole summary is when the item's had to be cut to its byte budget
    /// ([`crate::domain::item_budget::overflow_key`]); `None`: the item holds all of it.
    pub summary_key: Option<String>,
    pub received_at: DateTime<Utc>,
    /// When the user first opened it or marked it read; `None`: unread.
    pub read_at: Option<DateTime<Utc>>,
    /// Flagged by the user.
    pub flagged: bool,
    /// Sent Items only: the mail service never confirmed the send (it may have gone out).
    pub unconfirmed: bool,
}

impl Listed {
    /// Unread, as the list shows it (bold): only received mail; what the user sent is read.
    pub fn unread(&self) -> bool {
        self.read_at.is_none() && self.r#ref.folder != Folder::Sent
    }
}

/// A change of a message's state asked by its user: `None` leaves that part as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    pub read: Option<bool>,
    pub flagged: Option<bool>,
}

impl StateChange {
    /// Whether it changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.read.is_none() && self.flagged.is_none()
    }
}

/// One conversation of a page in the threads view: its newest message, how many of the page's
/// messages it holds, and whether any of them is unread or flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLine<'a> {
    pub newest: &'a Listed,
    pub count: usize,
    pub unread: bool,
    pub flagged: bool,
}

/// The messages of a page grouped by thread key (`MessageSummary::thread`), one line per
/// thread, in the order of their newest message (the page is newest first).
pub fn group_threads(items: &[Listed]) -> Vec<ThreadLine<'_>> {
    let mut out: Vec<ThreadLine<'_>> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for l in items {
        let key = if l.summary.thread.is_empty() {
            l.summary.message_id.as_str()
        } else {
            l.summary.thread.as_str()
        };
        match at.get(key) {
            Some(&i) => {
                let line = &mut out[i];
                line.count += 1;
                line.unread |= l.unread();
                line.flagged |= l.flagged;
            }
            None => {
                at.insert(key, out.len());
                out.push(ThreadLine {
                    newest: l,
                    count: 1,
                    unread: l.unread(),
                    flagged: l.flagged,
                });
            }
        }
    }
    out
}

/// A time as the list shows it in the user's zone `tz`: the time of day for today ("14:32"),
/// "Yesterday", the day and month within a year ("12 Nov"), else the date ("12 Nov 2025").
pub fn list_time(at: DateTime<Utc>, now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    let (at, now) = (at.with_timezone(&tz), now.with_timezone(&tz));
    let (day, today) = (at.date_naive(), now.date_naive());
    if day == today {
        at.format("%H:%M").to_string()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".into()
    } else if day < today && today - day < Duration::days(300) {
        at.format("%-d %b").to_string()
    } else {
        at.format("%-d %b %Y").to_string()
    }
}

/// The user's zone from what the browser said (an IANA name such as `Europe/Berlin`); UTC
/// when there is none or it is not a zone.
pub fn user_zone(name: Option<&str>) -> chrono_tz::Tz {
    name.map(str::trim)
        .filter(|n| !n.is_empty() && n.len() <= 64)
        .and_then(|n| n.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// A page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Listed>,
    /// Where the next page starts (the last item of this one), if there may be more.
    pub next: Option<MessageRef>,
}

/// A block rule (U4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockRule {
    pub target: String,
    pub kind: BlockKind,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn refs_round_trip_and_stay_in_their_mailbox() {
        let r = MessageRef::new(Folder::Inbox, t("2026-11-23T10:00:00Z"), "abc-123");
        let enc = r.encode();
        assert_eq!(MessageRef::parse(&enc), Some(r.clone()));
        let sk = r.sort_key("bob@acme.test");
        assert_eq!(
            sk,
            format!("MBX#bob@acme.test#{:013}#abc-123", r.received_ms)
        );
        assert_eq!(
            MessageRef::from_sort_key("bob@acme.test", &sk),
            Some(r.clone())
        );
        assert_eq!(MessageRef::from_sort_key("eve@acme.test", &sk), None);
        // Every folder's keys read back as that folder (a spam filing is listed in Junk).
        for folder in [Folder::Inbox, Folder::Sent, Folder::Junk] {
            let r = MessageRef::new(folder, t("2026-11-23T10:00:00Z"), "abc-123");
            assert_eq!(
                MessageRef::from_sort_key("bob@acme.test", &r.sort_key("bob@acme.test")),
                Some(r.clone()),
                "{folder:?}"
            );
            assert_eq!(MessageRef::parse(&r.encode()), Some(r));
        }
        for bad in [
            "",
            "x1700000000000abc",
            "i17000abc",
            "i1700000000000",
            "i1700000000000a#b",
            "i1700000000000../x",
            "s1700000000000a b",
        ] {
            assert_eq!(MessageRef::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cursors_are_checked() {
        let r = MessageRef::new(Folder::Sent, t("2026-11-23T10:00:00Z"), "abc");
        let c = encode_cursor(&r);
        assert_eq!(decode_cursor(&c, Folder::Sent), Some(r));
        assert_eq!(decode_cursor(&c, Folder::Inbox), None);
        assert_eq!(decode_cursor("!!!", Folder::Inbox), None);
        assert_eq!(
            decode_cursor(&B64.encode("i1700000000000a#MBX#eve"), Folder::Inbox),
            None
        );
        let s = SyncCursor {
            after: Some(MessageRef::new(Folder::Inbox, t("2026-11-23T10:00:00Z"), "x").encode()),
            held: None,
        };
        assert_eq!(SyncCursor::decode(&s.encode()), Some(s));
        assert_eq!(SyncCursor::decode("e30"), Some(SyncCursor::default()));
        assert_eq!(SyncCursor::decode(&B64.encode(r#"{"a":"zzz"}"#)), None);
    }

    #[test]
    fn block_targets_and_candidates() {
        assert_eq!(
            block_target(" Spam@Example.ORG ").as_deref(),
            Some("spam@example.org")
        );
        assert_eq!(
            block_target("@example.org").as_deref(),
            Some("@example.org")
        );
        assert_eq!(block_target("example.org").as_deref(), Some("@example.org"));
        for bad in ["", "@", "org", "a b@c.d", "@exa mple.org", "x\r\n@y.z"] {
            assert_eq!(block_target(bad), None, "{bad:?}");
        }
        assert_eq!(
            block_candidates("A@Eu.Example.org"),
            vec!["a@eu.example.org", "@eu.example.org", "@example.org"]
        );
        assert!(block_candidates("not an address").is_empty());
    }

    #[test]
    fn list_times_are_relative_in_the_users_zone() {
        let now = t("2026-11-23T23:30:00Z");
        let berlin = user_zone(Some("Europe/Berlin"));
        // 23:30 UTC is already the 24th in Berlin: a message at 22:00 UTC is "today" there.
        assert_eq!(list_time(t("2026-11-23T23:10:00Z"), now, berlin), "00:10");
        assert_eq!(
            list_time(t("2026-11-23T22:00:00Z"), now, berlin),
            "Yesterday"
        );
        assert_eq!(
            list_time(t("2026-11-23T22:00:00Z"), now, chrono_tz::UTC),
            "22:00"
        );
        assert_eq!(
            list_time(t("2026-11-22T23:10:00Z"), now, berlin),
            "Yesterday"
        );
        assert_eq!(list_time(t("2026-11-12T10:00:00Z"), now, berlin), "12 Nov");
        assert_eq!(
            list_time(t("2025-11-12T10:00:00Z"), now, berlin),
            "12 Nov 2025"
        );
        for bad in [
            None,
            Some(""),
            Some("Mars/Base"),
            Some("../etc"),
            Some("x\r\n"),
        ] {
            assert_eq!(user_zone(bad), chrono_tz::UTC, "{bad:?}");
        }
    }

    #[test]
    fn threads_group_a_page_newest_first() {
        let item = |id: &str, thread: &str, read: bool| Listed {
            r#ref: MessageRef::new(Folder::Inbox, t("2026-11-23T10:00:00Z"), id),
            summary: MessageSummary {
                thread: thread.into(),
                ..crate::domain::mail::summarize(format!("Message-ID: <{id}@x>\r\n\r\n").as_bytes())
            },
            raw_key: String::new(),
            summary_key: None,
            received_at: t("2026-11-23T10:00:00Z"),
            read_at: read.then(|| t("2026-11-23T11:00:00Z")),
            flagged: false,
            unconfirmed: false,
        };
        let page = [
            item("c", "t1", true),
            item("b", "t2", false),
            item("a", "t1", false),
        ];
        let lines = group_threads(&page);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].newest.r#ref.id.as_str(), lines[0].count),
            ("c", 2)
        );
        assert!(
            lines[0].unread,
            "an unread older message makes the thread unread"
        );
        assert_eq!(
            (lines[1].newest.r#ref.id.as_str(), lines[1].count),
            ("b", 1)
        );
    }

    #[test]
    fn dedupe_window() {
        let (s, e) = (t("2026-11-23T10:00:00Z"), t("2026-11-23T12:00:00Z"));
        assert!(!in_dedupe_window(t("2026-11-23T09:54:59Z"), s, e));
        assert!(in_dedupe_window(t("2026-11-23T09:55:00Z"), s, e));
        assert!(in_dedupe_window(t("2026-11-23T12:09:59Z"), s, e));
        assert!(!in_dedupe_window(t("2026-11-23T12:10:00Z"), s, e));
    }
}
