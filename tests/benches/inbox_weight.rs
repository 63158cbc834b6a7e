//! The Online Inbox on a phone (issue 17): page weight of the inbox's first page (100 messages),
//! compressed (gzip, as browsers ask for it) and not, with the scripts it loads; and time to
//! first render in Debian's Chromium on a phone's screen (390 x 844), Chromium's own timing
//! (`first-contentful-paint` of the Performance API): the first visit, and later visits with
//! the service worker in charge. Needs the local services (as `infra/local/bench.sh` starts
//! them) and chromium. BENCH_WEIGHT_RUNS (default 20) loads per figure.

use chrono::Duration;
use fantoccini::Locator;
use integration_tests::browser::{until, Browser};
use integration_tests::inbox_support::{addr, plain, InboxRig};
use integration_tests::t;

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// (bytes on the wire with gzip, bytes without) of `path`.
async fn weight(rig: &InboxRig, path: &str, token: &str) -> (usize, usize) {
    let mut sizes = [0usize; 2];
    for (i, enc) in ["gzip", "identity"].iter().enumerate() {
        let r = rig
            .http
            .get(rig.api.url(path))
            .bearer_auth(token)
            .header("accept", "text/html")
            .header("accept-encoding", *enc)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        sizes[i] = r.bytes().await.expect("body").len();
    }
    (sizes[0], sizes[1])
}

/// First contentful paint of `url`, in ms, over `runs` loads.
async fn fcp(b: &Browser, url: &str, runs: usize) -> Vec<f64> {
    let c = &b.client;
    let mut out = vec![];
    for _ in 0..runs {
        c.goto(url).await.expect("goto");
        // The paint entry appears once the page has painted (a bounded wait of 20 s).
        let mut v = serde_json::Value::Null;
        for _ in 0..200 {
            v = c
                .execute(
                    "const e = performance.getEntriesByName('first-contentful-paint')[0];
                     return e ? e.startTime : null;",
                    vec![],
                )
                .await
                .unwrap_or(serde_json::Value::Null);
            if !v.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(!v.is_null(), "no first-contentful-paint for {url}");
        out.push(v.as_f64().unwrap_or(0.0));
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_WEIGHT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let now = t("2026-11-23T10:00:00Z");
    let rig = InboxRig::start(now).await;
    let bob = addr("bob");
    for i in 0..120i64 {
        let raw = plain(
            &format!("Sender {i} <sender{i}@example.org>"),
            &bob,
            &format!("Weekly report number {i} for the team"),
            &format!("weight{i}@example.org"),
            "body",
        );
        rig.file(&bob, now - Duration::minutes(i + 1), &raw).await;
    }
    let token = rig.token("bob", false);
    let list = format!("/inbox/{bob}");
    println!("Online Inbox page weight, first page (100 messages), bytes on the wire:");
    println!("| resource | gzip | uncompressed |\n|---|---:|---:|");
    let mut total = (0, 0);
    for path in [list.as_str(), "/static/inbox.js", "/static/pwa.js"] {
        let (z, p) = weight(&rig, path, &token).await;
        total = (total.0 + z, total.1 + p);
        let name = if path == list {
            "/inbox/{mailbox}"
        } else {
            path
        };
        println!("| {name} | {z} | {p} |");
    }
    println!("| page and scripts | {} | {} |", total.0, total.1);

    let b = Browser::start_sized(390, 844).await;
    b.phone().await;
    let c = &b.client;
    c.goto(&rig.api.url(&list)).await.expect("goto");
    until("the ways in", || async {
        c.find(Locator::Id("idp")).await.is_ok()
    })
    .await;
    c.find(Locator::Id("idp"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the sign-in form", || async {
        c.find(Locator::Id("email")).await.is_ok()
    })
    .await;
    c.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(&bob)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the list", || async {
        c.find(Locator::Id("rows")).await.is_ok()
    })
    .await;
    let url = rig.api.url(&list);
    // Without the worker: every load from the network (the worker is unregistered first).
    let unregister = "const done = arguments[arguments.length - 1];
        navigator.serviceWorker.getRegistrations()
          .then(rs => Promise.all(rs.map(r => r.unregister()))).then(() => done(null));";
    let mut cold = vec![];
    for _ in 0..runs {
        c.execute_async(unregister, vec![])
            .await
            .expect("unregister");
        cold.extend(fcp(&b, &url, 1).await);
    }
    cold.sort_by(|a, b| a.total_cmp(b));
    // With the worker in charge (network first, the page kept).
    c.goto(&url).await.expect("goto");
    until("the worker in charge", || async {
        c.execute("return !!navigator.serviceWorker.controller;", vec![])
            .await
            .map(|v| v == true)
            .unwrap_or(false)
    })
    .await;
    let warm = fcp(&b, &url, runs).await;
    // Offline: from what the device kept.
    rig.api.serve(false).await;
    let offline = fcp(&b, &url, runs).await;
    rig.api.serve(true).await;
    println!();
    println!(
        "Time to first render (first-contentful-paint, Chromium, 390 x 844), {runs} loads each:"
    );
    println!("| load | p50 ms | p99 ms |\n|---|---:|---:|");
    for (name, v) in [
        ("no service worker (network)", &cold),
        ("service worker, network first", &warm),
        ("service worker, offline (kept copy)", &offline),
    ] {
        println!("| {name} | {:.0} | {:.0} |", pct(v, 0.5), pct(v, 0.99));
    }
    b.close().await;
}
