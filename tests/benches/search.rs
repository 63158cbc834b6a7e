//! Search figures (issue 17) against DynamoDB Local, side by side in one run: a mailbox of
//! 30,000 generated messages over 30 days (`tests/src/search_support.rs`), searched through the
//! whole HTTP request (`GET /api/v1/mailboxes/{m}/search`: token, authorisation, the index's
//! Queries and lookups, the filings, JSON) for several kinds of search, p50 and p99, DynamoDB
//! requests and read units per search (first page); against the baseline of reading the same
//! 30 days of filings with Queries (1 MB pages) and filtering them in memory (subject and sender
//! only: the body is not even in the filings). Then the cost of indexing per filed message
//! (requests, write units, bytes): the generated messages (few words) and a message with a 2 KB
//! text body. Units and cost are priced from the requests sent (`tests/src/pricing.rs`). Needs
//! the local services (as `infra/local/bench.sh` starts them). BENCH_SEARCH_MESSAGES (default
//! 30000), BENCH_SEARCH_RUNS (default 50), BENCH_SEARCH_BASELINE_RUNS (default 5).

use integration_tests::inbox_support::{addr, InboxRig, ORG};
use integration_tests::pricing::{self, Tally};
use integration_tests::search_support::{fill, VOCABULARY};
use integration_tests::t;
use shared::adapters::dynamodb::keys::index_sk;
use shared::app::search::index_filed;
use shared::domain::mail::summarize;
use shared::domain::mailbox::{window_start, Folder, MessageRef};
use shared::domain::search::{message_terms, position};
use shared::ports::store::MailboxStore;
use std::time::Instant;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A posting item's size as DynamoDB counts it (names and values): `pk`, `sk`, `expires_at`.
fn posting_bytes(mailbox: &str, term: &str, r: &MessageRef) -> usize {
    let sk = index_sk(mailbox, term, &position(r));
    2 + format!("ORG#{ORG}").len() + 2 + sk.len() + "expires_at".len() + 6
}

#[tokio::main]
async fn main() {
    pricing::start();
    let n = env("BENCH_SEARCH_MESSAGES", 30_000);
    let runs = env("BENCH_SEARCH_RUNS", 50);
    let base_runs = env("BENCH_SEARCH_BASELINE_RUNS", 5);
    let now = t("2026-11-23T10:00:00Z");
    let rig = InboxRig::start(now).await;
    let bob = addr("bob");
    let store = rig.api.store().clone();
    let table = store.table().to_string();

    let t0 = Instant::now();
    let before_fill = pricing::tally(&table);
    let all = fill(&store, ORG, &bob, n, now).await;
    let filled = pricing::tally(&table).since(&before_fill);
    eprintln!(
        "filed and indexed {n} messages in {:.1} s ({} requests)",
        t0.elapsed().as_secs_f64(),
        filled.requests
    );

    // Indexing cost per message: the generated ones, again in another mailbox (index only).
    let sample = 200.min(n);
    let cost_box = addr("cost");
    let mut gen_bytes = 0usize;
    let mut gen_terms = 0usize;
    let c0 = pricing::tally(&table);
    for g in all.iter().take(sample) {
        let raw = integration_tests::search_support::raw(g, &cost_box);
        let summary = summarize(&raw);
        let terms = message_terms(&raw, &summary, g.r.folder);
        gen_terms += terms.len();
        gen_bytes += terms
            .iter()
            .map(|x| posting_bytes(&cost_box, x, &g.r))
            .sum::<usize>();
        index_filed(
            &store,
            ORG,
            std::slice::from_ref(&cost_box),
            &g.r,
            &raw,
            &summary,
        )
        .await
        .expect("index");
    }
    let gen_cost = pricing::tally(&table).since(&c0);
    // A message with a 2 KB text body of ordinary prose.
    let words: Vec<String> = (0..400)
        .map(|i| format!("{}{}", VOCABULARY[i % VOCABULARY.len()], i % 37))
        .collect();
    let body = words.join(" ");
    let prose = format!(
        "From: Long Writer <writer@prose.example>\r\nTo: {cost_box}, team@acme.test\r\nSubject: Minutes of the quarterly planning meeting\r\nMessage-ID: <prose@x>\r\n\r\n{body}\r\n"
    );
    let summary = summarize(prose.as_bytes());
    let r = MessageRef::new(Folder::Inbox, now, "prose1");
    let prose_terms = message_terms(prose.as_bytes(), &summary, Folder::Inbox);
    let prose_bytes: usize = prose_terms
        .iter()
        .map(|x| posting_bytes(&cost_box, x, &r))
        .sum();
    let p0 = pricing::tally(&table);
    index_filed(
        &store,
        ORG,
        std::slice::from_ref(&cost_box),
        &r,
        prose.as_bytes(),
        &summary,
    )
    .await
    .expect("index prose");
    let prose_cost = pricing::tally(&table).since(&p0);

    // Searches through the HTTP API, first page (50).
    let tok = rig.token("bob", false);
    let searches = [
        ("a frequent word", "q=budget".to_string()),
        ("two words", "q=budget+invoice".to_string()),
        (
            "a rare word and a frequent one",
            "q=feedback+budget".to_string(),
        ),
        ("a sender (address)", "from=jan@contoso.example".to_string()),
        (
            "a word, a date range",
            "q=server&after=2026-11-05&before=2026-11-12".to_string(),
        ),
        (
            "a word, with attachment",
            "q=budget&attachment=1".to_string(),
        ),
        (
            "unread with attachment",
            "unread=1&attachment=1".to_string(),
        ),
        ("no match", "q=nosuchword".to_string()),
    ];
    let mut rows: Vec<(String, Vec<f64>, Tally, usize)> = Vec::new();
    for (what, q) in &searches {
        let path = format!("/api/v1/mailboxes/{bob}/search?{q}");
        let m0 = pricing::tally(&table);
        let mut lat = Vec::with_capacity(runs);
        let mut found = 0;
        for _ in 0..runs {
            let t0 = Instant::now();
            let (st, page) = rig.get(&tok, &path).await;
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(st, 200, "{page}");
            found = page["results"].as_array().map_or(0, |a| a.len());
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        rows.push((
            format!("index: {what} (`{q}`)"),
            lat,
            pricing::tally(&table).since(&m0),
            found,
        ));
    }

    // The baseline: every filing of the 30 days (Inbox and Sent), 1,000 a Query, filtered here.
    let m0 = pricing::tally(&table);
    let mut lat = Vec::with_capacity(base_runs);
    let mut found = 0;
    for _ in 0..base_runs {
        let t0 = Instant::now();
        let mut hits = 0;
        for folder in [Folder::Inbox, Folder::Sent] {
            let mut before: Option<MessageRef> = None;
            loop {
                let page = store
                    .mailbox_page(ORG, &bob, folder, window_start(now), before.as_ref(), 1000)
                    .await
                    .expect("page");
                hits += page
                    .items
                    .iter()
                    .filter(|l| {
                        l.summary
                            .subject
                            .as_deref()
                            .is_some_and(|s| s.to_lowercase().contains("budget"))
                    })
                    .count();
                match page.next {
                    Some(r) => before = Some(r),
                    None => break,
                }
            }
        }
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        found = hits;
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let baseline = pricing::tally(&table).since(&m0);

    println!(
        "Search of a mailbox of {n} messages (30 days); {runs} runs per search, {base_runs} of the baseline"
    );
    println!();
    println!("| search (first page of 50) | p50 | p99 | DynamoDB requests / search | request pattern / search | RRU / search | USD / million searches | results |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|");
    for (what, lat, d, found) in &rows {
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {:.2} | {} | {:.2} | {:.2} | {found} |",
            pct(lat, 0.5),
            pct(lat, 0.99),
            d.requests as f64 / runs as f64,
            d.pattern(runs as f64),
            d.read_units / runs as f64,
            d.usd() / runs as f64 * 1e6,
        );
    }
    println!(
        "| baseline: read the 30 days with Queries, filter (`budget` in the subject; all matches, bodies not searched) | {:.2} ms | {:.2} ms | {:.2} | {} | {:.2} | {:.2} | {found} |",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        baseline.requests as f64 / base_runs as f64,
        baseline.pattern(base_runs as f64),
        baseline.read_units / base_runs as f64,
        baseline.usd() / base_runs as f64 * 1e6,
    );
    println!();
    println!("Indexing per filed message (besides the filing itself):");
    println!();
    println!(
        "| message | terms | DynamoDB requests | WRU | posting bytes | USD / million messages |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let s = sample as f64;
    println!(
        "| generated (subject, sender, 1-3 body words; mean of {sample}) | {:.1} | {:.2} | {:.1} | {:.0} | {:.2} |",
        gen_terms as f64 / s,
        gen_cost.requests as f64 / s,
        gen_cost.write_units / s,
        gen_bytes as f64 / s,
        gen_cost.usd() / s * 1e6,
    );
    println!(
        "| 2 KB text body of prose | {} | {} | {:.1} | {} | {:.2} |",
        prose_terms.len(),
        prose_cost.requests,
        prose_cost.write_units,
        prose_bytes,
        prose_cost.usd() * 1e6,
    );
    println!(
        "\nFilling the mailbox (filings, postings, read marks): {:.2} requests a message.",
        filled.requests as f64 / n as f64
    );
    println!(
        "RRU / WRU: request units AWS bills for the requests sent (tests/src/pricing.rs), USD {}/M RRU, {}/M WRU.",
        pricing::USD_PER_MILLION_RRU,
        pricing::USD_PER_MILLION_WRU
    );
}
