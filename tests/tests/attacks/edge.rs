//! Floods at the public doors (issue 12): alert links (`/l/*`) and sign-in (`/auth/*`) are
//! counted per source address by the application (one counter per area and window in
//! DynamoDB Local), so one address's burst is refused with 429 and `Retry-After` while another
//! address is served, and the refused requests change nothing (the organisation's partition,
//! the stored code, the SMS moto's SNS sent). Clients bind their own loopback address
//! (127.0.0.1, 127.0.0.2) as the API sees a peer; through API Gateway the event's `sourceIp`
//! counts, an IPv6 client by its /64, and `X-Forwarded-For` is not believed.

use integration_tests::api::ApiRig;
use integration_tests::inbox_support::{addr, InboxRig};
use integration_tests::portal_support::{form, org_with_link, partition};
use integration_tests::sign_in_support::{client_from, import, phone, sms_codes, user};
use integration_tests::t;
use shared::domain::source_limits::SourceLimit;
use shared::ports::store::SignInStore;
use tower::ServiceExt;

/// 200 seconds into a 10-minute window: a refusal's `Retry-After` is the 400 seconds left.
const NOW: &str = "2026-11-23T10:03:20Z";
const WINDOW_LEFT: u64 = 400;

fn limit(requests: u32) -> SourceLimit {
    SourceLimit {
        requests,
        window_secs: 600,
    }
}

/// An answer: status, `Retry-After` (seconds), `Set-Cookie` of a session, body.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    session: bool,
    body: String,
}

async fn answer(r: reqwest::Response) -> Answer {
    let h = r.headers();
    let retry_after = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let session = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("ec_session=") && !c.starts_with("ec_session=;"));
    Answer {
        status: r.status().as_u16(),
        retry_after,
        session,
        body: r.text().await.unwrap_or_default(),
    }
}

/// A browser's GET of `path` from `http`.
async fn get(api: &ApiRig, http: &reqwest::Client, path: &str) -> Answer {
    let r = http
        .get(api.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    answer(r).await
}

/// A browser's form POST of `path` from `http` (from the service's own page).
async fn post(api: &ApiRig, http: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> Answer {
    let r = http
        .post(api.url(path))
        .header("accept", "text/html")
        .header("origin", &api.base)
        .form(fields)
        .send()
        .await
        .expect("post");
    answer(r).await
}

/// The refusal of a source over its limit, as a page.
fn refused_page(a: &Answer, what: &str) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(
        a.retry_after,
        Some(WINDOW_LEFT),
        "Retry-After: the window's rest"
    );
    assert!(a.body.contains("<html"), "a page: {}", a.body);
    assert!(
        a.body.contains(&format!(
            "Too many requests to {what} from your network address"
        )),
        "{}",
        a.body
    );
    assert!(a.body.contains("Try again in 400 seconds"), "{}", a.body);
    assert!(a.body.contains("Nothing was changed"), "{}", a.body);
    assert!(!a.session, "no session on a refusal");
}

/// The suspend form of the link's page `page`, as fields to post.
fn suspend_fields(page: &str, token: &str) -> Vec<(String, String)> {
    let (ft, rid) = form(page, token, "suspend").expect("suspend form");
    vec![
        ("form_token".into(), ft),
        ("request_id".into(), rid),
        ("duration".into(), "1h".into()),
    ]
}

fn fields(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, x)| (k.as_str(), x.as_str())).collect()
}

#[tokio::test]
async fn a_burst_from_one_address_on_links_gets_429_while_another_address_is_served() {
    let rig = ApiRig::start_configured(t(NOW), |s| s.source_limits.links = limit(6), |_| {}).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let page_path = format!("/l/{token}");
    let act_path = format!("/l/{token}/suspend");
    let (a, b) = (client_from("127.0.0.1"), client_from("127.0.0.2"));

    // Within its allowance the first address is served, actions included.
    let page = get(&rig, &a, &page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let acted = post(
        &rig,
        &a,
        &act_path,
        &fields(&suspend_fields(&page.body, &token)),
    )
    .await;
    assert_eq!(acted.status, 200, "{}", acted.body);
    let mut last_page = String::new();
    for _ in 0..4 {
        let p = get(&rig, &a, &page_path).await;
        assert_eq!(p.status, 200, "{}", p.body);
        last_page = p.body;
    }
    let before = partition(&rig, "acme").await;

    // The burst goes on: pages and a genuine action are refused, and change nothing.
    for _ in 0..3 {
        refused_page(&get(&rig, &a, &page_path).await, "alert-link pages");
    }
    let held = suspend_fields(&last_page, &token);
    refused_page(
        &post(&rig, &a, &act_path, &fields(&held)).await,
        "alert-link pages",
    );
    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");

    // Another address is served meanwhile, and the action refused above works from it.
    let other = get(&rig, &b, &page_path).await;
    assert_eq!(other.status, 200, "{}", other.body);
    let acted = post(&rig, &b, &act_path, &fields(&held)).await;
    assert_eq!(acted.status, 200, "{}", acted.body);
    assert_ne!(
        partition(&rig, "acme").await,
        before,
        "the action was carried out"
    );

    // After Retry-After the first address is served again.
    rig.clock
        .advance(chrono::Duration::seconds(WINDOW_LEFT as i64));
    assert_eq!(get(&rig, &a, &page_path).await.status, 200);
}

#[tokio::test]
async fn a_burst_from_one_address_on_sign_in_gets_429_while_another_address_is_served() {
    let rig = InboxRig::start_with(t(NOW), |s| {
        s.settings.source_limits.sign_in = limit(5);
    })
    .await;
    let bob = addr("bob");
    let mobile = phone();
    import(&rig, vec![user(&bob, Some(&mobile), None)]).await;
    let api = &rig.api;
    let (a, b) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let ask = |address: &str| vec![("address", address.to_string()), ("next", "/inbox".into())];
    let form = |v: &[(&str, String)]| -> Vec<(String, String)> {
        v.iter().map(|(k, x)| (k.to_string(), x.clone())).collect()
    };

    // Five requests: the pages, a code for bob, a wrong entry, a code for nobody.
    assert_eq!(get(api, &a, "/auth/start").await.status, 200);
    assert_eq!(get(api, &a, "/auth/code").await.status, 200);
    let asked = post(api, &a, "/auth/code", &fields(&form(&ask(&bob)))).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let code = sms_codes(&mobile).await.pop().expect("bob's code");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let entry = |c: &str| {
        vec![
            ("address", bob.clone()),
            ("code", c.to_string()),
            ("next", "/inbox".into()),
        ]
    };
    let e = post(api, &a, "/auth/code/verify", &fields(&form(&entry(wrong)))).await;
    assert_eq!(e.status, 401, "{}", e.body);
    let nobody = addr("nobody");
    assert_eq!(
        post(api, &a, "/auth/code", &fields(&form(&ask(&nobody))))
            .await
            .status,
        200
    );
    let stored = api.store().code(&bob).await.expect("code");
    let sent = sms_codes(&mobile).await.len();

    // Over the allowance: another code, the right code, a passkey start, all refused.
    refused_page(
        &post(api, &a, "/auth/code", &fields(&form(&ask(&bob)))).await,
        "sign-in pages",
    );
    refused_page(
        &post(api, &a, "/auth/code/verify", &fields(&form(&entry(&code)))).await,
        "sign-in pages",
    );
    // A script's step (no page asked for) gets JSON.
    let r = a
        .post(api.url("/auth/passkey/start"))
        .header("origin", &api.base)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    let j = answer(r).await;
    assert_eq!(j.status, 429, "{}", j.body);
    assert_eq!(j.retry_after, Some(WINDOW_LEFT));
    let v: serde_json::Value = serde_json::from_str(&j.body).expect("JSON");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    // Nothing changed: the same stored code (no try spent, not used), no SMS.
    assert_eq!(api.store().code(&bob).await.expect("code"), stored);
    assert_eq!(sms_codes(&mobile).await.len(), sent, "no SMS sent");

    // Another address is served: the right code, refused above, signs in from it.
    assert_eq!(get(api, &b, "/auth/start").await.status, 200);
    let signed = post(api, &b, "/auth/code/verify", &fields(&form(&entry(&code)))).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert!(signed.session, "a session from the other address");

    // After Retry-After the first address is served again.
    rig.api
        .clock
        .advance(chrono::Duration::seconds(WINDOW_LEFT as i64));
    assert_eq!(get(api, &a, "/auth/start").await.status, 200);
}

/// A link page as API Gateway delivers it, from `source_ip`, claiming `forwarded` in
/// `X-Forwarded-For`: (status, Retry-After).
async fn via_gateway(rig: &ApiRig, token: &str, source_ip: &str, forwarded: &str) -> (u16, bool) {
    let event = include_str!("../../fixtures/apigw-v2-get-link.json")
        .replace("{{TOKEN}}", token)
        .replace(
            "\"routeKey\": \"$default\"",
            "\"routeKey\": \"ANY /l/{proxy+}\"",
        )
        .replace(
            "\"x-forwarded-for\": \"192.0.2.44\"",
            &format!("\"x-forwarded-for\": \"{forwarded}\""),
        )
        .replace(
            "\"sourceIp\": \"192.0.2.44\"",
            &format!("\"sourceIp\": \"{source_ip}\""),
        );
    let req = lambda_http::request::from_str(&event).expect("an API Gateway v2 event");
    let resp = api::router(rig.state.clone())
        .oneshot(req)
        .await
        .expect("the router answers");
    (
        resp.status().as_u16(),
        resp.headers().contains_key("retry-after"),
    )
}

#[tokio::test]
async fn a_burst_spread_over_one_ipv6_64_and_forged_forwarded_for_headers_counts_as_one_source() {
    let rig = ApiRig::start_configured(t(NOW), |s| s.source_limits.links = limit(3), |_| {}).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let before = partition(&rig, "acme").await;
    // Each request from another address of the same /64, each claiming another forwarder:
    // three are served, then the source is refused.
    for i in 1..=6 {
        let (status, retry) = via_gateway(
            &rig,
            &token,
            &format!("2001:db8:7:1:{i}::{i}"),
            &format!("198.51.100.{i}"),
        )
        .await;
        let (expected, refused) = if i <= 3 { (200, false) } else { (429, true) };
        assert_eq!(status, expected, "request {i} from the same /64");
        assert_eq!(retry, refused, "Retry-After on a refusal");
    }
    // The next /64 is another source.
    let (status, _) = via_gateway(&rig, &token, "2001:db8:7:2::1", "198.51.100.9").await;
    assert_eq!(status, 200);
    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
}
