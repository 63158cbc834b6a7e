//! A day of windows on the virtual clock, with a 40-minute outage of the organisation's server at
//! noon: the probe goes through a real SMTP server (STARTTLS, AUTH) that the test stops and
//! starts; deliveries are recorded as the delivery path reports them. The counter sequence is
//! compared with one worked out by hand (`integration_tests::day`).

use integration_tests::day::{expected_counter, run_day, DAY};
use integration_tests::*;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;

#[tokio::test]
async fn a_day_with_a_forty_minute_outage() {
    let day = t(DAY);
    let rig = Rig::start(
        day - chrono::Duration::seconds(1),
        chrono::Duration::seconds(2),
    )
    .await;
    let mut server = rig.org_server("acme").await;
    let org = probed_org("acme", 3, server.port);
    rig.store().put_config(&org, day).await.unwrap();

    let history = run_day(&rig, "acme", &mut server).await;
    assert_eq!(history.len(), 720, "one history item per window");
    let expected = expected_counter();
    let got: Vec<u32> = history.iter().map(|h| h.step.value).collect();
    for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(
            g,
            e,
            "window {k} ({})",
            Window(Window::containing(day).0 + k as i64)
                .start()
                .format("%H:%M")
        );
    }
    // The whole day's sequence, once more, in one comparison.
    assert_eq!(got, expected);
    let reached = history.iter().position(|h| h.step.value == 3).unwrap();
    assert_eq!(
        reached, 362,
        "threshold reached with the third failing window"
    );
}
