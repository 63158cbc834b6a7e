//! Search of the Online Inbox (issue 17), domain side: which terms a message is indexed under,
//! how a user's search becomes terms and a time range, the position a result page ends at (the
//! cursor), and which words of a result to highlight. Pure: the index is the `SearchIndex` port
//! (`crate::ports::store`), in DynamoDB `crate::adapters::dynamodb::search`; the use case is
//! `crate::app::search`.
//!
//! The index is inverted, per mailbox: one small posting item per (term, message), keyed
//! `{term}#{received ms}#{folder letter}{id}` under the mailbox, so that the postings of a term
//! read newest first with one Query and a date range is a key range. Terms are normalised the
//! same way when indexed and when searched: lower case, Latin accents folded (`Grüße` is
//! `grusse`), stop words and one-letter words dropped, at most [`MAX_TERM_CHARS`] characters.
//! Filters that are properties of the message are terms too (`from:{address}`,
//! `from:@{domain}`, `from:{word}`, `in:{folder}`, `has:attachment`), so a filtered search is an
//! intersection like any other; only "unread" (which changes after filing) is read from the
//! filing.

use crate::domain::mail::{mailbox_of, MessageSummary};
use crate::domain::mailbox::{Folder, MessageRef, WINDOW_DAYS};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mail_parser::MessageParser;

/// Bytes of the text body indexed (the first part of it: enough for what people remember of a
/// message, and a bounded number of index items per message).
pub const BODY_INDEX_BYTES: usize = 2048;
/// Terms indexed per message at most (header terms first, then the body's in order).
pub const MAX_TERMS_PER_MESSAGE: usize = 120;
/// Longest term kept (characters); longer words are cut to this, when indexed and searched alike.
pub const MAX_TERM_CHARS: usize = 32;
/// Longest search text accepted (characters).
pub const MAX_QUERY_CHARS: usize = 200;
/// Terms a search may have (words and sender terms together).
pub const MAX_QUERY_TERMS: usize = 6;
/// Results a page by default, and the most a caller may ask for.
pub const SEARCH_PAGE: usize = 50;

/// Words too common to narrow anything: not indexed, ignored in searches.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "so", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "we", "you", "your", "our", "has", "have", "had",
    "from", "re", "fw", "fwd", "der", "die", "das", "und", "le", "la", "les", "et", "de", "des",
];

/// The Latin letter without its accent (lower case in, lower case out), or the letters it
/// stands for (`ß` -> `ss`); `None` when it is not an accented Latin letter.
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' | 'ĝ' | 'ġ' | 'ģ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ķ' => "k",
        'ł' | 'ľ' | 'ĺ' | 'ļ' => "l",
        'ñ' | 'ń' | 'ň' | 'ņ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ř' => "r",
        'ß' => "ss",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'þ' => "th",
        _ => return None,
    })
}

/// The words of `text` with their byte ranges, in order: runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

/// One word as a term: folded, lower case, cut to [`MAX_TERM_CHARS`]; `None` for a stop word
/// or a word of one character.
pub fn normalise(word: &str) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    for c in word.chars().flat_map(char::to_lowercase) {
        match fold_char(c) {
            Some(f) => out.push_str(f),
            None => out.push(c),
        }
    }
    let out: String = out.chars().take(MAX_TERM_CHARS).collect();
    (out.chars().count() >= 2 && !STOP_WORDS.contains(&out.as_str())).then_some(out)
}

/// The terms of `text`, in order, each once.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, w) in words(text) {
        if let Some(t) = normalise(w) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Bytes of the raw message parsed for indexing: the headers and the start of the body, where
/// the text part is (a 40 MB attachment is not decoded to index 2 KB of text).
pub const PARSE_BYTES: usize = 256 * 1024;

/// The sender's display name and the first [`BODY_INDEX_BYTES`] of the text body (the HTML
/// body's text when there is no text part), from the first [`PARSE_BYTES`] of `raw`: one parse.
pub fn name_and_body(raw: &[u8]) -> (Option<String>, String) {
    let Some(m) = MessageParser::default().parse(&raw[..raw.len().min(PARSE_BYTES)]) else {
        return (None, String::new());
    };
    let name = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.name.as_deref())
        .map(str::to_string);
    let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let mut end = text.len().min(BODY_INDEX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (name, text[..end].to_string())
}

/// The sender terms of an address: `from:{address}`, `from:@{domain}` and `from:{word}` for the
/// words of the local part.
fn sender_terms(address: &str) -> Vec<String> {
    let Some(addr) = mailbox_of(address) else {
        return vec![];
    };
    let mut out = vec![format!("from:{addr}")];
    if let Some((local, domain)) = addr.rsplit_once('@') {
        out.push(format!("from:@{domain}"));
        out.extend(tokens(local).into_iter().map(|t| format!("from:{t}")));
    }
    out
}

/// Every term a message is indexed under in `folder`: the words of the subject, the sender
/// (address and display name), the recipients and the first part of the text body; its sender
/// terms; `in:{folder}`; `has:attachment` when it has one. Each once, at most
/// [`MAX_TERMS_PER_MESSAGE`], the filter terms first (so a cut drops body words, never them).
pub fn message_terms(raw: &[u8], summary: &MessageSummary, folder: Folder) -> Vec<String> {
    let mut out: Vec<String> = vec![format!("in:{}", folder.name())];
    if !summary.attachments.is_empty() {
        out.push("has:attachment".into());
    }
    let (name, body) = name_and_body(raw);
    let name = name.unwrap_or_default();
    if let Some(from) = &summary.from {
        out.extend(sender_terms(from));
    }
    out.extend(tokens(&name).into_iter().map(|t| format!("from:{t}")));
    let mut text = String::new();
    for part in [
        summary.subject.as_deref().unwrap_or_default(),
        &name,
        summary.from.as_deref().unwrap_or_default(),
        &summary.to.join(" "),
        &summary.cc.join(" "),
        &body,
    ] {
        text.push_str(part);
        text.push(' ');
    }
    out.extend(tokens(&text));
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.clone()));
    out.truncate(MAX_TERMS_PER_MESSAGE);
    out
}

/// A search as the user asked for it (the query string of both routes).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    pub q: Option<String>,
    /// A sender: an address, a domain (`example.org` or `@example.org`) or a name.
    #[serde(default)]
    pub from: Option<String>,
    /// Received on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub after: Option<String>,
    /// Received before this day (`YYYY-MM-DD`, UTC; the day itself excluded).
    #[serde(default)]
    pub before: Option<String>,
    /// `1`: only messages with an attachment.
    #[serde(default)]
    pub attachment: Option<String>,
    /// `1`: only unread messages (received ones: sent items are never unread).
    #[serde(default)]
    pub unread: Option<String>,
    /// `inbox`, `sent` or `junk`; all folders when absent.
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A search made ready: the terms to intersect, the range of receipt times, the filters read
/// from filings, the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The terms every result has (at least one).
    pub terms: Vec<String>,
    /// The words the user typed (for highlights), a subset of `terms`.
    pub words: Vec<String>,
    /// Received at or after (ms).
    pub since_ms: i64,
    /// Received at or before (ms).
    pub until_ms: i64,
    /// Results strictly older than this position (the cursor).
    pub below: Option<String>,
    pub unread: bool,
    pub limit: usize,
}

fn flag(v: &Option<String>) -> Result<bool, String> {
    match v.as_deref().map(str::trim) {
        None | Some("") | Some("0") => Ok(false),
        Some("1") | Some("on") | Some("true") => Ok(true),
        Some(_) => Err("attachment and unread take 1 or 0.".into()),
    }
}

fn day(v: &Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| Some(d.and_utc()))
            .ok_or_else(|| format!("{name} must be a date as YYYY-MM-DD (got {s:?}).")),
    }
}

/// The sender terms of the `from` filter: an address, a domain or the words of a name.
fn from_filter(from: &str) -> Vec<String> {
    let f = from.trim();
    if f.contains('@') && !f.starts_with('@') {
        return mailbox_of(f)
            .map(|a| vec![format!("from:{a}")])
            .unwrap_or_else(|| tokens(f).into_iter().map(|t| format!("from:{t}")).collect());
    }
    let domain = f.trim_start_matches('@').to_ascii_lowercase();
    if domain.contains('.') && !domain.contains(char::is_whitespace) {
        return vec![format!("from:@{domain}")];
    }
    tokens(f).into_iter().map(|t| format!("from:{t}")).collect()
}

impl SearchParams {
    /// Checks the search and makes it a [`Plan`] at `now` (within the last [`WINDOW_DAYS`]);
    /// the error says what is wrong, for the user.
    pub fn plan(&self, now: DateTime<Utc>) -> Result<Plan, String> {
        let q = self.q.as_deref().unwrap_or_default();
        let from = self.from.as_deref().unwrap_or_default();
        if q.chars().count() > MAX_QUERY_CHARS || from.chars().count() > MAX_QUERY_CHARS {
            return Err(format!(
                "The search is too long: at most {MAX_QUERY_CHARS} characters."
            ));
        }
        let words = tokens(q);
        let mut terms = words.clone();
        if !from.trim().is_empty() {
            let f = from_filter(from);
            if f.is_empty() {
                return Err("from must be an address, a domain or a name.".into());
            }
            terms.extend(f);
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(format!(
                "Too many words: a search takes at most {MAX_QUERY_TERMS} (stop words left out)."
            ));
        }
        if flag(&self.attachment)? {
            terms.push("has:attachment".into());
        }
        let unread = flag(&self.unread)?;
        match self
            .folder
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => {
                let folder = Folder::from_name(f)
                    .ok_or_else(|| "folder must be 'inbox', 'sent' or 'junk'.".to_string())?;
                terms.push(format!("in:{}", folder.name()));
            }
            // Nothing to look for: the search lists the Inbox (with the date and unread filters).
            None if terms.is_empty() => terms.push("in:inbox".into()),
            None => {}
        }
        let mut since = now - Duration::days(WINDOW_DAYS);
        let mut until = now;
        if let Some(a) = day(&self.after, "after")? {
            since = since.max(a);
        }
        if let Some(b) = day(&self.before, "before")? {
            until = until.min(b - Duration::milliseconds(1));
        }
        if let (Some(a), Some(b)) = (day(&self.after, "after")?, day(&self.before, "before")?) {
            if a >= b {
                return Err("after must be a day before before.".into());
            }
        }
        let below = match self
            .cursor
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                "The cursor is not valid for this search; start from the first page.".to_string()
            })?),
            None => None,
        };
        let limit = match self.limit {
            None => SEARCH_PAGE,
            Some(n) if (1..=SEARCH_PAGE).contains(&n) => n,
            Some(_) => return Err(format!("limit must be from 1 to {SEARCH_PAGE}.")),
        };
        Ok(Plan {
            terms,
            words,
            since_ms: since.timestamp_millis().max(0),
            until_ms: until.timestamp_millis().max(0),
            below,
            unread,
            limit,
        })
    }
}

/// A message's position in a term's postings: `{received ms, 13 digits}#{folder letter}{id}`;
/// text order is time order, then folder and id.
pub fn position(r: &MessageRef) -> String {
    let e = r.encode();
    format!("{}#{}{}", &e[1..14], &e[..1], &e[14..])
}

/// The message of a position (`None` if it is not one).
pub fn from_position(p: &str) -> Option<MessageRef> {
    let (ms, rest) = p.split_once('#')?;
    if ms.len() != 13 {
        return None;
    }
    let letter = rest.get(..1)?;
    MessageRef::parse(&format!("{letter}{ms}{}", rest.get(1..)?))
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The opaque cursor after the position `p` (only a position: the mailbox is the authorised
/// one, so a cursor reaches nothing else).
pub fn encode_cursor(p: &str) -> String {
    B64.encode(format!("q{p}"))
}

/// Reads a cursor back to its position; `None` if it was not made by [`encode_cursor`].
pub fn decode_cursor(c: &str) -> Option<String> {
    let bytes = B64.decode(c.trim()).ok()?;
    let p = std::str::from_utf8(&bytes).ok()?.strip_prefix('q')?;
    from_position(p).map(|r| position(&r))
}

/// A piece of text to show, highlighted or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    pub text: String,
    pub mark: bool,
}

/// `text` cut into pieces, those words whose term is one of `terms` marked (why a result
/// matched). Joined, the pieces are `text`.
pub fn highlight(text: &str, terms: &[String]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut at = 0;
    let push = |out: &mut Vec<Span>, s: &str, mark: bool| {
        if s.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.mark == mark && !mark => last.text.push_str(s),
            _ => out.push(Span {
                text: s.to_string(),
                mark,
            }),
        }
    };
    for (start, w) in words(text) {
        if normalise(w).is_some_and(|t| terms.contains(&t)) {
            push(&mut out, &text[at..start], false);
            push(&mut out, w, true);
            at = start + w.len();
        }
    }
    push(&mut out, &text[at..], false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mail::summarize;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn words_are_folded_lower_cased_and_filtered() {
        assert_eq!(
            tokens("Grüße an die Straße, THE Report: Q4-2026 a ÉTÉ"),
            vec!["grusse", "strasse", "report", "q4", "2026", "ete"]
        );
        let long = "x".repeat(50);
        assert_eq!(tokens(&long), vec!["x".repeat(MAX_TERM_CHARS)]);
        assert_eq!(normalise("I"), None);
        assert_eq!(normalise("the"), None);
        assert_eq!(normalise("日本語"), Some("日本語".into()));
    }

    #[test]
    fn a_message_is_indexed_by_its_headers_and_the_start_of_its_body() {
        let body = format!(
            "Quarterly figures attached.\r\n{}\r\nlateword",
            "pad ".repeat(600)
        );
        let raw = format!(
            "From: Zoë Müller <Zoe.Muller@Example.org>\r\nTo: bob@acme.test\r\nCc: carol@acme.test\r\nSubject: Budget review\r\nMessage-ID: <a@b>\r\n\r\n{body}"
        );
        let s = summarize(raw.as_bytes());
        let terms = message_terms(raw.as_bytes(), &s, Folder::Inbox);
        for want in [
            "in:inbox",
            "from:zoe.muller@example.org",
            "from:@example.org",
            "from:zoe",
            "from:muller",
            "budget",
            "review",
            "zoe",
            "muller",
            "bob",
            "acme",
            "carol",
            "quarterly",
            "figures",
            "attached",
            "pad",
        ] {
            assert!(terms.contains(&want.to_string()), "{want} in {terms:?}");
        }
        // Past the first 2 KB of text: not indexed.
        assert!(!terms.contains(&"lateword".to_string()));
        assert!(!terms.contains(&"has:attachment".to_string()));
        assert!(terms.len() <= MAX_TERMS_PER_MESSAGE);
        // Junk never broken: any bytes give terms or none, never a panic.
        let s = summarize(b"\xff\xfe\x00garbage");
        assert!(message_terms(b"\xff\xfe\x00garbage", &s, Folder::Sent).contains(&"in:sent".into()));
    }

    #[test]
    fn a_huge_message_is_indexed_from_its_start() {
        let mut raw = b"From: Big Sender <big@example.org>\r\nSubject: Huge upload\r\nContent-Type: text/plain\r\n\r\nfirstline words\r\n".to_vec();
        while raw.len() < 3 * PARSE_BYTES {
            raw.extend_from_slice(b"filler text line\r\n");
        }
        raw.extend_from_slice(b"farbeyond\r\n");
        let s = summarize(&raw);
        let terms = message_terms(&raw, &s, Folder::Inbox);
        for want in ["huge", "upload", "from:big", "firstline", "filler"] {
            assert!(terms.contains(&want.to_string()), "{want}");
        }
        assert!(!terms.contains(&"farbeyond".to_string()));
    }

    #[test]
    fn plans_check_and_turn_filters_into_terms() {
        let now = t("2026-11-23T10:00:00Z");
        let p = SearchParams {
            q: Some("Budget the Review".into()),
            from: Some("Zoe.Muller@Example.org".into()),
            after: Some("2026-11-10".into()),
            before: Some("2026-11-12".into()),
            attachment: Some("1".into()),
            unread: Some("1".into()),
            folder: Some("inbox".into()),
            ..Default::default()
        }
        .plan(now)
        .unwrap();
        assert_eq!(
            p.terms,
            vec![
                "budget",
                "review",
                "from:zoe.muller@example.org",
                "has:attachment",
                "in:inbox"
            ]
        );
        assert_eq!(p.words, vec!["budget", "review"]);
        assert_eq!(p.since_ms, t("2026-11-10T00:00:00Z").timestamp_millis());
        assert_eq!(p.until_ms, t("2026-11-11T23:59:59.999Z").timestamp_millis());
        assert!(p.unread);
        assert_eq!(p.limit, SEARCH_PAGE);
        // Nothing asked: the Inbox of the last 30 days.
        let p = SearchParams::default().plan(now).unwrap();
        assert_eq!(p.terms, vec!["in:inbox"]);
        assert_eq!(p.since_ms, (now - Duration::days(30)).timestamp_millis());
        assert_eq!(
            SearchParams {
                from: Some("example.org".into()),
                ..Default::default()
            }
            .plan(now)
            .unwrap()
            .terms,
            vec!["from:@example.org"]
        );
        for bad in [
            SearchParams {
                q: Some("x".repeat(201)),
                ..Default::default()
            },
            SearchParams {
                q: Some("one two three four five six seven".into()),
                ..Default::default()
            },
            SearchParams {
                after: Some("2026-13-01".into()),
                ..Default::default()
            },
            SearchParams {
                after: Some("2026-11-12".into()),
                before: Some("2026-11-12".into()),
                ..Default::default()
            },
            SearchParams {
                folder: Some("trash".into()),
                ..Default::default()
            },
            SearchParams {
                unread: Some("yes please".into()),
                ..Default::default()
            },
            SearchParams {
                cursor: Some("bm9wZQ".into()),
                ..Default::default()
            },
            SearchParams {
                limit: Some(500),
                ..Default::default()
            },
        ] {
            assert!(bad.plan(now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn positions_and_cursors_round_trip_in_time_order() {
        let a = MessageRef::new(Folder::Inbox, t("2026-11-23T10:00:00Z"), "ses-1");
        let b = MessageRef::new(Folder::Sent, t("2026-11-23T10:00:01Z"), "abc");
        assert!(position(&a) < position(&b));
        assert_eq!(from_position(&position(&a)), Some(a.clone()));
        assert_eq!(from_position(&position(&b)), Some(b));
        let c = encode_cursor(&position(&a));
        assert_eq!(decode_cursor(&c), Some(position(&a)));
        for bad in ["", "!!", &B64.encode("q123#i"), &B64.encode("x1")] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn highlights_mark_the_matching_words_and_keep_the_text() {
        let terms = vec!["grusse".to_string(), "report".to_string()];
        let text = "Viele Grüße: the <b>REPORT</b> reports";
        let spans = highlight(text, &terms);
        assert_eq!(
            spans.iter().map(|s| s.text.as_str()).collect::<String>(),
            text
        );
        let marked: Vec<&str> = spans
            .iter()
            .filter(|s| s.mark)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(marked, vec!["Grüße", "REPORT"]);
        assert_eq!(highlight("", &terms), vec![]);
    }
}
