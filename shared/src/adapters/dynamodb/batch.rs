//! `BatchGetItem` and `BatchWriteItem`, the two batch requests, each in one place: any number
//! of keys or writes, split into DynamoDB's request sizes (100 keys, 25 writes), what DynamoDB
//! leaves unprocessed retried with backoff, and never a partial answer: an error when some are
//! still unprocessed after the last attempt.

use super::codec::{build_err, Item};
use super::request::{backoff, classify};
use super::DynamoStore;
use crate::ports::error::StoreError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, WriteRequest,
};

/// Keys a `BatchGetItem` may ask for.
const GET_CHUNK: usize = 100;
/// Attempts of one chunk of a `BatchGetItem`.
const GET_ATTEMPTS: u32 = 8;
/// Writes a `BatchWriteItem` may carry.
const WRITE_CHUNK: usize = 25;
/// Attempts of one chunk of a `BatchWriteItem`.
const WRITE_ATTEMPTS: u32 = 10;

/// A put of `item` for [`DynamoStore::batch_write`].
pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(build_err)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// A delete of the item `key` for [`DynamoStore::batch_write`].
pub(super) fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(build_err)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

impl DynamoStore {
    /// `BatchGetItem` of `keys` (any number: 100 a request), retrying unprocessed keys with
    /// backoff; an error if some are still unprocessed after 8 attempts, never a partial answer.
    pub(super) async fn batch_get(
        &self,
        op: &str,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(GET_CHUNK) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(consistent)
                .build()
                .map_err(build_err)?;
            let mut done = false;
            for attempt in 0..GET_ATTEMPTS {
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
                        backoff(20, attempt, 5).await;
                    }
                    _ => {
                        done = true;
                        break;
                    }
                }
            }
            if !done {
                return Err(StoreError::Transient(format!(
                    "{op}: keys left unprocessed after {GET_ATTEMPTS} attempts"
                )));
            }
        }
        Ok(out)
    }

    /// `BatchWriteItem` of `requests` (any number: 25 a request), retrying unprocessed writes
    /// with backoff; an error if some are still unprocessed after 10 attempts.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(WRITE_CHUNK) {
            let mut pending = chunk.to_vec();
            for attempt in 0..WRITE_ATTEMPTS {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                self.metrics.request(out.consumed_capacity());
                match out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.is_empty() => {
                        pending = rest;
                        backoff(20, attempt, 6).await;
                    }
                    _ => {
                        pending.clear();
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Transient(format!(
                    "BatchWriteItem: items left unprocessed after {WRITE_ATTEMPTS} attempts"
                )));
            }
        }
        Ok(())
    }
}
