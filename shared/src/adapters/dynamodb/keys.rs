//! Every key of the single table: attribute names, partition and sort key builders, prefixes,
//! `gsi1` partitions and how long each item type is kept. The order is `TABLE.md`'s: its key
//! table first, then its item types section by section, so that the two read side by side.
//!
//! Numbers in sort keys are zero-padded (windows to 12 digits, epoch milliseconds to 13) so that
//! lexical order is numeric order: ranges and "oldest first" are plain key conditions.

use crate::domain::mailbox::{Folder, MessageRef};
use crate::domain::window::Window;
use chrono::{DateTime, Utc};

// ------------------------------------------------------------------ TABLE.md: the key table

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Partition key attribute of the sparse index [`GSI1`].
pub const GSI1PK: &str = "gsi1pk";
/// Sort key attribute of the sparse index [`GSI1`].
pub const GSI1SK: &str = "gsi1sk";
/// Name of the sparse index (monitored organisations, organisations with a queue).
pub const GSI1: &str = "gsi1";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTR: &str = "expires_at";

/// Prefix of an organisation's partition key.
pub const ORG_PREFIX: &str = "ORG#";
/// Partition key of everything of one organisation.
pub fn org_pk(org_id: &str) -> String {
    format!("{ORG_PREFIX}{org_id}")
}
/// The organisation of an `ORG#` partition key.
pub fn org_of(pk: &str) -> &str {
    pk.trim_start_matches(ORG_PREFIX)
}

// ------------------------------------------------------------------ the organisation and monitoring

/// Sort key of the configuration.
pub const CONFIG_SK: &str = "CONFIG";
/// `gsi1` partition of the configurations with monitoring on (sort key: [`org_pk`]).
pub const MONITORED: &str = "MONITORED";

/// Prefix of a domain ownership item's partition key.
pub const DOMAIN_PREFIX: &str = "DOMAIN#";
/// Partition key of a domain's ownership item (lower case: domains are case-insensitive).
pub fn domain_pk(domain: &str) -> String {
    format!("{DOMAIN_PREFIX}{}", domain.to_ascii_lowercase())
}
/// Sort key of a domain's ownership item.
pub const DOMAIN_SK: &str = "DOMAIN";
/// The domain of a `DOMAIN#` partition key.
pub fn domain_of(pk: &str) -> &str {
    pk.trim_start_matches(DOMAIN_PREFIX)
}

/// Prefix of an organisation's pending domain claims (P11): `DOMAINCLAIM#{domain}`.
pub const CLAIM_PREFIX: &str = "DOMAINCLAIM#";
/// Sort key of a pending claim of `domain`.
pub fn claim_sk(domain: &str) -> String {
    format!("{CLAIM_PREFIX}{}", domain.to_ascii_lowercase())
}

/// Sort key of the counter.
pub const COUNTER_SK: &str = "COUNTER";

/// Sort key of a window's history item (D7).
pub fn history_sk(w: Window) -> String {
    format!("WINDOW#{}", w.key())
}
/// History is kept this long (D7).
pub const HISTORY_DAYS: i64 = 30;

/// Sort key of a window's inbound outcomes (D2).
pub fn inbound_sk(w: Window) -> String {
    format!("INBOUND#{}", w.key())
}
/// Sort key of a window's probe (D3).
pub fn probe_sk(w: Window) -> String {
    format!("PROBE#{}", w.key())
}
/// Raw window inputs (delivery counts, probes) are only needed until judged; kept two days for
/// diagnosis.
pub const INPUT_DAYS: i64 = 2;

// ------------------------------------------------------------------ alerts

/// Sort key of the open alert episode.
pub const ALERT_SK: &str = "ALERT";
/// Sort key of one alert send's claim.
pub fn send_sk(send_key: &str) -> String {
    format!("ALERTSEND#{send_key}")
}
/// Alert send claims are kept this long (audit of what was sent).
pub const SEND_DAYS: i64 = 30;

// ------------------------------------------------------------------ continuity

/// Sort key of the continuity state (event, suspension).
pub const CONTINUITY_SK: &str = "CONTINUITY";
/// Sort key of the users' mobile numbers as imports before the per-user items stored them
/// (A6); read only while no [`USERSYNC_SK`] exists.
pub const USERS_SK: &str = "USERS";

/// Prefix of the records of continuity requests that took effect: `REQ#{request id}`.
pub const REQUEST_PREFIX: &str = "REQ#";
/// Sort key of the record that request `request_id` took effect (a repeat finds it).
pub fn request_sk(request_id: &str) -> String {
    format!("{REQUEST_PREFIX}{request_id}")
}
/// Requests are remembered this long: longer than an alert link lives (24 hours), whose page
/// is where a form can be sent again, so every possible repeat finds its record; and short
/// enough that thousands of actions leave no lasting weight.
pub const REQUEST_DAYS: i64 = 3;

/// Prefix of audit items' sort keys: `AUDIT#{epoch ms, 13 digits}#{request id}`.
pub const AUDIT_PREFIX: &str = "AUDIT#";
/// Sort key of an audit item.
pub fn audit_sk(at: DateTime<Utc>, request_id: &str) -> String {
    format!("{AUDIT_PREFIX}{}#{request_id}", millis(at))
}
/// The sort key range of the audit items from `from` to `to` (both included).
pub fn audit_range(from: DateTime<Utc>, to: DateTime<Utc>) -> (String, String) {
    (
        format!("{AUDIT_PREFIX}{}", millis(from)),
        format!("{AUDIT_PREFIX}{}~", millis(to)),
    )
}
/// Audit items are kept this long.
pub const AUDIT_DAYS: i64 = 400;

// ------------------------------------------------------------------ inbound mail and the queue

/// Sort key of the queue's figures item.
pub const QUEUESTAT_SK: &str = "QUEUESTAT";
/// `gsi1` partition of the organisations whose queue needs a look (on `QUEUESTAT`).
pub const QUEUED: &str = "QUEUED";
/// The due marker (`gsi1sk` under [`QUEUED`]): wake time (13-digit epoch ms), then the
/// organisation.
pub fn wake_key(wake: DateTime<Utc>, org_id: &str) -> String {
    format!("{}#{org_id}", millis(wake))
}
/// Every due marker whose wake time is at or before `now` sorts below this.
pub fn due_before(now: DateTime<Utc>) -> String {
    format!("{:013}", now.timestamp_millis().max(0) + 1)
}

/// Prefix of queued messages' sort keys: `QUEUE#{enqueued epoch millis, 13 digits}#{message id}`.
pub const QUEUE_PREFIX: &str = "QUEUE#";
/// Sort key of a queued message.
pub fn queue_sk(enqueued_at: DateTime<Utc>, message_id: &str) -> String {
    format!("{QUEUE_PREFIX}{}#{message_id}", millis(enqueued_at))
}

/// Sort key of the once-per-SES-message record (Q6).
pub fn inmsg_sk(ses_id: &str) -> String {
    format!("INMSG#{ses_id}")
}
/// Filings, sent items, send and hand-out records and the once-per-message record are kept this
/// long (U1: 30 days).
pub const MAIL_DAYS: i64 = 30;

/// Prefix of mail set aside (quarantined, or undeliverable without a bounce):
/// `ASIDE#{set aside epoch ms, 13 digits}#{SES message id}#{kind}`.
pub const ASIDE_PREFIX: &str = "ASIDE#";
/// Sort key of a message set aside at `at`.
pub fn aside_sk(at: DateTime<Utc>, ses_id: &str, kind: &str) -> String {
    format!("{ASIDE_PREFIX}{}#{ses_id}#{kind}", millis(at))
}

// ------------------------------------------------------------------ the Online Inbox

/// Sort key of a message filed in a mailbox: newest last within the mailbox. The same layout as
/// [`message_sk`] of an inbox [`MessageRef`].
pub fn mailbox_sk(mailbox: &str, received_at: DateTime<Utc>, ses_id: &str) -> String {
    format!("MBX#{mailbox}#{}#{ses_id}", millis(received_at))
}
/// Sort key of a filing (`MBX#`) or sent item (`SENT#`) of `mailbox`. The layout is the
/// domain's ([`MessageRef::sort_key`]): a page cursor is a position in it.
pub fn message_sk(mailbox: &str, r: &MessageRef) -> String {
    r.sort_key(mailbox)
}
/// Prefix of every item of `folder` in `mailbox`.
pub fn folder_prefix(folder: Folder, mailbox: &str) -> String {
    format!("{}#{mailbox}#", folder.prefix())
}
/// The sort key range of `folder` in `mailbox` from `since` on.
pub fn folder_range(folder: Folder, mailbox: &str, since: DateTime<Utc>) -> (String, String) {
    let prefix = folder_prefix(folder, mailbox);
    (format!("{prefix}{}", millis(since)), format!("{prefix}~"))
}

/// `gsi1pk` of an unread received message (issue 17's read state): the sparse unread index of
/// one folder of one mailbox. Set when a message is filed, removed when it is read; expired
/// filings leave the index with the item.
pub fn unread_pk(org_id: &str, folder: Folder, mailbox: &str) -> String {
    format!("UNREAD#{org_id}#{}#{mailbox}", folder.prefix())
}
/// `gsi1sk` of an unread message: its receipt time (13-digit epoch ms) and id, so that a count
/// starts at the 30-day window.
pub fn unread_sk(r: &MessageRef) -> String {
    format!("{:013}#{}", r.received_ms, r.id)
}
/// The lowest `gsi1sk` of the unread messages received at or after `since`.
pub fn unread_since(since: DateTime<Utc>) -> String {
    millis(since)
}
/// Prefix of the postings of `term` in `mailbox` (the search index, issue 17).
pub fn index_prefix(mailbox: &str, term: &str) -> String {
    format!("IDX#{mailbox}#{term}#")
}
/// Sort key of one posting: `term` in `mailbox` at the message's position
/// (`{received ms, 13 digits}#{folder letter}{id}`, [`crate::domain::search::position`]).
pub fn index_sk(mailbox: &str, term: &str, position: &str) -> String {
    format!("{}{position}", index_prefix(mailbox, term))
}

/// Sort key of a send's idempotency record (U3).
pub fn sendkey_sk(mailbox: &str, key: &str) -> String {
    format!("SENDKEY#{mailbox}#{key}")
}

/// Sort key of a block rule of a mailbox (U4).
pub fn block_sk(mailbox: &str, target: &str) -> String {
    format!("{}{target}", block_prefix(mailbox))
}
/// Prefix of a mailbox's block rules.
pub fn block_prefix(mailbox: &str) -> String {
    format!("BLOCK#{mailbox}#")
}

/// Sort key of a hand-out record (C3).
pub fn handout_sk(mailbox: &str, message_id: &str) -> String {
    format!("{}{message_id}", handout_prefix(mailbox))
}
/// Prefix of a mailbox's hand-out records.
pub fn handout_prefix(mailbox: &str) -> String {
    format!("HANDOUT#{mailbox}#")
}

// ------------------------------------------------------------------ the directory

/// Sort key of a delegate grant: `user` may act for `mailbox` (U5).
pub fn delegate_sk(user: &str, mailbox: &str) -> String {
    format!(
        "{}{}",
        delegate_prefix(Some(user)),
        mailbox.to_ascii_lowercase()
    )
}
/// Prefix of one user's grants (`Some`), or of every grant of the organisation.
pub fn delegate_prefix(user: Option<&str>) -> String {
    match user {
        Some(u) => format!("DELEGATE#{}#", u.to_ascii_lowercase()),
        None => "DELEGATE#".to_string(),
    }
}

/// Prefix of distribution lists' sort keys.
pub const GROUP_PREFIX: &str = "GROUP#";
/// Sort key of a distribution list (U6).
pub fn group_sk(address: &str) -> String {
    format!("{GROUP_PREFIX}{}", address.to_ascii_lowercase())
}

/// Sort key of the directory import's record (U6).
pub const DIRSYNC_SK: &str = "DIRSYNC";

/// Sort key of the user directory's current generation (A6, U11): which `USER#{generation}#`
/// items are the directory. An import writes a new generation, then switches this item.
pub const USERSYNC_SK: &str = "USERSYNC";
/// Prefix of every user item, of every generation.
pub const USER_PREFIX: &str = "USER#";
/// Prefix of one generation's user items.
pub fn user_prefix(generation: &str) -> String {
    format!("{USER_PREFIX}{generation}#")
}
/// Sort key of a user of the directory's generation `generation`.
pub fn user_sk(generation: &str, address: &str) -> String {
    format!(
        "{}{}",
        user_prefix(generation),
        address.to_ascii_lowercase()
    )
}

/// Sort key of a user's passkey (U11).
pub fn passkey_sk(address: &str, credential_id: &str) -> String {
    format!("{}{credential_id}", passkey_prefix(address))
}
/// Prefix of a user's passkeys.
pub fn passkey_prefix(address: &str) -> String {
    format!("PASSKEY#{}#", address.to_ascii_lowercase())
}

// ------------------------------------------------------------------ sign-in (U11)

/// Partition key of an address's sign-in items (its code, its request counters), whether or not
/// the address is a user.
pub fn signin_pk(address: &str) -> String {
    format!("SIGNIN#{}", address.to_ascii_lowercase())
}
/// Sort key of an address's current one-time code.
pub const CODE_SK: &str = "CODE";
/// Partition key of a source's request counters to one area of the API (`links`, `auth`);
/// `source` is the counted key (an IPv4 address, an IPv6 /64).
pub fn source_pk(area: &str, source: &str) -> String {
    format!("SOURCE#{area}#{source}")
}
/// Partition key of the action counters of one alert link (the organisation's alert id).
pub fn link_rate_pk(org_id: &str, alert_id: &str) -> String {
    format!("LINK#{org_id}#{alert_id}")
}
/// Partition key of the action counters of all of an organisation's alert links.
pub fn org_links_rate_pk(org_id: &str) -> String {
    format!("LINKS#{org_id}")
}
/// Partition key of the upload counters of one user (the digest of their subject) of an
/// organisation (issue 13).
pub fn uploads_rate_pk(org_id: &str, user: &str) -> String {
    format!("UPLOADS#{org_id}#{user}")
}
/// Sort key of a request counter of the window starting at epoch second `window`.
pub fn rate_sk(window: i64) -> String {
    format!("RATE#{window:012}")
}
/// Codes and counters are kept this long (a code lives 10 minutes; the item is checked, not
/// trusted to be gone).
pub const SIGNIN_DAYS: i64 = 1;
/// Sort key of the organisation's sign-in SMS count of `day` (`YYYY-MM-DD`).
pub fn smsday_sk(day: &str) -> String {
    format!("SMSDAY#{day}")
}
/// Sort key of the events whose users were told on `day` (`YYYY-MM-DD`, A6).
pub fn noticeday_sk(day: &str) -> String {
    format!("NOTICEDAY#{day}")
}
/// Partition key of a session (the SHA-256 of its token).
pub fn session_pk(digest: &str) -> String {
    format!("SESSION#{digest}")
}
/// Sort key of a session.
pub const SESSION_SK: &str = "SESSION";
/// `gsi1` partition of a user's sessions (sort key: opened, 13-digit epoch ms): an
/// administrator's revocation finds and ends them.
pub fn user_sessions_gsi1pk(org_id: &str, address: &str) -> String {
    format!("SESSIONS#{org_id}#{}", address.to_ascii_lowercase())
}
/// Partition key of a passkey ceremony's state.
pub fn ceremony_pk(id: &str) -> String {
    format!("WEBAUTHN#{id}")
}
/// Sort key of a passkey ceremony's state.
pub const CEREMONY_SK: &str = "CEREMONY";
/// Partition key of a passkey's credential id (which user it belongs to: the sign-in reads it
/// before it knows the user).
pub fn credential_pk(credential_id: &str) -> String {
    format!("CREDENTIAL#{credential_id}")
}
/// Sort key of a credential id's item.
pub const CREDENTIAL_SK: &str = "CREDENTIAL";

/// Epoch milliseconds, 13 digits (times before 1970 as 0).
fn millis(t: DateTime<Utc>) -> String {
    format!("{:013}", t.timestamp_millis().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn numbers_in_keys_are_padded_so_that_text_order_is_time_order() {
        let at = t("2026-01-02T03:04:05.678Z");
        assert_eq!(queue_sk(at, "m1"), "QUEUE#1767323045678#m1");
        assert_eq!(audit_sk(at, "r1"), "AUDIT#1767323045678#r1");
        assert_eq!(wake_key(at, "acme"), "1767323045678#acme");
        assert!(wake_key(at, "acme") < due_before(at));
        assert!(queue_sk(t("2001-09-09T01:46:39Z"), "a") < queue_sk(at, "a"));
        assert_eq!(
            audit_range(at, at),
            (
                "AUDIT#1767323045678".to_string(),
                "AUDIT#1767323045678~".to_string()
            )
        );
    }

    #[test]
    fn a_filing_key_is_the_key_of_its_inbox_ref() {
        let at = t("2026-01-02T03:04:05.678Z");
        let r = MessageRef::new(Folder::Inbox, at, "ses-1");
        assert_eq!(
            mailbox_sk("bob@acme.test", at, "ses-1"),
            message_sk("bob@acme.test", &r)
        );
        let (lo, hi) = folder_range(Folder::Inbox, "bob@acme.test", at);
        let sk = message_sk("bob@acme.test", &r);
        assert!(lo <= sk && sk < hi, "{lo} <= {sk} < {hi}");
        assert!(sk.starts_with(&folder_prefix(Folder::Inbox, "bob@acme.test")));
    }

    #[test]
    fn case_insensitive_names_are_lower_cased() {
        assert_eq!(domain_pk("Acme.TEST"), "DOMAIN#acme.test");
        assert_eq!(domain_of(&domain_pk("acme.test")), "acme.test");
        assert_eq!(org_of(&org_pk("acme")), "acme");
        assert_eq!(group_sk("Team@Acme.test"), "GROUP#team@acme.test");
        assert_eq!(
            delegate_sk("Bob@acme.test", "Sales@acme.test"),
            "DELEGATE#bob@acme.test#sales@acme.test"
        );
        assert!(delegate_sk("bob@x", "s@x").starts_with(&delegate_prefix(Some("BOB@x"))));
        assert_eq!(block_sk("bob@x", "@spam.test"), "BLOCK#bob@x#@spam.test");
        assert_eq!(handout_sk("bob@x", "<m@x>"), "HANDOUT#bob@x#<m@x>");
    }
}
