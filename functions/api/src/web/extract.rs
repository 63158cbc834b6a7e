//! Reading requests: query strings, JSON bodies and URL-encoded forms, each refused with a
//! clear 4xx that names the problem (and a log line) rather than axum's bare rejection; and
//! [`Paged`], which turns the errors of page routes into pages.

use crate::web::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::Json;
use std::collections::HashMap;

/// A query string, refused with a clear 400 when it does not parse.
pub struct Qs<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Qs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Qs(v))
            .map_err(|e| {
                ApiError::bad_request(format!("The query string is not valid: {}", e.body_text()))
            })
    }
}

/// A JSON body, refused with a clear 400 when it does not parse.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| {
                ApiError::bad_request(format!("The request body is not valid: {}", e.body_text()))
            })
    }
}

/// The media type of a request (`application/json`, ...), lower-cased, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A JSON body: content type checked, then parsed; every problem is a 4xx naming it.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if media_type(headers) != "application/json" {
        return Err(ApiError::unsupported_media_type(
            "Send the body as application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Malformed body: {e}")))
}

/// The configuration version a write replaces, from `If-Match` (the `ETag` a GET returned,
/// `"7"`; `W/"7"` and a bare `7` are taken too); `None` when absent or `*` (any version). One
/// version only: a list is refused, as is anything that is not a version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            "If-Match must be the ETag of the configuration you read (for example \"7\"): one version.",
        )
    };
    let text = v.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let text = text.strip_prefix("W/").unwrap_or(text);
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    text.parse::<u64>().map(Some).map_err(|_| bad())
}

/// The `ETag` of configuration version `version` (what [`if_match`] reads back).
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The fields of a URL-encoded form (at most 4 KB); a repeated field is refused.
pub fn form_fields(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, ApiError> {
    if media_type(headers) != "application/x-www-form-urlencoded" {
        return Err(ApiError::unsupported_media_type(
            "Actions are sent by the page's forms (application/x-www-form-urlencoded).",
        ));
    }
    if body.len() > 4096 || std::str::from_utf8(body).is_err() {
        return Err(ApiError::bad_request("The form is malformed."));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(ApiError::bad_request(
                "The form is malformed (a field is repeated).",
            ));
        }
    }
    Ok(out)
}

/// Errors of page routes render as pages.
pub trait Paged<T> {
    /// The error, if any, as a page.
    fn paged(self) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> Paged<T> for Result<T, E> {
    fn paged(self) -> Result<T, ApiError> {
        self.map_err(|e| e.into().page())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn if_match_reads_the_etag_it_was_given() {
        assert_eq!(if_match(&HeaderMap::new()), Ok(None));
        assert_eq!(if_match(&with(&etag(7))), Ok(Some(7)));
        assert_eq!(if_match(&with("W/\"7\"")), Ok(Some(7)));
        assert_eq!(if_match(&with("12")), Ok(Some(12)));
        assert_eq!(if_match(&with("*")), Ok(None));
        for bad in ["\"7\", \"8\"", "\"v7\"", "", "\"-1\"", "\"7"] {
            assert_eq!(
                if_match(&with(bad)).map_err(|e| e.status.as_u16()),
                Err(400),
                "{bad:?}"
            );
        }
    }
}
