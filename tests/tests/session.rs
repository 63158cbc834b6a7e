//! Sign-in (U7, P8): tokens verified against the identity provider's keys, the organisation found
//! from the token, the session cookie, the local sign-in form, and the hosted sign-in flow
//! (authorization code with PKCE) against a stand-in token endpoint on loopback.

use api::HostedSignIn;
use integration_tests::api::{ApiRig, AUDIENCE, ISSUER};
use integration_tests::{inbound_org, t};
use shared::adapters::jwks::{LocalIssuer, TokenRequest};
use shared::domain::identity::IdentitySettings;
use shared::ports::clock::Clock;
use shared::ports::store::ConfigStore;

const NOW: &str = "2026-11-23T10:00:00Z";

async fn rig_with_org() -> ApiRig {
    let rig = ApiRig::start(t(NOW)).await;
    rig.store()
        .put_config(&inbound_org("acme", 3), t(NOW))
        .await
        .expect("config");
    rig
}

async fn me(rig: &ApiRig, token: &str) -> (u16, serde_json::Value) {
    let resp = ApiRig::http()
        .get(rig.url("/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_token_is_verified_and_its_organisation_found() {
    let rig = rig_with_org().await;
    let (status, body) = me(&rig, &rig.token("alice@acme.test", false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["org_id"], "acme");
    assert_eq!(body["email"], "alice@acme.test");
    assert_eq!(body["admin"], false);
    let (_, body) = me(&rig, &rig.token("bob@acme.test", true)).await;
    assert_eq!(body["admin"], true);
    // A subdomain of an organisation's domain is the organisation's.
    let (_, body) = me(&rig, &rig.token("carol@eu.acme.test", false)).await;
    assert_eq!(body["org_id"], "acme");
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let rig = rig_with_org().await;
    let http = ApiRig::http();
    // No token.
    let r = http.get(rig.url("/auth/me")).send().await.expect("req");
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    // Another issuer's key, the same claims.
    let stranger =
        LocalIssuer::generate(IdentitySettings::cognito(ISSUER, AUDIENCE)).expect("issuer");
    let req = TokenRequest {
        subject: "x",
        email: Some("alice@acme.test"),
        groups: &["continuity-admins"],
        org: None,
        second_factor: true,
    };
    let forged = stranger
        .issue(&req, rig.clock.now(), chrono::Duration::hours(1))
        .expect("tok");
    assert_eq!(me(&rig, &forged).await.0, 401);
    // A token whose audience was altered after signing: the signature no longer verifies.
    let tok = rig.token("alice@acme.test", false);
    let parts: Vec<&str> = tok.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("claims");
    claims["aud"] = "other-app".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    let (status, body) = me(&rig, &tampered).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("signature"));
    // Expired: the clock moves past the token's hour and the leeway.
    let tok = rig.token("alice@acme.test", false);
    rig.clock.advance(chrono::Duration::minutes(62));
    let (status, body) = me(&rig, &tok).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{body}"
    );
    // A valid token of an address no organisation owns: 403.
    let (status, _) = me(&rig, &rig.token("eve@elsewhere.test", false)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn local_sign_in_sets_a_strict_session_cookie_and_refuses_cross_site_posts() {
    let rig = rig_with_org().await;
    let http = ApiRig::http();
    let page = http
        .get(rig.url("/auth/login?next=/auth/me"))
        .send()
        .await
        .expect("login");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("<label for=\"email\">"));
    let host = rig.base.trim_start_matches("http://").to_string();
    // A cross-site form post is refused and sets nothing.
    let r = http
        .post(rig.url("/auth/local"))
        .header("origin", "https://evil.example")
        .form(&[("email", "alice@acme.test"), ("next", "/auth/me")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    // An address of no organisation is refused.
    let r = http
        .post(rig.url("/auth/local"))
        .header("origin", format!("http://{host}"))
        .form(&[("email", "eve@elsewhere.test")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    // The form from this site signs in.
    let r = http
        .post(rig.url("/auth/local"))
        .header("origin", format!("http://{host}"))
        .form(&[("email", "Alice@acme.test"), ("next", "//evil.example/")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/inbox",
        "an off-site next is not followed"
    );
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("pair").to_string();
    let r = http
        .get(rig.url("/auth/me"))
        .header("cookie", &session)
        .send()
        .await
        .expect("me");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["email"], "alice@acme.test");
    assert_eq!(body["credential"], "cookie");
    // Signing out with the cookie from another site is refused; from this site it clears it.
    let r = http
        .post(rig.url("/auth/logout"))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status().as_u16(), 403);
    let r = http
        .post(rig.url("/auth/logout"))
        .header("cookie", &session)
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .expect("c")
        .contains("Max-Age=0"));
}

/// A stand-in for the provider's token endpoint: checks the PKCE verifier against the challenge
/// it was given at authorize time, and answers an ID token from the provider's key.
#[tokio::test]
async fn hosted_sign_in_with_pkce_and_state() {
    use axum::routing::post;
    use std::sync::{Arc, Mutex};
    let issuer = Arc::new(
        LocalIssuer::generate(IdentitySettings::cognito(ISSUER, AUDIENCE)).expect("issuer"),
    );
    type Forms = Vec<Vec<(String, String)>>;
    let seen: Arc<Mutex<Forms>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let idp = format!("http://{}", listener.local_addr().expect("addr"));
    {
        let issuer = issuer.clone();
        let seen = seen.clone();
        let app = axum::Router::new().route(
            "/oauth2/token",
            post(move |axum::Form(f): axum::Form<Vec<(String, String)>>| {
                let issuer = issuer.clone();
                seen.lock().expect("lock").push(f.clone());
                async move {
                    let code = f
                        .iter()
                        .find(|(k, _)| k == "code")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    if code != "good-code" {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            "invalid_grant".to_string(),
                        );
                    }
                    let tok = issuer
                        .issue(
                            &TokenRequest {
                                subject: "idp-1",
                                email: Some("alice@acme.test"),
                                groups: &[],
                                org: None,
                                second_factor: true,
                            },
                            t(NOW),
                            chrono::Duration::hours(1),
                        )
                        .expect("tok");
                    (
                        axum::http::StatusCode::OK,
                        serde_json::json!({"id_token": tok, "token_type": "Bearer"}).to_string(),
                    )
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    }
    let verifier =
        shared::app::auth::JwtVerifier::with_key_set(issuer.settings.clone(), issuer.jwks());
    let rig = ApiRig::start_with(t(NOW), |s| {
        s.local_issuer = None;
        s.verifier = verifier;
        s.settings.hosted_sign_in = Some(HostedSignIn {
            authorize_url: format!("{idp}/oauth2/authorize"),
            token_url: format!("{idp}/oauth2/token"),
            client_id: AUDIENCE.into(),
        });
    })
    .await;
    rig.store()
        .put_config(&inbound_org("acme", 3), t(NOW))
        .await
        .expect("config");
    let http = ApiRig::http();
    let r = http
        .get(rig.url("/auth/login?next=/auth/me"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 302);
    let location = url::Url::parse(r.headers()["location"].to_str().expect("loc")).expect("url");
    assert!(location
        .as_str()
        .starts_with(&format!("{idp}/oauth2/authorize")));
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/auth/callback", rig.base));
    let state = q["state"].clone();
    let attempt = r.headers()["set-cookie"]
        .to_str()
        .expect("c")
        .split(';')
        .next()
        .expect("pair")
        .to_string();

    // A callback whose state is not this browser's is refused before any exchange.
    let r = http
        .get(rig.url("/auth/callback?code=good-code&state=forged"))
        .header("cookie", &attempt)
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status().as_u16(), 400);
    assert!(seen.lock().expect("lock").is_empty());
    // Without the attempt cookie (another browser): refused.
    let r = http
        .get(rig.url(&format!("/auth/callback?code=good-code&state={state}")))
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status().as_u16(), 400);
    // A code the provider refuses: 401, no session.
    let r = http
        .get(rig.url(&format!("/auth/callback?code=bad&state={state}")))
        .header("cookie", &attempt)
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status().as_u16(), 401);
    assert!(!r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("ec_session=e")));
    // The real answer: session set, the PKCE verifier matched the challenge.
    let r = http
        .get(rig.url(&format!("/auth/callback?code=good-code&state={state}")))
        .header("cookie", &attempt)
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status().as_u16(), 200);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("ec_session=") && !c.starts_with("ec_session=;"))
        .expect("session cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let html = r.text().await.expect("html");
    assert!(html.contains("url=/auth/me"));
    let forms = seen.lock().expect("lock").clone();
    let last = forms.last().expect("exchange");
    let verifier = &last
        .iter()
        .find(|(k, _)| k == "code_verifier")
        .expect("verifier")
        .1;
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, q["code_challenge"]);
    let body: serde_json::Value = http
        .get(rig.url("/auth/me"))
        .header("cookie", &session)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(body["subject"], "idp-1");
    assert_eq!(body["org_id"], "acme");
}

/// A token signed with the provider's own key but for another application (audience) is refused.
#[tokio::test]
async fn a_correctly_signed_token_for_another_audience_is_refused() {
    use shared::app::auth::JwtVerifier;
    use shared::app::auth::StaticJwks;
    use std::sync::Arc;
    let rig = ApiRig::start_with(t(NOW), |s| {
        let jwks = s.local_issuer.as_ref().expect("issuer").jwks();
        s.verifier = JwtVerifier::new(
            IdentitySettings::cognito(ISSUER, "another-app"),
            Arc::new(StaticJwks(jwks)),
        );
    })
    .await;
    rig.store()
        .put_config(&inbound_org("acme", 3), t(NOW))
        .await
        .expect("config");
    let (status, body) = me(&rig, &rig.token("alice@acme.test", true)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("audience"),
        "{body}"
    );
    let r = ApiRig::http()
        .get(rig.url("/api/v1/admin/config"))
        .bearer_auth(rig.token("alice@acme.test", true))
        .send()
        .await
        .expect("config");
    assert_eq!(r.status().as_u16(), 401);
}
