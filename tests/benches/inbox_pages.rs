//! Online Inbox figures: latency of the first inbox page (p50, p99) for a mailbox of 30,000
//! messages (30 days x 1,000) against DynamoDB Local, DynamoDB requests per page, page weight.
//! Both the store's one Query and the whole HTTP request (token check, organisation lookup,
//! the Query, rendering) are measured; read units and cost are priced from the requests sent
//! (`tests/src/pricing.rs`). Needs the local services (as `infra/local/bench.sh` starts them). BENCH_INBOX_MESSAGES (default 30000) and BENCH_INBOX_RUNS (default 200).

use chrono::Duration;
use futures::stream::{self, StreamExt};
use integration_tests::inbox_support::{addr, InboxRig, ORG};
use integration_tests::pricing;
use integration_tests::t;
use shared::domain::mail::summarize;
use shared::domain::mailbox::Filing;
use shared::domain::mailbox::{window_start, Folder};
use shared::ports::store::MailStore;
use shared::ports::store::MailboxStore;
use std::time::Instant;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    pricing::start();
    let n: i64 = std::env::var("BENCH_INBOX_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let runs: usize = std::env::var("BENCH_INBOX_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let now = t("2026-11-23T10:00:00Z");
    let rig = InboxRig::start(now).await;
    let bob = addr("bob");
    let store = rig.api.store().clone();
    // 30 days x 1,000 a day, spread evenly.
    let step_ms = (30 * 24 * 3600 * 1000) / n.max(1);
    let filed = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            let bob = bob.clone();
            async move {
                let raw = format!(
                    "From: Sender {i} <sender{i}@example.org>\r\nTo: {bob}\r\nSubject: Weekly report number {i} for the team\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench{i}@example.org>\r\n\r\nbody\r\n"
                );
                let summary = summarize(raw.as_bytes());
                let at = now - Duration::milliseconds(i * step_ms + 1);
                let ses_id = format!("bench{i:08}");
                store
                    .file_message(
                        &Filing {
                            org_id: ORG,
                            ses_id: &ses_id,
                            received_at: at,
                            raw_key: &format!("inbound/{ses_id}"),
                            summary: &summary,
                            folder: shared::domain::mailbox::Folder::Inbox,
                        },
                        &[bob],
                    )
                    .await
                    .expect("file");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "filed {n} messages in {:.1} s",
        filed.elapsed().as_secs_f64()
    );

    // The store's one Query.
    let mut q_lat = Vec::with_capacity(runs);
    let table = store.table().to_string();
    let before = pricing::tally(&table);
    for _ in 0..runs {
        let t0 = Instant::now();
        let page = store
            .mailbox_page(ORG, &bob, Folder::Inbox, window_start(now), None, 100)
            .await
            .expect("page");
        q_lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(page.items.len(), 100);
    }
    let q = pricing::tally(&table).since(&before);
    let per_run = |x: f64| x / runs as f64;

    // The whole HTTP request, JSON and page.
    let tok = rig.token("bob", false);
    let measure = |path: String, html: bool| {
        let rig = &rig;
        let tok = tok.clone();
        async move {
            let mut lat = Vec::with_capacity(runs);
            let mut bytes = 0usize;
            let m0 = pricing::tally(rig.api.store().table());
            for _ in 0..runs {
                let t0 = Instant::now();
                let mut req = rig.http.get(rig.api.url(&path)).bearer_auth(&tok);
                if html {
                    req = req.header("accept", "text/html");
                }
                let body = req.send().await.expect("GET").bytes().await.expect("body");
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                bytes = body.len();
            }
            let d = pricing::tally(rig.api.store().table()).since(&m0);
            lat.sort_by(|a, b| a.total_cmp(b));
            (lat, bytes, d)
        }
    };
    let (json_lat, json_bytes, json) =
        measure(format!("/api/v1/mailboxes/{bob}/messages"), false).await;
    let (page_lat, page_bytes, page) = measure(format!("/inbox/{bob}"), true).await;
    q_lat.sort_by(|a, b| a.total_cmp(b));

    println!(
        "Online Inbox, first page of 100, mailbox of {n} messages (30 days), {runs} runs each"
    );
    println!();
    println!("| what | p50 | p99 | DynamoDB requests / page | RRU / page | USD / million pages (DynamoDB) | bytes / page |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (what, lat, d, bytes) in [
        (
            "store: one Query (Limit 100, newest first)",
            &q_lat,
            &q,
            None,
        ),
        (
            "HTTP JSON `GET /api/v1/mailboxes/{m}/messages`",
            &json_lat,
            &json,
            Some(json_bytes),
        ),
        (
            "HTTP page `GET /inbox/{m}`",
            &page_lat,
            &page,
            Some(page_bytes),
        ),
    ] {
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.2} | {:.2} | {:.2} | {} |",
            pct(lat, 0.5),
            pct(lat, 0.99),
            per_run(d.requests as f64),
            per_run(d.read_units),
            per_run(d.usd()) * 1e6,
            bytes.map_or("-".to_string(), |b| b.to_string()),
        );
    }
    println!("\nRRU: read request units AWS bills for the requests sent (tests/src/pricing.rs), USD {}/M.", pricing::USD_PER_MILLION_RRU);
}
