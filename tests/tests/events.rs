//! Event fixtures deserialise as the handlers read them.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use monitor::ScheduledEvent;
use shared::domain::window::Window;

const SCHEDULED: &str = include_str!("../fixtures/eventbridge-scheduled.json");

#[test]
fn scheduled_event_names_the_window_that_just_ended() {
    let full: EventBridgeEvent<serde_json::Value> =
        serde_json::from_str(SCHEDULED).expect("EventBridge shape");
    let ours: ScheduledEvent = serde_json::from_str(SCHEDULED).expect("monitor event");
    assert_eq!(ours.time, full.time);
    let w = Window::just_ended(full.time.expect("time"));
    assert_eq!(w.start(), integration_tests::t("2026-11-23T12:04:00Z"));
}

#[test]
fn manual_invocation_without_time_is_accepted() {
    let ev: ScheduledEvent = serde_json::from_str("{}").expect("empty event");
    assert_eq!(ev.time, None);
}
