//! The administrators' directory API (U5, U6): delegate grants and the distribution-list import.
//! Signed-in administrators of the organisation only; everything stays in their organisation.
//!
//! The import replaces the previous one atomically (one DynamoDB transaction) and records its
//! time, which users see on their mailbox page. It takes JSON
//! (`{"groups": [{"address": .., "members": [..]}]}`) or CSV (`group,member` per line, an
//! optional header line).

use super::by_admin;
use crate::web::auth::{org_for_address, Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::{Body, Qs};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use shared::domain::directory::{Grant, ImportOutcome, MAX_GROUP_CHANGES};
use shared::domain::mail::mailbox_of;
use std::collections::BTreeMap;

/// Most members one list may have in an import (an item holds 400 KB).
pub const MAX_MEMBERS: usize = 5_000;

/// Whether `address` is on one of the organisation's domains (one BatchGetItem).
async fn in_org(state: &AppState, org: &str, address: &str) -> Result<bool, ApiError> {
    Ok(org_for_address(state, address).await?.as_deref() == Some(org))
}

/// A delegation: `user` may use `mailbox`.
#[derive(Debug, Deserialize)]
pub struct GrantRequest {
    pub user: String,
    pub mailbox: String,
}

/// `POST /api/v1/admin/delegates`.
pub async fn grant(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Body(req): Body<GrantRequest>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    let user = mailbox_of(&req.user)
        .ok_or_else(|| ApiError::unprocessable("user must be an email address."))?;
    let mailbox = mailbox_of(&req.mailbox)
        .ok_or_else(|| ApiError::unprocessable("mailbox must be an email address."))?;
    if user == mailbox {
        return Err(ApiError::unprocessable(
            "A user already has their own mailbox; grant another one.",
        ));
    }
    for a in [&user, &mailbox] {
        if !in_org(&state, &p.org_id, a).await? {
            return Err(ApiError::unprocessable(format!(
                "{a} is not on one of your organisation's domains."
            )));
        }
    }
    let g = Grant {
        user,
        mailbox,
        granted_by: p.subject.clone(),
        granted_at: state.clock.now(),
    };
    state
        .directory()
        .grant(&p.org_id, &g, &by_admin(&p, source))
        .await?;
    tracing::info!(org = %p.org_id, by = %p.subject, "delegate granted");
    Ok((StatusCode::CREATED, Json(g)))
}

/// Optionally, one user's grants only.
#[derive(Debug, Deserialize, Default)]
pub struct DelegatesQuery {
    #[serde(default)]
    user: Option<String>,
}

/// `GET /api/v1/admin/delegates`.
pub async fn list_delegates(
    State(state): State<AppState>,
    Admin(p): Admin,
    Qs(q): Qs<DelegatesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = match q.user.as_deref() {
        Some(u) => Some(
            mailbox_of(u).ok_or_else(|| ApiError::bad_request("user must be an email address."))?,
        ),
        None => None,
    };
    let grants = state
        .directory
        .delegates(&p.org_id, user.as_deref())
        .await?;
    Ok(Json(serde_json::json!({ "delegates": grants })))
}

/// `DELETE /api/v1/admin/delegates/{user}/{mailbox}`.
pub async fn revoke(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path((user, mailbox)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (Some(user), Some(mailbox)) = (mailbox_of(&user), mailbox_of(&mailbox)) else {
        return Err(ApiError::not_found("There is no such grant."));
    };
    let revoked = state
        .directory()
        .revoke(
            &p.org_id,
            (&user, &mailbox),
            &by_admin(&p, source),
            state.clock.now(),
        )
        .await?;
    if revoked {
        tracing::info!(org = %p.org_id, by = %p.subject, "delegate revoked");
    } else {
        tracing::info!(org = %p.org_id, by = %p.subject, "delegate revoke: no such grant (nothing changed)");
    }
    // Absent already is the state asked for: the same answer (a retried DELETE is no error).
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct GroupsJson {
    groups: Vec<GroupJson>,
}
#[derive(Debug, Deserialize)]
struct GroupJson {
    address: String,
    #[serde(default)]
    members: Vec<String>,
}

/// Reads an import body (JSON or CSV) into lists, addresses checked and lower-cased.
pub fn parse_import(content_type: &str, body: &[u8]) -> Result<Vec<(String, Vec<String>)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "The body is not UTF-8.".to_string())?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |g: &str, m: Option<&str>, line: usize| -> Result<(), String> {
        let g =
            mailbox_of(g).ok_or_else(|| format!("Line {line}: '{g}' is not a group address."))?;
        let entry = groups.entry(g).or_default();
        if let Some(m) = m.filter(|m| !m.trim().is_empty()) {
            let m = mailbox_of(m)
                .ok_or_else(|| format!("Line {line}: '{m}' is not a member address."))?;
            if !entry.contains(&m) {
                entry.push(m);
            }
        }
        Ok(())
    };
    if content_type.starts_with("application/json") {
        let j: GroupsJson =
            serde_json::from_str(text).map_err(|e| format!("The JSON is not an import: {e}"))?;
        for (i, g) in j.groups.iter().enumerate() {
            add(&g.address, None, i + 1)?;
            for m in &g.members {
                add(&g.address, Some(m), i + 1)?;
            }
        }
    } else if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split(',').map(|c| c.trim().trim_matches('"'));
            let g = cols.next().unwrap_or("");
            let m = cols.next();
            if i == 0 && mailbox_of(g).is_none() {
                continue; // a header line
            }
            add(g, m, i + 1)?;
        }
    } else {
        return Err("Send the import as application/json or text/csv.".into());
    }
    for (g, members) in &groups {
        if members.len() > MAX_MEMBERS {
            return Err(format!(
                "The list {g} has {} members; at most {MAX_MEMBERS} are supported.",
                members.len()
            ));
        }
    }
    Ok(groups.into_iter().collect())
}

/// `PUT /api/v1/admin/groups`: replaces every list at once.
pub async fn import_groups(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !(ct.starts_with("application/json")
        || ct.starts_with("text/csv")
        || ct.starts_with("text/plain"))
    {
        return Err(ApiError::unsupported_media_type(
            "Send the import as application/json or text/csv.",
        ));
    }
    let groups = parse_import(&ct, &body).map_err(ApiError::unprocessable)?;
    // Lists and their members are the organisation's own mailboxes: a list on another
    // organisation's domain, or a member there, would file or deliver mail across the line.
    let cfg = state.settings().current(&p.org_id).await?;
    if let Some(stranger) = groups
        .iter()
        .flat_map(|(g, members)| std::iter::once(g).chain(members))
        .find(|a| !cfg.owns_address(a))
    {
        tracing::warn!(org = %p.org_id, by = %p.subject, address = %stranger, "group import refused: address outside the organisation");
        return Err(ApiError::unprocessable(format!(
            "{stranger} is not on one of your organisation's domains; lists and their members must be; nothing was imported."
        )));
    }
    let now = state.clock.now();
    let by = by_admin(&p, source);
    match state
        .directory()
        .import_groups(&p.org_id, &groups, &by, now)
        .await?
    {
        ImportOutcome::Replaced { groups, removed } => {
            tracing::info!(org = %p.org_id, by = %p.subject, groups, removed, "directory imported");
            Ok(Json(serde_json::json!({
                "groups": groups,
                "removed": removed,
                "synced_at": now,
            })))
        }
        ImportOutcome::TooLarge { changes } => Err(ApiError::unprocessable(format!(
            "This import would change {changes} lists; one import changes at most {MAX_GROUP_CHANGES} (lists written plus lists removed)."
        ))),
    }
}

/// `GET /api/v1/admin/groups`.
pub async fn list_groups(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (groups, synced_at) = state.directory.groups(&p.org_id).await?;
    let groups: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|(a, m)| serde_json::json!({"address": a, "members": m}))
        .collect();
    Ok(Json(serde_json::json!({
        "synced_at": synced_at,
        "groups": groups,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_imports() {
        let csv = b"group,member\nsales@acme.test,bob@acme.test\nsales@acme.test,Carol@acme.test\nall@acme.test,bob@acme.test\n";
        let g = parse_import("text/csv", csv).unwrap();
        assert_eq!(
            g,
            vec![
                (
                    "all@acme.test".to_string(),
                    vec!["bob@acme.test".to_string()]
                ),
                (
                    "sales@acme.test".to_string(),
                    vec!["bob@acme.test".to_string(), "carol@acme.test".to_string()]
                ),
            ]
        );
        let json = br#"{"groups":[{"address":"sales@acme.test","members":["bob@acme.test"]}]}"#;
        assert_eq!(parse_import("application/json", json).unwrap().len(), 1);
        assert!(parse_import("text/csv", b"sales@acme.test,not an address\n").is_err());
        assert!(parse_import("application/xml", b"<x/>").is_err());
    }
}
