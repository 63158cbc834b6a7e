//! The portal in a real browser (Debian chromium, headless, phone-sized window): open an alert
//! link, activate for 4 h, read the confirmation and the end, extend by 1 h and see the end move
//! by 1 h, suspend notifications, stop. Screenshots are saved as test artifacts.

use fantoccini::Locator;
use integration_tests::api::ApiRig;
use integration_tests::browser::Browser;
use integration_tests::portal_support::org_with_link;
use integration_tests::t;
use shared::ports::store::ContinuityViews;

const NOW: &str = "2026-11-23T10:00:00Z";

async fn text(b: &Browser, css: &str) -> String {
    // An element found just as a navigation replaces the page goes stale: find it again (the
    // page is the new one by then); any other error, or 10 s of staleness, fails the test.
    let mut last = String::new();
    for _ in 0..100 {
        match b.client.find(Locator::Css(css)).await {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css}: {last}")
}

/// Presses the button of `form_action` labelled `label`.
async fn press(b: &Browser, link: &str, form_action: &str, label: &str) {
    let css = format!("form[action$='/{form_action}'] button");
    let buttons = b
        .client
        .find_all(Locator::Css(&css))
        .await
        .expect("buttons");
    for button in buttons {
        if button.text().await.unwrap_or_default().trim() == label {
            button.click().await.expect("click");
            arrived(b, link, form_action).await;
            return;
        }
    }
    panic!("no button {label:?} in the {form_action} form");
}

/// Waits for the browser to show the answer to the form posted to `/{form_action}` (a click
/// returns when the navigation starts, not when the new page is there).
async fn arrived(b: &Browser, link: &str, form_action: &str) {
    let url = url::Url::parse(&format!("{link}/{form_action}")).expect("url");
    b.client
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_url(&url)
        .await
        .expect("the form's answer");
    b.client
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::Css("#mode"))
        .await
        .expect("the page");
}

#[tokio::test]
async fn an_administrator_manages_an_event_from_a_phone() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "Europe/Paris").await;
    let b = Browser::start().await;
    let link = rig.url(&format!("/l/{token}"));
    b.client.goto(&link).await.expect("open link");
    assert_eq!(text(&b, "#mode").await, "Continuity mode: Inactive");
    b.screenshot("portal-1-inactive").await;

    press(&b, &link, "activate", "4 h").await;
    let heading = text(&b, "#confirmation h2").await;
    assert_eq!(heading, "Continuity mode activated");
    let end = text(&b, "#confirmed-end").await;
    assert!(end.contains("2026-11-23 14:00 UTC"), "{end}");
    assert!(end.contains("15:00 CET (Europe/Paris)"), "{end}");
    assert_eq!(text(&b, "#mode").await, "Continuity mode: Active");
    b.screenshot("portal-2-activated").await;

    press(&b, &link, "extend", "1 h").await;
    assert_eq!(
        text(&b, "#confirmation h2").await,
        "Continuity mode extended"
    );
    let end = text(&b, "#confirmed-end").await;
    assert!(
        end.contains("2026-11-23 15:00 UTC"),
        "the end moved by 1 h: {end}"
    );

    press(&b, &link, "suspend", "12 h").await;
    assert_eq!(
        text(&b, "#confirmation h2").await,
        "Notifications suspended"
    );
    assert!(text(&b, "#suspension")
        .await
        .contains("2026-11-23 22:00 UTC"));

    b.client
        .find(Locator::Css("form[action$='/stop'] button"))
        .await
        .expect("stop button")
        .click()
        .await
        .expect("click");
    arrived(&b, &link, "stop").await;
    assert_eq!(
        text(&b, "#confirmation h2").await,
        "Continuity mode was ended"
    );
    assert_eq!(text(&b, "#mode").await, "Continuity mode: Inactive");
    let path = b.screenshot("portal-3-stopped").await;
    assert!(std::fs::metadata(&path)
        .map(|m| m.len() > 1000)
        .unwrap_or(false));

    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_stopped_at, Some(t(NOW)));
    assert_eq!(s.suspended_until, Some(t("2026-11-23T22:00:00Z")));
    b.close().await;
}
