//! The DynamoDB adapter: one table, keys with prefixes, conditional writes for exactly-once.
//! Item types, keys and access patterns are listed in `TABLE.md` beside this file.
//!
//! The module map:
//! - [`keys`]: every key, prefix, index name and retention period, in `TABLE.md`'s order;
//! - `codec`: attribute values written and read back; [`metrics`]: requests and capacity;
//! - `request` (single-item requests, the paginator), `batch` (`BatchGetItem`,
//!   `BatchWriteItem`), `transact` (the transaction retry and cancellation decoder): how every
//!   request is sent, counted and its error read;
//! - one file per port implementation, named for the port: `monitor` (MonitorStore,
//!   InboundRecorder, ProbeArrivals, QueueFiguresSource), `alerts` (AlertStore), `continuity`
//!   (ContinuityStore, ContinuityViews), `config` (ConfigStore, DomainOwners), `domains`
//!   (DomainClaims), `mail` (MailStore), `queue` (QueueStore), `aside` (mail set aside,
//!   QueueViews), `mailbox` (MailboxStore), `search` (SearchIndex), `directory` (DirectoryStore), `sign_in`
//!   (SignInStore), `passkeys` (PasskeyStore); `users`: the user directory's generations
//!   (ContinuityStore and SignInStore read them); `items`: readers of the items two of them read
//!   (counter, continuity);
//! - `table`: the table's creation for local stacks, and a raw write for tests.

pub mod keys;
pub mod metrics;

mod batch;
mod codec;
mod request;
mod transact;

mod alerts;
mod aside;
mod config;
mod continuity;
mod directory;
mod domains;
mod items;
mod mail;
mod mailbox;
mod monitor;
mod passkeys;
mod queue;
mod search;
mod sign_in;
mod table;
mod users;

use aws_sdk_dynamodb::Client;
use metrics::{Metrics, MetricsSnapshot};
use std::sync::Arc;

/// The single-table store: implements every storage port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    metrics: Arc<Metrics>,
}

impl DynamoStore {
    /// A store of table `table` (which must exist: see [`DynamoStore::create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// The store on a client from the shared SDK configuration.
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client, for tests that inspect items directly.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests made and capacity consumed so far (by this store and its clones).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}
