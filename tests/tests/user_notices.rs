//! A6: users are told by SMS when a continuity event starts and when it ends, once each, and by
//! email to their alternate address when it starts, from the directory an administrator
//! imported (`/api/v1/admin/users`); the messages carry the sign-in page and the address to sign
//! in as (U11). Through the monitor on virtual time against DynamoDB Local and moto's SNS and SES.

use integration_tests::api::ApiRig;
use integration_tests::*;
use shared::domain::continuity::{Action, Via};
use shared::domain::directory::{DirectoryUser, UserDirectory};
use shared::ports::store::ConfigStore;
use shared::ports::store::ContinuityStore;

const DAY: &str = "2026-11-23T00:00:00Z";

fn user(address: &str, mobile: Option<&str>, alternate: Option<&str>) -> DirectoryUser {
    DirectoryUser {
        address: address.into(),
        name: None,
        mobile: mobile.map(Into::into),
        alternate: alternate.map(Into::into),
    }
}

fn directory(users: Vec<DirectoryUser>) -> UserDirectory {
    UserDirectory {
        users: users.into_iter().map(|u| (u.address.clone(), u)).collect(),
        synced_at: Some(t(DAY)),
    }
}

fn phone() -> String {
    format!("+4477009{:05}", rand::random::<u32>() % 100_000)
}

#[tokio::test]
async fn users_are_told_once_when_an_event_starts_and_once_when_it_ends() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut cfg = inbound_org("acme", 3);
    cfg.alerts.notify_users = true;
    rig.store().put_config(&cfg, t(DAY)).await.expect("config");
    let (p1, p2) = (phone(), phone());
    let carol_home = format!("carol-{}@home.example", unique("h"));
    let d = directory(vec![
        user("alice@acme.test", Some(&p1), None),
        user("bob@acme.test", Some(&p2), None),
        user("carol@acme.test", None, Some(&carol_home)),
    ]);
    rig.store()
        .put_user_directory("acme", &d)
        .await
        .expect("users");

    rig.store()
        .continuity_action(
            "acme",
            &Action::Activate { minutes: 30 },
            Via::Link,
            "activate-a6-0001",
            t("2026-11-23T00:01:00Z"),
        )
        .await
        .expect("activate");
    rig.advance_to(t("2026-11-23T00:04:00Z")).await;
    for p in [&p1, &p2] {
        let got = sms_to(p).await;
        assert_eq!(got.len(), 1, "{p}: {got:?}");
        assert!(got[0].contains("mail server down"), "{}", got[0]);
        assert!(got[0].contains("/auth/code as "), "{}", got[0]);
    }
    // Carol has no mobile: the activation email to her alternate address, once.
    let mail = emails_to(&carol_home).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("carol@acme.test"), "{}", mail[0]);
    assert!(mail[0].contains("/auth/code"), "{}", mail[0]);
    // Later windows, and a repeated run of the same window, send nothing more.
    rig.advance_to(t("2026-11-23T00:20:00Z")).await;
    rig.runner
        .run_monitor(Some(t("2026-11-23T00:20:00Z")))
        .await
        .expect("repeat");
    assert_eq!(sms_to(&p1).await.len(), 1);
    assert_eq!(emails_to(&carol_home).await.len(), 1);
    // The end passes (00:31): each user gets the end notice once.
    rig.advance_to(t("2026-11-23T01:00:00Z")).await;
    for p in [&p1, &p2] {
        let got = sms_to(p).await;
        assert_eq!(got.len(), 2, "{p}: {got:?}");
        assert!(got[1].contains("back to normal"), "{}", got[1]);
    }
}

#[tokio::test]
async fn nobody_is_told_when_notices_are_off() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let cfg = inbound_org("quiet", 3);
    rig.store().put_config(&cfg, t(DAY)).await.expect("config");
    let p = phone();
    let d = directory(vec![user("alice@quiet.test", Some(&p), None)]);
    rig.store()
        .put_user_directory("quiet", &d)
        .await
        .expect("users");
    rig.store()
        .continuity_action(
            "quiet",
            &Action::Activate { minutes: 10 },
            Via::Link,
            "activate-a6-0002",
            t(DAY),
        )
        .await
        .expect("activate");
    rig.advance_to(t("2026-11-23T00:30:00Z")).await;
    assert!(sms_to(&p).await.is_empty());
}

#[tokio::test]
async fn the_admin_api_imports_users_and_refuses_bad_rows() {
    let rig = ApiRig::start(t(DAY)).await;
    rig.store()
        .put_config(&inbound_org("acme", 3), t(DAY))
        .await
        .expect("config");
    rig.store()
        .put_config(&inbound_org("globex", 3), t(DAY))
        .await
        .expect("config");
    let http = ApiRig::http();
    let admin = rig.token("admin@acme.test", true);
    let put = |ct: &'static str, body: String, tok: String| {
        let http = http.clone();
        let url = rig.url("/api/v1/admin/users");
        async move {
            let r = http
                .put(url)
                .bearer_auth(tok)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .expect("put");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (s, v) = put(
        "application/json",
        r#"{"users":[{"address":"Alice@acme.test","mobile":"+447700900001"}]}"#.into(),
        admin.clone(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["users"][0]["address"], "alice@acme.test");
    // CSV replaces the whole list.
    let (s, v) = put(
        "text/csv",
        "address,mobile\nbob@acme.test,+447700900002\ncarol@eu.acme.test,+447700900003\n".into(),
        admin.clone(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let d = rig.store().user_directory("acme").await.expect("dir");
    assert_eq!(
        d.users.keys().cloned().collect::<Vec<_>>(),
        ["bob@acme.test", "carol@eu.acme.test"]
    );
    // Refusals change nothing.
    for (ct, body, code) in [
        (
            "application/json",
            r#"{"users":[{"address":"x@globex.test","mobile":"+447700900004"}]}"#,
            422,
        ),
        (
            "application/json",
            r#"{"users":[{"address":"bob@acme.test","mobile":"07700 900004"}]}"#,
            422,
        ),
        (
            "application/json",
            r#"{"users":[{"address":"bob@acme.test","mobile":"+447700900004"},{"address":"BOB@acme.test","mobile":"+447700900005"}]}"#,
            422,
        ),
        ("application/json", r#"{"users":"#, 400),
        (
            "text/csv",
            "email,phone\nbob@acme.test,+447700900004\n",
            400,
        ),
        (
            "application/json",
            r#"{"users":[{"address":"bob@acme.test","alternate":"bob@acme.test"}]}"#,
            422,
        ),
        ("text/plain", "bob@acme.test,+447700900004", 415),
    ] {
        let (s, v) = put(ct, body.into(), admin.clone()).await;
        assert_eq!(s, code, "{ct} {body}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(rig.store().user_directory("acme").await.expect("dir"), d);
    // A user who is not an administrator, and an administrator of another organisation, see
    // and change nothing of acme's.
    let (s, _) = put(
        "text/csv",
        "address,mobile\n".into(),
        rig.token("bob@acme.test", false),
    )
    .await;
    assert_eq!(s, 403);
    let other = rig.token("admin@globex.test", true);
    let r = http
        .get(rig.url("/api/v1/admin/users"))
        .bearer_auth(&other)
        .send()
        .await
        .expect("get");
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["users"].as_array().map(|a| a.len()), Some(0));
    assert_eq!(rig.store().user_directory("acme").await.expect("dir"), d);
}

#[tokio::test]
async fn users_are_told_of_three_events_a_day_at_most() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut cfg = inbound_org("acme", 3);
    cfg.alerts.notify_users = true;
    rig.store().put_config(&cfg, t(DAY)).await.expect("config");
    let p = phone();
    rig.store()
        .put_user_directory(
            "acme",
            &directory(vec![user("alice@acme.test", Some(&p), None)]),
        )
        .await
        .expect("users");
    // Four activate / stop cycles in one day (a leaked link, a flapping automation): the users
    // hear of the first three events' start and end, and nothing of the fourth.
    for (i, hour) in [1, 3, 5, 7].into_iter().enumerate() {
        let at = |m: u32| t(&format!("2026-11-23T{hour:02}:{m:02}:00Z"));
        rig.store()
            .continuity_action(
                "acme",
                &Action::Activate { minutes: 60 },
                Via::Link,
                &format!("cycle-activate-{i}"),
                at(1),
            )
            .await
            .expect("activate");
        rig.advance_to(at(5)).await;
        rig.store()
            .continuity_action(
                "acme",
                &Action::Stop,
                Via::Link,
                &format!("cycle-stop-{i}"),
                at(10),
            )
            .await
            .expect("stop");
        rig.advance_to(at(30)).await;
        let expected = 2 * (i + 1).min(3);
        assert_eq!(sms_to(&p).await.len(), expected, "after cycle {i}");
    }
    // A repeated run of the last window claims nothing more and texts nobody.
    rig.runner
        .run_monitor(Some(t("2026-11-23T07:30:00Z")))
        .await
        .expect("repeat");
    assert_eq!(sms_to(&p).await.len(), 6);
    // The next day has a budget of its own.
    rig.store()
        .continuity_action(
            "acme",
            &Action::Activate { minutes: 60 },
            Via::Link,
            "next-day",
            t("2026-11-24T00:01:00Z"),
        )
        .await
        .expect("activate");
    rig.advance_to(t("2026-11-24T00:05:00Z")).await;
    assert_eq!(sms_to(&p).await.len(), 7);
}
