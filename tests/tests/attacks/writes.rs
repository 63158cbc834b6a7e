//! Writes that cannot be lost or grown without bound (issue 12): a leaked link posting
//! thousands of actions, configuration writes racing or replaying a stale version, a request
//! sent again and again. Each asserts the refusal and that nothing changed.

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures::future::join_all;
use integration_tests::api::ApiRig;
use integration_tests::portal_support::{act, form, get, org_with_link, partition, post_form};
use integration_tests::pricing::item_bytes;
use integration_tests::t;
use serde_json::{json, Value};
use shared::adapters::dynamodb::keys::{org_pk, request_sk, CONTINUITY_SK, REQUEST_DAYS};
use shared::app::continuity::{Continuity, Requester};
use shared::domain::continuity::{Action, ActionOutcome, Refusal, Via};
use shared::ports::clock::Clock;
use shared::ports::domains::DomainClaims;
use shared::ports::error::SendError;
use shared::ports::notify::EventBus;
use shared::ports::store::{ConfigStore, ContinuityViews, DomainOwners};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

const NOW: &str = "2026-11-23T10:00:00Z";

/// An administrator's JSON request: (status, `ETag`, body). `if_match` is sent as `If-Match`.
async fn admin(
    rig: &ApiRig,
    method: &str,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let token = rig.token("admin@acme.test", true);
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    let (status, answer_headers, answer) = rig
        .json_request(method, path, Some(&token), &headers, body)
        .await;
    let etag = answer_headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, etag, answer)
}

/// The raw item `sk` of acme's partition (consistent).
async fn item(rig: &ApiRig, sk: &str) -> Option<HashMap<String, AttributeValue>> {
    rig.store()
        .client()
        .get_item()
        .table_name(rig.store().table())
        .key("pk", AttributeValue::S(org_pk("acme")))
        .key("sk", AttributeValue::S(sk.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
}

/// How many of acme's items have a sort key starting with `prefix` (every page counted).
async fn count(rig: &ApiRig, prefix: &str) -> i32 {
    let mut total = 0;
    let mut start = None;
    loop {
        let out = rig
            .store()
            .client()
            .query()
            .table_name(rig.store().table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", AttributeValue::S(org_pk("acme")))
            .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
            .select(Select::Count)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("count");
        total += out.count;
        start = out.last_evaluated_key;
        if start.is_none() {
            return total;
        }
    }
}

/// Which organisation owns each of `domains` (absent: no domain item).
async fn owners(rig: &ApiRig, domains: &[&str]) -> HashMap<String, String> {
    let names: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
    rig.store().orgs_for_domains(&names).await.expect("owners")
}

/// The flood's events, counted rather than sent to the local bus: 10,000 `PutEvents` to moto
/// would be most of the test's time, and the bus is not what this attack is about (every other
/// test here publishes to it).
#[derive(Default)]
struct CountingBus(AtomicUsize);

#[async_trait::async_trait]
impl EventBus for CountingBus {
    async fn publish(&self, _: &str, _: Value) -> Result<(), SendError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test]
async fn ten_thousand_suspends_with_one_link_keep_the_item_small_and_actions_working() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    // The first through the link's page and form, as whoever holds the link would.
    let (s, page) = act(&rig, &token, "suspend", Some("1h")).await;
    assert_eq!(s, 200, "{page}");
    let small = item_bytes(&item(&rig, CONTINUITY_SK).await.expect("continuity item"));

    // 9,999 more carried-out suspensions of a minute, each with a request id of its own,
    // through the use case the portal calls, on the same table (the link's hourly limit of 20
    // is its own attack; with it, 10,000 actions would take 500 virtual hours of page loads).
    // 60 + 9,999 minutes stay under the 7-day cap, so every one is carried out.
    let now = rig.clock.now();
    let bus = CountingBus::default();
    let continuity = Continuity {
        store: rig.store(),
        bus: &bus,
    };
    for i in 1..10_000 {
        let by = Requester {
            who: "link:ep1-0".into(),
            via: Via::Link,
            source: "203.0.113.9".into(),
            request_id: format!("flood-{i:05}"),
        };
        let outcome = continuity
            .perform("acme", &Action::Suspend { minutes: 1 }, &by, now)
            .await
            .expect("suspend");
        assert!(
            matches!(outcome, ActionOutcome::Applied { .. }),
            "action {i}: {outcome:?}"
        );
    }
    assert_eq!(bus.0.load(Ordering::Relaxed), 9_999, "each published once");
    let state = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(
        state.suspended_until,
        Some(now + chrono::Duration::minutes(60 + 9_999))
    );

    // The item did not grow: the request ids are items of their own, with a TTL.
    let continuity_item = item(&rig, CONTINUITY_SK).await.expect("continuity item");
    let bytes = item_bytes(&continuity_item);
    assert!(
        bytes <= small && bytes < 512,
        "CONTINUITY is {bytes} bytes after 10,000 actions ({small} after the first)"
    );
    assert!(!continuity_item.contains_key("request_ids"));
    assert_eq!(count(&rig, "REQ#").await, 10_000);
    assert_eq!(count(&rig, "AUDIT#").await, 10_000, "one audit record each");
    let record = item(&rig, &request_sk("flood-09999"))
        .await
        .expect("record");
    let ttl: i64 = record["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(
        ttl,
        (now + chrono::Duration::days(REQUEST_DAYS)).timestamp()
    );

    // The cap still answers, through the link: a day more would pass 7 days ahead.
    let before = item(&rig, CONTINUITY_SK).await;
    let (s, page) = act(&rig, &token, "suspend", Some("1d")).await;
    assert_eq!(s, 409, "{page}");
    assert!(page.contains("7 days ahead"), "{page}");
    assert_eq!(item(&rig, CONTINUITY_SK).await, before, "nothing changed");
    assert_eq!(count(&rig, "REQ#").await, 10_000);
    assert_eq!(count(&rig, "AUDIT#").await, 10_000);

    // And other actions keep working: the link activates continuity mode.
    let (s, page) = act(&rig, &token, "activate", Some("1h")).await;
    assert_eq!(s, 200, "{page}");
    let state = rig.store().continuity_state("acme").await.unwrap();
    assert!(state.active(rig.clock.now()));
    assert_eq!(count(&rig, "AUDIT#").await, 10_001);
}

#[tokio::test]
async fn a_request_sent_again_and_again_acts_once() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, rid) = form(&page, &token, "suspend").expect("suspend form");
    let url = rig.url(&format!("/l/{token}/suspend"));
    let fields = [
        ("form_token", ft.as_str()),
        ("request_id", rid.as_str()),
        ("duration", "1h"),
    ];
    // Six copies of the same form at once: one acts, the others find it done.
    let answers = join_all((0..6).map(|_| post_form(&url, &fields))).await;
    for (s, page) in &answers {
        assert_eq!(*s, 200, "{page}");
    }
    let repeats = answers
        .iter()
        .filter(|(_, p)| p.contains("had already been carried out"))
        .count();
    assert_eq!(repeats, 5, "one carried out, five repeats");
    let state = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(
        state.suspended_until,
        Some(rig.clock.now() + chrono::Duration::hours(1))
    );
    assert_eq!(count(&rig, "REQ#").await, 1);
    assert_eq!(count(&rig, "AUDIT#").await, 1);

    // The same form an hour later (the link lives 24 hours): still done, nothing changes.
    rig.clock.advance(chrono::Duration::hours(1));
    let before = partition(&rig, "acme").await;
    let (s, again) = post_form(&url, &fields).await;
    assert_eq!(s, 200, "{again}");
    assert!(again.contains("had already been carried out"), "{again}");
    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");

    // The administration API's Idempotency-Key is the same request id: sent twice, acts once.
    let c = ApiRig::http();
    let send = || {
        c.post(rig.url("/api/v1/admin/continuity/activate"))
            .bearer_auth(rig.token("admin@acme.test", true))
            .header("idempotency-key", "retry-key-0001")
            .json(&json!({"minutes": 60}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["outcome"], "applied", "{first}");
    let before = partition(&rig, "acme").await;
    let second: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(second["outcome"], "repeated", "{second}");
    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
}

/// acme's configuration listing `domains`, each proven (its ownership item recorded), stored
/// through the administration API; the version stored.
async fn acme_with_domains(rig: &ApiRig, domains: &[&str]) -> u64 {
    let now = rig.clock.now();
    let mut cfg = integration_tests::inbound_org("acme", 5);
    cfg.domains = domains.iter().map(|d| d.to_string()).collect();
    rig.store().put_config(&cfg, now).await.expect("config");
    for d in domains {
        assert!(rig.store().record_proof("acme", d, now).await.unwrap());
    }
    rig.store()
        .stored_config("acme")
        .await
        .unwrap()
        .expect("stored")
        .version
}

#[tokio::test]
async fn two_concurrent_config_writes_one_wins_one_gets_409() {
    let rig = ApiRig::start(t(NOW)).await;
    let all = ["acme.test", "acme-b.test", "acme-c.test"];
    acme_with_domains(&rig, &all).await;
    let (s, etag, doc) = admin(&rig, "GET", "/api/v1/admin/config", None, None).await;
    assert_eq!(s, 200, "{doc}");
    let version = doc["version"].as_u64().expect("version");
    assert_eq!(etag, Some(format!("\"{version}\"")));

    // Two administrators edit what they read: one drops acme-b.test, the other acme-c.test.
    let without = |d: &str| {
        let mut edit = doc.clone();
        edit["domains"] = json!(all.iter().filter(|x| **x != d).collect::<Vec<_>>());
        edit.as_object_mut().unwrap().remove("version");
        edit
    };
    let tag = format!("\"{version}\"");
    let (a, b) = tokio::join!(
        admin(
            &rig,
            "PUT",
            "/api/v1/admin/config",
            Some(without("acme-b.test")),
            Some(&tag)
        ),
        admin(
            &rig,
            "PUT",
            "/api/v1/admin/config",
            Some(without("acme-c.test")),
            Some(&tag)
        ),
    );
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{} / {}", a.2, b.2);
    let (winner, loser) = if a.0 == 200 { (a, b) } else { (b, a) };
    let message = loser.2["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("read it again") && message.contains("Nothing was changed"),
        "{message}"
    );
    assert_eq!(winner.2["version"].as_u64(), Some(version + 1));

    // The winner's configuration is stored, and the domain items agree with it exactly.
    let stored = rig.store().stored_config("acme").await.unwrap().unwrap();
    assert_eq!(stored.version, version + 1);
    assert_eq!(json!(stored.config.domains), winner.2["domains"]);
    let owned = owners(&rig, &all).await;
    for d in all {
        assert_eq!(
            owned.contains_key(d),
            stored.config.domains.iter().any(|x| x == d),
            "domain item of {d} against the configuration {:?}",
            stored.config.domains
        );
    }
    // One change audited, not two.
    let audit = rig
        .store()
        .audit("acme", t(NOW), rig.clock.now(), 100)
        .await
        .unwrap();
    assert_eq!(audit.iter().filter(|r| r.what == "config").count(), 1);

    // Eight at once on the new version: still exactly one wins.
    let tag = format!("\"{}\"", version + 1);
    let names: Vec<String> = (0..8).map(|i| format!("Acme {i}")).collect();
    let edits: Vec<Value> = names
        .iter()
        .map(|n| {
            let mut e = winner.2.clone();
            e["name"] = json!(n);
            e
        })
        .collect();
    let answers = join_all(edits.into_iter().map(|e| {
        let rig = &rig;
        let tag = tag.clone();
        async move { admin(rig, "PUT", "/api/v1/admin/config", Some(e), Some(&tag)).await }
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| a.0 == 200).count(), 1);
    assert_eq!(answers.iter().filter(|a| a.0 == 409).count(), 7);
    let stored = rig.store().stored_config("acme").await.unwrap().unwrap();
    assert_eq!(stored.version, version + 2);
    let won = answers.iter().find(|a| a.0 == 200).unwrap();
    assert_eq!(json!(stored.config.name), won.2["name"]);
}

#[tokio::test]
async fn a_stale_config_write_gets_409_and_changes_nothing() {
    let rig = ApiRig::start(t(NOW)).await;
    let all = ["acme.test", "acme-b.test"];
    acme_with_domains(&rig, &all).await;
    let (_, _, read) = admin(&rig, "GET", "/api/v1/admin/config", None, None).await;
    let v = read["version"].as_u64().expect("version");
    // Someone else's change first (the document GET returned, version included: conditional).
    let mut theirs = read.clone();
    theirs["name"] = json!("Acme (renamed)");
    let (s, etag, body) = admin(&rig, "PUT", "/api/v1/admin/config", Some(theirs), None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(etag, Some(format!("\"{}\"", v + 1)));

    // Now the stale edit: drops a domain, names the version read before.
    let before = partition(&rig, "acme").await;
    let owned = owners(&rig, &all).await;
    let mut mine = read.clone();
    mine["domains"] = json!(["acme.test"]);
    mine.as_object_mut().unwrap().remove("version");
    let stale = format!("\"{v}\"");
    let (s, _, body) = admin(
        &rig,
        "PUT",
        "/api/v1/admin/config",
        Some(mine.clone()),
        Some(&stale),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("since version {v} was read"))
            && message.contains("Nothing was changed")
            && message.contains(&format!("If-Match: \"{}\"", v + 1)),
        "{message}"
    );
    // The same stale version in the body instead of If-Match; pausing the queue and verifying
    // a domain on it; a version that is no version, or two different ones.
    let mut in_body = mine.clone();
    in_body["version"] = json!(v);
    let config = "/api/v1/admin/config";
    let refusals = [
        ("PUT", config, Some(in_body.clone()), None, 409),
        (
            "POST",
            "/api/v1/admin/queue/pause",
            None,
            Some(stale.clone()),
            409,
        ),
        (
            "POST",
            "/api/v1/admin/domains/acme-b.test/verify",
            None,
            Some(stale),
            409,
        ),
        (
            "PUT",
            config,
            Some(mine),
            Some("\"v1\", \"v2\"".to_string()),
            400,
        ),
        (
            "PUT",
            config,
            Some(in_body),
            Some(format!("\"{}\"", v + 1)),
            400,
        ),
    ];
    for (method, path, body, tag, want) in refusals {
        let (s, _, answer) = admin(&rig, method, path, body, tag.as_deref()).await;
        assert_eq!(s, want, "{method} {path}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }

    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
    assert_eq!(owners(&rig, &all).await, owned, "domain items unchanged");

    // Read again, change that version: accepted.
    let (_, etag, fresh) = admin(&rig, "GET", "/api/v1/admin/config", None, None).await;
    let (s, _, body) = admin(
        &rig,
        "POST",
        "/api/v1/admin/queue/pause",
        None,
        etag.as_deref(),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["version"].as_u64(),
        Some(fresh["version"].as_u64().unwrap() + 1)
    );
}

#[tokio::test]
async fn an_automatic_activation_and_a_link_activation_at_once_activate_once() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let now = rig.clock.now();
    let continuity = rig.state.continuity();
    let by = Requester {
        who: "link:ep1-0".into(),
        via: Via::Link,
        source: "203.0.113.9".into(),
        request_id: "link-activate-01".into(),
    };
    let activate = Action::Activate { minutes: 60 };
    let (auto, link) = tokio::join!(
        continuity.activate_automatically("acme", "ep1", 120, now),
        continuity.perform("acme", &activate, &by, now),
    );
    let auto = auto.expect("auto");
    let link = link.expect("link");
    // Exactly one of the two activated; the other saw an active event.
    match (&auto, &link) {
        (Some(_), ActionOutcome::Refused { refusal, .. }) => {
            assert!(matches!(refusal, Refusal::AlreadyActive(_)))
        }
        (None, ActionOutcome::Applied { .. }) => {}
        other => panic!("both or neither activated: {other:?}"),
    }
    assert_eq!(count(&rig, "AUDIT#").await, 1);
    // The same episode again: nothing more.
    let before = partition(&rig, "acme").await;
    assert_eq!(
        continuity
            .activate_automatically("acme", "ep1", 120, now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
}
