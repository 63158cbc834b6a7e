//! The users' mobile numbers for the A6 notices (an administrator's import, like the directory
//! import of distribution lists): `PUT /api/v1/admin/users` replaces the whole list atomically,
//! `GET` reads it back. When the organisation has `alerts.notify_users` on, the monitor tells
//! each of them by SMS when a continuity event starts and when it ends.
//!
//! Body: JSON `{"users": [{"address": "...", "mobile": "+44..."}]}`, or `text/csv` with the
//! header line `address,mobile`. Every row is checked (an address on one of the organisation's
//! domains, an E.164 number, no address twice); one bad row refuses the import and names it.

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::media_type;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::domain::directory::UserDirectory;

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
    let rows: Vec<(String, String)> = rows_of(&headers, &body)?
        .into_iter()
        .map(|r| (r.address, r.mobile))
        .collect();
    let by = by_admin(&p, source);
    let directory = state
        .settings()
        .import_users(&p.org_id, &rows, &by, state.clock.now())
        .await?;
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
