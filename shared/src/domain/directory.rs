//! The organisation's user directory, as administrators import it (A6, U6).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The organisation's users with a mobile number, for the A6 notices (the last import).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDirectory {
    /// Address (lower case) -> mobile number (E.164).
    pub mobiles: std::collections::BTreeMap<String, String>,
    pub synced_at: Option<DateTime<Utc>>,
}

/// Most writes one directory import may make (DynamoDB's transaction limit, less the record).
pub const MAX_GROUP_CHANGES: usize = 99;

/// A delegate grant (U5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub user: String,
    pub mailbox: String,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
}

/// The directory import's outcome (U6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Replaced {
        groups: usize,
        removed: usize,
    },
    /// More changes than one transaction holds.
    TooLarge {
        changes: usize,
    },
}
