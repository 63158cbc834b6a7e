//! Response compression (issue 17): pages, scripts, JSON and the other text the API answers are
//! gzipped when the client says it accepts gzip. API Gateway HTTP APIs do not compress (only REST
//! APIs have a compression setting), so the function does it; `lambda_http` sends a body with a
//! `Content-Encoding` base64-encoded (`isBase64Encoded: true`), as API Gateway requires of
//! binary bodies (`tests/tests/api_gateway.rs` checks it on the function's own path).
//!
//! Only bodies whose whole length is known (every body the handlers build) and between
//! [`MIN_BYTES`] and [`MAX_BYTES`] are compressed; streams, already-encoded bodies and binary types
//! (images, attachments other than text) pass through as they are.

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;

/// Below this, gzip's own header and checksum (18 bytes) and the CPU cost outweigh the saving.
pub const MIN_BYTES: u64 = 1024;
/// Above this the body is sent as it is: it would be buffered twice in memory (the function's
/// answers are all under API Gateway's 10 MB response limit anyway).
pub const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Whether an `Accept-Encoding` header accepts gzip: `gzip` (or `x-gzip`, or `*`) listed without
/// `q=0`; an explicit `gzip;q=0` refuses it even when `*` is listed.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            match coding.as_str() {
                "gzip" | "x-gzip" => return !refused,
                "*" => star = !refused,
                _ => {}
            }
        }
    }
    star
}

/// Whether a content type is text that gzip shrinks (HTML, CSS, scripts, JSON, SVG, the web app
/// manifest, mail's own text); images and archives are compressed already.
pub fn compressible(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.starts_with("text/")
        || t.ends_with("+json")
        || t.ends_with("+xml")
        || matches!(
            t.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/yaml"
                | "message/rfc822"
        )
}

/// gzip of `bytes` (the default level: on pages of a few to a few hundred kB it takes well under
/// a millisecond per 10 kB).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::default());
    e.write_all(bytes)?;
    e.finish()
}

/// The middleware: gzips the response when the request accepts it and the body qualifies.
/// Every compressible answer carries `Vary: Accept-Encoding`, compressed or not, so that a shared
/// cache never hands a gzipped body to a client that did not ask for one.
pub async fn compress(req: Request<Body>, next: Next) -> Response {
    let gzip_ok = accepts_gzip(req.headers());
    let resp = next.run(req).await;
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !compressible(content_type)
        || resp.headers().contains_key(header::CONTENT_ENCODING)
        || matches!(
            resp.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let size = body.size_hint().exact();
    if !gzip_ok || !size.is_some_and(|n| (MIN_BYTES..=MAX_BYTES).contains(&n)) {
        return Response::from_parts(parts, body);
    }
    // The length is known and bounded: reading it whole cannot exceed MAX_BYTES.
    let bytes = match axum::body::to_bytes(body, MAX_BYTES as usize).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "reading a response body to compress it");
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::empty());
        }
    };
    match gzip(&bytes) {
        Ok(z) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Response::from_parts(parts, Body::from(z))
        }
        // Writing to memory does not fail; if it ever did, the plain body is still right.
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_encoding_is_read_as_clients_send_it() {
        assert!(accepts_gzip(&with("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&with("br;q=1.0, gzip;q=0.8, *;q=0.1")));
        assert!(accepts_gzip(&with("*")));
        assert!(accepts_gzip(&with("X-GZIP")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("*, gzip;q=0.0")));
        assert!(!accepts_gzip(&with("br, identity")));
        assert!(!accepts_gzip(&with("")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn only_text_is_compressed() {
        for t in [
            "text/html; charset=utf-8",
            "text/javascript",
            "application/json",
            "application/manifest+json",
            "image/svg+xml",
            "message/rfc822",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in ["image/png", "application/pdf", "application/zip", ""] {
            assert!(!compressible(t), "{t}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let page = "<p>Hello</p>".repeat(500);
        let z = gzip(page.as_bytes()).unwrap();
        assert!(z.len() < page.len() / 10);
        let mut back = String::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, page);
    }
}
