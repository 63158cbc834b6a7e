//! Continuity mode for mail clients (C1-C3) as a use case: what a client is told about the
//! current event, and which messages of a mailbox it is handed.
//!
//! - Status: normal, continuity or post-event, the event's window, the duplicate-resolution
//!   window, and when to poll next.
//! - Sync: new messages of a mailbox since a cursor, oldest first. During continuity only
//!   ordinary messages and calendar items; other kinds (reports, receipts) are held back and
//!   offered once the event is over (the cursor remembers where they start). What is handed out
//!   while the duplicate-resolution window runs (5 minutes before the event's start to 10 minutes
//!   after its end) is recorded, so that a client can drop the organisation's server's own later
//!   copy of the same message.

use crate::app::mailbox::{MailboxError, Mailboxes, User};
use crate::domain::continuity::{ContinuityState, Phase, DEDUPE_LEAD_MINUTES, POST_EVENT_MINUTES};
use crate::domain::mail::MessageKind;
use crate::domain::mailbox::{in_dedupe_window, window_start, Listed, MessageRef, SyncCursor};
use crate::ports::error::StoreError;
use crate::ports::store::ContinuityViews;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Clients poll the status this often (C1).
pub const POLL_SECONDS: i64 = 180;
/// Messages a sync page.
pub const SYNC_PAGE: usize = 100;

/// A stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// The current or last event, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClientEvent {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// After an event: until when clients still resolve duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_event_until: Option<DateTime<Utc>>,
}

/// What a client is told to do (C1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientStatus {
    /// `normal`, `continuity` or `post-event`.
    pub mode: &'static str,
    pub event: Option<ClientEvent>,
    /// The duplicate-resolution window of the current or last event (C3).
    pub dedupe_window: Option<Span>,
    pub poll_after_seconds: i64,
    pub now: DateTime<Utc>,
}

/// One sync page.
#[derive(Debug, Clone)]
pub struct SyncPage {
    pub mailbox: String,
    /// Continuity mode is active: held-back kinds are not offered.
    pub continuity: bool,
    /// The messages offered, oldest first.
    pub messages: Vec<Listed>,
    pub cursor: SyncCursor,
    pub more: bool,
    /// Some messages are being held back until the event is over.
    pub held_back: bool,
    /// How many of the offered messages were recorded for duplicate resolution.
    pub recorded: usize,
}

/// The event a state describes (start, end) if it has one.
fn event_of(s: &ContinuityState) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let end = s.event_end()?;
    let start = s.event_started_at.unwrap_or(end).min(end);
    Some((start, end))
}

/// The status of a continuity state at `now`. Pure.
pub fn status(cs: &ContinuityState, now: DateTime<Utc>) -> ClientStatus {
    let window = |start: DateTime<Utc>, end: DateTime<Utc>| Span {
        from: start - Duration::minutes(DEDUPE_LEAD_MINUTES),
        until: end + Duration::minutes(POST_EVENT_MINUTES),
    };
    let (mode, event, dedupe_window) = match cs.phase(now) {
        Phase::Normal => ("normal", None, event_of(cs).map(|(s, e)| window(s, e))),
        Phase::Continuity { start, end } => (
            "continuity",
            Some(ClientEvent {
                start,
                end,
                post_event_until: None,
            }),
            Some(window(start, end)),
        ),
        Phase::PostEvent {
            start,
            ended,
            until,
        } => (
            "post-event",
            Some(ClientEvent {
                start,
                end: ended,
                post_event_until: Some(until),
            }),
            event_of(cs).map(|(s, e)| window(s, e)),
        ),
    };
    ClientStatus {
        mode,
        event,
        dedupe_window,
        poll_after_seconds: POLL_SECONDS,
        now,
    }
}

/// What one sync page decides: which items to offer, and the next cursor. Pure.
///
/// `scanned` are the items read after the starting position, oldest first, `(ref, kind)`;
/// `more` whether the Query had more.
pub fn plan(
    cursor: &SyncCursor,
    continuity: bool,
    scanned: &[(MessageRef, MessageKind)],
    more: bool,
) -> (Vec<usize>, SyncCursor) {
    let replay = !continuity && cursor.held.is_some();
    let after = cursor.after.as_deref().and_then(MessageRef::parse);
    let beyond_after = |r: &MessageRef| match &after {
        Some(a) => (r.received_ms, r.id.as_str()) > (a.received_ms, a.id.as_str()),
        None => true,
    };
    let mut offer = Vec::new();
    let mut held = if replay { None } else { cursor.held.clone() };
    let mut prev: Option<String> = cursor.after.clone();
    let mut last_scanned: Option<&MessageRef> = None;
    let mut replay_done = !replay;
    for (i, (r, kind)) in scanned.iter().enumerate() {
        last_scanned = Some(r);
        if replay && !beyond_after(r) {
            // Already offered unless it was held back.
            if *kind == MessageKind::Other {
                offer.push(i);
            }
            continue;
        }
        replay_done = true;
        if continuity && *kind == MessageKind::Other {
            if held.is_none() {
                // Resume just before this item once the event is over ("" = the beginning).
                held = Some(prev.clone().unwrap_or_default());
            }
        } else {
            offer.push(i);
        }
        prev = Some(r.encode());
    }
    let next_after = match (last_scanned, &after) {
        (Some(r), Some(a)) if !beyond_after(r) => Some(a.encode()),
        (Some(r), _) => Some(r.encode()),
        (None, a) => a.as_ref().map(|a| a.encode()),
    };
    if replay && !replay_done && more {
        // Still replaying the held-back stretch: continue after what was scanned.
        held = last_scanned.map(|r| r.encode()).or(cursor.held.clone());
    }
    (
        offer,
        SyncCursor {
            after: next_after,
            held,
        },
    )
}

/// The clients' use case's collaborators.
pub struct ClientSync<'a> {
    pub views: &'a dyn ContinuityViews,
    pub mailboxes: Mailboxes<'a>,
}

impl ClientSync<'_> {
    /// The organisation's status for clients at `now` (C1).
    pub async fn status(&self, org: &str, now: DateTime<Utc>) -> Result<ClientStatus, StoreError> {
        Ok(status(&self.views.continuity_state(org).await?, now))
    }

    /// The mailbox a client asks for: the one named, or the user's own; authorised.
    pub async fn mailbox(
        &self,
        user: &User<'_>,
        requested: Option<&str>,
    ) -> Result<String, MailboxError> {
        let requested = match requested {
            Some(m) => m.to_string(),
            None => user.own_mailbox().ok_or(MailboxError::NoOwnMailbox)?,
        };
        self.mailboxes.authorise(user, &requested).await
    }

    /// One sync page of the authorised `mailbox` after `cursor` at `now` (C2), recording what is
    /// handed out in the duplicate-resolution window (C3).
    pub async fn sync(
        &self,
        org: &str,
        mailbox: &str,
        cursor: &SyncCursor,
        now: DateTime<Utc>,
    ) -> Result<SyncPage, StoreError> {
        let cs = self.views.continuity_state(org).await?;
        let continuity = matches!(cs.phase(now), Phase::Continuity { .. });
        let replay = !continuity && cursor.held.is_some();
        let start = if replay {
            cursor
                .held
                .as_deref()
                .filter(|h| !h.is_empty())
                .and_then(MessageRef::parse)
        } else {
            cursor.after.as_deref().and_then(MessageRef::parse)
        };
        let page = self
            .mailboxes
            .store
            .inbox_since(org, mailbox, window_start(now), start.as_ref(), SYNC_PAGE)
            .await?;
        let scanned: Vec<(MessageRef, MessageKind)> = page
            .items
            .iter()
            .map(|l| (l.r#ref.clone(), l.summary.kind))
            .collect();
        let more = page.next.is_some();
        let (offer, next) = plan(cursor, continuity, &scanned, more);
        let event = event_of(&cs).or_else(|| match cs.phase(now) {
            Phase::Continuity { start, end } => Some((start, end)),
            _ => None,
        });
        let mut messages = Vec::with_capacity(offer.len());
        let mut handed = Vec::new();
        let mut items: Vec<Option<Listed>> = page.items.into_iter().map(Some).collect();
        for i in offer {
            let Some(l) = items.get_mut(i).and_then(Option::take) else {
                continue;
            };
            if let Some((s, e)) = event {
                // An active event's end is not known yet: its window runs at least until now.
                let e = if continuity { e.max(now) } else { e };
                if in_dedupe_window(l.received_at, s, e) {
                    handed.push((l.summary.message_id.clone(), l.r#ref.clone()));
                }
            }
            messages.push(l);
        }
        if !handed.is_empty() {
            self.mailboxes
                .store
                .record_handouts(org, mailbox, &handed, now)
                .await?;
        }
        Ok(SyncPage {
            mailbox: mailbox.to_string(),
            continuity,
            messages,
            held_back: next.held.is_some() && continuity,
            cursor: next,
            more,
            recorded: handed.len(),
        })
    }

    /// What was handed out from the authorised `mailbox`: (Message-ID, id, when) (C3).
    pub async fn handed_out(
        &self,
        org: &str,
        mailbox: &str,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        self.mailboxes.store.handouts(org, mailbox).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mailbox::Folder;

    fn r(ms: i64, id: &str) -> MessageRef {
        MessageRef {
            folder: Folder::Inbox,
            received_ms: ms,
            id: id.into(),
        }
    }

    #[test]
    fn held_back_kinds_come_after_the_event() {
        use MessageKind::*;
        // During continuity: 1 message, 2 report (held), 3 calendar.
        let items = vec![
            (r(1, "a"), Message),
            (r(2, "b"), Other),
            (r(3, "c"), Calendar),
        ];
        let (offer, c) = plan(&SyncCursor::default(), true, &items, false);
        assert_eq!(offer, vec![0, 2]);
        assert_eq!(c.after, Some(r(3, "c").encode()));
        assert_eq!(c.held, Some(r(1, "a").encode()));
        // Still during continuity, nothing new: the held position is kept.
        let (offer, c2) = plan(&c, true, &[], false);
        assert!(offer.is_empty());
        assert_eq!(c2, c);
        // After the event: replay from just after 1: 2 (held) is offered, 3 is not again; 4 is new.
        let replayed = vec![
            (r(2, "b"), Other),
            (r(3, "c"), Calendar),
            (r(4, "d"), Message),
        ];
        let (offer, c3) = plan(&c, false, &replayed, false);
        assert_eq!(offer, vec![0, 2]);
        assert_eq!(c3.held, None);
        assert_eq!(c3.after, Some(r(4, "d").encode()));
    }

    #[test]
    fn held_from_the_very_first_item() {
        let items = vec![(r(1, "a"), MessageKind::Other)];
        let (offer, c) = plan(&SyncCursor::default(), true, &items, false);
        assert!(offer.is_empty());
        assert_eq!(c.held.as_deref(), Some(""));
        let (offer, c) = plan(&c, false, &items, false);
        assert_eq!(offer, vec![0]);
        assert_eq!(c.held, None);
    }
}
