//! Portal figures against DynamoDB Local and moto: p50 and p99 latency of the portal page and of
//! each action (the whole HTTP round trip on loopback, so the handler plus a few tens of
//! microseconds), DynamoDB requests per call and their on-demand price (priced from the requests
//! sent, `tests/src/pricing.rs`), and the page weight.
//! Needs the local services (see `infra/local/services.sh`); BENCH_PORTAL_N (default 200) sets
//! the number of calls per operation.

use integration_tests::api::ApiRig;
use integration_tests::portal_support::org_with_link;
use integration_tests::pricing::{self, Tally};
use integration_tests::t;
use std::time::{Duration, Instant};

struct Row {
    op: &'static str,
    times: Vec<Duration>,
    requests: u64,
    usd: f64,
    bytes: usize,
}

impl Row {
    /// Adds one call: its time, its DynamoDB work on `table` since `before`, its size.
    fn call(&mut self, t0: Instant, table: &str, before: &Tally, bytes: usize) {
        self.times.push(t0.elapsed());
        let d = pricing::tally(table).since(before);
        self.requests += d.requests;
        self.usd += d.usd();
        self.bytes = bytes;
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn post(url: &str, body: String) -> (u16, usize) {
    let r = ApiRig::http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post");
    let s = r.status().as_u16();
    (s, r.bytes().await.map(|b| b.len()).unwrap_or(0))
}

#[tokio::main]
async fn main() {
    pricing::start();
    let n: usize = std::env::var("BENCH_PORTAL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // Every request from one address: its per-source allowance is lifted (the counter's
    // UpdateItem is still made and counted on every request, as in AWS).
    let rig = ApiRig::start_configured(
        t("2026-11-23T10:00:00Z"),
        |s| s.source_limits.links.requests = u32::MAX,
        |_| {},
    )
    .await;
    let token = org_with_link(&rig, "acme", "Europe/Paris").await;
    let ft = shared::domain::continuity::form_token(&rig.env.link_keys, "k1", &token)
        .expect("form token");
    let page_url = rig.url(&format!("/l/{token}"));
    let table = rig.store().table().to_string();
    // A full chart: 24 hours of history (720 windows), the counter rising and falling.
    {
        use shared::domain::counter::{Step, Verdict};
        use shared::domain::monitoring::HistoryEntry;
        use shared::domain::window::Window;
        use shared::ports::clock::Clock;
        use shared::ports::store::MonitorStore;
        let last = Window::containing(rig.clock.now()).prev();
        let mut prev = None;
        let mut value = 0u32;
        for k in 0..720 {
            let w = Window(last.0 - 719 + k);
            let fail = (k / 40) % 2 == 1;
            let delta = if fail {
                1
            } else if value > 0 {
                -1
            } else {
                0
            };
            value = (value as i32 + delta).clamp(0, 10) as u32;
            let entry = HistoryEntry {
                window: w,
                inbound_counts: Default::default(),
                inbound: None,
                outbound: None,
                outbound_reason: None,
                provider: None,
                step: Step {
                    verdict: if fail { Verdict::Fail } else { Verdict::Pass },
                    delta,
                    value,
                },
                threshold: 5,
                evaluated_at: w.end(),
            };
            rig.store()
                .commit_window("acme", prev, &entry)
                .await
                .expect("history");
            prev = Some(w);
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut seq = 0u64;
    let mut body = |duration: Option<&str>| {
        seq += 1;
        let mut b = format!("form_token={ft}&request_id=bench-request-{seq:08}");
        if let Some(d) = duration {
            b.push_str(&format!("&duration={d}"));
        }
        b
    };

    // Warm up the connection pool, the secret cache and DynamoDB Local.
    for _ in 0..10 {
        let _ = ApiRig::http().get(&page_url).send().await;
    }

    let mut measure = |op: &'static str| {
        rows.push(Row {
            op,
            times: Vec::with_capacity(n),
            requests: 0,
            usd: 0.0,
            bytes: 0,
        });
        rows.len() - 1
    };
    let (page, activate, extend, suspend, stop) = (
        measure("GET portal page (inactive)"),
        measure("POST activate"),
        measure("POST extend"),
        measure("POST suspend"),
        measure("POST stop"),
    );
    let page_active = measure("GET portal page (active)");
    for _ in 0..n {
        let before = pricing::tally(&table);
        let t0 = Instant::now();
        let r = ApiRig::http().get(&page_url).send().await.expect("get");
        let len = r.bytes().await.map(|b| b.len()).unwrap_or(0);
        rows[page].call(t0, &table, &before, len);

        for (i, action, d) in [
            (activate, "activate", Some("4h")),
            (extend, "extend", Some("1h")),
            (suspend, "suspend", Some("1h")),
        ] {
            let b = body(d);
            let before = pricing::tally(&table);
            let t0 = Instant::now();
            let (status, len) = post(&rig.url(&format!("/l/{token}/{action}")), b).await;
            rows[i].call(t0, &table, &before, len);
            assert_eq!(status, 200, "{action}");
        }

        let before = pricing::tally(&table);
        let t0 = Instant::now();
        let r = ApiRig::http().get(&page_url).send().await.expect("get");
        let len = r.bytes().await.map(|b| b.len()).unwrap_or(0);
        rows[page_active].call(t0, &table, &before, len);

        let b = body(None);
        let before = pricing::tally(&table);
        let t0 = Instant::now();
        let (status, len) = post(&rig.url(&format!("/l/{token}/stop")), b).await;
        rows[stop].call(t0, &table, &before, len);
        assert_eq!(status, 200, "stop");
        // Outside the measurement: every round starts below the link's hourly limit and with no
        // suspension running, so that the same clock hour serves all rounds (the chart stays
        // full) and each call is a first, carried-out action.
        reset_limits(&rig).await;
    }

    println!(
        "Portal against DynamoDB Local and moto, {n} calls each (HTTP on loopback, sequential):"
    );
    println!("| operation | p50 | p99 | DynamoDB requests per call | USD / million calls (DynamoDB) | response bytes |");
    println!("|---|---:|---:|---:|---:|---:|");
    for mut r in rows {
        r.times.sort();
        let calls = r.times.len().max(1) as f64;
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.1} | {:.2} | {} |",
            r.op,
            pct(&r.times, 0.5),
            pct(&r.times, 0.99),
            r.requests as f64 / calls,
            r.usd / calls * 1e6,
            r.bytes
        );
    }
}

/// Removes the link's and the organisation's action counters of the hour and the suspension.
async fn reset_limits(rig: &ApiRig) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    use shared::adapters::dynamodb::keys::{
        link_rate_pk, org_links_rate_pk, org_pk, rate_sk, CONTINUITY_SK,
    };
    use shared::ports::clock::Clock;
    let now = rig.clock.now().timestamp();
    let window = now - now.rem_euclid(3600);
    for pk in [link_rate_pk("acme", "ep1-0"), org_links_rate_pk("acme")] {
        rig.store()
            .client()
            .delete_item()
            .table_name(rig.store().table())
            .key("pk", S(pk))
            .key("sk", S(rate_sk(window)))
            .send()
            .await
            .expect("reset counter");
    }
    rig.store()
        .client()
        .update_item()
        .table_name(rig.store().table())
        .key("pk", S(org_pk("acme")))
        .key("sk", S(CONTINUITY_SK.into()))
        .update_expression("REMOVE suspended_until")
        .send()
        .await
        .expect("reset suspension");
}
