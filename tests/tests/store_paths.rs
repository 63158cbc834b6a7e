//! Store paths that depend on DynamoDB itself: the monitored-organisation listing pages past
//! 1 MB, delivery outcomes are counted atomically under concurrency, TTL attributes are set, and
//! probe arrivals are recorded once and only for probes this service sent.

use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use integration_tests::*;
use shared::adapters::dynamodb::keys::{inbound_sk, org_pk};
use shared::domain::monitoring::{ArrivalOutcome, DeliveryOutcome};
use shared::domain::probe::ProbeToken;
use shared::domain::window::Window;
use shared::ports::store::{ConfigStore, DomainOwners};
use shared::ports::store::{InboundRecorder, MonitorStore, ProbeArrivals};

/// The raw TTL attribute of one of acme's items (DynamoDB Local never deletes expired items, so
/// the attribute's value is what is tested).
async fn ttl_of(store: &shared::adapters::dynamodb::DynamoStore, sk: &str) -> i64 {
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(org_pk("acme")))
        .key("sk", AttributeValue::S(sk.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    item["expires_at"].as_n().unwrap().parse().unwrap()
}

#[tokio::test]
async fn listing_pages_through_more_than_a_megabyte_of_organisations() {
    let store = fresh_store().await;
    let n = 1_500;
    stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let store = store.clone();
            async move {
                let mut cfg = probed_org(&format!("org-{i:05}"), 3, 587);
                cfg.name = format!(
                    "Organisation number {i} with a long display name {}",
                    "x".repeat(40)
                );
                cfg.domains
                    .extend((0..8).map(|d| format!("d{d}.org-{i:05}.example")));
                store
                    .put_config(&cfg, t("2026-11-23T00:00:00Z"))
                    .await
                    .unwrap();
            }
        })
        .await;
    let before = store.metrics();
    let orgs = store.monitored_orgs().await.unwrap();
    let requests = store.metrics().requests - before.requests;
    assert_eq!(orgs.len(), n);
    assert!(orgs.iter().all(|o| o.config.is_ok()));
    let mut ids: Vec<_> = orgs.iter().map(|o| o.org_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), n, "no organisation twice");
    assert!(requests >= 2, "more than one page ({requests} requests)");
}

#[tokio::test]
async fn delivery_outcomes_are_counted_atomically() {
    let store = fresh_store().await;
    let at = t("2026-11-23T10:00:30Z");
    stream::iter(0..60)
        .for_each_concurrent(30, |i| {
            let store = store.clone();
            async move {
                let o = if i % 3 == 0 {
                    DeliveryOutcome::AllRoutesFailed
                } else {
                    DeliveryOutcome::Accepted
                };
                store.record_delivery("acme", at, o).await.unwrap();
            }
        })
        .await;
    let w = Window::containing(at);
    let state = store.window_state("acme", w).await.unwrap();
    assert_eq!((state.inbound.failures, state.inbound.successes), (20, 40));

    // Raw item: the TTL attribute is two days after the window's end.
    assert_eq!(
        ttl_of(&store, &inbound_sk(w)).await,
        (w.end() + chrono::Duration::days(2)).timestamp()
    );
}

#[tokio::test]
async fn history_items_expire_after_thirty_days() {
    let store = fresh_store().await;
    store
        .put_config(&inbound_org("acme", 3), t("2026-11-23T00:00:00Z"))
        .await
        .unwrap();
    let w = Window::containing(t("2026-11-23T10:00:00Z"));
    let deps = deps(
        store.clone(),
        std::sync::Arc::new(VirtualClock::new(w.end())),
        std::time::Duration::from_secs(1),
    )
    .await;
    deps.monitor().run(w.end()).await.unwrap();
    assert_eq!(
        ttl_of(&store, &shared::adapters::dynamodb::keys::history_sk(w)).await,
        (w.end() + chrono::Duration::days(30)).timestamp()
    );
}

#[tokio::test]
async fn probe_arrivals_are_recorded_once_and_only_for_our_probes() {
    let store = fresh_store().await;
    let w = Window::containing(t("2026-11-23T10:00:00Z"));
    let token = ProbeToken::new("acme", w);
    assert!(store
        .claim_probe("acme", w, &token.nonce, w.start())
        .await
        .unwrap());
    assert!(
        !store
            .claim_probe("acme", w, "another-nonce", w.start())
            .await
            .unwrap(),
        "second claim refused"
    );
    store.finish_probe("acme", w, Ok(w.start())).await.unwrap();

    let forged = ProbeToken {
        nonce: "0".repeat(32),
        ..token.clone()
    };
    assert_eq!(
        store
            .record_probe_arrival(&forged, w.start())
            .await
            .unwrap(),
        ArrivalOutcome::Unknown
    );
    let other_window = ProbeToken {
        window: w.next(),
        ..token.clone()
    };
    assert_eq!(
        store
            .record_probe_arrival(&other_window, w.start())
            .await
            .unwrap(),
        ArrivalOutcome::Unknown
    );
    let first = w.start() + chrono::Duration::seconds(4);
    assert_eq!(
        store.record_probe_arrival(&token, first).await.unwrap(),
        ArrivalOutcome::Recorded
    );
    assert_eq!(
        store
            .record_probe_arrival(&token, first + chrono::Duration::seconds(50))
            .await
            .unwrap(),
        ArrivalOutcome::Duplicate
    );
    let rec = store.probe("acme", w).await.unwrap().unwrap();
    assert_eq!(
        rec.arrived_at,
        Some(first),
        "a redelivery does not move the arrival time"
    );
}

#[tokio::test]
async fn queue_figures_read_the_count_and_the_oldest_queued_message() {
    use shared::adapters::dynamodb::keys::{queue_sk, QUEUESTAT_SK};
    use shared::domain::queue::QueueFigures;
    use shared::ports::store::QueueFiguresSource;
    use std::collections::HashMap;
    let store = fresh_store().await;
    assert_eq!(
        store.queue_figures("acme").await.unwrap(),
        QueueFigures::default()
    );
    let s = |v: &str| AttributeValue::S(v.to_string());
    let oldest = t("2026-11-23T08:00:00.250Z");
    for (at, id) in [
        (t("2026-11-23T09:00:00Z"), "m2"),
        (oldest, "m1"),
        (t("2026-11-23T10:00:00Z"), "m3"),
    ] {
        store
            .put_raw(HashMap::from([
                ("pk".into(), s(&org_pk("acme"))),
                ("sk".into(), s(&queue_sk(at, id))),
                ("enqueued_at".into(), s(&at.to_rfc3339())),
            ]))
            .await
            .unwrap();
    }
    store
        .put_raw(HashMap::from([
            ("pk".into(), s(&org_pk("acme"))),
            ("sk".into(), s(QUEUESTAT_SK)),
            ("count".into(), AttributeValue::N("3".into())),
        ]))
        .await
        .unwrap();
    let f = store.queue_figures("acme").await.unwrap();
    assert_eq!(
        f,
        QueueFigures {
            count: 3,
            oldest: Some(oldest)
        }
    );
    assert_eq!(
        store.queue_figures("other").await.unwrap(),
        QueueFigures::default(),
        "organisations are apart"
    );
}

#[tokio::test]
async fn config_writes_are_conditional_on_the_version_they_replace() {
    use shared::ports::error::PutConfigError;
    let store = fresh_store().await;
    let now = t("2026-11-23T00:00:00Z");
    let mut cfg = inbound_org("acme", 3);
    // The first write: nothing stored, version 1 (one GetItem, one transaction).
    let m = store.metrics();
    store.put_config(&cfg, now).await.unwrap();
    assert_eq!(store.metrics().requests - m.requests, 2);
    let v1 = store.stored_config("acme").await.unwrap().unwrap();
    assert_eq!(v1.version, 1);
    // A creation that finds one stored lost a race.
    assert!(matches!(
        store.replace_config(&cfg, None, now).await,
        Err(PutConfigError::Stale { read: 0 })
    ));
    // On the version read: one transaction, the next version.
    cfg.domains.push("acme-two.test".into());
    let m = store.metrics();
    assert_eq!(store.replace_config(&cfg, Some(&v1), now).await.unwrap(), 2);
    assert_eq!(store.metrics().requests - m.requests, 1);
    // On version 1 again: refused, and its domain items with it (none added, none removed).
    let mut stale = v1.config.clone();
    stale.domains.push("acme-three.test".into());
    assert!(matches!(
        store.replace_config(&stale, Some(&v1), now).await,
        Err(PutConfigError::Stale { read: 1 })
    ));
    let names = ["acme.test", "acme-two.test", "acme-three.test"].map(String::from);
    let mut owned: Vec<String> = store
        .orgs_for_domains(&names)
        .await
        .unwrap()
        .into_keys()
        .collect();
    owned.sort();
    assert_eq!(owned, ["acme-two.test", "acme.test"]);
    let v2 = store.stored_config("acme").await.unwrap().unwrap();
    assert_eq!((v2.version, &v2.config), (2, &cfg));

    // An item stored before versions (no attribute) reads as version 0; the first writer on it
    // wins, the second is stale.
    let mut raw = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(org_pk("acme")))
        .key("sk", AttributeValue::S("CONFIG".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    raw.remove("version");
    store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(raw))
        .send()
        .await
        .unwrap();
    let legacy = store.stored_config("acme").await.unwrap().unwrap();
    assert_eq!(legacy.version, 0);
    assert_eq!(
        store
            .replace_config(&cfg, Some(&legacy), now)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store.replace_config(&cfg, Some(&legacy), now).await,
        Err(PutConfigError::Stale { read: 0 })
    ));
}

#[tokio::test]
async fn continuity_requests_are_items_of_their_own_kept_three_days() {
    use shared::adapters::dynamodb::keys::{request_sk, CONTINUITY_SK};
    use shared::domain::continuity::{Action, ActionOutcome, Via};
    use shared::ports::store::{ContinuityStore, ContinuityViews};
    let store = fresh_store().await;
    let now = t("2026-11-23T10:00:00Z");
    let suspend = Action::Suspend { minutes: 60 };
    // Carried out: one BatchGetItem (state and request record), one transaction.
    let m = store.metrics();
    let out = store
        .continuity_action("acme", &suspend, Via::Link, "req-00000001", now)
        .await
        .unwrap();
    assert!(matches!(out, ActionOutcome::Applied { .. }), "{out:?}");
    assert_eq!(store.metrics().requests - m.requests, 2);
    assert_eq!(
        ttl_of(&store, &request_sk("req-00000001")).await,
        (now + chrono::Duration::days(3)).timestamp()
    );
    // A repeat: one BatchGetItem, nothing written.
    let m = store.metrics();
    let out = store
        .continuity_action("acme", &suspend, Via::Link, "req-00000001", now)
        .await
        .unwrap();
    assert!(matches!(out, ActionOutcome::Repeated { .. }), "{out:?}");
    assert_eq!(store.metrics().requests - m.requests, 1);

    // An item of before: its request ids still count as done, and no action adds to them.
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(org_pk("acme")))
        .key("sk", AttributeValue::S(CONTINUITY_SK.into()))
        .update_expression("ADD request_ids :r")
        .expression_attribute_values(":r", AttributeValue::Ss(vec!["old-request-1".into()]))
        .send()
        .await
        .unwrap();
    let out = store
        .continuity_action("acme", &suspend, Via::Link, "old-request-1", now)
        .await
        .unwrap();
    assert!(matches!(out, ActionOutcome::Repeated { .. }), "{out:?}");
    let out = store
        .continuity_action("acme", &suspend, Via::Link, "req-00000002", now)
        .await
        .unwrap();
    assert!(matches!(out, ActionOutcome::Applied { .. }), "{out:?}");
    let (_, _, ids) = store.continuity_record("acme").await.unwrap();
    assert_eq!(ids, ["old-request-1"]);

    // Eight copies of one request at once: carried out once.
    let outcomes = futures::future::join_all(
        (0..8).map(|_| store.continuity_action("acme", &suspend, Via::Link, "req-00000003", now)),
    )
    .await;
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ActionOutcome::Applied { .. })))
        .count();
    let repeated = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ActionOutcome::Repeated { .. })))
        .count();
    assert_eq!((applied, repeated), (1, 7), "{outcomes:?}");
    let state = store.continuity_state("acme").await.unwrap();
    assert_eq!(
        state.suspended_until,
        Some(now + chrono::Duration::hours(3))
    );
}
