//! Bad configuration is refused with a message naming the field, and an organisation whose
//! stored configuration is broken never stops the others' evaluation.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::*;
use shared::adapters::dynamodb::keys::{org_pk, CONFIG_SK, MONITORED};
use shared::app::monitor::Evaluation;
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::error::PutConfigError;
use shared::ports::store::ConfigStore;
use shared::ports::store::InboundRecorder;
use std::collections::HashMap;
use std::sync::Arc;

#[tokio::test]
async fn invalid_configuration_is_refused_and_not_stored() {
    let store = fresh_store().await;
    let mut cfg = inbound_org("acme", 3);
    cfg.monitoring.threshold = 0;
    cfg.routes.clear();
    let err = store
        .put_config(&cfg, t("2026-11-23T00:00:00Z"))
        .await
        .unwrap_err();
    let PutConfigError::Invalid(errors) = &err else {
        panic!("expected validation error, got {err}")
    };
    assert_eq!(
        errors.for_field("monitoring.threshold").unwrap().message,
        "must be at least 1"
    );
    assert!(errors.for_field("routes").is_some());
    let msg = err.to_string();
    assert!(
        msg.contains("monitoring.threshold: must be at least 1"),
        "{msg}"
    );
    assert!(
        store.get_config("acme").await.unwrap().is_none(),
        "nothing stored"
    );
}

fn planted(org_id: &str, config: AttributeValue) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), AttributeValue::S(org_pk(org_id))),
        ("sk".into(), AttributeValue::S(CONFIG_SK.into())),
        ("org_id".into(), AttributeValue::S(org_id.into())),
        ("config".into(), config),
        ("gsi1pk".into(), AttributeValue::S(MONITORED.into())),
        ("gsi1sk".into(), AttributeValue::S(org_pk(org_id))),
    ])
}

#[tokio::test]
async fn broken_organisations_do_not_stop_the_others() {
    init_tracing();
    let store = fresh_store().await;
    let w = Window::containing(t("2026-11-23T11:00:00Z"));
    let clock = VirtualClock::new(w.end());
    let deps = deps(
        store.clone(),
        Arc::new(clock),
        std::time::Duration::from_secs(2),
    )
    .await;

    for id in ["good-a", "good-b", "good-c"] {
        store
            .put_config(&inbound_org(id, 3), w.start())
            .await
            .unwrap();
        store
            .record_delivery(id, w.start(), DeliveryOutcome::AllRoutesFailed)
            .await
            .unwrap();
    }
    // Written around the API, as an older version or a hand edit might have left them.
    let mut zero = inbound_org("zero-threshold", 3);
    zero.monitoring.threshold = 0;
    store
        .put_raw(planted(
            "zero-threshold",
            serde_dynamo::to_attribute_value(&zero).unwrap(),
        ))
        .await
        .unwrap();
    store
        .put_raw(planted(
            "garbage",
            AttributeValue::S("not a configuration".into()),
        ))
        .await
        .unwrap();
    store
        .put_raw(planted(
            "wrong-owner",
            serde_dynamo::to_attribute_value(inbound_org("someone-else", 3)).unwrap(),
        ))
        .await
        .unwrap();
    // A probe mailbox that is unreachable: a per-organisation failure of another kind.
    put_secret(&probe_secret(&deps, "unreachable"), "pw").await;
    store
        .put_config(&probed_org("unreachable", 3, free_port()), w.start())
        .await
        .unwrap();

    let report = deps
        .monitor()
        .run(w.end())
        .await
        .expect("the run itself succeeds");
    assert_eq!(report.organisations, 7);
    let by_id = |id: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.org_id == id)
            .unwrap()
            .clone()
    };
    for id in ["good-a", "good-b", "good-c"] {
        assert_eq!(
            by_id(id).evaluation,
            Evaluation::Committed { value: 1, delta: 1 },
            "{id}"
        );
    }
    let reason = |id: &str| match by_id(id).evaluation {
        Evaluation::Failed { reason } => reason,
        other => panic!("{id}: expected a failure, got {other:?}"),
    };
    assert!(
        reason("zero-threshold").contains("monitoring.threshold"),
        "{}",
        reason("zero-threshold")
    );
    assert!(
        reason("garbage").contains("config"),
        "{}",
        reason("garbage")
    );
    assert!(
        reason("wrong-owner").contains("does not match"),
        "{}",
        reason("wrong-owner")
    );
    // Unreachable probe server: its window is still evaluated; the probe fails with a reason.
    let u = by_id("unreachable");
    assert!(matches!(u.evaluation, Evaluation::Committed { .. }));
    assert!(
        matches!(u.probe, shared::app::monitor::ProbeResult::NotSent { ref reason } if reason.contains("could not connect"))
    );
    assert_eq!(report.committed, 4);
    assert_eq!(report.failed, 3);
}

#[tokio::test]
async fn turning_monitoring_off_removes_the_organisation_from_the_run() {
    let store = fresh_store().await;
    let mut cfg = inbound_org("acme", 3);
    store
        .put_config(&cfg, t("2026-11-23T00:00:00Z"))
        .await
        .unwrap();
    cfg.monitoring.enabled = false;
    store
        .put_config(&cfg, t("2026-11-23T00:00:00Z"))
        .await
        .unwrap();
    let orgs = shared::ports::store::MonitorStore::monitored_orgs(&store)
        .await
        .unwrap();
    assert!(orgs.is_empty());
    assert_eq!(
        store.get_config("acme").await.unwrap(),
        Some(cfg),
        "configuration kept"
    );
}
