//! The rule table of D2-D5 in full, through the real store: every inbound observation (or check
//! off) x every probe observation (or check off) x counter at 0, in between and at threshold,
//! each as its own organisation, all evaluated by one monitor run against DynamoDB Local.
//! Inputs are planted through the same store calls the delivery and receiving paths use.

use integration_tests::*;
use shared::app::monitor::Evaluation;
use shared::domain::counter::{InboundObservation as I, ProbeObservation as P};
use shared::domain::monitoring::{DeliveryOutcome, HistoryEntry};
use shared::domain::probe::ProbeToken;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::{InboundRecorder, MonitorStore, ProbeArrivals};
use std::sync::Arc;

const THRESHOLD: u32 = 3;

/// What the window should do, worked out from MISSION D2-D5 (not from the code under test).
fn expected(prev: u32, i: Option<I>, o: Option<P>) -> u32 {
    let inbound_fails = i == Some(I::Failed);
    let outbound_fails = matches!(o, Some(P::Late | P::Missing | P::NotSent));
    let inbound_passes = matches!(i, Some(I::NoTraffic | I::Delivered));
    let outbound_passes = o == Some(P::InTime);
    if inbound_fails || outbound_fails {
        (prev + 1).min(THRESHOLD)
    } else if inbound_passes || outbound_passes {
        prev.saturating_sub(1)
    } else {
        prev
    }
}

#[tokio::test]
async fn every_combination_moves_the_stored_counter_as_the_rules_say() {
    init_tracing();
    let store = fresh_store().await;
    let w = Window::containing(t("2026-11-23T09:00:00Z"));
    let clock = VirtualClock::new(w.end());
    let deps = deps(
        store.clone(),
        Arc::new(clock.clone()),
        std::time::Duration::from_secs(2),
    )
    .await;
    // The next window's probes go to a closed port and fail fast; they play no part here.
    let closed = free_port();

    let inbound = [
        None,
        Some(I::NoTraffic),
        Some(I::Delivered),
        Some(I::Failed),
    ];
    let outbound = [
        None,
        Some(P::InTime),
        Some(P::Late),
        Some(P::Missing),
        Some(P::NotSent),
        Some(P::NotAttempted),
    ];
    let mut cases = Vec::new();
    for (ii, i) in inbound.iter().enumerate() {
        for (oi, o) in outbound.iter().enumerate() {
            if i.is_none() && o.is_none() {
                continue; // both checks off: refused by validation (see config tests)
            }
            for prev in [0, 1, THRESHOLD] {
                let org_id = format!("org-{ii}-{oi}-{prev}");
                let mut cfg = probed_org(&org_id, THRESHOLD, closed);
                cfg.monitoring.inbound_check = i.is_some();
                cfg.monitoring.outbound_check = o.is_some();
                store.put_config(&cfg, w.start()).await.expect("config");

                // The counter as a previous window left it.
                let before = w.prev();
                let planted = HistoryEntry {
                    window: before,
                    inbound_counts: Default::default(),
                    inbound: None,
                    outbound: None,
                    outbound_reason: None,
                    provider: None,
                    step: shared::domain::counter::Step {
                        verdict: shared::domain::counter::Verdict::None,
                        delta: 0,
                        value: prev,
                    },
                    threshold: THRESHOLD,
                    evaluated_at: before.end(),
                };
                store
                    .commit_window(&org_id, None, &planted)
                    .await
                    .expect("plant counter");

                // Inbound: a failed window also has a success in it (the mixed case counts as failing).
                let at = w.start() + chrono::Duration::seconds(30);
                match i {
                    Some(I::Failed) => {
                        store
                            .record_delivery(&org_id, at, DeliveryOutcome::Accepted)
                            .await
                            .unwrap();
                        store
                            .record_delivery(&org_id, at, DeliveryOutcome::AllRoutesFailed)
                            .await
                            .unwrap();
                    }
                    Some(I::Delivered) => {
                        store
                            .record_delivery(&org_id, at, DeliveryOutcome::Accepted)
                            .await
                            .unwrap();
                        store
                            .record_delivery(&org_id, at, DeliveryOutcome::Accepted)
                            .await
                            .unwrap();
                    }
                    _ => {}
                }
                // Outbound: the probe of window w as the sending and receiving paths record it.
                let token = ProbeToken::new(&org_id, w);
                let sent = w.start();
                match o {
                    Some(P::InTime) | Some(P::Late) | Some(P::Missing) => {
                        assert!(store
                            .claim_probe(&org_id, w, &token.nonce, sent)
                            .await
                            .unwrap());
                        store
                            .finish_probe(&org_id, w, Ok(sent + chrono::Duration::seconds(1)))
                            .await
                            .unwrap();
                        let delay = match o {
                            Some(P::InTime) => Some(60), // exactly the acceptable latency: in time
                            Some(P::Late) => Some(61),
                            _ => None,
                        };
                        if let Some(d) = delay {
                            let r = store
                                .record_probe_arrival(&token, sent + chrono::Duration::seconds(d))
                                .await
                                .unwrap();
                            assert_eq!(r, shared::domain::monitoring::ArrivalOutcome::Recorded);
                        }
                    }
                    Some(P::NotSent) => {
                        assert!(store
                            .claim_probe(&org_id, w, &token.nonce, sent)
                            .await
                            .unwrap());
                        store
                            .finish_probe(&org_id, w, Err("connection refused".into()))
                            .await
                            .unwrap();
                    }
                    _ => {}
                }
                cases.push((org_id, *i, *o, prev));
            }
        }
    }
    assert_eq!(cases.len(), (4 * 6 - 1) * 3);

    let report = deps.monitor().run(w.end()).await.expect("run");
    assert_eq!(report.window, w);
    assert_eq!(report.organisations, cases.len());
    for (org_id, i, o, prev) in &cases {
        let want = expected(*prev, *i, *o);
        let outcome = report
            .outcomes
            .iter()
            .find(|x| &x.org_id == org_id)
            .expect("outcome");
        assert_eq!(
            outcome.evaluation,
            Evaluation::Committed {
                value: want,
                delta: want as i32 - *prev as i32
            },
            "{org_id}: prev {prev}, inbound {i:?}, outbound {o:?}"
        );
        let c = store.counter(org_id).await.unwrap().expect("counter");
        assert_eq!((c.value, c.window), (want, w), "{org_id}");
        let h = store.history(org_id, w, w).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].inbound, *i, "{org_id}");
        assert_eq!(h[0].outbound, *o, "{org_id}");
        assert_eq!(h[0].step.value, want);
    }
}
