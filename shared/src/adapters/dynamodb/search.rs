//! The search index's items (`TABLE.md`, "The Online Inbox": `IDX#`): [`SearchIndex`] (issue
//! 17). One posting item per (mailbox, term, message), keys only and the filing's TTL, written
//! with `BatchWriteItem`; a term's postings read newest first with one Query per page; a
//! posting's presence and the results' filings read with `BatchGetItem`.

use super::batch::put_request;
use super::codec::{expire, get_s, key, Item};
use super::keys::{index_prefix, index_sk, message_sk, org_pk, MAIL_DAYS, SK};
use super::mailbox::parse_listed;
use super::DynamoStore;
use crate::domain::mailbox::{Listed, MessageRef};
use crate::domain::search::position;
use crate::ports::error::StoreError;
use crate::ports::store::{Postings, SearchIndex};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use std::collections::HashSet;

/// The posting of `term` for the message `r` of `mailbox`: its key and the filing's TTL.
fn posting_item(org_id: &str, mailbox: &str, term: &str, r: &MessageRef) -> Item {
    let mut item = key(org_pk(org_id), index_sk(mailbox, term, &position(r)));
    let at = Utc
        .timestamp_millis_opt(r.received_ms)
        .single()
        .unwrap_or_default();
    expire(&mut item, at, MAIL_DAYS);
    item
}

/// The (term, position) of a posting's sort key in `mailbox`.
fn read_posting(mailbox: &str, sk: &str) -> Option<(String, String)> {
    let rest = sk.strip_prefix(&format!("IDX#{mailbox}#"))?;
    let mut parts = rest.rsplitn(3, '#');
    let (tail, ms, term) = (parts.next()?, parts.next()?, parts.next()?);
    Some((term.to_string(), format!("{ms}#{tail}")))
}

#[async_trait]
impl SearchIndex for DynamoStore {
    /// `BatchWriteItem` of one posting per mailbox and term (25 a request).
    async fn index_message(
        &self,
        org_id: &str,
        mailboxes: &[String],
        r: &MessageRef,
        terms: &[String],
    ) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(mailboxes.len() * terms.len());
        for m in mailboxes {
            for t in terms {
                requests.push(put_request(posting_item(org_id, m, t, r))?);
            }
        }
        self.batch_write(requests).await
    }

    /// One Query: `sk BETWEEN IDX#{m}#{term}#{since} AND` the position below (or the end of
    /// `until`), newest first, keys only.
    async fn postings(
        &self,
        org_id: &str,
        mailbox: &str,
        term: &str,
        since_ms: i64,
        until_ms: i64,
        below: Option<&str>,
        limit: usize,
    ) -> Result<Postings, StoreError> {
        let prefix = index_prefix(mailbox, term);
        let lo = format!("{prefix}{since_ms:013}");
        let mut hi = format!("{prefix}{until_ms:013}#~");
        if let Some(b) = below {
            hi = hi.min(format!("{prefix}{b}"));
        }
        if hi < lo {
            return Ok(Postings {
                positions: vec![],
                complete: true,
            });
        }
        let below_sk = below.map(|b| format!("{prefix}{b}"));
        // One more when the bound is the cursor's own posting (inclusive), left out below.
        let ask = limit.clamp(1, 1000) + usize::from(below.is_some());
        let query = self
            .between(org_id, lo, hi)
            .scan_index_forward(false)
            .projection_expression("sk")
            .limit(ask as i32);
        let out = self.query_page("Query search postings", query).await?;
        let mut positions = Vec::with_capacity(out.items().len());
        for item in out.items() {
            let sk = get_s(item, SK)?;
            if Some(sk) == below_sk.as_deref() {
                continue;
            }
            if let Some(p) = sk.strip_prefix(&prefix) {
                positions.push(p.to_string());
            }
        }
        let mut complete = out.last_evaluated_key.is_none_or(|k| k.is_empty());
        if positions.len() > limit {
            positions.truncate(limit);
            complete = false;
        }
        Ok(Postings {
            positions,
            complete,
        })
    }

    /// `BatchGetItem` of the postings' keys (100 a request).
    async fn indexed(
        &self,
        org_id: &str,
        mailbox: &str,
        pairs: &[(String, String)],
    ) -> Result<HashSet<(String, String)>, StoreError> {
        let keys = pairs
            .iter()
            .map(|(t, p)| key(org_pk(org_id), index_sk(mailbox, t, p)))
            .collect();
        let mut out = HashSet::new();
        for item in self.batch_get("BatchGetItem postings", keys, false).await? {
            if let Some(pair) = read_posting(mailbox, get_s(&item, SK)?) {
                out.insert(pair);
            }
        }
        Ok(out)
    }

    /// `BatchGetItem` of the filings (100 a request); unread = no `read_at` attribute.
    async fn filings(
        &self,
        org_id: &str,
        mailbox: &str,
        refs: &[MessageRef],
    ) -> Result<Vec<(Listed, bool)>, StoreError> {
        let keys = refs
            .iter()
            .map(|r| key(org_pk(org_id), message_sk(mailbox, r)))
            .collect();
        let mut out = Vec::with_capacity(refs.len());
        for item in self.batch_get("BatchGetItem filings", keys, false).await? {
            match parse_listed(mailbox, &item) {
                Ok(l) => out.push((l, !item.contains_key("read_at"))),
                Err(e) => tracing::warn!(error = %e, "unreadable filing skipped in a search"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posting_keys_read_back() {
        let r = MessageRef::parse("i1763892000000ses-1").unwrap();
        let sk = index_sk("bob@acme.test", "from:@example.org", &position(&r));
        assert_eq!(
            sk,
            "IDX#bob@acme.test#from:@example.org#1763892000000#ises-1"
        );
        assert_eq!(
            read_posting("bob@acme.test", &sk),
            Some(("from:@example.org".into(), position(&r)))
        );
        assert_eq!(read_posting("eve@acme.test", &sk), None);
    }
}
