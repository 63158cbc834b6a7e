//! The inbound path (Q1, Q2, Q6, Q7, U6): one message received by SES, already stored in S3.
//!
//! Order matters for "nothing lost": the message is first taken into the queue once per SES
//! message id (a conditional transaction that also moves the queue count), then filed for its
//! mailboxes (idempotent puts keyed on the SES message id, then `filed_at` on the once-per-message
//! record), and only then delivered; the server's 250 takes it out of the queue again. An error
//! while filing fails the event but the message is already queued: it is delivered whatever
//! happens to the event, and the repeated event finds it queued but not filed and files it. A
//! repeated or concurrent invocation after a finished filing does nothing more; an invocation
//! killed after delivery leaves the message queued, so the queue delivers it again (a
//! duplicate), never drops it.
//!
//! SES's verdicts decide the rest (Q9): a virus is set aside (quarantined, with an audit record)
//! and neither filed nor delivered; spam is filed in the mailboxes' spam folder and delivered
//! with a spam flag; every delivery carries the trace fields of [`crate::domain::verdicts`].
//!
//! A message to more than 100 recipients of one organisation is queued as parts
//! ([`QueuedMessage::parts`]), taken together (one transaction) and delivered one SMTP
//! transaction a part, each retried, bounced or set aside on its own.

use crate::app::overflow::keep_overflow;
use crate::app::queue::{Attempt, Courier};
use crate::app::search::index_filed;
use crate::domain::config::OrgConfig;
use crate::domain::delivery::Deadline;
use crate::domain::mail::{domain_of, mailbox_of, summarize, MessageSummary};
use crate::domain::mailbox::{Filing, Folder, MessageRef};
use crate::domain::monitoring::ArrivalOutcome;
use crate::domain::probe::ProbeToken;
use crate::domain::queue::{backoff, IN_FLIGHT_LEASE_MINUTES};
use crate::domain::queue::{AcceptOutcome, AsideKind, QueuedMessage, SetAside};
use crate::domain::verdicts::{Disposition, Origin, Verdicts};
use crate::ports::error::Failure;
use crate::ports::error::{BlobError, StoreError};
use crate::ports::store::{MailStore, ProbeArrivals};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One message as SES receiving reports it (the fields the inbound path reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The SES message id; the raw message is at `{prefix}{id}` in the mail bucket.
    pub ses_id: String,
    /// When SES received it: the same on every retry of the event.
    pub received_at: DateTime<Utc>,
    /// Envelope sender (`MAIL FROM`); empty for `<>`.
    pub sender: String,
    /// Envelope recipients this receipt rule matched (the service's domains only).
    pub recipients: Vec<String>,
    /// What SES's scan found (Q9, Q10).
    pub verdicts: Verdicts,
}

/// Why a message (or some of its recipients) was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// Reading the raw message failed: retry the event (Lambda does).
    #[error(transparent)]
    Raw(#[from] BlobError),
    /// The table failed: retry the event.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InboundError {
    /// Whether the same event may succeed later.
    pub fn is_transient(&self) -> bool {
        match self {
            InboundError::Raw(BlobError::Transient(_)) => true,
            InboundError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// What became of the message for one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum OrgResult {
    /// Delivered (or bounced for good) at once: not left in the queue.
    Done { delivered: usize, bounced: usize },
    /// Queued: the server did not take (all of) it; the queue retries.
    Queued { remaining: usize, reason: String },
    /// Queued without an attempt: deliveries are paused (Q4).
    Paused,
    /// Already taken by an earlier or concurrent invocation: nothing done.
    Duplicate,
    /// Not taken, with the reason.
    Refused { reason: String },
    /// Set aside for administrators (a virus): neither filed nor delivered (Q9).
    Quarantined,
}

/// The handler's answer for one message.
#[derive(Debug, Clone, Serialize)]
pub struct InboundReport {
    pub ses_id: String,
    pub message_id: String,
    pub size: u64,
    /// Probe arrivals recorded (Q7).
    pub probes: usize,
    pub organisations: BTreeMap<String, OrgResult>,
    /// Recipients no organisation owns or that are not addresses, with the reason.
    pub refused: Vec<(String, String)>,
    /// Mailboxes filed.
    pub filed: usize,
}

/// The inbound path's collaborators.
pub struct Inbound<'a> {
    pub mail: &'a dyn MailStore,
    pub probes: &'a dyn ProbeArrivals,
    pub courier: Courier<'a>,
    /// Prefix of raw message keys in the bucket (the receipt rule's S3 object key prefix).
    pub raw_prefix: &'a str,
    /// When delivery must have given up: the invocation's deadline less the time to settle.
    pub deadline: Deadline,
}

impl Inbound<'_> {
    /// Handles one received message.
    pub async fn handle(
        &self,
        r: &Receipt,
        now: DateTime<Utc>,
    ) -> Result<InboundReport, InboundError> {
        let raw_key = format!("{}{}", self.raw_prefix, r.ses_id);
        let raw = self.courier.raw.get(&raw_key).await?;
        let summary = summarize(&raw);
        let mut report = InboundReport {
            ses_id: r.ses_id.clone(),
            message_id: summary.message_id.clone(),
            size: summary.size,
            probes: 0,
            organisations: BTreeMap::new(),
            refused: Vec::new(),
            filed: 0,
        };

        // Probes (Q7): recorded for the outbound check, shown to nobody, delivered nowhere.
        let mut ordinary = Vec::new();
        for rcpt in &r.recipients {
            match ProbeToken::from_recipient(rcpt) {
                Some(token) => {
                    match self
                        .probes
                        .record_probe_arrival(&token, r.received_at)
                        .await?
                    {
                        ArrivalOutcome::Recorded | ArrivalOutcome::Duplicate => report.probes += 1,
                        ArrivalOutcome::Unknown => {
                            tracing::warn!(org = %token.org_id, "unknown probe token ignored")
                        }
                    }
                }
                None => ordinary.push(rcpt.clone()),
            }
        }

        // Recipients by organisation: the most specific owned domain wins.
        let mut candidates = Vec::new();
        for rcpt in &ordinary {
            if let Some(d) = domain_of(rcpt) {
                candidates.extend(parent_domains(&d));
            }
        }
        let owners = if candidates.is_empty() {
            HashMap::new()
        } else {
            self.mail.orgs_for_domains(&candidates).await?
        };
        let mut by_org: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rcpt in ordinary {
            let Some(domain) = domain_of(&rcpt) else {
                report.refused.push((rcpt, "not an email address".into()));
                continue;
            };
            match parent_domains(&domain)
                .iter()
                .find_map(|d| owners.get(d.as_str()))
            {
                Some(org) => by_org.entry(org.clone()).or_default().push(rcpt),
                None => report.refused.push((
                    rcpt,
                    format!("no organisation here receives mail for {domain}"),
                )),
            }
        }

        for (org_id, rcpts) in by_org {
            let result = self
                .for_org(
                    &org_id,
                    r,
                    &raw_key,
                    &raw,
                    &summary,
                    rcpts,
                    now,
                    &mut report,
                )
                .await?;
            report.organisations.insert(org_id, result);
        }
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn for_org(
        &self,
        org_id: &str,
        r: &Receipt,
        raw_key: &str,
        raw: &[u8],
        summary: &MessageSummary,
        rcpts: Vec<String>,
        now: DateTime<Utc>,
        report: &mut InboundReport,
    ) -> Result<OrgResult, InboundError> {
        let Some(config) = self.mail.org_config(org_id).await? else {
            return Ok(OrgResult::Refused {
                reason: format!("organisation {org_id} owns the domain but has no configuration"),
            });
        };
        let disposition = r.verdicts.disposition();
        let origin = Origin::Received {
            verdicts: r.verdicts,
        };
        let msg = QueuedMessage::new(org_id, &r.ses_id, raw_key, r.received_at, summary)
            .envelope(&r.sender, rcpts.clone())
            .origin(origin)
            .leased_until(now + Duration::minutes(IN_FLIGHT_LEASE_MINUTES));
        if disposition == Disposition::Quarantine {
            let aside = SetAside::of(
                &msg,
                AsideKind::Quarantined,
                rcpts,
                r.received_at,
                "Amazon SES found a virus in it (virusVerdict FAIL): neither filed nor delivered"
                    .into(),
            );
            tracing::warn!(org = org_id, ses_id = %r.ses_id, "virus quarantined");
            return Ok(
                match self
                    .mail
                    .quarantine(&aside, &aside.audit("service:inbound"))
                    .await?
                {
                    AcceptOutcome::Accepted => OrgResult::Quarantined,
                    AcceptOutcome::Duplicate => OrgResult::Duplicate,
                },
            );
        }
        // A long envelope is queued as parts of at most 100 recipients (one SMTP transaction
        // each), all taken in the one transaction that also gates repeats.
        let parts = match msg.parts() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(org = org_id, ses_id = %r.ses_id, error = %e, "envelope too large to queue: refused");
                return Ok(OrgResult::Refused {
                    reason: e.to_string(),
                });
            }
        };
        // Durable first (Q6): the message is in the queue before anything else can fail, so
        // an error while filing (throttling on a long list, say) fails the event but never
        // the delivery; the repeated event files it again.
        let wake = now + backoff(&config.queue, 1);
        let accepted = self.mail.accept_message(&parts, wake).await?;
        if accepted == AcceptOutcome::Duplicate && self.mail.filed(org_id, &r.ses_id).await? {
            return Ok(OrgResult::Duplicate);
        }
        let mut mailboxes = self.mailboxes(&config, &rcpts).await?;
        // U4: mailboxes that blocked the sender (or marked it as spam) do not file it; delivery
        // to the organisation's server is unchanged.
        if let Some(from) = &summary.from {
            let blocked = self
                .mail
                .blocked_mailboxes(org_id, &mailboxes, from)
                .await?;
            mailboxes.retain(|m| !blocked.contains(m));
        }
        let folder = if disposition == Disposition::Spam {
            Folder::Junk
        } else {
            Folder::Inbox
        };
        // The items get what fits their byte budget (the store cuts the summary and names the
        // whole one); a summary over it is kept whole in the bucket first (issue 13: a crafted
        // header must not fail the filing, nor be lost).
        let fitted = keep_overflow(self.courier.raw, raw_key, summary).await?;
        self.mail
            .file_message(
                &Filing {
                    org_id,
                    ses_id: &r.ses_id,
                    received_at: r.received_at,
                    raw_key,
                    summary,
                    folder,
                },
                &mailboxes,
            )
            .await?;
        // Indexed after filing: a failure retries the event, which files and indexes again
        // (both keyed on the SES id).
        let filed = MessageRef::new(folder, r.received_at, &r.ses_id);
        index_filed(self.mail, org_id, &mailboxes, &filed, raw, &fitted).await?;
        self.mail.mark_filed(org_id, &r.ses_id, now).await?;
        report.filed += mailboxes.len();
        if accepted == AcceptOutcome::Duplicate {
            // Filed now; the delivery is the queue's (the first invocation's lease runs out).
            return Ok(OrgResult::Duplicate);
        }
        if config.queue.paused {
            // Released at once for the queue, which holds it while paused.
            for p in parts {
                self.courier.queue.requeue(&p.leased_until(now)).await?;
            }
            return Ok(OrgResult::Paused);
        }
        self.attempt_parts(&config, parts, raw, now).await
    }

    /// Delivers the parts in order, each its own SMTP transaction, within the one deadline.
    /// Once every route failed for one, the rest are released to the queue untried (it backs
    /// off for the organisation) rather than each waiting for the same dead server.
    async fn attempt_parts(
        &self,
        config: &OrgConfig,
        parts: Vec<QueuedMessage>,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<OrgResult, InboundError> {
        let (mut delivered, mut bounced, mut remaining) = (0, 0, 0);
        let mut reason = None;
        let mut parts = parts.into_iter();
        for p in parts.by_ref() {
            match self
                .courier
                .attempt(config, &p, raw, now, self.deadline)
                .await?
            {
                Attempt::Done {
                    delivered: d,
                    bounced: b,
                } => {
                    delivered += d;
                    bounced += b;
                }
                Attempt::Pending {
                    remaining: left,
                    route_failed,
                    reason: why,
                } => {
                    remaining += left;
                    reason = Some(why);
                    if route_failed {
                        break;
                    }
                }
            }
        }
        for p in parts {
            remaining += p.recipients.len();
            self.courier.queue.requeue(&p.leased_until(now)).await?;
        }
        Ok(match reason {
            None => OrgResult::Done { delivered, bounced },
            Some(reason) => OrgResult::Queued { remaining, reason },
        })
    }

    /// The mailboxes to file in: the recipients, with distribution lists replaced by their
    /// members when expansion is on (U6). Delivery to the server is unchanged.
    async fn mailboxes(
        &self,
        config: &OrgConfig,
        rcpts: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut boxes: Vec<String> = rcpts.iter().filter_map(|a| mailbox_of(a)).collect();
        if config.delivery.expand_distribution_lists {
            let groups = self.mail.group_members(&config.org_id, &boxes).await?;
            if !groups.is_empty() {
                boxes = boxes
                    .into_iter()
                    .flat_map(|b| match groups.get(&b) {
                        Some(members) => members.iter().filter_map(|m| mailbox_of(m)).collect(),
                        None => vec![b],
                    })
                    .collect();
            }
        }
        boxes.sort();
        boxes.dedup();
        Ok(boxes)
    }
}

/// `a.b.example` -> `a.b.example`, `b.example`, `example`: owned domains cover subdomains.
pub fn parent_domains(domain: &str) -> Vec<String> {
    let mut out = vec![domain.to_string()];
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        out.push(parent.to_string());
        rest = parent;
    }
    out
}

impl Failure for InboundError {
    fn retryable(&self) -> bool {
        self.is_transient()
    }
    fn kind(&self) -> &'static str {
        match self {
            InboundError::Raw(e) => e.kind(),
            InboundError::Store(e) => e.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(
            parent_domains("eu.acme.test"),
            vec!["eu.acme.test", "acme.test", "test"]
        );
    }
}
