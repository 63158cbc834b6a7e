//! The service's own sign-in items (`TABLE.md`, "Sign-in"): [`SignInStore`]. An address's code
//! and request counters live under `SIGNIN#{address}` whether or not the address is a user, a
//! source's counters per area of the API under `SOURCE#{area}#{source}`, sessions under
//! `SESSION#{sha256 of the token}`; the SMS budget in the organisation's partition.
//!
//! Every rule that must hold under concurrent requests is a condition: a try is spent only while
//! the code has tries left (so a hundred parallel guesses spend five), a code is used once, a
//! new code does not lift a cool-down, the SMS budget is never exceeded.

use super::codec::{enum_str, get_enum, get_n, get_n_or, get_s, key, n, opt_s, s, Item};
use super::config::parse_config;
use super::items::parse_continuity;
use super::keys::{
    link_rate_pk, org_links_rate_pk, org_pk, rate_sk, session_pk, signin_pk, smsday_sk, source_pk,
    uploads_rate_pk, user_sessions_gsi1pk, CODE_SK, CONFIG_SK, CONTINUITY_SK, GSI1, GSI1PK, GSI1SK,
    PK, SESSION_SK, SIGNIN_DAYS, SK, TTL_ATTR, USERSYNC_SK,
};
use super::users::parse_generation;
use super::DynamoStore;
use crate::domain::sign_in::{Session, StoredCode, MAX_TRIES};
use crate::ports::error::StoreError;
use crate::ports::store::{RateCounter, RateCounters, SignInContext, SignInStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Duration, TimeZone, Utc};

/// An organisation id no configuration can have (ids never start with a hyphen): the lookup of
/// an address on no organisation's domain reads its keys, which do not exist.
const NOBODY: &str = "-";

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => Ok(Utc.timestamp_millis_opt(get_n(item, name)?).single()),
    }
}

fn parse_code(item: &Item) -> Result<StoredCode, StoreError> {
    Ok(StoredCode {
        org_id: opt_s(item, "org_id").unwrap_or_default(),
        mac: get_s(item, "mac")?.to_string(),
        key_id: get_s(item, "key_id")?.to_string(),
        issued_at: from_millis(item, "issued")?.unwrap_or_default(),
        tries: get_n_or(item, "tries", 0)?,
        used_at: from_millis(item, "used_at")?,
        locked_until: from_millis(item, "locked_until")?,
    })
}

fn parse_session(item: &Item) -> Result<Session, StoreError> {
    let created_at = from_millis(item, "created")?.unwrap_or_default();
    Ok(Session {
        org_id: get_s(item, "org_id")?.to_string(),
        address: get_s(item, "address")?.to_string(),
        method: get_enum(item, "method")?
            .ok_or_else(|| super::codec::corrupt(item, "attribute method missing"))?,
        created_at,
        expires_at: from_millis(item, "expires")?.unwrap_or_default(),
        // Sessions stored before the re-check: last checked when opened.
        checked_at: from_millis(item, "checked")?.unwrap_or(created_at),
    })
}

#[async_trait]
impl SignInStore for DynamoStore {
    /// One consistent `BatchGetItem` (`CONFIG`, `CONTINUITY`, `USERSYNC`), then one consistent
    /// `GetItem` of the user in the current generation: two requests for every address.
    async fn sign_in_context(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<SignInContext, StoreError> {
        let org = if org_id.is_empty() { NOBODY } else { org_id };
        let keys = [CONFIG_SK, CONTINUITY_SK, USERSYNC_SK]
            .into_iter()
            .map(|sk| key(org_pk(org), sk))
            .collect();
        let mut ctx = SignInContext::default();
        let mut generation = NOBODY.to_string();
        for item in self.batch_get("BatchGetItem sign-in", keys, true).await? {
            match item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str) {
                Some(CONFIG_SK) => ctx.config = Some(parse_config(&item)?),
                Some(CONTINUITY_SK) => ctx.continuity = parse_continuity(&item)?,
                Some(USERSYNC_SK) => generation = parse_generation(&item)?.id,
                _ => {}
            }
        }
        ctx.user = self.generation_user(org, &generation, address).await?;
        Ok(ctx)
    }

    /// One `PutItem` of `CODE`, unless `locked_until` is still ahead.
    async fn put_code(&self, address: &str, code: &StoredCode) -> Result<bool, StoreError> {
        let mut item = key(signin_pk(address), CODE_SK);
        item.insert("org_id".into(), s(&code.org_id));
        item.insert("mac".into(), s(&code.mac));
        item.insert("key_id".into(), s(&code.key_id));
        item.insert("issued".into(), n(millis(code.issued_at)));
        item.insert("tries".into(), n(0));
        item.insert(
            TTL_ATTR.into(),
            n((code.issued_at + Duration::days(SIGNIN_DAYS)).timestamp()),
        );
        let req = self
            .put_item(item)
            .condition_expression("attribute_not_exists(locked_until) OR locked_until <= :now")
            .expression_attribute_values(":now", n(millis(code.issued_at)));
        self.put_if("PutItem sign-in code", req).await
    }

    /// One consistent `GetItem`.
    async fn code(&self, address: &str) -> Result<Option<StoredCode>, StoreError> {
        match self.get(signin_pk(address), CODE_SK).await? {
            Some(item) if item.contains_key("mac") => parse_code(&item).map(Some),
            _ => Ok(None),
        }
    }

    /// One conditional `UpdateItem SET tries = tries + 1`.
    async fn spend_try(
        &self,
        address: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let req = self
            .update_item(key(signin_pk(address), CODE_SK))
            .update_expression("SET tries = tries + :one")
            .condition_expression(
                "issued = :issued AND tries < :max AND attribute_not_exists(used_at)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":issued", n(millis(issued_at)))
            .expression_attribute_values(":max", n(MAX_TRIES))
            .return_values(ReturnValue::UpdatedNew);
        Ok(self
            .update_if("UpdateItem sign-in try", req)
            .await?
            .map(|out| {
                out.attributes
                    .and_then(|a| a.get("tries").and_then(|v| v.as_n().ok()?.parse().ok()))
                    .unwrap_or(MAX_TRIES)
            }))
    }

    /// One conditional `UpdateItem SET used_at`.
    async fn use_code(
        &self,
        address: &str,
        issued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let req = self
            .update_item(key(signin_pk(address), CODE_SK))
            .update_expression("SET used_at = :now")
            .condition_expression("issued = :issued AND attribute_not_exists(used_at)")
            .expression_attribute_values(":now", n(millis(now)))
            .expression_attribute_values(":issued", n(millis(issued_at)));
        Ok(self
            .update_if("UpdateItem sign-in use", req)
            .await?
            .is_some())
    }

    /// One `UpdateItem SET locked_until` (if the code item is there).
    async fn lock_address(&self, address: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        let req = self
            .update_item(key(signin_pk(address), CODE_SK))
            .update_expression("SET locked_until = :until")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":until", n(millis(until)));
        self.update_if("UpdateItem sign-in lock", req)
            .await
            .map(|_| ())
    }

    /// One conditional `UpdateItem ADD n :1` of `SMSDAY#{day}` (none when the cap is 0).
    async fn take_sms(&self, org_id: &str, day: &str, cap: u32) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        // Kept three days past the day it counts.
        let expires = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc() + Duration::days(3))
            .map_err(|e| StoreError::Permanent(format!("SMS budget day {day:?}: {e}")))?;
        let req = self
            .update_item(key(org_pk(org_id), smsday_sk(day)))
            .update_expression("ADD n :one SET #ttl = :exp")
            .condition_expression("attribute_not_exists(n) OR n < :cap")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(cap))
            .expression_attribute_values(":exp", n(expires.timestamp()));
        Ok(self
            .update_if("UpdateItem sms budget", req)
            .await?
            .is_some())
    }

    /// One `PutItem` of `SESSION#{digest}`, in the user's `gsi1` partition.
    async fn put_session(&self, digest: &str, session: &Session) -> Result<(), StoreError> {
        let mut item = key(session_pk(digest), SESSION_SK);
        item.insert(
            GSI1PK.into(),
            s(user_sessions_gsi1pk(&session.org_id, &session.address)),
        );
        item.insert(
            GSI1SK.into(),
            s(format!("{:013}", millis(session.created_at).max(0))),
        );
        item.insert("org_id".into(), s(&session.org_id));
        item.insert("address".into(), s(&session.address));
        item.insert("method".into(), s(enum_str(&session.method)));
        item.insert("created".into(), n(millis(session.created_at)));
        item.insert("expires".into(), n(millis(session.expires_at)));
        item.insert("checked".into(), n(millis(session.checked_at)));
        item.insert(TTL_ATTR.into(), n(session.expires_at.timestamp()));
        self.put("PutItem session", item).await
    }

    /// One consistent `GetItem`.
    async fn session(&self, digest: &str) -> Result<Option<Session>, StoreError> {
        match self.get(session_pk(digest), SESSION_SK).await? {
            Some(item) => parse_session(&item).map(Some),
            None => Ok(None),
        }
    }

    /// One `UpdateItem SET checked`, on the condition that the session still exists (a
    /// sign-out meanwhile is not undone).
    async fn session_checked(&self, digest: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let req = self
            .update_item(key(session_pk(digest), SESSION_SK))
            .update_expression("SET checked = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", n(millis(at)));
        Ok(self
            .update_if("UpdateItem session checked", req)
            .await?
            .is_some())
    }

    /// One `DeleteItem`.
    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        self.delete("DeleteItem session", key(session_pk(digest), SESSION_SK))
            .await
    }

    /// `Query gsi1: gsi1pk = SESSIONS#{org}#{address}` (keys only read), then one `DeleteItem`
    /// per session.
    async fn end_user_sessions(&self, org_id: &str, address: &str) -> Result<usize, StoreError> {
        let query = self
            .query()
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(user_sessions_gsi1pk(org_id, address)));
        let keys = self
            .query_all("Query gsi1 user sessions", query, |item| {
                Ok(get_s(item, PK)?.to_string())
            })
            .await?;
        for pk in &keys {
            self.delete("DeleteItem session", key(pk.clone(), SESSION_SK))
                .await?;
        }
        Ok(keys.len())
    }
}

/// Rate counters (sign-in's and alert links'): `RATE#{window}` items under the counted thing.
#[async_trait]
impl RateCounters for DynamoStore {
    /// One `UpdateItem ADD n :1` returning the count.
    async fn count_request(
        &self,
        counter: &RateCounter,
        expires: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let (pk, window) = match counter {
            RateCounter::Address { address, window } => (signin_pk(address), *window),
            RateCounter::Source {
                area,
                source,
                window,
            } => (source_pk(area.name(), source), *window),
            RateCounter::Link {
                org_id,
                alert_id,
                window,
            } => (link_rate_pk(org_id, alert_id), *window),
            RateCounter::OrgLinks { org_id, window } => (org_links_rate_pk(org_id), *window),
            RateCounter::Uploads {
                org_id,
                user,
                window,
            } => (uploads_rate_pk(org_id, user), *window),
        };
        let req = self
            .update_item(key(pk, rate_sk(window)))
            .update_expression("ADD n :one SET #ttl = :exp")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires.timestamp()))
            .return_values(ReturnValue::UpdatedNew);
        let out = self.update("UpdateItem rate counter", req).await?;
        Ok(out
            .attributes
            .and_then(|a| a.get("n").and_then(|v| v.as_n().ok()?.parse().ok()))
            .unwrap_or(u32::MAX))
    }
}
