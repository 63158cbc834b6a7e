//! The organisation's user directory, as administrators import it (A6, U6, U11): who the users
//! are, where they get the A6 notices and their sign-in codes (a mobile number, an alternate
//! address away from the organisation's own mail), and the distribution lists and delegates.

use crate::domain::config::{is_address, is_e164, OrgConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most users one organisation's directory may hold.
pub const MAX_USERS: usize = 5000;
/// Longest display name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// One user of the organisation's directory, as an import lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryUser {
    /// Their own mailbox address (lower case), on one of the organisation's domains.
    pub address: String,
    /// How they are called (shown on their pages and in their passkey's account list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Mobile number in E.164 form: the A6 SMS and sign-in codes by SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// An address elsewhere (never on the organisation's domains, whose mail is what fails):
    /// the activation email and sign-in codes by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate: Option<String>,
}

/// The organisation's users (the last import), by address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDirectory {
    /// Address (lower case) -> the user.
    pub users: BTreeMap<String, DirectoryUser>,
    pub synced_at: Option<DateTime<Utc>>,
}

impl UserDirectory {
    /// Every user with a mobile number: (address, number).
    pub fn mobiles(&self) -> impl Iterator<Item = (&str, &str)> {
        self.users
            .values()
            .filter_map(|u| Some((u.address.as_str(), u.mobile.as_deref()?)))
    }
}

/// An import's rows checked against the organisation's configuration: every field of every row,
/// the first problem named by its row (`users[3].alternate: ...`). Pure.
pub fn check_import(
    cfg: &OrgConfig,
    rows: &[DirectoryUser],
    now: DateTime<Utc>,
) -> Result<UserDirectory, String> {
    if rows.len() > MAX_USERS {
        return Err(format!(
            "users: at most {MAX_USERS} users per organisation; this import lists {}",
            rows.len()
        ));
    }
    let mut directory = UserDirectory {
        synced_at: Some(now),
        ..Default::default()
    };
    let present = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    for (i, row) in rows.iter().enumerate() {
        let given = &row.address;
        let address = given.trim().to_ascii_lowercase();
        if !is_address(&address) {
            return Err(format!(
                "users[{i}].address: {given:?} is not an email address"
            ));
        }
        if !cfg.owns_address(&address) {
            return Err(format!(
                "users[{i}].address: {address} is not on one of the organisation's domains"
            ));
        }
        let name = present(&row.name);
        if let Some(n) = &name {
            if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
                return Err(format!(
                    "users[{i}].name: at most {MAX_NAME_CHARS} characters, no control characters"
                ));
            }
        }
        let mobile = present(&row.mobile);
        if let Some(m) = &mobile {
            if !is_e164(m) {
                return Err(format!(
                    "users[{i}].mobile: {m:?} is not an E.164 number (+ country code and number, e.g. +447700900123)"
                ));
            }
        }
        let alternate = present(&row.alternate).map(|a| a.to_ascii_lowercase());
        if let Some(a) = &alternate {
            if !is_address(a) {
                return Err(format!(
                    "users[{i}].alternate: {a:?} is not an email address"
                ));
            }
            if cfg.owns_address(a) {
                return Err(format!(
                    "users[{i}].alternate: {a} is on the organisation's own domain: codes and notices must reach the user while that mail is down, so give an address elsewhere"
                ));
            }
        }
        let user = DirectoryUser {
            address: address.clone(),
            name,
            mobile,
            alternate,
        };
        if directory.users.insert(address.clone(), user).is_some() {
            return Err(format!("users[{i}].address: {address} is listed twice"));
        }
    }
    Ok(directory)
}

/// Most writes one directory import may make (DynamoDB's 100 items a transaction, less the
/// import's record and its audit record).
pub const MAX_GROUP_CHANGES: usize = 98;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(address: &str, mobile: Option<&str>, alternate: Option<&str>) -> DirectoryUser {
        DirectoryUser {
            address: address.into(),
            name: Some("Bob".into()),
            mobile: mobile.map(Into::into),
            alternate: alternate.map(Into::into),
        }
    }

    #[test]
    fn every_user_row_is_checked_and_named() {
        let cfg = crate::domain::config::tests::sample();
        let now = "2026-11-23T10:00:00Z".parse().expect("time");
        let d = check_import(
            &cfg,
            &[row(
                " Bob@Acme.Example ",
                Some("+447700900123"),
                Some("Bob@Home.Example"),
            )],
            now,
        )
        .expect("valid");
        let bob = &d.users["bob@acme.example"];
        assert_eq!(bob.mobile.as_deref(), Some("+447700900123"));
        assert_eq!(bob.alternate.as_deref(), Some("bob@home.example"));
        assert_eq!(d.synced_at, Some(now));
        assert_eq!(
            d.mobiles().collect::<Vec<_>>(),
            [("bob@acme.example", "+447700900123")]
        );
        for (bad, field) in [
            (vec![row("not-an-address", None, None)], "users[0].address"),
            (
                vec![row("bob@other.example", None, None)],
                "users[0].address",
            ),
            (
                vec![row("bob@acme.example", Some("07700 900123"), None)],
                "users[0].mobile",
            ),
            (
                vec![row("bob@acme.example", None, Some("bob@acme.example"))],
                "users[0].alternate",
            ),
            (
                vec![row("bob@acme.example", None, Some("bob@eu.acme.example"))],
                "users[0].alternate",
            ),
            (
                vec![row("bob@acme.example", None, Some("nope"))],
                "users[0].alternate",
            ),
            (
                vec![
                    row("bob@acme.example", None, None),
                    row("BOB@acme.example", None, None),
                ],
                "users[1].address",
            ),
        ] {
            let e = check_import(&cfg, &bad, now).expect_err("refused");
            assert!(e.starts_with(field), "{e}");
        }
        let mut long = row("bob@acme.example", None, None);
        long.name = Some("x".repeat(101));
        assert!(check_import(&cfg, &[long], now)
            .expect_err("long name")
            .starts_with("users[0].name"));
        let many: Vec<_> = (0..=MAX_USERS)
            .map(|i| row(&format!("u{i}@acme.example"), None, None))
            .collect();
        assert!(check_import(&cfg, &many, now)
            .expect_err("too many")
            .contains("at most 5000"));
    }
}
