//! The Online Inbox as an app people use on a phone (issue 17), in a real browser (Debian
//! chromium, headless, through chromedriver), phone-sized (390 x 844, touch) and desktop-sized:
//! sign in, the list, a message, a reply; the draft kept on the device across a new load and
//! dropped once sent; the service worker installed, then the network switched off (DevTools'
//! offline emulation, and the service stopped) and the inbox still opening from what the device kept, with the offline
//! banner; sign-out clearing what was kept; the reading pane beside the list on a wide screen;
//! axe-core on every page, search included (zero serious or critical violations) and a screenshot of each as a
//! test artifact (`target/test-artifacts/app_*.png`).

use chrono::Duration;
use fantoccini::{Client, Locator};
use integration_tests::browser::{until, Browser};
use integration_tests::inbox_support::{addr, plain, InboxRig};
use integration_tests::portal_support::org_with_link;
use integration_tests::{t, unique};

const NOW: &str = "2026-11-23T10:00:00Z";

/// The page's first heading; empty while a page is loading.
async fn h1(c: &Client) -> String {
    match c.find(Locator::Css("h1")).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits for the element of id `id` (`what` names the page in a failure).
async fn shown(c: &Client, id: &str, what: &str) {
    until(what, || async { c.find(Locator::Id(id)).await.is_ok() }).await;
}

/// Clicks the element `l` finds.
async fn click(c: &Client, l: Locator<'_>) {
    c.find(l)
        .await
        .expect("the element")
        .click()
        .await
        .expect("click");
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

async fn js_async(c: &Client, script: &str) -> serde_json::Value {
    c.execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// axe-core on the page shown (zero serious or critical violations), one `h1`, no horizontal
/// scrolling, and a screenshot named `app_{name}`.
async fn check_page(b: &Browser, name: &str) {
    let violations = b.axe().await;
    let shot = b.screenshot(&format!("app_{name}")).await;
    assert!(
        violations.is_empty(),
        "{name}: axe-core found serious or critical violations (screenshot {}): {:#?}",
        shot.display(),
        violations
    );
    let h1s = js(&b.client, "return document.querySelectorAll('h1').length;").await;
    assert_eq!(h1s, 1, "{name}: one h1 per page");
    let overflow = js(
        &b.client,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    )
    .await;
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "{name}: scrolls sideways by {overflow} px"
    );
}

/// Every control a finger uses (buttons, fields, the header's links, the list's links) is at
/// least 44 x 44 CSS pixels: the ones that are not, by tag and text.
async fn small_targets(c: &Client) -> Vec<serde_json::Value> {
    let v = js(
        c,
        "return Array.from(document.querySelectorAll(
            'header a, nav a, .btn, button, select, textarea, input:not([type=hidden]), #rows a'))
          .filter(e => e.offsetParent !== null)
          .map(e => [e, e.getBoundingClientRect()])
          .filter(([e, r]) => r.width < 44 || r.height < 44)
          .map(([e, r]) => e.tagName + ' ' + (e.textContent || e.id).trim().slice(0, 30)
                           + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));",
    )
    .await;
    v.as_array().cloned().unwrap_or_default()
}

/// Opens `path`, is sent to the sign-in page, signs in as `who` with the local form (the
/// organisation's account), and waits for the list. Checks the two sign-in pages on the way.
async fn sign_in(b: &Browser, rig: &InboxRig, path: &str, who: &str, tag: &str) {
    let c = &b.client;
    c.goto(&rig.api.url(path)).await.unwrap();
    shown(c, "idp", "the ways in").await;
    check_page(b, &format!("{tag}_sign_in")).await;
    click(c, Locator::Id("idp")).await;
    shown(c, "email", "the sign-in form").await;
    check_page(b, &format!("{tag}_sign_in_form")).await;
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(who)
        .await
        .unwrap();
    click(c, Locator::Css("button[type=submit]")).await;
    until("the list after sign-in", || async {
        c.find(Locator::Id("rows")).await.is_ok() && c.find(Locator::Id("email")).await.is_err()
    })
    .await;
}

/// The URLs the service worker's caches hold, paths only.
async fn cached_paths(c: &Client) -> Vec<String> {
    let v = js_async(
        c,
        "const done = arguments[arguments.length - 1];
         caches.keys().then(names => Promise.all(names.map(n => caches.open(n).then(k => k.keys()))))
           .then(all => done(all.flat().map(r => new URL(r.url).pathname + new URL(r.url).search)))
           .catch(e => done(['error: ' + e]));",
    )
    .await;
    v.as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect()
}

/// Files `n` plain messages in `mailbox`, the newest a minute before now; their subjects.
async fn file_some(rig: &InboxRig, mailbox: &str, n: i64, tag: &str) -> Vec<String> {
    let now = rig.now();
    let mut subjects = vec![];
    for i in 0..n {
        let subject = format!("{tag} {i}");
        rig.file(
            mailbox,
            now - Duration::minutes(1 + i),
            &plain(
                "Alice Example <alice@example.org>",
                mailbox,
                &subject,
                &format!("{}@example.org", unique("m")),
                &format!("Body of {subject}: shall we meet at noon?"),
            ),
        )
        .await;
        subjects.push(subject);
    }
    subjects
}

#[tokio::test]
async fn on_a_phone_the_inbox_reads_replies_keeps_a_draft_and_opens_offline() {
    let rig = InboxRig::start(t(NOW)).await;
    let bob = addr("bob");
    let token = unique("Lunch");
    let subjects = file_some(&rig, &bob, 12, &token).await;
    let b = Browser::start_sized(390, 844).await;
    b.phone().await;
    let c = &b.client;
    let list = format!("/inbox/{bob}");
    sign_in(&b, &rig, &list, &bob, "phone").await;
    check_page(&b, "phone_list").await;
    assert_eq!(small_targets(c).await, Vec::<serde_json::Value>::new());

    // Search from the header's box (Enter submits it), then a result opened.
    c.find(Locator::Id("search-q"))
        .await
        .unwrap()
        .send_keys("noon\u{E007}")
        .await
        .unwrap();
    until("the search results", || async { h1(c).await == "Search" }).await;
    shown(c, "results", "the results").await;
    check_page(&b, "phone_search").await;
    click(c, Locator::LinkText(&subjects[5])).await;
    until("the result opened", || async { h1(c).await == subjects[5] }).await;
    c.goto(&rig.api.url(&list)).await.unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;

    // The service worker installs and takes the page over; the list is loaded again under it
    // (kept), as it is on any later visit.
    let ready = js_async(
        c,
        "const done = arguments[arguments.length - 1];
         navigator.serviceWorker.ready.then(r => done(r.scope)).catch(e => done('error: ' + e));",
    )
    .await;
    assert_eq!(ready, rig.api.url("/inbox"), "the worker's scope");
    until("the worker controls the page", || async {
        js(c, "return !!navigator.serviceWorker.controller;").await == true
    })
    .await;
    c.goto(&rig.api.url(&list)).await.unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;

    // A message, full screen (a link to its own page on a phone).
    click(c, Locator::LinkText(&subjects[0])).await;
    until("the message", || async { h1(c).await == subjects[0] }).await;
    let message_url = c.current_url().await.unwrap();
    assert!(message_url.path().contains("/messages/"), "{message_url}");
    check_page(&b, "phone_message").await;
    assert_eq!(small_targets(c).await, Vec::<serde_json::Value>::new());

    // Reply: the draft is kept on the device and comes back on a new load of the form.
    click(c, Locator::LinkText("Reply")).await;
    shown(c, "text", "the reply form").await;
    check_page(&b, "phone_compose").await;
    assert_eq!(small_targets(c).await, Vec::<serde_json::Value>::new());
    let compose_url = c.current_url().await.unwrap();
    let text = c.find(Locator::Id("text")).await.unwrap();
    text.send_keys("Noon works. ").await.unwrap();
    let typed = text.prop("value").await.unwrap().unwrap_or_default();
    assert!(typed.contains("Noon works."), "{typed}");
    c.goto(&rig.api.url("/inbox")).await.unwrap();
    c.goto(compose_url.as_str()).await.unwrap();
    until("the reply form again", || async {
        c.find(Locator::Id("draft-note")).await.ok().is_some()
    })
    .await;
    until("the restored draft", || async {
        match c.find(Locator::Id("text")).await {
            Ok(e) => e.prop("value").await.ok().flatten().unwrap_or_default() == typed,
            Err(_) => false,
        }
    })
    .await;
    let note = c
        .find(Locator::Id("draft-note"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(note, "Draft restored from this device.");
    let drafts = "return Object.keys(localStorage).filter(k => k.startsWith('draft:'));";
    assert_eq!(js(c, drafts).await.as_array().map(Vec::len), Some(1));
    // Sent: the draft is gone.
    click(c, Locator::Id("send")).await;
    let reply = format!("Re: {}", subjects[0]);
    until("the sent reply", || async { h1(c).await == reply }).await;
    assert_eq!(js(c, drafts).await, serde_json::json!([]));

    // What the worker kept: pages under /inbox and the shell, never a compose form, the API,
    // alert links or sign-in.
    let kept = cached_paths(c).await;
    assert!(kept.iter().any(|p| p == &list), "{kept:?}");
    assert!(kept.iter().any(|p| p == message_url.path()), "{kept:?}");
    for p in &kept {
        assert!(
            (p.starts_with("/inbox") || p.starts_with("/static/"))
                && !p.contains("/compose")
                && !p.starts_with("/api/")
                && !p.starts_with("/l/")
                && !p.starts_with("/auth/"),
            "kept {p}: {kept:?}"
        );
    }

    // No network: the list and the message open from the device, saying so. DevTools' offline
    // switch reaches the page but not the service worker's own requests (a worker is a target
    // of its own), so the service stops answering too.
    b.offline(true).await;
    rig.api.serve(false).await;
    c.goto(&rig.api.url(&list)).await.unwrap();
    shown(c, "offline", "the offline list").await;
    let banner = c
        .find(Locator::Id("offline"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        banner.starts_with("You are offline; showing mail saved on this device at "),
        "{banner}"
    );
    assert!(c.find(Locator::LinkText(&subjects[0])).await.is_ok());
    check_page(&b, "phone_offline_list").await;
    c.goto(message_url.as_str()).await.unwrap();
    until("the offline message", || async {
        h1(c).await == subjects[0] && c.find(Locator::Id("offline")).await.is_ok()
    })
    .await;
    check_page(&b, "phone_offline_message").await;
    // A message never opened on this device: the offline page.
    c.goto(&rig.api.url(&format!("{list}/messages/never-opened")))
        .await
        .unwrap();
    until("the offline page", || async {
        h1(c).await == "You are offline"
    })
    .await;
    check_page(&b, "phone_offline_page").await;

    // Back online, signing out leaves nothing on the device.
    b.offline(false).await;
    rig.api.serve(true).await;
    c.goto(&rig.api.url(&list)).await.unwrap();
    until("the list online", || async {
        h1(c).await == "Inbox" && c.find(Locator::Id("offline")).await.is_err()
    })
    .await;
    click(c, Locator::Css("#sign-out button")).await;
    shown(c, "idp", "the sign-in page after sign-out").await;
    assert_eq!(cached_paths(c).await, Vec::<String>::new());
    assert_eq!(js(c, drafts).await, serde_json::json!([]));
    b.close().await;
}

#[tokio::test]
async fn on_a_desktop_a_message_opens_beside_the_list_and_every_page_passes_axe() {
    let rig = InboxRig::start(t(NOW)).await;
    let bob = addr("bob");
    let subjects = file_some(&rig, &bob, 5, &unique("Report")).await;
    let b = Browser::start_sized(1280, 900).await;
    let c = &b.client;
    let list = format!("/inbox/{bob}");
    sign_in(&b, &rig, &list, &bob, "desktop").await;
    check_page(&b, "desktop_list").await;
    c.goto(&rig.api.url(&format!("{list}/search?q=noon")))
        .await
        .unwrap();
    shown(c, "results", "the search results").await;
    check_page(&b, "desktop_search").await;
    c.goto(&rig.api.url(&list)).await.unwrap();
    until("the list", || async { h1(c).await == "Inbox" }).await;

    // The reading pane: the message beside the list, the address unchanged, one h1 still.
    click(c, Locator::LinkText(&subjects[1])).await;
    until("the message in the pane", || async {
        match c.find(Locator::Css("#pane h2")).await {
            Ok(e) => e.text().await.unwrap_or_default() == subjects[1],
            Err(_) => false,
        }
    })
    .await;
    assert_eq!(c.current_url().await.unwrap().path(), list);
    let body = c
        .find(Locator::Css("#pane .body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("shall we meet at noon?"), "{body}");
    let side_by_side = js(
        c,
        "const l = document.querySelector('.list-col').getBoundingClientRect();
         const p = document.getElementById('pane').getBoundingClientRect();
         return p.left >= l.right && p.top < l.bottom;",
    )
    .await;
    assert_eq!(side_by_side, true, "the pane is beside the list");
    check_page(&b, "desktop_reading_pane").await;
    // Reply from the pane: the compose page.
    click(c, Locator::Css("#pane a.btn")).await;
    shown(c, "text", "the reply form").await;
    check_page(&b, "desktop_compose").await;

    // The message's own page, the mailboxes, the one-time code page, the portal.
    c.goto(&rig.api.url("/inbox")).await.unwrap();
    until("the mailboxes", || async {
        h1(c).await == "Your mailboxes"
    })
    .await;
    check_page(&b, "desktop_mailboxes").await;
    click(c, Locator::LinkText(&bob)).await;
    until("the list", || async { h1(c).await == "Inbox" }).await;
    let href = c
        .find(Locator::LinkText(&subjects[2]))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    c.goto(&rig.api.url(&href)).await.unwrap();
    until("the message page", || async { h1(c).await == subjects[2] }).await;
    check_page(&b, "desktop_message").await;
    c.goto(&rig.api.url("/auth/code")).await.unwrap();
    until("the code page", || async {
        h1(c).await == "Sign in with a code"
    })
    .await;
    check_page(&b, "desktop_code").await;
    let link = org_with_link(&rig.api, "portalorg", "UTC").await;
    c.goto(&rig.api.url(&format!("/l/{link}"))).await.unwrap();
    until("the portal", || async {
        c.find(Locator::Css("main")).await.is_ok() && !h1(c).await.is_empty()
    })
    .await;
    check_page(&b, "desktop_portal").await;
    b.close().await;
}

#[tokio::test]
async fn on_a_phone_the_portal_and_the_code_pages_pass_axe() {
    let rig = InboxRig::start(t(NOW)).await;
    let b = Browser::start_sized(390, 844).await;
    b.phone().await;
    let c = &b.client;
    let link = org_with_link(&rig.api, "portalorg", "UTC").await;
    c.goto(&rig.api.url(&format!("/l/{link}"))).await.unwrap();
    until("the portal", || async { !h1(c).await.is_empty() }).await;
    check_page(&b, "phone_portal").await;
    c.goto(&rig.api.url("/auth/code")).await.unwrap();
    until("the code page", || async {
        h1(c).await == "Sign in with a code"
    })
    .await;
    check_page(&b, "phone_code").await;
    assert_eq!(small_targets(c).await, Vec::<serde_json::Value>::new());
    b.close().await;
}
