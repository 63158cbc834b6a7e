//! Monitor figures against DynamoDB Local (and a real SMTP server for the probe case): wall time
//! of one run, DynamoDB requests per organisation per window by kind, the request units AWS
//! would bill for them, and the on-demand cost those imply (priced from the requests sent, see
//! `tests/src/pricing.rs`; DynamoDB Local's own `ConsumedCapacity` under-reports). Run with
//! `infra/local/bench.sh` (it starts the services).
//!
//! BENCH_ORGS (default "1000,10000") sets the organisation counts; BENCH_PROBE_ORGS (default 100)
//! the count for the run with probes; BENCH_ALERT_ORGS (default 1000) the run that alerts.

use futures::stream::{self, StreamExt};
use integration_tests::pricing::{self, Tally, WINDOWS_PER_MONTH};
use integration_tests::*;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::monitoring::DeliveryOutcome;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::InboundRecorder;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The probe secrets' prefix of the bench's organisations.
const BENCH_PREFIX: &str = "bench/";

struct Row {
    scenario: String,
    orgs: usize,
    wall: Duration,
    delta: Tally,
}

async fn seed(
    store: &DynamoStore,
    n: usize,
    cfg: impl Fn(usize) -> shared::domain::config::OrgConfig,
) {
    let cfg = &cfg;
    stream::iter(0..n)
        .for_each_concurrent(64, |i| async move {
            store
                .put_config(&cfg(i), t("2026-11-23T00:00:00Z"))
                .await
                .expect("seed");
        })
        .await;
}

async fn run(store: &DynamoStore, at: Window, scenario: &str, orgs: usize, rows: &mut Vec<Row>) {
    let clock = VirtualClock::new(at.start());
    let mut d = deps(store.clone(), Arc::new(clock), Duration::from_secs(10)).await;
    d.probe_secret_prefix = BENCH_PREFIX.into();
    let before = pricing::tally(store.table());
    let requests_before = store.metrics().requests;
    let started = Instant::now();
    let report = d.monitor().run(at.start()).await.expect("run");
    let wall = started.elapsed();
    assert_eq!(report.organisations, orgs);
    assert_eq!(report.alerts_failed, 0);
    if report.alerts_sent > 0 {
        println!("{scenario}: {} alerts sent", report.alerts_sent);
    }
    assert_eq!(
        report.failed,
        0,
        "{:?}",
        report.outcomes.iter().find(|o| matches!(
            o.evaluation,
            shared::app::monitor::Evaluation::Failed { .. }
        ))
    );
    let delta = pricing::tally(store.table()).since(&before);
    // The meter and the store count the same requests; a difference would mean some went
    // unpriced.
    let store_requests = store.metrics().requests - requests_before;
    if delta.requests != store_requests {
        eprintln!(
            "{scenario}: the store made {store_requests} requests, the meter priced {}",
            delta.requests
        );
    }
    rows.push(Row {
        scenario: scenario.to_string(),
        orgs,
        wall,
        delta,
    });
}

#[tokio::main]
async fn main() {
    pricing::start();
    let counts: Vec<usize> = std::env::var("BENCH_ORGS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let probe_orgs: usize = std::env::var("BENCH_PROBE_ORGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut rows = Vec::new();
    let w = Window::containing(t("2026-11-23T10:00:00Z"));

    for &n in &counts {
        let store = fresh_store().await;
        seed(&store, n, |i| inbound_org(&format!("org-{i:06}"), 3)).await;
        // Quiet: no traffic; the counter is written (history item) but stays at 0.
        run(
            &store,
            w.next(),
            "inbound check, quiet window",
            n,
            &mut rows,
        )
        .await;
        // Changing: every organisation had a failed delivery; every counter moves up.
        stream::iter(0..n)
            .for_each_concurrent(64, |i| {
                let store = store.clone();
                async move {
                    store
                        .record_delivery(
                            &format!("org-{i:06}"),
                            w.next().start(),
                            DeliveryOutcome::AllRoutesFailed,
                        )
                        .await
                        .expect("record");
                }
            })
            .await;
        run(
            &store,
            w.next().next(),
            "inbound check, failing window",
            n,
            &mut rows,
        )
        .await;
        // A duplicate of the same tick: nothing moves.
        run(
            &store,
            w.next().next(),
            "duplicate run of the same window",
            n,
            &mut rows,
        )
        .await;
    }

    let alert_orgs: usize = std::env::var("BENCH_ALERT_ORGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if alert_orgs > 0 {
        // Every organisation reaches its threshold (1) in the same window; one contact each with
        // a mobile number and an alternate address: two sends per organisation through moto.
        let store = fresh_store().await;
        seed(&store, alert_orgs, |i| {
            let mut c = inbound_org(&format!("org-{i:06}"), 1);
            c.alerts.contacts = vec![shared::domain::config::Contact {
                name: "Admin".into(),
                mobile: Some(format!("+4477{i:08}")),
                email: Some(format!("admin-{i}@backup-mail.test")),
                recovery_notice: true,
            }];
            c
        })
        .await;
        stream::iter(0..alert_orgs)
            .for_each_concurrent(64, |i| {
                let store = store.clone();
                async move {
                    store
                        .record_delivery(
                            &format!("org-{i:06}"),
                            w.start(),
                            DeliveryOutcome::AllRoutesFailed,
                        )
                        .await
                        .expect("record");
                }
            })
            .await;
        run(
            &store,
            w.next(),
            "threshold reached, alerts sent (1 SMS + 1 email each)",
            alert_orgs,
            &mut rows,
        )
        .await;
        run(
            &store,
            w.next(),
            "duplicate run: nothing sent again",
            alert_orgs,
            &mut rows,
        )
        .await;
    }

    if probe_orgs > 0 {
        let store = fresh_store().await;
        let server = submission_server(&format!("{BENCH_PREFIX}org-000000/probe"), vec![]).await;
        let port = server.port;
        // Every organisation's own secret, all with the server's one password.
        let password = shared::ports::secrets::SecretSource::secret(
            &shared::adapters::secrets_manager::SecretsManagerSource::from_sdk(
                &sdk().await,
                Duration::from_secs(60),
            ),
            &format!("{BENCH_PREFIX}org-000000/probe"),
        )
        .await
        .expect("password");
        for i in 1..probe_orgs {
            put_secret(&format!("{BENCH_PREFIX}org-{i:06}/probe"), &password).await;
        }
        seed(&store, probe_orgs, |i| {
            probed_org(&format!("org-{i:06}"), 3, port)
        })
        .await;
        run(
            &store,
            w.next(),
            "both checks, probe sent (STARTTLS+AUTH)",
            probe_orgs,
            &mut rows,
        )
        .await;
        run(
            &store,
            w.next().next(),
            "both checks, probe judged missing",
            probe_orgs,
            &mut rows,
        )
        .await;
    }

    println!("\n| scenario | organisations | wall time of the run | per organisation | requests / org | RRU / org | WRU / org | USD / org / month |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let n = r.orgs as f64;
        println!(
            "| {} | {} | {:.2} s | {:.2} ms | {:.2} | {:.2} | {:.2} | {:.4} |",
            r.scenario,
            r.orgs,
            r.wall.as_secs_f64(),
            r.wall.as_secs_f64() * 1000.0 / n,
            r.delta.requests as f64 / n,
            r.delta.read_units / n,
            r.delta.write_units / n,
            r.delta.usd() / n * WINDOWS_PER_MONTH,
        );
    }
    println!("\n| scenario | requests per organisation by kind (items) |\n|---|---|");
    for r in &rows {
        println!("| {} | {} |", r.scenario, r.delta.pattern(r.orgs as f64));
    }
    println!(
        "\nRRU / WRU: the read and write request units AWS bills for the requests sent (tests/src/pricing.rs; not DynamoDB Local's ConsumedCapacity). \
         Cost column: that window's DynamoDB requests repeated for every window of a 30-day month, on-demand prices \
         (USD {}/M write units, {}/M read units); DynamoDB only (SNS and SES sends not priced).",
        pricing::USD_PER_MILLION_WRU,
        pricing::USD_PER_MILLION_RRU
    );
}
