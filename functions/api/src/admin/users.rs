//! The users' mobile numbers for the A6 notices (an administrator's import, like the directory
//! import of distribution lists): `PUT /api/v1/admin/users` replaces the whole list atomically,
//! `GET` reads it back. When the organisation has `alerts.notify_users` on, the monitor tells
//! each of them by SMS when a continuity event starts and when it ends.
//!
//! Body: JSON `{"users": [{"address": "...", "mobile": "+44..."}]}`, or `text/csv` with the
//! header line `address,mobile`. Every row is checked (an address on one of the organisation's
//! domains, an E.164 number, no address twice); one bad row refuses the import and names it.

use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::media_type;
use crate::web::ids::request_id;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::domain::config::{is_address, is_e164};
use shared::domain::continuity::{AuditRecord, Via};
use shared::domain::directory::UserDirectory;

/// Most users one import may list (the list is one item: at most 400 KB).
pub const MAX_USERS: usize = 5000;

/// One user: their address and mobile number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRow {
    pub address: String,
    pub mobile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    users: Vec<UserRow>,
}

/// The list as stored, with the time of its import.
#[derive(Debug, Serialize)]
pub struct ListBody {
    users: Vec<UserRow>,
    synced_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn rows_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<UserRow>, ApiError> {
    match media_type(headers).as_str() {
        "application/json" => serde_json::from_slice::<ImportBody>(body)
            .map(|b| b.users)
            .map_err(|e| ApiError::bad_request(format!("Malformed body: {e}"))),
        "text/csv" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("The CSV is not UTF-8."))?;
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let head = lines.next().unwrap_or("").trim().to_ascii_lowercase();
            if head.replace(' ', "") != "address,mobile" {
                return Err(ApiError::bad_request(
                    "The CSV's first line must be the header: address,mobile",
                ));
            }
            lines
                .enumerate()
                .map(|(i, l)| {
                    let mut f = l.split(',').map(str::trim);
                    match (f.next(), f.next(), f.next()) {
                        (Some(a), Some(m), None) => Ok(UserRow {
                            address: a.to_string(),
                            mobile: m.to_string(),
                        }),
                        _ => Err(ApiError::bad_request(format!(
                            "CSV line {}: expected two fields, address,mobile",
                            i + 2
                        ))),
                    }
                })
                .collect()
        }
        _ => Err(ApiError::unsupported_media_type(
            "Send the users as application/json or text/csv.",
        )),
    }
}

/// `PUT /api/v1/admin/users`: replaces the list (audited, published).
pub async fn import(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ListBody>, ApiError> {
    let rows = rows_of(&headers, &body)?;
    if rows.len() > MAX_USERS {
        return Err(ApiError::too_large(format!(
            "At most {MAX_USERS} users per organisation; this import lists {}.",
            rows.len()
        )));
    }
    let cfg = state
        .config
        .get_config(&p.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Your organisation has no configuration yet."))?;
    let mut directory = UserDirectory {
        synced_at: Some(state.clock.now()),
        ..Default::default()
    };
    for (i, r) in rows.iter().enumerate() {
        let address = r.address.trim().to_ascii_lowercase();
        if !is_address(&address) {
            return Err(ApiError::unprocessable(format!(
                "users[{i}].address: {:?} is not an email address",
                r.address
            )));
        }
        if !cfg.owns_address(&address) {
            return Err(ApiError::unprocessable(format!(
                "users[{i}].address: {address} is not on one of the organisation's domains"
            )));
        }
        if !is_e164(r.mobile.trim()) {
            return Err(ApiError::unprocessable(format!(
                "users[{i}].mobile: {:?} is not an E.164 number (+ country code and number, e.g. +447700900123)",
                r.mobile
            )));
        }
        if directory
            .mobiles
            .insert(address.clone(), r.mobile.trim().to_string())
            .is_some()
        {
            return Err(ApiError::unprocessable(format!(
                "users[{i}].address: {address} is listed twice"
            )));
        }
    }
    let before = state.continuity_store.user_directory(&p.org_id).await?;
    state
        .continuity_store
        .put_user_directory(&p.org_id, &directory)
        .await?;
    let record = AuditRecord {
        org_id: p.org_id.clone(),
        at: state.clock.now(),
        who: format!("admin:{}", p.subject),
        via: Via::Console,
        what: "users-import".into(),
        minutes: None,
        before: serde_json::json!({"users": before.mobiles.len()}),
        after: serde_json::json!({"users": directory.mobiles.len()}),
        source,
        request_id: request_id(),
    };
    state
        .continuity()
        .record(&record, "ConfigChanged", &[])
        .await;
    Ok(Json(list_body(directory)))
}

fn list_body(d: UserDirectory) -> ListBody {
    ListBody {
        users: d
            .mobiles
            .into_iter()
            .map(|(address, mobile)| UserRow { address, mobile })
            .collect(),
        synced_at: d.synced_at,
    }
}

/// `GET /api/v1/admin/users`.
pub async fn list(
    State(state): State<AppState>,
    Admin(p): Admin,
) -> Result<Json<ListBody>, ApiError> {
    Ok(Json(list_body(
        state.continuity_store.user_directory(&p.org_id).await?,
    )))
}
