//! Continuity mode for mail clients (C1-C3): the status endpoint and the sync endpoint across
//! an event, with the duplicate-resolution window, against DynamoDB Local.

use chrono::Duration;
use integration_tests::inbox_support::{addr, plain, InboxRig, ORG};
use integration_tests::{mail_fixture, t};
use shared::domain::continuity::ContinuityState;

fn report(id: &str) -> Vec<u8> {
    mail_fixture("delivery-report.eml", &[("MESSAGE_ID", id)])
}

fn calendar(id: &str) -> Vec<u8> {
    mail_fixture("calendar-invite.eml", &[("MESSAGE_ID", id)])
}

fn mids(v: &serde_json::Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message_id"].as_str().expect("message_id").to_string())
        .collect()
}

#[tokio::test]
async fn sync_across_an_event_with_the_dedupe_window() {
    let t0 = t("2026-11-23T08:00:00Z");
    let rig = InboxRig::start(t0).await;
    let bob = addr("bob");
    let mut tok = rig.token("bob", false);

    // Normal: status says so; the first sync hands out what is there, records nothing.
    let (st, s) = rig.get(&tok, "/api/v1/client/status").await;
    assert_eq!(st, 200);
    assert_eq!(s["mode"], "normal");
    assert_eq!(s["poll_after_seconds"], 180);
    assert!(s["event"].is_null());
    rig.file(
        &bob,
        t0 - Duration::hours(1),
        &plain("a@example.org", &bob, "m1", "m1@x", "x"),
    )
    .await;
    let (st, s1) = rig.get(&tok, "/api/v1/client/sync").await;
    assert_eq!(st, 200, "{s1}");
    assert_eq!(mids(&s1), vec!["m1@x"]);
    assert_eq!(s1["recorded_for_dedupe"], 0);
    let m = &s1["messages"][0];
    assert!(m["id"].as_str().is_some_and(|i| !i.is_empty()));
    let mut cursor = s1["cursor"].as_str().unwrap().to_string();

    // m2 arrives 3 minutes before the event starts (inside the 5-minute lead).
    let start = t0 + Duration::hours(1);
    let until = t0 + Duration::hours(3);
    rig.file(
        &bob,
        start - Duration::minutes(3),
        &plain("a@example.org", &bob, "m2", "m2@x", "x"),
    )
    .await;
    // m0 arrives 10 minutes before: outside the window.
    rig.file(
        &bob,
        start - Duration::minutes(10),
        &plain("a@example.org", &bob, "m0", "m0@x", "x"),
    )
    .await;
    rig.api
        .store()
        .set_continuity_state(
            ORG,
            &ContinuityState {
                event_started_at: Some(start),
                event_until: Some(until),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rig.api.clock.set(start + Duration::minutes(10));
    tok = rig.token("bob", false); // tokens last an hour of virtual time
    let (_, s) = rig.get(&tok, "/api/v1/client/status").await;
    assert_eq!(s["mode"], "continuity");
    assert_eq!(s["event"]["start"], "2026-11-23T09:00:00Z");
    assert_eq!(s["event"]["end"], "2026-11-23T11:00:00Z");
    assert_eq!(s["dedupe_window"]["from"], "2026-11-23T08:55:00Z");
    assert_eq!(s["dedupe_window"]["until"], "2026-11-23T11:10:00Z");
    let now = rig.now();
    rig.file(&bob, now, &plain("a@example.org", &bob, "m3", "m3@x", "x"))
        .await;
    rig.file(&bob, now + Duration::seconds(1), &report("r1@x"))
        .await;
    rig.file(&bob, now + Duration::seconds(2), &calendar("c1@x"))
        .await;
    let (_, s2) = rig
        .get(&tok, &format!("/api/v1/client/sync?cursor={cursor}"))
        .await;
    assert_eq!(
        mids(&s2),
        vec!["m0@x", "m2@x", "m3@x", "c1@x"],
        "during continuity: messages and calendar items only"
    );
    assert_eq!(s2["held_back"], true);
    assert_eq!(
        s2["recorded_for_dedupe"], 3,
        "m2, m3, c1: not m0 (before the lead)"
    );
    cursor = s2["cursor"].as_str().unwrap().to_string();
    // Polled again during the event: nothing new, the report still held.
    let (_, s3) = rig
        .get(&tok, &format!("/api/v1/client/sync?cursor={cursor}"))
        .await;
    assert!(mids(&s3).is_empty());
    cursor = s3["cursor"].as_str().unwrap().to_string();

    // The administrator ends the event; post-event for 10 minutes.
    let stopped = start + Duration::minutes(60);
    rig.api
        .store()
        .set_continuity_state(
            ORG,
            &ContinuityState {
                event_started_at: Some(start),
                event_until: Some(until),
                event_stopped_at: Some(stopped),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rig.api.clock.set(stopped + Duration::minutes(5));
    tok = rig.token("bob", false); // tokens last an hour of virtual time
    let (_, s) = rig.get(&tok, "/api/v1/client/status").await;
    assert_eq!(s["mode"], "post-event");
    assert_eq!(s["event"]["end"], "2026-11-23T10:00:00Z");
    assert_eq!(s["dedupe_window"]["until"], "2026-11-23T10:10:00Z");
    rig.file(
        &bob,
        rig.now(),
        &plain("a@example.org", &bob, "m4", "m4@x", "x"),
    )
    .await;
    let (_, s4) = rig
        .get(&tok, &format!("/api/v1/client/sync?cursor={cursor}"))
        .await;
    assert_eq!(
        mids(&s4),
        vec!["r1@x", "m4@x"],
        "the held report, then the new mail, no repeats"
    );
    assert_eq!(s4["recorded_for_dedupe"], 2);
    cursor = s4["cursor"].as_str().unwrap().to_string();

    // After the window: handed out, not recorded.
    rig.api.clock.set(stopped + Duration::minutes(30));
    tok = rig.token("bob", false); // tokens last an hour of virtual time
    rig.file(
        &bob,
        rig.now(),
        &plain("a@example.org", &bob, "m5", "m5@x", "x"),
    )
    .await;
    let (_, s5) = rig
        .get(&tok, &format!("/api/v1/client/sync?cursor={cursor}"))
        .await;
    assert_eq!(mids(&s5), vec!["m5@x"]);
    assert_eq!(s5["recorded_for_dedupe"], 0);
    let (_, s) = rig.get(&tok, "/api/v1/client/status").await;
    assert_eq!(s["mode"], "normal");

    // The record of what was handed out in the window.
    let (st, h) = rig.get(&tok, "/api/v1/client/handed-out").await;
    assert_eq!(st, 200);
    let mut recorded: Vec<String> = h["handed_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["message_id"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    assert_eq!(recorded, vec!["c1@x", "m2@x", "m3@x", "m4@x", "r1@x"]);

    // A tampered cursor is refused with a clear message.
    let (st, e) = rig
        .get(
            &tok,
            "/api/v1/client/sync?cursor=eyJhIjoiL2V0Yy9wYXNzd2QifQ",
        )
        .await;
    assert_eq!(st, 400, "{e}");
}
