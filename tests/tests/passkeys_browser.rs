//! Sign-in in a real browser (Debian chromium, headless, phone-sized, through chromedriver), U11:
//! the sign-in by code on a phone (the SMS read from moto), then a passkey enrolled with Chrome's
//! virtual authenticator (WebDriver's virtual authenticator commands) and used to sign in again
//! with the identity provider unreachable and no SMS (a user's session, never an administrator's);
//! out of the directory, or revoked by an administrator (which also ends the user's sessions), it
//! no longer signs in. Screenshots are saved as test artifacts.

use async_trait::async_trait;
use chrono::Duration;
use fantoccini::Locator;
use integration_tests::browser::{until, Browser};
use integration_tests::inbox_support::{addr, plain, InboxRig, ORG};
use integration_tests::sign_in_support::*;
use integration_tests::{sms_to, t};
use jsonwebtoken::jwk::JwkSet;
use shared::domain::identity::AuthError;
use shared::ports::identity::JwksSource;
use shared::ports::store::{ContinuityViews, PasskeyStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The identity provider's keys, which a test can take down (its JWKS endpoint unreachable).
struct Switchable {
    keys: Arc<JwkSet>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl JwksSource for Switchable {
    async fn keys(&self, _refresh: bool) -> Result<Arc<JwkSet>, AuthError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(AuthError::Keys("connection refused".into()));
        }
        Ok(self.keys.clone())
    }
}

async fn text_of(c: &fantoccini::Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn fill(c: &fantoccini::Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.expect(id);
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn click(c: &fantoccini::Client, id: &str) {
    click_at(c, Locator::Id(id), id).await;
}

async fn click_css(c: &fantoccini::Client, css: &str) {
    click_at(c, Locator::Css(css), css).await;
}

async fn click_at(c: &fantoccini::Client, at: Locator<'_>, what: &str) {
    c.find(at).await.expect(what).click().await.expect("click");
}

#[tokio::test]
async fn a_phone_signs_in_by_code_then_enrols_a_passkey_that_signs_in_without_the_identity_provider(
) {
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    // WebAuthn needs a domain name: the portal is http://localhost:{port} (a secure context).
    let rig = InboxRig::start_with(t("2026-11-23T10:00:00Z"), move |s| {
        s.settings.portal_base_url = s.settings.portal_base_url.replace("127.0.0.1", "localhost");
        let keys = s
            .local_issuer
            .as_ref()
            .map(|i| i.jwks())
            .expect("local issuer");
        s.verifier = shared::app::auth::JwtVerifier::new(
            s.verifier.settings.clone(),
            Arc::new(Switchable { keys, down: switch }),
        );
    })
    .await;
    let site = rig.api.base.replace("127.0.0.1", "localhost");
    let bob = addr("bob");
    let mobile = phone();
    import(&rig, vec![user(&bob, Some(&mobile), None)]).await;
    rig.file(
        &bob,
        rig.now() - Duration::minutes(2),
        &plain(
            "alice@example.org",
            &bob,
            "Where is everyone?",
            "w@example.org",
            "x",
        ),
    )
    .await;

    let browser = Browser::start().await;
    let c = &browser.client;
    // 1. On a phone, without a session: the page offers every way in; a code by SMS.
    c.goto(&format!("{site}/inbox/{bob}")).await.expect("goto");
    until("the sign-in page", || async {
        c.find(Locator::Id("address")).await.is_ok()
    })
    .await;
    browser.screenshot("sign_in_start_phone").await;
    fill(c, "address", &bob).await;
    click(c, "send-code").await;
    until("the code form", || async {
        c.find(Locator::Id("code")).await.is_ok()
    })
    .await;
    let code = sms_codes(&mobile).await.remove(0);
    fill(c, "code", &code).await;
    let shot = browser.screenshot("sign_in_code_phone").await;
    assert!(shot.exists());
    click(c, "sign-in").await;
    until("the inbox after the code", || async {
        text_of(c, "body").await.contains("Where is everyone?")
    })
    .await;

    // 2. In normal times, the signed-in user enrols a passkey (the virtual authenticator).
    let authenticator = browser.virtual_authenticator().await;
    c.goto(&format!("{site}/auth/passkeys"))
        .await
        .expect("goto");
    until("the passkeys page's button", || async {
        c.find(Locator::Id("passkey-add")).await.ok().is_some()
            && text_of(c, "#passkey").await.contains("Add a passkey")
    })
    .await;
    fill(c, "passkey-label", "Bob's phone").await;
    click(c, "passkey-add").await;
    until("the passkey listed", || async {
        text_of(c, "#passkeys").await.contains("Bob's phone")
    })
    .await;
    browser.screenshot("passkey_enrolled").await;
    let creds = browser.credentials(&authenticator).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(
        creds[0]["isResidentCredential"], true,
        "a discoverable passkey"
    );
    let audit = rig
        .api
        .store()
        .audit(
            ORG,
            rig.now() - Duration::hours(1),
            rig.now() + Duration::hours(1),
            10,
        )
        .await
        .expect("audit");
    assert!(audit
        .iter()
        .any(|r| r.what == "passkey-enrol" && r.who == format!("user:{bob}")));
    // The user removes it (the page's form, no JavaScript; audited), then enrols it again: the
    // authenticator keeps one passkey for bob here, the one the service now knows.
    click_css(c, "#passkeys form button").await;
    until("no passkey left", || async {
        c.find(Locator::Id("none")).await.is_ok()
    })
    .await;
    assert!(rig
        .api
        .store()
        .passkeys(ORG, &bob)
        .await
        .expect("passkeys")
        .is_empty());
    let audit = rig
        .api
        .store()
        .audit(
            ORG,
            rig.now() - Duration::hours(1),
            rig.now() + Duration::hours(1),
            10,
        )
        .await
        .expect("audit");
    assert!(audit
        .iter()
        .any(|r| r.what == "passkey-remove" && r.who == format!("user:{bob}")));
    until("the passkeys page's button", || async {
        text_of(c, "#passkey").await.contains("Add a passkey")
    })
    .await;
    fill(c, "passkey-label", "Bob's phone").await;
    click(c, "passkey-add").await;
    until("the passkey listed again", || async {
        text_of(c, "#passkeys").await.contains("Bob's phone")
    })
    .await;
    assert_eq!(browser.credentials(&authenticator).await.len(), 1);

    // 3. The outage: the identity provider is unreachable, the session gone. The passkey signs
    // in with no SMS sent.
    down.store(true, Ordering::SeqCst);
    let (status, _) = rig.get(&rig.token("bob", false), "/api/v1/mailboxes").await;
    assert_eq!(
        status, 503,
        "the identity provider's tokens cannot be checked"
    );
    c.delete_all_cookies().await.expect("cookies");
    let sms_before = sms_to(&mobile).await.len();
    c.goto(&format!("{site}/inbox/{bob}")).await.expect("goto");
    until("the passkey button", || async {
        c.find(Locator::Id("passkey-sign-in")).await.is_ok()
            && c.find(Locator::Css("#passkey[hidden]")).await.is_err()
    })
    .await;
    click(c, "passkey-sign-in").await;
    until("the inbox after the passkey", || async {
        text_of(c, "body").await.contains("Where is everyone?")
    })
    .await;
    let shot = browser.screenshot("passkey_sign_in_phone").await;
    assert!(shot.exists());
    assert_eq!(
        sms_to(&mobile).await.len(),
        sms_before,
        "no SMS for a passkey"
    );
    // The passkey's session is bob's, never an administrator's.
    let cookie = c
        .get_named_cookie("ec_session")
        .await
        .expect("session cookie");
    let cookie = format!("ec_session={}", cookie.value());
    let me = get_with(&rig.api, &cookie, "/auth/me").await;
    let me: serde_json::Value = serde_json::from_str(&me.body).expect("json");
    assert_eq!(
        (me["method"].as_str(), me["admin"].as_bool()),
        (Some("passkey"), Some(false))
    );
    assert_eq!(me["email"], bob.as_str());
    let admin = get_with(&rig.api, &cookie, "/api/v1/admin/users").await;
    assert_eq!(admin.status, 403, "a passkey never opens the admin API");

    // Taken out of the directory, bob's passkey no longer signs in (it is kept: put back, he
    // could use it again); no session is opened.
    import(&rig, vec![user(&addr("carol"), Some(&phone()), None)]).await;
    c.delete_all_cookies().await.expect("cookies");
    c.goto(&format!("{site}/auth/start")).await.expect("goto");
    until("the passkey button", || async {
        c.find(Locator::Css("#passkey[hidden]")).await.is_err()
            && c.find(Locator::Id("passkey-sign-in")).await.is_ok()
    })
    .await;
    click(c, "passkey-sign-in").await;
    until("the refusal", || async {
        text_of(c, "#passkey-status")
            .await
            .contains("not available for your account")
    })
    .await;
    assert!(
        c.get_named_cookie("ec_session").await.is_err(),
        "no session"
    );
    import(&rig, vec![user(&bob, Some(&mobile), None)]).await;

    // 4. An administrator revokes bob's passkeys (audited): the passkey no longer signs in, and
    // the sessions the service opened for bob (the code's, the passkey's) are over.
    down.store(false, Ordering::SeqCst);
    let admin = rig.token("admin", true);
    let (status, v) = rig
        .send_json(
            reqwest::Method::DELETE,
            &admin,
            &format!("/api/v1/admin/users/{bob}/passkeys"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["removed"], 1);
    assert_eq!(v["sessions_ended"], 2, "{v}");
    assert_eq!(get_with(&rig.api, &cookie, "/auth/me").await.status, 401);
    c.delete_all_cookies().await.expect("cookies");
    c.goto(&format!("{site}/auth/start")).await.expect("goto");
    until("the passkey button", || async {
        c.find(Locator::Css("#passkey[hidden]")).await.is_err()
            && c.find(Locator::Id("passkey-sign-in")).await.is_ok()
    })
    .await;
    click(c, "passkey-sign-in").await;
    until("the refusal", || async {
        text_of(c, "#passkey-status").await.contains("No sign-in")
    })
    .await;
    assert!(text_of(c, "#passkey-status")
        .await
        .contains("not known here"));
    let audit = rig
        .api
        .store()
        .audit(
            ORG,
            rig.now() - Duration::hours(1),
            rig.now() + Duration::hours(1),
            10,
        )
        .await
        .expect("audit");
    assert!(audit.iter().any(|r| r.what == "passkeys-revoke"));
    browser.close().await;
}
