//! A day of windows on the virtual clock with a 40-minute outage of the organisation's server at
//! noon (windows 360..380 stopped): the probe goes through a real SMTP server that is stopped and
//! started; deliveries are recorded as the delivery path reports them. Shared by the password
//! probe's day (`virtual_day.rs`) and the OAuth probe's (`probe_oauth.rs`), whose counter
//! sequences must be the same.

use crate::{t, MailServer, Rig};
use shared::domain::counter::ProbeObservation;
use shared::domain::monitoring::{DeliveryOutcome, HistoryEntry};
use shared::domain::window::Window;
use shared::ports::store::InboundRecorder;

/// The day's first window start.
pub const DAY: &str = "2026-11-23T00:00:00Z";

/// Runs the day for `org_id` (stored already) with `server` as its submission server; the
/// history of its 720 windows.
pub async fn run_day(rig: &Rig, org_id: &str, server: &mut MailServer) -> Vec<HistoryEntry> {
    let day = t(DAY);
    let w0 = Window::containing(day);
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
                .record_delivery(org_id, wk.start() + chrono::Duration::seconds(40), outcome)
                .await
                .expect("record delivery");
        }
    }
    let before = rig
        .store()
        .history(org_id, w0.prev(), w0.prev())
        .await
        .expect("history");
    // The window before the day (tick 0) had no probe yet: no verdict from the outbound check.
    assert_eq!(before[0].outbound, Some(ProbeObservation::NotAttempted));
    rig.store()
        .history(org_id, w0, Window(w0.0 + 719))
        .await
        .expect("history")
}

/// Worked out by hand (threshold 3): quiet morning at 0; from 12:00 each failing window adds
/// one until the ceiling (12:00 -> 1, 12:02 -> 2, 12:04 -> 3, then held at 3 while the checks
/// go on); the server is back for the window starting 12:40: 2, then 1, then 0 at 12:44.
pub fn expected_counter() -> Vec<u32> {
    let mut expected = vec![0u32; 720];
    expected[360] = 1;
    expected[361] = 2;
    for v in &mut expected[362..380] {
        *v = 3;
    }
    expected[380] = 2;
    expected[381] = 1;
    expected
}
