//! Continuity mode for mail clients (C1-C3): status and sync endpoints.
//!
//! - `GET /api/v1/client/status`: normal, continuity or post-event, the event's window, the
//!   duplicate-resolution window, and when to poll next (3 minutes).
//! - `GET /api/v1/client/sync`: new messages of a mailbox since a cursor, oldest first. During
//!   continuity only ordinary messages and calendar items; other kinds (reports, receipts) are
//!   held back and offered once the event is over (the cursor remembers where they start).
//!   Every message carries its Message-ID and a stable id; what is handed out while the
//!   duplicate-resolution window runs (5 minutes before the event's start to 10 minutes after
//!   its end) is recorded, and `GET /api/v1/client/handed-out` lists it, so that a client can
//!   drop the organisation's server's own later copy of the same message.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::inbox::Qs;
use crate::inbox::{authorise, own_mailbox};
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use shared::domain::continuity::{ContinuityState, Phase, DEDUPE_LEAD_MINUTES, POST_EVENT_MINUTES};
use shared::domain::mail::MessageKind;
use shared::domain::mailbox::{in_dedupe_window, window_start, Folder, MessageRef, SyncCursor};

/// Clients poll the status this often (C1).
pub const POLL_SECONDS: i64 = 180;
/// Messages a sync page.
pub const SYNC_PAGE: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/client/status", get(status))
        .route("/api/v1/client/sync", get(sync))
        .route("/api/v1/client/handed-out", get(handed_out))
}

#[derive(Debug, Serialize)]
struct Window {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
}

/// The event a state describes (start, end) if it has one.
fn event_of(s: &ContinuityState) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let end = s.event_end()?;
    let start = s.event_started_at.unwrap_or(end).min(end);
    Some((start, end))
}

async fn status(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = state.clock.now();
    let cs = state.views.continuity_state(&p.org_id).await?;
    let phase = cs.phase(now);
    let (mode, event) = match phase {
        Phase::Normal => ("normal", None),
        Phase::Continuity { start, end } => (
            "continuity",
            Some(serde_json::json!({"start": start, "end": end})),
        ),
        Phase::PostEvent {
            start,
            ended,
            until,
        } => (
            "post-event",
            Some(serde_json::json!({"start": start, "end": ended, "post_event_until": until})),
        ),
    };
    // The duplicate-resolution window of the current or last event (C3).
    let dedupe = match phase {
        Phase::Continuity { start, end } => Some(Window {
            from: start - Duration::minutes(DEDUPE_LEAD_MINUTES),
            until: end + Duration::minutes(POST_EVENT_MINUTES),
        }),
        _ => event_of(&cs).map(|(s, e)| Window {
            from: s - Duration::minutes(DEDUPE_LEAD_MINUTES),
            until: e + Duration::minutes(POST_EVENT_MINUTES),
        }),
    };
    Ok(Json(serde_json::json!({
        "mode": mode,
        "event": event,
        "dedupe_window": dedupe,
        "poll_after_seconds": POLL_SECONDS,
        "now": now,
    })))
}

#[derive(Debug, Deserialize, Default)]
pub struct SyncQuery {
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// One message handed to a client.
#[derive(Debug, Serialize)]
pub struct SyncMessage {
    /// Stable id in this mailbox.
    pub id: String,
    pub message_id: String,
    pub kind: MessageKind,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub size: u64,
    /// Where the raw message (.eml) is downloaded.
    pub raw_url: String,
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

async fn sync(
    State(state): State<AppState>,
    p: Principal,
    Qs(q): Qs<SyncQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let requested = match q.mailbox.as_deref() {
        Some(m) => m.to_string(),
        None => own_mailbox(&p)
            .ok_or_else(|| ApiError::not_found("Your account has no mailbox address."))?,
    };
    let mailbox = authorise(&state, &p, &requested).await?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => SyncCursor::decode(c).ok_or_else(|| {
            ApiError::bad_request("The cursor is not valid; sync again without one.")
        })?,
        None => SyncCursor::default(),
    };
    let now = state.clock.now();
    let cs = state.views.continuity_state(&p.org_id).await?;
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
    let page = state
        .mailboxes
        .inbox_since(
            &p.org_id,
            &mailbox,
            window_start(now),
            start.as_ref(),
            SYNC_PAGE,
        )
        .await?;
    let scanned: Vec<(MessageRef, MessageKind)> = page
        .items
        .iter()
        .map(|l| (l.r#ref.clone(), l.summary.kind))
        .collect();
    let (offer, next) = plan(&cursor, continuity, &scanned, page.next.is_some());
    let event = event_of(&cs).or_else(|| match cs.phase(now) {
        Phase::Continuity { start, end } => Some((start, end)),
        _ => None,
    });
    let mut messages = Vec::with_capacity(offer.len());
    let mut handed = Vec::new();
    for i in offer {
        let Some(l) = page.items.get(i) else { continue };
        if let Some((s, e)) = event {
            // An active event's end is not known yet: its window runs at least until now.
            let e = if continuity { e.max(now) } else { e };
            if in_dedupe_window(l.received_at, s, e) {
                handed.push((l.summary.message_id.clone(), l.r#ref.clone()));
            }
        }
        let id = l.r#ref.encode();
        messages.push(SyncMessage {
            raw_url: format!("/api/v1/mailboxes/{mailbox}/messages/{id}/raw"),
            id,
            message_id: l.summary.message_id.clone(),
            kind: l.summary.kind,
            from: l.summary.from.clone(),
            to: l.summary.to.clone(),
            cc: l.summary.cc.clone(),
            subject: l.summary.subject.clone(),
            date: l.summary.date,
            received_at: l.received_at,
            size: l.summary.size,
        });
    }
    if !handed.is_empty() {
        state
            .mailboxes
            .record_handouts(&p.org_id, &mailbox, &handed, now)
            .await?;
    }
    let held_back = next.held.is_some() && continuity;
    Ok(Json(serde_json::json!({
        "mailbox": mailbox,
        "mode": if continuity { "continuity" } else { "normal" },
        "messages": messages,
        "cursor": next.encode(),
        "more": page.next.is_some(),
        "held_back": held_back,
        "recorded_for_dedupe": handed.len(),
        "folder": Folder::Inbox,
    })))
}

async fn handed_out(
    State(state): State<AppState>,
    p: Principal,
    Qs(q): Qs<SyncQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let requested = match q.mailbox.as_deref() {
        Some(m) => m.to_string(),
        None => own_mailbox(&p)
            .ok_or_else(|| ApiError::not_found("Your account has no mailbox address."))?,
    };
    let mailbox = authorise(&state, &p, &requested).await?;
    let items: Vec<serde_json::Value> = state
        .mailboxes
        .handouts(&p.org_id, &mailbox)
        .await?
        .into_iter()
        .map(|(m, id, at)| serde_json::json!({"message_id": m, "id": id, "handed_out_at": at}))
        .collect();
    Ok(Json(
        serde_json::json!({"mailbox": mailbox, "handed_out": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
