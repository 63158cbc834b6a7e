//! Inbound path figures: messages per second through parse, file and deliver (the `inbound`
//! handler, raw already in S3 as SES leaves it) against DynamoDB Local, moto's S3 and a local
//! aiosmtpd sink; DynamoDB requests per message; CPU time of this process per message (the
//! service's own code and SDK work; DynamoDB Local, moto and the sink are other processes).
//! Then the queue's drain (Q3, Q5): messages queued while the server was down, delivered by queue
//! runs once it is back, with the drain rate set high enough not to limit (so the figure is the
//! queue's own throughput per run), and DynamoDB requests per drained message.
//! Request units and cost are priced from the requests sent (`tests/src/pricing.rs`), not from
//! DynamoDB Local's `ConsumedCapacity`. Last, the mail path's price (issue 11,
//! `tests/src/path_cost.rs`): the egress per month in each NAT mode, and each message's whole path
//! for 50 users receiving 100 messages a day, from list prices and this run's figures (handler
//! duration and DynamoDB units at concurrency 1). Run with `infra/local/bench.sh`.
//! BENCH_MESSAGES (default 500) sets the count; BENCH_MEAN_KB (default 75) the mean message size
//! priced (the bench's own messages are small).

use futures::stream::{self, StreamExt};
use integration_tests::path_cost::{self, Egress};
use integration_tests::pricing::{self, Tally};
use integration_tests::*;
use shared::app::inbound::OrgResult;
use std::time::Instant;

/// User + system CPU time of this process, in seconds (Linux `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() {
    pricing::start();
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = plain_server().await;
    rig.org("bench", &[server.port]).await;
    let table = rig.store().table().to_string();
    let mut patterns: Vec<(String, Tally, usize)> = Vec::new();
    // Concurrency 1's handler seconds and DynamoDB USD per message: the path's price below.
    let mut measured: Option<(f64, f64)> = None;
    println!("| concurrency | messages | wall | messages/s | DynamoDB requests / message | WRU / message | RRU / message | USD / million messages | CPU ms / message |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for concurrency in [1usize, 8] {
        // The raw messages are stored first: that is SES's part, not the service's.
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let id = unique("ses").replace('-', "");
            let tok = format!("bench{concurrency}x{i}");
            let raw = message(&tok, "bob@bench.test, carol@bench.test");
            rig.deps
                .raw
                .put(&format!("{}{id}", rig.deps.prefix), raw)
                .await
                .expect("put raw");
            ids.push(id);
        }
        let before = pricing::tally(&table);
        let cpu0 = cpu_seconds();
        let started = Instant::now();
        let rig_ref = &rig;
        let done: usize = stream::iter(ids)
            .map(|id| async move {
                let r = rig_ref
                    .deliver_event(
                        &id,
                        "alice@example.org",
                        &["bob@bench.test", "carol@bench.test"],
                    )
                    .await;
                usize::from(matches!(r.organisations["bench"], OrgResult::Done { .. }))
            })
            .buffer_unordered(concurrency)
            .fold(0, |a, b| async move { a + b })
            .await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let d = pricing::tally(&table).since(&before);
        assert_eq!(done, n, "every message delivered");
        let per = |x: f64| x / n as f64;
        println!(
            "| {concurrency} | {n} | {wall:.2} s | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            n as f64 / wall,
            per(d.requests as f64),
            per(d.write_units),
            per(d.read_units),
            per(d.usd()) * 1e6,
            per(cpu) * 1000.0,
        );
        if concurrency == 1 {
            measured = Some((per(wall), per(d.usd())));
        }
        patterns.push((
            format!("delivered at once, concurrency {concurrency}"),
            d,
            n,
        ));
    }

    // The queue's drain: the server is down while the messages arrive, then back.
    let mut down = plain_server().await;
    let mut cfg = rig.org("drain", &[down.port]).await;
    cfg.queue.drain_per_minute = 10_000;
    rig.put_config(&cfg).await;
    down.stop().await;
    for i in 0..n {
        let tok = format!("drain{i}");
        rig.receive(
            "alice@example.org",
            &["bob@drain.test"],
            &message(&tok, "bob@drain.test"),
        )
        .await;
    }
    let queued = rig.figures("drain").await.count;
    assert_eq!(
        queued as usize, n,
        "every message queued while the server is down"
    );
    down.restart().await;
    let before = pricing::tally(&table);
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut runs = 0;
    let mut delivered = 0;
    let mut t = rig.clock.now();
    while delivered < n && runs < 200 {
        // Past the inbound function's lease on each message and any backoff.
        t += chrono::Duration::minutes(31);
        let r = rig.tick_at(t).await;
        delivered += r.delivered;
        runs += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let d = pricing::tally(&table).since(&before);
    assert_eq!(delivered, n, "every queued message drained");
    println!();
    println!("| queue drain | messages | queue runs | wall | messages/s | DynamoDB requests / message | WRU / message | RRU / message | USD / million messages | CPU ms / message |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| server back, drain rate not limiting | {n} | {runs} | {wall:.2} s | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
        n as f64 / wall,
        d.requests as f64 / n as f64,
        d.write_units / n as f64,
        d.read_units / n as f64,
        d.usd() / n as f64 * 1e6,
        cpu / n as f64 * 1000.0,
    );
    patterns.push(("queue drain".into(), d, n));
    println!("\n| run | DynamoDB requests per message by kind (items) |\n|---|---|");
    for (what, d, n) in &patterns {
        println!("| {what} | {} |", d.pattern(*n as f64));
    }
    println!(
        "\nWRU / RRU: the request units AWS bills for the requests sent (tests/src/pricing.rs), at on-demand prices \
         (USD {}/M write units, {}/M read units); S3 and SMTP not priced.",
        pricing::USD_PER_MILLION_WRU,
        pricing::USD_PER_MILLION_RRU
    );
    if let Some((seconds, dynamodb_usd)) = measured {
        print_path_cost(seconds, dynamodb_usd);
    }
}

/// The egress per month in each mode, and the whole path per message (issue 11's figures).
fn print_path_cost(lambda_seconds: f64, dynamodb_usd: f64) {
    let size_kb: f64 = std::env::var("BENCH_MEAN_KB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(75.0);
    const USERS: f64 = 50.0;
    const PER_USER_DAY: f64 = 100.0;
    let month = USERS * PER_USER_DAY * 30.0;
    println!("\n| egress mode | USD / month, fixed | USD / GB to the Internet |");
    println!("|---|---:|---:|");
    for e in [Egress::NatGateway, Egress::NatInstance] {
        println!(
            "| {} | {:.2} | {:.3} |",
            e.name(),
            e.fixed_month(),
            e.per_gb()
        );
    }
    println!(
        "| ExistingVpc | 0 (your NAT's own) | {:.3} + your NAT's |",
        path_cost::TRANSFER_OUT_GB
    );
    let m = path_cost::Message {
        size_kb,
        lambda_seconds,
        dynamodb_usd,
    };
    println!(
        "\nWhole path per message ({size_kb} KB, inbound handler {:.0} ms at {} GB, DynamoDB measured above), \
         {USERS} users x {PER_USER_DAY} messages a day = {month} messages a month:\n",
        lambda_seconds * 1000.0,
        path_cost::INBOUND_MEMORY_GB
    );
    println!("| egress mode | SES receiving | S3 | Lambda | DynamoDB | NAT + transfer out | USD / 1,000 messages | USD / month (messages + egress fixed) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for e in [Egress::NatGateway, Egress::NatInstance] {
        let c = path_cost::message_cost(m, e);
        let k = |x: f64| format!("{:.4}", x * 1000.0);
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            e.name(),
            k(c.ses),
            k(c.s3),
            k(c.lambda),
            k(c.dynamodb),
            k(c.egress),
            k(c.total()),
            c.total() * month + e.fixed_month()
        );
    }
    println!("\nParts in USD per 1,000 messages; list prices (us-east-1) and their pages in tests/src/path_cost.rs.");
}
