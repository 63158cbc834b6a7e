//! Sign-in with one-time codes (U11) against DynamoDB Local and moto (SNS for the SMS, SES for
//! the email to the alternate address), through the HTTP API as a browser posts its forms: a code
//! by SMS and by email signs in and the Online Inbox opens; wrong codes lock; expired, reused and
//! borrowed codes are refused; an unknown address answers exactly as a known one; the limit per
//! address (the limit per source address is an attack of `attacks/edge.rs`); an organisation that offers codes only during events; and all of it
//! with the identity provider unreachable. Every refusal also checks that nothing changed (no
//! session, no code sent, the stored code as it was).

use chrono::Duration;
use integration_tests::api::{ApiRig, AUDIENCE, ISSUER};
use integration_tests::inbox_support::{addr, plain, InboxRig, ORG};
use integration_tests::sign_in_support::*;
use integration_tests::{emails_to, inbound_org, sms_to, t};
use shared::domain::continuity::{Action, Via};
use shared::domain::sign_in::{ADDRESS_REQUESTS_PER_HOUR, MAX_TRIES};
use shared::ports::store::{ConfigStore, ContinuityStore, SignInStore};

const NOW: &str = "2026-11-23T10:00:00Z";

/// acme with `users` in its directory, and one message in bob's inbox.
async fn rig_with(users: Vec<shared::domain::directory::DirectoryUser>) -> InboxRig {
    let rig = InboxRig::start(t(NOW)).await;
    import(&rig, users).await;
    rig
}

/// Stores `cfg` as acme's configuration.
async fn configure(rig: &InboxRig, cfg: &shared::domain::config::OrgConfig) {
    rig.api
        .store()
        .put_config(cfg, rig.now())
        .await
        .expect("config");
}

/// The page a refused code shows keeps the user on the code form.
fn refused(a: &Answer, status: u16, says: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(a.cookie.is_none(), "no session on a refusal");
    assert!(a.body.contains(says), "{says:?} in {}", a.body);
}

#[tokio::test]
async fn a_code_by_sms_signs_in_and_the_inbox_opens() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    rig.file(
        &bob,
        rig.now() - Duration::minutes(5),
        &plain(
            "alice@example.org",
            &bob,
            "Quarterly figures",
            "q@example.org",
            "x",
        ),
    )
    .await;
    let http = client_from("127.0.0.1");
    // moto keeps every message of the run (other tests mail bob): count, do not expect none.
    let mailed = emails_to(&bob).await.len();
    let a = request_code(&rig.api, &http, &bob).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Enter your code"));
    let codes = sms_codes(&mobile).await;
    assert_eq!(codes.len(), 1, "one SMS with the code");
    let sms = &sms_to(&mobile).await[0];
    assert!(sms.contains("expires in 10 minutes"), "{sms}");
    assert!(
        sms.ends_with(&format!("#{}", codes[0])),
        "WebOTP line: {sms}"
    );
    assert_eq!(
        emails_to(&bob).await.len(),
        mailed,
        "never to the failing mailbox"
    );

    let a = enter_code(&rig.api, &http, &bob, &codes[0]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location.as_deref(), Some("/inbox"));
    let cookie = a.cookie.expect("session cookie");
    let inbox = get_with(&rig.api, &cookie, &format!("/inbox/{bob}")).await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("Quarterly figures"));
    // Who they are: the directory's user, signed in by code, never an administrator.
    let me = get_with(&rig.api, &cookie, "/auth/me").await;
    let me: serde_json::Value = serde_json::from_str(&me.body).expect("json");
    assert_eq!(me["org_id"], ORG);
    assert_eq!(me["email"], bob.as_str());
    assert_eq!(me["method"], "code");
    assert_eq!(me["admin"], false);
    let admin = get_with(&rig.api, &cookie, "/api/v1/admin/users").await;
    assert_eq!(admin.status, 403, "a code never opens the admin API");
    // Another user's mailbox stays closed.
    let other = get_with(&rig.api, &cookie, &format!("/inbox/{}", addr("carol"))).await;
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn a_code_by_email_to_the_alternate_address_signs_in_and_sign_out_ends_the_session() {
    let carol = addr("carol");
    let alternate = home("carol");
    let rig = rig_with(vec![user(&carol, None, Some(&alternate))]).await;
    let http = client_from("127.0.0.1");
    let mailed = emails_to(&carol).await.len();
    assert_eq!(request_code(&rig.api, &http, &carol).await.status, 200);
    let codes = email_codes(&alternate).await;
    assert_eq!(codes.len(), 1, "the code by email to the alternate address");
    assert_eq!(
        emails_to(&carol).await.len(),
        mailed,
        "never to the work mailbox"
    );
    let a = enter_code(&rig.api, &http, &carol, &codes[0]).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let cookie = a.cookie.expect("cookie");
    assert_eq!(
        get_with(&rig.api, &cookie, &format!("/inbox/{carol}"))
            .await
            .status,
        200
    );
    // Signing out ends the session in the table, not only in this browser.
    let out = http
        .post(rig.api.url("/auth/logout"))
        .header("origin", &rig.api.base)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303);
    let after = get_with(&rig.api, &cookie, "/auth/me").await;
    assert_eq!(after.status, 401);
}

#[tokio::test]
async fn five_wrong_codes_lock_the_address_and_concurrent_guesses_spend_five_tries() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    let http = client_from("127.0.0.1");
    request_code(&rig.api, &http, &bob).await;
    let right = sms_codes(&mobile).await.remove(0);
    let wrong = if right == "11111111" {
        "22222222"
    } else {
        "11111111"
    };
    // Twenty guesses at once: five are tried, the rest find the code spent.
    let guesses = (0..20).map(|_| enter_code(&rig.api, &http, &bob, wrong));
    let answers = futures::future::join_all(guesses).await;
    let tried = answers
        .iter()
        .filter(|a| a.body.contains("not right") || a.body.contains("Too many wrong codes"))
        .count();
    assert_eq!(tried, MAX_TRIES as usize, "tries spent under concurrency");
    assert!(answers
        .iter()
        .all(|a| a.status == 401 && a.cookie.is_none()));
    let stored = rig
        .api
        .store()
        .code(&bob)
        .await
        .expect("code")
        .expect("there");
    assert_eq!(stored.tries, MAX_TRIES);
    assert!(stored.locked(rig.now()), "the cool-down started");
    // The right code no longer signs in; a new request during the cool-down sends nothing.
    let a = enter_code(&rig.api, &http, &bob, &right).await;
    refused(&a, 401, "Too many wrong codes");
    assert_eq!(request_code(&rig.api, &http, &bob).await.status, 200);
    assert_eq!(
        sms_codes(&mobile).await.len(),
        1,
        "nothing sent while locked"
    );
    assert_eq!(
        rig.api.store().code(&bob).await.expect("code"),
        Some(stored),
        "the stored code is as it was"
    );
    // After the cool-down, a new code signs in.
    rig.api.clock.advance(Duration::minutes(16));
    request_code(&rig.api, &http, &bob).await;
    let codes = sms_codes(&mobile).await;
    assert_eq!(codes.len(), 2);
    assert_eq!(
        enter_code(&rig.api, &http, &bob, &codes[1]).await.status,
        303
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_and_changes_nothing() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    let http = client_from("127.0.0.1");
    request_code(&rig.api, &http, &bob).await;
    let code = sms_codes(&mobile).await.remove(0);
    let before = rig.api.store().code(&bob).await.expect("code");
    rig.api.clock.advance(Duration::minutes(10));
    let a = enter_code(&rig.api, &http, &bob, &code).await;
    refused(&a, 401, "expired");
    assert_eq!(rig.api.store().code(&bob).await.expect("code"), before);
}

#[tokio::test]
async fn a_code_works_once() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    let http = client_from("127.0.0.1");
    request_code(&rig.api, &http, &bob).await;
    let code = sms_codes(&mobile).await.remove(0);
    assert_eq!(enter_code(&rig.api, &http, &bob, &code).await.status, 303);
    let used = rig.api.store().code(&bob).await.expect("code");
    assert!(used.as_ref().is_some_and(|c| c.used_at.is_some()));
    // The same code again (a second tab, a replayed form): refused, no second session.
    let a = enter_code(&rig.api, &http, &bob, &code).await;
    refused(&a, 401, "already used");
    assert_eq!(rig.api.store().code(&bob).await.expect("code"), used);
}

#[tokio::test]
async fn a_code_for_one_address_does_not_open_another() {
    let (bob, dave) = (addr("bob"), addr("dave"));
    let (pb, pd) = (phone(), phone());
    let rig = rig_with(vec![
        user(&bob, Some(&pb), None),
        user(&dave, Some(&pd), None),
    ])
    .await;
    let http = client_from("127.0.0.1");
    request_code(&rig.api, &http, &bob).await;
    let bobs = sms_codes(&pb).await.remove(0);
    // Dave never asked: no code to match.
    refused(
        &enter_code(&rig.api, &http, &dave, &bobs).await,
        401,
        "No code was asked",
    );
    // Dave asked too: bob's code is a wrong try for dave, and bob's own code still works.
    request_code(&rig.api, &http, &dave).await;
    let daves = sms_codes(&pd).await.remove(0);
    if daves != bobs {
        refused(
            &enter_code(&rig.api, &http, &dave, &bobs).await,
            401,
            "not right",
        );
        let d = rig
            .api
            .store()
            .code(&dave)
            .await
            .expect("c")
            .expect("there");
        assert_eq!((d.tries, d.used_at), (1, None));
    }
    let b = rig.api.store().code(&bob).await.expect("c").expect("there");
    assert_eq!((b.tries, b.used_at), (0, None), "bob's code untouched");
    assert_eq!(enter_code(&rig.api, &http, &bob, &bobs).await.status, 303);
}

#[tokio::test]
async fn an_unknown_address_answers_exactly_as_a_known_one() {
    let carol = addr("carol");
    let alternate = home("carol");
    let rig = rig_with(vec![user(&carol, None, Some(&alternate))]).await;
    let http = client_from("127.0.0.1");
    let store = rig.api.store();
    let mut seen = Vec::new();
    // A user; an address on the organisation's domain that is nobody's; an address on no
    // organisation's domain. Same status, same page (but for the address typed), and the same
    // DynamoDB requests (the SMS budget, for users with a mobile number, is the one more; the
    // answer's floor covers it and the sends).
    for address in [
        carol.clone(),
        addr("nobody"),
        "eve@unknown.example".to_string(),
    ] {
        let before = store.metrics().requests;
        let a = request_code(&rig.api, &http, &address).await;
        let requests = store.metrics().requests - before;
        seen.push((a.status, a.body.replace(&address, "ADDRESS"), requests));
        // Entering a code answers alike too.
        let e = enter_code(&rig.api, &http, &address, "12345678").await;
        let code = store
            .code(&address)
            .await
            .expect("code")
            .expect("stored for everyone");
        assert_eq!(code.tries, 1, "{address}: a try is counted for everyone");
        seen.push((e.status, e.body.replace(&address, "ADDRESS"), 0));
    }
    assert_eq!(seen[0], seen[2], "a user and a nobody on the domain");
    assert_eq!(
        seen[0], seen[4],
        "a user and an address on no organisation's domain"
    );
    assert_eq!(seen[1].0, 401);
    if email_codes(&alternate).await.first().map(String::as_str) != Some("12345678") {
        assert_eq!(seen[1], seen[3]);
        assert_eq!(seen[1], seen[5]);
    }
    assert_eq!(
        email_codes(&alternate).await.len(),
        1,
        "only the user got a code"
    );
    assert!(emails_to(&addr("nobody")).await.is_empty());
}

#[tokio::test]
async fn the_limit_per_address_holds_from_every_source() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    // Per address: the hourly allowance, from any source, then 429 from every source.
    for i in 0..ADDRESS_REQUESTS_PER_HOUR {
        let http = if i % 2 == 0 { &one } else { &two };
        assert_eq!(request_code(&rig.api, http, &bob).await.status, 200);
    }
    let sent = sms_codes(&mobile).await.len();
    assert_eq!(sent, ADDRESS_REQUESTS_PER_HOUR as usize);
    let current = rig.api.store().code(&bob).await.expect("code");
    for http in [&one, &two] {
        let a = request_code(&rig.api, http, &bob).await;
        assert_eq!(a.status, 429, "{}", a.body);
        assert!(a.body.contains("Too many sign-in attempts"));
    }
    assert_eq!(sms_codes(&mobile).await.len(), sent, "nothing more sent");
    assert_eq!(rig.api.store().code(&bob).await.expect("code"), current);
    // The next hour, the address may ask again.
    rig.api.clock.advance(Duration::hours(1));
    assert_eq!(request_code(&rig.api, &two, &bob).await.status, 200);
}

#[tokio::test]
async fn the_organisations_code_sms_are_capped_per_day_then_codes_go_by_email_only() {
    let users: Vec<(String, String, String)> = (0..3)
        .map(|i| (addr(&format!("cap{i}")), phone(), home(&format!("cap{i}"))))
        .collect();
    let rig = rig_with(
        users
            .iter()
            .map(|(a, m, h)| user(a, Some(m), Some(h)))
            .collect(),
    )
    .await;
    let mut cfg = inbound_org(ORG, 3);
    cfg.sign_in.sms_per_day = 2;
    configure(&rig, &cfg).await;
    let http = client_from("127.0.0.1");
    for (a, _, _) in &users {
        assert_eq!(request_code(&rig.api, &http, a).await.status, 200);
    }
    // The first two by SMS and email; the third by email only, the same answer.
    let sms: Vec<usize> = {
        let mut v = Vec::new();
        for (_, m, _) in &users {
            v.push(sms_codes(m).await.len());
        }
        v
    };
    assert_eq!(sms, [1, 1, 0], "two SMS a day for the organisation");
    let (third, third_mobile, third_home) = &users[2];
    let codes = email_codes(third_home).await;
    assert_eq!(codes.len(), 1, "the code still goes by email");
    assert_eq!(
        enter_code(&rig.api, &http, third, &codes[0]).await.status,
        303
    );
    // The next day (UTC), the budget is back.
    rig.api.clock.advance(Duration::days(1));
    assert_eq!(request_code(&rig.api, &http, third).await.status, 200);
    assert_eq!(sms_codes(third_mobile).await.len(), 1);
}

#[tokio::test]
async fn an_organisation_with_codes_only_during_events() {
    let bob = addr("bob");
    let mobile = phone();
    let rig = rig_with(vec![user(&bob, Some(&mobile), None)]).await;
    let mut cfg = inbound_org(ORG, 3);
    cfg.sign_in.codes = shared::domain::config::CodePolicy::DuringEvents;
    configure(&rig, &cfg).await;
    let http = client_from("127.0.0.1");
    // Normal times: the same answer, nothing sent, and no code that could sign in.
    let a = request_code(&rig.api, &http, &bob).await;
    assert_eq!(a.status, 200);
    assert!(sms_to(&mobile).await.is_empty());
    let stored = rig
        .api
        .store()
        .code(&bob)
        .await
        .expect("c")
        .expect("stored");
    assert!(stored.org_id.is_empty(), "a code no one received");
    // An event is active: codes go out and sign in.
    rig.api
        .store()
        .continuity_action(
            ORG,
            &Action::Activate { minutes: 60 },
            Via::Link,
            "ev-codes-0001",
            rig.now(),
        )
        .await
        .expect("activate");
    rig.api.clock.advance(Duration::minutes(1));
    request_code(&rig.api, &http, &bob).await;
    let code = sms_codes(&mobile).await.remove(0);
    assert_eq!(enter_code(&rig.api, &http, &bob, &code).await.status, 303);
    // Codes off: not even during the event.
    cfg.sign_in.codes = shared::domain::config::CodePolicy::Off;
    configure(&rig, &cfg).await;
    rig.api.clock.advance(Duration::minutes(1));
    assert_eq!(request_code(&rig.api, &http, &bob).await.status, 200);
    assert_eq!(sms_to(&mobile).await.len(), 1, "nothing more sent");
}

#[tokio::test]
async fn code_sign_in_works_with_the_identity_provider_unreachable() {
    // The identity provider's JWKS endpoint: a port nothing listens on.
    let dead = format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        integration_tests::free_port()
    );
    let rig = InboxRig::start_with(t(NOW), |s| {
        let jwks = shared::adapters::jwks::RemoteJwks::new(dead).expect("jwks client");
        s.verifier = shared::app::auth::JwtVerifier::new(
            shared::domain::identity::IdentitySettings::cognito(ISSUER, AUDIENCE),
            std::sync::Arc::new(jwks),
        );
    })
    .await;
    let bob = addr("bob");
    let mobile = phone();
    import(&rig, vec![user(&bob, Some(&mobile), None)]).await;
    rig.file(
        &bob,
        rig.now() - Duration::minutes(1),
        &plain(
            "alice@example.org",
            &bob,
            "During the outage",
            "o@example.org",
            "x",
        ),
    )
    .await;
    // The identity provider's tokens cannot be checked: 503, as before.
    let (status, _) = rig.get(&rig.token("bob", false), "/api/v1/mailboxes").await;
    assert_eq!(status, 503);
    // Codes do not need it.
    let http = client_from("127.0.0.1");
    assert_eq!(request_code(&rig.api, &http, &bob).await.status, 200);
    let code = sms_codes(&mobile).await.remove(0);
    let a = enter_code(&rig.api, &http, &bob, &code).await;
    let cookie = a.cookie.expect("session");
    let inbox = get_with(&rig.api, &cookie, &format!("/inbox/{bob}")).await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("During the outage"));
}

#[tokio::test]
async fn the_directory_holds_five_thousand_users_and_is_replaced_whole() {
    let rig = InboxRig::start(t(NOW)).await;
    let users: Vec<_> = (0..5000)
        .map(|i| {
            let mut u = user(
                &addr(&format!("firstname.lastname.{i:04}")),
                Some(&format!("+4477009{:05}", i)),
                Some(&format!("firstname.lastname.{i:04}@personal-mail.example")),
            );
            u.name = Some(format!("Firstname Lastname-Longername {i:04}"));
            u
        })
        .collect();
    let admin = rig.token("admin", true);
    let (status, body) = rig
        .send_json(
            reqwest::Method::PUT,
            &admin,
            "/api/v1/admin/users",
            &serde_json::json!({ "users": users }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let d = rig.api.store().user_directory(ORG).await.expect("dir");
    assert_eq!(d.users.len(), 5000);
    // Any one of them is found for sign-in.
    let last = addr("firstname.lastname.4999");
    let ctx = rig
        .api
        .store()
        .sign_in_context(ORG, &last)
        .await
        .expect("ctx");
    assert_eq!(ctx.user.map(|u| u.address), Some(last));
    // A smaller import replaces it whole: the others are gone for readers at once.
    let (status, _) = rig
        .send_json(
            reqwest::Method::PUT,
            &admin,
            "/api/v1/admin/users",
            &serde_json::json!({ "users": [user(&addr("bob"), None, Some("bob@home.example"))] }),
        )
        .await;
    assert_eq!(status, 200);
    let d = rig.api.store().user_directory(ORG).await.expect("dir");
    assert_eq!(d.users.keys().collect::<Vec<_>>(), [&addr("bob")]);
    let gone = rig
        .api
        .store()
        .sign_in_context(ORG, &addr("firstname.lastname.0001"))
        .await
        .expect("ctx");
    assert!(gone.user.is_none());
    // An alternate address on the organisation's own domain is refused, and changes nothing.
    let (status, body) = rig
        .send_json(
            reqwest::Method::PUT,
            &admin,
            "/api/v1/admin/users",
            &serde_json::json!({ "users": [user(&addr("bob"), None, Some(&addr("bob2")))] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("users[0].alternate"));
    assert_eq!(rig.api.store().user_directory(ORG).await.expect("dir"), d);
    let _ = ApiRig::http();
}
