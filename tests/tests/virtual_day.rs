//! A day of windows on the virtual clock, with a 40-minute outage of the organisation's server at
//! noon: the probe goes through a real SMTP server (STARTTLS, AUTH) that the test stops and
//! starts; deliveries are recorded as the delivery path reports them. The counter sequence is
//! compared with one worked out by hand.

use integration_tests::*;
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::InboundRecorder;

#[tokio::test]
async fn a_day_with_a_forty_minute_outage() {
    let day = t("2026-11-23T00:00:00Z");
    let rig = Rig::start(
        day - chrono::Duration::seconds(1),
        chrono::Duration::seconds(2),
    )
    .await;
    let secret = unique("acme/probe");
    let mut server = rig.org_server(&secret).await;
    let org = probed_org("acme", 3, server.port, &secret);
    rig.store().put_config(&org, day).await.unwrap();

    let w0 = Window::containing(day);
    // Windows 360..380 (12:00 to 12:40) the server is down.
    let (outage_start, outage_end) = (360, 380);
    for k in 0..=720i64 {
        if k == outage_start {
            server.stop().await;
        }
        if k == outage_end {
            server.restart().await;
        }
        let wk = Window(w0.0 + k);
        rig.advance_to(wk.start()).await; // tick k: judges window k-1, sends the probe of window k
        if k < 720 {
            let outcome = if (outage_start..outage_end).contains(&k) {
                DeliveryOutcome::AllRoutesFailed
            } else {
                DeliveryOutcome::Accepted
            };
            rig.store()
                .record_delivery("acme", wk.start() + chrono::Duration::seconds(40), outcome)
                .await
                .unwrap();
        }
    }

    // Worked out by hand (threshold 3): quiet morning at 0; from 12:00 each failing window adds
    // one until the ceiling (12:00 -> 1, 12:02 -> 2, 12:04 -> 3, then held at 3 while the checks
    // go on); the server is back for the window starting 12:40: 2, then 1, then 0 at 12:44.
    let mut expected = vec![0u32; 720];
    expected[360] = 1;
    expected[361] = 2;
    for v in &mut expected[362..380] {
        *v = 3;
    }
    expected[380] = 2;
    expected[381] = 1;

    let history = rig
        .store()
        .history("acme", w0, Window(w0.0 + 719))
        .await
        .unwrap();
    assert_eq!(history.len(), 720, "one history item per window");
    let got: Vec<u32> = history.iter().map(|h| h.step.value).collect();
    for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            g,
            e,
            "window {k} ({})",
            Window(w0.0 + k as i64).start().format("%H:%M")
        );
    }
    // The whole day's sequence, once more, in one comparison.
    assert_eq!(got, expected);
    let reached = history.iter().position(|h| h.step.value == 3).unwrap();
    assert_eq!(
        reached, 362,
        "threshold reached with the third failing window"
    );
    // The window before the day (tick 0) had no probe yet: no verdict from the outbound check.
    let before = rig
        .store()
        .history("acme", w0.prev(), w0.prev())
        .await
        .unwrap();
    assert_eq!(
        before[0].outbound,
        Some(shared::domain::counter::ProbeObservation::NotAttempted)
    );
}
