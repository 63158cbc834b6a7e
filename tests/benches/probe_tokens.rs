//! What the OAuth probe logons (D9) cost in token requests: a day of 720 windows on the virtual
//! clock for BENCH_TOKEN_ORGS organisations (default 4: half an Entra ID app with a client secret
//! over SMTP XOAUTH2, half a Google service account), each probe sent through the XOAUTH2 mail
//! server stand-in and judged on arrival, against the token endpoint stand-in issuing tokens of
//! 3,599 s as Entra ID and Google do. Counted: token requests (issued and refused, as the
//! endpoint counts them), the token cache's fetches, SMTP logons, probes in time. Then the wall
//! time of one logon test with and without a cached token (BENCH_TOKEN_RUNS, default 20), which is
//! what a token fetch adds to a probe on this machine (loopback endpoint: a lower bound against
//! Entra ID or Google). Run with `infra/local/bench.sh` (it starts the services).

use integration_tests::oauth::*;
use integration_tests::*;
use shared::app::probe_logon::{ProbeLogons, TokenCache};
use shared::domain::config::{AppCredential, MicrosoftApp, OrgConfig, ProbeLogon};
use shared::domain::counter::ProbeObservation;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use std::time::{Duration, Instant};

/// Windows in a day (one every two minutes).
const WINDOWS: i64 = 720;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The probe mailbox of `org_id`.
fn mailbox(org_id: &str) -> String {
    format!("continuity-probe@{org_id}.test")
}

/// `org_id` probing through 127.0.0.1:`port` as its probe mailbox with `logon`.
fn org(org_id: &str, port: u16, logon: ProbeLogon) -> OrgConfig {
    let mut c = probed_org(org_id, 3, port);
    let p = c.probe.as_mut().expect("probe");
    p.username = mailbox(org_id);
    p.logon = logon;
    c
}

/// Mean wall time of `runs` logon tests of `cfg`, each with an empty token cache (`fresh`) or
/// all with one warm cache.
async fn logon_wall(
    d: &monitor::Deps,
    cfg: &OrgConfig,
    now: chrono::DateTime<chrono::Utc>,
    runs: usize,
    fresh: bool,
) -> Duration {
    let warm = TokenCache::default();
    let mut total = Duration::ZERO;
    for _ in 0..runs {
        let cold = TokenCache::default();
        let logons = ProbeLogons {
            cache: if fresh { &cold } else { &warm },
            ..d.logons()
        };
        if !fresh && warm.fetches() == 0 {
            assert!(logons.test(cfg, now).await.ok, "warm-up");
        }
        let started = Instant::now();
        let report = logons.test(cfg, now).await;
        total += started.elapsed();
        assert!(report.ok && report.token, "{report:?}");
    }
    total / runs as u32
}

#[tokio::main]
async fn main() {
    let orgs = env_num("BENCH_TOKEN_ORGS", 4).max(2);
    let runs = env_num("BENCH_TOKEN_RUNS", 20).max(1);
    let ids: Vec<String> = (0..orgs).map(|i| format!("org-{i:03}")).collect();
    let (microsoft, google) = ids.split_at(orgs / 2);
    let google_users: Vec<String> = google.iter().map(|o| mailbox(o)).collect();
    let google_refs: Vec<&str> = google_users.iter().map(String::as_str).collect();
    let microsoft_users: Vec<String> = microsoft.iter().map(|o| mailbox(o)).collect();
    let microsoft_refs: Vec<&str> = microsoft_users.iter().map(String::as_str).collect();

    let sa = AppKey::generate();
    let tokens =
        TokenServer::start(registry("app-secret-1", None, Some((&sa, &google_refs)))).await;
    let day = t(integration_tests::day::DAY);
    let rig = Rig::start_oauth(
        day - chrono::Duration::seconds(1),
        chrono::Duration::seconds(2),
        endpoints(&tokens, free_port()),
    )
    .await;
    let relay = vec![(PROBE_DOMAIN.to_string(), rig.receiving_port)];
    let exchange = xoauth2_mail_server(&tokens, "microsoft", &microsoft_refs, relay.clone()).await;
    let gmail = xoauth2_mail_server(&tokens, "google", &google_refs, relay).await;

    let mut configs = Vec::new();
    for o in microsoft {
        let app = MicrosoftApp {
            tenant: TENANT.into(),
            client_id: CLIENT_ID.into(),
            credential: AppCredential::ClientSecret,
            certificate_thumbprint: None,
        };
        put_secret(&rig.probe_secret(o), "app-secret-1").await;
        configs.push(org(
            o,
            exchange.port,
            ProbeLogon::Oauth2ClientCredentials(app),
        ));
    }
    let token_url = format!("{}/token", tokens.url());
    for o in google {
        put_secret(&rig.probe_secret(o), &sa.service_account_json(&token_url)).await;
        configs.push(org(o, gmail.port, ProbeLogon::GoogleXoauth2));
    }
    for c in &configs {
        rig.store().put_config(c, day).await.expect("config");
    }

    // The day: tick k judges window k-1 and sends window k's probe.
    let w0 = Window::containing(day);
    let started = Instant::now();
    for k in 0..=WINDOWS {
        rig.advance_to(Window(w0.0 + k).start()).await;
    }
    let wall = started.elapsed();
    let stats = tokens.stats().await;
    let refused = stats["refused"].as_array().map_or(0, Vec::len) as u64;

    println!(
        "A day of OAuth probes: {orgs} organisations x {WINDOWS} windows, tokens of 3,599 s \
         (used until 5 minutes before they expire); {:.0} s wall on the virtual clock",
        wall.as_secs_f64()
    );
    println!();
    println!(
        "| method | organisations | probes in time / org (of 720) | probes sent / org (721 ticks) | \
         token requests / org | token requests / probe |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let rows = [
        (
            "oauth2-client-credentials (SMTP XOAUTH2)",
            microsoft,
            &exchange,
            CLIENT_ID,
        ),
        ("google-xoauth2", google, &gmail, SERVICE_ACCOUNT),
    ];
    for (method, group, server, client) in rows {
        let n = group.len() as f64;
        let mut in_time = 0usize;
        for o in group {
            let h = rig
                .store()
                .history(o, w0, Window(w0.0 + WINDOWS - 1))
                .await
                .expect("history");
            in_time += h
                .iter()
                .filter(|e| e.outbound == Some(ProbeObservation::InTime))
                .count();
        }
        let sent = server.messages().len() as f64;
        let requests = tokens.issued(client).await as f64;
        println!(
            "| {method} | {} | {:.1} | {:.1} | {:.1} | {:.3} |",
            group.len(),
            in_time as f64 / n,
            sent / n,
            requests / n,
            requests / sent.max(1.0),
        );
    }
    println!();
    println!(
        "Token cache fetches: {} (all organisations); refused token requests: {refused}",
        rig.runner.deps.token_cache.fetches()
    );

    // What a fetch adds to one logon (a logon test: token, STARTTLS, AUTH XOAUTH2, QUIT).
    let now = rig.clock.now();
    println!();
    println!("| method | logon with a token fetch | logon with the cached token | added by the fetch | runs |");
    println!("|---|---:|---:|---:|---:|");
    for (method, cfg) in [
        ("oauth2-client-credentials", &configs[0]),
        ("google-xoauth2", &configs[orgs / 2]),
    ] {
        let d = &rig.runner.deps;
        let cold = logon_wall(d, cfg, now, runs, true).await;
        let warm = logon_wall(d, cfg, now, runs, false).await;
        println!(
            "| {method} | {:.1} ms | {:.1} ms | {:.1} ms | {runs} |",
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.saturating_sub(warm).as_secs_f64() * 1e3,
        );
    }
}
