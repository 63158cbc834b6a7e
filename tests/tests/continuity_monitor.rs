//! What the monitor does with continuity events (P6, P9, P10), through the runner on virtual
//! time against DynamoDB Local and moto: an event ends by itself within one window and its end
//! is announced once; a planned event starts and ends by itself; automatic activation after the
//! condition held N minutes, audited as automatic, and the contacts are told so.

use integration_tests::*;
use shared::domain::config::{AutoActivation, Contact};
use shared::domain::continuity::Phase;
use shared::domain::continuity::{Action, Via};
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::ContinuityViews;
use shared::ports::store::{ContinuityStore, InboundRecorder};

const DAY: &str = "2026-11-23T00:00:00Z";

fn kinds(events: &[(String, serde_json::Value)], kind: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn an_event_ends_by_itself_and_its_end_is_announced_once() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let cfg = inbound_org("acme", 3);
    rig.store().put_config(&cfg, t(DAY)).await.unwrap();
    let out = rig
        .store()
        .continuity_action(
            "acme",
            &Action::Activate { minutes: 60 },
            Via::Console,
            "activate-0001",
            t(DAY),
        )
        .await
        .unwrap();
    assert!(matches!(
        out,
        shared::domain::continuity::ActionOutcome::Applied { .. }
    ));
    rig.advance_to(t("2026-11-23T00:58:00Z")).await;
    assert!(kinds(&rig.alerts.events().await, "ContinuityEnded").is_empty());
    // The end (01:00) passes: within one window it is over and announced, once.
    rig.advance_to(t("2026-11-23T01:02:00Z")).await;
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert!(matches!(
        s.phase(t("2026-11-23T01:02:00Z")),
        Phase::PostEvent { .. }
    ));
    let ended = kinds(&rig.alerts.events().await, "ContinuityEnded");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["ended_at"], "2026-11-23T01:00:00Z");
    assert_eq!(ended[0]["stopped"], false);
    rig.advance_to(t("2026-11-23T01:30:00Z")).await;
    assert!(kinds(&rig.alerts.events().await, "ContinuityEnded").is_empty());
    // Two runs of the same window announce nothing twice (the claim is a conditional write).
    assert!(!rig
        .store()
        .claim_announcement("acme", "activate-0001", false)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_planned_event_starts_and_ends_by_itself() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let cfg = inbound_org("acme", 3);
    rig.store().put_config(&cfg, t(DAY)).await.unwrap();
    rig.store()
        .continuity_action(
            "acme",
            &Action::Schedule {
                start: t("2026-11-23T00:30:00Z"),
                end: t("2026-11-23T01:00:00Z"),
            },
            Via::Console,
            "plan-00001",
            t(DAY),
        )
        .await
        .unwrap();
    rig.advance_to(t("2026-11-23T00:28:00Z")).await;
    assert!(kinds(&rig.alerts.events().await, "ContinuityActivated").is_empty());
    rig.advance_to(t("2026-11-23T00:32:00Z")).await;
    let started = kinds(&rig.alerts.events().await, "ContinuityActivated");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["planned"], true);
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert!(s.active(t("2026-11-23T00:32:00Z")));
    rig.advance_to(t("2026-11-23T01:02:00Z")).await;
    let events = rig.alerts.events().await;
    assert_eq!(kinds(&events, "ContinuityEnded").len(), 1);
    assert!(kinds(&events, "ContinuityActivated").is_empty());
}

#[tokio::test]
async fn automatic_activation_after_the_condition_held() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut cfg = inbound_org("acme", 3);
    let phone = format!("+4477{:08}", rand::random::<u32>() % 100_000_000);
    cfg.alerts.contacts = vec![Contact {
        name: "Admin".into(),
        mobile: Some(phone.clone()),
        email: None,
        recovery_notice: false,
    }];
    cfg.continuity.auto_activate = Some(AutoActivation {
        after_minutes: 10,
        duration_minutes: 240,
    });
    rig.store().put_config(&cfg, t(DAY)).await.unwrap();
    // Failing from the first window: the threshold (3) is reached at 00:06, the condition has
    // held 10 minutes at 00:16.
    for k in 0..12 {
        let w = Window(Window::containing(t(DAY)).0 + k);
        rig.store()
            .record_delivery(
                "acme",
                w.start() + chrono::Duration::seconds(30),
                DeliveryOutcome::AllRoutesFailed,
            )
            .await
            .unwrap();
        rig.advance_to(w.end()).await;
    }
    let s = rig.store().continuity_state("acme").await.unwrap();
    let now = t("2026-11-23T00:24:00Z");
    assert!(s.active(now), "{s:?}");
    let until = s.event_until.unwrap();
    assert!(
        until > t("2026-11-23T04:00:00Z") && until <= t("2026-11-23T04:24:00Z"),
        "{until}"
    );
    let audit = rig.store().audit("acme", t(DAY), now, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].via, Via::Automatic);
    assert_eq!(audit[0].who, "service:auto-activation");
    let activated = kinds(&rig.alerts.events().await, "ContinuityActivated");
    assert_eq!(activated.len(), 1, "once, however many runs");
    assert_eq!(activated[0]["automatic"], true);
    let sms = sms_to(&phone).await;
    assert!(
        sms.iter().any(|m| m.contains("activated automatically")),
        "{sms:?}"
    );
}
