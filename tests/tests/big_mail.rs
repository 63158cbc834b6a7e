//! Big mail end to end (issue 13), through the HTTP API as AWS serves it: the local runner's API
//! Gateway and Lambda conversion (`local_runner::gateway`, with their 10 MB, 6 MB and 30 s
//! limits) in front of the same router, against DynamoDB Local, moto (S3, SES v2) and a real
//! SMTP server. A 35 MB message goes in through the inbound path, is listed, downloaded (.eml and
//! its 30 MB attachment) by following the API's redirect to a presigned link into moto's S3,
//! forwarded through SES v2 raw and delivered to the organisation's server, byte for byte.
//! The refusals: an answer Lambda could not return, a message above SES's 40 MB, requests above
//! API Gateway's and Lambda's limits, and another user asking for Bob's downloads.
//!
//! The big bodies are built once per test binary and shared.

use integration_tests::inbox_support::{addr, gateway, Gateway, InboxRig, ORG};
use integration_tests::portal_support::partition;
use integration_tests::*;
use serde_json::json;
use std::sync::OnceLock;

const T0: &str = "2026-11-23T10:00:00Z";
/// The attachment: 30 MB of CSV (7bit in the received message and, plain ASCII lines, when
/// forwarded too).
const ATTACHMENT_BYTES: usize = 30_000_000;
/// The text body that brings the message to about 35 MB.
const TEXT_BYTES: usize = 5_000_000;

/// `n` bytes of 100-byte CRLF lines (`prefix`, a row number, filler).
fn lines(prefix: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut row = 0u64;
    while out.len() < n {
        let line = format!("{prefix},{row:010},");
        out.extend_from_slice(line.as_bytes());
        out.resize(out.len() + (98 - line.len()), b'x');
        out.extend_from_slice(b"\r\n");
        row += 1;
    }
    out.truncate(n - n % 100);
    out
}

/// The 30 MB attachment, built once.
fn big_attachment() -> &'static [u8] {
    static A: OnceLock<Vec<u8>> = OnceLock::new();
    A.get_or_init(|| lines("figures", ATTACHMENT_BYTES))
}

/// A message from alice to `to` with `subject`, a text body of `text` bytes and `attachment`
/// as `figures.csv` (7bit: plain ASCII lines, as a mail client sends a CSV).
fn message_with(to: &str, subject: &str, text: usize, attachment: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\nDate: Mon, 23 Nov 2026 09:59:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(&lines("text", text));
    m.extend_from_slice(
        b"\r\n--b1\r\nContent-Type: text/csv; name=\"figures.csv\"\r\n\
          Content-Disposition: attachment; filename=\"figures.csv\"\r\n\
          Content-Transfer-Encoding: 7bit\r\n\r\n",
    );
    m.extend_from_slice(attachment);
    m.extend_from_slice(b"\r\n--b1--\r\n");
    m
}

/// The mail bucket's adapter on a client whose time limits fit 35 MB writes to moto while the
/// whole suite loads it (the service's 15 s a try and 28 s a call are for AWS's S3; SES, not
/// the service, writes received mail there).
fn patient_raw(sdk: &aws_config::SdkConfig, bucket: &str) -> shared::adapters::s3::S3RawMessages {
    let long = std::time::Duration::from_secs(180);
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .operation_attempt_timeout(long)
                .operation_timeout(long)
                .build(),
        )
        .build();
    shared::adapters::s3::S3RawMessages::new(aws_sdk_s3::Client::from_conf(conf), bucket)
}

/// The inbox rig, its bucket through [`patient_raw`], with `adjust` applied.
async fn inbox_rig(adjust: impl FnOnce(&mut ::api::Services)) -> InboxRig {
    let sdk = sdk().await;
    InboxRig::start_with(t(T0), |s| {
        s.raw = std::sync::Arc::new(patient_raw(&sdk, &s.settings.mail_bucket));
        adjust(s);
    })
    .await
}

/// The inbound path on the inbox rig's table and bucket: `raw` received for Bob as SES would
/// hand it over, delivered to `server`.
async fn receive_for_bob(rig: &InboxRig, server: &MailServer, raw: &[u8]) -> MailRig {
    let bucket = rig.api.state.settings.mail_bucket.clone();
    let sdk = sdk().await;
    let mail = MailRig::start_with(rig.now(), rig.api.store().clone(), |d| {
        d.raw = patient_raw(&sdk, &bucket);
    })
    .await;
    let mut c = inbound_org(ORG, 3);
    c.routes = vec![shared::domain::config::Route {
        host: "127.0.0.1".into(),
        port: server.port,
        tls: shared::domain::config::RouteTls::Opportunistic,
    }];
    c.delivery.timeout_secs = 30;
    c.continuity.bcc_to_server = true;
    mail.put_config(&c).await;
    let (_, r) = mail
        .receive("alice@example.org", &[&addr("bob")], raw)
        .await;
    assert_eq!(
        r.organisations[ORG],
        shared::app::inbound::OrgResult::Done {
            delivered: 1,
            bounced: 0
        },
        "{r:?}"
    );
    mail
}

/// GET `path` through the gateway as `token`: (status, headers, body).
async fn get(g: &Gateway, token: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = api_rig_http()
        .get(format!("{}{path}", g.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.expect("body").to_vec())
}

fn api_rig_http() -> reqwest::Client {
    integration_tests::api::ApiRig::http()
}

/// Follows a download's redirect: the presigned link, fetched without any credential.
async fn follow(headers: &reqwest::header::HeaderMap) -> (String, Vec<u8>) {
    let url = headers["location"].to_str().expect("location").to_string();
    let r = reqwest::Client::new()
        .get(&url)
        .send()
        .await
        .expect("S3 GET");
    assert_eq!(r.status(), 200, "{url}");
    (url, r.bytes().await.expect("body").to_vec())
}

/// What a presigned link says of itself: its path and its query parameters.
fn link_parts(url: &str) -> (String, std::collections::HashMap<String, String>) {
    let u = url::Url::parse(url).expect("URL");
    (
        u.path().to_string(),
        u.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

/// The presigned link is bound to `key` in the mail bucket, signed, expires in 5 minutes, and
/// forces a download named `name` as `application/octet-stream`.
fn assert_link(rig: &InboxRig, url: &str, key: &str, name: &str) {
    let (path, q) = link_parts(url);
    let bucket = &rig.api.state.settings.mail_bucket;
    assert_eq!(percent_decoded(&path), format!("/{bucket}/{key}"), "{url}");
    assert_eq!(q["X-Amz-Expires"], "300", "{url}");
    assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert!(q["X-Amz-Signature"].len() == 64, "{url}");
    assert_eq!(q["X-Amz-SignedHeaders"], "host");
    assert_eq!(q["response-content-type"], "application/octet-stream");
    assert_eq!(
        q["response-content-disposition"],
        format!("attachment; filename=\"{name}\"")
    );
}

fn percent_decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_35_mb_message_is_received_listed_downloaded_forwarded_and_delivered_byte_exact() {
    let rig = inbox_rig(|_| {}).await;
    let g = gateway(&rig).await;
    let server = MailServer::start(MailServerOptions {
        max_size: Some(64 * 1024 * 1024),
        ..Default::default()
    })
    .await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("big").replace('-', "");
    let raw = message_with(&bob, &token, TEXT_BYTES, big_attachment());
    assert!(
        (34_000_000..36_000_000).contains(&raw.len()),
        "{}",
        raw.len()
    );
    let mail = receive_for_bob(&rig, &server, &raw).await;
    // Delivered to the organisation's server as received.
    let delivered = server.messages();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].contains(&token));

    // Listed (through API Gateway: a small JSON answer).
    let (st, _, body) = get(&g, &tok, &format!("/api/v1/mailboxes/{bob}/messages")).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let m = &list["messages"][0];
    assert_eq!(m["subject"], token.as_str());
    assert_eq!(m["attachments"], json!(["figures.csv"]));
    let id = m["id"].as_str().expect("id").to_string();

    // The .eml: a redirect to a presigned link of the stored message, byte for byte.
    let (st, h, _) = get(
        &g,
        &tok,
        &format!("/api/v1/mailboxes/{bob}/messages/{id}/raw"),
    )
    .await;
    assert_eq!(st, 303);
    assert_eq!(h["cache-control"], "no-store");
    let (url, eml) = follow(&h).await;
    assert!(eml == raw, "the .eml differs from what was received");
    let raw_key = rig
        .api
        .state
        .inbox()
        .message(ORG, &bob, &id)
        .await
        .expect("listed")
        .raw_key;
    assert_link(&rig, &url, &raw_key, &format!("{id}.eml"));

    // The 30 MB attachment: decoded once into its own object, presigned, byte for byte.
    let path = format!("/api/v1/mailboxes/{bob}/messages/{id}/attachments/0");
    let (st, h, _) = get(&g, &tok, &path).await;
    assert_eq!(st, 303);
    let (url, att) = follow(&h).await;
    assert!(att == big_attachment(), "the attachment differs");
    let part = shared::domain::downloads::part_key(ORG, &bob, &id_of(&id), 0);
    assert_link(&rig, &url, &part, "figures.csv");
    // Asked again: the same object (written once), a fresh link.
    let (st, h2, _) = get(&g, &tok, &path).await;
    assert_eq!(st, 303);
    let (url2, _) = follow(&h2).await;
    assert_eq!(link_parts(&url2).0, link_parts(&url).0);

    // Forwarded through SES v2 (raw, above v1's 10 MB), during continuity: a copy for Bob's
    // mailbox on the organisation's server.
    let now = rig.now();
    rig.api
        .store()
        .set_continuity_state(
            ORG,
            &shared::domain::continuity::ContinuityState {
                event_started_at: Some(now - chrono::Duration::hours(1)),
                event_until: Some(now + chrono::Duration::hours(3)),
                ..Default::default()
            },
        )
        .await
        .expect("continuity");
    let r = api_rig_http()
        .post(format!("{}/api/v1/mailboxes/{bob}/send", g.base))
        .bearer_auth(&tok)
        .json(&json!({
            "idempotency_key": "big-fwd-1", "mode": "forward", "original": id,
            "to": ["zed@example.org"], "subject": format!("Fwd: {token}"), "text": "FYI"
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let sent: serde_json::Value = r.json().await.expect("JSON");
    assert_eq!(sent["copy_queued"], true, "{sent}");
    let out = integration_tests::inbox_support::sent_with(&format!("Fwd: {token}")).await;
    assert_eq!(out.len(), 1, "sent once");
    // moto lists the envelope and the header recipients: zed only.
    assert!(
        out[0].1.iter().all(|r| r.contains("zed@example.org")),
        "{:?}",
        out[0].1
    );
    let ses_raw = out[0].2.as_bytes();
    assert!(ses_raw.len() > ATTACHMENT_BYTES, "{}", ses_raw.len());
    assert_eq!(only_attachment(ses_raw), big_attachment());
    // The queue delivers the copy to the organisation's server.
    let tick = mail.tick_at(now + chrono::Duration::minutes(1)).await;
    assert_eq!(tick.delivered, 1, "{tick:?}");
    let delivered = server.messages();
    assert_eq!(delivered.len(), 2);
    let copy = delivered
        .iter()
        .find(|m| m.contains(&format!("Fwd: {token}")))
        .expect("the forwarded copy");
    assert_eq!(only_attachment(copy.as_bytes()), big_attachment());
}

/// The id of a message (its SES id) from its listing id.
fn id_of(listing_id: &str) -> String {
    shared::domain::mailbox::MessageRef::parse(listing_id)
        .expect("a message id")
        .id
}

/// The one attachment of a raw message, decoded.
fn only_attachment(raw: &[u8]) -> Vec<u8> {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a message");
    let atts: Vec<_> = m.attachments().collect();
    assert_eq!(atts.len(), 1);
    atts[0].contents().to_vec()
}

#[tokio::test]
async fn without_the_redirect_a_7_mb_download_fails_as_in_aws_and_requests_over_the_limits_are_refused(
) {
    // The same API with every attachment answered inline (no presigned link): a 7 MB
    // attachment is a 9.3 MB base64 answer, which Lambda cannot return: API Gateway's 502.
    let rig = inbox_rig(|s| {
        s.settings.downloads.inline_bytes = usize::MAX;
    })
    .await;
    let g = gateway(&rig).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("seven").replace('-', "");
    let seven = lines("seven", 7_000_000);
    let r = rig
        .file(&bob, rig.now(), &message_with(&bob, &token, 1000, &seven))
        .await;
    let path = format!(
        "/api/v1/mailboxes/{bob}/messages/{}/attachments/0",
        r.encode()
    );
    let (st, _, body) = get(&g, &tok, &path).await;
    assert_eq!(st, 502, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("API Gateway's JSON");
    assert_eq!(v["message"], "Internal Server Error");
    // Served directly (no gateway), the router itself answers it: the limit is the gateway's.
    let direct = api_rig_http()
        .get(rig.api.url(&path))
        .bearer_auth(&tok)
        .send()
        .await
        .expect("GET");
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.bytes().await.expect("body").len(), seven.len());

    // With the redirect (the default), the same download works through the gateway.
    let rig2 = inbox_rig(|_| {}).await;
    let g2 = gateway(&rig2).await;
    let tok2 = rig2.token("bob", false);
    let r2 = rig2
        .file(&bob, rig2.now(), &message_with(&bob, &token, 1000, &seven))
        .await;
    let path2 = format!(
        "/api/v1/mailboxes/{bob}/messages/{}/attachments/0",
        r2.encode()
    );
    let (st, h, _) = get(&g2, &tok2, &path2).await;
    assert_eq!(st, 303);
    assert!(follow(&h).await.1 == seven);

    // Requests: above API Gateway's 10 MB, 413; above Lambda's 6 MB event (binary bodies
    // base64'd), 500; neither reaches the function: nothing sent, nothing filed.
    let before = partition(&rig.api, ORG).await;
    let send = format!("{}/api/v1/mailboxes/{bob}/send", g.base);
    for (size, content_type, status) in [
        (11 * 1024 * 1024, "application/json", 413),
        (5 * 1024 * 1024, "application/octet-stream", 500),
    ] {
        let r = api_rig_http()
            .post(&send)
            .bearer_auth(&tok)
            .header("content-type", content_type)
            .body(vec![b' '; size])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status().as_u16(), status, "{size} {content_type}");
    }
    assert_eq!(partition(&rig.api, ORG).await, before);
}

#[tokio::test]
async fn a_forward_above_40_mb_is_refused_with_413_and_nothing_is_sent() {
    let rig = inbox_rig(|_| {}).await;
    let g = gateway(&rig).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("over").replace('-', "");
    // 32 MB of attachment is 42.7 MB once base64'd, which is how the size is counted: above
    // SES v2's 40 MB.
    let mut over = big_attachment().to_vec();
    over.extend_from_slice(&big_attachment()[..2_000_000]);
    let r = rig
        .file(&bob, rig.now(), &message_with(&bob, &token, 1000, &over))
        .await;
    drop(over);
    let before = partition(&rig.api, ORG).await;
    let send = |key: &'static str, keep: bool| {
        api_rig_http()
            .post(format!("{}/api/v1/mailboxes/{bob}/send", g.base))
            .bearer_auth(&tok)
            .json(&json!({
                "idempotency_key": key, "mode": "forward", "original": r.encode(),
                "to": ["zed@example.org"], "subject": format!("Fwd: {token}"), "text": "FYI",
                "keep_attachments": keep
            }))
            .send()
    };
    let resp = send("over-1", true).await.expect("send");
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value = resp.json().await.expect("JSON");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("too large"), "{v}");
    assert!(
        integration_tests::inbox_support::sent_with(&token)
            .await
            .is_empty(),
        "nothing sent"
    );
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing stored");
    // The same key, without the attachment: the refused send left no claim behind.
    let resp = send("over-1", false).await.expect("send");
    assert_eq!(resp.status(), 201);
    assert_eq!(
        integration_tests::inbox_support::sent_with(&token)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn another_user_gets_no_link_to_bobs_message_nor_its_attachment() {
    let rig = inbox_rig(|_| {}).await;
    let g = gateway(&rig).await;
    let (bob, eve) = (addr("bob"), addr("eve"));
    let token = unique("mine").replace('-', "");
    let two_mb = lines("secret", 2_000_000);
    let r = rig
        .file(&bob, rig.now(), &message_with(&bob, &token, 1000, &two_mb))
        .await;
    let id = r.encode();
    let eve_tok = rig.token("eve", false);
    let part = shared::domain::downloads::part_key(ORG, &bob, &r.id, 0);
    for path in [
        format!("/api/v1/mailboxes/{bob}/messages/{id}/raw"),
        format!("/api/v1/mailboxes/{bob}/messages/{id}/attachments/0"),
        format!("/api/v1/mailboxes/{eve}/messages/{id}/raw"),
        format!("/api/v1/mailboxes/{eve}/messages/{id}/attachments/0"),
    ] {
        let (st, h, body) = get(&g, &eve_tok, &path).await;
        assert_eq!(st, 404, "{path}");
        assert!(h.get("location").is_none(), "{path}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            !body.contains("X-Amz") && !body.contains(&token),
            "{path}: {body}"
        );
    }
    // Nothing was decoded for Eve.
    assert!(!rig.api.state.raw.exists(&part).await.expect("HEAD"));
    // Bob gets his.
    let (st, h, _) = get(
        &g,
        &rig.token("bob", false),
        &format!("/api/v1/mailboxes/{bob}/messages/{id}/attachments/0"),
    )
    .await;
    assert_eq!(st, 303);
    assert!(follow(&h).await.1 == two_mb);
    assert!(rig.api.state.raw.exists(&part).await.expect("HEAD"));
}
