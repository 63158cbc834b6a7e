//! What the benches' DynamoDB work would cost on AWS (on demand), priced from the requests
//! actually sent, not from DynamoDB Local's `ConsumedCapacity`.
//!
//! Local under-reports what AWS bills: a transactional write is 2 write units per item (Local
//! says 1), a strongly consistent read of a missing item still costs a read unit (Local says
//! ~0), `BatchGetItem` is billed per key. So a bench calls [`start`] first; from then on every
//! store made by [`crate::fresh_store`] (its client carries the [`Meter`] interceptor) has each
//! request and its response read on the wire, counted by kind and items, and priced by the rules
//! below; [`tally`] returns a table's running total.
//!
//! Billing rules applied (DynamoDB on-demand, standard table class):
//! - `PutItem`, `UpdateItem`, `DeleteItem`, each `BatchWriteItem` entry: 1 write request unit
//!   (WRU) per 1 KB of item. A put's size is the item as sent; an update or a delete is priced
//!   as one unit, its item assumed under 1 KB (the request does not carry the stored item). A
//!   write whose condition fails is billed.
//! - `TransactWriteItems`: 2 WRU per action per 1 KB (AWS prepares and commits each item); a
//!   `ConditionCheck` action (the service uses none) is priced like a write; a cancelled
//!   transaction is priced as if it applied (an upper bound).
//! - An item in the sparse index `gsi1` (before or after the write) costs one more WRU for the
//!   index's copy (standard write, outside the transaction). A write that moves an indexed item
//!   to other index keys costs AWS two index writes (delete + put); priced as one here.
//! - `GetItem` and each `BatchGetItem` key: 1 read request unit (RRU) per 4 KB of item, rounded
//!   up per item; a missing item still 1; half for an eventually consistent read.
//!   `TransactGetItems`: 2 RRU per item per 4 KB.
//! - `Query`, `Scan`: the returned items' sizes summed, rounded up to 4 KB, at least one unit;
//!   half when eventually consistent (always, on an index).
//! - Throttled and invalid requests are not billed; control-plane calls (CreateTable, ...) are
//!   free.
//!
//! Prices: us-east-1 list prices as of 2026, the ones `BENCHMARKS.md` uses.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// USD per million write request units (us-east-1, on demand, 2026).
pub const USD_PER_MILLION_WRU: f64 = 0.625;
/// USD per million read request units (us-east-1, on demand, 2026).
pub const USD_PER_MILLION_RRU: f64 = 0.125;
/// Monitor windows in a 30-day month (one every two minutes).
pub const WINDOWS_PER_MONTH: f64 = 30.0 * 720.0;

/// The table's key and the sparse index's partition key (`shared/src/store/TABLE.md`).
const KEY_ATTRIBUTES: [&str; 2] = ["pk", "sk"];
const INDEX_KEY: &str = "gsi1pk";

/// Requests counted and units priced for one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub requests: u64,
    /// Per operation: requests, and items read or written (keys asked for, items a query
    /// returned, actions of a transaction).
    pub by_kind: BTreeMap<String, (u64, u64)>,
    pub read_units: f64,
    pub write_units: f64,
}

impl Tally {
    /// On-demand price of these units.
    pub fn usd(&self) -> f64 {
        (self.write_units * USD_PER_MILLION_WRU + self.read_units * USD_PER_MILLION_RRU) / 1e6
    }

    /// What was added since `earlier` (a tally of the same table).
    pub fn since(&self, earlier: &Tally) -> Tally {
        let mut by_kind = self.by_kind.clone();
        for (kind, (r, i)) in &earlier.by_kind {
            if let Some(e) = by_kind.get_mut(kind) {
                *e = (e.0 - r, e.1 - i);
            }
        }
        by_kind.retain(|_, (r, _)| *r > 0);
        Tally {
            requests: self.requests - earlier.requests,
            by_kind,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
        }
    }

    /// The request pattern per `per` (organisation, message, call): `BatchGetItem 1.000 (3.00
    /// items), Query 0.001 (1.00 items)` (three decimals: a listing's page is shared by ~1,000).
    pub fn pattern(&self, per: f64) -> String {
        self.by_kind
            .iter()
            .map(|(kind, (r, i))| {
                format!(
                    "{kind} {:.3} ({:.2} items)",
                    *r as f64 / per,
                    *i as f64 / per
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

static ON: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Ledger {
    tallies: HashMap<String, Tally>,
    /// Items (table, key) currently in the sparse index, as the metered writes left them.
    indexed: HashSet<(String, String)>,
}

fn ledger() -> MutexGuard<'static, Ledger> {
    static LEDGER: OnceLock<Mutex<Ledger>> = OnceLock::new();
    // A panic elsewhere while holding the lock leaves the counts usable: take them anyway.
    LEDGER
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Starts metering (before the bench writes anything, so that the index membership the
/// pricing follows is complete). Tests never call it: their stores' meters stay idle.
pub fn start() {
    ON.store(true, Ordering::SeqCst);
}

/// What `table` has cost since metering started.
pub fn tally(table: &str) -> Tally {
    ledger().tallies.get(table).cloned().unwrap_or_default()
}

/// The SDK interceptor that reads each DynamoDB request and response for [`tally`].
#[derive(Debug)]
pub struct Meter;

/// The request of the current attempt, kept between the interceptor's two hooks.
#[derive(Debug, Clone)]
struct Sent {
    operation: String,
    body: Value,
}

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// A request or response body (JSON 1.0 protocol); `null` when absent or not JSON.
fn json(body: Option<&[u8]>) -> Value {
    body.and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null)
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "BenchPricingMeter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !ON.load(Ordering::Relaxed) {
            return Ok(());
        }
        let request = context.request();
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.PutItem`.
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_string();
        let body = json(request.body().bytes());
        cfg.interceptor_state().store_put(Sent { operation, body });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(sent), Some(response)) = (cfg.load::<Sent>(), context.response()) else {
            return Ok(());
        };
        let status = response.status().as_u16();
        let body = json(response.body().bytes());
        // Failed conditions are billed; throttling and validation errors are not.
        let billed = status == 200
            || (status == 400
                && body["__type"].as_str().is_some_and(|t| {
                    t.ends_with("ConditionalCheckFailedException")
                        || t.ends_with("TransactionCanceledException")
                }));
        if billed {
            record(
                &mut ledger(),
                &sent.operation,
                &sent.body,
                &body,
                status == 200,
            );
        }
        Ok(())
    }
}

/// DynamoDB's item size: attribute names plus values (numbers ~1 byte per two digits + 1;
/// lists and maps 3 bytes plus 1 per element).
fn value_size(v: &Value) -> usize {
    let Some((t, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (t.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => n.chars().filter(char::is_ascii_digit).count().div_ceil(2) + 1,
        ("B", Value::String(b)) => b.len() / 4 * 3,
        ("SS", Value::Array(a)) | ("NS", Value::Array(a)) | ("BS", Value::Array(a)) => {
            a.iter().map(|e| e.as_str().map_or(0, str::len)).sum()
        }
        ("L", Value::Array(a)) => 3 + a.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        ("M", Value::Object(m)) => {
            3 + m
                .iter()
                .map(|(k, e)| k.len() + value_size(e) + 1)
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn item_size(item: &Value) -> usize {
    item.as_object()
        .map_or(0, |m| m.iter().map(|(k, v)| k.len() + value_size(v)).sum())
}

/// The size in bytes of an item as the SDK read it, by the same rules as the wire's
/// ([`item_size`]): what DynamoDB holds against its 400 KB item limit.
pub fn item_bytes(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    fn wire(v: &A) -> Value {
        match v {
            A::S(s) => serde_json::json!({ "S": s }),
            A::N(n) => serde_json::json!({ "N": n }),
            // Base64 text of the same length as the wire's (4 characters per 3 bytes).
            A::B(b) => serde_json::json!({ "B": "A".repeat(b.as_ref().len().div_ceil(3) * 4) }),
            A::Ss(v) => serde_json::json!({ "SS": v }),
            A::Ns(v) => serde_json::json!({ "NS": v }),
            A::L(l) => serde_json::json!({ "L": l.iter().map(wire).collect::<Vec<_>>() }),
            A::M(m) => serde_json::json!({
                "M": m.iter().map(|(k, v)| (k.clone(), wire(v))).collect::<serde_json::Map<_, _>>()
            }),
            _ => serde_json::json!({ "BOOL": true }),
        }
    }
    let doc: serde_json::Map<String, Value> =
        item.iter().map(|(k, v)| (k.clone(), wire(v))).collect();
    item_size(&Value::Object(doc))
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

fn key_of(item_or_key: &Value) -> String {
    KEY_ATTRIBUTES
        .iter()
        .map(|a| item_or_key[*a].to_string())
        .collect::<Vec<_>>()
        .join("\u{0}")
}

/// `Some(true)` when an update expression sets the index key, `Some(false)` when it removes
/// it, `None` when it leaves it alone. Attribute names may be `#aliases`.
fn index_key_change(expression: &str, names: &Value) -> Option<bool> {
    let mut clause = String::new();
    let mut change = None;
    for token in expression
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        let upper = token.to_ascii_uppercase();
        if matches!(upper.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
            clause = upper;
            continue;
        }
        let name = names[token].as_str().unwrap_or(token);
        if name == INDEX_KEY {
            match clause.as_str() {
                "SET" => change = Some(true),
                "REMOVE" => change = Some(false),
                _ => {}
            }
        }
    }
    change
}

enum Write<'a> {
    Put(&'a Value),
    Update(&'a Value),
    Delete(&'a Value),
    Check,
}

impl Ledger {
    fn add(&mut self, table: &str, kind: &str, items: u64, rru: f64, wru: f64) {
        let t = self.tallies.entry(table.to_string()).or_default();
        let e = t.by_kind.entry(kind.to_string()).or_default();
        e.1 += items;
        t.read_units += rru;
        t.write_units += wru;
    }

    fn count_request(&mut self, table: &str, kind: &str) {
        let t = self.tallies.entry(table.to_string()).or_default();
        t.requests += 1;
        t.by_kind.entry(kind.to_string()).or_default().0 += 1;
    }

    /// One request that touched `tables` (a transaction's actions' tables, repeats allowed).
    fn count_request_per_table(&mut self, mut tables: Vec<&str>, kind: &str) {
        tables.sort_unstable();
        tables.dedup();
        for t in tables {
            self.count_request(t, kind);
        }
    }

    /// Write units of one write (`factor` 2 in a transaction), index copy included; follows
    /// the item's index membership when the write applied.
    fn write(&mut self, table: &str, w: Write<'_>, factor: f64, applied: bool) -> f64 {
        let (key, units, now) = match &w {
            Write::Put(item) => (
                key_of(item),
                item_size(item).div_ceil(1024).max(1) as f64,
                Some(item.get(INDEX_KEY).is_some()),
            ),
            Write::Update(u) => (
                key_of(&u["Key"]),
                1.0,
                u["UpdateExpression"]
                    .as_str()
                    .and_then(|e| index_key_change(e, &u["ExpressionAttributeNames"])),
            ),
            Write::Delete(k) => (key_of(k), 1.0, Some(false)),
            Write::Check => return factor,
        };
        let id = (table.to_string(), key);
        let was = self.indexed.contains(&id);
        let is = now.unwrap_or(was);
        if applied {
            if is {
                self.indexed.insert(id);
            } else {
                self.indexed.remove(&id);
            }
        }
        let index_copy = if was || is { units } else { 0.0 };
        units * factor + index_copy
    }
}

fn table_of(v: &Value) -> &str {
    v["TableName"].as_str().unwrap_or_default()
}

fn record(l: &mut Ledger, operation: &str, req: &Value, resp: &Value, applied: bool) {
    let op = operation;
    match op {
        "GetItem" => {
            let size = resp.get("Item").map_or(0, item_size);
            let rru = read_units(size, req["ConsistentRead"] == true);
            l.count_request(table_of(req), op);
            l.add(table_of(req), op, 1, rru, 0.0);
        }
        "BatchGetItem" => {
            for (table, r) in req["RequestItems"].as_object().into_iter().flatten() {
                let asked = r["Keys"].as_array().map_or(0, Vec::len);
                let unprocessed = resp["UnprocessedKeys"][table]["Keys"]
                    .as_array()
                    .map_or(0, Vec::len);
                let found = resp["Responses"][table].as_array();
                let consistent = r["ConsistentRead"] == true;
                let found_rru: f64 = found
                    .into_iter()
                    .flatten()
                    .map(|i| read_units(item_size(i), consistent))
                    .sum();
                let missing = asked.saturating_sub(unprocessed + found.map_or(0, Vec::len));
                let rru = found_rru + missing as f64 * read_units(0, consistent);
                l.count_request(table, op);
                l.add(table, op, (asked - unprocessed.min(asked)) as u64, rru, 0.0);
            }
        }
        "Query" | "Scan" => {
            let items = resp["Items"].as_array();
            let count = items.map_or(0, Vec::len);
            let mut bytes: usize = items.into_iter().flatten().map(item_size).sum();
            // A filter bills what was read before it: scale by the items scanned.
            let scanned = resp["ScannedCount"].as_u64().unwrap_or(0) as usize;
            if count > 0 && scanned > count {
                bytes = bytes * scanned / count;
            }
            let consistent = req["ConsistentRead"] == true && req.get("IndexName").is_none();
            l.count_request(table_of(req), op);
            l.add(
                table_of(req),
                op,
                count as u64,
                read_units(bytes, consistent),
                0.0,
            );
        }
        "TransactGetItems" => {
            let actions = req["TransactItems"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut tables = Vec::new();
            for (i, a) in actions.iter().enumerate() {
                let table = table_of(&a["Get"]);
                let size = item_size(&resp["Responses"][i]["Item"]);
                l.add(table, op, 1, 2.0 * read_units(size, true), 0.0);
                tables.push(table);
            }
            l.count_request_per_table(tables, op);
        }
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            let table = table_of(req);
            let w = match op {
                "PutItem" => Write::Put(&req["Item"]),
                "UpdateItem" => Write::Update(req),
                _ => Write::Delete(&req["Key"]),
            };
            let wru = l.write(table, w, 1.0, applied);
            l.count_request(table, op);
            l.add(table, op, 1, 0.0, wru);
        }
        "BatchWriteItem" => {
            for (table, entries) in req["RequestItems"].as_object().into_iter().flatten() {
                let unprocessed = resp["UnprocessedItems"][table].as_array();
                let mut n = 0;
                let mut wru = 0.0;
                for e in entries.as_array().into_iter().flatten() {
                    // Entries DynamoDB left unprocessed are not billed (the caller resends them).
                    if unprocessed.is_some_and(|u| u.contains(e)) {
                        continue;
                    }
                    let w = match e.get("PutRequest") {
                        Some(p) => Write::Put(&p["Item"]),
                        None => Write::Delete(&e["DeleteRequest"]["Key"]),
                    };
                    wru += l.write(table, w, 1.0, applied);
                    n += 1;
                }
                l.count_request(table, op);
                l.add(table, op, n, 0.0, wru);
            }
        }
        "TransactWriteItems" => {
            let actions = req["TransactItems"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut tables = Vec::new();
            for a in actions {
                let (table, w) = if let Some(p) = a.get("Put") {
                    (table_of(p), Write::Put(&p["Item"]))
                } else if let Some(u) = a.get("Update") {
                    (table_of(u), Write::Update(u))
                } else if let Some(d) = a.get("Delete") {
                    (table_of(d), Write::Delete(&d["Key"]))
                } else {
                    (table_of(&a["ConditionCheck"]), Write::Check)
                };
                let wru = l.write(table, w, 2.0, applied);
                l.add(table, op, 1, 0.0, wru);
                tables.push(table);
            }
            l.count_request_per_table(tables, op);
        }
        // Control plane (CreateTable, DescribeTable, UpdateTimeToLive, ...): not billed per
        // request.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn priced(op: &str, req: Value, resp: Value) -> Tally {
        let mut l = Ledger::default();
        record(&mut l, op, &req, &resp, true);
        l.tallies.remove("t").unwrap_or_default()
    }

    #[test]
    fn a_consistent_three_key_read_and_a_two_item_transaction_per_window() {
        let key = |sk: &str| json!({"pk": {"S": "ORG#a"}, "sk": {"S": sk}});
        // One consistent BatchGetItem of three keys, one of them missing.
        let read = priced(
            "BatchGetItem",
            json!({"RequestItems": {"t": {"Keys": [key("COUNTER"), key("INBOUND#1"), key("PROBE#1")], "ConsistentRead": true}}}),
            json!({"Responses": {"t": [key("COUNTER"), key("INBOUND#1")]}}),
        );
        assert_eq!(read.read_units, 3.0);
        // One transaction of two small items.
        let write = priced(
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Put": {"TableName": "t", "Item": key("WINDOW#1")}},
                {"Update": {"TableName": "t", "Key": key("COUNTER"), "UpdateExpression": "SET v = :v"}}
            ]}),
            json!({}),
        );
        assert_eq!(write.write_units, 4.0);
        assert_eq!(write.by_kind["TransactWriteItems"], (1, 2));
        // BENCHMARKS.md's figure for that pattern (the monitor's window before it read more).
        let month = (read.usd() + write.usd()) * WINDOWS_PER_MONTH;
        assert!((month - 0.062).abs() < 0.001, "{month}");
    }

    #[test]
    fn index_copies_follow_the_items_membership() {
        let mut l = Ledger::default();
        let k = json!({"pk": {"S": "ORG#a"}, "sk": {"S": "QUEUESTAT"}});
        let update = |expr: &str| json!({"TableName": "t", "Key": k, "UpdateExpression": expr});
        for expression in [
            "ADD #c :one SET gsi1pk = :q, gsi1sk = if_not_exists(gsi1sk, :w)",
            "ADD #c :m",
            "REMOVE gsi1pk, gsi1sk SET failures = :z",
            "ADD #c :m",
        ] {
            record(&mut l, "UpdateItem", &update(expression), &json!({}), true);
        }
        // Into the index (2), in it (2), out of it (2), outside (1).
        assert_eq!(l.tallies["t"].write_units, 7.0);
    }

    #[test]
    fn eventually_consistent_queries_bill_half_a_unit_per_4_kb() {
        let item = json!({"pk": {"S": "x".repeat(2000)}});
        let t = priced(
            "Query",
            json!({"TableName": "t"}),
            json!({"Items": [item.clone(), item.clone(), item], "Count": 3, "ScannedCount": 3}),
        );
        assert_eq!(t.read_units, 1.0);
        let empty = priced(
            "Query",
            json!({"TableName": "t", "ConsistentRead": true}),
            json!({"Items": []}),
        );
        assert_eq!(empty.read_units, 1.0);
    }
}
