//! D6: one window evaluated 20 times concurrently (as 20 separate function containers would),
//! and again later: the counter moved once, one history item, one probe sent for the next window.

use integration_tests::*;
use monitor::ScheduledEvent;
use shared::app::monitor::{Evaluation, ProbeResult};
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::InboundRecorder;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn twenty_concurrent_runs_move_the_counter_once() {
    let rig = Rig::start(t("2026-11-23T10:00:00Z"), chrono::Duration::seconds(1)).await;
    let server = rig.org_server("acme").await;
    let org = probed_org("acme", 5, server.port);
    let store = rig.store().clone();
    store.put_config(&org, rig.clock.now()).await.unwrap();

    let w = Window::containing(t("2026-11-23T10:00:00Z"));
    store
        .record_delivery(
            "acme",
            w.start() + chrono::Duration::seconds(10),
            DeliveryOutcome::AllRoutesFailed,
        )
        .await
        .unwrap();
    rig.clock.set(w.end() + chrono::Duration::seconds(1));

    // Twenty containers: each with its own clients, all on the same table and clock.
    let mut containers = Vec::new();
    for _ in 0..20 {
        let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
        let mut d = deps(store.clone(), clock, Duration::from_secs(5)).await;
        // The rig's prefix: every container reads the one probe secret the server's password is in.
        d.probe_secret_prefix = rig.runner.deps.probe_secret_prefix.clone();
        containers.push(Arc::new(d));
    }
    let runs = containers.iter().map(|d| {
        let d = d.clone();
        tokio::spawn(async move {
            monitor::handle(
                &d,
                ScheduledEvent {
                    time: Some(w.end()),
                },
            )
            .await
        })
    });
    let reports: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("join").expect("run"))
        .collect();

    let committed = reports.iter().filter(|r| r.committed == 1).count();
    let already = reports.iter().filter(|r| r.already_evaluated == 1).count();
    assert_eq!(
        (committed, already),
        (1, 19),
        "exactly one run moved the counter"
    );
    let sent = reports.iter().filter(|r| r.probes_sent == 1).count();
    let claimed_elsewhere = reports
        .iter()
        .filter(|r| r.outcomes[0].probe == ProbeResult::ClaimedElsewhere)
        .count();
    assert_eq!(
        (sent, claimed_elsewhere),
        (1, 19),
        "exactly one run sent the next probe"
    );

    let c = store.counter("acme").await.unwrap().unwrap();
    assert_eq!((c.value, c.window), (1, w));
    assert_eq!(
        store
            .history("acme", w.prev(), w.next())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.messages().len(), 1, "one probe reached the server");

    // The same event again, later in the window, then after the window: nothing moves, nothing is sent.
    for (container, after, probe) in [
        (
            0,
            chrono::Duration::seconds(100),
            ProbeResult::ClaimedElsewhere,
        ),
        (1, chrono::Duration::minutes(30), ProbeResult::TooLate),
    ] {
        rig.clock.set(w.end() + after);
        let event = ScheduledEvent {
            time: Some(w.end()),
        };
        let again = monitor::handle(&containers[container], event)
            .await
            .unwrap();
        assert_eq!(again.outcomes[0].evaluation, Evaluation::AlreadyEvaluated);
        assert_eq!(again.outcomes[0].probe, probe);
    }

    let c = store.counter("acme").await.unwrap().unwrap();
    assert_eq!((c.value, c.window), (1, w));
    assert_eq!(
        store
            .history("acme", w.prev(), w.next())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn an_older_window_run_after_a_newer_one_changes_nothing() {
    let rig = Rig::start(t("2026-11-23T10:00:00Z"), chrono::Duration::seconds(1)).await;
    let store = rig.store().clone();
    store
        .put_config(&inbound_org("acme", 3), rig.clock.now())
        .await
        .unwrap();
    let w = Window::containing(t("2026-11-23T10:00:00Z"));
    store
        .record_delivery("acme", w.next().start(), DeliveryOutcome::AllRoutesFailed)
        .await
        .unwrap();
    rig.clock.set(w.next().end());
    let d = &rig.runner.deps;
    let newer = monitor::handle(
        d,
        ScheduledEvent {
            time: Some(w.next().end()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        newer.outcomes[0].evaluation,
        Evaluation::Committed { value: 1, delta: 1 }
    );
    // A delayed retry of the previous tick arrives afterwards.
    let older = monitor::handle(
        d,
        ScheduledEvent {
            time: Some(w.end()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        older.outcomes[0].evaluation,
        Evaluation::Superseded {
            counter_window: w.next().0
        }
    );
    assert_eq!(store.counter("acme").await.unwrap().unwrap().value, 1);
    assert_eq!(store.history("acme", w, w).await.unwrap().len(), 0);
}
