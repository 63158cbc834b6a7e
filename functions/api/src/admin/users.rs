//! The user directory (A6, U11; an administrator's import, like the directory import of
//! distribution lists): `PUT /api/v1/admin/users` replaces it whole, atomically, `GET` reads it
//! back. Per user: their address, display name, mobile number and alternate address. The monitor
//! tells them when a continuity event starts and ends (A6, when `alerts.notify_users` is on);
//! sign-in codes go to the mobile number and the alternate address (U11).
//!
//! Body: JSON `{"users": [{"address": "...", "name": "...", "mobile": "+44...", "alternate":
//! "..."}]}`, or `text/csv` whose header line names the columns (`address` and any of `name`,
//! `mobile`, `alternate`, in any order; fields with commas in double quotes). Every row is
//! checked (an address on one of the organisation's domains, an E.164 number, an alternate
//! address *not* on them, no address twice); one bad row refuses the import and names it.
//!
//! `DELETE /api/v1/admin/users/{address}/passkeys` revokes a user's passkeys and ends the
//! sessions the service opened for them (audited).

use super::by_admin;
use crate::web::auth::{Admin, ClientAddr};
use crate::web::error::ApiError;
use crate::web::extract::media_type;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::domain::directory::{DirectoryUser, UserDirectory};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    users: Vec<DirectoryUser>,
}

/// The directory as stored, with the time of its import.
#[derive(Debug, Serialize)]
pub struct ListBody {
    users: Vec<DirectoryUser>,
    synced_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The columns a CSV import may have.
const COLUMNS: [&str; 4] = ["address", "name", "mobile", "alternate"];

/// One CSV line's fields: split on commas, a field in double quotes may hold commas (and `""`
/// for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    out.push(field.trim().to_string());
    out
}

fn rows_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<DirectoryUser>, ApiError> {
    match media_type(headers).as_str() {
        "application/json" => serde_json::from_slice::<ImportBody>(body)
            .map(|b| b.users)
            .map_err(|e| ApiError::bad_request(format!("Malformed body: {e}"))),
        "text/csv" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("The CSV is not UTF-8."))?;
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let head: Vec<String> = csv_fields(lines.next().unwrap_or(""))
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            let known = head.iter().all(|h| COLUMNS.contains(&h.as_str()));
            let once = COLUMNS
                .iter()
                .all(|c| head.iter().filter(|h| h == c).count() <= 1);
            if !known || !once || !head.iter().any(|h| h == "address") {
                return Err(ApiError::bad_request(
                    "The CSV's first line must name its columns: address, and any of name, mobile, alternate (for example address,name,mobile,alternate)",
                ));
            }
            lines
                .enumerate()
                .map(|(i, l)| {
                    let f = csv_fields(l);
                    if f.len() != head.len() {
                        return Err(ApiError::bad_request(format!(
                            "CSV line {}: expected {} fields ({})",
                            i + 2,
                            head.len(),
                            head.join(",")
                        )));
                    }
                    let get = |c: &str| {
                        head.iter()
                            .position(|h| h == c)
                            .map(|p| f[p].clone())
                            .filter(|v| !v.is_empty())
                    };
                    Ok(DirectoryUser {
                        address: get("address").unwrap_or_default(),
                        name: get("name"),
                        mobile: get("mobile"),
                        alternate: get("alternate"),
                    })
                })
                .collect()
        }
        _ => Err(ApiError::unsupported_media_type(
            "Send the users as application/json or text/csv.",
        )),
    }
}

/// `PUT /api/v1/admin/users`: replaces the directory (audited, published).
pub async fn import(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ListBody>, ApiError> {
    let rows = rows_of(&headers, &body)?;
    let by = by_admin(&p, source);
    let directory = state
        .settings()
        .import_users(&p.org_id, &rows, &by, state.clock.now())
        .await?;
    Ok(Json(list_body(directory)))
}

fn list_body(d: UserDirectory) -> ListBody {
    ListBody {
        users: d.users.into_values().collect(),
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

/// What a revocation removed.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub user: String,
    /// Passkeys removed.
    pub removed: usize,
    /// Sessions the service had opened for the user (by a code or a passkey), ended.
    pub sessions_ended: usize,
}

/// `DELETE /api/v1/admin/users/{address}/passkeys`: every passkey of the user, and the sessions
/// the service opened for them (audited). Without passkeys (no portal domain), nothing.
pub async fn revoke_passkeys(
    State(state): State<AppState>,
    Admin(p): Admin,
    ClientAddr(source): ClientAddr,
    Path(address): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let user = address.trim().to_ascii_lowercase();
    let Some(w) = state.webauthn() else {
        return Ok(Json(Revoked {
            user,
            removed: 0,
            sessions_ended: 0,
        }));
    };
    let (removed, sessions_ended) = state
        .passkeys(&w)
        .revoke_all(&p.org_id, &user, &by_admin(&p, source), state.clock.now())
        .await?;
    Ok(Json(Revoked {
        user,
        removed,
        sessions_ended,
    }))
}

#[cfg(test)]
mod tests {
    use super::csv_fields;

    #[test]
    fn csv_fields_take_quotes() {
        assert_eq!(
            csv_fields(r#"bob@a.test, "Smith, Bob" ,+447700900123,"say ""hi""""#),
            ["bob@a.test", "Smith, Bob", "+447700900123", "say \"hi\""]
        );
        assert_eq!(csv_fields("a,,b"), ["a", "", "b"]);
    }
}
