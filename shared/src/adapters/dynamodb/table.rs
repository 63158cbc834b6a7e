//! The table itself: its creation as `infra/template.yaml` declares it (key schema, the sparse
//! index `gsi1`, TTL on `expires_at`: `TABLE.md`'s key table), for local stacks and tests, and
//! a raw write with which tests plant items the ports would refuse.

use super::codec::build_err;
use super::keys::{GSI1, GSI1PK, GSI1SK, PK, SK, TTL_ATTR};
use super::request::classify;
use super::DynamoStore;
use crate::ports::error::StoreError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

impl DynamoStore {
    /// Creates the table with its index and TTL, as `infra/template.yaml` declares it.
    /// For local stacks; in AWS the template owns the table.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        Self::create_table_without_expiry(client, table).await?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTR)
                    .enabled(true)
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await
            .map_err(|e| classify("UpdateTimeToLive", e))?;
        Ok(())
    }

    /// As [`DynamoStore::create_table`] without TTL: for tests on virtual time. DynamoDB Local
    /// deletes items whose TTL is behind the real clock within seconds, and a virtual day
    /// days behind it would lose its sessions, codes and counters mid-test; the tests check
    /// the TTL attribute's value instead.
    pub async fn create_table_without_expiry(
        client: &Client,
        table: &str,
    ) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)
        };
        let ks = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(build_err)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(ks(GSI1PK, KeyType::Hash)?)
            .key_schema(ks(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_err)?;
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr(GSI1PK)?)
            .attribute_definitions(attr(GSI1SK)?)
            .key_schema(ks(PK, KeyType::Hash)?)
            .key_schema(ks(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await
            .map_err(|e| classify("CreateTable", e))?;
        Ok(())
    }

    /// Writes an item as given (one `PutItem`). Tests use it to plant items the API would
    /// refuse.
    pub async fn put_raw(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.put("PutItem", item).await
    }
}
