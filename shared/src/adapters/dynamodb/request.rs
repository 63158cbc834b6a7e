//! The single-item requests and queries every port implementation sends through, so that each
//! is sent, counted ([`super::metrics`]) and its error read ([`classify`]) in one place:
//!
//! - builders that name the table and ask for the consumed capacity: [`DynamoStore::put_item`],
//!   [`DynamoStore::update_item`], [`DynamoStore::delete_item`], [`DynamoStore::query`] (and
//!   its two key conditions, [`DynamoStore::between`] and [`DynamoStore::begins_with`]);
//! - the consistent `GetItem` ([`DynamoStore::get`]);
//! - the writes: `put`, `update`, `delete`, and the conditional family `put_if`, `update_if`,
//!   `delete_if`, whose failed condition is an answer (`false` / `None`), not an error;
//! - the queries: one page ([`DynamoStore::query_page`]) and THE paginator
//!   ([`DynamoStore::query_all`]) that every multi-page Query goes through.
//!
//! Batches are in `batch.rs`, transactions in `transact.rs`.

use super::codec::{key, s, Item};
use super::keys::org_pk;
use super::DynamoStore;
use crate::adapters::aws;
use crate::ports::error::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};

/// Maps an SDK error of operation `op` onto what a caller can act on (the reading is
/// [`aws::classify`], the same for every AWS adapter).
pub(super) fn classify<E, R>(op: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    aws::classify(op, &err).into_store_error()
}

/// Waits before retry `attempt` (0-based): `base_ms` doubled per attempt, at most `max_shift`
/// times.
pub(super) async fn backoff(base_ms: u64, attempt: u32, max_shift: u32) {
    tokio::time::sleep(std::time::Duration::from_millis(
        base_ms << attempt.min(max_shift),
    ))
    .await;
}

/// The answer of a single-item write, as far as counting goes.
pub(super) trait Written {
    /// The capacity the answer reports.
    fn consumed(&self) -> &[ConsumedCapacity];
}
impl Written for PutItemOutput {
    fn consumed(&self) -> &[ConsumedCapacity] {
        self.consumed_capacity.as_slice()
    }
}
impl Written for UpdateItemOutput {
    fn consumed(&self) -> &[ConsumedCapacity] {
        self.consumed_capacity.as_slice()
    }
}
impl Written for DeleteItemOutput {
    fn consumed(&self) -> &[ConsumedCapacity] {
        self.consumed_capacity.as_slice()
    }
}

impl DynamoStore {
    /// A `PutItem` of `item` on the table.
    pub(super) fn put_item(&self, item: Item) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// An `UpdateItem` of the item `key` on the table.
    pub(super) fn update_item(&self, key: Item) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// A `DeleteItem` of the item `key` on the table.
    pub(super) fn delete_item(&self, key: Item) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// A `Query` on the table (its key condition still to set).
    pub(super) fn query(&self) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// A `Query` of the organisation's items with sort keys from `lo` to `hi` (both included).
    pub(super) fn between(&self, org_id: &str, lo: String, hi: String) -> QueryFluentBuilder {
        self.query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
    }

    /// A `Query` of the organisation's items whose sort key begins with `prefix`.
    pub(super) fn begins_with(&self, org_id: &str, prefix: &str) -> QueryFluentBuilder {
        self.query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(org_pk(org_id)))
            .expression_attribute_values(":p", s(prefix))
    }

    /// One consistent `GetItem`.
    pub(super) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
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

    /// Counts an unconditional write that succeeded; reads its error otherwise.
    fn written<O: Written, E, R>(
        &self,
        op: &str,
        res: Result<O, SdkError<E, R>>,
    ) -> Result<O, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let out = res.map_err(|e| classify(op, e))?;
        self.metrics.request(out.consumed());
        Ok(out)
    }

    /// Counts a conditional write either way: `Some` when applied, `None` when its condition
    /// failed (someone else holds or changed the item), an error otherwise.
    fn written_if<O: Written, E, R>(
        &self,
        op: &str,
        res: Result<O, SdkError<E, R>>,
    ) -> Result<Option<O>, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        match res {
            Ok(out) => {
                self.metrics.request(out.consumed());
                Ok(Some(out))
            }
            Err(e) => {
                self.metrics.request(&[]);
                match classify(op, e) {
                    StoreError::ConditionFailed(_) => Ok(None),
                    other => Err(other),
                }
            }
        }
    }

    /// One unconditional `PutItem` (a repeat writes the same item).
    pub(super) async fn put(&self, op: &str, item: Item) -> Result<(), StoreError> {
        let res = self.put_item(item).send().await;
        self.written(op, res).map(|_| ())
    }

    /// One conditional `PutItem` (built by [`Self::put_item`] with its condition): `true` when
    /// written, `false` when the condition failed.
    pub(super) async fn put_if(
        &self,
        op: &str,
        req: PutItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        let res = req.send().await;
        Ok(self.written_if(op, res)?.is_some())
    }

    /// One unconditional `UpdateItem` (built by [`Self::update_item`]).
    pub(super) async fn update(
        &self,
        op: &str,
        req: UpdateItemFluentBuilder,
    ) -> Result<UpdateItemOutput, StoreError> {
        let res = req.send().await;
        self.written(op, res)
    }

    /// One conditional `UpdateItem` (built by [`Self::update_item`] with its condition): the
    /// answer (with the attributes asked for by `ReturnValues`) when applied, `None` when the
    /// condition failed.
    pub(super) async fn update_if(
        &self,
        op: &str,
        req: UpdateItemFluentBuilder,
    ) -> Result<Option<UpdateItemOutput>, StoreError> {
        let res = req.send().await;
        self.written_if(op, res)
    }

    /// One unconditional `DeleteItem` (absent is fine).
    pub(super) async fn delete(&self, op: &str, key: Item) -> Result<(), StoreError> {
        let res = self.delete_item(key).send().await;
        self.written(op, res).map(|_| ())
    }

    /// One conditional `DeleteItem` (built by [`Self::delete_item`] with its condition): `true`
    /// when deleted, `false` when the condition failed.
    pub(super) async fn delete_if(
        &self,
        op: &str,
        req: DeleteItemFluentBuilder,
    ) -> Result<bool, StoreError> {
        let res = req.send().await;
        Ok(self.written_if(op, res)?.is_some())
    }

    /// One conditional `DeleteItem` that returns the item deleted: `Some(item)` to the one
    /// caller whose condition held, `None` when it failed (someone else took it first).
    pub(super) async fn take_if(
        &self,
        op: &str,
        req: DeleteItemFluentBuilder,
    ) -> Result<Option<Item>, StoreError> {
        let res = req
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        Ok(self
            .written_if(op, res)?
            .map(|out| out.attributes.unwrap_or_default()))
    }

    /// One page of a `Query` (built by [`Self::query`] and friends, with its `Limit` and start).
    pub(super) async fn query_page(
        &self,
        op: &str,
        query: QueryFluentBuilder,
    ) -> Result<QueryOutput, StoreError> {
        let out = query.send().await.map_err(|e| classify(op, e))?;
        self.metrics.read_request(out.consumed_capacity.as_slice());
        Ok(out)
    }

    /// THE paginator: every page of `query` (DynamoDB answers at most 1 MB a page), each item
    /// read by `read` in key order. Stops at the first item `read` refuses, without asking for
    /// the pages after it.
    pub(super) async fn query_all<T>(
        &self,
        op: &str,
        query: QueryFluentBuilder,
        mut read: impl FnMut(&Item) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .query_page(op, query.clone().set_exclusive_start_key(start.take()))
                .await?;
            for item in page.items() {
                out.push(read(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Every item of the organisation whose sort key begins with `prefix` (consistent; all
    /// pages).
    pub(super) async fn all_with_prefix(
        &self,
        org_id: &str,
        prefix: &str,
        op: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self.begins_with(org_id, prefix).consistent_read(true);
        self.query_all(op, query, |item| Ok(item.clone())).await
    }
}
