//! The administration API (P7-P10) against DynamoDB Local and moto: sign-in refusals, the same
//! event actions as the portal (audited as console), planned events, configuration with
//! validation, audit query, queue pause.

use integration_tests::api::{ApiRig, AUDIENCE, ISSUER};
use integration_tests::portal_support::{org_with_link, partition};
use integration_tests::t;
use serde_json::{json, Value};
use shared::adapters::jwks::{LocalIssuer, TokenRequest};
use shared::domain::continuity::Phase;
use shared::domain::identity::IdentitySettings;
use shared::ports::clock::Clock;
use shared::ports::store::ConfigStore;
use shared::ports::store::ContinuityStore;
use shared::ports::store::ContinuityViews;

const NOW: &str = "2026-11-23T10:00:00Z";

async fn call(
    rig: &ApiRig,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, answer) = rig.json_request(method, path, token, &[], body).await;
    (status, answer)
}

#[tokio::test]
async fn sign_in_is_required_and_checked() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let before = partition(&rig, "acme").await;
    let path = "/api/v1/admin/continuity/activate";
    let body = Some(json!({"minutes": 60}));

    let (s, v) = call(&rig, "POST", path, None, body.clone()).await;
    assert_eq!(s, 401, "{v}");
    // Not an administrator.
    let user = rig.token("user@acme.test", false);
    let (s, _) = call(&rig, "POST", path, Some(&user), body.clone()).await;
    assert_eq!(s, 403);
    // Bad signature: another key with the same issuer and audience.
    let stranger =
        LocalIssuer::generate(IdentitySettings::cognito(ISSUER, AUDIENCE)).expect("issuer");
    let req = TokenRequest {
        subject: "sub-admin",
        email: Some("admin@acme.test"),
        groups: &["continuity-admins"],
        org: None,
        second_factor: true,
    };
    let forged = stranger
        .issue(&req, rig.clock.now(), chrono::Duration::hours(1))
        .unwrap();
    let (s, _) = call(&rig, "POST", path, Some(&forged), body.clone()).await;
    assert_eq!(s, 401);
    // Tampered payload.
    let good = rig.token("admin@acme.test", true);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    let (s, _) = call(&rig, "POST", path, Some(&parts.join(".")), body.clone()).await;
    assert_eq!(s, 401);
    // Expired.
    let old = rig
        .issuer
        .issue(
            &req,
            rig.clock.now() - chrono::Duration::hours(3),
            chrono::Duration::hours(1),
        )
        .unwrap();
    let (s, v) = call(&rig, "POST", path, Some(&old), body.clone()).await;
    assert_eq!(s, 401, "{v}");
    // Wrong audience (an issuer for another application).
    let other_app =
        LocalIssuer::generate(IdentitySettings::cognito(ISSUER, "another-app")).unwrap();
    let tok = other_app
        .issue(&req, rig.clock.now(), chrono::Duration::hours(1))
        .unwrap();
    let (s, _) = call(&rig, "POST", path, Some(&tok), body.clone()).await;
    assert_eq!(s, 401);

    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
    assert!(rig.env.events().await.is_empty());
}

#[tokio::test]
async fn event_actions_through_the_api_are_audited_as_console() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());

    let (s, v) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/activate",
        tk,
        Some(json!({"minutes": 120})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "Continuity mode activated");
    assert_eq!(v["status"]["event_until"], "2026-11-23T12:00:00Z");
    let (s, v) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/activate",
        tk,
        Some(json!({"minutes": 120})),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "refused");
    let (s, _) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/extend",
        tk,
        Some(json!({"duration": "1h"})),
    )
    .await;
    assert_eq!(s, 200);
    // Refusals: unknown duration, minutes out of bounds, malformed body, unknown field.
    for body in [
        json!({"duration": "2h"}),
        json!({"minutes": 0}),
        json!({"minutes": 20161}),
        json!({}),
    ] {
        let (s, v) = call(
            &rig,
            "POST",
            "/api/v1/admin/continuity/extend",
            tk,
            Some(body),
        )
        .await;
        assert_eq!(s, 422, "{v}");
    }
    let (s, _) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/extend",
        tk,
        Some(json!({"hours": 1})),
    )
    .await;
    assert_eq!(s, 400);
    let r = ApiRig::http()
        .post(rig.url("/api/v1/admin/continuity/extend"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("minutes=60")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Idempotency-Key: a retry changes nothing twice.
    for _ in 0..2 {
        let r = ApiRig::http()
            .post(rig.url("/api/v1/admin/continuity/extend"))
            .bearer_auth(&admin)
            .header("idempotency-key", "retry-key-0001")
            .json(&json!({"minutes": 30}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_until, Some(t("2026-11-23T13:30:00Z")));

    let (st, v) = call(&rig, "POST", "/api/v1/admin/continuity/stop", tk, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["message"], "Continuity mode was ended");

    let (s, v) = call(&rig, "GET", "/api/v1/admin/audit", tk, None).await;
    assert_eq!(s, 200);
    let records = v["records"].as_array().unwrap();
    let whats: Vec<&str> = records
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.len(), 4, "{whats:?}");
    for r in records {
        assert_eq!(r["via"], "console");
        assert_eq!(r["who"], "admin:sub-admin@acme.test");
        assert_eq!(r["source"], "127.0.0.1");
    }
    let events = rig.env.events().await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "ContinuityExtended").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"ContinuityActivated") && kinds.contains(&"ContinuityStopped"));
}

#[tokio::test]
async fn planned_events_start_and_end_by_themselves() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());
    let plan = json!({"start": "2026-11-24T02:00:00Z", "end": "2026-11-24T04:00:00Z"});
    let (s, v) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/schedule",
        tk,
        Some(plan.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"]["planned"]["start"], "2026-11-24T02:00:00Z");
    let (s, _) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/schedule",
        tk,
        Some(plan),
    )
    .await;
    assert_eq!(s, 409, "one plan at a time");
    let st = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(st.phase(t(NOW)), Phase::Normal);
    assert!(matches!(
        st.phase(t("2026-11-24T03:00:00Z")),
        Phase::Continuity { .. }
    ));
    assert!(matches!(
        st.phase(t("2026-11-24T04:05:00Z")),
        Phase::PostEvent { .. }
    ));
    let (s, _) = call(
        &rig,
        "POST",
        "/api/v1/admin/continuity/cancel-planned",
        tk,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let st = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(st.phase(t("2026-11-24T03:00:00Z")), Phase::Normal);
}

#[tokio::test]
async fn configuration_read_update_validation_and_queue_pause() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    org_with_link(&rig, "globex", "UTC").await;
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());

    let (s, mut cfg) = call(&rig, "GET", "/api/v1/admin/config", tk, None).await;
    assert_eq!(s, 200);
    assert_eq!(cfg["org_id"], "acme");

    // Invalid: every wrong field named; nothing stored.
    let mut bad = cfg.clone();
    bad["monitoring"]["threshold"] = json!(0);
    bad["time_zone"] = json!("Mars/Olympus");
    let (s, v) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(bad)).await;
    assert_eq!(s, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("monitoring.threshold") && msg.contains("time_zone"),
        "{msg}"
    );
    // Another organisation's configuration, another's domain.
    let mut other = cfg.clone();
    other["org_id"] = json!("globex");
    let (s, _) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(other)).await;
    assert_eq!(s, 403);
    let mut steal = cfg.clone();
    steal["domains"] = json!(["acme.test", "globex.test"]);
    let (s, _) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(steal)).await;
    assert_eq!(s, 409);
    assert!(rig.env.events().await.is_empty());

    cfg["monitoring"]["threshold"] = json!(7);
    cfg["time_zone"] = json!("Europe/Paris");
    let (s, v) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(cfg)).await;
    assert_eq!(s, 200, "{v}");
    let stored = rig.store().get_config("acme").await.unwrap().unwrap();
    assert_eq!(stored.monitoring.threshold, 7);

    let (s, v) = call(&rig, "POST", "/api/v1/admin/queue/pause", tk, None).await;
    assert_eq!((s, &v["paused"]), (200, &json!(true)));
    let (s, v) = call(&rig, "GET", "/api/v1/admin/queue", tk, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["paused"], true);
    assert_eq!(v["count"], 0);
    assert!(
        rig.store()
            .get_config("acme")
            .await
            .unwrap()
            .unwrap()
            .queue
            .paused
    );

    let events = rig.env.events().await;
    let changed: Vec<_> = events
        .iter()
        .filter(|(k, _)| k == "ConfigChanged")
        .collect();
    assert_eq!(changed.len(), 2, "{events:?}");
    assert_eq!(changed[0].1["before"]["monitoring"]["threshold"], 5);
    assert_eq!(changed[0].1["after"]["monitoring"]["threshold"], 7);
}

#[tokio::test]
async fn test_the_delivery_route() {
    let rig = ApiRig::start(t(NOW)).await;
    let mut server = integration_tests::plain_server().await;
    let mut cfg = integration_tests::inbound_org("acme", 5);
    cfg.routes[0].port = server.port;
    rig.store().put_config(&cfg, t(NOW)).await.unwrap();
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());

    let (s, v) = call(
        &rig,
        "POST",
        "/api/v1/admin/delivery-test",
        tk,
        Some(json!({"recipient": "someone@acme.test"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["delivered"], true, "{v}");
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("delivery route test"), "{}", got[0]);

    // Only the organisation's own addresses.
    let (s, _) = call(
        &rig,
        "POST",
        "/api/v1/admin/delivery-test",
        tk,
        Some(json!({"recipient": "someone@globex.test"})),
    )
    .await;
    assert_eq!(s, 422);
    // A server that is down: reported, not a failure of the API.
    server.stop().await;
    let (s, v) = call(
        &rig,
        "POST",
        "/api/v1/admin/delivery-test",
        tk,
        Some(json!({"recipient": "someone@acme.test"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["delivered"], false);
    assert!(!v["errors"].as_array().unwrap().is_empty(), "{v}");
}

/// The partition's audit items (`AUDIT#`).
fn audits(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> usize {
    items
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s.starts_with("AUDIT#"))
        })
        .count()
}

#[tokio::test]
async fn a_configuration_change_and_its_audit_are_one_transaction() {
    use integration_tests::faults::FaultProxy;
    let proxy = FaultProxy::dynamodb().await;
    let sdk = integration_tests::sdk().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(proxy.url())
            .build(),
    );
    // The configuration store (where the change and its audit are written) behind the proxy.
    let rig = ApiRig::start_with(t(NOW), move |s| {
        s.config = std::sync::Arc::new(shared::adapters::dynamodb::DynamoStore::new(
            client,
            s.settings.table.clone(),
        ));
    })
    .await;
    org_with_link(&rig, "acme", "UTC").await;
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());
    let (s, mut cfg) = call(&rig, "GET", "/api/v1/admin/config", tk, None).await;
    assert_eq!(s, 200);
    let before = partition(&rig, "acme").await;
    cfg["monitoring"]["threshold"] = json!(7);

    // The transaction refused on every attempt (the SDK's six): neither change nor audit.
    for kind in ["internal", "throttle", "reject"] {
        proxy.set_control(json!({
            "seed": 3, "operations": ["TransactWriteItems"], "faults": {kind: 1.0}, "limit": 6
        }));
        let (s, v) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(cfg.clone())).await;
        assert!([500, 503].contains(&s), "{kind}: {s} {v}");
        assert_eq!(
            partition(&rig, "acme").await,
            before,
            "{kind}: nothing changed"
        );
    }
    assert!(
        rig.env.events().await.is_empty(),
        "no event for a change not made"
    );

    // Applied, then the answer lost: the SDK's retry finds the version moved on, and its own
    // audit record, so the write was this request's: 200, the change and one audit item.
    proxy.set_control(json!({
        "seed": 3, "operations": ["TransactWriteItems"], "faults": {"drop_after": 1.0}, "limit": 1
    }));
    let (s, v) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(cfg.clone())).await;
    assert_eq!(s, 200, "{v}");
    let after = partition(&rig, "acme").await;
    assert_eq!(audits(&after), audits(&before) + 1, "one audit item");
    let stored = rig.store().get_config("acme").await.unwrap().unwrap();
    assert_eq!(stored.monitoring.threshold, 7);

    // A success: both, and the event after.
    proxy.clear();
    let (s, mut cfg) = call(&rig, "GET", "/api/v1/admin/config", tk, None).await;
    assert_eq!(s, 200);
    cfg["monitoring"]["threshold"] = json!(8);
    let (s, v) = call(&rig, "PUT", "/api/v1/admin/config", tk, Some(cfg)).await;
    assert_eq!(s, 200, "{v}");
    let last = partition(&rig, "acme").await;
    assert_eq!(audits(&last), audits(&before) + 2);
    assert_eq!(
        rig.store()
            .get_config("acme")
            .await
            .unwrap()
            .unwrap()
            .monitoring
            .threshold,
        8
    );
    let changed: Vec<_> = rig
        .env
        .events()
        .await
        .into_iter()
        .filter(|(k, _)| k == "ConfigChanged")
        .collect();
    assert!(!changed.is_empty(), "published after");
    assert_eq!(
        changed.last().unwrap().1["after"]["monitoring"]["threshold"],
        8
    );
}

/// The `what` of the partition's audit items, in key order.
fn audit_whats(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<String> {
    items
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s.starts_with("AUDIT#"))
        })
        .filter_map(|i| i.get("what").and_then(|v| v.as_s().ok()).cloned())
        .collect()
}

/// [`audit_whats`] sorted (the test clock stands still: records of one instant sort by their
/// request ids).
fn audit_set(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<String> {
    let mut whats = audit_whats(items);
    whats.sort();
    whats
}

/// An API rig whose continuity store (users import), domain claims and directory (delegates,
/// lists) write through the fault proxy in front of DynamoDB Local.
async fn rig_behind(proxy: &integration_tests::faults::FaultProxy) -> ApiRig {
    let sdk = integration_tests::sdk().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(proxy.url())
            .build(),
    );
    ApiRig::start_with(t(NOW), move |s| {
        let store = std::sync::Arc::new(shared::adapters::dynamodb::DynamoStore::new(
            client,
            s.settings.table.clone(),
        ));
        s.continuity_store = store.clone();
        s.claims = store.clone();
        s.directory = store;
    })
    .await
}

/// One administrator's change through the API with its transaction faulted (P7, issue 13):
/// refused on every attempt (the SDK's six), nothing changes, nothing is audited or published;
/// applied with the answer lost, the SDK's retry finds its own audit record: the change and ONE
/// audit record, and the request succeeds; then (`repeatable`) a plain success: the change, its
/// audit; the event published. `request` is (method, path, body); `what` the audit's name.
async fn audited_in_one_transaction(
    rig: &ApiRig,
    proxy: &integration_tests::faults::FaultProxy,
    request: (&str, &str, Value),
    (what, event): (&str, &str),
    repeatable: bool,
) {
    let admin = rig.token("admin@acme.test", true);
    let tk = Some(admin.as_str());
    let (method, path, body) = request;
    rig.env.events().await;
    let before = partition(rig, "acme").await;
    for kind in ["internal", "throttle", "reject"] {
        proxy.set_control(json!({
            "seed": 3, "operations": ["TransactWriteItems"], "faults": {kind: 1.0}, "limit": 6
        }));
        let (s, v) = call(rig, method, path, tk, Some(body.clone())).await;
        assert!([500, 503].contains(&s), "{what} {kind}: {s} {v}");
        assert_eq!(
            partition(rig, "acme").await,
            before,
            "{what} {kind}: nothing changed, nothing audited"
        );
    }
    assert!(
        rig.env.events().await.iter().all(|(k, _)| k != event),
        "{what}: no event for a change not made"
    );
    proxy.set_control(json!({
        "seed": 3, "operations": ["TransactWriteItems"], "faults": {"drop_after": 1.0}, "limit": 1
    }));
    let (s, v) = call(rig, method, path, tk, Some(body.clone())).await;
    assert!((200..300).contains(&s), "{what}, the answer lost: {s} {v}");
    let lost = partition(rig, "acme").await;
    let mut expected = audit_whats(&before);
    expected.push(what.to_string());
    expected.sort();
    assert_eq!(audit_set(&lost), expected, "{what}: one audit record");
    proxy.clear();
    if repeatable {
        let (s, v) = call(rig, method, path, tk, Some(body)).await;
        assert!((200..300).contains(&s), "{what}: {s} {v}");
        expected.push(what.to_string());
        expected.sort();
        assert_eq!(audit_set(&partition(rig, "acme").await), expected);
    }
    let published: Vec<_> = rig
        .env
        .events()
        .await
        .into_iter()
        .filter(|(k, d)| k == event && d["what"] == what)
        .collect();
    assert!(!published.is_empty(), "{what}: published after");
}

#[tokio::test]
async fn every_administrators_change_and_its_audit_are_one_transaction() {
    use integration_tests::faults::FaultProxy;
    let proxy = FaultProxy::dynamodb().await;
    let rig = rig_behind(&proxy).await;
    org_with_link(&rig, "acme", "UTC").await;

    let revoke = "/api/v1/admin/delegates/bob@acme.test/sales@acme.test";
    let users = json!({"users": [
        {"address": "bob@acme.test", "mobile": "+447700900123"},
        {"address": "carol@acme.test"}
    ]});
    let grant = json!({"user": "bob@acme.test", "mailbox": "sales@acme.test"});
    let groups = json!({"groups": [{"address": "all@acme.test", "members": ["bob@acme.test"]}]});
    let domain = json!({"domain": "claimed-by-acme.example"});
    // (request, audit record and event, repeatable): the users import (its switch to the new
    // generation), a delegate grant and its revocation (revoked once: a second DELETE finds no
    // grant), a distribution-list import, a domain claim (its proof is written the same way,
    // `record_proof_audited`).
    let cases = [
        (
            ("PUT", "/api/v1/admin/users", users),
            ("users-import", "ConfigChanged"),
            true,
        ),
        (
            ("POST", "/api/v1/admin/delegates", grant),
            ("delegate-grant", "DirectoryChanged"),
            true,
        ),
        (
            ("DELETE", revoke, json!({})),
            ("delegate-revoke", "DirectoryChanged"),
            false,
        ),
        (
            ("PUT", "/api/v1/admin/groups", groups),
            ("groups-import", "DirectoryChanged"),
            true,
        ),
        (
            ("POST", "/api/v1/admin/domains", domain),
            ("domain-claim", "DomainsChanged"),
            true,
        ),
    ];
    for (request, names, repeatable) in cases {
        audited_in_one_transaction(&rig, &proxy, request, names, repeatable).await;
    }
    let directory = rig.store().user_directory("acme").await.unwrap();
    assert_eq!(directory.users.len(), 2, "the directory imported");
    // No grant left to revoke: nothing changes, nothing is audited.
    let settled = partition(&rig, "acme").await;
    let admin = rig.token("admin@acme.test", true);
    let (s, v) = call(&rig, "DELETE", revoke, Some(&admin), None).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(partition(&rig, "acme").await, settled, "no grant: nothing");
}

/// Every item of `pk` in `store`'s table (consistent).
async fn items_of(
    store: &shared::adapters::dynamodb::DynamoStore,
    pk: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn passkey_changes_and_their_audit_are_one_transaction() {
    use integration_tests::faults::FaultProxy;
    use shared::domain::continuity::{AuditRecord, Via};
    use shared::ports::store::{PasskeyRecord, PasskeyStore};
    // The passkeys use case needs a browser's ceremony to enrol (`passkeys_browser.rs` does it
    // end to end); here its store's writes, as the use case makes them, against faults.
    let proxy = FaultProxy::dynamodb().await;
    let store = proxy.store().await;
    let record = PasskeyRecord {
        org_id: "acme".into(),
        address: "bob@acme.test".into(),
        credential_id: "cred-one".into(),
        passkey: "{}".into(),
        label: "Work laptop".into(),
        created_at: t(NOW),
        last_used_at: None,
    };
    let audit = |what: &str, id: &str| AuditRecord {
        org_id: "acme".into(),
        at: t(NOW),
        who: "user:bob@acme.test".into(),
        via: Via::Console,
        what: what.into(),
        minutes: None,
        before: Value::Null,
        after: json!({"user": "bob@acme.test", "credential": "cred-one"}),
        source: "192.0.2.1".into(),
        request_id: id.into(),
    };
    let enrol = audit("passkey-enrol", "r-enrol");
    let state = || async {
        (
            items_of(&store, "ORG#acme").await,
            items_of(&store, "CREDENTIAL#cred-one").await.len(),
        )
    };
    let fault = |kind: &str| {
        proxy.set_control(json!({
            "seed": 5, "operations": ["TransactWriteItems"], "faults": {kind: 1.0}, "limit": 6
        }))
    };

    // Enrolment refused on every attempt: no passkey, no credential, no audit.
    for kind in ["internal", "throttle", "reject"] {
        fault(kind);
        assert!(store
            .add_passkey_audited(&record, Some(&enrol))
            .await
            .is_err());
        proxy.clear();
        assert_eq!(state().await, (vec![], 0), "{kind}: nothing written");
    }
    // Written, the answer lost: the retry finds its own audit record; a success, not "already
    // registered", and one audit record.
    proxy.set_control(json!({
        "seed": 5, "operations": ["TransactWriteItems"], "faults": {"drop_after": 1.0}, "limit": 1
    }));
    assert!(store
        .add_passkey_audited(&record, Some(&enrol))
        .await
        .expect("enrolled"));
    proxy.clear();
    let (items, credentials) = state().await;
    assert_eq!(audit_whats(&items), ["passkey-enrol"]);
    assert_eq!(credentials, 1);
    assert_eq!(
        store.passkeys("acme", "bob@acme.test").await.unwrap().len(),
        1
    );

    // The administrator's revocation: refused, everything stays; the answer lost, done once.
    let revoke = audit("passkeys-revoke", "r-revoke");
    let ids = vec!["cred-one".to_string()];
    let enrolled = state().await;
    for kind in ["internal", "throttle", "reject"] {
        fault(kind);
        assert!(store
            .remove_passkeys_audited("acme", "bob@acme.test", &ids, &revoke)
            .await
            .is_err());
        proxy.clear();
        assert_eq!(
            state().await,
            enrolled,
            "{kind}: nothing removed, nothing audited"
        );
    }
    proxy.set_control(json!({
        "seed": 5, "operations": ["TransactWriteItems"], "faults": {"drop_after": 1.0}, "limit": 1
    }));
    store
        .remove_passkeys_audited("acme", "bob@acme.test", &ids, &revoke)
        .await
        .expect("revoked");
    proxy.clear();
    let (items, credentials) = state().await;
    assert_eq!(audit_set(&items), ["passkey-enrol", "passkeys-revoke"]);
    assert_eq!(credentials, 0);
    assert!(store
        .passkeys("acme", "bob@acme.test")
        .await
        .unwrap()
        .is_empty());
}
