//! The Online Inbox in a real browser (Debian chromium, headless, through chromedriver): sign in
//! (the session cookie), scroll to load the second page, open a message, reply, find the reply
//! in Sent Items. A screenshot is saved as a test artifact.

use chrono::Duration;
use fantoccini::Locator;
use integration_tests::browser::{until, Browser};
use integration_tests::inbox_support::{addr, plain, sent_with, InboxRig};
use integration_tests::{t, unique};

/// The page's heading; empty while a page is loading.
async fn h1(c: &fantoccini::Client) -> String {
    match c.find(Locator::Css("h1")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test]
async fn sign_in_scroll_open_reply_and_find_it_in_sent_items() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    for i in 0..150i64 {
        let raw = plain(
            "alice@example.org",
            &bob,
            &format!("Update {i}"),
            &format!("u{i}@example.org"),
            "x",
        );
        rig.file(&bob, now - Duration::hours(3) + Duration::seconds(i), &raw)
            .await;
    }
    let token = unique("lunch");
    let subject = format!("Lunch {token}");
    rig.file(
        &bob,
        now - Duration::minutes(1),
        &plain(
            "Alice <alice@example.org>",
            &bob,
            &subject,
            "lunch@example.org",
            "Shall we meet at noon?",
        ),
    )
    .await;

    let browser = Browser::start().await;
    let c = &browser.client;
    // Opening the inbox without a session leads to the sign-in page (every way in), then the
    // organisation's account (the local form here; the identity provider's in AWS), and back to
    // the inbox after it.
    c.goto(&rig.api.url(&format!("/inbox/{bob}")))
        .await
        .unwrap();
    until("the ways in", || async {
        c.find(Locator::Id("idp")).await.is_ok()
    })
    .await;
    c.find(Locator::Id("idp"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the sign-in page", || async {
        c.find(Locator::Id("email")).await.is_ok()
    })
    .await;
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(&bob)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the inbox after sign-in", || async {
        c.find_all(Locator::Css("#rows tr"))
            .await
            .map(|r| r.len())
            .unwrap_or(0)
            > 0
    })
    .await;
    let rows = c.find_all(Locator::Css("#rows tr")).await.unwrap();
    assert_eq!(rows.len(), 100, "the first page");
    // Scrolling to the bottom loads the second page (no click).
    c.execute(
        "window.scrollTo(0, document.body.scrollHeight); return null;",
        vec![],
    )
    .await
    .unwrap();
    until("151 rows after scrolling", || async {
        c.find_all(Locator::Css("#rows tr"))
            .await
            .map(|r| r.len())
            .unwrap_or(0)
            == 151
    })
    .await;
    assert!(c.find(Locator::Id("more")).await.is_err(), "no more pages");

    // Open the newest message (scroll back up first).
    c.execute("window.scrollTo(0, 0); return null;", vec![])
        .await
        .unwrap();
    c.find(Locator::LinkText(&subject))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the message", || async { h1(c).await == subject }).await;
    let body = c
        .find(Locator::Css(".body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Shall we meet at noon?"));

    // Reply.
    c.find(Locator::LinkText("Reply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the reply form", || async {
        c.find(Locator::Id("text")).await.is_ok()
    })
    .await;
    let text = c.find(Locator::Id("text")).await.unwrap();
    let quoted = text.prop("value").await.unwrap().unwrap_or_default();
    assert!(quoted.contains("> Shall we meet at noon?"), "{quoted}");
    text.clear().await.unwrap();
    text.send_keys(&format!("Noon works.\n\n{quoted}"))
        .await
        .unwrap();
    c.find(Locator::Id("send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let reply_subject = format!("Re: {subject}");
    until("the sent reply", || async { h1(c).await == reply_subject }).await;

    // In Sent Items.
    c.find(Locator::LinkText("Sent Items"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the reply in Sent Items", || async {
        c.find(Locator::LinkText(&reply_subject)).await.is_ok()
    })
    .await;
    let shot = browser.screenshot("inbox_sent_items").await;
    assert!(shot.exists());

    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1, "one reply reached SES");
    assert!(out[0].2.contains("In-Reply-To: <lunch@example.org>"));
    assert!(out[0].2.contains("Noon works."));
    browser.close().await;
}
