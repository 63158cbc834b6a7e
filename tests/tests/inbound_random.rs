//! 1,000 random messages through random outages of the organisation's server (down, 4xx,
//! connection dropped after DATA, 5xx): every message ends delivered exactly once or bounced
//! exactly once, never both, never neither (Q6). Queue runs on virtual time; SMTP timeouts are
//! short, so the test is bounded (a few minutes on the 2-core machine).

use futures::stream::{self, StreamExt};
use integration_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

const MESSAGES: usize = 1_000;
const BATCH: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_through_random_outages_none_lost_none_doubled() {
    let seed: u64 = std::env::var("RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("RANDOM_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let mut server = plain_server().await;
    let mut cfg = rig.org("rnd", &[server.port]).await;
    cfg.queue.drain_per_minute = 1_000;
    cfg.delivery.timeout_secs = 1;
    rig.put_config(&cfg).await;
    let run = unique("r").replace('-', "");
    let mut senders: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut stopped = false;

    for batch in 0..MESSAGES / BATCH {
        // The server's state for this batch.
        let mode = match rng.random_range(0..100) {
            0..45 => "accept",
            45..65 => "down",
            65..80 => "tempfail",
            80..92 => "drop-after-data",
            _ => "permfail",
        };
        if mode == "down" {
            if !stopped {
                server.stop().await;
                stopped = true;
            }
        } else {
            if stopped {
                server.restart().await;
                stopped = false;
            }
            server.set_mode(mode);
        }
        let msgs: Vec<(String, String)> = (0..BATCH)
            .map(|i| {
                let tok = format!("{run}n{:04}", batch * BATCH + i);
                let sender = if rng.random_range(0..10) == 0 {
                    String::new()
                } else {
                    format!("s{}@example.org", batch * BATCH + i)
                };
                (tok, sender)
            })
            .collect();
        let rig_ref = &rig;
        let results: Vec<(String, String, String)> = stream::iter(msgs)
            .map(|(tok, sender)| async move {
                let (id, _) = rig_ref
                    .receive(&sender, &["bob@rnd.test"], &message(&tok, "bob@rnd.test"))
                    .await;
                (tok, sender, id)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (tok, sender, id) in results {
            senders.insert(tok.clone(), sender);
            ids.insert(tok, id);
        }
        // Some queue runs before the next batch.
        let step = rng.random_range(1..=10);
        let now = rig.clock.now();
        rig.tick_every(
            chrono::Duration::minutes(1),
            now + chrono::Duration::minutes(step),
        )
        .await;
    }

    // The server comes back for good: the queue drains.
    if stopped {
        server.restart().await;
    }
    server.set_mode("accept");
    for _ in 0..120 {
        if rig.figures("rnd").await.count == 0 {
            break;
        }
        let now = rig.clock.now();
        rig.tick_at(now + chrono::Duration::minutes(1)).await;
    }
    assert_eq!(rig.figures("rnd").await.count, 0, "the queue drained");

    // Count what arrived where.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for m in server.messages() {
        if let Some(tok) = m
            .split("\r\nSubject: ")
            .nth(1)
            .and_then(|r| r.split("\r\n").next())
        {
            *delivered.entry(tok.to_string()).or_default() += 1;
        }
    }
    let mut bounced: HashMap<String, usize> = HashMap::new();
    for (src, _, raw) in ses_raw_messages().await {
        if src != BOUNCE_SENDER {
            continue;
        }
        if let Some(tok) = raw
            .split("\nSubject: ")
            .filter_map(|r| r.split(['\r', '\n']).next())
            .find(|s| s.starts_with(&run))
        {
            *bounced.entry(tok.to_string()).or_default() += 1;
        }
    }
    let (mut n_delivered, mut n_bounced) = (0, 0);
    for (tok, sender) in &senders {
        let d = delivered.get(tok).copied().unwrap_or(0);
        let b = bounced.get(tok).copied().unwrap_or(0);
        let state = rig
            .store()
            .message_state("rnd", &ids[tok])
            .await
            .unwrap()
            .unwrap_or_default();
        match state.as_str() {
            "delivered" => {
                assert_eq!(
                    (d, b),
                    (1, 0),
                    "{tok}: delivered once, no bounce (seed {seed})"
                );
                n_delivered += 1;
            }
            "bounced" => {
                let want = usize::from(!sender.is_empty());
                assert_eq!(
                    (d, b),
                    (0, want),
                    "{tok}: bounced once, never delivered (seed {seed})"
                );
                n_bounced += 1;
            }
            other => panic!("{tok}: neither delivered nor bounced: {other:?} (seed {seed})"),
        }
    }
    eprintln!("{n_delivered} delivered, {n_bounced} bounced");
    assert_eq!(n_delivered + n_bounced, MESSAGES);
}
