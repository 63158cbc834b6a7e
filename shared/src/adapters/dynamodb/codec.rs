//! Attribute codecs shared by every item type: writing values (`s`, `n`, `ts`, `secs`,
//! `strings`, `enum_str`, `key`, `expiry`) and reading them back (`get_*`), with [`corrupt`]
//! naming the item that could not be read. Parsers of one item type live beside the port
//! implementation that owns the item; these are what they are made of.
//!
//! Times are RFC 3339 text with milliseconds (`ts`), except where DynamoDB does arithmetic on
//! them (the `CONTINUITY` item: epoch seconds, `secs`) and in the TTL (epoch seconds, `expiry`).

use super::keys::{PK, SK, TTL_ATTR};
use crate::ports::error::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// An item (or a key) as the SDK has it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// A string.
pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
/// A number.
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
/// A time as RFC 3339 text (milliseconds, `Z`): sorts as it reads.
pub(super) fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}
/// A time as epoch seconds, where DynamoDB adds to it (`SET event_until = event_until + :d`).
pub(super) fn secs(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp())
}
/// A list of strings.
pub(super) fn strings(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| s(x.clone())).collect())
}
/// A unit enum as its serde name (`"sent"`, `"all_routes_failed"`...).
pub(super) fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
/// The key of item `pk`/`sk`, to which an item's attributes are added.
pub(super) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}
/// The TTL value `days` after `from`.
pub(super) fn expiry(from: DateTime<Utc>, days: i64) -> AttributeValue {
    n((from + chrono::Duration::days(days)).timestamp())
}
/// Adds the TTL `days` after `from` to `item`.
pub(super) fn expire(item: &mut Item, from: DateTime<Utc>, days: i64) {
    item.insert(TTL_ATTR.into(), expiry(from, days));
}

/// The error for an item that exists but cannot be read as its type.
pub(super) fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    let k = |a: &str| {
        item.get(a)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    StoreError::Corrupt {
        key: format!("{}/{}", k(PK), k(SK)),
        reason: reason.into(),
    }
}
/// A request that could not be built (a missing required field: a bug, never a retry).
pub(super) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Permanent(e.to_string())
}

/// A required number.
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(item, format!("attribute {name} missing or not a number")))
}
/// A number, `default` when absent.
pub(super) fn get_n_or<T: std::str::FromStr>(
    item: &Item,
    name: &str,
    default: T,
) -> Result<T, StoreError> {
    if item.contains_key(name) {
        get_n(item, name)
    } else {
        Ok(default)
    }
}
/// A required string.
pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, format!("attribute {name} missing or not a string")))
}
/// An optional string (absent or not a string: `None`).
pub(super) fn opt_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}
/// A list of strings (absent: empty; elements that are not strings are skipped).
pub(super) fn get_strings(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|x| x.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}
/// An optional RFC 3339 time.
pub(super) fn get_ts(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => DateTime::parse_from_rfc3339(get_s(item, name)?)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| corrupt(item, format!("attribute {name}: {e}"))),
    }
}
/// An optional time stored as epoch seconds (or, as older items have it, RFC 3339 text).
pub(super) fn get_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => {
            let s: i64 = v
                .parse()
                .map_err(|_| corrupt(item, format!("attribute {name}: not a number")))?;
            Ok(Utc.timestamp_opt(s, 0).single())
        }
        _ => get_ts(item, name),
    }
}
/// An optional unit enum written by [`enum_str`].
pub(super) fn get_enum<T: serde::de::DeserializeOwned>(
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
