//! Across the line between organisations and between roles, on every documented route: the
//! routes are read from `functions/api/openapi.yaml`, so a route added later is attacked without
//! anyone remembering to list it here (a route whose body is not known below fails the test and
//! asks for one).
//!
//! Two organisations on one deployment: `acme` (the victim: a configuration with a contact, a
//! user directory, a delegate grant, a message in Bob's mailbox, audit records) and `globex`
//! (the attacker: its own administrator and users, trusted with nothing of acme).

use integration_tests::api::ApiRig;
use integration_tests::inbox_support::{addr, plain, InboxRig, DOMAIN, ORG};
use integration_tests::portal_support::partition;
use integration_tests::{inbound_org, moto_data, t};
use serde_json::{json, Value};
use shared::ports::store::ConfigStore;
use std::collections::HashMap;
use std::path::PathBuf;

type Item = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Words only acme's data holds: a response to globex containing one has leaked it.
const CONTACT_MARK: &str = "Coyote-7731";
const USER_MARK: &str = "Roadrunner-4411";
const SUBJECT_MARK: &str = "Acme-Quarterly-9902";

/// One documented operation: method, path template, and each value of its `{action}` enum.
struct Operation {
    method: String,
    path: String,
    actions: Vec<String>,
}

fn operations(select: impl Fn(&str) -> bool) -> Vec<Operation> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/api/openapi.yaml");
    let text = std::fs::read_to_string(file).expect("openapi.yaml");
    let doc: serde_norway::Value = serde_norway::from_str(&text).expect("openapi.yaml parses");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().expect("path");
        if !select(path) {
            continue;
        }
        for (method, op) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method");
            if method == "parameters" {
                continue;
            }
            let actions = op["parameters"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|p| p["name"].as_str() == Some("action"))
                .flat_map(|p| {
                    p["schema"]["enum"]
                        .as_sequence()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|v| v.as_str().map(String::from))
                .collect::<Vec<_>>();
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.to_string(),
                actions,
            });
        }
    }
    assert!(!out.is_empty(), "no operation selected");
    out
}

/// The concrete requests for one operation: the path with acme's identifiers in it.
fn targets(op: &Operation, fill: &[(&str, String)]) -> Vec<String> {
    let mut path = op.path.clone();
    for (name, value) in fill {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let paths = if op.actions.is_empty() {
        vec![path]
    } else {
        op.actions
            .iter()
            .map(|a| path.replace("{action}", a))
            .collect()
    };
    for p in &paths {
        assert!(
            !p.contains('{'),
            "{} {}: no value for a parameter",
            op.method,
            p
        );
    }
    paths
}

/// What an attacker sends: `Some((content type, body))`, chosen to be valid for the route so
/// that a refusal is the access check, not the body's validation.
fn body_for(method: &str, path: &str, acme_config: &Value) -> Option<(&'static str, String)> {
    let bob = addr("bob");
    let j = |v: Value| Some(("application/json", v.to_string()));
    match (method, path) {
        ("GET" | "DELETE", _) => None,
        ("PUT", "/api/v1/admin/config") => j(acme_config.clone()),
        ("POST", "/api/v1/admin/continuity/{action}") => j(json!({"minutes": 60})),
        ("POST", "/api/v1/admin/domains") => j(json!({"domain": DOMAIN})),
        ("POST", "/api/v1/admin/domains/{domain}/verify") => None,
        ("POST", "/api/v1/admin/queue/{action}") => None,
        ("POST", "/api/v1/admin/delivery-test") => j(json!({"recipient": bob})),
        ("POST", "/api/v1/admin/probe-test") => None,
        ("PUT", "/api/v1/admin/users") => {
            j(json!({"users": [{"address": bob, "name": "Bob Taken Over"}]}))
        }
        ("POST", "/api/v1/admin/delegates") => {
            j(json!({"user": "mallory@globex.test", "mailbox": bob}))
        }
        ("PUT", "/api/v1/admin/groups") => {
            j(json!({"groups": [{"address": addr("all"), "members": [bob]}]}))
        }
        ("POST", "/api/v1/mailboxes/{mailbox}/send") => j(json!({
            "idempotency_key": "attack-send-0001",
            "to": ["outside@example.net"],
            "subject": "taken over",
            "text": "sent as Bob",
        })),
        ("POST", "/api/v1/mailboxes/{mailbox}/uploads") => j(json!({
            "name": "taken-over.pdf",
            "content_type": "application/pdf",
            "size": 1000,
        })),
        ("POST", "/api/v1/mailboxes/{mailbox}/blocks") => {
            j(json!({"kind": "block", "target": "boss@example.net"}))
        }
        ("POST", "/inbox/{mailbox}/compose") => Some((
            "application/x-www-form-urlencoded",
            "to=outside%40example.net&subject=taken+over&text=sent+as+Bob&idempotency_key=attack-form-0001"
                .into(),
        )),
        ("POST", "/inbox/{mailbox}/blocks") => Some((
            "application/x-www-form-urlencoded",
            "rule=block%3Aboss%40example.net".into(),
        )),
        ("POST", "/inbox/{mailbox}/messages/{id}/state") => Some((
            "application/x-www-form-urlencoded",
            "read=1&flagged=1".into(),
        )),
        ("PATCH", "/api/v1/mailboxes/{mailbox}/messages/{id}") => {
            j(json!({"read": true, "flagged": true}))
        }
        _ => panic!(
            "{method} {path}: no attack body for this route; add a valid one to `body_for` so \
             that the access check, not the body's validation, is what answers"
        ),
    }
}

async fn call(
    rig: &ApiRig,
    method: &str,
    path: &str,
    token: &str,
    body: Option<(&str, String)>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = ApiRig::http()
        .request(method, rig.url(path))
        .bearer_auth(token)
        .header("accept", "application/json");
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// acme with everything an attacker could want, and globex beside it; returns the rig, acme's
/// configuration as its administrator reads it, and the id of the message in Bob's mailbox.
async fn two_organisations() -> (InboxRig, Value, String) {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let store = rig.api.store();
    let mut acme = inbound_org(ORG, 3);
    acme.alerts.contacts.push(shared::domain::config::Contact {
        name: format!("Wile E. {CONTACT_MARK}"),
        mobile: Some("+447700900123".into()),
        email: None,
        recovery_notice: true,
    });
    store.put_config(&acme, rig.now()).await.expect("acme");
    store
        .put_config(&inbound_org("globex", 3), rig.now())
        .await
        .expect("globex");
    let bob = addr("bob");
    let message = rig
        .file(
            &bob,
            rig.now(),
            &plain("ceo@example.org", &bob, SUBJECT_MARK, "q@x", "figures"),
        )
        .await
        .encode();
    let admin = rig.token("admin", true);
    let (st, v) = rig
        .send_json(
            reqwest::Method::PUT,
            &admin,
            "/api/v1/admin/users",
            &json!({"users": [
                {"address": bob, "name": format!("Bob {USER_MARK}"), "mobile": "+447700900456"},
                {"address": addr("alice"), "name": "Alice"},
            ]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = rig
        .post(
            &admin,
            "/api/v1/admin/delegates",
            &json!({"user": addr("alice"), "mailbox": bob}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, config) = rig.get(&admin, "/api/v1/admin/config").await;
    assert_eq!(st, 200, "{config}");
    (rig, config, message)
}

/// Everything of acme an attack could change: its partition, and Bob's mailbox as Bob sees it.
async fn acme_state(rig: &InboxRig) -> (Vec<Item>, Value, Value) {
    let mut items = partition(&rig.api, ORG).await;
    items.sort_by_key(|i| format!("{:?}", i.get("sk")));
    let bob = rig.token("bob", false);
    let bob_box = addr("bob");
    let (_, list) = rig
        .get(&bob, &format!("/api/v1/mailboxes/{bob_box}/messages"))
        .await;
    let (_, blocks) = rig
        .get(&bob, &format!("/api/v1/mailboxes/{bob_box}/blocks"))
        .await;
    (items, list, blocks)
}

/// How many messages and SMS moto has sent (all of them: nothing may leave).
async fn sent_count() -> (usize, usize) {
    let data = moto_data().await;
    let mail = data["ses"]["RawMessage"].as_array().map_or(0, Vec::len)
        + data["ses"]["Message"].as_array().map_or(0, Vec::len);
    let sms = data["sns"]["SMS"].as_array().map_or(0, Vec::len);
    (mail, sms)
}

fn assert_no_leak(what: &str, body: &str) {
    for mark in [CONTACT_MARK, USER_MARK, SUBJECT_MARK] {
        assert!(
            !body.contains(mark),
            "{what} leaked acme's data ({mark}): {body}"
        );
    }
}

#[tokio::test]
async fn a_user_token_is_refused_on_every_admin_route_and_changes_nothing() {
    let (rig, config, _) = two_organisations().await;
    let before = acme_state(&rig).await;
    rig.api.env.events().await; // the setup's own events, drained
    let bob = rig.token("bob", false);
    let fill = [
        ("domain", DOMAIN.to_string()),
        ("address", addr("alice")),
        ("user", addr("alice")),
        ("mailbox", addr("bob")),
    ];
    let mut tried = 0;
    for op in operations(|p| p.starts_with("/api/v1/admin")) {
        for path in targets(&op, &fill) {
            let body = body_for(&op.method, &op.path, &config);
            let (st, text) = call(&rig.api, &op.method, &path, &bob, body).await;
            assert_eq!(st, 403, "{} {path} with a user's token: {text}", op.method);
            assert!(
                text.contains("Administrators only"),
                "{} {path}: the refusal says why: {text}",
                op.method
            );
            assert_no_leak(&format!("{} {path}", op.method), &text);
            tried += 1;
        }
    }
    assert!(tried >= 20, "every admin operation was tried ({tried})");
    assert_eq!(acme_state(&rig).await, before, "nothing of acme changed");
    assert!(rig.api.env.events().await.is_empty(), "no event published");
}

#[tokio::test]
async fn another_organisations_admin_reads_and_changes_nothing_of_acme_on_any_admin_route() {
    let (rig, config, _) = two_organisations().await;
    let before = acme_state(&rig).await;
    let sent = sent_count().await;
    let mallory = rig.api.token("mallory@globex.test", true);
    // acme's identifiers in every path: its domain, its users, Bob's mailbox, Alice's grant.
    let fill = [
        ("domain", DOMAIN.to_string()),
        ("address", addr("bob")),
        ("user", addr("alice")),
        ("mailbox", addr("bob")),
    ];
    let mut refused = Vec::new();
    for op in operations(|p| p.starts_with("/api/v1/admin")) {
        for path in targets(&op, &fill) {
            let body = body_for(&op.method, &op.path, &config);
            let (st, text) = call(&rig.api, &op.method, &path, &mallory, body).await;
            let what = format!("{} {path}", op.method);
            // Signed in and an administrator (of globex): the route answered, for globex only.
            assert!(![401, 405].contains(&st) && st < 500, "{what}: {st} {text}");
            assert_no_leak(&what, &text);
            if st >= 400 {
                refused.push(what);
            }
        }
    }
    // What names acme's things is refused outright; the rest acts on globex's own data (a
    // revoke of acme's grant finds no such grant in globex and answers as for any absent one).
    for expected in [
        "PUT /api/v1/admin/config",
        "POST /api/v1/admin/domains",
        &format!("POST /api/v1/admin/domains/{DOMAIN}/verify"),
        "POST /api/v1/admin/delivery-test",
        "PUT /api/v1/admin/users",
        "POST /api/v1/admin/delegates",
        "PUT /api/v1/admin/groups",
    ] {
        assert!(
            refused.iter().any(|r| r == expected),
            "{expected} was refused (refused: {refused:?})"
        );
    }
    assert_eq!(acme_state(&rig).await, before, "nothing of acme changed");
    let globex_owned = rig
        .api
        .store()
        .get_config("globex")
        .await
        .expect("read")
        .expect("globex config");
    assert_eq!(globex_owned.domains, vec!["globex.test".to_string()]);
    // Globex's own continuity actions may have texted globex's contacts (none configured):
    // nothing was sent to anyone.
    assert_eq!(sent_count().await, sent, "nothing was sent");
}

#[tokio::test]
async fn another_user_of_either_organisation_reaches_no_mailbox_of_bob_on_any_route() {
    let (rig, config, message) = two_organisations().await;
    let before = acme_state(&rig).await;
    let sent = sent_count().await;
    let fill = [
        ("mailbox", addr("bob")),
        ("id", message.clone()),
        ("index", "0".to_string()),
        ("target", "boss@example.net".to_string()),
    ];
    // Mallory of globex, and Eve of acme itself (no grant): Bob's mailbox is not theirs.
    for stranger in ["mallory@globex.test".to_string(), addr("eve")] {
        let token = rig.api.token(&stranger, false);
        let mut tried = 0;
        for op in operations(|p| p.contains("{mailbox}") && !p.starts_with("/api/v1/admin")) {
            for path in targets(&op, &fill) {
                let body = body_for(&op.method, &op.path, &config);
                let (st, text) = call(&rig.api, &op.method, &path, &token, body).await;
                let what = format!("{stranger}: {} {path}", op.method);
                assert_eq!(st, 404, "{what}: not there for a stranger: {text}");
                assert_no_leak(&what, &text);
                tried += 1;
            }
        }
        assert!(tried >= 12, "every mailbox operation was tried ({tried})");
        // The client sync routes name the mailbox in the query.
        for path in [
            format!("/api/v1/client/sync?mailbox={}", addr("bob")),
            format!("/api/v1/client/handed-out?mailbox={}", addr("bob")),
        ] {
            let (st, text) = call(&rig.api, "GET", &path, &token, None).await;
            assert!(
                [403, 404].contains(&st),
                "{stranger}: GET {path}: {st} {text}"
            );
            assert_no_leak(&path, &text);
        }
        let (_, mine) = rig.get(&token, "/api/v1/mailboxes").await;
        assert_eq!(mine["mailboxes"], json!([stranger]));
    }
    assert_eq!(acme_state(&rig).await, before, "nothing of acme changed");
    assert_eq!(sent_count().await, sent, "nothing was sent as Bob");
}
