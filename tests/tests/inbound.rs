//! Inbound mail end to end against the real local services (DynamoDB Local, moto for S3 and SES,
//! aiosmtpd servers the tests stop and misconfigure): routes in order, the queue's backoff,
//! drain rate, retention and pause, once per SES message, never lost.

use integration_tests::*;
use shared::app::inbound::OrgResult;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::MonitorStore;

const T0: &str = "2026-11-23T10:00:00Z";

fn token(prefix: &str) -> String {
    unique(prefix).replace('-', "")
}

async fn inbound_counts(rig: &MailRig, org: &str, at: chrono::DateTime<chrono::Utc>) -> (u64, u64) {
    let s = rig
        .store()
        .window_state(org, Window::containing(at))
        .await
        .unwrap();
    (s.inbound.successes, s.inbound.failures)
}

#[tokio::test]
async fn delivered_on_the_first_route_and_filed_per_mailbox() {
    let rig = MailRig::start(t(T0)).await;
    let (s1, s2) = (plain_server().await, plain_server().await);
    rig.org("first", &[s1.port, s2.port]).await;
    let tok = token("m");
    let (_, r) = rig
        .receive(
            "alice@example.org",
            &["bob@first.test", "carol@first.test"],
            &message(&tok, "bob@first.test, carol@first.test"),
        )
        .await;
    assert_eq!(
        r.organisations["first"],
        OrgResult::Done {
            delivered: 2,
            bounced: 0
        }
    );
    let got = s1.messages();
    assert_eq!(got.len(), 1, "one transaction for both recipients");
    assert!(got[0].contains(&tok));
    assert!(got[0].contains("X-Envelope-To: bob@first.test, carol@first.test"));
    assert!(s2.messages().is_empty(), "the second route is not tried");
    assert_eq!(rig.figures("first").await.count, 0);
    assert_eq!(inbound_counts(&rig, "first", t(T0)).await, (1, 0));
    for mbx in ["bob@first.test", "carol@first.test"] {
        let items = rig.store().mailbox("first", mbx).await.unwrap();
        assert_eq!(items.len(), 1, "{mbx}");
        let item = &items[0];
        assert_eq!(
            item["message_id"].as_s().unwrap(),
            &format!("{tok}@example.org")
        );
        assert_eq!(item["subject"].as_s().unwrap(), &tok);
        assert_eq!(item["from"].as_s().unwrap(), "alice@example.org");
        assert_eq!(item["kind"].as_s().unwrap(), "message");
        assert!(item["raw_key"].as_s().unwrap().starts_with("inbound/"));
        let ttl: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert_eq!(ttl, (t(T0) + chrono::Duration::days(30)).timestamp());
    }
}

#[tokio::test]
async fn failover_to_the_second_route() {
    let rig = MailRig::start(t(T0)).await;
    let (mut s1, s2) = (plain_server().await, plain_server().await);
    rig.org("failover", &[s1.port, s2.port]).await;
    s1.stop().await;
    let tok = token("m");
    let (_, r) = rig
        .receive(
            "alice@example.org",
            &["bob@failover.test"],
            &message(&tok, "bob@failover.test"),
        )
        .await;
    assert!(matches!(
        r.organisations["failover"],
        OrgResult::Done { delivered: 1, .. }
    ));
    assert_eq!(s2.messages().len(), 1);
    // A 4xx fails the route too.
    s1.restart().await;
    s1.set_mode("tempfail");
    let tok2 = token("m");
    rig.receive(
        "alice@example.org",
        &["bob@failover.test"],
        &message(&tok2, "bob@failover.test"),
    )
    .await;
    assert!(s1.messages().is_empty());
    assert_eq!(s2.messages().len(), 2);
    assert_eq!(inbound_counts(&rig, "failover", t(T0)).await, (2, 0));
}

#[tokio::test]
async fn a_5xx_bounces_the_recipient_now_without_failing_the_route() {
    let rig = MailRig::start(t(T0)).await;
    let (s1, s2) = (plain_server().await, plain_server().await);
    rig.org("perm", &[s1.port, s2.port]).await;
    s1.set_mode("permfail");
    let tok = token("m");
    let sender = format!("{}@example.org", token("alice"));
    let (_, r) = rig
        .receive(
            &sender,
            &["nobody@perm.test"],
            &message(&tok, "nobody@perm.test"),
        )
        .await;
    assert_eq!(
        r.organisations["perm"],
        OrgResult::Done {
            delivered: 0,
            bounced: 1
        }
    );
    assert!(s2.messages().is_empty(), "a 5xx does not fail the route");
    let b = bounces_mentioning(&tok).await;
    assert_eq!(b.len(), 1);
    assert!(b[0].1.iter().any(|d| d.contains(&sender)), "{:?}", b[0].1);
    assert!(b[0].2.contains("Status: 5.1.1"), "{}", b[0].2);
    assert_eq!(rig.figures("perm").await.count, 0);
    // The server answered: the inbound check counts it as up (D2).
    assert_eq!(inbound_counts(&rig, "perm", t(T0)).await, (1, 0));
}

#[tokio::test]
async fn all_routes_down_queues_then_drains_at_the_rate_oldest_first() {
    let rig = MailRig::start(t(T0)).await;
    let (mut s1, mut s2) = (plain_server().await, plain_server().await);
    let mut cfg = rig.org("drain", &[s1.port, s2.port]).await;
    cfg.queue.drain_per_minute = 2;
    rig.put_config(&cfg).await;
    s1.stop().await;
    s2.stop().await;
    let mut toks = Vec::new();
    for i in 0..5 {
        rig.clock.set(t(T0) + chrono::Duration::seconds(i));
        let tok = format!("{}-{i}", token("q"));
        let (_, r) = rig
            .receive(
                "alice@example.org",
                &["bob@drain.test"],
                &message(&tok, "bob@drain.test"),
            )
            .await;
        assert!(
            matches!(r.organisations["drain"], OrgResult::Queued { .. }),
            "{r:?}"
        );
        toks.push(tok);
    }
    let f = rig.figures("drain").await;
    assert_eq!(f.count, 5);
    assert_eq!(f.oldest, Some(t(T0)));
    assert_eq!(inbound_counts(&rig, "drain", t(T0)).await, (0, 5));

    // Down: the queue backs off (1, 2, 4 minutes ...), trying only the oldest.
    let r = rig.tick_at(t("2026-11-23T10:01:00Z")).await;
    assert_eq!((r.organisations, r.deferred), (1, 1));
    assert_eq!(rig.tick_at(t("2026-11-23T10:02:00Z")).await.deferred, 1);
    assert_eq!(
        rig.tick_at(t("2026-11-23T10:03:00Z")).await.organisations,
        0,
        "backing off"
    );
    s1.restart().await;
    // Back at 10:04 (the wake after 2 minutes): two a minute, oldest first.
    let mut counts = Vec::new();
    for m in 4..=7 {
        let r = rig.tick_at(t(T0) + chrono::Duration::minutes(m)).await;
        counts.push((r.delivered, rig.figures("drain").await.count));
    }
    assert_eq!(counts, vec![(2, 3), (2, 1), (1, 0), (0, 0)]);
    let got: Vec<String> = s1.messages();
    assert_eq!(got.len(), 5);
    for (i, tok) in toks.iter().enumerate() {
        assert!(got[i].contains(tok), "message {i} in order: {}", got[i]);
    }
    assert_eq!(rig.figures("drain").await.oldest, None);
    // Off the due index: a later tick finds nothing to do.
    assert_eq!(
        rig.tick_at(t("2026-11-23T10:30:00Z")).await.organisations,
        0
    );
}

#[tokio::test]
async fn after_the_retention_one_bounce_to_the_sender_and_none_to_an_empty_sender() {
    let rig = MailRig::start(t(T0)).await;
    let mut s1 = plain_server().await;
    rig.org("expire", &[s1.port]).await;
    s1.stop().await;
    let sender = format!("{}@example.org", token("alice"));
    let (tok_a, tok_b) = (token("withsender"), token("nullsender"));
    rig.receive(
        &sender,
        &["bob@expire.test"],
        &message(&tok_a, "bob@expire.test"),
    )
    .await;
    rig.receive(
        "",
        &["bob@expire.test"],
        &message(&tok_b, "bob@expire.test"),
    )
    .await;
    // Four days of retries (a tick every 30 minutes of virtual time: the backoff's ceiling).
    let (delivered, bounced) = rig
        .tick_every(
            chrono::Duration::minutes(30),
            t(T0) + chrono::Duration::hours(95),
        )
        .await;
    assert_eq!((delivered, bounced), (0, 0));
    assert_eq!(rig.figures("expire").await.count, 2);
    assert!(bounces_mentioning(&tok_a).await.is_empty());
    let (_, bounced) = rig
        .tick_every(
            chrono::Duration::minutes(30),
            t(T0) + chrono::Duration::hours(97),
        )
        .await;
    assert_eq!(bounced, 2);
    assert_eq!(rig.figures("expire").await.count, 0);
    let b = bounces_mentioning(&tok_a).await;
    assert_eq!(b.len(), 1, "exactly one DSN");
    assert!(b[0].1.iter().any(|d| d.contains(&sender)));
    let dsn = &b[0].2;
    assert!(dsn.contains("multipart/report; report-type=delivery-status"));
    assert!(dsn.contains("Content-Type: message/delivery-status"));
    assert!(dsn.contains("Final-Recipient: rfc822; bob@expire.test"));
    assert!(dsn.contains("Status: 4.4.7"));
    assert!(dsn.contains("Content-Type: text/rfc822-headers"));
    assert!(
        bounces_mentioning(&tok_b).await.is_empty(),
        "never to an empty sender"
    );
    // Later ticks send nothing more.
    rig.tick_every(
        chrono::Duration::minutes(30),
        t(T0) + chrono::Duration::hours(99),
    )
    .await;
    assert_eq!(bounces_mentioning(&tok_a).await.len(), 1);
    assert!(s1.messages().is_empty());
}

#[tokio::test]
async fn paused_ten_days_nothing_bounced_everything_delivered_after_unpause() {
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    let mut cfg = rig.org("paused", &[s1.port]).await;
    cfg.queue.paused = true;
    rig.put_config(&cfg).await;
    let sender = format!("{}@example.org", token("alice"));
    let mut toks = Vec::new();
    for _ in 0..3 {
        let tok = token("p");
        let (_, r) = rig
            .receive(
                &sender,
                &["bob@paused.test"],
                &message(&tok, "bob@paused.test"),
            )
            .await;
        assert_eq!(r.organisations["paused"], OrgResult::Paused);
        toks.push(tok);
    }
    let (d, b) = rig
        .tick_every(
            chrono::Duration::hours(3),
            t(T0) + chrono::Duration::days(10),
        )
        .await;
    assert_eq!((d, b), (0, 0));
    assert!(s1.messages().is_empty(), "nothing delivered while paused");
    assert_eq!(rig.figures("paused").await.count, 3);
    for tok in &toks {
        assert!(
            bounces_mentioning(tok).await.is_empty(),
            "nothing bounced while paused"
        );
    }
    cfg.queue.paused = false;
    rig.put_config(&cfg).await;
    let r = rig
        .tick_at(t(T0) + chrono::Duration::days(10) + chrono::Duration::minutes(1))
        .await;
    assert_eq!(r.delivered, 3);
    assert_eq!(s1.messages().len(), 3);
    assert_eq!(rig.figures("paused").await.count, 0);
    for tok in &toks {
        assert!(bounces_mentioning(tok).await.is_empty());
    }
}

#[tokio::test]
async fn one_ses_event_three_times_and_concurrently_makes_one_record() {
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    rig.org("twice", &[s1.port]).await;
    let tok = token("dup");
    let rcpts = ["bob@twice.test", "carol@twice.test"];
    let (id, first) = rig
        .receive(
            "alice@example.org",
            &rcpts,
            &message(&tok, "bob@twice.test"),
        )
        .await;
    assert!(matches!(
        first.organisations["twice"],
        OrgResult::Done { .. }
    ));
    // Twice more in sequence, then three at once.
    for _ in 0..2 {
        let r = rig.deliver_event(&id, "alice@example.org", &rcpts).await;
        assert_eq!(r.organisations["twice"], OrgResult::Duplicate);
    }
    let results = futures::future::join_all(
        (0..3).map(|_| rig.deliver_event(&id, "alice@example.org", &rcpts)),
    )
    .await;
    assert!(results
        .iter()
        .all(|r| r.organisations["twice"] == OrgResult::Duplicate));

    // Concurrently from the start, with a fresh message: exactly one wins.
    let tok2 = token("dup");
    let id2 = unique("ses").replace('-', "");
    rig.deps
        .raw
        .put(
            &format!("{}{id2}", rig.deps.prefix),
            message(&tok2, "bob@twice.test"),
        )
        .await
        .unwrap();
    let results = futures::future::join_all(
        (0..3).map(|_| rig.deliver_event(&id2, "alice@example.org", &rcpts)),
    )
    .await;
    let done = results
        .iter()
        .filter(|r| matches!(r.organisations["twice"], OrgResult::Done { .. }))
        .count();
    assert_eq!(done, 1, "{results:?}");

    let got = s1.messages();
    assert_eq!(got.iter().filter(|m| m.contains(&tok)).count(), 1);
    assert_eq!(got.iter().filter(|m| m.contains(&tok2)).count(), 1);
    for m in rcpts {
        assert_eq!(
            rig.store().mailbox("twice", m).await.unwrap().len(),
            2,
            "{m}"
        );
    }
    assert_eq!(rig.figures("twice").await.count, 0);
    assert_eq!(
        rig.store()
            .message_state("twice", &id)
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[tokio::test]
async fn a_server_that_drops_or_hangs_after_data_is_retried_never_lost() {
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    let mut cfg = rig.org("drop", &[s1.port]).await;
    cfg.delivery.timeout_secs = 1;
    rig.put_config(&cfg).await;
    for mode in ["drop-after-data", "hang-after-data"] {
        s1.set_mode(mode);
        let tok = token("d");
        let (id, r) = rig
            .receive(
                "alice@example.org",
                &["bob@drop.test"],
                &message(&tok, "bob@drop.test"),
            )
            .await;
        assert!(
            matches!(r.organisations["drop"], OrgResult::Queued { .. }),
            "{mode}: {r:?}"
        );
        assert_eq!(rig.figures("drop").await.count, 1, "{mode}: still queued");
        assert_eq!(
            rig.store()
                .message_state("drop", &id)
                .await
                .unwrap()
                .as_deref(),
            Some("queued")
        );
        s1.set_mode("accept");
        let now = rig.clock.now();
        rig.tick_every(
            chrono::Duration::minutes(1),
            now + chrono::Duration::minutes(5),
        )
        .await;
        assert_eq!(rig.figures("drop").await.count, 0, "{mode}");
        assert_eq!(
            s1.messages().iter().filter(|m| m.contains(&tok)).count(),
            1,
            "{mode}: delivered once after the retry"
        );
        assert_eq!(
            rig.store()
                .message_state("drop", &id)
                .await
                .unwrap()
                .as_deref(),
            Some("delivered")
        );
    }
}

#[tokio::test]
async fn a_function_killed_after_delivery_delivers_again_never_drops() {
    // Simulated by taking the message into the queue without the attempt (as if the function
    // died between accept and dequeue): the queue delivers it once the lease ran out.
    use shared::domain::queue::QueuedMessage;
    use shared::ports::store::MailStore;
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    rig.org("killed", &[s1.port]).await;
    let tok = token("k");
    let id = unique("ses").replace('-', "");
    let key = format!("{}{id}", rig.deps.prefix);
    rig.deps
        .raw
        .put(&key, message(&tok, "bob@killed.test"))
        .await
        .unwrap();
    let msg = QueuedMessage {
        org_id: "killed".into(),
        id: id.clone(),
        part_of: None,
        enqueued_at: t(T0),
        raw_key: key,
        sender: "alice@example.org".into(),
        recipients: vec!["bob@killed.test".into()],
        attempts: 0,
        last_error: None,
        not_before: t(T0) + chrono::Duration::minutes(5),
        message_id: tok.clone(),
        subject: None,
        size: 1,
        origin: shared::domain::verdicts::Origin::Received {
            verdicts: Verdicts::ALL_PASS,
        },
    };
    rig.store()
        .accept_message(
            std::slice::from_ref(&msg),
            t(T0) + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        rig.tick_at(t("2026-11-23T10:01:00Z")).await.delivered,
        0,
        "lease still held"
    );
    let (d, _) = rig
        .tick_every(chrono::Duration::minutes(1), t("2026-11-23T10:07:00Z"))
        .await;
    assert_eq!(d, 1);
    assert_eq!(s1.messages().len(), 1);
    // The repeated SES event changes nothing.
    let r = rig
        .deliver_event(&id, "alice@example.org", &["bob@killed.test"])
        .await;
    assert_eq!(r.organisations["killed"], OrgResult::Duplicate);
}

#[tokio::test]
async fn probes_are_recorded_and_shown_to_nobody() {
    use shared::domain::probe::ProbeToken;
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    rig.org("prb", &[s1.port]).await;
    let w = Window::containing(t(T0));
    let token = ProbeToken::new("prb", w);
    assert!(rig
        .store()
        .claim_probe("prb", w, &token.nonce, w.start())
        .await
        .unwrap());
    let rcpt = token.recipient("probe@probe.continuity.test");
    let (_, r) = rig
        .receive(
            "continuity-probe@prb.test",
            &[&rcpt],
            &message("probe", &rcpt),
        )
        .await;
    assert_eq!(r.probes, 1);
    assert!(r.organisations.is_empty(), "not filed, not delivered");
    assert!(s1.messages().is_empty());
    assert!(rig
        .store()
        .probe("prb", w)
        .await
        .unwrap()
        .unwrap()
        .arrived_at
        .is_some());
}

#[tokio::test]
async fn distribution_lists_are_expanded_for_filing_when_on() {
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    let mut cfg = rig.org("dl", &[s1.port]).await;
    rig.store()
        .put_group(
            "dl",
            "team@dl.test",
            &["ann@dl.test".into(), "ben@dl.test".into()],
            t(T0),
        )
        .await
        .unwrap();
    rig.receive(
        "alice@example.org",
        &["team@dl.test"],
        &message(&token("x"), "team@dl.test"),
    )
    .await;
    assert_eq!(
        rig.store()
            .mailbox("dl", "team@dl.test")
            .await
            .unwrap()
            .len(),
        1,
        "off: the list's own mailbox"
    );
    cfg.delivery.expand_distribution_lists = true;
    rig.put_config(&cfg).await;
    rig.receive(
        "alice@example.org",
        &["team@dl.test"],
        &message(&token("y"), "team@dl.test"),
    )
    .await;
    for m in ["ann@dl.test", "ben@dl.test"] {
        assert_eq!(rig.store().mailbox("dl", m).await.unwrap().len(), 1, "{m}");
    }
    let got = s1.messages();
    assert_eq!(got.len(), 2);
    assert!(
        got[1].contains("X-Envelope-To: team@dl.test"),
        "the server expands its own lists"
    );
}

#[tokio::test]
async fn the_runner_runs_the_queue_every_virtual_minute() {
    let rig = Rig::start(t("2026-11-23T10:00:30Z"), chrono::Duration::zero()).await;
    let mut s1 = plain_server().await;
    let mut cfg = inbound_org("rq", 3);
    cfg.routes[0].port = s1.port;
    cfg.delivery.timeout_secs = 2;
    rig.store().put_config(&cfg, t(T0)).await.unwrap();
    s1.stop().await;
    let mail = rig.runner.inbound.clone().unwrap();
    let id = unique("ses").replace('-', "");
    mail.raw
        .put(
            &format!("{}{id}", mail.prefix),
            message("via-runner", "bob@rq.test"),
        )
        .await
        .unwrap();
    let ev = inbound::SesEvent::single(
        &id,
        rig.clock.now(),
        "alice@example.org",
        vec!["bob@rq.test".into()],
        Verdicts::ALL_PASS,
    );
    integration_tests::handle_ses_now(&mail, &ev).await.unwrap();
    s1.restart().await;
    rig.runner
        .advance(chrono::Duration::minutes(3))
        .await
        .unwrap();
    assert_eq!(s1.messages().len(), 1);
}

/// Q4 with Q6: a queue paused longer than the bucket keeps raw mail under the receipt rule's
/// prefix. After 25 days the queue copies each queued message under `held/` and uses that copy;
/// the original's expiry (simulated by deleting it, as the lifecycle rule would at 35 days) loses
/// nothing; the held copy is deleted once the message is delivered.
#[tokio::test]
async fn paused_for_forty_days_the_raw_mail_outlives_the_bucket_expiry() {
    use shared::ports::blob::RawMessages;
    use shared::ports::store::QueueStore;
    let rig = MailRig::start(t(T0)).await;
    let s1 = plain_server().await;
    let mut cfg = rig.org("longpause", &[s1.port]).await;
    cfg.queue.paused = true;
    rig.put_config(&cfg).await;
    let tok = token("held");
    let (id, r) = rig
        .receive(
            "alice@example.org",
            &["bob@longpause.test"],
            &message(&tok, "bob@longpause.test"),
        )
        .await;
    assert_eq!(r.organisations["longpause"], OrgResult::Paused);
    let original = format!("{}{id}", rig.deps.prefix);

    // Before 25 days nothing moves.
    rig.tick_at(t(T0) + chrono::Duration::days(24)).await;
    let q = rig.store().oldest("longpause", 10).await.expect("oldest");
    assert_eq!(q[0].raw_key, original);
    // After 25 days: a held copy, and the queued item points at it. Two runs (a retry) hold it once.
    let at = t(T0) + chrono::Duration::days(26);
    rig.tick_at(at).await;
    rig.tick_at(at + chrono::Duration::minutes(1)).await;
    let q = rig.store().oldest("longpause", 10).await.expect("oldest");
    let held = format!("held/longpause/{id}");
    assert_eq!(q[0].raw_key, held);
    assert_eq!(
        rig.deps.raw.get(&held).await.expect("held copy"),
        rig.deps.raw.get(&original).await.expect("original")
    );
    // Day 35: the lifecycle rule expires the original.
    rig.deps
        .raw
        .delete(&original)
        .await
        .expect("expire original");
    assert!(rig.deps.raw.get(&original).await.is_err());
    // Day 40: unpaused (the queue looked at the paused organisation every minute until then: the
    // retention counts from the end of the pause); the message is delivered whole, from the held
    // copy, and the copy goes.
    rig.tick_at(t(T0) + chrono::Duration::days(40) - chrono::Duration::minutes(1))
        .await;
    cfg.queue.paused = false;
    rig.put_config(&cfg).await;
    let r = rig.tick_at(t(T0) + chrono::Duration::days(40)).await;
    assert_eq!(r.delivered, 1, "{r:?}");
    let got = s1.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains(&format!("Body of {tok}")), "{}", got[0]);
    assert!(bounces_mentioning(&tok).await.is_empty());
    assert!(
        matches!(
            rig.deps.raw.get(&held).await,
            Err(shared::ports::error::BlobError::NotFound(_))
        ),
        "the held copy is deleted once delivered"
    );
}
