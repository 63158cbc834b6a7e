//! Items written from what the Internet sends, capped in bytes (issue 13): a DynamoDB item is
//! at most 400 KB counted in bytes (attribute names and UTF-8 values), a sort key at most
//! 1,024 bytes and a partition key 2,048. A crafted message (a subject of 300 KB of multi-byte
//! characters, 20,000 addresses in `To`, thousands of attachment names) must neither fail the
//! writes nor lose anything: the mailbox's item keeps a summary cut to
//! [`FILED_SUMMARY_BYTES`] at character boundaries, and the whole summary is kept in the mail
//! bucket under a key derived from the raw message's ([`overflow_key`]); the item says so
//! (`summary_key`), and the message view reads it from there.
//!
//! The budget is far below the 400 KB limit on purpose: a page of the list is one Query of
//! [`crate::domain::mailbox::PAGE_SIZE`] items and a Query answers at most 1 MB, so 100
//! filings of at most [`MAX_FILED_ITEM_BYTES`] still come back in one request.

use crate::domain::mail::MessageSummary;

/// The summary's attributes on a filing (names and values, as DynamoDB counts them) at most.
pub const FILED_SUMMARY_BYTES: usize = 8 * 1024;
/// A whole filing at most: the summary plus the keys and the attributes the service adds
/// (mailbox, ids, raw and overflow keys, times, the unread index, read state, flag, TTL).
pub const MAX_FILED_ITEM_BYTES: usize = 10 * 1024;
/// A Message-ID is cut here (it is part of the hand-out record's sort key, 1,024 bytes at most
/// with the mailbox's 320).
pub const MAX_MESSAGE_ID_BYTES: usize = 512;
/// The subject on an item (the list's line; the message view reads the full one).
pub const MAX_SUBJECT_BYTES: usize = 1024;
/// An address on an item (RFC 5321 allows 64 + 1 + 255).
pub const MAX_ADDRESS_BYTES: usize = 320;
/// A display name on an item.
pub const MAX_NAME_BYTES: usize = 256;
/// An attachment name on an item (file systems' usual limit).
pub const MAX_ATTACHMENT_NAME_BYTES: usize = 255;
/// The preview (already 140 characters) on an item.
pub const MAX_PREVIEW_BYTES: usize = 1024;
/// A free text the service writes about a message (a server's error, a reason set aside).
pub const MAX_NOTE_BYTES: usize = 2048;
/// At most this many addresses of a header are listed on an item (`to_count` / `cc_count`
/// keep the real numbers; the full list is in the overflow object).
pub const MAX_FILED_ADDRESSES: usize = 100;
/// At most this many attachment names are listed on an item.
pub const MAX_FILED_ATTACHMENTS: usize = 50;
/// What the attribute names and numbers of a summary take at most (14 names, three numbers, a
/// date): counted once, generously, instead of per attribute.
const FIXED_OVERHEAD: usize = 256;
/// What DynamoDB adds for a list (3 bytes) and per element (1 byte).
const LIST_OVERHEAD: usize = 3;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to `max` bytes (see [`prefix_bytes`]), owned.
pub fn cap(s: &str, max: usize) -> String {
    prefix_bytes(s, max).to_string()
}

/// Where full summaries are kept in the mail bucket: a prefix of its own, so that the inbound
/// function may write there without being allowed to overwrite received mail (`inbound/`), with
/// the same 35-day expiry (the template's `ExpireSummaries`).
pub const OVERFLOW_PREFIX: &str = "summaries/";

/// The key of a message's full summary in the mail bucket, beside its raw message's key
/// (`summaries/{raw key}.json`). Derived from the raw key, never read from a request.
pub fn overflow_key(raw_key: &str) -> String {
    format!("{OVERFLOW_PREFIX}{raw_key}.json")
}

/// What a summary takes on an item, counted as DynamoDB counts (UTF-8 bytes of the values,
/// list overheads), with the names and numbers as a fixed allowance: never less than the real
/// size.
pub fn summary_bytes(s: &MessageSummary) -> usize {
    let opt = |v: &Option<String>| v.as_ref().map_or(0, String::len);
    let list = |v: &[String]| LIST_OVERHEAD + v.iter().map(|x| x.len() + 1).sum::<usize>();
    FIXED_OVERHEAD
        + s.message_id.len()
        + opt(&s.from)
        + opt(&s.from_name)
        + opt(&s.subject)
        + opt(&s.preview)
        + s.thread.len()
        + list(&s.to)
        + list(&s.cc)
        + list(&s.attachments)
}

/// A summary as filed: cut to the budget, and whether anything was cut (then the full one goes
/// to [`overflow_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub summary: MessageSummary,
    pub overflowed: bool,
}

/// `full` cut to [`FILED_SUMMARY_BYTES`]: each text to its own cap, then the addresses of `To`
/// and `Cc` and the attachment names taken in turn, one of each at a time, while they fit (so
/// a 20,000-address `To` leaves room for `Cc` and the attachments). Counts and everything else
/// are kept. Pure and idempotent: a fitted summary fits again unchanged.
pub fn fit(full: &MessageSummary) -> Fitted {
    let mut cut = false;
    let mut text = |v: &str, max: usize| {
        let p = prefix_bytes(v, max);
        cut |= p.len() < v.len();
        p.to_string()
    };
    let mut out = MessageSummary {
        message_id: text(&full.message_id, MAX_MESSAGE_ID_BYTES),
        message_id_derived: full.message_id_derived,
        from: full.from.as_deref().map(|v| text(v, MAX_ADDRESS_BYTES)),
        from_name: full.from_name.as_deref().map(|v| text(v, MAX_NAME_BYTES)),
        to: Vec::new(),
        to_count: full.to_count,
        cc: Vec::new(),
        cc_count: full.cc_count,
        subject: full.subject.as_deref().map(|v| text(v, MAX_SUBJECT_BYTES)),
        date: full.date,
        size: full.size,
        attachments: Vec::new(),
        kind: full.kind,
        preview: full.preview.as_deref().map(|v| text(v, MAX_PREVIEW_BYTES)),
        thread: text(&full.thread, 64),
    };
    let mut used = summary_bytes(&out);
    let sources: [(&[String], usize, usize); 3] = [
        (&full.to, MAX_ADDRESS_BYTES, MAX_FILED_ADDRESSES),
        (&full.cc, MAX_ADDRESS_BYTES, MAX_FILED_ADDRESSES),
        (
            &full.attachments,
            MAX_ATTACHMENT_NAME_BYTES,
            MAX_FILED_ATTACHMENTS,
        ),
    ];
    let mut lists: [Vec<String>; 3] = Default::default();
    let mut open = [true; 3];
    while open.iter().any(|o| *o) {
        for (k, (src, max_bytes, max_count)) in sources.iter().enumerate() {
            if !open[k] {
                continue;
            }
            let Some(next) = src
                .get(lists[k].len())
                .filter(|_| lists[k].len() < *max_count)
            else {
                open[k] = false;
                continue;
            };
            let v = prefix_bytes(next, *max_bytes);
            if used + v.len() + 1 > FILED_SUMMARY_BYTES {
                open[k] = false;
                continue;
            }
            cut |= v.len() < next.len();
            used += v.len() + 1;
            lists[k].push(v.to_string());
        }
    }
    let [to, cc, attachments] = lists;
    cut |= to.len() < full.to.len()
        || cc.len() < full.cc.len()
        || attachments.len() < full.attachments.len();
    out.to = to;
    out.cc = cc;
    out.attachments = attachments;
    Fitted {
        summary: out,
        overflowed: cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mail::summarize;
    use proptest::prelude::*;

    /// Strings of 1-, 2-, 3- and 4-byte characters (and combining marks) in any mix.
    fn multibyte() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just('é'),
                Just('\u{301}'),
                Just('€'),
                Just('中'),
                Just('😀'),
                any::<char>(),
            ],
            0..600,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    /// `n` random strings of up to `max` characters of every width (most short), from `seed`:
    /// built directly, as thousands of proptest value trees are slow in a debug build.
    fn random_strings(seed: u64, n: usize, max: usize) -> Vec<String> {
        use rand::{Rng, SeedableRng};
        const WIDTHS: [char; 6] = ['a', 'é', '\u{301}', '€', '中', '😀'];
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let len = if rng.random_bool(0.8) {
                    rng.random_range(0..24)
                } else {
                    rng.random_range(0..=max)
                };
                (0..len)
                    .map(|_| match rng.random_range(0..8) {
                        0 => rng.random::<char>(),
                        i => WIDTHS[i % WIDTHS.len()],
                    })
                    .collect()
            })
            .collect()
    }

    proptest! {
        #[test]
        fn a_prefix_is_never_over_budget_valid_and_a_prefix(s in multibyte(), max in 0usize..2500) {
            let p = prefix_bytes(&s, max);
            prop_assert!(p.len() <= max);
            prop_assert!(s.starts_with(p));
            // The longest such prefix: one more character would be over.
            if p.len() < s.len() {
                let next = s[p.len()..].chars().next().unwrap();
                prop_assert!(p.len() + next.len_utf8() > max);
            }
            prop_assert!(std::str::from_utf8(p.as_bytes()).is_ok());
        }

        #[test]
        fn a_fitted_summary_is_within_budget_and_a_prefix_of_the_full_one(
            subject in multibyte(),
            name in multibyte(),
            seed in any::<u64>(),
            counts in (0usize..300, 0usize..50, 0usize..120),
            repeat in 1usize..40,
        ) {
            let to = random_strings(seed, counts.0, 400);
            let cc = random_strings(seed ^ 1, counts.1, 400);
            let attachments = random_strings(seed ^ 2, counts.2, 400);
            let full = MessageSummary {
                subject: Some(subject.repeat(repeat)),
                from_name: Some(name.repeat(repeat)),
                from: Some(name.clone()),
                message_id: name.repeat(repeat),
                to_count: to.len(),
                to: to.clone(),
                cc_count: cc.len(),
                cc: cc.clone(),
                attachments: attachments.clone(),
                ..summarize(b"Subject: x\r\n\r\nbody")
            };
            let f = fit(&full);
            prop_assert!(summary_bytes(&f.summary) <= FILED_SUMMARY_BYTES);
            let s = &f.summary;
            prop_assert!(full.subject.as_ref().unwrap().starts_with(s.subject.as_deref().unwrap()));
            prop_assert!(full.message_id.starts_with(&s.message_id));
            prop_assert!(s.message_id.len() <= MAX_MESSAGE_ID_BYTES);
            for (cut, whole) in [(&s.to, &full.to), (&s.cc, &full.cc), (&s.attachments, &full.attachments)] {
                prop_assert!(cut.len() <= whole.len());
                for (c, w) in cut.iter().zip(whole.iter()) {
                    prop_assert!(w.starts_with(c.as_str()));
                }
            }
            prop_assert_eq!(s.to_count, full.to_count);
            let changed = s != &full;
            prop_assert_eq!(f.overflowed, changed);
            // Idempotent: what is filed fits again as it is.
            prop_assert_eq!(fit(s).summary, s.clone());
        }
    }

    #[test]
    fn a_summary_that_fits_is_kept_whole() {
        let full = summarize(
            "From: Zoë <zoe@example.org>\r\nTo: a@x.test, b@x.test\r\nSubject: Grüße\r\n\r\nhi"
                .as_bytes(),
        );
        let f = fit(&full);
        assert!(!f.overflowed);
        assert_eq!(f.summary, full);
    }

    #[test]
    fn twenty_thousand_recipients_leave_room_for_cc_and_attachments() {
        let to: Vec<String> = (0..20_000).map(|i| format!("u{i:05}@big.test")).collect();
        let full = MessageSummary {
            to_count: to.len(),
            to,
            cc: vec!["c@x.test".into()],
            cc_count: 1,
            attachments: vec!["a.pdf".into()],
            subject: Some("€".repeat(100_000)),
            ..summarize(b"Subject: x\r\n\r\nbody")
        };
        let f = fit(&full);
        assert!(f.overflowed);
        assert!(summary_bytes(&f.summary) <= FILED_SUMMARY_BYTES);
        assert_eq!(f.summary.cc, vec!["c@x.test"]);
        assert_eq!(f.summary.attachments, vec!["a.pdf"]);
        assert!(!f.summary.to.is_empty());
        assert_eq!(f.summary.to_count, 20_000);
        assert_eq!(f.summary.subject.as_ref().unwrap().len(), 1023);
    }

    #[test]
    fn the_overflow_lives_beside_the_raw_message() {
        assert_eq!(overflow_key("inbound/abc"), "summaries/inbound/abc.json");
    }
}
