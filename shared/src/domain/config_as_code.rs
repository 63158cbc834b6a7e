//! Configuration as code: an organisation's whole configuration lives in a file beside the
//! infrastructure code and is applied by a command that first shows what would change, then
//! applies it through the same validation as the administration API. Applying the same file
//! twice changes nothing (the second run finds no difference and writes nothing).
//!
//! Files are JSON: one organisation's [`OrgConfig`] document, or an array of them. A document
//! may also carry the organisation's user directory (A6, U11) as `users` (the rows of the
//! administration API's import): applied, it replaces the directory whole when it differs.

use crate::domain::config::{ConfigErrors, OrgConfig};
use crate::domain::directory::{check_import, DirectoryUser, UserDirectory};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One difference between the stored configuration and the file, by field path
/// (`monitoring.threshold`, `alerts.contacts[0].mobile`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    /// The stored value; `None` when the field is new.
    pub before: Option<Value>,
    /// The file's value; `None` when the field goes away.
    pub after: Option<Value>,
}

/// What applying one organisation's file would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgPlan {
    pub org_id: String,
    /// No configuration is stored yet.
    pub create: bool,
    pub changes: Vec<Change>,
    /// The user directory the file carries, when it differs from the stored one (applied whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<UserDirectory>,
}

impl OrgPlan {
    pub fn is_noop(&self) -> bool {
        !self.create && self.changes.is_empty() && self.users.is_none()
    }

    /// Adds the directory the file carries (`rows`), checked against the configuration
    /// planned, if it differs from `stored`. Pure.
    pub fn with_users(
        mut self,
        cfg: &OrgConfig,
        rows: &[DirectoryUser],
        stored: &UserDirectory,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        let wanted = check_import(cfg, rows, now)?;
        if wanted.users != stored.users {
            self.changes.push(Change {
                path: "users".into(),
                before: Some(Value::from(stored.users.len())),
                after: Some(Value::from(wanted.users.len())),
            });
            self.users = Some(wanted);
        }
        Ok(self)
    }
}

/// Why a file cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum IacError {
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: organisation {org_id}: {errors}")]
    Invalid {
        file: String,
        org_id: String,
        errors: ConfigErrors,
    },
    #[error("{file}: organisation {org_id} appears more than once")]
    Duplicate { file: String, org_id: String },
}

/// Reads and validates a file's configurations (every problem of every organisation named).
pub fn parse(file: &str, text: &str) -> Result<Vec<OrgConfig>, IacError> {
    Ok(parse_documents(file, text)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// One document of a file: the organisation's configuration, and the user directory's rows it
/// carries (`users`), if any.
pub type Document = (OrgConfig, Option<Vec<DirectoryUser>>);

/// As [`parse`], with the user directory each document carries (`users`), if any.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, IacError> {
    let value: Value = serde_json::from_str(text).map_err(|e| IacError::Unreadable {
        file: file.into(),
        reason: e.to_string(),
    })?;
    let docs = match value {
        Value::Array(a) => a,
        v => vec![v],
    };
    let mut out: Vec<Document> = Vec::new();
    for (i, mut d) in docs.into_iter().enumerate() {
        let users = match d.as_object_mut().and_then(|o| o.remove("users")) {
            Some(u) => Some(
                serde_json::from_value::<Vec<DirectoryUser>>(u).map_err(|e| {
                    IacError::Unreadable {
                        file: file.into(),
                        reason: format!("organisation #{}: users: {e}", i + 1),
                    }
                })?,
            ),
            None => None,
        };
        let cfg: OrgConfig = serde_json::from_value(d).map_err(|e| IacError::Unreadable {
            file: file.into(),
            reason: format!("organisation #{}: {e}", i + 1),
        })?;
        cfg.validate().map_err(|errors| IacError::Invalid {
            file: file.into(),
            org_id: cfg.org_id.clone(),
            errors,
        })?;
        if out.iter().any(|(o, _)| o.org_id == cfg.org_id) {
            return Err(IacError::Duplicate {
                file: file.into(),
                org_id: cfg.org_id,
            });
        }
        out.push((cfg, users));
    }
    Ok(out)
}

/// The differences between `stored` and `wanted`, field by field (defaults filled in on both
/// sides, so a file that leaves a default out does not differ from one that spells it).
pub fn plan(stored: Option<&OrgConfig>, wanted: &OrgConfig) -> OrgPlan {
    let after = flatten(&serde_json::to_value(wanted).unwrap_or(Value::Null));
    let before = stored
        .map(|s| flatten(&serde_json::to_value(s).unwrap_or(Value::Null)))
        .unwrap_or_default();
    let mut changes = Vec::new();
    for (path, a) in &after {
        match before.get(path) {
            Some(b) if b == a => {}
            b => changes.push(Change {
                path: path.clone(),
                before: b.cloned(),
                after: Some(a.clone()),
            }),
        }
    }
    for (path, b) in &before {
        if !after.contains_key(path) {
            changes.push(Change {
                path: path.clone(),
                before: Some(b.clone()),
                after: None,
            });
        }
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    OrgPlan {
        org_id: wanted.org_id.clone(),
        create: stored.is_none(),
        changes: if stored.is_none() {
            Vec::new()
        } else {
            changes
        },
        users: None,
    }
}

/// Leaves of a JSON document by path; empty arrays and objects are leaves too.
fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), x, out);
                }
            }
            Value::Null => {}
            _ => {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", v, &mut out);
    out
}

/// The plan as an administrator reads it.
pub fn render(plan: &OrgPlan) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if plan.create {
        let _ = writeln!(
            s,
            "organisation {}: new (the whole configuration is stored)",
            plan.org_id
        );
    } else if plan.changes.is_empty() {
        let _ = writeln!(s, "organisation {}: no changes", plan.org_id);
    } else {
        let _ = writeln!(
            s,
            "organisation {}: {} change(s)",
            plan.org_id,
            plan.changes.len()
        );
        for c in &plan.changes {
            let show =
                |v: &Option<Value>| v.as_ref().map_or("(absent)".to_string(), |v| v.to_string());
            let _ = writeln!(s, "  {}: {} -> {}", c.path, show(&c.before), show(&c.after));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::tests::sample;

    #[test]
    fn same_config_is_no_change_and_defaults_do_not_differ() {
        let c = sample();
        assert!(plan(Some(&c), &c).is_noop());
        // A file that leaves the queue defaults out parses to the same document.
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("queue");
        let parsed = parse("f.json", &v.to_string()).unwrap();
        assert!(plan(Some(&c), &parsed[0]).is_noop());
    }

    #[test]
    fn changes_are_named_by_path() {
        let c = sample();
        let mut d = c.clone();
        d.monitoring.threshold = 5;
        d.alerts.contacts[0].mobile = None;
        d.domains.push("acme2.example".into());
        let p = plan(Some(&c), &d);
        let paths: Vec<_> = p.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "alerts.contacts[0].mobile",
                "domains[1]",
                "monitoring.threshold"
            ]
        );
        assert_eq!(p.changes[0].after, None);
        assert_eq!(p.changes[2].before, Some(Value::from(3)));
        assert!(render(&p).contains("monitoring.threshold: 3 -> 5"));
        assert!(plan(None, &d).create);
    }

    #[test]
    fn invalid_files_are_refused_with_every_field() {
        let mut c = sample();
        c.monitoring.threshold = 0;
        c.routes.clear();
        let text = serde_json::to_string(&vec![c]).unwrap();
        let e = parse("orgs.json", &text).unwrap_err().to_string();
        assert!(
            e.contains("monitoring.threshold") && e.contains("routes"),
            "{e}"
        );
        let dup = serde_json::to_string(&vec![sample(), sample()]).unwrap();
        assert!(matches!(parse("f", &dup), Err(IacError::Duplicate { .. })));
        assert!(matches!(parse("f", "{"), Err(IacError::Unreadable { .. })));
    }

    #[test]
    fn a_file_may_carry_the_user_directory() {
        let c = sample();
        let domain = &c.domains[0];
        let mut v = serde_json::to_value(&c).unwrap();
        v["users"] = serde_json::json!([
            {"address": format!("Ann@{domain}"), "name": "Ann", "mobile": "+447700900123"},
            {"address": format!("bob@{domain}"), "alternate": "bob@elsewhere.example"}
        ]);
        let docs = parse_documents("f.json", &v.to_string()).unwrap();
        let rows = docs[0].1.clone().unwrap();
        let now = chrono::Utc::now();
        // Against an empty directory: a change, the directory checked (addresses lower-cased).
        let p = plan(Some(&c), &docs[0].0)
            .with_users(&c, &rows, &UserDirectory::default(), now)
            .unwrap();
        assert!(!p.is_noop());
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].path, "users");
        let d = p.users.clone().unwrap();
        assert!(d.users.contains_key(&format!("ann@{domain}")));
        // Against the same directory (imported at another time): nothing to do.
        let again = plan(Some(&c), &docs[0].0)
            .with_users(&c, &rows, &d, now + chrono::Duration::hours(1))
            .unwrap();
        assert!(again.is_noop(), "{again:?}");
        // A bad row is refused, named; an unknown field is unreadable.
        let mut bad = rows.clone();
        bad[1].alternate = Some(format!("bob2@{domain}"));
        let e = plan(Some(&c), &c)
            .with_users(&c, &bad, &d, now)
            .unwrap_err();
        assert!(e.contains("users[1].alternate"), "{e}");
        v["users"] = serde_json::json!([{"address": format!("ann@{domain}"), "pager": "1"}]);
        assert!(matches!(
            parse_documents("f.json", &v.to_string()),
            Err(IacError::Unreadable { .. })
        ));
        // Without `users`, the directory is not the file's business.
        v.as_object_mut().unwrap().remove("users");
        assert_eq!(
            parse_documents("f.json", &v.to_string()).unwrap()[0].1,
            None
        );
    }
}
