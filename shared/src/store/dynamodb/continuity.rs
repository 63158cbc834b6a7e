//! DynamoDB adapter of continuity events, planned events and the audit trail (P2-P10).

#[allow(unused_imports)]
use super::*;
