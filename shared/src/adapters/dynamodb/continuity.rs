//! Continuity's items (`TABLE.md`, "Continuity": `CONTINUITY`, `AUDIT#`; the user directory it
//! reads for A6 is `users.rs`'s):
//! [`ContinuityStore`] (actions, automatic activation, announcements, users told, the audit
//! trail: P2-P10, A6) and [`ContinuityViews`] (the state, the portal's page, the audit query);
//! and the direct access tests use (`set_continuity_state`, `continuity_record`).
//!
//! The `CONTINUITY` item keeps its times as epoch seconds (numbers), so that every action is one
//! `UpdateItem` whose condition is the rule of [`crate::domain::continuity::apply`] and whose arithmetic
//! happens in DynamoDB (`SET event_until = event_until + :d`): two administrators extending at
//! the same moment both count. Each request's id is added to `request_ids` in the same update,
//! and the condition refuses an id already there, so a retried request changes nothing twice.

use super::codec::{corrupt, enum_str, expire, get_s, key, n, s, secs, ts, Item};
use super::config::parse_config;
use super::items::{parse_continuity, parse_counter, parse_marks};
use super::keys::{
    audit_range, audit_sk, noticeday_sk, org_pk, AUDIT_DAYS, CONFIG_SK, CONTINUITY_SK, COUNTER_SK,
    QUEUESTAT_SK, SK, TTL_ATTR,
};
use super::queue::parse_queue_count;
use super::DynamoStore;
use crate::domain::continuity::{
    apply, Action, ActionOutcome, AuditRecord, ContinuityState, EventMarks, Via,
    MAX_EVENT_AHEAD_MINUTES, MAX_SUSPEND_AHEAD_MINUTES,
};
use crate::domain::directory::UserDirectory;
use crate::domain::monitoring::PortalView;
use crate::domain::window::Window;
use crate::ports::error::StoreError;
use crate::ports::store::{ContinuityStore, ContinuityViews, QueueFiguresSource};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, TimeZone, Utc};

/// Reads an `AUDIT#` item.
fn parse_audit(item: &Item) -> Result<AuditRecord, StoreError> {
    let doc = item
        .get("record")
        .ok_or_else(|| corrupt(item, "attribute record missing"))?;
    serde_json::from_str(doc.as_s().map_err(|_| corrupt(item, "record: not text"))?)
        .map_err(|e| corrupt(item, format!("record: {e}")))
}

/// The `AUDIT#` item of a record (also written inside other transactions: mail set aside).
pub(super) fn audit_item(r: &AuditRecord) -> Result<Item, StoreError> {
    let mut item = key(org_pk(&r.org_id), audit_sk(r.at, &r.request_id));
    let doc = serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))?;
    item.insert("record".into(), s(doc));
    item.insert("at".into(), ts(r.at));
    item.insert("what".into(), s(&r.what));
    item.insert("who".into(), s(&r.who));
    expire(&mut item, r.at, AUDIT_DAYS);
    Ok(item)
}

/// The requests that took effect during the current event (`SS`).
fn request_ids(item: &Item) -> Vec<String> {
    item.get("request_ids")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

/// The event is active at `:now`.
const ACTIVE: &str =
    "(event_started_at <= :now AND event_until > :now AND attribute_not_exists(event_stopped_at))";
/// A planned event has not started at `:now`.
const PLANNED: &str = "(event_started_at > :now AND attribute_not_exists(event_stopped_at))";
/// The request has not taken effect yet.
const FRESH: &str = "(attribute_not_exists(request_ids) OR NOT contains(request_ids, :rid))";

impl DynamoStore {
    /// Sets continuity mode and suspension as given (one PutItem), for tools and tests. The
    /// portal's actions use atomic updates.
    pub async fn set_continuity_state(
        &self,
        org_id: &str,
        state: &ContinuityState,
    ) -> Result<(), StoreError> {
        let mut item = key(org_pk(org_id), CONTINUITY_SK);
        for (name, value) in [
            ("event_started_at", state.event_started_at),
            ("event_until", state.event_until),
            ("event_stopped_at", state.event_stopped_at),
            ("suspended_until", state.suspended_until),
        ] {
            if let Some(t) = value {
                item.insert(name.into(), secs(t));
            }
        }
        if state.event_until.is_some() {
            let id = format!(
                "set-{}",
                state.event_until.map(|t| t.timestamp()).unwrap_or(0)
            );
            item.insert("event_id".into(), s(&id));
            item.insert("start_announced".into(), s(&id));
        }
        self.put("PutItem", item).await
    }

    /// The continuity state with its event marks (one consistent GetItem).
    pub async fn continuity_record(
        &self,
        org_id: &str,
    ) -> Result<(ContinuityState, EventMarks, Vec<String>), StoreError> {
        match self.get(org_pk(org_id), CONTINUITY_SK).await? {
            Some(item) => Ok((
                parse_continuity(&item)?,
                parse_marks(&item),
                request_ids(&item),
            )),
            None => Ok(Default::default()),
        }
    }

    /// One conditional `UpdateItem` of `CONTINUITY`: `Some(before)` when applied (its state
    /// before the update), `None` when the condition failed.
    async fn update_continuity(
        &self,
        org_id: &str,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Option<ContinuityState>, StoreError> {
        let mut req = self
            .update_item(key(org_pk(org_id), CONTINUITY_SK))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllOld);
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match self.update_if("UpdateItem continuity", req).await? {
            Some(out) => match out.attributes {
                Some(old) if !old.is_empty() => parse_continuity(&old).map(Some),
                _ => Ok(Some(ContinuityState::default())),
            },
            None => Ok(None),
        }
    }

    /// One attempt of `action`: `Some(before)` when applied, `None` when a condition failed.
    async fn try_action(
        &self,
        org_id: &str,
        action: &Action,
        via: Via,
        rid: &str,
        now: DateTime<Utc>,
        current: &ContinuityState,
    ) -> Result<Option<ContinuityState>, StoreError> {
        let mins = |m: u32| n(i64::from(m) * 60);
        // The latest a value may be before adding `m` minutes so as to stay within `cap`.
        let latest = |cap: u32, m: u32| n(now.timestamp() + (i64::from(cap) - i64::from(m)) * 60);
        let base = || {
            vec![
                (":now", secs(now)),
                (":rid", s(rid)),
                (":rids", AttributeValue::Ss(vec![rid.to_string()])),
            ]
        };
        let with = |extra: Vec<(&'static str, AttributeValue)>| {
            let mut v = base();
            v.extend(extra);
            v
        };
        let via = s(enum_str(&via));
        match *action {
            Action::Activate { minutes } => {
                self.update_continuity(
                    org_id,
                    "SET event_started_at = :now, event_until = :until, event_id = :rid, \
                     event_via = :via, start_announced = :rid ADD request_ids :rids \
                     REMOVE event_stopped_at",
                    &format!("{FRESH} AND NOT {ACTIVE}"),
                    with(vec![
                        (":until", n(now.timestamp() + i64::from(minutes) * 60)),
                        (":via", via),
                    ]),
                )
                .await
            }
            Action::Extend { minutes } => {
                // The cap in the condition: the end before this extension at most cap - d ahead.
                self.update_continuity(
                    org_id,
                    "SET event_until = event_until + :d ADD request_ids :rids",
                    &format!("{FRESH} AND {ACTIVE} AND event_until <= :latest"),
                    with(vec![
                        (":d", mins(minutes)),
                        (":latest", latest(MAX_EVENT_AHEAD_MINUTES, minutes)),
                    ]),
                )
                .await
            }
            Action::Suspend { minutes } => {
                // Two forms, each atomic: add to a running suspension, or start one from now.
                if current.suspended(now) {
                    self.update_continuity(
                        org_id,
                        "SET suspended_until = suspended_until + :d ADD request_ids :rids",
                        &format!("{FRESH} AND suspended_until > :now AND suspended_until <= :latest"),
                        with(vec![
                            (":d", mins(minutes)),
                            (":latest", latest(MAX_SUSPEND_AHEAD_MINUTES, minutes)),
                        ]),
                    )
                    .await
                } else if minutes > MAX_SUSPEND_AHEAD_MINUTES {
                    // Over the cap from now on: no update; the caller reads the state and
                    // [`apply`] says why.
                    Ok(None)
                } else {
                    self.update_continuity(
                        org_id,
                        "SET suspended_until = :until ADD request_ids :rids",
                        &format!(
                            "{FRESH} AND (attribute_not_exists(suspended_until) OR suspended_until <= :now)"
                        ),
                        with(vec![(
                            ":until",
                            n(now.timestamp() + i64::from(minutes) * 60),
                        )]),
                    )
                    .await
                }
            }
            Action::Stop => {
                self.update_continuity(
                    org_id,
                    "SET event_stopped_at = :now ADD request_ids :rids",
                    &format!("{FRESH} AND {ACTIVE}"),
                    base(),
                )
                .await
            }
            Action::Schedule { start, end } => {
                self.update_continuity(
                    org_id,
                    "SET event_started_at = :start, event_until = :until, event_id = :rid, \
                     event_via = :via ADD request_ids :rids REMOVE event_stopped_at, start_announced",
                    &format!("{FRESH} AND NOT {ACTIVE} AND NOT {PLANNED}"),
                    with(vec![
                        (":start", secs(start)),
                        (":until", secs(end)),
                        (":via", via),
                    ]),
                )
                .await
            }
            Action::CancelPlanned => {
                self.update_continuity(
                    org_id,
                    "REMOVE event_started_at, event_until, event_stopped_at, event_id \
                     ADD request_ids :rids",
                    &format!("{FRESH} AND {PLANNED}"),
                    base(),
                )
                .await
            }
        }
    }
}

/// Seconds precision: what the item keeps.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp(), 0).single().unwrap_or(t)
}

#[async_trait]
impl ContinuityStore for DynamoStore {
    /// One conditional `UpdateItem NOTICEDAY#{day} ADD events :id`: the day's set of events
    /// grows only while it is under `cap`, and an event already in it stays counted (a retried
    /// or concurrent run claims no second slot).
    async fn claim_notice_event(
        &self,
        org_id: &str,
        day: &str,
        event_id: &str,
        cap: usize,
    ) -> Result<bool, StoreError> {
        let expires = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() + 3 * 86_400)
            .map_err(|e| StoreError::Permanent(format!("notice day {day:?}: {e}")))?;
        let req = self
            .update_item(key(org_pk(org_id), noticeday_sk(day)))
            .update_expression("ADD events :ids SET #ttl = :exp")
            .condition_expression(
                "attribute_not_exists(events) OR size(events) < :cap OR contains(events, :id)",
            )
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![event_id.to_string()]))
            .expression_attribute_values(":id", s(event_id))
            .expression_attribute_values(":cap", n(cap as i64))
            .expression_attribute_values(":exp", n(expires));
        Ok(self
            .update_if("UpdateItem user notice day", req)
            .await?
            .is_some())
    }

    async fn mark_users_told(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<(), StoreError> {
        let attr = if start {
            "users_told_start"
        } else {
            "users_told_end"
        };
        let req = self
            .update_item(key(org_pk(org_id), CONTINUITY_SK))
            .update_expression(format!("SET {attr} = :id"))
            .condition_expression("event_id = :id")
            .expression_attribute_values(":id", s(event_id));
        // A failed condition: another event replaced this one meanwhile, nothing to mark.
        self.update_if("UpdateItem users told", req)
            .await
            .map(|_| ())
    }

    /// The directory as last imported (`users.rs`).
    async fn user_directory(&self, org_id: &str) -> Result<UserDirectory, StoreError> {
        self.read_user_directory(org_id).await
    }

    /// Replaces the directory atomically (`users.rs`).
    async fn put_user_directory(
        &self,
        org_id: &str,
        d: &UserDirectory,
    ) -> Result<usize, StoreError> {
        self.replace_user_directory(org_id, d).await
    }

    async fn continuity_action(
        &self,
        org_id: &str,
        action: &Action,
        via: Via,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError> {
        let now = whole_seconds(now);
        // The state as last seen only chooses the form of a suspension's update (and explains a
        // refusal); the condition of the update decides. Other actions need no read first.
        let mut current = match action {
            Action::Suspend { .. } => self.continuity_state(org_id).await?,
            _ => ContinuityState::default(),
        };
        for _ in 0..4 {
            if let Some(before) = self
                .try_action(org_id, action, via, request_id, now, &current)
                .await?
            {
                let after = apply(&before, action, now).unwrap_or(before);
                return Ok(ActionOutcome::Applied { before, after });
            }
            let (state, _, ids) = self.continuity_record(org_id).await?;
            if ids.iter().any(|i| i == request_id) {
                return Ok(ActionOutcome::Repeated { current: state });
            }
            if let Err(refusal) = apply(&state, action, now) {
                return Ok(ActionOutcome::Refused {
                    current: state,
                    refusal,
                });
            }
            // The state moved between the read and the update: try again with what is there now.
            current = state;
        }
        Err(StoreError::Transient(
            "continuity state kept changing during 4 attempts".into(),
        ))
    }

    async fn put_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        let item = audit_item(r)?;
        // A repeat of the same record (same time and request) finds it there: nothing changes.
        let req = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk)");
        self.put_if("PutItem audit", req).await.map(|_| ())
    }

    async fn auto_activate(
        &self,
        org_id: &str,
        episode_id: &str,
        minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError> {
        let now = whole_seconds(now);
        let rid = format!("auto-{episode_id}");
        let action = Action::Activate { minutes };
        let before = self
            .update_continuity(
                org_id,
                "SET event_started_at = :now, event_until = :until, event_id = :rid, \
                 event_via = :via, auto_episode = :ep, start_announced = :rid ADD request_ids :rids \
                 REMOVE event_stopped_at",
                &format!(
                    "{FRESH} AND NOT {ACTIVE} AND (attribute_not_exists(auto_episode) OR auto_episode <> :ep)"
                ),
                vec![
                    (":now", secs(now)),
                    (":rid", s(&rid)),
                    (":rids", AttributeValue::Ss(vec![rid.clone()])),
                    (":until", n(now.timestamp() + i64::from(minutes) * 60)),
                    (":via", s(enum_str(&Via::Automatic))),
                    (":ep", s(episode_id)),
                ],
            )
            .await?;
        match before {
            Some(before) => Ok(ActionOutcome::Applied {
                before,
                after: apply(&before, &action, now).unwrap_or(before),
            }),
            None => {
                let current = self.continuity_state(org_id).await?;
                Ok(match apply(&current, &action, now) {
                    Err(refusal) => ActionOutcome::Refused { current, refusal },
                    Ok(_) => ActionOutcome::Repeated { current },
                })
            }
        }
    }

    async fn claim_announcement(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<bool, StoreError> {
        let (update, cond) = if start {
            (
                "SET start_announced = :id",
                "event_id = :id AND (attribute_not_exists(start_announced) OR start_announced <> :id)",
            )
        } else {
            // The event is over: its request ids are no longer needed to recognise retries.
            (
                "SET end_announced = :id REMOVE request_ids",
                "event_id = :id AND (attribute_not_exists(end_announced) OR end_announced <> :id)",
            )
        };
        let req = self
            .update_item(key(org_pk(org_id), CONTINUITY_SK))
            .update_expression(update)
            .condition_expression(cond)
            .expression_attribute_values(":id", s(event_id));
        Ok(self
            .update_if("UpdateItem announcement", req)
            .await?
            .is_some())
    }
}

#[async_trait]
impl ContinuityViews for DynamoStore {
    /// The organisation's continuity state (one consistent GetItem; default when absent).
    async fn continuity_state(&self, org_id: &str) -> Result<ContinuityState, StoreError> {
        Ok(self.continuity_record(org_id).await?.0)
    }

    /// The portal's view of `org_id` with the history of windows `from..=to`.
    async fn portal_view(
        &self,
        org_id: &str,
        from: Window,
        to: Window,
    ) -> Result<PortalView, StoreError> {
        let pk = org_pk(org_id);
        let keys = [CONFIG_SK, CONTINUITY_SK, COUNTER_SK, QUEUESTAT_SK]
            .iter()
            .map(|sk| key(pk.clone(), *sk))
            .collect();
        let mut view = PortalView::default();
        for item in self.batch_get("BatchGetItem portal", keys, true).await? {
            match get_s(&item, SK)? {
                CONFIG_SK => view.config = Some(parse_config(&item)?),
                CONTINUITY_SK => {
                    view.state = parse_continuity(&item)?;
                    view.marks = parse_marks(&item);
                }
                COUNTER_SK => view.counter = Some(parse_counter(&item)?),
                QUEUESTAT_SK => view.queue.count = parse_queue_count(&item)?,
                _ => {}
            }
        }
        if view.config.is_none() {
            return Ok(view);
        }
        if view.queue.count > 0 {
            view.queue = self.queue_figures(org_id).await?;
        }
        view.history = self.history(org_id, from, to).await?;
        Ok(view)
    }

    /// Audit records of `org_id` from `from` to `to`, newest first, at most `limit` (one Query).
    async fn audit(
        &self,
        org_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let (lo, hi) = audit_range(from, to);
        let query = self
            .between(org_id, lo, hi)
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000));
        let out = self.query_page("Query audit", query).await?;
        out.items().iter().map(parse_audit).collect()
    }
}
