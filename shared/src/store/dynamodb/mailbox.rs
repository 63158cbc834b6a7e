//! DynamoDB adapter of the Online Inbox (U1-U8, C1-C3): pages, sent items, blocks, delegates,
//! the client hand-out record.

#[allow(unused_imports)]
use super::*;
