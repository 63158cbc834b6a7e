//! The Online Inbox in a real browser (Debian chromium, headless, through chromedriver): sign in
//! (the session cookie), scroll to load the second page, open a message, reply, find the reply
//! in Sent Items; the list's marks and the keyboard shortcuts (issue 17); compose with a 5 MB file
//! through the script's presigned upload (issue 13). Screenshots are saved
//! as test artifacts.

use chrono::Duration;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
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

/// Opens the inbox without a session: the sign-in page (every way in), then the organisation's
/// account (the local form here; the identity provider's in AWS), and back to the inbox.
async fn sign_in(c: &fantoccini::Client, rig: &InboxRig, bob: &str) {
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
        .send_keys(bob)
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
    sign_in(c, &rig, &bob).await;
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

/// Presses `key` (a character, or a [`Key`]) as a person would, wherever the focus is.
async fn press(c: &fantoccini::Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.expect("key press");
}

/// The `data-id` of the selected row, if any.
async fn selected(c: &fantoccini::Client) -> Option<String> {
    c.execute(
        "var r = document.querySelector('#rows tr.selected'); return r ? r.getAttribute('data-id') : null;",
        vec![],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_string))
}

#[tokio::test]
async fn keyboard_shortcuts_and_marks_that_render() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let now = rig.now();
    let mut refs = Vec::new();
    for i in 0..3i64 {
        let raw = plain(
            "Alice <alice@example.org>",
            &bob,
            &format!("Note {i}"),
            &format!("k{i}@example.org"),
            "Text of the note.",
        );
        refs.push(rig.file(&bob, now - Duration::minutes(10 - i), &raw).await);
    }
    let pdf = integration_tests::mail_fixture("pdf-attachment.eml", &[]);
    rig.file(&bob, now - Duration::hours(1), &pdf).await;
    refs.reverse(); // newest first, as listed

    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(c, &rig, &bob).await;
    // The attachment mark is drawn (not an empty box) and named for assistive technology.
    let size = c
        .execute(
            "var i = document.querySelector('svg.icon-attachment'); var r = i.getBoundingClientRect(); return [r.width, r.height, i.getAttribute('role'), i.getAttribute('aria-label')];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        size[0].as_f64().unwrap_or(0.0) > 0.0 && size[1].as_f64().unwrap_or(0.0) > 0.0,
        "{size}"
    );
    assert_eq!(
        (size[2].as_str(), size[3].as_str()),
        (Some("img"), Some("Has attachments"))
    );
    // The unread rows are bold.
    let weight = c
        .execute(
            "return getComputedStyle(document.querySelector('#rows tr.unread a.subject')).fontWeight;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(weight.as_str(), Some("700"));

    // j / k move, the selected row's link has the focus.
    press(c, 'j').await;
    assert_eq!(selected(c).await, Some(refs[0].encode()));
    press(c, 'j').await;
    press(c, 'j').await;
    press(c, 'k').await;
    assert_eq!(selected(c).await, Some(refs[1].encode()));
    let focused = c.active_element().await.unwrap().text().await.unwrap();
    assert_eq!(focused, "Note 1");
    // ? shows the shortcuts in a dialog; Escape closes it.
    press(c, '?').await;
    let dialog = c
        .execute(
            "var d = document.getElementById('shortcuts'); return d && d.open ? document.getElementById(d.getAttribute('aria-labelledby')).textContent + '|' + d.querySelectorAll('kbd').length : null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dialog.as_str(), Some("Keyboard shortcuts|10"));
    browser.screenshot("inbox_shortcuts").await;
    press(c, Key::Escape.into()).await;
    let open = c
        .execute("return document.getElementById('shortcuts').open;", vec![])
        .await
        .unwrap();
    assert_eq!(open.as_bool(), Some(false));
    // / focuses the search box when there is one; without one nothing moves.
    let before = c.current_url().await.unwrap();
    press(c, '/').await;
    let has_search = c.find(Locator::Id("search-q")).await.is_ok();
    let active_id = c.active_element().await.unwrap().attr("id").await.unwrap();
    if has_search {
        assert_eq!(active_id.as_deref(), Some("search-q"));
        press(c, Key::Escape.into()).await;
        c.execute("document.activeElement.blur(); return null;", vec![])
            .await
            .unwrap();
    }
    assert_eq!(c.current_url().await.unwrap(), before);
    // o opens the selected message; there r replies.
    select_row(c, 1).await;
    press(c, 'o').await;
    until("the message", || async { h1(c).await == "Note 1" }).await;
    press(c, 'r').await;
    until("the reply form", || async {
        c.find(Locator::Id("text")).await.is_ok()
    })
    .await;
    let url = c.current_url().await.unwrap();
    assert!(url.as_str().contains("mode=reply&"), "{url}");
    // Typing in a field is typing, not a shortcut.
    let to = c.find(Locator::Id("cc")).await.unwrap();
    to.send_keys("jkrc").await.unwrap();
    assert_eq!(c.current_url().await.unwrap(), url);
    assert_eq!(to.prop("value").await.unwrap().as_deref(), Some("jkrc"));
    // Back in the list: f forwards the selected message, c composes.
    c.goto(&rig.api.url(&format!("/inbox/{bob}")))
        .await
        .unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;
    press(c, 'j').await;
    press(c, 'f').await;
    until("the forward form", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.as_str().contains("mode=forward"))
    })
    .await;
    c.goto(&rig.api.url(&format!("/inbox/{bob}")))
        .await
        .unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;
    press(c, 'c').await;
    until("the compose form", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().ends_with("/compose"))
    })
    .await;
    // The opened message is no longer bold.
    c.goto(&rig.api.url(&format!("/inbox/{bob}")))
        .await
        .unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;
    let unread = c.find_all(Locator::Css("#rows tr.unread")).await.unwrap();
    assert_eq!(unread.len(), 3, "four messages, one opened");
    browser.close().await;
}

/// Selects row `n` (0-based) with j from the top.
async fn select_row(c: &fantoccini::Client, n: usize) {
    c.execute("var r = document.querySelector('#rows tr.selected'); if (r) r.classList.remove('selected'); document.activeElement.blur(); return null;", vec![])
        .await
        .unwrap();
    for _ in 0..=n {
        press(c, 'j').await;
    }
}

#[tokio::test]
async fn compose_with_javascript_uploads_a_5_mb_file_and_sends_it_byte_exact() {
    // 5 MB: above the 4 MiB a form may post itself, so only the presigned upload sends it.
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let bob = addr("bob");
    let raw = plain("alice@example.org", &bob, "Hello", "h1@example.org", "x");
    rig.file(&bob, rig.now() - Duration::hours(1), &raw).await;
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let dir = std::env::temp_dir().join(unique("upload"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("figures.bin");
    std::fs::write(&file, &data).unwrap();
    let browser = Browser::start().await;
    let c = &browser.client;
    sign_in(c, &rig, &bob).await;
    c.goto(&rig.api.url(&format!("/inbox/{bob}/compose")))
        .await
        .unwrap();
    let token = unique("jsupload").replace('-', "");
    // A file input takes the file's path as its keys.
    for (id, text) in [
        ("to", "zed@example.org"),
        ("subject", token.as_str()),
        ("files", file.to_str().unwrap()),
    ] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Id("send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the sent message", || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().contains("/messages/"))
    })
    .await;
    let out = sent_with(&token).await;
    assert_eq!(out.len(), 1);
    let m = mail_parser::MessageParser::default()
        .parse(out[0].2.as_bytes())
        .unwrap();
    let atts: Vec<_> = m.attachments().collect();
    assert_eq!(atts.len(), 1);
    assert!(atts[0].contents() == data.as_slice(), "byte-exact");
    browser.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
