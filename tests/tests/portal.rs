//! The continuity portal (P1-P7, A3) over HTTP against DynamoDB Local and moto: the semantics of
//! each action, concurrency (extends all count, one activation wins), refusals that change
//! nothing, the caps and hourly limits a leaked link meets, and GET pages that never
//! change state.

use chrono::Duration;
use integration_tests::api::ApiRig;
use integration_tests::portal_support::*;
use integration_tests::t;
use shared::domain::continuity::Phase;
use shared::ports::clock::Clock;
use shared::ports::store::ContinuityViews;

const NOW: &str = "2026-11-23T10:00:00Z";

fn count(events: &[(String, serde_json::Value)], kind: &str) -> usize {
    events.iter().filter(|(k, _)| k == kind).count()
}

#[tokio::test]
async fn activate_extend_suspend_stop_with_confirmations_audit_and_events() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "Europe/Paris").await;

    let (status, page) = get(&rig.url(&format!("/l/{token}"))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Continuity mode: Inactive"), "{page}");
    assert!(page.contains("<svg"), "chart missing");

    // Activate for 4 h: the confirmation gives the end in UTC and in the organisation's zone.
    let (status, page) = act(&rig, &token, "activate", Some("4h")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Continuity mode activated"), "{page}");
    assert!(page.contains("2026-11-23 14:00 UTC"), "{page}");
    assert!(
        page.contains("2026-11-23 15:00 CET (Europe/Paris)"),
        "{page}"
    );
    assert!(page.contains("Continuity mode: Active"));
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_until, Some(t("2026-11-23T14:00:00Z")));
    assert!(matches!(s.phase(t(NOW)), Phase::Continuity { .. }));

    // Activating again is refused with a message, and nothing changes.
    let (status, page) = act(&rig, &token, "extend", None).await;
    assert_eq!(status, 400, "a duration is required: {page}");
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    assert!(
        form(&page, &token, "activate").is_none(),
        "no activate form while active"
    );
    let (status, page) = post_form(
        &rig.url(&format!("/l/{token}/activate")),
        &[
            ("form_token", &form(&page, &token, "extend").unwrap().0),
            ("request_id", "another-request-1"),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already active"), "{page}");
    assert_eq!(
        rig.store().continuity_state("acme").await.unwrap(),
        s,
        "refusal changed nothing"
    );

    // 2 h left, extended by 1 h: ends in 3 h.
    rig.clock.set(t("2026-11-23T12:00:00Z"));
    let (status, page) = act(&rig, &token, "extend", Some("1h")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Continuity mode extended"));
    assert!(page.contains("2026-11-23 15:00 UTC"), "{page}");
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_until, Some(t("2026-11-23T15:00:00Z")));

    // Suspension adds to what remains.
    rig.clock.set(t("2026-11-23T12:01:00Z"));
    let (status, page) = act(&rig, &token, "suspend", Some("1h")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Notifications suspended"));
    assert!(page.contains("2026-11-23 13:01 UTC"), "{page}");
    let (status, _) = act(&rig, &token, "suspend", Some("12h")).await;
    assert_eq!(status, 200);
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.suspended_until, Some(t("2026-11-24T01:01:00Z")));

    // Stop: Inactive, the post-event phase begins.
    rig.clock.set(t("2026-11-23T12:30:00Z"));
    let (status, page) = act(&rig, &token, "stop", None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Continuity mode was ended"));
    assert!(page.contains("Continuity mode: Inactive"));
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert!(matches!(
        s.phase(rig.clock.now()),
        Phase::PostEvent { ended, .. } if ended == t("2026-11-23T12:30:00Z")
    ));
    // A stopped event can be activated again.
    rig.clock.set(t("2026-11-23T12:31:00Z"));
    let (status, page) = act(&rig, &token, "activate", Some("1h")).await;
    assert_eq!(status, 200, "activating again after a stop: {page}");

    // Audit: every action, who, how, source address, before and after.
    let audit = rig
        .store()
        .audit("acme", t(NOW), t("2026-11-24T00:00:00Z"), 100)
        .await
        .unwrap();
    let whats: Vec<&str> = audit.iter().rev().map(|r| r.what.as_str()).collect();
    assert_eq!(
        whats,
        ["activate", "extend", "suspend", "suspend", "stop", "activate"]
    );
    for r in &audit {
        assert_eq!(r.who, "link:ep1-0");
        assert_eq!(r.source, "127.0.0.1");
        assert_eq!(r.via, shared::domain::continuity::Via::Link);
    }
    let ext = &audit[audit.len() - 2];
    assert_eq!(ext.what, "extend");
    assert_eq!(
        ext.before["event_until"].as_str(),
        Some("2026-11-23T14:00:00Z")
    );
    assert_eq!(
        ext.after["event_until"].as_str(),
        Some("2026-11-23T15:00:00Z")
    );

    let events = rig.env.events().await;
    assert_eq!(count(&events, "ContinuityActivated"), 2, "{events:?}");
    assert_eq!(count(&events, "ContinuityExtended"), 1);
    assert_eq!(count(&events, "NotificationsSuspended"), 2);
    assert_eq!(count(&events, "ContinuityStopped"), 1);
    let (_, stopped) = events
        .iter()
        .find(|(k, _)| k == "ContinuityStopped")
        .unwrap();
    assert_eq!(stopped["org_id"], "acme");
    assert_eq!(stopped["via"], "link");
}

#[tokio::test]
async fn a_resubmitted_form_changes_nothing_twice() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    act(&rig, &token, "activate", Some("1h")).await;
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, rid) = form(&page, &token, "extend").unwrap();
    let fields = [
        ("form_token", ft.as_str()),
        ("request_id", rid.as_str()),
        ("duration", "4h"),
    ];
    let url = rig.url(&format!("/l/{token}/extend"));
    let (a, _) = post_form(&url, &fields).await;
    let (b, page) = post_form(&url, &fields).await;
    assert_eq!((a, b), (200, 200));
    assert!(page.contains("already been carried out"), "{page}");
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_until, Some(t("2026-11-23T15:00:00Z")));
    let events = rig.env.events().await;
    assert_eq!(count(&events, "ContinuityExtended"), 1);
}

#[tokio::test]
async fn ten_concurrent_extends_all_count() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    act(&rig, &token, "activate", Some("4h")).await;
    let results = burst(&rig, "acme", "ep1-0", "extend", "1h", 10).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![200; 10]);
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(
        s.event_until,
        Some(t("2026-11-24T00:00:00Z")),
        "4 h + 10 x 1 h"
    );
    let audit = rig
        .store()
        .audit("acme", t(NOW), t("2026-11-24T00:00:00Z"), 100)
        .await
        .unwrap();
    assert_eq!(audit.iter().filter(|r| r.what == "extend").count(), 10);
}

#[tokio::test]
async fn five_concurrent_activations_exactly_one_wins() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, _) = form(&page, &token, "activate").unwrap();
    let url = rig.url(&format!("/l/{token}/activate"));
    let results = futures::future::join_all((0..5).map(|i| {
        let (url, ft) = (url.clone(), ft.clone());
        async move {
            post_form(
                &url,
                &[
                    ("form_token", ft.as_str()),
                    ("request_id", &format!("concurrent-activate-{i}")),
                    ("duration", if i % 2 == 0 { "1h" } else { "1d" }),
                ],
            )
            .await
        }
    }))
    .await;
    let won = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!(
        (won, refused.len()),
        (1, 4),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (_, page) in refused {
        assert!(page.contains("already active"), "{page}");
    }
    let events = rig.env.events().await;
    assert_eq!(count(&events, "ContinuityActivated"), 1);
}

#[tokio::test]
async fn refusals_are_clear_and_change_nothing() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    let other = org_with_link(&rig, "globex", "UTC").await;
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, rid) = form(&page, &token, "activate").unwrap();
    let before = partition(&rig, "acme").await;
    let before_other = partition(&rig, "globex").await;
    let url = rig.url(&format!("/l/{token}/activate"));

    // Unknown duration.
    let (s, p) = post_form(
        &url,
        &[
            ("form_token", &ft),
            ("request_id", &rid),
            ("duration", "2h"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert!(p.contains("Unknown duration"), "{p}");
    // Malformed body: a repeated field, bytes that are not UTF-8.
    let (s, _) = post_raw(
        &url,
        "application/x-www-form-urlencoded",
        format!("form_token={ft}&request_id={rid}&duration=1h&duration=4h").into_bytes(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = post_raw(
        &url,
        "application/x-www-form-urlencoded",
        vec![0xff, 0xfe, 0x3d],
    )
    .await;
    assert_eq!(s, 400);
    // Wrong content type.
    let (s, p) = post_raw(
        &url,
        "application/json",
        format!(r#"{{"form_token":"{ft}","request_id":"{rid}","duration":"1h"}}"#).into_bytes(),
    )
    .await;
    assert_eq!(s, 415, "{p}");
    // Missing or wrong anti-forgery token.
    let (s, p) = post_form(&url, &[("request_id", &rid), ("duration", "1h")]).await;
    assert_eq!(s, 403);
    assert!(p.contains("anti-forgery"), "{p}");
    let mut wrong = ft.clone();
    wrong.replace_range(0..1, if ft.starts_with('A') { "B" } else { "A" });
    let (s, _) = post_form(
        &url,
        &[
            ("form_token", &wrong),
            ("request_id", &rid),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 403);
    // The form token of one organisation's link does not work on another's.
    let (s, _) = post_form(
        &rig.url(&format!("/l/{other}/activate")),
        &[
            ("form_token", &ft),
            ("request_id", &rid),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 403);
    // Tampered link.
    let mut bad = token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    let (s, p) = get(&rig.url(&format!("/l/{bad}"))).await;
    assert_eq!(s, 403);
    assert!(p.contains("cannot be used"), "{p}");
    let (s, _) = post_form(
        &rig.url(&format!("/l/{bad}/activate")),
        &[
            ("form_token", &ft),
            ("request_id", &rid),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 403);
    // Unknown action, malformed request id.
    let (s, _) = post_form(
        &rig.url(&format!("/l/{token}/explode")),
        &[
            ("form_token", &ft),
            ("request_id", &rid),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = post_form(
        &url,
        &[("form_token", &ft), ("request_id", "x"), ("duration", "1h")],
    )
    .await;
    assert_eq!(s, 400);
    // Expired link: 24 hours later the same link and form are refused.
    rig.clock.set(t(NOW) + Duration::hours(24));
    let (s, p) = get(&rig.url(&format!("/l/{token}"))).await;
    assert_eq!(s, 410);
    assert!(p.contains("expired"), "{p}");
    let (s, _) = post_form(
        &url,
        &[
            ("form_token", &ft),
            ("request_id", &rid),
            ("duration", "1h"),
        ],
    )
    .await;
    assert_eq!(s, 410);

    assert_eq!(partition(&rig, "acme").await, before, "nothing changed");
    assert_eq!(partition(&rig, "globex").await, before_other);
    assert!(rig.env.events().await.is_empty(), "nothing published");
}

#[tokio::test]
async fn get_never_changes_state() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;
    // One state with every panel filled: an event, a suspension.
    act(&rig, &token, "activate", Some("4h")).await;
    act(&rig, &token, "suspend", Some("1h")).await;
    let _ = rig.env.events().await;
    let before = partition(&rig, "acme").await;

    // Fetch every page, follow every link and open every form's address with GET, as a mail
    // scanner would.
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![format!("/l/{token}")];
    let mut fetched = 0;
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let (status, page) = get(&rig.url(&path)).await;
        fetched += 1;
        assert!(status < 500, "{path}: {status}");
        for next in links(&page).into_iter().chain(form_actions(&page)) {
            if next.starts_with('/') {
                todo.push(next);
            }
        }
    }
    assert!(
        fetched >= 4,
        "page, reload link, extend, stop, suspend: {fetched}"
    );
    assert_eq!(partition(&rig, "acme").await, before, "GET changed nothing");
    assert!(rig.env.events().await.is_empty());
}

#[tokio::test]
async fn a_leaked_link_silences_alerts_for_a_week_at_most_and_extends_thirty_days_at_most() {
    let rig = ApiRig::start(t(NOW)).await;
    let token = org_with_link(&rig, "acme", "UTC").await;

    // Suspensions add up to 7 days ahead of now, no further; a refusal changes nothing.
    for d in ["3d", "3d", "1d"] {
        let (status, page) = act(&rig, &token, "suspend", Some(d)).await;
        assert_eq!(status, 200, "{d}: {page}");
    }
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.suspended_until, Some(t("2026-11-30T10:00:00Z")));
    let before = partition(&rig, "acme").await;
    // Read (and so consumed) here: what comes later is new.
    assert_eq!(count(&rig.env.events().await, "NotificationsSuspended"), 3);
    let (status, page) = act(&rig, &token, "suspend", Some("1h")).await;
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("at most 7 days ahead (until 2026-11-30 10:00 UTC)"),
        "{page}"
    );
    assert_eq!(
        partition(&rig, "acme").await,
        before,
        "refusal changed nothing"
    );
    assert_eq!(
        rig.env.events().await.len(),
        0,
        "a refusal publishes nothing"
    );

    // Extensions: 35 at once from an event ending a day from now; 29 fit under 30 days ahead.
    // (Through two more alerts' links: one link carries at most 20 actions an hour.)
    act(&rig, &token, "activate", Some("1d")).await;
    let mut results = Vec::new();
    for (alert, n) in [("ep2-0", 18), ("ep3-0", 17)] {
        results.extend(burst(&rig, "acme", alert, "extend", "1d", n).await);
    }
    let applied = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!((applied, refused.len()), (29, 6));
    for (_, page) in refused {
        assert!(page.contains("at most 30 days ahead"), "{page}");
    }
    let s = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(s.event_until, Some(t("2026-12-23T10:00:00Z")));
    let audit = rig
        .store()
        .audit("acme", t(NOW), t("2026-11-24T00:00:00Z"), 100)
        .await
        .unwrap();
    assert_eq!(audit.iter().filter(|r| r.what == "extend").count(), 29);
    assert_eq!(audit.iter().filter(|r| r.what == "suspend").count(), 3);
}

/// `n` concurrent POSTs of `action` for `duration` through the link of `alert`: their statuses
/// and pages.
async fn burst(
    rig: &ApiRig,
    org: &str,
    alert: &str,
    action: &str,
    duration: &str,
    n: usize,
) -> Vec<(u16, String)> {
    let token = rig
        .env
        .link_keys
        .sign(org, alert, rig.clock.now())
        .expect("sign");
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, _) = form(&page, &token, action).expect("form");
    let url = rig.url(&format!("/l/{token}/{action}"));
    futures::future::join_all((0..n).map(|i| {
        let (url, ft) = (url.clone(), ft.clone());
        async move {
            post_form(
                &url,
                &[
                    ("form_token", ft.as_str()),
                    ("request_id", &format!("burst-{alert}-{action}-{i}")),
                    ("duration", duration),
                ],
            )
            .await
        }
    }))
    .await
}

#[tokio::test]
async fn a_link_carries_twenty_actions_an_hour_and_an_organisations_links_sixty() {
    let rig = ApiRig::start(t(NOW)).await;
    org_with_link(&rig, "acme", "UTC").await;
    let statuses = |r: &[(u16, String)]| r.iter().map(|(s, _)| *s).collect::<Vec<_>>();

    // 25 suspensions of an hour at once through one link: 20 carried out, 5 refused with 429.
    let results = burst(&rig, "acme", "ep1-0", "suspend", "1h", 25).await;
    let s = statuses(&results);
    assert_eq!(s.iter().filter(|s| **s == 200).count(), 20, "{s:?}");
    assert_eq!(s.iter().filter(|s| **s == 429).count(), 5, "{s:?}");
    let state = rig.store().continuity_state("acme").await.unwrap();
    assert_eq!(
        state.suspended_until,
        Some(t("2026-11-24T06:00:00Z")),
        "20 hours"
    );
    let refused = results.iter().find(|(s, _)| *s == 429).unwrap();
    assert!(
        refused
            .1
            .contains("This link carried out 20 actions in this hour")
            && refused.1.contains("try again after 2026-11-23 11:00 UTC"),
        "{}",
        refused.1
    );
    assert_eq!(count(&rig.env.events().await, "NotificationsSuspended"), 20);

    // Over the limit, nothing changes, and the answer says when to come back.
    let before = partition(&rig, "acme").await;
    let token = rig
        .env
        .link_keys
        .sign("acme", "ep1-0", rig.clock.now())
        .unwrap();
    let (_, page) = get(&rig.url(&format!("/l/{token}"))).await;
    let (ft, rid) = form(&page, &token, "suspend").unwrap();
    let r = ApiRig::http()
        .post(rig.url(&format!("/l/{token}/suspend")))
        .form(&[
            ("form_token", ft.as_str()),
            ("request_id", rid.as_str()),
            ("duration", "1h"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "3600");
    assert_eq!(
        partition(&rig, "acme").await,
        before,
        "a refusal changes nothing"
    );
    assert!(rig.env.events().await.is_empty());

    // Another alert's link has its own 20; the organisation's links have 60 together (20 were
    // carried out above; a request the link's limit refused does not count): 40 more, then none.
    let mut results = Vec::new();
    for alert in ["ep2-0", "ep3-0"] {
        results.extend(burst(&rig, "acme", alert, "suspend", "1h", 20).await);
    }
    let s = statuses(&results);
    assert_eq!(s, vec![200; 40]);
    let last = burst(&rig, "acme", "ep4-0", "suspend", "1h", 1).await;
    assert_eq!(last[0].0, 429);
    assert!(
        last[0]
            .1
            .contains("alert links carried out 60 actions in this hour"),
        "{}",
        last[0].1
    );

    // The next hour, the first link acts again.
    rig.clock.set(t("2026-11-23T11:00:00Z"));
    let again = burst(&rig, "acme", "ep1-0", "suspend", "1h", 1).await;
    assert_eq!(again[0].0, 200, "{}", again[0].1);
}
