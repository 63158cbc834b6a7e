//! The DynamoDB adapter: one table, keys with prefixes, conditional writes for exactly-once.
//! Item types, keys and access patterns are listed in `TABLE.md` beside this file.

use crate::adapters::aws;
use crate::domain::alerts::Episode;
use crate::domain::config::OrgConfig;
use crate::domain::counter::Step;
use crate::domain::counter::Verdict;
use crate::domain::monitoring::ArrivalOutcome;
use crate::domain::monitoring::CommitOutcome;
use crate::domain::monitoring::CounterState;
use crate::domain::monitoring::DeliveryOutcome;
use crate::domain::monitoring::HistoryEntry;
use crate::domain::monitoring::InboundCounts;
use crate::domain::monitoring::OrgEntry;
use crate::domain::monitoring::WindowState;
use crate::domain::probe::ProbeRecord;
use crate::domain::probe::ProbeStatus;
use crate::domain::probe::ProbeToken;
use crate::domain::queue::QueueFigures;
use crate::domain::window::Window;
use crate::ports::error::PutConfigError;
use crate::ports::error::StoreError;
use crate::ports::store::AlertStore;
use crate::ports::store::ConfigStore;
use crate::ports::store::ContinuityStore;
use crate::ports::store::InboundRecorder;
use crate::ports::store::MonitorStore;
use crate::ports::store::ProbeArrivals;
use crate::ports::store::QueueFiguresSource;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ReturnConsumedCapacity, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use chrono::DateTime;
use chrono::SecondsFormat;
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod continuity;
pub use continuity::{audit_sk, AUDIT_PREFIX};
use continuity::{parse_continuity, parse_marks};
mod mail;
mod mailbox;
pub use mail::*;
pub use mailbox::*;

type Item = HashMap<String, AttributeValue>;

/// Name of the sparse index that lists monitored organisations.
pub const GSI1: &str = "gsi1";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTR: &str = "expires_at";
/// Partition value of `gsi1` for organisations with monitoring on.
pub const MONITORED: &str = "MONITORED";
/// History is kept this long (D7).
pub const HISTORY_DAYS: i64 = 30;
/// Raw window inputs (delivery counts, probes) are only needed until judged; kept two days for diagnosis.
pub const INPUT_DAYS: i64 = 2;

pub fn org_pk(org_id: &str) -> String {
    format!("ORG#{org_id}")
}
pub const CONFIG_SK: &str = "CONFIG";
pub const COUNTER_SK: &str = "COUNTER";
pub fn history_sk(w: Window) -> String {
    format!("WINDOW#{}", w.key())
}
pub fn inbound_sk(w: Window) -> String {
    format!("INBOUND#{}", w.key())
}
pub fn probe_sk(w: Window) -> String {
    format!("PROBE#{}", w.key())
}
/// Sort key of the continuity state (event, suspension).
pub const CONTINUITY_SK: &str = "CONTINUITY";
/// Sort key of the open alert episode.
pub const ALERT_SK: &str = "ALERT";
/// Sort key of one alert send's claim.
pub fn send_sk(send_key: &str) -> String {
    format!("ALERTSEND#{send_key}")
}
/// Alert send claims are kept this long (audit of what was sent).
pub const SEND_DAYS: i64 = 30;
/// Sort key of the queue's figures item.
pub const QUEUESTAT_SK: &str = "QUEUESTAT";
/// Prefix of queued messages' sort keys: `QUEUE#{enqueued epoch millis, 13 digits}#{message id}`.
pub const QUEUE_PREFIX: &str = "QUEUE#";
/// Sort key of a queued message.
pub fn queue_sk(enqueued_at: DateTime<Utc>, message_id: &str) -> String {
    format!(
        "{QUEUE_PREFIX}{:013}#{message_id}",
        enqueued_at.timestamp_millis().max(0)
    )
}

/// Requests made and capacity consumed, for benchmarks and logs.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    /// Thousandths of a capacity unit.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
}

/// A snapshot of [`Metrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl Metrics {
    fn request(&self, consumed: &[ConsumedCapacity]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let (r, w, t) = (
                c.read_capacity_units.unwrap_or(0.0),
                c.write_capacity_units.unwrap_or(0.0),
                c.capacity_units.unwrap_or(0.0),
            );
            // Some answers only carry the total: count it as writes when no split is given for a write.
            let (r, w) = if r == 0.0 && w == 0.0 {
                (0.0, t)
            } else {
                (r, w)
            };
            self.read_milli
                .fetch_add((r * 1000.0).round() as u64, Ordering::Relaxed);
            self.write_milli
                .fetch_add((w * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    fn read_request(&self, consumed: &[ConsumedCapacity]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        for c in consumed {
            let r = c.read_capacity_units.or(c.capacity_units).unwrap_or(0.0);
            self.read_milli
                .fetch_add((r * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            read_units: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// The single-table store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    metrics: Arc<Metrics>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}
fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}
fn expiry(from: DateTime<Utc>, days: i64) -> AttributeValue {
    n((from + chrono::Duration::days(days)).timestamp())
}

fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    let k = |a: &str| {
        item.get(a)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    StoreError::Corrupt {
        key: format!("{}/{}", k("pk"), k("sk")),
        reason: reason.into(),
    }
}
fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(item, format!("attribute {name} missing or not a number")))
}
fn get_n_or<T: std::str::FromStr>(item: &Item, name: &str, default: T) -> Result<T, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(default)
    }
}
fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, format!("attribute {name} missing or not a string")))
}
fn get_ts(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => DateTime::parse_from_rfc3339(get_s(item, name)?)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| corrupt(item, format!("attribute {name}: {e}"))),
    }
}
fn get_enum<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => {
            serde_json::from_value(serde_json::Value::String(get_s(item, name)?.to_string()))
                .map(Some)
                .map_err(|e| corrupt(item, format!("attribute {name}: {e}")))
        }
    }
}
fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// Maps an SDK error onto what a caller can act on (the reading is [`aws::classify`]).
fn classify<E, R>(op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    aws::classify(op, &err).into_store_error()
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            metrics: Arc::new(Metrics::default()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Creates the table with its index and TTL, as `infra/template.yaml` declares it.
    /// For local stacks and tests; in AWS the template owns the table.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))
        };
        let ks = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(ks("gsi1pk", KeyType::Hash)?)
            .key_schema(ks("gsi1sk", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .key_schema(ks("pk", KeyType::Hash)?)
            .key_schema(ks("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await
            .map_err(|e| classify("CreateTable", e))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTR)
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Permanent(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| classify("UpdateTimeToLive", e))?;
        Ok(())
    }

    /// Writes an item as given. Tests use it to plant items the API would refuse.
    pub async fn put_raw(&self, item: Item) -> Result<(), StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }

    /// One conditional `PutItem`: `Ok(true)` when written, `Ok(false)` when the condition failed
    /// (someone else holds the item), an error otherwise.
    async fn put_if(
        &self,
        op: &str,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(true)
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify(op, e) {
                    StoreError::ConditionFailed(_) => Ok(false),
                    other => Err(other),
                }
            }
        }
    }

    /// Sends one conditional `UpdateItem` (built with its key, expressions and
    /// `ReturnConsumedCapacity`): `Ok(true)` when applied, `Ok(false)` when its condition failed,
    /// an error otherwise. Counts the request either way.
    pub(super) async fn update_if(
        &self,
        op: &str,
        req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        match req.send().await {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(true)
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify(op, e) {
                    StoreError::ConditionFailed(_) => Ok(false),
                    other => Err(other),
                }
            }
        }
    }

    /// `BatchGetItem` of `keys` (any number: 100 a request), retrying unprocessed keys with
    /// backoff; an error if some are still unprocessed after 8 attempts, never a partial answer.
    pub(crate) async fn batch_get(
        &self,
        op: &str,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(consistent)
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            let mut done = false;
            for attempt in 0..8u32 {
                let res = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| classify(op, e))?;
                self.metrics.read_request(res.consumed_capacity());
                out.extend(
                    res.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                match res.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        request = rest;
                        tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(5)))
                            .await;
                    }
                    _ => {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                return Err(StoreError::Transient(format!(
                    "{op}: keys left unprocessed after 8 attempts"
                )));
            }
        }
        Ok(out)
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
        Ok(out.item)
    }

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
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":a", s(history_sk(from)))
                .expression_attribute_values(":b", s(history_sk(to)))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            self.metrics.read_request(page.consumed_capacity.as_slice());
            for item in page.items() {
                out.push(parse_history(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

fn parse_config(item: &Item) -> Result<OrgConfig, StoreError> {
    let doc = item
        .get("config")
        .ok_or_else(|| corrupt(item, "attribute config missing"))?;
    serde_dynamo::from_attribute_value::<_, OrgConfig>(doc.clone())
        .map_err(|e| corrupt(item, e.to_string()))
}

fn parse_counter(item: &Item) -> Result<CounterState, StoreError> {
    Ok(CounterState {
        value: get_n(item, "value")?,
        window: Window(get_n(item, "window")?),
        threshold: get_n(item, "threshold")?,
    })
}

fn parse_probe(item: &Item) -> Result<ProbeRecord, StoreError> {
    Ok(ProbeRecord {
        nonce: get_s(item, "nonce")?.to_string(),
        status: get_enum::<ProbeStatus>(item, "status")?
            .ok_or_else(|| corrupt(item, "attribute status missing"))?,
        claimed_at: get_ts(item, "claimed_at")?
            .ok_or_else(|| corrupt(item, "attribute claimed_at missing"))?,
        sent_at: get_ts(item, "sent_at")?,
        error: item.get("error").and_then(|v| v.as_s().ok()).cloned(),
        arrived_at: get_ts(item, "arrived_at")?,
    })
}

fn parse_episode(item: &Item) -> Result<Episode, StoreError> {
    let failing = match item.get("failing").and_then(|v| v.as_s().ok()) {
        None => Vec::new(),
        Some(s) if s.is_empty() => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|f| {
                serde_json::from_value(serde_json::Value::String(f.to_string()))
                    .map_err(|e| corrupt(item, format!("attribute failing: {e}")))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Episode {
        id: get_s(item, "episode")?.to_string(),
        since: get_ts(item, "since")?.ok_or_else(|| corrupt(item, "attribute since missing"))?,
        failing,
    })
}

fn parse_history(item: &Item) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        window: Window(get_n(item, "window")?),
        inbound_counts: InboundCounts {
            failures: get_n_or(item, "inbound_failures", 0)?,
            successes: get_n_or(item, "inbound_successes", 0)?,
        },
        inbound: get_enum(item, "inbound")?,
        outbound: get_enum(item, "outbound")?,
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

fn cancelled_by_condition(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        impl std::fmt::Debug,
    >,
) -> Option<Vec<bool>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

#[async_trait]
impl MonitorStore for DynamoStore {
    async fn monitored_orgs(&self) -> Result<Vec<OrgEntry>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :m")
                .expression_attribute_values(":m", s(MONITORED))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| classify("Query gsi1", e))?;
            self.metrics.read_request(page.consumed_capacity.as_slice());
            for item in page.items() {
                let org_id = match item.get("org_id").and_then(|v| v.as_s().ok()) {
                    Some(id) => id.clone(),
                    None => get_s(item, "pk")?.trim_start_matches("ORG#").to_string(),
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
                out.push(OrgEntry { org_id, config });
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    fn continuity(&self) -> Option<&dyn ContinuityStore> {
        Some(self)
    }

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
            let sk = get_s(&item, "sk")?;
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
                state.queue_count = get_n_or::<i64>(&item, "count", 0)?.max(0) as u64;
            }
        }
        Ok(state)
    }

    async fn commit_window(
        &self,
        org_id: &str,
        expected: Option<Window>,
        e: &HistoryEntry,
    ) -> Result<CommitOutcome, StoreError> {
        let pk = org_pk(org_id);
        let mut hist = key(pk.clone(), history_sk(e.window));
        hist.insert("window".into(), n(e.window.0));
        hist.insert("inbound_failures".into(), n(e.inbound_counts.failures));
        hist.insert("inbound_successes".into(), n(e.inbound_counts.successes));
        if let Some(i) = e.inbound {
            hist.insert("inbound".into(), s(enum_str(&i)));
        }
        if let Some(o) = e.outbound {
            hist.insert("outbound".into(), s(enum_str(&o)));
        }
        hist.insert("verdict".into(), s(enum_str(&e.step.verdict)));
        hist.insert("delta".into(), n(e.step.delta));
        hist.insert("value".into(), n(e.step.value));
        hist.insert("threshold".into(), n(e.threshold));
        hist.insert("evaluated_at".into(), ts(e.evaluated_at));
        hist.insert(TTL_ATTR.into(), expiry(e.window.end(), HISTORY_DAYS));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(hist))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;

        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, COUNTER_SK)))
            .update_expression("SET #v = :v, #w = :w, threshold = :t, updated_at = :u")
            .expression_attribute_names("#v", "value")
            .expression_attribute_names("#w", "window")
            .expression_attribute_values(":v", n(e.step.value))
            .expression_attribute_values(":w", n(e.window.0))
            .expression_attribute_values(":t", n(e.threshold))
            .expression_attribute_values(":u", ts(e.evaluated_at));
        update = match expected {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(prev) => update
                .condition_expression("#w = :prev")
                .expression_attribute_values(":prev", n(prev.0)),
        };
        let update = update
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;

        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity());
                Ok(CommitOutcome::Committed)
            }
            Err(err) => {
                self.metrics.request(&[]);
                match cancelled_by_condition(&err) {
                    Some(reasons) if reasons.first() == Some(&true) => {
                        Ok(CommitOutcome::AlreadyEvaluated)
                    }
                    Some(reasons) if reasons.get(1) == Some(&true) => {
                        Err(StoreError::ConditionFailed(format!(
                            "counter of {org_id} moved since it was read"
                        )))
                    }
                    _ => Err(classify("TransactWriteItems", err)),
                }
            }
        }
    }

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
        item.insert(TTL_ATTR.into(), expiry(window.end(), INPUT_DAYS));
        self.put_if(
            "PutItem probe",
            item,
            "attribute_not_exists(pk)",
            &[],
            vec![],
        )
        .await
    }

    async fn finish_probe(
        &self,
        org_id: &str,
        window: Window,
        result: Result<DateTime<Utc>, String>,
    ) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), probe_sk(window))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
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
        let out = req
            .send()
            .await
            .map_err(|e| classify("UpdateItem probe", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }
}

#[async_trait]
impl InboundRecorder for DynamoStore {
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
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), inbound_sk(w))))
            .update_expression("ADD #c :one SET #x = if_not_exists(#x, :x)")
            .expression_attribute_names("#c", counter)
            .expression_attribute_names("#x", TTL_ATTR)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":x", expiry(w.end(), INPUT_DAYS))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("UpdateItem inbound", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }
}

#[async_trait]
impl ProbeArrivals for DynamoStore {
    async fn record_probe_arrival(
        &self,
        token: &ProbeToken,
        at: DateTime<Utc>,
    ) -> Result<ArrivalOutcome, StoreError> {
        let pk = org_pk(&token.org_id);
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), probe_sk(token.window))))
            .update_expression("SET arrived_at = :t")
            .condition_expression("nonce = :n AND attribute_not_exists(arrived_at)")
            .expression_attribute_values(":t", ts(at))
            .expression_attribute_values(":n", s(&token.nonce))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(ArrivalOutcome::Recorded)
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify("UpdateItem probe arrival", e) {
                    // Rare path: tell a redelivery from a stranger's guess with one more read.
                    StoreError::ConditionFailed(_) => {
                        match self.probe(&token.org_id, token.window).await? {
                            Some(r) if r.nonce == token.nonce => Ok(ArrivalOutcome::Duplicate),
                            _ => Ok(ArrivalOutcome::Unknown),
                        }
                    }
                    other => Err(other),
                }
            }
        }
    }
}

#[async_trait]
impl QueueFiguresSource for DynamoStore {
    /// One `GetItem` (count) and one `Query` with `Limit 1` (oldest).
    async fn queue_figures(&self, org_id: &str) -> Result<QueueFigures, StoreError> {
        let count = match self.get(org_pk(org_id), QUEUESTAT_SK).await? {
            Some(item) => get_n_or::<i64>(&item, "count", 0)?.max(0) as u64,
            None => 0,
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :q)")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":q", s(QUEUE_PREFIX))
            .limit(1)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("Query queue", e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
        let oldest = match out.items().first() {
            Some(item) => get_ts(item, "enqueued_at")?,
            None => None,
        };
        Ok(QueueFigures { count, oldest })
    }
}

impl DynamoStore {
    /// A send claim's status (`sending`, `sent`, `failed`), for tests and diagnosis.
    pub async fn send_status(
        &self,
        org_id: &str,
        send_key: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(org_pk(org_id), &send_sk(send_key))
            .await?
            .and_then(|i| i.get("status").and_then(|v| v.as_s().ok()).cloned()))
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn start_episode(&self, org_id: &str, e: &Episode) -> Result<bool, StoreError> {
        let mut item = key(org_pk(org_id), ALERT_SK);
        item.insert("episode".into(), s(&e.id));
        item.insert("since".into(), ts(e.since));
        let failing: Vec<String> = e.failing.iter().map(enum_str).collect();
        item.insert("failing".into(), s(failing.join(",")));
        self.put_if(
            "PutItem episode",
            item,
            "attribute_not_exists(pk)",
            &[],
            vec![],
        )
        .await
    }

    async fn episode(&self, org_id: &str) -> Result<Option<Episode>, StoreError> {
        self.get(org_pk(org_id), ALERT_SK)
            .await?
            .map(|i| parse_episode(&i))
            .transpose()
    }

    async fn end_episode(&self, org_id: &str, id: &str) -> Result<bool, StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), ALERT_SK)))
            .condition_expression("episode = :e")
            .expression_attribute_values(":e", s(id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity.as_slice());
                Ok(true)
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify("DeleteItem episode", e) {
                    StoreError::ConditionFailed(_) => Ok(false),
                    other => Err(other),
                }
            }
        }
    }

    async fn claim_send(
        &self,
        org_id: &str,
        send_key: &str,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let mut item = key(org_pk(org_id), send_sk(send_key));
        item.insert("status".into(), s("sending"));
        item.insert("claimed_at".into(), ts(now));
        item.insert("attempts_at".into(), ts(now));
        item.insert(TTL_ATTR.into(), expiry(now, SEND_DAYS));
        self.put_if(
            "PutItem send claim",
            item,
            "attribute_not_exists(pk) OR #s = :failed OR (#s = :sending AND claimed_at < :stale)",
            &[("#s", "status")],
            vec![
                (":failed", s("failed")),
                (":sending", s("sending")),
                (":stale", ts(now - stale_after)),
            ],
        )
        .await
    }

    async fn finish_send(
        &self,
        org_id: &str,
        send_key: &str,
        result: Result<String, String>,
    ) -> Result<(), StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(org_pk(org_id), send_sk(send_key))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let req = match result {
            Ok(provider_id) => req
                .update_expression("SET #s = :s, provider_id = :p REMOVE #e")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":s", s("sent"))
                .expression_attribute_values(":p", s(provider_id)),
            Err(reason) => req
                .update_expression("SET #s = :s, #e = :e")
                .expression_attribute_names("#e", "error")
                .expression_attribute_values(":s", s("failed"))
                .expression_attribute_values(":e", s(reason)),
        };
        let out = req
            .send()
            .await
            .map_err(|e| classify("UpdateItem send", e))?;
        self.metrics.request(out.consumed_capacity.as_slice());
        Ok(())
    }
}

#[async_trait]
impl ConfigStore for DynamoStore {
    /// An organisation's configuration (one GetItem).
    async fn get_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError> {
        match self.get(org_pk(org_id), CONFIG_SK).await? {
            None => Ok(None),
            Some(item) => parse_config(&item).map(Some),
        }
    }

    /// Validates and stores an organisation's configuration (one PutItem). Monitoring on puts it
    /// in the sparse `gsi1` listing; off takes it out.
    async fn put_config(
        &self,
        config: &OrgConfig,
        now: DateTime<Utc>,
    ) -> Result<(), PutConfigError> {
        config.validate()?;
        let doc = serde_dynamo::to_attribute_value(config)
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        let mut item = key(org_pk(&config.org_id), CONFIG_SK);
        item.insert("org_id".into(), s(&config.org_id));
        item.insert("config".into(), doc);
        item.insert("updated_at".into(), ts(now));
        if config.monitoring.enabled {
            item.insert("gsi1pk".into(), s(MONITORED));
            item.insert("gsi1sk".into(), s(org_pk(&config.org_id)));
        }
        // The configuration and its domain ownership items (the inbound path finds the
        // organisation of a recipient by its domain) change together, in one transaction.
        let previous = self.get_config(&config.org_id).await.ok().flatten();
        let domains = self.domain_writes(config, previous.as_ref())?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for d in domains {
            tx = tx.transact_items(d);
        }
        match tx.send().await {
            Ok(out) => {
                self.metrics.request(out.consumed_capacity());
                Ok(())
            }
            Err(err) => {
                self.metrics.request(&[]);
                match cancelled_by_condition(&err) {
                    Some(reasons) => match reasons.iter().skip(1).position(|c| *c) {
                        Some(i) => Err(PutConfigError::DomainTaken(
                            config
                                .domains
                                .get(i)
                                .cloned()
                                .unwrap_or_else(|| "a removed domain".into()),
                        )),
                        None => Err(classify("TransactWriteItems config", err).into()),
                    },
                    None => Err(classify("TransactWriteItems config", err).into()),
                }
            }
        }
    }
}
