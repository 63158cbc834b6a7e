//! Searching the Online Inbox (issue 17): indexing a message as it is filed, and answering a
//! search of one authorised mailbox, newest first, page by page.
//!
//! A search is the intersection of its terms' postings (`crate::domain::search`). The rarest
//! term drives: the first page of every term is read at once (one Query each, in parallel), the
//! term whose page covers the longest stretch of time per posting is taken as the rarest, and its
//! postings are walked newest first. A candidate is checked against the other terms with what
//! their first pages already showed, and where those pages do not reach, by key lookups
//! (`BatchGetItem`, 100 a request); the survivors' filings are read the same way (and the unread
//! filter applied). Never a Scan, never the 30 days of filings: the requests grow with the
//! candidates examined, which are capped per page ([`MAX_EXAMINED`]); a page cut there carries a
//! cursor like any other.
//!
//! Who sees what: the mailbox is authorised exactly as the list's ([`Mailboxes::authorise`]:
//! the user's own, or one delegated to them while the grant exists), and every key read is built
//! from that mailbox, so neither the search nor its cursor reaches any other.

use crate::app::mailbox::{MailboxError, Mailboxes, User};
use crate::domain::mail::MessageSummary;
use crate::domain::mailbox::{Folder, Listed, MessageRef};
use crate::domain::search::{
    encode_cursor, from_position, message_terms, position, Plan, SearchParams,
};
use crate::ports::error::StoreError;
use crate::ports::store::{Postings, SearchIndex};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};

/// Postings read per term at first (one Query each).
const FIRST_PAGE: usize = 100;
/// Postings of the driving term read per later Query.
const NEXT_PAGE: usize = 300;
/// Candidates examined per request at most: a page cut here comes with a cursor.
pub const MAX_EXAMINED: usize = 3000;
/// Mailboxes a message is indexed in at most (beyond, it is not indexed: see [`index_filed`]).
pub const MAX_INDEXED_MAILBOXES: usize = 100;
/// Keys a `BatchGetItem` takes.
const LOOKUP_CHUNK: usize = 100;

/// Indexes the message `r`, filed in `mailboxes`, under the terms of its raw content: called
/// wherever mail is filed (the inbound path, Sent Items).
pub async fn index_filed(
    index: &dyn SearchIndex,
    org_id: &str,
    mailboxes: &[String],
    r: &MessageRef,
    raw: &[u8],
    summary: &MessageSummary,
) -> Result<(), StoreError> {
    if mailboxes.is_empty() {
        return Ok(());
    }
    if mailboxes.len() > MAX_INDEXED_MAILBOXES {
        // Postings are mailboxes x terms: a message to thousands of mailboxes (a large list)
        // would write hundreds of thousands of items on the inbound path. Not indexed (yet).
        tracing::warn!(org = %org_id, mailboxes = mailboxes.len(), "message to too many mailboxes: not indexed for search");
        return Ok(());
    }
    let terms = message_terms(raw, summary, r.folder);
    index.index_message(org_id, mailboxes, r, &terms).await
}

/// One result: the message as listed, whether it is unread, and the user's words it matched.
#[derive(Debug, Clone)]
pub struct Hit {
    pub listed: Listed,
    pub unread: bool,
    pub matched: Vec<String>,
}

/// A page of results, newest first.
#[derive(Debug, Clone)]
pub struct Results {
    pub mailbox: String,
    pub hits: Vec<Hit>,
    /// The cursor of the next page, if there may be more.
    pub next: Option<String>,
    /// The words searched for (for highlights).
    pub words: Vec<String>,
    /// Candidates examined for this page (a cut at [`MAX_EXAMINED`] shows here).
    pub examined: usize,
}

/// The search's collaborators.
pub struct Search<'a> {
    pub index: &'a dyn SearchIndex,
    pub mailboxes: Mailboxes<'a>,
}

/// What is known of one term from the postings read so far.
struct Known {
    term: String,
    seen: HashSet<String>,
    /// The oldest position read (everything from it up is known).
    floor: Option<String>,
    complete: bool,
}

impl Known {
    fn of(term: &str, p: &Postings) -> Known {
        Known {
            term: term.to_string(),
            seen: p.positions.iter().cloned().collect(),
            floor: p.positions.last().cloned(),
            complete: p.complete,
        }
    }
    /// `Some(answer)` when the pages read say whether `pos` has the term.
    fn knows(&self, pos: &str) -> Option<bool> {
        if self.complete || self.floor.as_deref().is_some_and(|f| pos >= f) {
            Some(self.seen.contains(pos))
        } else {
            None
        }
    }
}

/// The receipt time (ms) of a position.
fn ms_of(pos: &str) -> i64 {
    pos.get(..13).and_then(|m| m.parse().ok()).unwrap_or(0)
}

/// How many postings a term has in the range, as far as its first page tells.
fn estimate(p: &Postings, plan: &Plan) -> f64 {
    if p.complete {
        return p.positions.len() as f64;
    }
    let top = plan.below.as_deref().map(ms_of).unwrap_or(plan.until_ms);
    let span = (top - plan.since_ms).max(1) as f64;
    let covered = p
        .positions
        .last()
        .map(|l| (top - ms_of(l)).max(1) as f64)
        .unwrap_or(span);
    p.positions.len() as f64 * span / covered
}

impl Search<'_> {
    /// A page of the results of `params` in `mailbox` (authorised for `user` first) at `now`.
    pub async fn search(
        &self,
        user: &User<'_>,
        mailbox: &str,
        params: &SearchParams,
        now: DateTime<Utc>,
    ) -> Result<Results, MailboxError> {
        let mailbox = self.mailboxes.authorise(user, mailbox).await?;
        let plan = params.plan(now).map_err(|m| {
            tracing::info!(org = %user.org_id, reason = %m, "search refused");
            MailboxError::BadRequest(m)
        })?;
        self.run(user.org_id, &mailbox, &plan).await
    }

    async fn run(&self, org: &str, mailbox: &str, plan: &Plan) -> Result<Results, MailboxError> {
        let below = plan.below.as_deref();
        let firsts = futures::future::try_join_all(plan.terms.iter().map(|t| {
            self.index.postings(
                org,
                mailbox,
                t,
                plan.since_ms,
                plan.until_ms,
                below,
                FIRST_PAGE,
            )
        }))
        .await?;
        let driver = (0..firsts.len())
            .min_by(|&a, &b| estimate(&firsts[a], plan).total_cmp(&estimate(&firsts[b], plan)))
            .unwrap_or(0);
        let others: Vec<Known> = plan
            .terms
            .iter()
            .zip(&firsts)
            .enumerate()
            .filter(|(i, _)| *i != driver)
            .map(|(_, (t, p))| Known::of(t, p))
            .collect();
        let (Some(term), Some(first)) = (plan.terms.get(driver), firsts.get(driver)) else {
            // A plan always has a term; none is no result rather than a panic.
            return Ok(Results {
                mailbox: mailbox.to_string(),
                hits: vec![],
                next: None,
                words: plan.words.clone(),
                examined: 0,
            });
        };
        let mut queue: VecDeque<String> = first.positions.iter().cloned().collect();
        let mut more = !first.complete;
        let mut out = Results {
            mailbox: mailbox.to_string(),
            hits: Vec::new(),
            next: None,
            words: plan.words.clone(),
            examined: 0,
        };
        let mut last: Option<String> = None;
        loop {
            if queue.is_empty() {
                if !more {
                    return Ok(out);
                }
                let from = last.as_deref().or(below);
                let p = self
                    .index
                    .postings(
                        org,
                        mailbox,
                        term,
                        plan.since_ms,
                        plan.until_ms,
                        from,
                        NEXT_PAGE,
                    )
                    .await?;
                more = !p.complete;
                queue.extend(p.positions);
                if queue.is_empty() {
                    return Ok(out);
                }
            }
            let chunk: Vec<String> = queue.drain(..queue.len().min(LOOKUP_CHUNK)).collect();
            out.examined += chunk.len();
            let survivors = self.intersect(org, mailbox, &chunk, &others).await?;
            if self
                .resolve(org, mailbox, plan, &survivors, &mut out)
                .await?
            {
                return Ok(out);
            }
            last = chunk.last().cloned();
            if out.examined >= MAX_EXAMINED && (more || !queue.is_empty()) {
                // Enough work for one page: the rest from here on the next.
                out.next = last.as_deref().map(encode_cursor);
                tracing::info!(examined = out.examined, "search page cut at the work cap");
                return Ok(out);
            }
        }
    }

    /// Those of `chunk` that have every other term.
    async fn intersect(
        &self,
        org: &str,
        mailbox: &str,
        chunk: &[String],
        others: &[Known],
    ) -> Result<Vec<String>, StoreError> {
        let mut ask = Vec::new();
        let mut keep: Vec<&String> = Vec::new();
        'candidates: for pos in chunk {
            for k in others {
                match k.knows(pos) {
                    Some(false) => continue 'candidates,
                    Some(true) => {}
                    None => ask.push((k.term.clone(), pos.clone())),
                }
            }
            keep.push(pos);
        }
        let found = if ask.is_empty() {
            HashSet::new()
        } else {
            self.index.indexed(org, mailbox, &ask).await?
        };
        Ok(keep
            .into_iter()
            .filter(|pos| {
                others.iter().all(|k| {
                    k.knows(pos)
                        .unwrap_or_else(|| found.contains(&(k.term.clone(), (*pos).clone())))
                })
            })
            .cloned()
            .collect())
    }

    /// Reads the filings of `survivors` (newest first) into `out`, with the unread filter; `true`
    /// when the page is full (its cursor set).
    async fn resolve(
        &self,
        org: &str,
        mailbox: &str,
        plan: &Plan,
        survivors: &[String],
        out: &mut Results,
    ) -> Result<bool, StoreError> {
        let mut rest = survivors;
        while !rest.is_empty() {
            // Without the unread filter every filing found is a result: read only what fills
            // the page.
            let want = if plan.unread {
                rest.len()
            } else {
                (plan.limit - out.hits.len()).min(rest.len())
            };
            let (now, later) = rest.split_at(want);
            rest = later;
            let refs: Vec<MessageRef> = now.iter().filter_map(|p| from_position(p)).collect();
            let mut found: HashMap<String, (Listed, bool)> = self
                .index
                .filings(org, mailbox, &refs)
                .await?
                .into_iter()
                .map(|(l, unread)| (position(&l.r#ref), (l, unread)))
                .collect();
            for pos in now {
                let Some((listed, unread)) = found.remove(pos) else {
                    continue;
                };
                if plan.unread && (!unread || listed.r#ref.folder == Folder::Sent) {
                    continue;
                }
                out.hits.push(Hit {
                    listed,
                    unread,
                    // An intersection: every word matched (in a header or the body).
                    matched: plan.words.clone(),
                });
                if out.hits.len() == plan.limit {
                    out.next = Some(encode_cursor(pos));
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}
