//! Sign-in that a down identity provider, a missing second factor, an unverified address or a
//! user removed from the directory cannot undermine (issue 12). The identity provider is a real
//! process (`infra/local/oauthserver.py`: it signs ID tokens RS256 as Cognito does and serves
//! their key set, which a test can make answer 503 or hang); the API runs on the local services.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use integration_tests::api::{ApiRig, AUDIENCE, ISSUER};
use integration_tests::inbox_support::{addr, plain, InboxRig, DOMAIN, ORG};
use integration_tests::oauth::{registry, TokenServer};
use integration_tests::portal_support::partition;
use integration_tests::sign_in_support::{
    client_from, enter_code, import, phone, request_code, sms_codes, user,
};
use integration_tests::t;
use serde_json::{json, Value};
use shared::adapters::jwks::{JwksPolicy, RemoteJwks};
use shared::app::auth::JwtVerifier;
use shared::domain::identity::IdentitySettings;
use shared::domain::sign_in::session_digest;
use shared::ports::store::SignInStore;
use std::sync::Arc;

const NOW: &str = "2026-11-23T10:00:00Z";

/// `method path` with `token` as a bearer token (or `cookie` as the session cookie), a JSON body
/// for the unsafe methods: the status and the JSON answer.
async fn call(base: &str, method: &str, path: &str, auth: Auth<'_>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("m");
    let mut req = ApiRig::http().request(method.clone(), format!("{base}{path}"));
    req = match auth {
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Cookie(c) => req.header("cookie", c).header("origin", base),
    };
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        req = req.json(&json!({}));
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A GET with `token` as a bearer token.
async fn get(base: &str, path: &str, token: &str) -> (u16, Value) {
    call(base, "GET", path, Auth::Bearer(token)).await
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

/// Every administration route of the OpenAPI document (`functions/api/openapi.yaml`), its path
/// parameters filled with values of acme's.
fn admin_routes() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/api/openapi.yaml");
    let doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).expect("openapi.yaml"))
            .expect("yaml");
    let mut out = Vec::new();
    for (p, item) in doc["paths"].as_mapping().expect("paths") {
        let p = p.as_str().expect("path");
        if !p.starts_with("/api/v1/admin/") {
            continue;
        }
        let filled = p
            .replace(
                "{action}",
                if p.contains("queue") {
                    "pause"
                } else {
                    "activate"
                },
            )
            .replace("{user}", &addr("bob"))
            .replace("{mailbox}", &addr("carol"))
            .replace("{address}", &addr("bob"))
            .replace("{domain}", DOMAIN);
        assert!(
            !filled.contains('{'),
            "{p}: a parameter this test does not fill"
        );
        for (m, _) in item.as_mapping().expect("path item") {
            let m = m.as_str().expect("method");
            if m != "parameters" {
                out.push((m.to_string(), filled.clone()));
            }
        }
    }
    out
}

/// A token naming a key id the provider never published (a fresh random one), with a
/// signature of random bytes: what an attacker floods the service with to make it refetch.
fn made_up_key(claims: &Value) -> String {
    let header =
        json!({"alg": "RS256", "typ": "JWT", "kid": format!("kid-{}", rand::random::<u64>())});
    let sig: [u8; 64] = std::array::from_fn(|_| rand::random());
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[tokio::test]
async fn the_identity_provider_down_leaves_requests_with_a_cached_key_working() {
    let provider = TokenServer::start(registry("unused", None, None)).await;
    let policy = JwksPolicy {
        // After a good fetch an unknown key may refetch at once (so that one can be made to hang
        // here); after a failure not for ten minutes, far longer than this test: its floods must
        // cost the provider nothing more.
        min_refresh: std::time::Duration::ZERO,
        backoff_first: std::time::Duration::from_secs(600),
        backoff_cap: std::time::Duration::from_secs(600),
        // Longer than the test: the held fetch ends when the provider answers.
        timeout: std::time::Duration::from_secs(60),
        ..JwksPolicy::default()
    };
    let url = provider.jwks();
    let remote = move || {
        let jwks = RemoteJwks::with_policy(url.clone(), policy).expect("jwks client");
        JwtVerifier::new(IdentitySettings::cognito(ISSUER, AUDIENCE), Arc::new(jwks))
    };
    let fresh = remote.clone();
    let rig = InboxRig::start_with(t(NOW), move |s| s.verifier = fresh()).await;
    let before = partition(&rig.api, ORG).await;
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice-idp", "custom:org_id": ORG,
        "exp": (rig.now() + Duration::hours(1)).timestamp(), "amr": ["pwd", "mfa"],
    });
    let valid = provider.id_token(&claims).await;
    let base = rig.api.base.clone();
    let me = |token: String| {
        let base = base.clone();
        async move { get(&base, "/auth/me", &token).await }
    };
    let all_valid_served = |answers: Vec<(u16, Value)>| {
        for (s, v) in answers {
            assert_eq!((s, v["subject"].as_str()), (200, Some("alice-idp")), "{v}");
        }
    };
    let (s, v) = me(valid.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        provider.keys_requests().await,
        (1, 0),
        "one fetch, then the cache"
    );

    // The provider hangs. A token with an unknown key refetches: its request waits for the
    // provider, and so do those that need the same answer (one fetch between them)...
    provider.set_keys_mode("hang").await;
    let held: Vec<_> = (0..20)
        .map(|_| tokio::spawn(me(made_up_key(&claims))))
        .collect();
    let mut waiting = 0;
    for _ in 0..500 {
        waiting = provider.keys_requests().await.1;
        if waiting == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1, "the refetch reached the provider");
    // ...while tokens with a cached key are served from the cache, the fetch still held.
    all_valid_served(futures::future::join_all((0..50).map(|_| me(valid.clone()))).await);
    assert_eq!(
        provider.keys_requests().await,
        (2, 1),
        "one fetch, still held"
    );
    assert!(held.iter().all(|h| !h.is_finished()));

    // The provider fails (503): the waiting tokens are refused from the cached set.
    provider.set_keys_mode("fail").await;
    for h in held {
        let (s, v) = h.await.expect("task");
        assert_eq!(s, 401, "{v}");
        assert!(message(&v).contains("does not publish"), "{v}");
    }
    // A flood of made-up key ids during the backoff: all refused, no fetch at all.
    for _ in 0..2 {
        let answers = futures::future::join_all((0..50).map(|_| me(made_up_key(&claims)))).await;
        for (s, v) in answers {
            assert_eq!(s, 401, "{v}");
        }
    }
    assert_eq!(
        provider.keys_requests().await.0,
        2,
        "the flood never reached the provider"
    );
    all_valid_served(futures::future::join_all((0..10).map(|_| me(valid.clone()))).await);

    // A container that starts while the provider fails has nothing cached: 503 (the service's
    // fault, not the token's), one fetch for a burst of requests, none during the backoff.
    let cold = remote();
    let answers = futures::future::join_all((0..30).map(|_| cold.verify(&valid, rig.now()))).await;
    for a in answers {
        assert!(a.as_ref().is_err_and(|e| e.is_unavailable()), "{a:?}");
    }
    assert_eq!(
        provider.keys_requests().await.0,
        3,
        "one fetch for the cold burst"
    );

    // The provider is back: the cached set still serves without asking it.
    provider.set_keys_mode("serve").await;
    all_valid_served(futures::future::join_all((0..10).map(|_| me(valid.clone()))).await);
    assert_eq!(provider.keys_requests().await.0, 3);
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing changed");
}

#[tokio::test]
async fn an_admin_token_without_a_second_factor_is_refused_on_every_admin_route() {
    let rig = InboxRig::start(t(NOW)).await;
    let before = partition(&rig.api, ORG).await;
    let admin = |amr: Option<Value>| {
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "sub-admin", "email": addr("admin"),
            "email_verified": true, "cognito:groups": ["continuity-admins"],
            "exp": (rig.now() + Duration::hours(1)).timestamp(),
        });
        if let Some(a) = amr {
            claims["amr"] = a;
        }
        rig.api.issuer.sign(&claims).expect("token")
    };
    // No `amr`; a password only; a one-time code that is not a second factor; odd shapes.
    let tokens = [
        admin(None),
        admin(Some(json!(["pwd"]))),
        admin(Some(json!("pwd"))),
        admin(Some(json!(["pwd", "otp"]))),
        admin(Some(json!({"mfa": true}))),
        admin(Some(json!("pwdmfa"))),
    ];
    let routes = admin_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    for token in &tokens {
        for (m, path) in &routes {
            let (s, v) = call(&rig.api.base, m, path, Auth::Bearer(token)).await;
            assert_eq!(s, 403, "{m} {path}: {v}");
            assert!(
                message(&v).contains("second factor") && message(&v).contains("'amr'"),
                "{m} {path}: {v}"
            );
        }
    }
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing changed");
    // The same administrator with the second factor is let in: the refusal is about it alone.
    for with in [json!(["pwd", "mfa"]), json!("pwd mfa")] {
        let (s, v) = call(
            &rig.api.base,
            "get",
            "/api/v1/admin/config",
            Auth::Bearer(&admin(Some(with))),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test]
async fn a_token_with_email_verified_false_or_missing_is_refused() {
    let rig = InboxRig::start(t(NOW)).await;
    let bob = addr("bob");
    rig.file(
        &bob,
        rig.now() - Duration::minutes(1),
        &plain("alice@example.org", &bob, "Payroll", "p1@example.org", "x"),
    )
    .await;
    let before = partition(&rig.api, ORG).await;
    let token = |verified: Option<Value>, org: bool| {
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "someone-else", "email": bob,
            "exp": (rig.now() + Duration::hours(1)).timestamp(), "amr": ["pwd", "mfa"],
        });
        if let Some(v) = verified {
            claims["email_verified"] = v;
        }
        if org {
            claims["custom:org_id"] = ORG.into();
        }
        rig.api.issuer.sign(&claims).expect("token")
    };
    let list = format!("/api/v1/mailboxes/{bob}/messages");
    for verified in [
        None,
        Some(json!(false)),
        Some(json!("false")),
        Some(json!(1)),
    ] {
        // The address is all that leads to an organisation, and it is not verified.
        let tok = token(verified.clone(), false);
        let (s, v) = get(&rig.api.base, "/api/v1/mailboxes", &tok).await;
        assert_eq!(s, 403, "{verified:?}: {v}");
        assert!(message(&v).contains("no verified address"), "{v}");
        let (s, v) = get(&rig.api.base, &list, &tok).await;
        assert_eq!(s, 403, "{verified:?}: {v}");
        // With the organisation named: signed in, but the address opens no mailbox.
        let tok = token(verified.clone(), true);
        let (s, v) = get(&rig.api.base, &list, &tok).await;
        assert!(s == 403 || s == 404, "{verified:?}: {s} {v}");
        assert!(!v.to_string().contains("Payroll"), "{v}");
        let (s, v) = get(&rig.api.base, "/api/v1/mailboxes", &tok).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["own"].is_null() && !v.to_string().contains(&bob), "{v}");
    }
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing changed");
    // The provider says it verified the address: bob's mailbox opens.
    let (s, v) = get(&rig.api.base, &list, &token(Some(json!(true)), false)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().contains("Payroll"), "{v}");
}

#[tokio::test]
async fn a_session_of_a_user_removed_from_the_directory_is_refused_within_minutes() {
    let rig = InboxRig::start(t(NOW)).await;
    let (bob, carol) = (addr("bob"), addr("carol"));
    let (bob_mobile, carol_mobile) = (phone(), phone());
    import(
        &rig,
        vec![
            user(&bob, Some(&bob_mobile), None),
            user(&carol, Some(&carol_mobile), None),
        ],
    )
    .await;
    let http = client_from("127.0.0.1");
    let mut cookies = Vec::new();
    for (who, mobile) in [(&bob, &bob_mobile), (&carol, &carol_mobile)] {
        assert_eq!(request_code(&rig.api, &http, who).await.status, 200);
        let code = sms_codes(mobile).await.remove(0);
        let a = enter_code(&rig.api, &http, who, &code).await;
        cookies.push(a.cookie.expect("session"));
    }
    let store = rig.api.store();
    // `GET /auth/me` with a session cookie: the answer, and the DynamoDB requests it took.
    let me = |cookie: &str| {
        let (base, cookie) = (rig.api.base.clone(), cookie.to_string());
        async move {
            let before = store.metrics().requests;
            let (s, v) = call(&base, "GET", "/auth/me", Auth::Cookie(&cookie)).await;
            (s, v, store.metrics().requests - before)
        }
    };
    assert_eq!(me(&cookies[0]).await.0, 200);
    // Bob leaves: the directory is imported again without him.
    import(&rig, vec![user(&carol, Some(&carol_mobile), None)]).await;
    let before = partition(&rig.api, ORG).await;
    // Every request counts: the per-source count of `/auth/*` (one UpdateItem) and the
    // session's GetItem. Within the re-check interval (5 minutes) the directory is not asked:
    // the bound the README states.
    rig.api.clock.advance(Duration::minutes(4));
    let (s, _, requests) = me(&cookies[0]).await;
    assert_eq!((s, requests), (200, 2));
    rig.api.clock.advance(Duration::minutes(1));
    let (s, v, requests) = me(&cookies[0]).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        message(&v).contains("no longer in your organisation's directory"),
        "{v}"
    );
    // The count, the session, the sign-in lookups (BatchGetItem, GetItem), the session's
    // DeleteItem.
    assert_eq!(requests, 5);
    let digest = |c: &str| session_digest(c.trim_start_matches("ec_session="));
    assert_eq!(
        store.session(&digest(&cookies[0])).await.expect("get"),
        None,
        "ended"
    );
    let (s, _, requests) = me(&cookies[0]).await;
    assert_eq!((s, requests), (401, 2), "and stays ended");
    // Carol is still a user: her session goes on, checked now (the lookups and one UpdateItem),
    // then not again for five minutes.
    let (s, v, requests) = me(&cookies[1]).await;
    assert_eq!((s, v["email"].as_str()), (200, Some(carol.as_str())), "{v}");
    assert_eq!(requests, 5);
    let session = store
        .session(&digest(&cookies[1]))
        .await
        .expect("get")
        .expect("hers");
    assert_eq!(session.checked_at, rig.now());
    rig.api.clock.advance(Duration::minutes(4));
    let (s, _, requests) = me(&cookies[1]).await;
    assert_eq!((s, requests), (200, 2));
    assert_eq!(partition(&rig.api, ORG).await, before, "nothing changed");
}
