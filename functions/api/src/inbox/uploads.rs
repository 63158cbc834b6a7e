//! `POST /api/v1/mailboxes/{mailbox}/uploads` (issue 13): a presigned upload of one attachment
//! for a later send, through [`shared::app::uploads`]. The mailbox is authorised first (own or
//! delegated, else 404); the key is the service's, under the caller's staging prefix.

use crate::web::auth::Principal;
use crate::web::error::ApiError;
use crate::web::extract::Body;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use shared::app::uploads::{UploadOffer, UploadRequest};

/// `{"name": "report.pdf", "content_type": "application/pdf", "size": 12000000}` -> 201 with the
/// upload's id and the PUT to make (URL and headers, all signed).
pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Body(req): Body<UploadRequest>,
) -> Result<(StatusCode, Json<UploadOffer>), ApiError> {
    state.inbox().authorise(&p.user(), &mailbox).await?;
    let offer = state
        .uploads()
        .offer(&p.user(), &req, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(offer)))
}
