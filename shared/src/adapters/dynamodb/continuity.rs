//! Continuity's items (`TABLE.md`, "Continuity": `CONTINUITY`, `REQ#`, `AUDIT#`; the user
//! directory it reads for A6 is `users.rs`'s):
//! [`ContinuityStore`] (actions, automatic activation, announcements, users told, the audit
//! trail: P2-P10, A6) and [`ContinuityViews`] (the state, the portal's page, the audit query);
//! and the direct access tests use (`set_continuity_state`, `continuity_record`).
//!
//! An action reads the `CONTINUITY` item and the request's `REQ#` record in one consistent
//! `BatchGetItem`, decides with [`crate::domain::continuity::apply`], then writes in one
//! transaction: the state after it (on condition that the state is still the one read), the
//! `REQ#{request id}` record (on condition that it is absent; kept [`REQUEST_DAYS`] days by TTL)
//! and the audit record. A retried or concurrent duplicate finds the record and changes nothing;
//! two administrators extending at the same moment both count (the one that lost the race reads
//! again and adds to the new end). The `CONTINUITY` item stays the same size however many
//! requests took effect: the requests' records are items of their own that expire.

use super::codec::{corrupt, enum_str, expire, get_s, key, n, s, secs, ts, Item};
use super::config::parse_config;
use super::items::{parse_continuity, parse_counter, parse_marks};
use super::keys::{
    audit_range, audit_sk, noticeday_sk, org_pk, request_sk, AUDIT_DAYS, CONFIG_SK, CONTINUITY_SK,
    COUNTER_SK, QUEUESTAT_SK, REQUEST_DAYS, SK, TTL_ATTR,
};
use super::queue::parse_queue_count;
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::continuity::{
    apply, Action, ActionOutcome, AuditRecord, ContinuityState, EventMarks, Via,
};
use crate::domain::directory::UserDirectory;
use crate::domain::monitoring::PortalView;
use crate::domain::window::Window;
use crate::ports::error::StoreError;
use crate::ports::store::{
    AuditOf, ContinuityStore, ContinuityViews, CountAudit, QueueFiguresSource,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
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
    let mut doc = serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))?;
    if doc.len() > AUDIT_RECORD_MAX_BYTES {
        // Counted in bytes (UTF-8), as DynamoDB counts an item: the full before and after
        // would not fit in one item beside the change in its transaction.
        tracing::info!(org = %r.org_id, bytes = doc.len(), "audit record summarised");
        doc = serde_json::to_string(&r.summarised(doc.len()))
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
    }
    item.insert("record".into(), s(doc));
    item.insert("at".into(), ts(r.at));
    item.insert("what".into(), s(&r.what));
    item.insert("who".into(), s(&r.who));
    expire(&mut item, r.at, AUDIT_DAYS);
    Ok(item)
}

impl DynamoStore {
    /// The `Put` of an audit record inside the transaction of the change it records (P7), if
    /// absent: keyed on the request's time and id, so a repeat of the same request is refused
    /// there.
    pub(super) fn tx_audit(&self, r: &AuditRecord) -> Result<TransactWriteItem, StoreError> {
        self.tx_put(
            Put::builder()
                .set_item(Some(audit_item(r)?))
                .condition_expression("attribute_not_exists(pk)"),
        )
    }

    /// THE audited change: [`DynamoStore::transact`] of `items` with `audit`'s record as the
    /// last item. The record's key is the request's time and a fresh request id, so when its
    /// condition fails the record was written by this very call: the SDK retried it after a
    /// lost answer. That refusal is the change `Written`; any other is the caller's to read.
    pub(super) async fn transact_audited(
        &self,
        op: &str,
        mut items: Vec<TransactWriteItem>,
        audit: Option<&AuditRecord>,
    ) -> Result<Transacted, StoreError> {
        let Some(record) = audit else {
            return self.transact(op, items).await;
        };
        items.push(self.tx_audit(record)?);
        let last = items.len() - 1;
        Ok(match self.transact(op, items).await? {
            Transacted::Refused(c) if c.failed(last) => Transacted::Written,
            other => other,
        })
    }
}

/// The largest audit record kept in full (its JSON, in bytes): an item holds 400 KB, and the
/// transaction that writes it with a configuration (up to 400 KB too) holds 4 MB.
pub const AUDIT_RECORD_MAX_BYTES: usize = 300 * 1024;

/// Request ids an item of before the `REQ#` records kept (`SS`): still recognised as done, never
/// added to; removed when the event's end is announced.
fn legacy_request_ids(item: &Item) -> Vec<String> {
    item.get("request_ids")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

/// The attributes of the continuity state, as the item keeps them (epoch seconds).
const STATE_FIELDS: [&str; 4] = [
    "event_started_at",
    "event_until",
    "event_stopped_at",
    "suspended_until",
];

/// The values of a state, in the order of [`STATE_FIELDS`].
fn state_values(st: &ContinuityState) -> [Option<DateTime<Utc>>; 4] {
    [
        st.event_started_at,
        st.event_until,
        st.event_stopped_at,
        st.suspended_until,
    ]
}

/// Attempts of one action: each lost race (another action on the same organisation came
/// between the read and the write) reads again. A burst of 35 at once through several links
/// resolves in well under this; the hourly limits keep links' bursts smaller.
const ACTION_ATTEMPTS: u32 = 40;

/// What an action's transaction writes to `CONTINUITY`, besides the state after it.
struct Marks<'a> {
    action: &'a Action,
    request_id: &'a str,
    via: Via,
    /// The alert episode of an automatic activation (once per episode).
    episode: Option<&'a str>,
}

/// The `Update` of `CONTINUITY` to `after`, on condition that the item still holds exactly what
/// was read (`read`: the raw attributes, whatever their type), with the event's marks.
fn state_update(
    org_id: &str,
    read: &Item,
    after: &ContinuityState,
    m: &Marks<'_>,
) -> UpdateBuilder {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut cond = Vec::new();
    let mut values: Vec<(String, AttributeValue)> = Vec::new();
    for (field, value) in STATE_FIELDS.iter().zip(state_values(after)) {
        match value {
            Some(t) => {
                set.push(format!("{field} = :{field}"));
                values.push((format!(":{field}"), secs(t)));
            }
            None => remove.push(field.to_string()),
        }
        match read.get(*field) {
            Some(v) => {
                cond.push(format!("{field} = :was_{field}"));
                values.push((format!(":was_{field}"), v.clone()));
            }
            None => cond.push(format!("attribute_not_exists({field})")),
        }
    }
    match m.action {
        Action::Activate { .. } => {
            // An activation's start is announced by the action itself; a plan's by the monitor.
            set.push("event_id = :rid, event_via = :via, start_announced = :rid".into());
            values.push((":rid".into(), s(m.request_id)));
            values.push((":via".into(), s(enum_str(&m.via))));
        }
        Action::Schedule { .. } => {
            set.push("event_id = :rid, event_via = :via".into());
            remove.push("start_announced".into());
            values.push((":rid".into(), s(m.request_id)));
            values.push((":via".into(), s(enum_str(&m.via))));
        }
        Action::CancelPlanned => remove.push("event_id".into()),
        _ => {}
    }
    if let Some(ep) = m.episode {
        set.push("auto_episode = :ep".into());
        cond.push("(attribute_not_exists(auto_episode) OR auto_episode <> :ep)".into());
        values.push((":ep".into(), s(ep)));
    }
    let mut expr = String::new();
    if !set.is_empty() {
        expr.push_str(&format!("SET {}", set.join(", ")));
    }
    if !remove.is_empty() {
        expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    let mut update = Update::builder()
        .set_key(Some(key(org_pk(org_id), CONTINUITY_SK)))
        .update_expression(expr.trim())
        .condition_expression(cond.join(" AND "));
    for (k, v) in values {
        update = update.expression_attribute_values(k, v);
    }
    update
}

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
                legacy_request_ids(&item),
            )),
            None => Ok(Default::default()),
        }
    }

    /// The `CONTINUITY` item (empty when absent) and whether request `request_id` took effect
    /// already: one consistent `BatchGetItem` of `CONTINUITY` and `REQ#{request id}`.
    async fn action_reads(
        &self,
        org_id: &str,
        request_id: &str,
    ) -> Result<(Item, bool), StoreError> {
        let pk = org_pk(org_id);
        let req = request_sk(request_id);
        let keys = vec![key(pk.clone(), CONTINUITY_SK), key(pk, req.as_str())];
        let mut state = Item::new();
        let mut done = false;
        for item in self
            .batch_get("BatchGetItem continuity action", keys, true)
            .await?
        {
            if get_s(&item, SK)? == CONTINUITY_SK {
                state = item;
            } else {
                done = true;
            }
        }
        done |= legacy_request_ids(&state).iter().any(|i| i == request_id);
        Ok((state, done))
    }

    /// Carries out an action once per request: read, decide, then one transaction of the state
    /// (if unchanged since the read), the request's record (if absent) and the audit record;
    /// a lost race waits a random moment (so that contenders spread out) and reads again. The
    /// audit's before and after are exact: the state written is the one decided on.
    async fn act_once(
        &self,
        org_id: &str,
        m: &Marks<'_>,
        now: DateTime<Utc>,
        audit: Option<&AuditOf<'_>>,
    ) -> Result<ActionOutcome, StoreError> {
        let now = whole_seconds(now);
        for attempt in 0..ACTION_ATTEMPTS {
            let (read, done) = self.action_reads(org_id, m.request_id).await?;
            let current = if read.is_empty() {
                ContinuityState::default()
            } else {
                parse_continuity(&read)?
            };
            if done
                || (m.episode.is_some() && parse_marks(&read).auto_episode.as_deref() == m.episode)
            {
                return Ok(ActionOutcome::Repeated { current });
            }
            let after = match apply(&current, m.action, now) {
                Ok(after) => after,
                Err(refusal) => return Ok(ActionOutcome::Refused { current, refusal }),
            };
            let mut record = key(org_pk(org_id), request_sk(m.request_id));
            record.insert("action".into(), s(m.action.name()));
            record.insert("at".into(), ts(now));
            expire(&mut record, now, REQUEST_DAYS);
            let mut items = vec![
                self.tx_update(state_update(org_id, &read, &after, m))?,
                self.tx_put(
                    Put::builder()
                        .set_item(Some(record))
                        .condition_expression("attribute_not_exists(pk)"),
                )?,
            ];
            if let Some(audit) = audit {
                items.push(
                    self.tx_put(
                        Put::builder()
                            .set_item(Some(audit_item(&audit(&current, &after))?))
                            .condition_expression("attribute_not_exists(pk)"),
                    )?,
                );
            }
            match self
                .transact("TransactWriteItems continuity action", items)
                .await?
            {
                Transacted::Written => {
                    return Ok(ActionOutcome::Applied {
                        before: current,
                        after,
                    })
                }
                // The state moved since the read, or a duplicate of this request came first:
                // the next read tells which.
                Transacted::Refused(_) => {
                    let cap = 5_u64 << attempt.min(4);
                    let wait = rand::random::<u64>() % (cap + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
            }
        }
        Err(StoreError::Transient(format!(
            "continuity state kept changing during {ACTION_ATTEMPTS} attempts"
        )))
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

    /// Replaces the directory atomically, with its audit record (`users.rs`).
    async fn put_user_directory_audited(
        &self,
        org_id: &str,
        d: &UserDirectory,
        audit: Option<&CountAudit<'_>>,
    ) -> Result<usize, StoreError> {
        self.replace_user_directory(org_id, d, audit).await
    }

    async fn continuity_action_audited(
        &self,
        org_id: &str,
        action: &Action,
        via: Via,
        request_id: &str,
        now: DateTime<Utc>,
        audit: Option<&AuditOf<'_>>,
    ) -> Result<ActionOutcome, StoreError> {
        let marks = Marks {
            action,
            request_id,
            via,
            episode: None,
        };
        self.act_once(org_id, &marks, now, audit).await
    }

    /// An activation as `auto-{episode}`, also refused once the episode activated (its mark).
    async fn auto_activate(
        &self,
        org_id: &str,
        episode_id: &str,
        minutes: u32,
        now: DateTime<Utc>,
        audit: Option<&AuditOf<'_>>,
    ) -> Result<ActionOutcome, StoreError> {
        let rid = format!("auto-{episode_id}");
        let marks = Marks {
            action: &Action::Activate { minutes },
            request_id: &rid,
            via: Via::Automatic,
            episode: Some(episode_id),
        };
        self.act_once(org_id, &marks, now, audit).await
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
