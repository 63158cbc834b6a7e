//! Sign-in during an outage (U11): from "event activated" to "a user reads their Online Inbox",
//! the part that is the service's, not the user's typing. The monitor (on virtual time, its
//! production schedule of one run per 2-minute window) tells the user by SMS (A6, read back from
//! moto's SNS); the user asks for a code on the sign-in page (answered after the production floor,
//! `SIGN_IN_MIN_RESPONSE_MS` = 1500 ms), the code arrives by SMS (moto), is entered, and the inbox
//! page opens. Virtual waits (the schedule) and measured real latencies are reported apart, and
//! summed. The activation falls at evenly spread moments of the 2-minute window, one fresh table
//! per run. DynamoDB requests are counted per step (`tests/src/pricing.rs`). Needs the local
//! services (as `infra/local/bench.sh` starts them). BENCH_SIGNIN_RUNS (default 8).

use chrono::{DateTime, Duration, Utc};
use integration_tests::api::ApiRig;
use integration_tests::inbox_support::{addr, plain, ORG};
use integration_tests::sign_in_support::{
    client_from, enter_code, get_with, request_code, sms_codes, user,
};
use integration_tests::{inbound_org, pricing, sms_to, t, Rig};
use shared::domain::continuity::{Action, Via};
use shared::domain::directory::UserDirectory;
use shared::domain::mail::summarize;
use shared::domain::mailbox::{Filing, Folder};
use shared::domain::window::WINDOW_SECS;
use shared::ports::clock::Clock;
use shared::ports::store::{ConfigStore, ContinuityStore, MailStore};
use std::sync::Arc;
use std::time::Instant;

/// The production answer floor of a code request (`SIGN_IN_MIN_RESPONSE_MS`'s default).
const FLOOR_MS: u64 = 1500;

/// One run's figures: the virtual wait for the monitor's run, then each real step (ms) with its
/// DynamoDB requests and their price (USD).
struct Run {
    wait_s: f64,
    steps: Vec<(f64, u64, f64)>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

/// A step's figures: real ms since `t0`, DynamoDB requests and USD since `m0`.
fn step(t0: Instant, m0: &pricing::Tally, table: &str) -> (f64, u64, f64) {
    let ms = ms_since(t0);
    let d = pricing::tally(table).since(m0);
    (ms, d.requests, d.usd())
}

async fn one_run(activated: DateTime<Utc>) -> Run {
    let window_start = DateTime::from_timestamp(
        activated.timestamp() - activated.timestamp().rem_euclid(WINDOW_SECS),
        0,
    )
    .expect("time");
    let rig = Rig::start(window_start - Duration::minutes(1), Duration::seconds(1)).await;
    let store = rig.store().clone();
    let table = store.table().to_string();
    // The API on the monitor's table and clock, with the production answer floor.
    let api = ApiRig::start_with(rig.clock.now(), |s| {
        s.use_store(store.clone());
        s.clock = Arc::new(rig.clock.clone()) as Arc<dyn Clock>;
        s.settings.sign_in_floor = std::time::Duration::from_millis(FLOOR_MS);
    })
    .await;
    let mut cfg = inbound_org(ORG, 3);
    cfg.alerts.notify_users = true;
    store
        .put_config(&cfg, rig.clock.now())
        .await
        .expect("config");
    let bob = addr("bob");
    let mobile = integration_tests::sign_in_support::phone();
    let u = user(&bob, Some(&mobile), None);
    let directory = UserDirectory {
        users: [(bob.clone(), u)].into_iter().collect(),
        synced_at: Some(rig.clock.now()),
    };
    store
        .put_user_directory(ORG, &directory)
        .await
        .expect("directory");
    let raw = plain(
        "alice@example.org",
        &bob,
        "During the outage",
        "o@example.org",
        "x",
    );
    let raw_key = "inbound/bench-sign-in".to_string();
    api.state.raw.put(&raw_key, raw.clone()).await.expect("raw");
    let summary = summarize(&raw);
    store
        .file_message(
            &Filing {
                org_id: ORG,
                ses_id: "bench-sign-in",
                received_at: rig.clock.now(),
                raw_key: &raw_key,
                summary: &summary,
                folder: Folder::Inbox,
            },
            std::slice::from_ref(&bob),
        )
        .await
        .expect("file");

    rig.advance_to(activated).await;
    store
        .continuity_action(
            ORG,
            &Action::Activate { minutes: 60 },
            Via::Link,
            "bench-sign-in-activate",
            activated,
        )
        .await
        .expect("activate");

    // The monitor's runs until the A6 SMS is in moto: the virtual wait, the real run.
    let mut steps = Vec::new();
    let mut boundary = window_start + Duration::seconds(WINDOW_SECS);
    loop {
        let m0 = pricing::tally(&table);
        let t0 = Instant::now();
        rig.advance_to(boundary).await;
        let ms = ms_since(t0);
        if !sms_to(&mobile).await.is_empty() {
            let d = pricing::tally(&table).since(&m0);
            steps.push((ms, d.requests, d.usd()));
            break;
        }
        assert!(boundary - activated < Duration::minutes(10), "no A6 SMS");
        boundary += Duration::seconds(WINDOW_SECS);
    }
    let wait_s = (boundary - activated).num_milliseconds() as f64 / 1000.0;
    let notice = sms_to(&mobile).await.remove(0);
    assert!(notice.contains("/auth/code"), "{notice}");

    // Ask for a code, enter it (read from moto: not timed, it is the user's), open the inbox.
    let http = client_from("127.0.0.1");
    let (m0, t0) = (pricing::tally(&table), Instant::now());
    assert_eq!(request_code(&api, &http, &bob).await.status, 200);
    steps.push(step(t0, &m0, &table));
    let code = sms_codes(&mobile).await.pop().expect("code SMS");
    let (m0, t0) = (pricing::tally(&table), Instant::now());
    let a = enter_code(&api, &http, &bob, &code).await;
    steps.push(step(t0, &m0, &table));
    let cookie = a.cookie.expect("session");
    let (m0, t0) = (pricing::tally(&table), Instant::now());
    let inbox = get_with(&api, &cookie, &format!("/inbox/{bob}")).await;
    steps.push(step(t0, &m0, &table));
    assert!(inbox.body.contains("During the outage"), "{}", inbox.body);
    Run { wait_s, steps }
}

#[tokio::main]
async fn main() {
    pricing::start();
    let runs: i64 = std::env::var("BENCH_SIGNIN_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .max(1);
    let base = t("2026-11-23T10:00:00Z");
    let mut all = Vec::new();
    for i in 0..runs {
        // Evenly over the window, never exactly on its start (the run there was before it).
        let offset_ms = (i * WINDOW_SECS * 1000) / runs + 500;
        all.push(one_run(base + Duration::milliseconds(offset_ms)).await);
    }
    let names = [
        "monitor run that sends the A6 SMS (real)",
        "\"Send me a code\" answered, SMS sent (real; floor 1,500 ms)",
        "code entered, session opened (real)",
        "first Online Inbox page (real)",
    ];
    println!(
        "Event activated -> the user reads their Online Inbox, {runs} runs, activation spread over the 2-minute monitor window"
    );
    println!();
    println!("| step | clock | p50 | max | DynamoDB requests | USD / million (DynamoDB) |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut waits: Vec<f64> = all.iter().map(|r| r.wait_s).collect();
    waits.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| activation to the monitor's next run (its schedule) | virtual | {:.1} s | {:.1} s | - | - |",
        pct(&waits, 0.5),
        pct(&waits, 1.0)
    );
    for (k, name) in names.iter().enumerate() {
        let mut v: Vec<f64> = all.iter().map(|r| r.steps[k].0).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let reqs = all.iter().map(|r| r.steps[k].1).max().unwrap_or(0);
        let usd = all.iter().map(|r| r.steps[k].2).fold(0.0, f64::max);
        println!(
            "| {name} | real | {:.0} ms | {:.0} ms | {reqs} | {:.2} |",
            pct(&v, 0.5),
            pct(&v, 1.0),
            usd * 1e6
        );
    }
    let mut totals: Vec<f64> = all
        .iter()
        .map(|r| r.wait_s + r.steps.iter().map(|s| s.0).sum::<f64>() / 1000.0)
        .collect();
    totals.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| **the service's time in all** | both | {:.1} s | {:.1} s | | |",
        pct(&totals, 0.5),
        pct(&totals, 1.0)
    );
    println!();
    println!("Requests and USD: the most of any run (the monitor's run is the whole window's, queue included). Not counted: the user reading the SMS, typing the address and the code; SNS's own delivery time to a phone (moto delivers at once); the SMS's price.");
}
