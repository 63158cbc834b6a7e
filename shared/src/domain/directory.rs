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
