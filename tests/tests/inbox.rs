//! The Online Inbox and Online Sent Items (U1-U8) through the HTTP API, against DynamoDB Local,
//! moto's S3 and SES.

use chrono::Duration;
use integration_tests::inbox_support::{addr, plain, sent_with, InboxRig, ORG};
use integration_tests::{mail_fixture, t, unique};
use reqwest::Method;
use serde_json::json;
use shared::domain::mailbox::Folder;
use shared::ports::store::ConfigStore;
use shared::ports::store::MailboxStore;
use std::collections::HashSet;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn the_last_thirty_days_newest_first() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let too_old = rig
        .file(
            &bob,
            now - Duration::days(30) - Duration::seconds(1),
            &plain("a@example.org", &bob, "old", "old@x", "x"),
        )
        .await;
    let edge = rig
        .file(
            &bob,
            now - Duration::days(30) + Duration::seconds(1),
            &plain("a@example.org", &bob, "edge", "edge@x", "x"),
        )
        .await;
    let fresh = rig
        .file(
            &bob,
            now - Duration::minutes(1),
            &plain("a@example.org", &bob, "fresh", "fresh@x", "x"),
        )
        .await;
    let tok = rig.token("bob", false);
    let (st, body) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(ids(&body), vec![fresh.encode(), edge.encode()]);
    assert!(!ids(&body).contains(&too_old.encode()));
    assert!(body["next_cursor"].is_null());
    // A day later the edge message has left the window.
    rig.api.clock.advance(Duration::days(1));
    let tok = rig.token("bob", false);
    let (_, body) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    assert_eq!(ids(&body), vec![fresh.encode()]);
}

#[tokio::test]
async fn pages_of_100_100_50_without_gaps_or_repeats_while_mail_arrives() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let mut filed = Vec::new();
    for i in 0..250i64 {
        let at = now - Duration::hours(2) + Duration::seconds(i * 10);
        let raw = plain(
            "a@example.org",
            &bob,
            &format!("m{i}"),
            &format!("m{i}@x"),
            "x",
        );
        filed.push(rig.file(&bob, at, &raw).await);
    }
    filed.reverse(); // newest first
    let tok = rig.token("bob", false);
    let base = format!("/api/v1/mailboxes/{bob}/messages");
    let (st, p1) = rig.get(&tok, &base).await;
    assert_eq!(st, 200);
    // New mail arrives between pages.
    for i in 0..5i64 {
        let raw = plain(
            "a@example.org",
            &bob,
            &format!("new{i}"),
            &format!("new{i}@x"),
            "x",
        );
        rig.file(&bob, now + Duration::seconds(i), &raw).await;
    }
    let c1 = p1["next_cursor"].as_str().expect("cursor 1").to_string();
    let (_, p2) = rig.get(&tok, &format!("{base}?cursor={c1}")).await;
    let c2 = p2["next_cursor"].as_str().expect("cursor 2").to_string();
    let (_, p3) = rig.get(&tok, &format!("{base}?cursor={c2}")).await;
    let (a, b, c) = (ids(&p1), ids(&p2), ids(&p3));
    assert_eq!((a.len(), b.len(), c.len()), (100, 100, 50));
    assert!(p3["next_cursor"].is_null());
    let all: Vec<String> = a.iter().chain(&b).chain(&c).cloned().collect();
    let expected: Vec<String> = filed.iter().map(|r| r.encode()).collect();
    assert_eq!(all, expected, "in order, no gaps, no repeats");
    // The new mail is on a fresh first page.
    let (_, fresh) = rig.get(&tok, &base).await;
    assert_eq!(ids(&fresh)[..5].len(), 5);
    assert_eq!(fresh["messages"][0]["subject"], "new4");
    // Without JavaScript: the page's plain "More" link leads to the next page.
    let (st, html) = rig.get_text(&tok, &format!("/inbox/{bob}")).await;
    assert_eq!(st, 200);
    assert_eq!(html.matches("<tr data-id=").count(), 100);
    let more = html
        .split("id=\"more\" class=\"btn\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a More link")
        .replace("&amp;", "&");
    let (st, html2) = rig.get_text(&tok, &more).await;
    assert_eq!(st, 200);
    assert_eq!(html2.matches("<tr data-id=").count(), 100);
    // Page one: new4..new0 and m249..m155; page two: m154..m55.
    assert!(html2.contains(">m154<") && html2.contains(">m55<") && !html2.contains(">m155<"));
    // A tampered cursor is refused; a cursor of another folder too.
    let (st, _) = rig.get(&tok, &format!("{base}?cursor=AAAA")).await;
    assert_eq!(st, 400);
    let (st, _) = rig
        .get(&tok, &format!("{base}?folder=sent&cursor={c1}"))
        .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn another_users_mailbox_answers_404_on_every_route() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let (bob, eve) = (addr("bob"), addr("eve"));
    let att = mail_fixture("pdf-attachment.eml", &[]);
    let r = rig.file(&bob, rig.now(), &att).await;
    let id = r.encode();
    let bob_tok = rig.token("bob", false);
    // Bob reaches everything of his own: the .eml is the raw message, attachments are downloads.
    for (path, body) in [
        (
            format!("/api/v1/mailboxes/{bob}/messages/{id}/raw"),
            &att[..],
        ),
        (
            format!("/api/v1/mailboxes/{bob}/messages/{id}/attachments/0"),
            &b"%PDF"[..],
        ),
    ] {
        let r = rig
            .http
            .get(rig.api.url(&path))
            .bearer_auth(&bob_tok)
            .send()
            .await
            .unwrap();
        // The .eml: a redirect to a presigned link of the stored message (issue 13).
        let r = if path.ends_with("/raw") {
            assert_eq!(r.status(), 303, "{path}");
            let url = r.headers()["location"].to_str().unwrap().to_string();
            assert!(url.contains("X-Amz-Signature="), "{url}");
            assert!(
                url.contains("response-content-disposition=attachment"),
                "{url}"
            );
            let r = reqwest::get(&url).await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            assert_eq!(&r.bytes().await.unwrap()[..], body, "{path}");
            continue;
        } else {
            r
        };
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"));
        assert_eq!(&r.bytes().await.unwrap()[..], body, "{path}");
    }
    let (st, opened) = rig
        .get(&bob_tok, &format!("/api/v1/mailboxes/{bob}/messages/{id}"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(opened["attachment_list"][0]["name"], "r.pdf");
    let eve_tok = rig.token("eve", false);
    let gets = [
        format!("/api/v1/mailboxes/{bob}/messages"),
        format!("/api/v1/mailboxes/{bob}/messages?folder=sent"),
        format!("/api/v1/mailboxes/{bob}/messages/{id}"),
        format!("/api/v1/mailboxes/{bob}/messages/{id}/raw"),
        format!("/api/v1/mailboxes/{bob}/messages/{id}/attachments/0"),
        format!("/api/v1/mailboxes/{bob}/blocks"),
        // Bob's message id in Eve's own mailbox: not there.
        format!("/api/v1/mailboxes/{eve}/messages/{id}"),
        format!("/api/v1/mailboxes/{eve}/messages/{id}/raw"),
        format!("/api/v1/mailboxes/{eve}/messages/{id}/attachments/0"),
        format!("/inbox/{bob}"),
        format!("/inbox/{bob}/messages/{id}"),
        format!("/inbox/{bob}/messages/{id}/print"),
        format!("/inbox/{bob}/compose"),
        format!("/inbox/{eve}/messages/{id}"),
        format!("/inbox/{eve}/compose?mode=reply&original={id}"),
        format!("/api/v1/client/sync?mailbox={bob}"),
        format!("/api/v1/client/handed-out?mailbox={bob}"),
        "/api/v1/mailboxes/not-an-address/messages".to_string(),
    ];
    for path in &gets {
        let r = rig
            .http
            .get(rig.api.url(path))
            .bearer_auth(&eve_tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "GET {path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("secret"), "{path} leaked: {text}");
    }
    let posts: [(Method, String, serde_json::Value); 4] = [
        (
            Method::POST,
            format!("/api/v1/mailboxes/{bob}/send"),
            json!({"idempotency_key": "k1", "to": ["x@example.org"], "subject": "s", "text": "t"}),
        ),
        (
            Method::POST,
            format!("/api/v1/mailboxes/{eve}/send"),
            json!({"idempotency_key": "k2", "to": ["x@example.org"], "subject": "s", "text": "t", "mode": "forward", "original": id}),
        ),
        (
            Method::POST,
            format!("/api/v1/mailboxes/{bob}/blocks"),
            json!({"target": "x.example"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/mailboxes/{bob}/blocks/x.example"),
            json!({}),
        ),
    ];
    for (m, path, body) in posts {
        let (st, b) = rig.send_json(m.clone(), &eve_tok, &path, &body).await;
        assert_eq!(st, 404, "{m} {path}: {b}");
    }
    for (path, form) in [
        (
            format!("/inbox/{bob}/compose"),
            vec![
                ("idempotency_key", "k3"),
                ("to", "x@example.org"),
                ("mode", "new"),
            ],
        ),
        (
            format!("/inbox/{bob}/blocks"),
            vec![("rule", "block:@x.example")],
        ),
    ] {
        let r = rig
            .http
            .post(rig.api.url(&path))
            .bearer_auth(&eve_tok)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "POST {path}");
    }
    // Nothing was sent or blocked on Bob's behalf.
    let (_, blocks) = rig
        .get(&bob_tok, &format!("/api/v1/mailboxes/{bob}/blocks"))
        .await;
    assert_eq!(blocks["blocks"].as_array().map(|a| a.len()), Some(0));
    assert!(rig
        .api
        .store()
        .mailbox_page(
            ORG,
            &bob,
            Folder::Sent,
            rig.now() - Duration::days(1),
            None,
            10
        )
        .await
        .unwrap()
        .items
        .is_empty());
    // Unsigned: a page goes to the sign-in page and back; the API answers 401.
    let r = rig
        .http
        .get(rig.api.url(&format!("/inbox/{bob}/messages/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/auth/start?next=%2Finbox%2Fbob%40acme.test%2Fmessages%2F{id}").as_str()
    );
    // Unsigned: 401.
    let r = rig
        .http
        .get(rig.api.url(&format!("/api/v1/mailboxes/{bob}/messages")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_delegate_sees_the_granted_mailbox_only_and_loses_it_on_revoke() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let (sales, carol, bob) = (addr("sales"), addr("carol"), addr("bob"));
    let token = unique("deleg");
    let r = rig
        .file(
            &sales,
            rig.now(),
            &plain("a@example.org", &sales, &token, "d1@x", "order"),
        )
        .await;
    rig.file(
        &bob,
        rig.now(),
        &plain("a@example.org", &bob, "bob's", "d2@x", "private"),
    )
    .await;
    let admin = rig.token("admin", true);
    let carol_tok = rig.token("carol", false);
    // Not an administrator: refused.
    let (st, _) = rig
        .post(
            &carol_tok,
            "/api/v1/admin/delegates",
            &json!({"user": carol, "mailbox": sales}),
        )
        .await;
    assert_eq!(st, 403);
    // A mailbox of another organisation's domain: refused.
    let (st, _) = rig
        .post(
            &admin,
            "/api/v1/admin/delegates",
            &json!({"user": carol, "mailbox": "x@other.test"}),
        )
        .await;
    assert_eq!(st, 422);
    let (st, before) = rig
        .get(&carol_tok, &format!("/api/v1/mailboxes/{sales}/messages"))
        .await;
    assert_eq!(st, 404, "{before}");
    let (st, g) = rig
        .post(
            &admin,
            "/api/v1/admin/delegates",
            &json!({"user": "Carol@acme.test", "mailbox": sales}),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let (_, boxes) = rig.get(&carol_tok, "/api/v1/mailboxes").await;
    assert_eq!(boxes["mailboxes"], json!([carol, sales]));
    let (st, list) = rig
        .get(&carol_tok, &format!("/api/v1/mailboxes/{sales}/messages"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(ids(&list), vec![r.encode()]);
    let (st, _) = rig
        .get(&carol_tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    assert_eq!(st, 404, "only the granted mailbox");
    // Carol answers on behalf of sales.
    let (st, sent) = rig
        .post(
            &carol_tok,
            &format!("/api/v1/mailboxes/{sales}/send"),
            &json!({
                "idempotency_key": "d-1", "mode": "reply", "original": r.encode(), "text": "On it."
            }),
        )
        .await;
    assert_eq!(st, 201, "{sent}");
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, sales);
    assert!(
        out[0].2.contains("Sender: <carol@acme.test>"),
        "{}",
        out[0].2
    );
    assert!(out[0].2.contains("From: <sales@acme.test>"), "{}", out[0].2);
    // The listing of grants.
    let (_, grants) = rig
        .get(&admin, &format!("/api/v1/admin/delegates?user={carol}"))
        .await;
    assert_eq!(grants["delegates"][0]["mailbox"], sales);
    // Revoke: gone on every route.
    let r2 = rig
        .http
        .delete(
            rig.api
                .url(&format!("/api/v1/admin/delegates/{carol}/{sales}")),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 204);
    let (st, _) = rig
        .get(&carol_tok, &format!("/api/v1/mailboxes/{sales}/messages"))
        .await;
    assert_eq!(st, 404);
    let (st, _) = rig
        .get(
            &carol_tok,
            &format!("/api/v1/mailboxes/{sales}/messages/{}", r.encode()),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = rig
        .post(&carol_tok, &format!("/api/v1/mailboxes/{carol}/send"), &json!({
            "idempotency_key": "d-2", "from": sales, "to": ["x@example.org"], "subject": token, "text": "x"
        }))
        .await;
    assert_eq!(st, 422, "no longer allowed to send as sales");
    let (_, boxes) = rig.get(&carol_tok, "/api/v1/mailboxes").await;
    assert_eq!(boxes["mailboxes"], json!([carol]));
}

#[tokio::test]
async fn every_compose_refusal_sends_nothing() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("refuse");
    let path = format!("/api/v1/mailboxes/{bob}/send");
    let many: Vec<String> = (0..51).map(|i| format!("u{i}@example.org")).collect();
    let big = "A".repeat(10 * 1024 * 1024);
    let cases = vec![
        (
            "not my address",
            422,
            json!({"idempotency_key": "r1", "from": "ceo@acme.test", "to": ["x@example.org"], "subject": token, "text": "x"}),
        ),
        (
            "another org's address",
            422,
            json!({"idempotency_key": "r2", "from": "bob@other.test", "to": ["x@example.org"], "subject": token, "text": "x"}),
        ),
        (
            "CRLF in subject",
            422,
            json!({"idempotency_key": "r3", "to": ["x@example.org"], "subject": format!("{token}\r\nBcc: victim@example.org"), "text": "x"}),
        ),
        (
            "LF in a recipient",
            422,
            json!({"idempotency_key": "r4", "to": ["x@example.org\nBcc: victim@example.org"], "subject": token, "text": "x"}),
        ),
        (
            "CR in From",
            422,
            json!({"idempotency_key": "r5", "from": "bob@acme.test\r", "to": ["x@example.org"], "subject": token, "text": "x"}),
        ),
        (
            "LF in attachment name",
            422,
            json!({"idempotency_key": "r6", "to": ["x@example.org"], "subject": token, "text": "x", "attachments": [{"name": "a\nb.txt", "data": "eA=="}]}),
        ),
        (
            "51 recipients",
            422,
            json!({"idempotency_key": "r7", "to": many, "subject": token, "text": "x"}),
        ),
        (
            // Above what the function accepts (Lambda's 6 MB request): refused before reading.
            "oversize",
            413,
            json!({"idempotency_key": "r8", "to": ["x@example.org"], "subject": token, "text": big}),
        ),
        (
            "no recipient",
            422,
            json!({"idempotency_key": "r9", "to": [], "subject": token, "text": "x"}),
        ),
        (
            "not an address",
            422,
            json!({"idempotency_key": "r10", "to": ["nobody"], "subject": token, "text": "x"}),
        ),
        (
            "no idempotency key",
            400,
            json!({"to": ["x@example.org"], "subject": token, "text": "x"}),
        ),
        (
            "bad base64",
            400,
            json!({"idempotency_key": "r11", "to": ["x@example.org"], "subject": token, "text": "x", "attachments": [{"name": "a", "data": "***"}]}),
        ),
    ];
    for (what, want, body) in cases {
        let (st, b) = rig.post(&tok, &path, &body).await;
        assert_eq!(st, want, "{what}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(!msg.is_empty(), "{what}: a clear message");
    }
    assert!(sent_with(&token).await.is_empty(), "nothing reached SES");
    // The web form shows the reason on the form again.
    let r = rig
        .http
        .post(rig.api.url(&format!("/inbox/{bob}/compose")))
        .bearer_auth(&tok)
        .form(&[
            ("idempotency_key", "f1"),
            ("mode", "new"),
            ("to", "x@example.org"),
            ("subject", &format!("{token}\r\nX: y")),
            ("text", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("line break"));
    assert!(sent_with(&token).await.is_empty());
}

#[tokio::test]
async fn reply_threads_is_filed_in_sent_items_and_sends_once_per_key() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("thread");
    let raw = mail_fixture("reply-all-original.eml", &[("SUBJECT", &token)]);
    let r = rig.file(&bob, rig.now(), &raw).await;
    let body = json!({"idempotency_key": "reply-1", "mode": "reply-all", "original": r.encode(), "to": ["alice@example.org", "carol@acme.test"], "cc": ["dan@example.org"], "subject": format!("Re: {token}"), "text": "Agreed.\n\n> first line\n> second line"});
    let (st, sent) = rig
        .post(&tok, &format!("/api/v1/mailboxes/{bob}/send"), &body)
        .await;
    assert_eq!(st, 201, "{sent}");
    // Retried with the same key: not sent again, the same sent item.
    let (st, again) = rig
        .post(&tok, &format!("/api/v1/mailboxes/{bob}/send"), &body)
        .await;
    assert_eq!(st, 200);
    assert_eq!(again["repeated"], true);
    assert_eq!(again["id"], sent["id"]);
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1, "sent once");
    let (src, dest, mime) = &out[0];
    assert_eq!(src, &bob);
    let mut dest = dest.clone();
    dest.sort();
    dest.dedup(); // moto lists the envelope and header recipients
    assert_eq!(
        dest,
        vec!["alice@example.org", "carol@acme.test", "dan@example.org"]
    );
    assert!(mime.contains("In-Reply-To: <m2@example.org>"), "{mime}");
    assert!(
        mime.contains("References: <m1@example.org> <m2@example.org>"),
        "{mime}"
    );
    assert!(mime.contains(&format!("Subject: Re: {token}")), "{mime}");
    let parsed = mail_parser::MessageParser::default()
        .parse(mime.as_bytes())
        .unwrap();
    assert!(parsed.body_text(0).unwrap().contains("> first line"));
    // In Sent Items, openable.
    let (_, list) = rig
        .get(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/messages?folder=sent"),
        )
        .await;
    assert_eq!(ids(&list), vec![sent["id"].as_str().unwrap().to_string()]);
    let (st, opened) = rig
        .get(
            &tok,
            &format!(
                "/api/v1/mailboxes/{bob}/messages/{}",
                sent["id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(st, 200);
    assert!(opened["text"].as_str().unwrap().contains("Agreed."));
    assert_eq!(opened["message_id"], sent["message_id"]);
    // The prefilled reply form quotes the original and threads.
    let (st, form) = rig
        .get_text(
            &tok,
            &format!(
                "/inbox/{bob}/compose?mode=reply-all&original={}",
                r.encode()
            ),
        )
        .await;
    assert_eq!(st, 200);
    assert!(form.contains(&format!("Re: {token}")));
    assert!(form.contains("&gt; first line"));
    assert!(
        form.contains("alice@example.org, carol@acme.test"),
        "{form}"
    );
}

#[tokio::test]
async fn forward_keeps_the_attachments_and_bcc_to_server_queues_a_copy() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("fwd");
    let mut config = integration_tests::inbound_org(ORG, 3);
    config.continuity.bcc_to_server = true;
    rig.api
        .store()
        .put_config(&config, rig.now())
        .await
        .unwrap();
    let now = rig.now();
    rig.api
        .store()
        .set_continuity_state(
            ORG,
            &shared::domain::continuity::ContinuityState {
                event_started_at: Some(now - Duration::hours(1)),
                event_until: Some(now + Duration::hours(3)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let raw = mail_fixture("forward-pdf-base64.eml", &[("SUBJECT", &token)]);
    let r = rig.file(&bob, now, &raw).await;
    let (st, sent) = rig
        .post(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/send"),
            &json!({
                "idempotency_key": "fwd-1", "mode": "forward", "original": r.encode(),
                "to": ["zed@example.org"], "subject": format!("Fwd: {token}"), "text": "FYI"
            }),
        )
        .await;
    assert_eq!(st, 201, "{sent}");
    assert_eq!(sent["copy_queued"], true);
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1);
    let parsed = mail_parser::MessageParser::default()
        .parse(out[0].2.as_bytes())
        .unwrap();
    let att: Vec<_> = parsed.attachments().collect();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].contents(), b"%PDF-1.4\n");
    // U8: a copy queued for Bob's mailbox on the organisation's server.
    use shared::ports::store::QueueStore;
    let queued = rig.api.store().oldest(ORG, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipients, vec![bob.clone()]);
    assert_eq!(queued[0].message_id, sent["message_id"].as_str().unwrap());
    // Outside continuity no copy is queued.
    rig.api
        .store()
        .set_continuity_state(ORG, &Default::default())
        .await
        .unwrap();
    let (_, sent2) = rig
        .post(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/send"),
            &json!({
                "idempotency_key": "fwd-2", "to": ["zed@example.org"], "subject": token, "text": "x"
            }),
        )
        .await;
    assert_eq!(sent2["copy_queued"], false);
    assert_eq!(rig.api.store().oldest(ORG, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn hostile_html_is_rendered_inert() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let corpus = r#"<p>Hello</p><script>alert('s')</script><img src=x onerror="alert('i')">
<a href="javascript:alert('j')">j</a><a href=" JaVaScRiPt:alert(1)">k</a>
<svg onload="alert('svg')"><circle r=1></circle></svg>
<div style="background:url(javascript:alert(1));width:expression(alert('css'))">css</div>
<style>*{x:expression(alert(1))}</style><iframe src="https://evil.example/"></iframe>
<scr<script>ipt>alert('nest')</script><<img src=x onerror=alert(2)>
<img src="https://tracker.example/pixel.gif"><a href="https://example.org/ok">ok</a>
<body onload=alert(3)><form action="https://evil.example/"><input name=p></form>
<math><mtext><table><mglyph><style><img src=x onerror=alert(4)>"#;
    let raw = format!("From: a@example.org\r\nTo: bob@acme.test\r\nSubject: xss\r\nMessage-ID: <xss@x>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{corpus}\r\n");
    let r = rig.file(&bob, rig.now(), raw.as_bytes()).await;
    for path in [
        format!("/inbox/{bob}/messages/{}", r.encode()),
        format!("/inbox/{bob}/messages/{}/print", r.encode()),
        format!("/inbox/{bob}/messages/{}?images=1", r.encode()),
    ] {
        let resp = rig
            .http
            .get(rig.api.url(&path))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let page = resp.text().await.unwrap();
        let lower = page.to_ascii_lowercase();
        assert_eq!(
            lower.matches("<script").count(),
            2,
            "only the service's own scripts: {page}"
        );
        assert!(lower.contains("<script src=\"/static/inbox.js\" defer></script>"));
        assert!(lower.contains("<script src=\"/static/pwa.js\" defer></script>"));
        for bad in [
            "javascript:",
            "onerror",
            "onload",
            "expression(",
            "<iframe",
            "<svg",
            "<form action=\"https://evil",
            "<style>*",
        ] {
            assert!(!lower.contains(bad), "{path}: {bad} in {page}");
        }
        assert!(page.contains("rel=\"noopener noreferrer nofollow\""));
        if path.ends_with("images=1") {
            assert!(
                page.contains("https://tracker.example/pixel.gif"),
                "images shown when asked"
            );
        } else {
            assert!(
                !page.contains("tracker.example"),
                "no remote content unless asked"
            );
        }
    }
    let (_, j) = rig
        .get(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/messages/{}", r.encode()),
        )
        .await;
    let html = j["html"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        !html.contains("<script") && !html.contains("onerror") && !html.contains("javascript:")
    );
}

#[tokio::test]
async fn blocks_are_listed_and_removed() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let p = format!("/api/v1/mailboxes/{bob}/blocks");
    let (st, _) = rig
        .post(
            &tok,
            &p,
            &json!({"target": "Spammer@Example.org", "kind": "spam"}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = rig.post(&tok, &p, &json!({"target": "junk.example"})).await;
    assert_eq!(st, 201);
    let (st, _) = rig.post(&tok, &p, &json!({"target": "not a thing"})).await;
    assert_eq!(st, 422);
    let (_, list) = rig.get(&tok, &p).await;
    let targets: HashSet<String> = list["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        targets,
        HashSet::from([
            "spammer@example.org".to_string(),
            "@junk.example".to_string()
        ])
    );
    let r = rig
        .http
        .delete(rig.api.url(&format!("{p}/junk.example")))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, list) = rig.get(&tok, &p).await;
    assert_eq!(list["blocks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_retries_of_one_send_send_once() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let tok = rig.token("bob", false);
    let token = unique("twice");
    let path = format!("/api/v1/mailboxes/{bob}/send");
    let body = json!({"idempotency_key": "same-key", "to": ["x@example.org"], "subject": token, "text": "once"});
    let sends = (0..4).map(|_| rig.post(&tok, &path, &body));
    let results = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(sent_with(&token).await.len(), 1, "one message reached SES");
    // Afterwards, a retry answers the same sent item.
    let (st, again) = rig.post(&tok, &path, &body).await;
    assert_eq!(st, 200);
    let first = results
        .iter()
        .find(|(s, _)| *s == 201)
        .map(|(_, b)| b["id"].clone());
    assert_eq!(Some(again["id"].clone()), first);
    let page = rig
        .api
        .store()
        .mailbox_page(
            ORG,
            &bob,
            Folder::Sent,
            rig.now() - Duration::days(1),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "one sent item");
}
