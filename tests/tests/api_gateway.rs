//! The HTTP API as AWS invokes it: API Gateway HTTP API payload 2.0 events (fixtures under
//! `tests/fixtures/`, in the shape of AWS's documentation) converted by `lambda_http` exactly as
//! the `api` function's `lambda_http::run` does, then handed to the same router the local runner
//! serves. Against DynamoDB Local and moto.

use integration_tests::api::ApiRig;
use integration_tests::portal_support::{org_with_link, partition};
use integration_tests::t;
use shared::ports::store::ContinuityViews;
use tower::ServiceExt;

const GET_LINK: &str = include_str!("../fixtures/apigw-v2-get-link.json");
const POST_ACTIVATE: &str = include_str!("../fixtures/apigw-v2-post-activate.json");
const NOW: &str = "2026-11-23T10:00:00Z";

/// The router's answer to one API Gateway event: (status, body).
async fn invoke(rig: &ApiRig, event: &str) -> (u16, String) {
    let req = lambda_http::request::from_str(event).expect("an API Gateway v2 event");
    let resp = api::router(rig.state.clone())
        .oneshot(req)
        .await
        .expect("the router answers");
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 10 * 1024 * 1024)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_tampered_link_in_an_api_gateway_event_gets_the_readable_refusal_and_changes_nothing() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let before = partition(&rig, "acme").await;
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let (status, body) = invoke(&rig, &GET_LINK.replace("{{TOKEN}}", &tampered)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("This link cannot be used"), "{body}");
    assert!(body.contains("Nothing was changed"), "{body}");
    assert_eq!(partition(&rig, "acme").await, before);
    // The same event with the genuine link shows the status page.
    let (status, body) = invoke(&rig, &GET_LINK.replace("{{TOKEN}}", &token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Inactive"), "{body}");
}

#[tokio::test]
async fn a_base64_json_body_is_decoded_and_the_audit_records_the_event_source_address() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let admin = rig.token("admin@acme.test", true);
    let (status, body) = invoke(&rig, &POST_ACTIVATE.replace("{{TOKEN}}", &admin)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["outcome"], "applied", "{v}");
    assert_eq!(v["status"]["active"], true, "{v}");
    let records = rig
        .store()
        .audit(
            "acme",
            t(NOW) - chrono::Duration::hours(1),
            t(NOW) + chrono::Duration::hours(1),
            10,
        )
        .await
        .expect("audit");
    assert_eq!(records.len(), 1, "{records:?}");
    // The caller's address comes from the event's request context, as in AWS.
    assert_eq!(records[0].source, "192.0.2.44");
    assert_eq!(records[0].request_id, "apigw-fixture-0001");
    // Invoked again (Lambda's at-least-once delivery): the same idempotency key changes nothing.
    let again = partition(&rig, "acme").await;
    let (status, body) = invoke(&rig, &POST_ACTIVATE.replace("{{TOKEN}}", &admin)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"repeated\""), "{body}");
    assert_eq!(partition(&rig, "acme").await, again);
}

#[tokio::test]
async fn the_same_event_without_a_token_is_refused_with_401_and_a_json_reason() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let before = partition(&rig, "acme").await;
    let event = POST_ACTIVATE.replace("\"authorization\": \"Bearer {{TOKEN}}\",", "");
    let (status, body) = invoke(&rig, &event).await;
    assert_eq!(status, 401, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert_eq!(partition(&rig, "acme").await, before);
}

/// The API Gateway answer (payload 2.0) the function returns for `event`, as `lambda_http::run`
/// builds it: the request converted, the router called, the response converted and serialised.
async fn lambda_answer(rig: &ApiRig, event: &str) -> serde_json::Value {
    use lambda_http::tower::Service;
    let payload: lambda_http::request::LambdaRequest =
        serde_json::from_str(event).expect("an API Gateway v2 event");
    let mut adapter = lambda_http::Adapter::from(api::router(rig.state.clone()));
    let answer = adapter
        .call(lambda_http::LambdaEvent::new(
            payload,
            lambda_http::Context::default(),
        ))
        .await
        .expect("the function answers");
    serde_json::to_value(&answer).expect("serialisable")
}

#[tokio::test]
async fn a_page_for_a_client_that_accepts_gzip_leaves_the_function_base64_encoded_and_gzipped() {
    use base64::Engine;
    use std::io::Read;
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let event = GET_LINK.replace("{{TOKEN}}", &token);
    let gzip_event = event.replace(
        "\"accept\": \"text/html,application/xhtml+xml\",",
        "\"accept\": \"text/html,application/xhtml+xml\",\n    \"accept-encoding\": \"gzip, deflate, br\",",
    );
    assert_ne!(gzip_event, event);

    // Without Accept-Encoding: text, as before.
    let plain = lambda_answer(&rig, &event).await;
    assert_eq!(plain["statusCode"], 200, "{plain}");
    assert_eq!(plain["isBase64Encoded"], false);
    assert!(
        plain["headers"].get("content-encoding").is_none(),
        "{plain}"
    );
    let text = plain["body"].as_str().expect("a text body");
    assert!(text.contains("Inactive"), "{text}");

    // With it: a binary body (base64, as API Gateway requires) that is the same page gzipped.
    let z = lambda_answer(&rig, &gzip_event).await;
    assert_eq!(z["statusCode"], 200);
    assert_eq!(z["isBase64Encoded"], true, "{z}");
    assert_eq!(z["headers"]["content-encoding"], "gzip");
    assert_eq!(z["headers"]["vary"], "accept-encoding");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(z["body"].as_str().expect("a base64 body"))
        .expect("base64");
    let mut page = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut page)
        .expect("gzip");
    // The same page but for each form's fresh request id.
    assert_eq!(without_request_ids(&page), without_request_ids(text));
    assert!(page.contains("Inactive"));
    assert!(
        bytes.len() * 2 < text.len(),
        "{} -> {}",
        text.len(),
        bytes.len()
    );
}

/// `html` with the value of every `request_id` field left out (each render draws new ones).
fn without_request_ids(html: &str) -> String {
    let mark = "name=\"request_id\" value=\"";
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find(mark) {
        out.push_str(&rest[..i + mark.len()]);
        rest = &rest[i + mark.len()..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}
