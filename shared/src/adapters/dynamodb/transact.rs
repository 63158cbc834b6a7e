//! `TransactWriteItems`, in one place: the items' builders ([`DynamoStore::tx_put`],
//! [`DynamoStore::tx_update`], [`DynamoStore::tx_delete`]), THE retry of a transaction
//! ([`DynamoStore::transact`]) and THE decoder of its cancellation reasons.
//!
//! A cancelled transaction says, item by item, why. A failed condition is an answer, never
//! retried: the caller reads which item's condition failed ([`Cancelled`]) and says what that
//! means (a duplicate message, a counter moved since it was read, a domain another
//! organisation owns). Without one, a conflict with another transaction on the same items or a
//! throttled item is retried, with the same backoff for every transaction of the table (every
//! transaction here is conditional or idempotent, so a repeat is safe).

use super::codec::build_err;
use super::request::{backoff, classify};
use super::DynamoStore;
use crate::ports::error::StoreError;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::{DeleteBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};

/// Attempts of one transaction.
const ATTEMPTS: u32 = 6;
/// The reason code of an item whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// Reason codes that another attempt may not meet: another transaction on the same items, or
/// throttling.
const RETRYABLE: [&str; 3] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// How a transaction ended, when it did not fail outright.
#[derive(Debug)]
pub(super) enum Transacted {
    /// Every item was written.
    Written,
    /// Nothing was written: at least one item's condition failed.
    Refused(Cancelled),
}

/// The cancellation of a transaction refused by a condition.
#[derive(Debug)]
pub(super) struct Cancelled {
    codes: Vec<String>,
    error: StoreError,
}

impl Cancelled {
    /// Whether the condition of item `i` (0-based, in the order given) failed.
    pub(super) fn failed(&self, i: usize) -> bool {
        self.codes.get(i).is_some_and(|c| c == CONDITION_FAILED)
    }

    /// The items whose condition failed, in order.
    pub(super) fn failed_items(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.codes.len()).filter(|&i| self.failed(i))
    }

    /// The cancellation as an error, for a caller that has no answer for it.
    pub(super) fn into_error(self) -> StoreError {
        self.error
    }
}

/// THE cancellation decoder: each item's reason code (`"None"` for an item that was fine), in
/// the order of the items; `None` when the error is no cancellation.
fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

impl DynamoStore {
    /// A `Put` of a transaction, on the table.
    pub(super) fn tx_put(&self, put: PutBuilder) -> Result<TransactWriteItem, StoreError> {
        let put = put.table_name(&self.table).build().map_err(build_err)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An `Update` of a transaction, on the table.
    pub(super) fn tx_update(&self, update: UpdateBuilder) -> Result<TransactWriteItem, StoreError> {
        let update = update.table_name(&self.table).build().map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A `Delete` of a transaction, on the table.
    pub(super) fn tx_delete(&self, delete: DeleteBuilder) -> Result<TransactWriteItem, StoreError> {
        let delete = delete.table_name(&self.table).build().map_err(build_err)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// THE transaction: one `TransactWriteItems` of `items`, retried (6 attempts, backoff from
    /// 25 ms) while it is cancelled by a conflict or throttling and no condition failed. Each
    /// attempt is counted.
    pub(super) async fn transact(
        &self,
        op: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Transacted, StoreError> {
        for attempt in 0..ATTEMPTS {
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match res {
                Ok(out) => {
                    self.metrics.request(out.consumed_capacity());
                    return Ok(Transacted::Written);
                }
                Err(err) => err,
            };
            self.metrics.request(&[]);
            match cancellation_codes(&err) {
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED) => {
                    return Ok(Transacted::Refused(Cancelled {
                        codes,
                        error: classify(op, err),
                    }))
                }
                Some(codes) if codes.iter().any(|c| RETRYABLE.contains(&c.as_str())) => {
                    backoff(25, attempt, 4).await
                }
                _ => return Err(classify(op, err)),
            }
        }
        Err(StoreError::Transient(format!(
            "{op}: transaction conflicts persisted after {ATTEMPTS} attempts"
        )))
    }
}
