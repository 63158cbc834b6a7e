//! A message's read state and flag (issue 17): the list's and the message page's buttons (a
//! form per message, without JavaScript) and the JSON API's `PATCH`. Both authorise the mailbox
//! first (own or delegated, else 404) and go through [`shared::app::mailbox::Mailboxes::set_state`]:
//! one conditional UpdateItem; an unknown message answers 404 and writes nothing; a repeat
//! changes nothing more. Cross-site posts are refused by the caller's extractor (the session
//! cookie is `SameSite=Strict` and unsafe methods must come from the service's own pages).

use super::message::MessageJson;
use crate::web::auth::{PageUser, Principal};
use crate::web::error::ApiError;
use crate::web::extract::{Body, Paged};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use shared::domain::mailbox::{decode_cursor, Folder, StateChange};

/// `PATCH /api/v1/mailboxes/{mailbox}/messages/{id}`: `{"read": true, "flagged": false}` (either
/// or both); the message as it now is.
pub async fn patch(
    State(state): State<AppState>,
    p: Principal,
    Path((mailbox, id)): Path<(String, String)>,
    Body(change): Body<StateChange>,
) -> Result<Json<MessageJson>, ApiError> {
    if change.is_empty() {
        return Err(ApiError::bad_request(
            "Send 'read' and/or 'flagged' (true or false).",
        ));
    }
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await?;
    let l = inbox
        .set_state(&p.org_id, &mailbox, &id, change, state.clock.now())
        .await?;
    Ok(Json(MessageJson::from(&l)))
}

/// A button of the list or the message page: `read` or `flagged` (`1` or `0`), and where to go
/// back to (the list's folder, cursor and view, or the message).
#[derive(Debug, Deserialize)]
pub struct StateForm {
    #[serde(default)]
    read: Option<String>,
    #[serde(default)]
    flagged: Option<String>,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    view: Option<String>,
    /// `message`: back to the message; anything else: back to the list.
    #[serde(default)]
    back: Option<String>,
}

fn flag(v: Option<&str>) -> Result<Option<bool>, ApiError> {
    match v {
        None => Ok(None),
        Some("1") | Some("true") => Ok(Some(true)),
        Some("0") | Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request("Use 1 or 0.").page()),
    }
}

/// `POST /inbox/{mailbox}/messages/{id}/state`: changes the state, then back (303) to the page
/// it was pressed on. The way back is rebuilt from checked parts (a folder name, a cursor of
/// that folder, the threads view), never a URL from the form.
pub async fn post_form(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path((mailbox, id)): Path<(String, String)>,
    form: Result<Form<StateForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await.paged()?;
    let Form(f) =
        form.map_err(|e| ApiError::bad_request(format!("The form could not be read: {e}")).page())?;
    let change = StateChange {
        read: flag(f.read.as_deref())?,
        flagged: flag(f.flagged.as_deref())?,
    };
    if change.is_empty() {
        return Err(ApiError::bad_request("Nothing to change.").page());
    }
    let l = inbox
        .set_state(&p.org_id, &mailbox, &id, change, state.clock.now())
        .await
        .paged()?;
    // The mailbox is an address (it may hold characters a header cannot): percent-encoded.
    let segment: String = url::form_urlencoded::byte_serialize(mailbox.as_bytes()).collect();
    if f.back.as_deref() == Some("message") {
        return see_other(&format!("/inbox/{segment}/messages/{}", l.r#ref.encode()));
    }
    let folder = f
        .folder
        .as_deref()
        .and_then(Folder::from_name)
        .unwrap_or(l.r#ref.folder);
    let mut to = format!("/inbox/{segment}?folder={}", folder.name());
    if let Some(c) = f
        .cursor
        .as_deref()
        .filter(|c| decode_cursor(c, folder).is_some())
    {
        to.push_str(&format!("&cursor={c}"));
    }
    if f.view.as_deref() == Some("threads") {
        to.push_str("&view=threads");
    }
    see_other(&to)
}

/// A 303 to a path of this service (built from checked parts: always a valid header).
fn see_other(to: &str) -> Result<Response, ApiError> {
    let v = HeaderValue::from_str(to)
        .map_err(|e| ApiError::internal("the way back after a state change", e).page())?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response())
}
