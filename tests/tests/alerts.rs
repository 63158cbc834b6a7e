//! Alerts (A1-A5, D8) through the real services: SNS and SES in moto (read back from its API),
//! EventBridge in moto (read back through an SQS target), DynamoDB Local, on virtual time.

use integration_tests::*;
use monitor::ScheduledEvent;
use shared::domain::config::{Contact, OrgConfig, QueueAlert};
use shared::domain::continuity::ContinuityState;
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::InboundRecorder;
use std::sync::Arc;

const DAY: &str = "2026-11-23T00:00:00Z";

fn contact(name: &str, mobile: Option<&str>, email: Option<&str>, recovery: bool) -> Contact {
    Contact {
        name: name.into(),
        mobile: mobile.map(str::to_string),
        email: email.map(str::to_string),
        recovery_notice: recovery,
    }
}

/// A unique E.164 number, so that tests sharing one moto tell their SMS apart.
fn phone() -> String {
    format!("+4477{:08}", rand::random::<u32>() % 100_000_000)
}

fn email(tag: &str) -> String {
    format!("{tag}-{}@backup-mail.test", rand::random::<u32>())
}

struct Org {
    cfg: OrgConfig,
    admin_phone: String,
    admin_email: String,
    deputy_phone: String,
}

fn org(id: &str) -> Org {
    let (admin_phone, admin_email, deputy_phone) = (phone(), email("admin"), phone());
    let mut cfg = inbound_org(id, 3);
    cfg.alerts.contacts = vec![
        contact("Admin", Some(&admin_phone), Some(&admin_email), true),
        contact("Deputy", Some(&deputy_phone), None, false),
    ];
    Org {
        cfg,
        admin_phone,
        admin_email,
        deputy_phone,
    }
}

/// Records one delivery in window `k` of the day (failed or accepted), then runs the tick that
/// judges it.
async fn window(rig: &Rig, org: &str, k: i64, failed: bool) {
    let w = Window(Window::containing(t(DAY)).0 + k);
    let outcome = if failed {
        DeliveryOutcome::AllRoutesFailed
    } else {
        DeliveryOutcome::Accepted
    };
    rig.store()
        .record_delivery(org, w.start() + chrono::Duration::seconds(30), outcome)
        .await
        .unwrap();
    rig.advance_to(w.end()).await;
}

fn link_token(text: &str) -> String {
    let start = text.find("/l/").expect("a link") + 3;
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn one_alert_per_contact_at_threshold_with_a_working_link() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let o = org("acme");
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();

    // Windows 0 and 1 fail: counter 1, 2: nothing yet.
    window(&rig, "acme", 0, true).await;
    window(&rig, "acme", 1, true).await;
    assert!(sms_to(&o.admin_phone).await.is_empty());
    // Window 2 fails: the counter reaches 3 at 00:06, judged by the tick at 00:06.
    window(&rig, "acme", 2, true).await;

    let admin = sms_to(&o.admin_phone).await;
    let deputy = sms_to(&o.deputy_phone).await;
    let mails = emails_to(&o.admin_email).await;
    assert_eq!(
        (admin.len(), deputy.len(), mails.len()),
        (1, 1, 1),
        "one alert per contact and channel"
    );
    assert!(
        admin[0]
            .starts_with("Org acme: mail problem, counter 3/3. Act: https://continuity.test/l/"),
        "{}",
        admin[0]
    );
    assert!(admin[0].chars().count() <= 160);

    // The link verifies for this organisation and names the alert; the key came from Secrets Manager.
    let claims = rig
        .alerts
        .link_keys
        .verify_for(&link_token(&admin[0]), "acme", rig.clock.now())
        .expect("valid link");
    assert!(claims.alert_id.ends_with("-0"), "{}", claims.alert_id);
    assert_eq!(
        claims.expires_at,
        claims.issued_at + chrono::Duration::hours(24)
    );
    assert_eq!(
        rig.alerts
            .link_keys
            .verify_for(&link_token(&admin[0]), "globex", rig.clock.now()),
        Err(shared::domain::links::LinkError::OtherOrganisation)
    );

    // The email: from the service's own identity, HTML with the button and a plain part, both with the URL.
    let msg = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .expect("mime");
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    assert_eq!(from, ALERT_SENDER);
    let html = msg.body_html(0).expect("html part").to_string();
    let text = msg.body_text(0).expect("text part").to_string();
    let url = format!("https://continuity.test/l/{}", link_token(&text));
    assert!(
        html.contains(">Manage Event</a>") && html.contains(&url),
        "{html}"
    );
    assert!(
        text.contains(&url) && text.contains("Failure counter: 3 of 3"),
        "{text}"
    );
    assert!(
        text.contains("inbound delivery to your server is failing"),
        "{text}"
    );

    let events = rig.alerts.events().await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "ThresholdReached").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "AlertSent").count(),
        3,
        "{kinds:?}"
    );
    let reached = &events
        .iter()
        .find(|(k, _)| k == "ThresholdReached")
        .unwrap()
        .1;
    assert_eq!(reached["org_id"], "acme");
    assert_eq!(reached["counter"], 3);
}

#[tokio::test]
async fn alerts_repeat_hourly_and_never_twice() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let o = org("acme");
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    // Two and a half hours of failing windows (75), condition from 00:06.
    for k in 0..75 {
        window(&rig, "acme", k, true).await;
    }
    let admin = sms_to(&o.admin_phone).await;
    assert_eq!(admin.len(), 3, "at 00:06, 01:06 and 02:06: {admin:?}");
    assert!(admin[1].contains("still failing"), "{}", admin[1]);
    assert_eq!(emails_to(&o.admin_email).await.len(), 3);

    // The latest tick again, from three more containers at once: nothing new.
    let at = Window(Window::containing(t(DAY)).0 + 75).start();
    let runs = (0..3).map(|_| {
        let d = rig.runner.deps.clone();
        tokio::spawn(async move { monitor::handle(&d, ScheduledEvent { time: Some(at) }).await })
    });
    for r in futures::future::join_all(runs).await {
        assert_eq!(r.unwrap().unwrap().alerts_sent, 0);
    }
    assert_eq!(sms_to(&o.admin_phone).await.len(), 3);
    assert_eq!(sms_to(&o.deputy_phone).await.len(), 3);
}

#[tokio::test]
async fn concurrent_runs_at_the_threshold_send_once() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let o = org("acme");
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    window(&rig, "acme", 0, true).await;
    window(&rig, "acme", 1, true).await;
    let w = Window(Window::containing(t(DAY)).0 + 2);
    rig.store()
        .record_delivery("acme", w.start(), DeliveryOutcome::AllRoutesFailed)
        .await
        .unwrap();
    rig.clock.set(w.end());
    // Ten containers run the tick that reaches the threshold at the same moment.
    let mut containers = Vec::new();
    for _ in 0..10 {
        let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
        containers.push(Arc::new(
            deps_with(
                rig.store().clone(),
                clock,
                std::time::Duration::from_secs(3),
                &rig.alerts,
            )
            .await,
        ));
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
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(reports.iter().map(|r| r.alerts_sent).sum::<u32>(), 3);
    assert_eq!(sms_to(&o.admin_phone).await.len(), 1);
    assert_eq!(sms_to(&o.deputy_phone).await.len(), 1);
    assert_eq!(emails_to(&o.admin_email).await.len(), 1);
    let events = rig.alerts.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|(k, _)| k == "ThresholdReached")
            .count(),
        1
    );
}

#[tokio::test]
async fn none_while_suspended_or_while_an_event_is_active() {
    for which in ["suspended", "event"] {
        let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
        let o = org("acme");
        rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
        let until = t(DAY) + chrono::Duration::minutes(90);
        let state = match which {
            "suspended" => ContinuityState {
                suspended_until: Some(until),
                ..Default::default()
            },
            _ => ContinuityState {
                event_started_at: Some(t(DAY)),
                event_until: Some(until),
                ..Default::default()
            },
        };
        rig.store()
            .set_continuity_state("acme", &state)
            .await
            .unwrap();
        // Failing until 01:40: threshold at 00:06, held back until 01:30; the 01:06 alert is the
        // first due once nothing suppresses it, and goes out at the next tick (01:32).
        for k in 0..50 {
            window(&rig, "acme", k, true).await;
        }
        let admin = sms_to(&o.admin_phone).await;
        assert_eq!(admin.len(), 1, "{which}: {admin:?}");
        assert!(admin[0].contains("still failing"), "{which}: {}", admin[0]);
        let events = rig.alerts.events().await;
        assert_eq!(
            events
                .iter()
                .filter(|(k, _)| k == "ThresholdReached")
                .count(),
            1,
            "{which}: the bus still hears it"
        );
    }
}

#[tokio::test]
async fn a_failed_send_is_retried_on_the_next_run() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut o = org("acme");
    o.cfg.alerts.contacts.truncate(1);
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    window(&rig, "acme", 0, true).await;
    window(&rig, "acme", 1, true).await;
    let w = Window(Window::containing(t(DAY)).0 + 2);
    rig.store()
        .record_delivery("acme", w.start(), DeliveryOutcome::AllRoutesFailed)
        .await
        .unwrap();
    rig.clock.set(w.end());
    // A container whose sender identity SES refuses (unverified): the email fails, the SMS goes.
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let mut broken = deps_with(
        rig.store().clone(),
        clock,
        std::time::Duration::from_secs(3),
        &rig.alerts,
    )
    .await;
    broken.channels.email.sender = "alerts@unverified-sender.test".into();
    let first = monitor::handle(
        &broken,
        ScheduledEvent {
            time: Some(w.end()),
        },
    )
    .await
    .unwrap();
    assert_eq!((first.alerts_sent, first.alerts_failed), (1, 1));
    assert!(emails_to(&o.admin_email).await.is_empty());
    let episode = shared::ports::store::AlertStore::episode(rig.store(), "acme")
        .await
        .unwrap()
        .unwrap();
    let key = format!("{}#0#email", episode.alert_id(0));
    assert_eq!(
        rig.store()
            .send_status("acme", &key)
            .await
            .unwrap()
            .as_deref(),
        Some("failed")
    );

    // The next run (a working container), the condition still holding, sends the email, and only it.
    let w2 = w.next();
    rig.store()
        .record_delivery("acme", w2.start(), DeliveryOutcome::AllRoutesFailed)
        .await
        .unwrap();
    rig.clock.set(w2.end());
    let next = monitor::handle(
        &rig.runner.deps,
        ScheduledEvent {
            time: Some(w2.end()),
        },
    )
    .await
    .unwrap();
    assert_eq!((next.alerts_sent, next.alerts_failed), (1, 0));
    assert_eq!(emails_to(&o.admin_email).await.len(), 1);
    assert_eq!(sms_to(&o.admin_phone).await.len(), 1);
    assert_eq!(
        rig.store()
            .send_status("acme", &key)
            .await
            .unwrap()
            .as_deref(),
        Some("sent")
    );
}

#[tokio::test]
async fn recovery_notice_when_the_counter_is_back_at_zero() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let o = org("acme");
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    for k in 0..4 {
        window(&rig, "acme", k, true).await;
    }
    // Recovering: 2, 1, then 0 at the third good window.
    window(&rig, "acme", 4, false).await;
    window(&rig, "acme", 5, false).await;
    assert_eq!(
        sms_to(&o.admin_phone).await.len(),
        1,
        "no recovery before 0"
    );
    window(&rig, "acme", 6, false).await;
    let admin = sms_to(&o.admin_phone).await;
    assert_eq!(admin.len(), 2);
    assert!(
        admin[1].contains("mail flowing again, counter back at 0"),
        "{}",
        admin[1]
    );
    assert_eq!(
        sms_to(&o.deputy_phone).await.len(),
        1,
        "the deputy asked for no recovery notice"
    );
    let mails = emails_to(&o.admin_email).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].contains("mail flowing again"));
    let events = rig.alerts.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|(k, _)| k == "ConditionCleared")
            .count(),
        1
    );
    // Later good windows send nothing more.
    window(&rig, "acme", 7, false).await;
    assert_eq!(sms_to(&o.admin_phone).await.len(), 2);
}

#[tokio::test]
async fn a_queue_over_its_limit_is_a_condition_of_its_own() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::adapters::dynamodb::keys::{org_pk, queue_sk, QUEUESTAT_SK};
    use std::collections::HashMap;
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut o = org("acme");
    o.cfg.alerts.queue = Some(QueueAlert {
        max_count: 100,
        max_age_minutes: 30,
    });
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    // The queue as the inbound path would leave it: 5 messages, the oldest 45 minutes old.
    let s = |v: &str| AttributeValue::S(v.to_string());
    let oldest = t(DAY) - chrono::Duration::minutes(45);
    let item = HashMap::from([
        ("pk".to_string(), s(&org_pk("acme"))),
        ("sk".to_string(), s(&queue_sk(oldest, "m1"))),
        ("enqueued_at".to_string(), s(&oldest.to_rfc3339())),
    ]);
    rig.store().put_raw(item).await.unwrap();
    let stat = HashMap::from([
        ("pk".to_string(), s(&org_pk("acme"))),
        ("sk".to_string(), s(QUEUESTAT_SK)),
        ("count".to_string(), AttributeValue::N("5".into())),
    ]);
    rig.store().put_raw(stat).await.unwrap();
    // Deliveries succeed (the counter stays 0), yet the queue is too old.
    window(&rig, "acme", 0, false).await;
    let mails = emails_to(&o.admin_email).await;
    assert_eq!(mails.len(), 1);
    let msg = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .unwrap();
    assert!(msg
        .body_text(0)
        .unwrap()
        .contains("inbound mail is queuing up for your server"));
    assert_eq!(sms_to(&o.admin_phone).await.len(), 1);
}

#[tokio::test]
async fn html_email_shows_markup_in_the_organisation_name_as_text() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut o = org("acme");
    o.cfg.name = "<script>alert('x')</script> <img src=x onerror=alert(1)>".into();
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    for k in 0..3 {
        window(&rig, "acme", k, true).await;
    }
    let mails = emails_to(&o.admin_email).await;
    assert_eq!(mails.len(), 1);
    let msg = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .unwrap();
    let html = msg.body_html(0).unwrap().to_string();
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;"
        ),
        "{html}"
    );
    assert!(
        msg.subject().unwrap().contains("<script>"),
        "the subject is plain text, not HTML"
    );
}

#[tokio::test]
async fn rotated_link_keys_sign_new_links_and_old_links_still_verify() {
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let o = org("acme");
    rig.store().put_config(&o.cfg, t(DAY)).await.unwrap();
    for k in 0..3 {
        window(&rig, "acme", k, true).await;
    }
    let old_link = link_token(&sms_to(&o.admin_phone).await[0]);
    // Rotate in Secrets Manager: k2 current, k1 kept until its links expire.
    let k1 = &rig.alerts.link_keys.keys["k1"].secret;
    let rotated = format!(
        r#"{{"current":"k2","keys":{{"k1":{{"secret":"{k1}"}},"k2":{{"secret":"{}"}}}}}}"#,
        shared::domain::links::generate_key_secret()
    );
    put_secret(&rig.alerts.link_keys_secret, &rotated).await;
    let keys = shared::domain::links::LinkKeys::from_json(&rotated).unwrap();
    // Still failing until 01:04; the hourly repeat is due at the 01:06 tick, which a new container
    // runs (the key set is cached per container): it signs with k2.
    for k in 3..32 {
        window(&rig, "acme", k, true).await;
    }
    let w32 = Window(Window::containing(t(DAY)).0 + 32);
    rig.store()
        .record_delivery("acme", w32.start(), DeliveryOutcome::AllRoutesFailed)
        .await
        .unwrap();
    let at = w32.end();
    rig.clock.set(at);
    let clock: Arc<dyn Clock> = Arc::new(rig.clock.clone());
    let fresh = deps_with(
        rig.store().clone(),
        clock,
        std::time::Duration::from_secs(3),
        &rig.alerts,
    )
    .await;
    let report = monitor::handle(&fresh, ScheduledEvent { time: Some(at) })
        .await
        .unwrap();
    assert_eq!(
        report.alerts_sent, 3,
        "the 01:06 repeat to every contact and channel"
    );
    let admin = sms_to(&o.admin_phone).await;
    assert_eq!(admin.len(), 2);
    let new_link = link_token(&admin[1]);
    assert_eq!(keys.verify_for(&new_link, "acme", at).unwrap().key_id, "k2");
    assert_eq!(keys.verify_for(&old_link, "acme", at).unwrap().key_id, "k1");
    // A key set without k1 no longer accepts the old link.
    let only_k2 = format!(
        r#"{{"current":"k2","keys":{{"k2":{}}}}}"#,
        serde_json::json!({"secret": keys.keys["k2"].secret})
    );
    let only_k2 = shared::domain::links::LinkKeys::from_json(&only_k2).unwrap();
    assert_eq!(
        only_k2.verify(&old_link, at),
        Err(shared::domain::links::LinkError::BadSignature)
    );
    // And the old link expires 24 hours after it was issued.
    assert!(matches!(
        keys.verify(&old_link, at + chrono::Duration::hours(24)),
        Err(shared::domain::links::LinkError::Expired(_))
    ));
}

#[tokio::test]
async fn users_hear_when_an_event_starts_and_ends_once_each() {
    use shared::app::user_notice::notify_users;
    use shared::domain::directory::DirectoryUser;
    let rig = Rig::start(t(DAY), chrono::Duration::seconds(1)).await;
    let mut o = org("acme");
    let user = |address: &str, mobile: String| DirectoryUser {
        address: address.into(),
        mobile: Some(mobile),
        ..Default::default()
    };
    let users = vec![
        user("alice@acme.test", phone()),
        user("bob@acme.test", phone()),
        user("carol@acme.test", "0770 no".into()),
    ];
    let mobile = |i: usize| users[i].mobile.clone().unwrap_or_default();
    let d = &rig.runner.deps;
    let inbox = "https://continuity.test/auth/code";
    // Off by default: nothing is sent.
    let r = notify_users(
        rig.store(),
        &d.channels,
        &o.cfg,
        "ev1",
        true,
        &users,
        inbox,
        t(DAY),
    )
    .await
    .unwrap();
    assert_eq!(r.sent, 0);
    assert!(sms_to(&mobile(0)).await.is_empty());
    o.cfg.alerts.notify_users = true;
    for _ in 0..2 {
        let r = notify_users(
            rig.store(),
            &d.channels,
            &o.cfg,
            "ev1",
            true,
            &users,
            inbox,
            t(DAY),
        )
        .await
        .unwrap();
        assert_eq!(r.failed, 0);
    }
    notify_users(
        rig.store(),
        &d.channels,
        &o.cfg,
        "ev1",
        false,
        &users,
        inbox,
        t(DAY),
    )
    .await
    .unwrap();
    let alice = sms_to(&mobile(0)).await;
    assert_eq!(alice.len(), 2, "one start and one end notice: {alice:?}");
    assert!(
        alice[0].contains("Read mail at https://continuity.test/auth/code as alice@acme.test"),
        "{}",
        alice[0]
    );
    assert!(alice[1].contains("back to normal"), "{}", alice[1]);
    assert!(alice.iter().all(|m| m.chars().count() <= 160));
    assert_eq!(sms_to(&mobile(1)).await.len(), 2);
}
