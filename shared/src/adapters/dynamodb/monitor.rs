//! The monitor's items (`TABLE.md`, "The organisation and monitoring": `COUNTER`, `WINDOW#`,
//! `INBOUND#`, `PROBE#`, and the `MONITORED` listing of `CONFIG`): [`MonitorStore`] (the
//! listing, a window's inputs, the counter and history moved once, the probe's claim),
//! [`InboundRecorder`] (delivery outcomes counted with `ADD`), [`ProbeArrivals`] and
//! [`QueueFiguresSource`]; and the reads that tests and the portal call directly (`counter`,
//! `probe`, `history`).

use super::alerts::parse_episode;
use super::codec::{
    corrupt, enum_str, expire, expiry, get_enum, get_n, get_n_or, get_s, get_ts, key, n, opt_s, s,
    ts, Item,
};
use super::config::parse_config;
use super::items::{parse_continuity, parse_counter, parse_marks};
use super::keys::{
    history_sk, inbound_sk, org_of, org_pk, probe_sk, ALERT_SK, CONTINUITY_SK, COUNTER_SK, GSI1,
    HISTORY_DAYS, INPUT_DAYS, MONITORED, PK, QUEUESTAT_SK, SK, TTL_ATTR,
};
use super::queue::parse_queue_count;
use super::transact::Transacted;
use super::DynamoStore;
use crate::domain::counter::{Step, Verdict};
use crate::domain::monitoring::{
    ArrivalOutcome, CommitOutcome, CounterState, DeliveryOutcome, HistoryEntry, InboundCounts,
    OrgEntry, WindowState,
};
use crate::domain::probe::{ProbeRecord, ProbeStatus, ProbeToken};
use crate::domain::queue::QueueFigures;
use crate::domain::window::Window;
use crate::ports::error::StoreError;
use crate::ports::store::{
    ContinuityStore, InboundRecorder, MonitorStore, ProbeArrivals, QueueFiguresSource,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, Update};
use chrono::{DateTime, Utc};

/// Reads a `PROBE#` item.
fn parse_probe(item: &Item) -> Result<ProbeRecord, StoreError> {
    Ok(ProbeRecord {
        nonce: get_s(item, "nonce")?.to_string(),
        status: get_enum::<ProbeStatus>(item, "status")?
            .ok_or_else(|| corrupt(item, "attribute status missing"))?,
        claimed_at: get_ts(item, "claimed_at")?
            .ok_or_else(|| corrupt(item, "attribute claimed_at missing"))?,
        sent_at: get_ts(item, "sent_at")?,
        error: opt_s(item, "error"),
        arrived_at: get_ts(item, "arrived_at")?,
    })
}

/// The `WINDOW#` item of a history entry.
fn history_item(org_id: &str, e: &HistoryEntry) -> Item {
    let mut item = key(org_pk(org_id), history_sk(e.window));
    item.insert("window".into(), n(e.window.0));
    item.insert("inbound_failures".into(), n(e.inbound_counts.failures));
    item.insert("inbound_successes".into(), n(e.inbound_counts.successes));
    if let Some(i) = e.inbound {
        item.insert("inbound".into(), s(enum_str(&i)));
    }
    if let Some(o) = e.outbound {
        item.insert("outbound".into(), s(enum_str(&o)));
    }
    if let Some(r) = &e.outbound_reason {
        item.insert("outbound_reason".into(), s(r.clone()));
    }
    if let Some(v) = e
        .provider
        .as_ref()
        .and_then(|p| serde_dynamo::to_attribute_value(p).ok())
    {
        item.insert("provider_incident".into(), v);
    }
    item.insert("verdict".into(), s(enum_str(&e.step.verdict)));
    item.insert("delta".into(), n(e.step.delta));
    item.insert("value".into(), n(e.step.value));
    item.insert("threshold".into(), n(e.threshold));
    item.insert("evaluated_at".into(), ts(e.evaluated_at));
    expire(&mut item, e.window.end(), HISTORY_DAYS);
    item
}

/// Reads a `WINDOW#` item.
fn parse_history(item: &Item) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        window: Window(get_n(item, "window")?),
        inbound_counts: InboundCounts {
            failures: get_n_or(item, "inbound_failures", 0)?,
            successes: get_n_or(item, "inbound_successes", 0)?,
        },
        inbound: get_enum(item, "inbound")?,
        outbound: get_enum(item, "outbound")?,
        outbound_reason: opt_s(item, "outbound_reason"),
        provider: item
            .get("provider_incident")
            .map(|v| serde_dynamo::from_attribute_value(v.clone()))
            .transpose()
            .map_err(|e| corrupt(item, format!("provider_incident: {e}")))?,
        step: Step {
            verdict: get_enum::<Verdict>(item, "verdict")?
                .ok_or_else(|| corrupt(item, "attribute verdict missing"))?,
            delta: get_n(item, "delta")?,
            value: get_n(item, "value")?,
        },
        threshold: get_n(item, "threshold")?,
        evaluated_at: get_ts(item, "evaluated_at")?
            .ok_or_else(|| corrupt(item, "attribute evaluated_at missing"))?,
    })
}

/// Reads a `CONFIG` item of the `MONITORED` listing: a configuration that cannot be read or
/// is invalid is reported for its organisation, not for the whole listing.
fn parse_listed_org(item: &Item) -> Result<OrgEntry, StoreError> {
    let org_id = match opt_s(item, "org_id") {
        Some(id) => id,
        None => org_of(get_s(item, PK)?).to_string(),
    };
    let config = parse_config(item)
        .map_err(|e| e.to_string())
        .and_then(|c| c.validate().map(|_| c).map_err(|e| e.to_string()))
        .and_then(|c| {
            if c.org_id == org_id {
                Ok(c)
            } else {
                Err(format!(
                    "config.org_id {:?} does not match the item's organisation",
                    c.org_id
                ))
            }
        });
    Ok(OrgEntry { org_id, config })
}

impl DynamoStore {
    /// The counter (one GetItem).
    pub async fn counter(&self, org_id: &str) -> Result<Option<CounterState>, StoreError> {
        self.get(org_pk(org_id), COUNTER_SK)
            .await?
            .map(|i| parse_counter(&i))
            .transpose()
    }

    /// The probe record of a window (one GetItem).
    pub async fn probe(
        &self,
        org_id: &str,
        window: Window,
    ) -> Result<Option<ProbeRecord>, StoreError> {
        self.get(org_pk(org_id), &probe_sk(window))
            .await?
            .map(|i| parse_probe(&i))
            .transpose()
    }

    /// History of windows `from..=to`, oldest first (one Query, paginated at 1 MB).
    pub async fn history(
        &self,
        org_id: &str,
        from: Window,
        to: Window,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let query = self.between(org_id, history_sk(from), history_sk(to));
        self.query_all("Query", query, parse_history).await
    }
}

#[async_trait]
impl MonitorStore for DynamoStore {
    /// `Query gsi1: gsi1pk = MONITORED`, every page.
    async fn monitored_orgs(&self) -> Result<Vec<OrgEntry>, StoreError> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :m")
            .expression_attribute_values(":m", s(MONITORED));
        self.query_all("Query gsi1", query, parse_listed_org).await
    }

    fn continuity(&self) -> Option<&dyn ContinuityStore> {
        Some(self)
    }

    /// One consistent `BatchGetItem` of the window's inputs and the organisation's state.
    async fn window_state(&self, org_id: &str, window: Window) -> Result<WindowState, StoreError> {
        let pk = org_pk(org_id);
        let wanted = [
            COUNTER_SK.to_string(),
            inbound_sk(window),
            probe_sk(window),
            CONTINUITY_SK.to_string(),
            ALERT_SK.to_string(),
            QUEUESTAT_SK.to_string(),
        ];
        let keys = wanted
            .iter()
            .map(|sk| key(pk.clone(), sk.clone()))
            .collect::<Vec<_>>();
        let mut state = WindowState::default();
        for item in self.batch_get("BatchGetItem", keys, true).await? {
            let sk = get_s(&item, SK)?;
            if sk == COUNTER_SK {
                state.counter = Some(parse_counter(&item)?);
            } else if sk == wanted[1] {
                state.inbound = InboundCounts {
                    failures: get_n_or(&item, "failures", 0)?,
                    successes: get_n_or(&item, "successes", 0)?,
                };
            } else if sk == wanted[2] {
                state.probe = Some(parse_probe(&item)?);
            } else if sk == CONTINUITY_SK {
                state.continuity = parse_continuity(&item)?;
                state.continuity_marks = parse_marks(&item);
            } else if sk == ALERT_SK {
                state.episode = Some(parse_episode(&item)?);
            } else if sk == QUEUESTAT_SK {
                state.queue_count = parse_queue_count(&item)?;
            }
        }
        Ok(state)
    }

    /// One transaction: `Put WINDOW#{n}` if absent + `Update COUNTER` if it is still at the
    /// window read (or absent for the first).
    async fn commit_window(
        &self,
        org_id: &str,
        expected: Option<Window>,
        e: &HistoryEntry,
    ) -> Result<CommitOutcome, StoreError> {
        let hist = Put::builder()
            .set_item(Some(history_item(org_id, e)))
            .condition_expression("attribute_not_exists(pk)");
        let update = Update::builder()
            .set_key(Some(key(org_pk(org_id), COUNTER_SK)))
            .update_expression("SET #v = :v, #w = :w, threshold = :t, updated_at = :u")
            .expression_attribute_names("#v", "value")
            .expression_attribute_names("#w", "window")
            .expression_attribute_values(":v", n(e.step.value))
            .expression_attribute_values(":w", n(e.window.0))
            .expression_attribute_values(":t", n(e.threshold))
            .expression_attribute_values(":u", ts(e.evaluated_at));
        let update = match expected {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(prev) => update
                .condition_expression("#w = :prev")
                .expression_attribute_values(":prev", n(prev.0)),
        };
        let items = vec![self.tx_put(hist)?, self.tx_update(update)?];
        match self.transact("TransactWriteItems", items).await? {
            Transacted::Written => Ok(CommitOutcome::Committed),
            Transacted::Refused(c) if c.failed(0) => Ok(CommitOutcome::AlreadyEvaluated),
            Transacted::Refused(c) if c.failed(1) => Err(StoreError::ConditionFailed(format!(
                "counter of {org_id} moved since it was read"
            ))),
            Transacted::Refused(c) => Err(c.into_error()),
        }
    }

    /// `PutItem PROBE#{n}` if absent.
    async fn claim_probe(
        &self,
        org_id: &str,
        window: Window,
        nonce: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(org_pk(org_id), probe_sk(window));
        item.insert("nonce".into(), s(nonce));
        item.insert("status".into(), s(enum_str(&ProbeStatus::Sending)));
        item.insert("claimed_at".into(), ts(at));
        expire(&mut item, window.end(), INPUT_DAYS);
        let req = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk)");
        self.put_if("PutItem probe", req).await
    }

    /// `UpdateItem PROBE#{n}` if present: sent, or failed with the reason.
    async fn finish_probe(
        &self,
        org_id: &str,
        window: Window,
        result: Result<DateTime<Utc>, String>,
    ) -> Result<(), StoreError> {
        let req = self
            .update_item(key(org_pk(org_id), probe_sk(window)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status");
        let req = match result {
            Ok(sent_at) => req
                .update_expression("SET #s = :s, sent_at = :t")
                .expression_attribute_values(":s", s(enum_str(&ProbeStatus::Sent)))
                .expression_attribute_values(":t", ts(sent_at)),
            Err(reason) => req
                .update_expression("SET #s = :s, #e = :e")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":s", s(enum_str(&ProbeStatus::Failed)))
                .expression_attribute_values(":e", s(reason)),
        };
        self.update("UpdateItem probe", req).await.map(|_| ())
    }
}

#[async_trait]
impl InboundRecorder for DynamoStore {
    /// `UpdateItem INBOUND#{n} ADD failures|successes :1` (no read).
    async fn record_delivery(
        &self,
        org_id: &str,
        at: DateTime<Utc>,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let w = Window::containing(at);
        let counter = match outcome {
            DeliveryOutcome::Accepted => "successes",
            DeliveryOutcome::AllRoutesFailed => "failures",
        };
        let req = self
            .update_item(key(org_pk(org_id), inbound_sk(w)))
            .update_expression("ADD #c :one SET #x = if_not_exists(#x, :x)")
            .expression_attribute_names("#c", counter)
            .expression_attribute_names("#x", TTL_ATTR)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":x", expiry(w.end(), INPUT_DAYS));
        self.update("UpdateItem inbound", req).await.map(|_| ())
    }
}

#[async_trait]
impl ProbeArrivals for DynamoStore {
    /// `UpdateItem PROBE#{n} SET arrived_at` if the nonce matches and it has not arrived yet.
    async fn record_probe_arrival(
        &self,
        token: &ProbeToken,
        at: DateTime<Utc>,
    ) -> Result<ArrivalOutcome, StoreError> {
        let req = self
            .update_item(key(org_pk(&token.org_id), probe_sk(token.window)))
            .update_expression("SET arrived_at = :t")
            .condition_expression("nonce = :n AND attribute_not_exists(arrived_at)")
            .expression_attribute_values(":t", ts(at))
            .expression_attribute_values(":n", s(&token.nonce));
        if self
            .update_if("UpdateItem probe arrival", req)
            .await?
            .is_some()
        {
            return Ok(ArrivalOutcome::Recorded);
        }
        // Rare path: tell a redelivery from a stranger's guess with one more read.
        match self.probe(&token.org_id, token.window).await? {
            Some(r) if r.nonce == token.nonce => Ok(ArrivalOutcome::Duplicate),
            _ => Ok(ArrivalOutcome::Unknown),
        }
    }
}

#[async_trait]
impl QueueFiguresSource for DynamoStore {
    /// One `GetItem` (count) and one `Query` with `Limit 1` (oldest).
    async fn queue_figures(&self, org_id: &str) -> Result<QueueFigures, StoreError> {
        let count = match self.get(org_pk(org_id), QUEUESTAT_SK).await? {
            Some(item) => parse_queue_count(&item)?,
            None => 0,
        };
        let oldest = match self.queue_head(org_id, 1).await?.first() {
            Some(item) => get_ts(item, "enqueued_at")?,
            None => None,
        };
        Ok(QueueFigures { count, oldest })
    }
}
