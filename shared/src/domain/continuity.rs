//! Continuity events and their audit (P2-P7, P9, P10): what an action does to the
//! organisation's `CONTINUITY` state, and the audit record of every action.
//!
//! [`apply`] is the rule; the DynamoDB adapter enforces the same rule with one conditional,
//! atomic update per action (`SET event_until = event_until + :d`, never read-modify-write), and
//! uses [`apply`] only to describe the state after the action for the audit and the page.

use crate::domain::config::MAX_EVENT_MINUTES;
use crate::domain::links::LinkKeys;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The identity of the current (or last) continuity event and what was announced of it (P6,
/// P9, P10): the monitor announces a planned event's start and every event's end exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMarks {
    /// The request that created the event (activation or plan).
    pub event_id: Option<String>,
    /// How it was created: `link`, `console`, `automatic`.
    pub via: Option<String>,
    /// The event whose start was announced (ContinuityActivated).
    pub start_announced: Option<String>,
    /// The event whose end was announced (ContinuityEnded).
    pub end_announced: Option<String>,
    /// The alert episode that activated an event automatically (P9): once per episode.
    pub auto_episode: Option<String>,
    /// The event whose start, and whose end, users were told of by SMS (A6).
    pub users_told_start: Option<String>,
    pub users_told_end: Option<String>,
}

/// What became of a continuity action in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// The action took effect: the state just before it, and after it.
    Applied {
        before: ContinuityState,
        after: ContinuityState,
    },
    /// The same request had already taken effect (a retry): nothing changed.
    Repeated { current: ContinuityState },
    /// Refused; nothing changed.
    Refused {
        current: ContinuityState,
        refusal: crate::domain::continuity::Refusal,
    },
}

/// Continuity mode and notification suspension, as the portal leaves them (P2-P6, P10), on the
/// organisation's `CONTINUITY` item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuityState {
    /// When the current (or last) event started; later than now for a planned event (P10).
    pub event_started_at: Option<DateTime<Utc>>,
    /// The event's end as scheduled (activate, extend).
    pub event_until: Option<DateTime<Utc>>,
    /// Set when an administrator stopped the event before `event_until` (P5).
    pub event_stopped_at: Option<DateTime<Utc>>,
    /// Notifications are suspended until then.
    pub suspended_until: Option<DateTime<Utc>>,
}

/// How long the post-event phase lasts after an event ends (P5, C1, C3).
pub const POST_EVENT_MINUTES: i64 = 10;
/// Duplicate resolution starts this long before an event's start (C3).
pub const DEDUPE_LEAD_MINUTES: i64 = 5;

/// Where an organisation stands (C1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Phase {
    /// No event, and none ended in the last [`POST_EVENT_MINUTES`].
    Normal,
    /// Continuity mode is on, from `start` until `end` (as now scheduled).
    Continuity {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The event `start`..`ended` is over; clients hand back to the server until `until`.
    PostEvent {
        start: DateTime<Utc>,
        ended: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

impl ContinuityState {
    /// When the event ended or ends: its stop, or its scheduled end, whichever is first.
    pub fn event_end(&self) -> Option<DateTime<Utc>> {
        match (self.event_until, self.event_stopped_at) {
            (Some(u), Some(s)) => Some(u.min(s)),
            (u, s) => u.or(s),
        }
    }

    /// The phase at `now`: an event whose end time has passed is over by itself (P6).
    pub fn phase(&self, now: DateTime<Utc>) -> Phase {
        let (Some(start), Some(end)) =
            (self.event_started_at.or(self.event_until), self.event_end())
        else {
            return Phase::Normal;
        };
        let start = start.min(end);
        if start <= now && now < end {
            Phase::Continuity {
                start,
                end: self.event_until.unwrap_or(end),
            }
        } else if end <= now && now < end + chrono::Duration::minutes(POST_EVENT_MINUTES) {
            Phase::PostEvent {
                start,
                ended: end,
                until: end + chrono::Duration::minutes(POST_EVENT_MINUTES),
            }
        } else {
            Phase::Normal
        }
    }

    /// Continuity mode is on at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        matches!(self.phase(now), Phase::Continuity { .. })
    }

    /// Notifications are suspended at `now`.
    pub fn suspended(&self, now: DateTime<Utc>) -> bool {
        self.suspended_until.is_some_and(|t| t > now)
    }

    /// Alerts are held back while an event is active or notifications are suspended (A2).
    pub fn suppresses_alerts(&self, now: DateTime<Utc>) -> bool {
        self.active(now) || self.suspended(now)
    }
}

/// The duration buttons of the portal (P2): value, label.
pub const BUTTONS: [(&str, &str, u32); 5] = [
    ("1h", "1 hour", 60),
    ("4h", "4 hours", 240),
    ("12h", "12 hours", 720),
    ("1d", "1 day", 1440),
    ("3d", "3 days", 4320),
];

/// The minutes of a portal button (`1h`, `4h`, `12h`, `1d`, `3d`); `None` for anything else.
pub fn button_minutes(value: &str) -> Option<u32> {
    BUTTONS
        .iter()
        .find(|(v, _, _)| *v == value)
        .map(|(_, _, m)| *m)
}

/// How far ahead of now extensions may push an event's end: a leaked link (a bearer credential
/// for a day) must not keep continuity mode on for months.
pub const MAX_EVENT_AHEAD_MINUTES: u32 = 30 * 24 * 60;
/// How far ahead of now suspensions may reach: alerts are the point of the service, and a leaked
/// link must not silence them for years.
pub const MAX_SUSPEND_AHEAD_MINUTES: u32 = 7 * 24 * 60;

/// Events a day whose start and end the organisation's users are told of (A6): activate/stop
/// cycles (a leaked link, a flapping automation) must not text every user again and again until
/// the account's SMS spending limit stops the administrators' own alerts.
pub const USER_NOTICE_EVENTS_PER_DAY: usize = 3;

/// Actions one alert link may carry out in an hour (a clock hour): enough for any real outage,
/// few enough that a leaked link cannot flood the audit, the bus and the users' SMS.
pub const LINK_ACTIONS_PER_HOUR: u32 = 20;
/// Actions all of an organisation's alert links together may carry out in an hour.
pub const ORG_LINK_ACTIONS_PER_HOUR: u32 = 60;

/// A duration given in minutes by the API: 1 to [`MAX_EVENT_MINUTES`].
pub fn check_minutes(minutes: i64) -> Result<u32, String> {
    if (1..=i64::from(MAX_EVENT_MINUTES)).contains(&minutes) {
        Ok(minutes as u32)
    } else {
        Err(format!(
            "minutes must be between 1 and {MAX_EVENT_MINUTES} (14 days)"
        ))
    }
}

/// What an administrator (or the service itself) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Continuity mode on from now for `minutes` (P2); refused while an event is active.
    Activate { minutes: u32 },
    /// Adds `minutes` to what remains of the active event (P3); refused when none is active.
    Extend { minutes: u32 },
    /// Suspends notifications for `minutes` more than what remains of a suspension (P4).
    Suspend { minutes: u32 },
    /// Ends the active event now; the post-event phase begins (P5).
    Stop,
    /// Schedules an event `start..end` (P10); refused while an event is active or planned.
    Schedule {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Cancels a planned event that has not started.
    CancelPlanned,
}

impl Action {
    /// Short name, as in the audit (`activate`, `extend`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Activate { .. } => "activate",
            Action::Extend { .. } => "extend",
            Action::Suspend { .. } => "suspend",
            Action::Stop => "stop",
            Action::Schedule { .. } => "schedule",
            Action::CancelPlanned => "cancel-planned",
        }
    }

    /// The event published on the bus when the action takes effect (P7).
    pub fn event_name(&self) -> &'static str {
        match self {
            Action::Activate { .. } => "ContinuityActivated",
            Action::Extend { .. } => "ContinuityExtended",
            Action::Suspend { .. } => "NotificationsSuspended",
            Action::Stop => "ContinuityStopped",
            Action::Schedule { .. } => "ContinuityScheduled",
            Action::CancelPlanned => "ContinuityPlanCancelled",
        }
    }

    /// The confirmation heading (MISSION's wording).
    pub fn confirmation(&self) -> &'static str {
        match self {
            Action::Activate { .. } => "Continuity mode activated",
            Action::Extend { .. } => "Continuity mode extended",
            Action::Suspend { .. } => "Notifications suspended",
            Action::Stop => "Continuity mode was ended",
            Action::Schedule { .. } => "Continuity event planned",
            Action::CancelPlanned => "Planned event cancelled",
        }
    }

    pub fn minutes(&self) -> Option<u32> {
        match self {
            Action::Activate { minutes }
            | Action::Extend { minutes }
            | Action::Suspend { minutes } => Some(*minutes),
            _ => None,
        }
    }
}

/// Why an action was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Continuity mode is already active (until {}); extend it instead.", utc_text(*.0))]
    AlreadyActive(DateTime<Utc>),
    #[error("Continuity mode is not active, so there is nothing to extend or stop; activate it instead.")]
    NotActive,
    #[error("An event is already planned or active (from {} to {}); cancel or stop it first.", utc_text(*.0), utc_text(*.1))]
    AlreadyPlanned(DateTime<Utc>, DateTime<Utc>),
    #[error("No planned event is waiting to start.")]
    NothingPlanned,
    /// Extensions or suspensions would reach past their cap ([`MAX_EVENT_AHEAD_MINUTES`],
    /// [`MAX_SUSPEND_AHEAD_MINUTES`]).
    #[error("{what} can reach at most {days} days ahead (until {}); ask for less.", utc_text(*latest))]
    TooFar {
        what: &'static str,
        days: u32,
        latest: DateTime<Utc>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// How an action came: from an alert link, the signed-in console or API, or the service itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Link,
    Console,
    Automatic,
}

/// An event not yet started (P10): `event_started_at` later than now.
pub fn planned(s: &ContinuityState, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match (s.event_started_at, s.event_until, s.event_stopped_at) {
        (Some(a), Some(b), None) if a > now => Some((a, b)),
        _ => None,
    }
}

/// The state after `action` at `now`, or why it is refused. The adapter's conditions say the same.
pub fn apply(
    s: &ContinuityState,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<ContinuityState, Refusal> {
    let mins = |m: u32| Duration::minutes(i64::from(m));
    let mut out = *s;
    match *action {
        Action::Activate { minutes } => {
            if s.active(now) {
                return Err(Refusal::AlreadyActive(s.event_until.unwrap_or(now)));
            }
            // A planned event not yet started is replaced: an outage does not wait for a plan.
            out.event_started_at = Some(now);
            out.event_until = Some(now + mins(minutes));
            out.event_stopped_at = None;
        }
        Action::Extend { minutes } => {
            if !s.active(now) {
                return Err(Refusal::NotActive);
            }
            out.event_until = s.event_until.map(|u| u + mins(minutes));
            let latest = now + mins(MAX_EVENT_AHEAD_MINUTES);
            if out.event_until.is_some_and(|u| u > latest) {
                return Err(Refusal::TooFar {
                    what: "Continuity mode",
                    days: MAX_EVENT_AHEAD_MINUTES / (24 * 60),
                    latest,
                });
            }
        }
        Action::Suspend { minutes } => {
            let base = s.suspended_until.filter(|u| *u > now).unwrap_or(now);
            out.suspended_until = Some(base + mins(minutes));
            let latest = now + mins(MAX_SUSPEND_AHEAD_MINUTES);
            if base + mins(minutes) > latest {
                return Err(Refusal::TooFar {
                    what: "A suspension of notifications",
                    days: MAX_SUSPEND_AHEAD_MINUTES / (24 * 60),
                    latest,
                });
            }
        }
        Action::Stop => {
            if !s.active(now) {
                return Err(Refusal::NotActive);
            }
            out.event_stopped_at = Some(now);
        }
        Action::Schedule { start, end } => {
            if start <= now || end <= start {
                return Err(Refusal::Invalid(
                    "a planned event starts in the future and ends after it starts".into(),
                ));
            }
            if end - start > mins(MAX_EVENT_MINUTES) {
                return Err(Refusal::Invalid(format!(
                    "a planned event lasts at most {MAX_EVENT_MINUTES} minutes"
                )));
            }
            if s.active(now) || planned(s, now).is_some() {
                return Err(Refusal::AlreadyPlanned(
                    s.event_started_at.unwrap_or(now),
                    s.event_until.unwrap_or(now),
                ));
            }
            out.event_started_at = Some(start);
            out.event_until = Some(end);
            out.event_stopped_at = None;
        }
        Action::CancelPlanned => {
            if planned(s, now).is_none() {
                return Err(Refusal::NothingPlanned);
            }
            out.event_started_at = None;
            out.event_until = None;
            out.event_stopped_at = None;
        }
    }
    Ok(out)
}

/// One audited action (P7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub org_id: String,
    pub at: DateTime<Utc>,
    /// `link:{alert id}`, `admin:{subject}`, or `service:auto-activation`.
    pub who: String,
    pub via: Via,
    /// `activate`, `extend`, `suspend`, `stop`, `schedule`, `cancel-planned`, `config`.
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// The state before and after, as JSON (the continuity state, or the configuration).
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// The caller's address (`-` for the service itself).
    pub source: String,
    /// Unique per request; a retried request carries the same one.
    pub request_id: String,
}

impl AuditRecord {
    /// The record with `before` and `after` replaced by a summary (the top-level fields that
    /// changed, and the size of the whole), for a record too large to keep in full (a
    /// configuration with many domains and routes: an item holds 400 KB).
    pub fn summarised(&self, bytes: usize) -> AuditRecord {
        let changed: Vec<String> = match (self.before.as_object(), self.after.as_object()) {
            (Some(b), Some(a)) => {
                let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .filter(|k| b.get(*k) != a.get(*k))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        AuditRecord {
            before: serde_json::json!({"summarised": true, "record_bytes": bytes}),
            after: serde_json::json!({"summarised": true, "changed": changed}),
            ..self.clone()
        }
    }
}

/// `2026-11-23 14:05 UTC`
pub fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The time in the organisation's zone, e.g. `2026-11-23 15:05 CET (Europe/Paris)`, to show beside
/// [`utc_text`]; `None` when that zone shows UTC (or is unknown), so that a page does not give the
/// same time twice ("18:38 UTC (18:38 UTC (UTC))").
pub fn local_text(t: DateTime<Utc>, zone: &str) -> Option<String> {
    let local = t.with_timezone(&zone.parse::<chrono_tz::Tz>().ok()?);
    let abbreviation = local.format("%Z").to_string();
    (abbreviation != "UTC")
        .then(|| format!("{} {abbreviation} ({zone})", local.format("%Y-%m-%d %H:%M")))
}

/// "3 h 20 min"
pub fn span_text(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    match (m / 1440, (m % 1440) / 60, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

type HmacSha256 = Hmac<Sha256>;

fn form_mac(keys: &LinkKeys, key_id: &str, link_token: &str) -> Option<HmacSha256> {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(&keys.keys.get(key_id)?.secret)
        .ok()?;
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(&secret).ok()?;
    m.update(b"continuity-portal-form\0");
    m.update(link_token.as_bytes());
    Some(m)
}

/// The anti-forgery token of the portal's forms: an HMAC of the link under the key that signed
/// it, so that it is bound to that link and only the page served for it carries it.
pub fn form_token(keys: &LinkKeys, key_id: &str, link_token: &str) -> Option<String> {
    use base64::Engine;
    let tag = form_mac(keys, key_id, link_token)?.finalize().into_bytes();
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..24]))
}

/// Checks a form token in constant time.
pub fn form_token_ok(keys: &LinkKeys, key_id: &str, link_token: &str, given: &str) -> bool {
    use base64::Engine;
    let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given.trim()) else {
        return false;
    };
    if raw.len() != 24 {
        return false;
    }
    form_mac(keys, key_id, link_token).is_some_and(|m| m.verify_truncated_left(&raw).is_ok())
}

/// Whether the automatic activation policy (P9) is due: the condition (an open alert episode)
/// has held `after_minutes`, and no event is active.
pub fn auto_activation_due(
    policy: Option<&crate::domain::config::AutoActivation>,
    episode_since: Option<DateTime<Utc>>,
    state: &ContinuityState,
    now: DateTime<Utc>,
) -> Option<u32> {
    let p = policy?;
    let since = episode_since?;
    (now - since >= Duration::minutes(i64::from(p.after_minutes)) && !state.active(now))
        .then_some(p.duration_minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    const NOW: &str = "2026-11-23T10:00:00Z";

    fn active_until(until: &str) -> ContinuityState {
        ContinuityState {
            event_started_at: Some(t("2026-11-23T08:00:00Z")),
            event_until: Some(t(until)),
            ..Default::default()
        }
    }

    #[test]
    fn a_summarised_audit_names_what_changed_and_keeps_who() {
        let r = AuditRecord {
            org_id: "acme".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            who: "admin:a".into(),
            via: Via::Console,
            what: "config".into(),
            minutes: None,
            before: serde_json::json!({"domains": ["a.test"], "time_zone": "UTC", "x": 1}),
            after: serde_json::json!({"domains": ["a.test", "b.test"], "time_zone": "UTC", "y": 2}),
            source: "192.0.2.1".into(),
            request_id: "r1".into(),
        };
        let s = r.summarised(500_000);
        assert_eq!(s.after["changed"], serde_json::json!(["domains", "x", "y"]));
        assert_eq!(s.before["record_bytes"], 500_000);
        assert_eq!((s.who, s.what, s.request_id), (r.who, r.what, r.request_id));
    }

    #[test]
    fn buttons_and_minutes() {
        assert_eq!(button_minutes("4h"), Some(240));
        assert_eq!(button_minutes("3d"), Some(4320));
        for bad in ["", "2h", "4H", "1h ", "-1h"] {
            assert_eq!(button_minutes(bad), None, "{bad:?}");
        }
        assert_eq!(check_minutes(1), Ok(1));
        assert!(check_minutes(0).is_err());
        assert!(check_minutes(i64::from(MAX_EVENT_MINUTES) + 1).is_err());
    }

    #[test]
    fn activate_then_refused_while_active() {
        let s = apply(
            &ContinuityState::default(),
            &Action::Activate { minutes: 240 },
            t(NOW),
        )
        .unwrap();
        assert_eq!(s.event_until, Some(t("2026-11-23T14:00:00Z")));
        assert!(s.active(t(NOW)));
        assert_eq!(
            apply(&s, &Action::Activate { minutes: 60 }, t(NOW)),
            Err(Refusal::AlreadyActive(t("2026-11-23T14:00:00Z")))
        );
    }

    #[test]
    fn extend_adds_to_what_remains() {
        // 2 h left, extended by 1 h: ends in 3 h (P3).
        let s = active_until("2026-11-23T12:00:00Z");
        let after = apply(&s, &Action::Extend { minutes: 60 }, t(NOW)).unwrap();
        assert_eq!(after.event_until, Some(t("2026-11-23T13:00:00Z")));
        assert_eq!(
            apply(
                &ContinuityState::default(),
                &Action::Extend { minutes: 60 },
                t(NOW)
            ),
            Err(Refusal::NotActive)
        );
        // An event past its end is not active: nothing to extend.
        let over = active_until("2026-11-23T09:59:00Z");
        assert_eq!(
            apply(&over, &Action::Extend { minutes: 60 }, t(NOW)),
            Err(Refusal::NotActive)
        );
    }

    #[test]
    fn suspension_adds_to_what_remains() {
        let s = apply(
            &ContinuityState::default(),
            &Action::Suspend { minutes: 60 },
            t(NOW),
        )
        .unwrap();
        assert_eq!(s.suspended_until, Some(t("2026-11-23T11:00:00Z")));
        let s = apply(&s, &Action::Suspend { minutes: 60 }, t(NOW)).unwrap();
        assert_eq!(s.suspended_until, Some(t("2026-11-23T12:00:00Z")));
        // An expired suspension counts from now.
        let s = apply(
            &s,
            &Action::Suspend { minutes: 60 },
            t("2026-11-23T13:00:00Z"),
        )
        .unwrap();
        assert_eq!(s.suspended_until, Some(t("2026-11-23T14:00:00Z")));
    }

    #[test]
    fn extensions_and_suspensions_stop_at_their_caps() {
        // Up to 30 days ahead: an end 29 days ahead takes one more day, not two.
        let s = active_until("2026-12-22T10:00:00Z");
        let after = apply(&s, &Action::Extend { minutes: 24 * 60 }, t(NOW)).unwrap();
        assert_eq!(after.event_until, Some(t("2026-12-23T10:00:00Z")));
        assert!(matches!(
            apply(&after, &Action::Extend { minutes: 1 }, t(NOW)),
            Err(Refusal::TooFar { days: 30, .. })
        ));
        // Up to 7 days ahead, counted from now however the suspension was built up.
        let s = apply(
            &ContinuityState::default(),
            &Action::Suspend {
                minutes: MAX_SUSPEND_AHEAD_MINUTES,
            },
            t(NOW),
        )
        .unwrap();
        assert_eq!(s.suspended_until, Some(t("2026-11-30T10:00:00Z")));
        let refused = apply(&s, &Action::Suspend { minutes: 1 }, t(NOW));
        assert_eq!(
            refused,
            Err(Refusal::TooFar {
                what: "A suspension of notifications",
                days: 7,
                latest: t("2026-11-30T10:00:00Z"),
            })
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("7 days ahead (until 2026-11-30 10:00 UTC)"));
        // A day later there is a day of room again.
        let later = t("2026-11-24T10:00:00Z");
        let s = apply(&s, &Action::Suspend { minutes: 24 * 60 }, later).unwrap();
        assert_eq!(s.suspended_until, Some(t("2026-12-01T10:00:00Z")));
        assert!(apply(
            &ContinuityState::default(),
            &Action::Suspend {
                minutes: MAX_SUSPEND_AHEAD_MINUTES + 1
            },
            t(NOW)
        )
        .is_err());
    }

    #[test]
    fn stop_starts_the_post_event_phase() {
        let s = active_until("2026-11-23T12:00:00Z");
        let after = apply(&s, &Action::Stop, t(NOW)).unwrap();
        assert!(!after.active(t(NOW)));
        assert!(matches!(
            after.phase(t(NOW)),
            crate::domain::continuity::Phase::PostEvent { .. }
        ));
        assert_eq!(
            apply(&after, &Action::Stop, t(NOW)),
            Err(Refusal::NotActive)
        );
        // A stopped event can be activated again.
        assert!(apply(&after, &Action::Activate { minutes: 60 }, t(NOW)).is_ok());
    }

    #[test]
    fn planned_events() {
        let a = Action::Schedule {
            start: t("2026-11-24T02:00:00Z"),
            end: t("2026-11-24T04:00:00Z"),
        };
        let s = apply(&ContinuityState::default(), &a, t(NOW)).unwrap();
        assert!(!s.active(t(NOW)));
        assert!(planned(&s, t(NOW)).is_some());
        assert!(s.active(t("2026-11-24T03:00:00Z")));
        assert!(!s.active(t("2026-11-24T04:00:00Z")));
        assert!(matches!(
            apply(&s, &a, t(NOW)),
            Err(Refusal::AlreadyPlanned(..))
        ));
        let c = apply(&s, &Action::CancelPlanned, t(NOW)).unwrap();
        assert_eq!(c, ContinuityState::default());
        let past = Action::Schedule {
            start: t("2026-11-23T09:00:00Z"),
            end: t("2026-11-24T04:00:00Z"),
        };
        assert!(matches!(
            apply(&ContinuityState::default(), &past, t(NOW)),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn texts() {
        assert_eq!(utc_text(t(NOW)), "2026-11-23 10:00 UTC");
        assert_eq!(
            local_text(t(NOW), "Europe/Paris").as_deref(),
            Some("2026-11-23 11:00 CET (Europe/Paris)")
        );
        // UTC (or an unknown zone) is not given a second time beside the UTC text.
        assert_eq!(local_text(t(NOW), "UTC"), None);
        assert_eq!(local_text(t(NOW), "Etc/UTC"), None);
        assert_eq!(local_text(t(NOW), "Nowhere/Else"), None);
        assert_eq!(span_text(Duration::minutes(200)), "3 h 20 min");
        assert_eq!(span_text(Duration::minutes(4320)), "3 d");
    }

    #[test]
    fn form_tokens_are_bound_to_the_link() {
        let keys = LinkKeys::from_json(
            r#"{"current":"k1","k1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}"#,
        )
        .unwrap();
        let tok = form_token(&keys, "k1", "link-a").unwrap();
        assert!(form_token_ok(&keys, "k1", "link-a", &tok));
        assert!(!form_token_ok(&keys, "k1", "link-b", &tok));
        assert!(!form_token_ok(&keys, "k2", "link-a", &tok));
        assert!(!form_token_ok(&keys, "k1", "link-a", ""));
        assert!(!form_token_ok(&keys, "k1", "link-a", &tok[1..]));
    }

    #[test]
    fn auto_activation() {
        let p = crate::domain::config::AutoActivation {
            after_minutes: 30,
            duration_minutes: 240,
        };
        let idle = ContinuityState::default();
        let since = Some(t("2026-11-23T09:40:00Z"));
        assert_eq!(auto_activation_due(Some(&p), since, &idle, t(NOW)), None);
        let since = Some(t("2026-11-23T09:30:00Z"));
        assert_eq!(
            auto_activation_due(Some(&p), since, &idle, t(NOW)),
            Some(240)
        );
        assert_eq!(auto_activation_due(None, since, &idle, t(NOW)), None);
        let active = active_until("2026-11-23T12:00:00Z");
        assert_eq!(auto_activation_due(Some(&p), since, &active, t(NOW)), None);
    }
}
