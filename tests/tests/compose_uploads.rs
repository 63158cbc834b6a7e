//! Big attachments for compose (issue 13), through the HTTP API as AWS serves it (the runner's
//! API Gateway and Lambda shape) against DynamoDB Local and moto (S3, SES v2): a file is
//! uploaded through a presigned PUT to the user's staging prefix, then named by id in a send;
//! 12 MB (above SES v1's 10 MB) arrives byte for byte. The web form without JavaScript posts
//! small files itself (multipart, at most 4 MiB). The refusals change nothing and send nothing:
//! a declared size above the cap, another user's upload, an unknown id, an object never
//! uploaded, an object bigger than its signed length (moto does not hold the signature), too
//! many uploads, too much staged, a form above its cap.

use integration_tests::inbox_support::{addr, gateway, sent_with, Gateway, InboxRig, ORG};
use integration_tests::portal_support::partition;
use integration_tests::*;
use serde_json::{json, Value};

const T0: &str = "2026-11-23T10:00:00Z";

/// `n` bytes that are not text (every byte value, no long runs): base64 in the sent message.
fn binary(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn http() -> reqwest::Client {
    integration_tests::api::ApiRig::http()
}

/// POSTs JSON `body` to `path` as `token`: status and JSON answer.
async fn post(g: &Gateway, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = http()
        .post(format!("{}{path}", g.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Asks for an upload of `data` as `name` and PUTs it (the offered URL and headers, no
/// credential); the offer.
async fn upload(g: &Gateway, token: &str, mailbox: &str, name: &str, data: &[u8]) -> Value {
    let (st, offer) = post(
        g,
        token,
        &format!("/api/v1/mailboxes/{mailbox}/uploads"),
        &json!({"name": name, "content_type": "application/octet-stream", "size": data.len()}),
    )
    .await;
    assert_eq!(st, 201, "{offer}");
    put(&offer, data.to_vec()).await;
    offer
}

/// The PUT an offer describes, with `data`.
async fn put(offer: &Value, data: Vec<u8>) {
    let mut req = reqwest::Client::new().put(offer["upload"]["url"].as_str().expect("url"));
    for (k, v) in offer["upload"]["headers"].as_object().expect("headers") {
        if k.eq_ignore_ascii_case("content-length") {
            continue; // reqwest sets it from the body
        }
        req = req.header(k, v.as_str().expect("header"));
    }
    let r = req.body(data).send().await.expect("PUT");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// The attachments of a raw message, decoded: (name, bytes).
fn attachments(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a message");
    m.attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap_or_default().to_string(),
                a.contents().to_vec(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_12_mb_file_uploaded_then_sent_arrives_byte_exact_and_a_retry_sends_once() {
    let rig = InboxRig::start(t(T0)).await;
    let g = gateway(&rig).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let data = binary(12_000_000, 7);
    let offer = upload(&g, &tok, &bob, "Prüfbericht 2026.bin", &data).await;
    let id = offer["id"].as_str().expect("id").to_string();
    // The link is bound to the service's key under Bob's staging prefix, for ten minutes, with
    // the length, the type and the name signed (S3 refuses any other value).
    let u = url::Url::parse(offer["upload"]["url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    let key = shared::domain::uploads::staging_key(ORG, &format!("sub-{bob}"), &id);
    let bucket = &rig.api.state.settings.mail_bucket;
    assert_eq!(u.path(), format!("/{bucket}/{key}"));
    assert_eq!(q["X-Amz-Expires"], "600");
    let signed = &q["X-Amz-SignedHeaders"];
    for h in ["content-length", "content-type", "x-amz-meta-filename"] {
        assert!(signed.split(';').any(|s| s == h), "{signed}");
    }
    assert_eq!(offer["upload"]["headers"]["content-length"], "12000000");
    let token = unique("upl").replace('-', "");
    let send = json!({
        "idempotency_key": "upl-1", "to": ["zed@example.org"], "subject": token,
        "text": "The figures.", "uploads": [id]
    });
    let path = format!("/api/v1/mailboxes/{bob}/send");
    let (st, sent) = post(&g, &tok, &path, &send).await;
    assert_eq!(st, 201, "{sent}");
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1);
    let raw = out[0].2.as_bytes();
    assert!(raw.len() > 16_000_000, "base64'd: {}", raw.len());
    let atts = attachments(raw);
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].0, "Prüfbericht 2026.bin");
    assert!(atts[0].1 == data, "byte-exact");
    // Retried with the same key (the upload is still staged): the first send's answer.
    let (st, again) = post(&g, &tok, &path, &send).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["repeated"], true);
    assert_eq!(again["id"], sent["id"]);
    assert_eq!(sent_with(&token).await.len(), 1, "sent once");
}

#[tokio::test]
async fn uploads_that_are_not_the_callers_or_not_there_or_too_big_send_nothing() {
    let rig = InboxRig::start_with(t(T0), |s| {
        s.settings.uploads.file_bytes = 1024 * 1024;
        s.settings.uploads.staged_bytes = 3 * 1024 * 1024;
        s.settings.uploads.per_hour = 4;
    })
    .await;
    let g = gateway(&rig).await;
    let (bob, eve) = (addr("bob"), addr("eve"));
    let (tok, eve_tok) = (rig.token("bob", false), rig.token("eve", false));
    let uploads = format!("/api/v1/mailboxes/{bob}/uploads");
    let token = unique("nope").replace('-', "");
    let before = partition(&rig.api, ORG).await;

    // Asking: a declared size above the cap, nothing, a bad type, a bad name, another's mailbox.
    for (what, want, mailbox, body) in [
        (
            "above the cap",
            413,
            &bob,
            json!({"name": "a.bin", "size": 1024 * 1024 + 1}),
        ),
        ("empty", 422, &bob, json!({"name": "a.bin", "size": 0})),
        (
            "bad type",
            422,
            &bob,
            json!({"name": "a.bin", "size": 10, "content_type": "text/plain\r\nX: y"}),
        ),
        ("bad name", 422, &bob, json!({"name": "a\nb", "size": 10})),
        (
            "eve's mailbox",
            404,
            &eve,
            json!({"name": "a.bin", "size": 10}),
        ),
    ] {
        let (st, v) = post(
            &g,
            &tok,
            &format!("/api/v1/mailboxes/{mailbox}/uploads"),
            &body,
        )
        .await;
        assert_eq!(st, want, "{what}: {v}");
        assert!(
            !v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what}"
        );
        assert!(!v.to_string().contains("X-Amz"), "{what}: no link");
    }

    // Eve's upload, named by Bob; an unknown id; a path; an id never uploaded (or expired).
    let eves = upload(&g, &eve_tok, &eve, "eve.bin", &binary(1000, 3)).await;
    let (st, never) = post(&g, &tok, &uploads, &json!({"name": "n.bin", "size": 10})).await;
    assert_eq!(st, 201, "{never}");
    let send = format!("/api/v1/mailboxes/{bob}/send");
    for (what, id) in [
        ("eve's upload", eves["id"].as_str().unwrap()),
        ("unknown", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("a path", "../../inbound/x"),
        ("never uploaded", never["id"].as_str().unwrap()),
    ] {
        let body = json!({"idempotency_key": format!("k-{}", what.replace(' ', "-").replace('\'', "")), "to": ["zed@example.org"], "subject": token, "text": "x", "uploads": [id]});
        let (st, v) = post(&g, &tok, &send, &body).await;
        assert_eq!(st, 422, "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("was not found"), "{what}: {v}");
    }

    // More bytes than signed: S3 refuses such a PUT (SignatureDoesNotMatch); moto stores it, and
    // the send's HEAD refuses it (413).
    let (st, short) = post(&g, &tok, &uploads, &json!({"name": "s.bin", "size": 1000})).await;
    assert_eq!(st, 201);
    put(&short, binary(1024 * 1024 + 10, 5)).await;
    let body = json!({"idempotency_key": "k-over", "to": ["zed@example.org"], "subject": token, "text": "x", "uploads": [short["id"]]});
    let (st, v) = post(&g, &tok, &send, &body).await;
    assert_eq!(st, 413, "{v}");
    assert!(sent_with(&token).await.is_empty(), "nothing sent");
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing stored");

    // Staged in the last day: 1 MiB + 10 bytes above; two more MiB would pass the 3 MiB.
    let one = upload(&g, &tok, &bob, "one.bin", &binary(1024 * 1024, 9)).await;
    assert!(one["id"].is_string());
    let (st, v) = post(
        &g,
        &tok,
        &uploads,
        &json!({"name": "b.bin", "size": 1024 * 1024}),
    )
    .await;
    assert_eq!(st, 413, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("last day"),
        "{v}"
    );
    // Per hour: 4 asked (counted even when refused for the bytes staged); the fifth is 429.
    let (st, v) = post(&g, &tok, &uploads, &json!({"name": "c.bin", "size": 10})).await;
    assert_eq!(st, 429, "{v}");
    // Eve's allowance is her own.
    let (st, _) = post(
        &g,
        &eve_tok,
        &format!("/api/v1/mailboxes/{eve}/uploads"),
        &json!({"name": "e.bin", "size": 10}),
    )
    .await;
    assert_eq!(st, 201);
}

/// A `multipart/form-data` body as a browser posts the compose form: `fields`, then `files`.
fn form(boundary: &str, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, data) in files {
        b.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

/// The compose form's fields: a new message to zed with `subject`, sent with `key`.
fn fields<'a>(key: &'a str, subject: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("idempotency_key", key),
        ("mode", "new"),
        ("to", "zed@example.org"),
        ("subject", subject),
        ("text", "See attached."),
    ]
}

#[tokio::test]
async fn the_form_without_javascript_sends_a_small_file_and_refuses_one_above_4_mb() {
    let rig = InboxRig::start(t(T0)).await;
    let g = gateway(&rig).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    // The page says what fits; its CSP lets its script reach the mail bucket, where the
    // links point, and nothing else.
    let r = http()
        .get(format!("{}/inbox/{bob}/compose", g.base))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("GET");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    let offer = upload(&g, &tok, &bob, "x.bin", b"x").await;
    let link = url::Url::parse(offer["upload"]["url"].as_str().unwrap()).unwrap();
    let origin = link.origin().ascii_serialization();
    assert!(
        csp.contains(&format!("connect-src 'self' {origin};")),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(page.contains(&format!("data-uploads=\"/api/v1/mailboxes/{bob}/uploads\"")));
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(page.contains("type=\"file\""));
    assert!(page.contains("up to 4 MB"), "the page says the cap");
    let boundary = "----formboundaryXyZ";
    let post_form = |body: Vec<u8>| {
        http()
            .post(format!("{}/inbox/{bob}/compose", g.base))
            .bearer_auth(&tok)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    let token = unique("form").replace('-', "");
    let small = binary(300_000, 11);
    let r = post_form(form(
        boundary,
        &fields("form-1", &token),
        &[("small.bin", &small)],
    ))
    .await
    .expect("POST");
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1);
    let atts = attachments(out[0].2.as_bytes());
    assert_eq!(atts, vec![("small.bin".to_string(), small)]);

    // Above 4 MiB (still inside the 6 MB event once base64'd): a readable 413 page.
    let over_token = unique("formover").replace('-', "");
    let before = partition(&rig.api, ORG).await;
    let big = binary(4 * 1024 * 1024 + 1, 13);
    let r = post_form(form(
        boundary,
        &fields("form-2", &over_token),
        &[("big.bin", &big)],
    ))
    .await
    .expect("POST");
    assert_eq!(r.status(), 413);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("4 MB") && text.contains("Nothing was sent"),
        "{text}"
    );
    assert!(sent_with(&over_token).await.is_empty());
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing stored");
}
