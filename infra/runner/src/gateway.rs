//! The HTTP API served the way AWS serves it: API Gateway (HTTP API, payload format 2.0) in
//! front of the `api` Lambda function. Each request becomes the JSON event API Gateway would
//! send, goes through `lambda_http`'s own conversion (the adapter `lambda_http::run` uses) to
//! the same router, and the function's JSON answer is turned back into HTTP, with the limits of
//! both services enforced on the way, so that what would fail in AWS fails here with the same
//! status:
//!
//! | limit | AWS | answered |
//! |---|---|---|
//! | request payload above 10 MB | API Gateway HTTP API quota "Payload size 10 MB" | 413 |
//! | invocation event above 6 MB (binary bodies base64'd) | Lambda rejects the Invoke (`RequestTooLargeException`); "If the Lambda API rejects the invocation request, API Gateway returns a 500" | 500 |
//! | function answer above 6 MB | Lambda fails the invocation; "if the function ... returns an error ... API Gateway returns a 502" | 502 |
//! | no answer within 30 s | HTTP API "Maximum integration timeout 30 seconds" | 503 |
//!
//! Sources: docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html,
//! docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html (both bodies are
//! `{"message":"Internal Server Error"}`-style JSON, as API Gateway's).

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use std::net::SocketAddr;
use std::time::Duration;

/// API Gateway HTTP API's payload quota.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Lambda's synchronous invocation quota, for the event and for the answer (6 MB).
pub const MAX_INVOKE_BYTES: usize = 6 * 1024 * 1024;
/// The HTTP API's integration timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// `app` behind the API Gateway and Lambda conversion and limits; serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the source address of the event).
pub fn aws_shaped(app: Router) -> Router {
    Router::new().fallback(move |req: Request| {
        let app = app.clone();
        async move { invoke(app, req).await }
    })
}

/// API Gateway's own answers: a status and `{"message": ...}`.
fn gateway_error(status: StatusCode, message: &str, why: &str) -> Response {
    tracing::warn!(%status, reason = why, "API Gateway (local) refused the request");
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Whether API Gateway passes a body of this type as text (otherwise base64).
fn is_text(content_type: Option<&str>) -> bool {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// The payload 2.0 event of a request, as API Gateway builds it.
fn event(req: &axum::http::request::Parts, body: &[u8], source: &str) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        // Repeated headers are joined with commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let raw_query = req.uri.query().unwrap_or("").to_string();
    let mut query = Map::new();
    for (k, v) in url_pairs(&raw_query) {
        match query.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let content_type = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let text = is_text(content_type) && std::str::from_utf8(body).is_ok();
    let now = chrono::Utc::now();
    let request_id = format!("local-{:016x}", rand::random::<u64>());
    let host = req
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": req.method.as_str(),
                "path": req.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source,
                "userAgent": req.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": !text,
    });
    if !cookies.is_empty() {
        e["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        e["queryStringParameters"] = Value::Object(query);
    }
    if !body.is_empty() {
        e["body"] = if text {
            Value::String(String::from_utf8_lossy(body).into_owned())
        } else {
            Value::String(base64::engine::general_purpose::STANDARD.encode(body))
        };
    }
    e
}

/// `a=1&b=x%20y` as decoded pairs (API Gateway decodes query parameters).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request through API Gateway and Lambda.
async fn invoke(app: Router, req: Request) -> Response {
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let (parts, body) = req.into_parts();
    // API Gateway reads at most its quota: a bigger body is refused before the function runs.
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return gateway_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
                "request payload above API Gateway's 10 MB",
            )
        }
    };
    let event = serde_json::to_vec(&event(&parts, &body, &source)).unwrap_or_default();
    if event.len() > MAX_INVOKE_BYTES {
        return gateway_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "invocation event above Lambda's 6 MB (RequestTooLargeException)",
        );
    }
    let answer = tokio::time::timeout(INTEGRATION_TIMEOUT, run_function(app, &event)).await;
    let answer = match answer {
        Err(_) => {
            return gateway_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                "no answer within the integration timeout (30 s)",
            )
        }
        Ok(Err(why)) => {
            return gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error", &why)
        }
        Ok(Ok(a)) => a,
    };
    if answer.len() > MAX_INVOKE_BYTES {
        return gateway_error(
            StatusCode::BAD_GATEWAY,
            "Internal Server Error",
            "function answer above Lambda's 6 MB",
        );
    }
    match http_response(&answer) {
        Ok(r) => r,
        Err(why) => gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error", &why),
    }
}

/// The function: the event's JSON through `lambda_http`'s adapter to the router; its answer as
/// the JSON Lambda returns.
async fn run_function(app: Router, event: &[u8]) -> Result<Vec<u8>, String> {
    use lambda_http::tower::ServiceExt;
    let request: lambda_http::request::LambdaRequest =
        serde_json::from_slice(event).map_err(|e| format!("event not understood: {e}"))?;
    // The router's answer with its body collected into `lambda_http`'s own body type, as the
    // adapter holds it across awaits (axum's body is not `Sync`).
    let function = lambda_http::service_fn(move |req: lambda_http::Request| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.map_err(|e| e.to_string())?;
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|e| format!("reading the answer: {e}"))?;
            Ok::<_, String>(Response::from_parts(
                parts,
                lambda_http::Body::Binary(bytes.to_vec()),
            ))
        }
    });
    let adapter = lambda_http::Adapter::from(function);
    let answer = adapter
        .oneshot(lambda_http::LambdaEvent::new(
            request,
            lambda_http::Context::default(),
        ))
        .await
        .map_err(|e| format!("function error: {e:?}"))?;
    serde_json::to_vec(&answer).map_err(|e| format!("answer not serialisable: {e}"))
}

/// The function's JSON answer as API Gateway turns it into HTTP.
fn http_response(answer: &[u8]) -> Result<Response, String> {
    let a: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse =
        serde_json::from_slice(answer).map_err(|e| format!("malformed answer: {e}"))?;
    let body = match a.body {
        None => Vec::new(),
        Some(b) if a.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(b.as_ref())
            .map_err(|e| format!("answer's base64 body: {e}"))?,
        Some(b) => b.as_ref().to_vec(),
    };
    let status = u16::try_from(a.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("answer's status {}", a.status_code))?;
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    for (k, v) in a.headers.iter().chain(a.multi_value_headers.iter()) {
        r.headers_mut().append(k, v.clone());
    }
    for c in a.cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append("set-cookie", v);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_binary_types_are_base64() {
        assert_eq!(
            url_pairs("a=1&b=x%20y+z&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert!(is_text(Some("application/json")));
        assert!(is_text(Some("application/x-www-form-urlencoded")));
        assert!(!is_text(Some("multipart/form-data; boundary=x")));
        assert!(!is_text(Some("application/octet-stream")));
    }
}
