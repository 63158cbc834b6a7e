//! Reading the Online Inbox (issue 17): read state set on open and settable in the list and the
//! JSON API, flags, unread counts per folder, the threads view, what the list shows (display
//! name, preview, marks, times in the user's zone) and raw 8-bit headers decoded; every refusal
//! leaves the organisation's partition as it was. Against DynamoDB Local and moto's S3 through
//! the API's router.

use chrono::Duration;
use futures::StreamExt;
use integration_tests::inbox_support::{addr, plain, InboxRig, ORG};
use integration_tests::portal_support::partition;
use integration_tests::{mail_fixture, t};
use reqwest::Method;
use serde_json::{json, Value};
use shared::domain::mail::summarize;
use shared::domain::mailbox::{Filing, Folder, MessageRef};
use shared::ports::store::MailStore;

/// The page as HTML, with the user's time zone cookie when `zone` is given.
async fn page(rig: &InboxRig, tok: &str, path: &str, zone: Option<&str>) -> (u16, String) {
    let mut req = rig
        .http
        .get(rig.api.url(path))
        .bearer_auth(tok)
        .header("accept", "text/html");
    if let Some(z) = zone {
        req = req.header("cookie", format!("ec_tz={z}"));
    }
    let r = req.send().await.expect("GET");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A list button pressed: the status and where it leads.
async fn press(rig: &InboxRig, tok: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = rig
        .http
        .post(rig.api.url(path))
        .bearer_auth(tok)
        .form(form)
        .send()
        .await
        .expect("POST");
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (r.status().as_u16(), to)
}

/// The message as the JSON API lists it.
async fn listed(rig: &InboxRig, tok: &str, mailbox: &str, r: &MessageRef) -> Value {
    let (st, body) = rig
        .get(tok, &format!("/api/v1/mailboxes/{mailbox}/messages"))
        .await;
    assert_eq!(st, 200, "{body}");
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == r.encode())
        .cloned()
        .unwrap_or(Value::Null)
}

/// The unread count a list page shows for `folder`.
fn unread_shown(html: &str, folder: &str) -> Option<usize> {
    let marker = format!("id=\"unread-{folder}\">");
    html.split(&marker).nth(1)?.split('<').next()?.parse().ok()
}

#[tokio::test]
async fn opening_marks_read_once_and_the_list_marks_unread_and_flags() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let mut refs = Vec::new();
    for i in 0..3i64 {
        let raw = plain(
            "a@example.org",
            &bob,
            &format!("s{i}"),
            &format!("r{i}@x"),
            "x",
        );
        refs.push(rig.file(&bob, now - Duration::minutes(10 - i), &raw).await);
    }
    let tok = rig.token("bob", false);
    let (st, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(st, 200);
    assert_eq!(unread_shown(&html, "inbox"), Some(3));
    assert_eq!(html.matches("<tr data-id=").count(), 3);
    assert_eq!(
        html.matches("class=\"unread\"").count(),
        3,
        "unread rows bold"
    );
    // Opened on the message page: read, once.
    let first = &refs[0];
    let (st, _) = page(
        &rig,
        &tok,
        &format!("/inbox/{bob}/messages/{}", first.encode()),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let m = listed(&rig, &tok, &bob, first).await;
    assert_eq!(m["read"], true, "{m}");
    let read_at = m["read_at"].clone();
    assert!(read_at.is_string());
    rig.api.clock.advance(Duration::minutes(5));
    page(
        &rig,
        &tok,
        &format!("/inbox/{bob}/messages/{}", first.encode()),
        None,
    )
    .await;
    assert_eq!(
        listed(&rig, &tok, &bob, first).await["read_at"],
        read_at,
        "a second open keeps the first time"
    );
    // The print view and the JSON GET do not mark read.
    for path in [
        format!("/inbox/{bob}/messages/{}/print", refs[1].encode()),
        format!("/api/v1/mailboxes/{bob}/messages/{}", refs[1].encode()),
    ] {
        let (st, _) = page(&rig, &tok, &path, None).await;
        assert_eq!(st, 200, "{path}");
    }
    assert_eq!(listed(&rig, &tok, &bob, &refs[1]).await["read"], false);
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(unread_shown(&html, "inbox"), Some(2));
    assert_eq!(html.matches("class=\"unread\"").count(), 2);
    // Mark unread from the list (no JavaScript: a form), back to the same list.
    let state = format!("/inbox/{bob}/messages/{}/state", first.encode());
    let (st, to) = press(&rig, &tok, &state, &[("read", "0"), ("folder", "inbox")]).await;
    assert_eq!(st, 303);
    assert_eq!(to, "/inbox/bob%40acme.test?folder=inbox");
    let m = listed(&rig, &tok, &bob, first).await;
    assert_eq!(
        (m["read"].clone(), m["read_at"].clone()),
        (json!(false), Value::Null)
    );
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(unread_shown(&html, "inbox"), Some(3));
    // Flag twice (idempotent), shown as a mark with an accessible name; then unflag.
    for _ in 0..2 {
        let (st, _) = press(&rig, &tok, &state, &[("flagged", "1")]).await;
        assert_eq!(st, 303);
    }
    assert_eq!(listed(&rig, &tok, &bob, first).await["flagged"], true);
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(html.matches("aria-label=\"Flagged\"").count(), 1);
    assert!(html.contains("<button name=\"flagged\" value=\"0\">Unflag</button>"));
    // From the message page, the flag button comes back to the message.
    let (st, to) = press(&rig, &tok, &state, &[("flagged", "0"), ("back", "message")]).await;
    assert_eq!(st, 303);
    assert_eq!(
        to,
        format!("/inbox/bob%40acme.test/messages/{}", first.encode())
    );
    assert_eq!(listed(&rig, &tok, &bob, first).await["flagged"], false);
    // A bad value is refused and changes nothing.
    let before = partition(&rig.api, ORG).await;
    let (st, _) = press(&rig, &tok, &state, &[("read", "maybe")]).await;
    assert_eq!(st, 400);
    let (st, _) = press(&rig, &tok, &state, &[("folder", "inbox")]).await;
    assert_eq!(st, 400, "nothing to change");
    assert_eq!(partition(&rig.api, ORG).await, before);
}

#[tokio::test]
async fn json_api_sets_read_and_flag_and_refusals_change_nothing() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let (bob, eve) = (addr("bob"), addr("eve"));
    let now = rig.now();
    let r = rig
        .file(
            &bob,
            now - Duration::minutes(1),
            &plain("a@example.org", &bob, "hi", "j1@x", "x"),
        )
        .await;
    let tok = rig.token("bob", false);
    let path = format!("/api/v1/mailboxes/{bob}/messages/{}", r.encode());
    let (st, m) = rig
        .send_json(
            Method::PATCH,
            &tok,
            &path,
            &json!({"read": true, "flagged": true}),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(
        (m["read"].clone(), m["flagged"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(m["read_at"], json!("2026-11-23T10:00:00Z"));
    // Idempotent: the same request later keeps the first read time.
    rig.api.clock.advance(Duration::minutes(3));
    let (st, again) = rig
        .send_json(
            Method::PATCH,
            &tok,
            &path,
            &json!({"read": true, "flagged": true}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(again["read_at"], m["read_at"]);
    let (_, unread) = rig
        .send_json(Method::PATCH, &tok, &path, &json!({"read": false}))
        .await;
    assert_eq!(
        (unread["read"].clone(), unread["flagged"].clone()),
        (json!(false), json!(true))
    );
    // Refusals: nothing written.
    let before = partition(&rig.api, ORG).await;
    let eve_tok = rig.token("eve", false);
    let unknown = MessageRef::new(Folder::Inbox, now, "nosuchmessage").encode();
    for (token, p, body, status) in [
        (&eve_tok, path.clone(), json!({"read": true}), 404),
        (
            &eve_tok,
            format!("/api/v1/mailboxes/{eve}/messages/{}", r.encode()),
            json!({"read": true}),
            404,
        ),
        (
            &tok,
            format!("/api/v1/mailboxes/{bob}/messages/{unknown}"),
            json!({"flagged": true}),
            404,
        ),
        (
            &tok,
            format!("/api/v1/mailboxes/{bob}/messages/not-an-id"),
            json!({"read": true}),
            404,
        ),
        (&tok, path.clone(), json!({}), 400),
        (&tok, path.clone(), json!({"read": "yes"}), 400),
        (
            &tok,
            path.clone(),
            json!({"read": true, "deleted": true}),
            400,
        ),
    ] {
        let (st, body) = rig.send_json(Method::PATCH, token, &p, &body).await;
        assert_eq!(st, status, "{p}: {body}");
        assert!(
            body["error"]["message"].is_string(),
            "a readable reason: {body}"
        );
    }
    // The page form of another user's mailbox, and a cross-site post with the session cookie.
    let (st, _) = press(
        &rig,
        &eve_tok,
        &format!("/inbox/{bob}/messages/{}/state", r.encode()),
        &[("read", "1")],
    )
    .await;
    assert_eq!(st, 404);
    let cross = rig
        .http
        .post(
            rig.api
                .url(&format!("/inbox/{bob}/messages/{}/state", r.encode())),
        )
        .header("cookie", format!("ec_session={tok}"))
        .header("origin", "https://evil.example")
        .form(&[("read", "1")])
        .send()
        .await
        .expect("POST");
    assert_eq!(cross.status(), 403);
    // Eve opening the message page of Bob's mailbox marks nothing.
    let (st, _) = page(
        &rig,
        &eve_tok,
        &format!("/inbox/{bob}/messages/{}", r.encode()),
        None,
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing changed");
}

#[tokio::test]
async fn unread_counts_per_folder_within_the_window() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let msg = |s: &str| plain("a@example.org", &bob, s, &format!("{s}@x"), "x");
    let a = rig
        .file_in(&bob, Folder::Inbox, now - Duration::hours(1), &msg("a"))
        .await;
    rig.file_in(&bob, Folder::Inbox, now - Duration::hours(2), &msg("b"))
        .await;
    // Older than the 30 days (TTL not yet run): neither listed nor counted.
    rig.file_in(&bob, Folder::Inbox, now - Duration::days(31), &msg("old"))
        .await;
    let spam = rig
        .file_in(&bob, Folder::Junk, now - Duration::hours(1), &msg("spam"))
        .await;
    // Another mailbox's unread mail is not counted.
    rig.file_in(&addr("carol"), Folder::Inbox, now, &msg("c"))
        .await;
    let tok = rig.token("bob", false);
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(unread_shown(&html, "inbox"), Some(2));
    assert_eq!(unread_shown(&html, "junk"), Some(1));
    for (r, label) in [(&a, "inbox"), (&spam, "spam")] {
        let (st, _) = rig
            .send_json(
                Method::PATCH,
                &tok,
                &format!("/api/v1/mailboxes/{bob}/messages/{}", r.encode()),
                &json!({"read": true}),
            )
            .await;
        assert_eq!(st, 200, "{label}");
    }
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}?folder=junk"), None).await;
    assert_eq!(unread_shown(&html, "inbox"), Some(1));
    assert_eq!(unread_shown(&html, "junk"), Some(0));
    // Above 1,000 unread the count stops there (one Query whatever the mailbox holds).
    let store = rig.api.store().clone();
    futures::stream::iter(0..1000i64)
        .map(|i| {
            let (store, bob) = (store.clone(), bob.clone());
            async move {
                let raw = format!("From: x@example.org\r\nSubject: bulk {i}\r\nMessage-ID: <bulk{i}@x>\r\n\r\nx\r\n");
                let ses_id = format!("bulk{i:05}");
                store
                    .file_message(
                        &Filing {
                            org_id: ORG,
                            ses_id: &ses_id,
                            received_at: now - Duration::minutes(i + 1),
                            raw_key: "inbound/none",
                            summary: &summarize(raw.as_bytes()),
                            folder: Folder::Junk,
                        },
                        &[bob],
                    )
                    .await
                    .expect("file");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}?folder=junk"), None).await;
    assert_eq!(unread_shown(&html, "inbox"), Some(1));
    assert!(html.contains("id=\"unread-junk\">1000+<"), "the cap");
    // Sent Items are read: not bold.
    let (st, _) = rig
        .post(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/send"),
            &json!({"idempotency_key": "s-1", "to": ["x@example.org"], "subject": "sent one", "text": "t"}),
        )
        .await;
    assert_eq!(st, 201);
    let (_, sent) = page(&rig, &tok, &format!("/inbox/{bob}?folder=sent"), None).await;
    assert!(sent.contains("sent one"));
    assert!(!sent.contains("class=\"unread\""));
}

#[tokio::test]
async fn threads_view_shows_one_line_per_conversation_newest_first() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let mail = |id: &str, subject: &str, refs: &str| -> Vec<u8> {
        format!(
            "From: a@example.org\r\nTo: {bob}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{refs}\r\nbody\r\n"
        )
        .into_bytes()
    };
    rig.file(&bob, now - Duration::hours(4), &mail("root@x", "Plan", ""))
        .await;
    rig.file(
        &bob,
        now - Duration::hours(3),
        &mail("other@x", "Lunch", ""),
    )
    .await;
    rig.file(
        &bob,
        now - Duration::hours(2),
        &mail(
            "r1@x",
            "Re: Plan",
            "In-Reply-To: <root@x>\r\nReferences: <root@x>\r\n",
        ),
    )
    .await;
    let newest = rig
        .file(
            &bob,
            now - Duration::hours(1),
            &mail(
                "r2@x",
                "Re: Re: Plan",
                "In-Reply-To: <r1@x>\r\nReferences: <root@x> <r1@x>\r\n",
            ),
        )
        .await;
    let tok = rig.token("bob", false);
    let (st, html) = page(&rig, &tok, &format!("/inbox/{bob}?view=threads"), None).await;
    assert_eq!(st, 200);
    let lines: Vec<&str> = html.split("<tr data-id=\"").skip(1).collect();
    assert_eq!(lines.len(), 2, "{html}");
    assert!(lines[0].starts_with(&newest.encode()), "the newest first");
    assert!(lines[0].contains(">Re: Re: Plan<") && lines[0].contains(">(3)<"));
    assert!(lines[1].contains(">Lunch<") && !lines[1].contains("class=\"count\""));
    assert!(html.contains("Show every message"));
    // The JSON list names the thread of each message.
    let (_, body) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    let threads: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["thread"].as_str().expect("thread"))
        .collect();
    assert_eq!(threads.len(), 4);
    assert_eq!(threads[0], threads[1]);
    assert_eq!(threads[0], threads[3]);
    assert_ne!(threads[0], threads[2]);
    // Without the option: every message.
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert_eq!(html.matches("<tr data-id=").count(), 4);
}

#[tokio::test]
async fn the_list_shows_names_previews_marks_and_times_in_the_users_zone() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let long = "First line of the text.\r\n\r\n   Second\tline,   with   spaces. ".repeat(10);
    let named = plain(
        "\"Alice Example\" <alice@example.org>",
        &bob,
        "Agenda",
        "n1@x",
        &long,
    );
    rig.file(&bob, now - Duration::minutes(28), &named).await; // 09:32 UTC
    let pdf = mail_fixture("pdf-attachment.eml", &[]);
    rig.file(&bob, now - Duration::days(1), &pdf).await;
    rig.file(
        &bob,
        t("2026-11-12T08:00:00Z"),
        &plain("c@example.org", &bob, "Older", "n3@x", "x"),
    )
    .await;
    let tok = rig.token("bob", false);
    let (_, utc) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    let (_, berlin) = page(&rig, &tok, &format!("/inbox/{bob}"), Some("Europe/Berlin")).await;
    // Display name, address on hover.
    assert!(utc.contains("<td class=\"who\" title=\"alice@example.org\">Alice Example</td>"));
    // One line of the text, whitespace collapsed, at most 140 characters.
    let preview = utc
        .split("<span class=\"preview\">")
        .nth(1)
        .and_then(|p| p.split("</span>").next())
        .expect("a preview");
    assert!(preview.starts_with("First line of the text. Second line, with spaces. First"));
    assert!(preview.chars().count() <= 140 && preview.chars().count() > 120);
    // Times: today as a time (in the zone of the browser's cookie, UTC without it),
    // yesterday, then day and month.
    assert!(utc.contains(">09:32</td>") && !utc.contains(">10:32</td>"));
    assert!(berlin.contains(">10:32</td>") && berlin.contains("Times in Europe/Berlin"));
    assert!(utc.contains(">Yesterday</td>") && utc.contains(">12 Nov</td>"));
    let (_, nonsense) = page(&rig, &tok, &format!("/inbox/{bob}"), Some("Mars/Olympus")).await;
    assert!(nonsense.contains(">09:32</td>"), "an unknown zone is UTC");
    // The attachment mark is an SVG with an accessible name, never the emoji.
    assert!(!utc.contains('\u{1f4ce}'));
    assert_eq!(
        utc.matches("role=\"img\" aria-label=\"Has attachments\"")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_raw_latin1_subject_and_name_are_decoded() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let mut raw = b"From: J\xfcrgen M\xfcller <j@example.org>\r\nTo: ".to_vec();
    raw.extend_from_slice(bob.as_bytes());
    raw.extend_from_slice(
        b"\r\nSubject: Gr\xfc\xdfe aus K\xf6ln \x80 5\r\nMessage-ID: <l1@x>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0000\r\n\r\nHallo\r\n",
    );
    let r = rig.file(&bob, rig.now() - Duration::hours(1), &raw).await;
    // Raw UTF-8 stays UTF-8.
    let mut utf8 = b"From: a@example.org\r\nTo: ".to_vec();
    utf8.extend_from_slice(bob.as_bytes());
    utf8.extend_from_slice(
        "\r\nSubject: Grüße, UTF-8\r\nMessage-ID: <l2@x>\r\n\r\nx\r\n".as_bytes(),
    );
    rig.file(&bob, rig.now() - Duration::hours(2), &utf8).await;
    let tok = rig.token("bob", false);
    let m = listed(&rig, &tok, &bob, &r).await;
    assert_eq!(m["subject"], "Grüße aus Köln € 5");
    assert_eq!(m["from_name"], "Jürgen Müller");
    let (_, html) = page(&rig, &tok, &format!("/inbox/{bob}"), None).await;
    assert!(html.contains(">Grüße aus Köln € 5<") && html.contains(">Jürgen Müller<"));
    assert!(html.contains(">Grüße, UTF-8<"));
    assert!(!html.contains('\u{fffd}'));
    let (_, msg) = page(
        &rig,
        &tok,
        &format!("/inbox/{bob}/messages/{}", r.encode()),
        None,
    )
    .await;
    assert!(msg.contains("<h1>Grüße aus Köln € 5</h1>"), "{msg}");
    assert!(msg.contains("Jürgen Müller &lt;j@example.org&gt;"));
}
