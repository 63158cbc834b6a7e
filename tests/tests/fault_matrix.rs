//! Production's faults on the mail path (issue 13), reproduced against the real local services,
//! one test per fault kind. Each receives mail as SES invokes the inbound function (at least
//! once: a failed invocation is invoked again, as Lambda retries an asynchronous event twice;
//! invocations run concurrently, as Lambda runs them), drains the queue once the fault has
//! stopped, and checks that every message was delivered or bounced exactly as the rules say,
//! none lost, and counts duplicates (none are expected by any kind here: a duplicate fails).
//!
//! The faults: DynamoDB's throttling, server errors and dropped connections, and S3's SlowDown
//! and 500s, injected by a real HTTP proxy in front of DynamoDB Local or moto
//! (`infra/local/faultproxy.py`, with the services' own error bodies) under the production SDK
//! settings (`shared::adapters::aws::sdk_config`: retries and time limits); the organisation's
//! server (aiosmtpd, `infra/local/mailserver.py`) answering 4xx, refusing some recipients for
//! good, hanging, dropping the connection after DATA, breaking TLS; SES invoking the function
//! twice for one message; queue runs overlapping.
//!
//! An event whose three tries all fail goes to the dead-letter queue (as Lambda's on-failure
//! destination writes it) and is replayed through the function once the fault is over, as the
//! README tells an operator to: one test puts the records in a real SQS queue (moto) and
//! drains it as the template's redrive does. The `inbound` and `queue` binaries themselves run
//! as Lambda runs them (`integration_tests::lambda_api`) and are killed (SIGKILL) before and
//! after each of their durable writes. Duplicates are allowed only where the rules allow them
//! (a write failing for good, or a process killed, after the server's 250) and are counted.
//!
//! Each test prints its row of the matrix (`fault | messages | delivered | bounced | lost |
//! duplicates | via the dead-letter queue`); `infra/local/test.sh --test fault_matrix --
//! --nocapture` shows them.

use futures::stream::{self, StreamExt};
use integration_tests::faults::FaultProxy;
use integration_tests::lambda_api::{Answer, LambdaProcess};
use integration_tests::Clock;
use integration_tests::{
    mail_deps_from, mail_settings, message, ses_raw_messages, t, test_cert, unique, MailRig,
    MailServer, MailServerOptions, BOUNCE_SENDER,
};
use serde_json::{json, Value};
use shared::adapters::s3::S3RawMessages;
use shared::domain::config::RouteTls;
use shared::domain::delivery::Deadline;
use shared::domain::verdicts::Verdicts;
use shared::domain::window::Window;
use shared::ports::blob::RawMessages;
use shared::ports::store::MonitorStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const T0: &str = "2026-11-23T10:00:00Z";
/// Invocations in flight at once (Lambda runs an asynchronous event source's invocations
/// concurrently).
const CONCURRENCY: usize = 16;
/// The sender: its domain passed SPF and DMARC (every verdict a pass), so it may get bounces.
const SENDER: &str = "alice@example.org";

/// One message sent in: its token (in the subject and body) and its recipients.
struct Sent {
    token: String,
    id: String,
    rcpts: Vec<String>,
}

/// One row of the matrix.
struct Row {
    fault: &'static str,
    messages: usize,
    delivered: usize,
    bounced: usize,
    lost: usize,
    duplicates: usize,
    /// Events whose three tries all failed: delivered after the dead-letter queue's replay.
    dead_lettered: usize,
}

impl Row {
    fn print(&self) {
        println!(
            "FAULT MATRIX | {} | {} | {} | {} | {} | {} | {} |",
            self.fault,
            self.messages,
            self.delivered,
            self.bounced,
            self.lost,
            self.duplicates,
            self.dead_lettered
        );
    }
}

/// A rig for one fault kind: the organisation `acme` (mail for `acme.test`) delivering to
/// `server` over `routes` routes, and the bucket SES writes raw messages into.
struct Matrix {
    /// The time the mail arrives (virtual, or the real time for a function run as a process).
    t0: chrono::DateTime<chrono::Utc>,
    /// The dead-letter queue: (SQS message id, on-failure record) of events whose every try
    /// failed, not yet replayed.
    dead: std::sync::Mutex<Vec<(String, String)>>,
    /// Events that went to the dead-letter queue in all.
    dead_lettered: std::sync::Mutex<usize>,
    rig: MailRig,
    server: MailServer,
    ses_writes: S3RawMessages,
    proxy: Option<FaultProxy>,
}

/// What the inbound handler is given as its deadline, and when the "Lambda" ends it.
#[derive(Clone, Copy)]
struct Limits {
    deadline: Duration,
    killed_at: Duration,
}

/// As the template sets the inbound function: 300 s, deliveries over 15 s before.
const INBOUND: Limits = Limits {
    deadline: Duration::from_secs(285),
    killed_at: Duration::from_secs(300),
};

impl Matrix {
    async fn start(rig: MailRig, server: MailServer, proxy: Option<FaultProxy>) -> Self {
        let ses_writes =
            S3RawMessages::from_sdk(&integration_tests::sdk().await, rig.deps.raw.bucket());
        Matrix {
            t0: rig.clock.now(),
            dead: Default::default(),
            dead_lettered: Default::default(),
            rig,
            server,
            ses_writes,
            proxy,
        }
    }

    /// A plain server, the store and bucket as given by `faulted`, mail arriving at T0.
    async fn plain(faulted: Option<Faulted>) -> Self {
        Self::plain_at(faulted, t(T0)).await
    }

    /// As [`Matrix::plain`], mail arriving at `t0`.
    async fn plain_at(faulted: Option<Faulted>, t0: chrono::DateTime<chrono::Utc>) -> Self {
        let server = MailServer::start(MailServerOptions::default()).await;
        let (rig, proxy) = match faulted {
            None => (
                MailRig::start_with(t0, integration_tests::fresh_store().await, |_| {}).await,
                None,
            ),
            Some(Faulted::DynamoDb) => {
                let proxy = FaultProxy::dynamodb().await;
                let store = proxy.store().await;
                (MailRig::start_with(t0, store, |_| {}).await, Some(proxy))
            }
            Some(Faulted::S3) => {
                let proxy = FaultProxy::moto().await;
                let sdk = shared::adapters::aws::sdk_config().await;
                let store = integration_tests::fresh_store().await;
                let rig = MailRig::start_with(t0, store, |deps| {
                    deps.raw = proxy.s3_raw(&sdk, deps.raw.bucket());
                })
                .await;
                (rig, Some(proxy))
            }
        };
        let m = Matrix::start(rig, server, proxy).await;
        m.configure(1, 2, RouteTls::Opportunistic).await;
        m
    }

    /// `routes` routes to the one server, `timeout_secs` a step; a drain fast enough for the
    /// message counts here.
    async fn configure(&self, routes: usize, timeout_secs: u32, tls: RouteTls) {
        let mut c = self.rig.org("acme", &vec![self.server.port; routes]).await;
        for r in &mut c.routes {
            r.tls = tls;
        }
        c.delivery.timeout_secs = timeout_secs;
        c.queue.drain_per_minute = 2_000;
        self.rig.put_config(&c).await;
    }

    /// Sends `n` messages in as SES would: the raw stored first (never through a fault), then
    /// the function invoked `invocations` times for each (a duplicate SES event), concurrently;
    /// each invocation as Lambda makes it (three tries, each ended at `limits.killed_at`).
    async fn receive(
        &self,
        n: usize,
        rcpts: impl Fn(usize) -> Vec<String>,
        invocations: usize,
        limits: Limits,
    ) -> Vec<Sent> {
        let sent: Vec<Sent> = (0..n)
            .map(|i| Sent {
                token: unique("fault").replace('-', ""),
                id: unique("ses").replace('-', ""),
                rcpts: rcpts(i),
            })
            .collect();
        let results: Vec<Result<(), String>> = stream::iter(&sent)
            .map(|s| async move {
                let raw = message(&s.token, &s.rcpts[0]);
                self.ses_writes
                    .put(&format!("{}{}", self.rig.deps.prefix, s.id), raw)
                    .await
                    .map_err(|e| format!("SES's write: {e}"))?;
                let runs =
                    (0..invocations).map(|_| invoke_as_lambda(&self.rig, self.t0, s, limits));
                for r in futures::future::join_all(runs).await {
                    r?;
                }
                Ok(())
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        // An event whose three tries all failed goes to the dead-letter queue, as Lambda's
        // on-failure destination writes it.
        let mut dead = self.dead.lock().expect("dead letters");
        for (s, r) in sent.iter().zip(&results) {
            if let Err(e) = r {
                let event = inbound::SesEvent::single(
                    &s.id,
                    self.t0,
                    SENDER,
                    s.rcpts.clone(),
                    Verdicts::ALL_PASS,
                );
                dead.push((unique("sqs"), failure_record(&event, e).to_string()));
            }
        }
        *self.dead_lettered.lock().expect("count") += results.iter().filter(|r| r.is_err()).count();
        sent
    }

    /// The operator's redrive of the dead-letter queue (README "Replaying failed inbound
    /// mail"): batches of ten through the function; what fails again stays in the queue.
    async fn replay_dead_letters(&self) {
        let dead = std::mem::take(&mut *self.dead.lock().expect("dead letters"));
        let mut again = Vec::new();
        for batch in dead.chunks(10) {
            let failed: Vec<String> = match inbound::handle_event(
                &self.rig.deps,
                sqs_batch(batch),
                inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
            )
            .await
            {
                Ok(answer) => answer["batchItemFailures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(_) => batch.iter().map(|(id, _)| id.clone()).collect(),
            };
            again.extend(batch.iter().filter(|(id, _)| failed.contains(id)).cloned());
        }
        *self.dead.lock().expect("dead letters") = again;
    }

    /// Replays the dead-letter queue, then runs the queue once a minute for `minutes` minutes
    /// after T0, `overlap` runs at once.
    async fn drain(&self, minutes: i64, overlap: usize) {
        self.replay_dead_letters().await;
        for minute in 1..=minutes {
            let at = self.t0 + chrono::Duration::minutes(minute);
            self.rig.clock.set(at);
            let runs = (0..overlap).map(|_| {
                inbound::handle_queue(
                    &self.rig.deps,
                    inbound::ScheduledEvent { time: Some(at) },
                    inbound::invocation_deadline(inbound::QUEUE_TIMEOUT),
                )
            });
            let _ = futures::future::join_all(runs).await;
            if self.rig.figures("acme").await.count == 0 {
                break;
            }
        }
    }

    /// Counts what became of `sent`: a recipient is delivered when the server holds a copy for
    /// it, bounced when SES sent its sender a DSN naming it. Asserts none lost, none doubled,
    /// nothing left queued, and that exactly the recipients `refused` picks were bounced.
    async fn tally(
        &self,
        fault: &'static str,
        sent: &[Sent],
        refused: impl Fn(&str) -> bool,
    ) -> Row {
        self.tally_allowing(fault, sent, refused, 0).await
    }

    /// As [`Matrix::tally`], with up to `allowed` duplicates (a process killed between the
    /// server's 250 and the dequeue delivers again: the rules allow that, never a loss).
    async fn tally_allowing(
        &self,
        fault: &'static str,
        sent: &[Sent],
        refused: impl Fn(&str) -> bool,
        allowed: usize,
    ) -> Row {
        if let Some(p) = &self.proxy {
            let injected = p.stats();
            p.clear();
            assert!(p.injected() >= 3, "the faults happened: {injected}");
        }
        let mut copies: HashMap<String, usize> = HashMap::new();
        for m in self.server.messages() {
            if let Some(token) = subject_token(&m) {
                *copies.entry(token).or_default() += 1;
            }
        }
        let mut dsns: HashMap<String, usize> = HashMap::new();
        for (src, to, raw) in ses_raw_messages().await {
            if src == BOUNCE_SENDER && to.iter().any(|d| d == SENDER) {
                for s in sent {
                    if raw.contains(&s.token) {
                        *dsns.entry(s.token.clone()).or_default() += 1;
                    }
                }
            }
        }
        let mut row = Row {
            fault,
            messages: sent.len(),
            delivered: 0,
            bounced: 0,
            lost: 0,
            duplicates: 0,
            dead_lettered: *self.dead_lettered.lock().expect("count"),
        };
        assert!(
            self.dead.lock().expect("dead letters").is_empty(),
            "every dead letter was replayed ({fault})"
        );
        for s in sent {
            let wants_copy = s.rcpts.iter().any(|r| !refused(r));
            let wants_dsn = s.rcpts.iter().any(|r| refused(r));
            let got = copies.get(&s.token).copied().unwrap_or(0);
            let dsn = dsns.get(&s.token).copied().unwrap_or(0);
            row.delivered += usize::from(wants_copy && got > 0);
            row.bounced += usize::from(wants_dsn && dsn > 0);
            row.lost += usize::from((wants_copy && got == 0) || (wants_dsn && dsn == 0));
            row.duplicates += got.saturating_sub(1) + dsn.saturating_sub(1);
            assert!(wants_copy || got == 0, "{} reached the server", s.token);
        }
        row.print();
        assert_eq!(row.lost, 0, "nothing lost ({fault})");
        assert!(
            row.duplicates <= allowed,
            "at most {allowed} doubled ({fault})"
        );
        assert_eq!(
            self.rig.figures("acme").await.count,
            0,
            "nothing left queued ({fault})"
        );
        row
    }
}

/// The token of a message the server stored (its `Subject:`).
fn subject_token(raw: &str) -> Option<String> {
    raw.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(|s| s.trim().to_string())
}

/// Lambda's asynchronous invocation of one message's event: the first try and two retries,
/// each given its deadline and ended at the function's timeout (a handler still running then
/// is an invocation Lambda kills: counted as a failed try).
async fn invoke_as_lambda(
    rig: &MailRig,
    at: chrono::DateTime<chrono::Utc>,
    s: &Sent,
    limits: Limits,
) -> Result<(), String> {
    let event = inbound::SesEvent::single(&s.id, at, SENDER, s.rcpts.clone(), Verdicts::ALL_PASS);
    let mut last = String::new();
    for _ in 0..3 {
        let deadline = Deadline::within(tokio::time::Instant::now().into_std(), limits.deadline);
        match tokio::time::timeout(
            limits.killed_at,
            inbound::handle_ses(&rig.deps, &event, deadline),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = format!("{e:?}"),
            Err(_) => last = format!("killed at the function's timeout ({:?})", limits.killed_at),
        }
    }
    Err(last)
}

/// Which service the faults are injected into.
#[derive(Clone, Copy)]
enum Faulted {
    DynamoDb,
    S3,
}

fn bob(_: usize) -> Vec<String> {
    vec!["bob@acme.test".to_string()]
}

fn none_refused(_: &str) -> bool {
    false
}

/// Messages per fault kind where one message takes milliseconds: `FAULT_MATRIX_MESSAGES`,
/// 250 by default so that the whole suite stays inside CI's budget on two cores (1,000 and more
/// pass too: `FAULT_MATRIX_MESSAGES=1000 infra/local/test.sh --test fault_matrix`).
fn messages() -> usize {
    std::env::var("FAULT_MATRIX_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250)
}

/// DynamoDB or S3 faulted while `messages()` messages arrive and drain.
async fn service_fault(fault: &'static str, faulted: Faulted, faults: Value) -> Row {
    let m = Matrix::plain(Some(faulted)).await;
    if let Some(p) = &m.proxy {
        p.set(faults);
    }
    let sent = m.receive(messages(), bob, 1, INBOUND).await;
    // The queue drains with the faults still on; then they stop, and the dead-letter queue
    // (events whose three tries failed) is replayed and the rest drains.
    m.drain(30, 1).await;
    if let Some(p) = &m.proxy {
        p.clear();
    }
    m.drain(30, 1).await;
    // A write that fails for good after the server's 250 (the SDK's retries used up) leaves
    // the message queued: delivered again, the rules' one allowed duplicate. Counted.
    m.tally_allowing(fault, &sent, none_refused, sent.len() / 50)
        .await
}

#[tokio::test]
async fn dynamodb_throttled_one_request_in_five() {
    service_fault(
        "DynamoDB throttled (20%: Throttling, ProvisionedThroughputExceeded)",
        Faulted::DynamoDb,
        json!({"throttle": 0.1, "throughput": 0.1}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_answering_server_errors() {
    service_fault(
        "DynamoDB 500/503 (15%)",
        Faulted::DynamoDb,
        json!({"internal": 0.1, "unavailable": 0.05}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_connections_dropped_before_the_request_arrives() {
    service_fault(
        "DynamoDB connection dropped before the request (10%)",
        Faulted::DynamoDb,
        json!({"drop_before": 0.1}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_connections_dropped_after_the_write_was_applied() {
    service_fault(
        "DynamoDB connection dropped after the write applied (10%)",
        Faulted::DynamoDb,
        json!({"drop_after": 0.1}),
    )
    .await;
}

#[tokio::test]
async fn s3_answering_slow_down_and_server_errors() {
    // The function's reads of the raw message and the queue's are faulted (SES's own write
    // happens before the function runs).
    service_fault(
        "S3 SlowDown/500/dropped (35%)",
        Faulted::S3,
        json!({"throttle": 0.15, "internal": 0.15, "drop_after": 0.05}),
    )
    .await;
}

/// The server in `mode` while `messages()` messages arrive; back to normal, the queue drains.
async fn server_fault(fault: &'static str, mode: &str) -> Row {
    let m = Matrix::plain(None).await;
    m.server.set_mode(mode);
    let sent = m.receive(messages(), bob, 1, INBOUND).await;
    assert_eq!(m.server.messages().len(), 0, "nothing got through ({mode})");
    assert_eq!(
        m.rig.figures("acme").await.count,
        messages() as u64,
        "queued while {mode}"
    );
    m.server.set_mode("accept");
    m.drain(30, 1).await;
    m.tally(fault, &sent, none_refused).await
}

#[tokio::test]
async fn smtp_answering_4xx() {
    server_fault("SMTP 451 at MAIL FROM", "tempfail").await;
}

#[tokio::test]
async fn smtp_dropping_the_connection_after_data() {
    server_fault("SMTP connection dropped after DATA", "drop-after-data").await;
}

#[tokio::test]
async fn smtp_refusing_one_recipient_of_two_for_good() {
    let m = Matrix::plain(None).await;
    m.server.set_mode("permfail-some");
    let sent = m
        .receive(
            messages(),
            |i| vec!["bob@acme.test".into(), format!("gone{i}@acme.test")],
            1,
            INBOUND,
        )
        .await;
    m.drain(5, 1).await;
    let row = m
        .tally("SMTP 550 for one recipient of two", &sent, |r| {
            r.starts_with("gone")
        })
        .await;
    assert_eq!(
        row.bounced,
        messages(),
        "each refused recipient bounced once"
    );
    for copy in m.server.messages().iter().take(20) {
        assert!(
            copy.contains("X-Envelope-To: bob@acme.test\r\n"),
            "only Bob's copy: {copy}"
        );
    }
}

#[tokio::test]
async fn smtp_breaking_tls() {
    // The route requires STARTTLS; the server answers it with a TLS alert.
    let server = MailServer::start(MailServerOptions {
        tls: true,
        ..Default::default()
    })
    .await;
    let store = integration_tests::fresh_store().await;
    let clock = shared::adapters::clock::VirtualClock::new(t(T0));
    let mut settings = mail_settings(&store);
    settings.ca_bundle = Some(test_cert().0.display().to_string());
    let deps = mail_deps_from(&settings, store, Arc::new(clock.clone()))
        .await
        .expect("deps");
    let rig = MailRig {
        clock,
        deps: Arc::new(deps),
    };
    let m = Matrix::start(rig, server, None).await;
    m.configure(1, 2, RouteTls::StarttlsRequired).await;
    m.server.set_mode("bad-tls");
    let sent = m.receive(messages(), bob, 1, INBOUND).await;
    assert_eq!(m.server.messages().len(), 0, "nothing sent without TLS");
    m.server.set_mode("accept");
    m.drain(30, 1).await;
    m.tally(
        "TLS handshake failure (route requires STARTTLS)",
        &sent,
        none_refused,
    )
    .await;
    for copy in m.server.messages().iter().take(20) {
        assert!(copy.contains("X-Continuity-Session: tls=yes"), "{copy}");
    }
}

#[tokio::test]
async fn ses_invoking_the_function_twice_for_each_message() {
    let m = Matrix::plain(None).await;
    // Two invocations at once for every message, then the whole event again later.
    let sent = m.receive(messages(), bob, 2, INBOUND).await;
    for s in &sent {
        let again = invoke_as_lambda(&m.rig, m.t0, s, INBOUND).await;
        assert!(again.is_ok(), "{again:?}");
    }
    m.drain(5, 1).await;
    m.tally(
        "duplicate SES events (2 at once + 1 later)",
        &sent,
        none_refused,
    )
    .await;
}

#[tokio::test]
async fn queue_runs_overlapping() {
    let m = Matrix::plain(None).await;
    m.server.set_mode("tempfail");
    let sent = m.receive(messages(), bob, 1, INBOUND).await;
    m.server.set_mode("accept");
    // Four runs of the queue at once, every minute (a run outlasting its minute, EventBridge
    // invoking twice).
    m.drain(30, 4).await;
    m.tally("queue runs overlapping (4 at once)", &sent, none_refused)
        .await;
}

/// Messages for the hanging server: each one's first delivery takes the invocation's seconds.
const HANGING: usize = 48;

#[tokio::test]
async fn smtp_hanging_is_given_up_within_the_invocation_and_recorded() {
    let m = Matrix::plain(None).await;
    // Two routes of 3 s steps (6 s) but only 5 s left in the invocation: the second route's
    // exchange is cut by the deadline. The "function" ends at 8 s: a handler still running
    // then fails the invocation (Lambda's kill), which must not happen.
    m.configure(2, 3, RouteTls::Opportunistic).await;
    m.server.set_mode("hang");
    let short = Limits {
        deadline: Duration::from_secs(5),
        killed_at: Duration::from_secs(8),
    };
    let sent = m.receive(HANGING, bob, 1, short).await;
    // Every failure was recorded for the inbound check (D2) before giving up.
    let w = m
        .rig
        .store()
        .window_state("acme", Window::containing(t(T0)))
        .await
        .expect("window");
    assert_eq!(w.inbound.failures, HANGING as u64, "{:?}", w.inbound);
    assert_eq!(m.rig.figures("acme").await.count, HANGING as u64);
    m.server.set_mode("accept");
    m.drain(30, 1).await;
    m.tally("SMTP hanging (every step)", &sent, none_refused)
        .await;
}

#[tokio::test]
async fn a_hanging_server_costs_other_organisations_nothing_in_the_queue_run() {
    let m = Matrix::plain(None).await;
    let healthy = MailServer::start(MailServerOptions::default()).await;
    let other = m.rig.org("other", &[healthy.port]).await;
    let mut c = other.clone();
    c.delivery.timeout_secs = 2;
    m.rig.put_config(&c).await;
    m.configure(2, 3, RouteTls::Opportunistic).await;
    // Both servers refuse while the mail arrives; then acme's hangs and other's is back.
    m.server.set_mode("tempfail");
    healthy.set_mode("tempfail");
    let acme = m.receive(8, bob, 1, INBOUND).await;
    let theirs = m
        .receive(8, |_| vec!["carol@other.test".to_string()], 1, INBOUND)
        .await;
    m.server.set_mode("hang");
    healthy.set_mode("accept");
    // One queue run, as the schedule makes it, with 10 s left.
    let at = t(T0) + chrono::Duration::minutes(1);
    m.rig.clock.set(at);
    let deadline = Deadline::within(
        tokio::time::Instant::now().into_std(),
        Duration::from_secs(10),
    );
    let run = tokio::time::timeout(
        Duration::from_secs(25),
        inbound::handle_queue(
            &m.rig.deps,
            inbound::ScheduledEvent { time: Some(at) },
            deadline,
        ),
    )
    .await
    .expect("the run ends before the function's timeout")
    .expect("queue run");
    assert_eq!(
        run.delivered,
        theirs.len(),
        "the other organisation's mail went: {run:?}"
    );
    assert_eq!(m.rig.figures("other").await.count, 0);
    assert_eq!(
        m.rig.figures("acme").await.count,
        acme.len() as u64,
        "acme's stays queued"
    );
    let got = healthy.messages();
    for s in &theirs {
        assert_eq!(got.iter().filter(|c| c.contains(&s.token)).count(), 1);
    }
    // acme's server comes back: its mail follows, once.
    m.server.set_mode("accept");
    m.drain(40, 1).await;
    m.tally(
        "SMTP hanging beside a healthy organisation",
        &acme,
        none_refused,
    )
    .await;
}

/// Messages whose every invocation fails (each takes the SDK's retries: seconds).
const DEAD_LETTERS: usize = 16;

/// The on-failure record Lambda writes to the dead-letter queue after the last retry, in
/// the shape of AWS's documentation (asynchronous invocation destinations).
fn failure_record(event: &inbound::SesEvent, error: &str) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-23T10:00:05.000Z",
        "requestContext": {
            "requestId": unique("req"),
            "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:continuity-inbound:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Retryable.StoreUnavailable", "errorMessage": error}
    })
}

/// The SQS event the redrive's event source mapping hands the function for `bodies`.
fn sqs_batch(bodies: &[(String, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| sqs_record(id, &format!("handle-{id}"), body))
        .collect();
    json!({ "Records": records })
}

/// One record of an SQS event, as the event source mapping writes it.
fn sqs_record(id: &str, receipt_handle: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795903205000"},
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:continuity-InboundDeadLetterQueue",
        "awsRegion": "eu-west-1"
    })
}

/// The inbound dead-letter queue in moto's SQS, as the template makes it (messages kept 14
/// days, a visibility timeout of 30 minutes).
async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client) -> String {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    sqs.create_queue()
        .queue_name(unique("inbound-dlq"))
        .attributes(A::MessageRetentionPeriod, "1209600")
        .attributes(A::VisibilityTimeout, "1800")
        .send()
        .await
        .expect("create the dead-letter queue")
        .queue_url
        .expect("queue url")
}

/// The messages of `queue` visible and in flight.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue: &str) -> (usize, usize) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    let n = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX)
    };
    (
        n(A::ApproximateNumberOfMessages),
        n(A::ApproximateNumberOfMessagesNotVisible),
    )
}

/// The redrive (the template's `DeadLetterRedrive` event source mapping, batches of ten with
/// partial batch responses) over the real queue: receives a batch, hands it to the function
/// as Lambda does, deletes what succeeded; what failed stays, invisible for the visibility
/// timeout. Until the queue shows nothing more. The SQS events it handed over.
async fn redrive(m: &Matrix, sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<Value> {
    let mut handed = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive from the dead-letter queue")
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return handed;
        }
        let records: Vec<Value> = got
            .iter()
            .map(|g| {
                sqs_record(
                    g.message_id().unwrap_or_default(),
                    g.receipt_handle().unwrap_or_default(),
                    g.body().unwrap_or_default(),
                )
            })
            .collect();
        let event = json!({ "Records": records });
        let failed: Vec<String> = match inbound::handle_event(
            &m.rig.deps,
            event.clone(),
            inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
        )
        .await
        {
            Ok(answer) => answer["batchItemFailures"]
                .as_array()
                .expect("partial batch response")
                .iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(String::from))
                .collect(),
            // The whole batch failed: all of it stays.
            Err(_) => got
                .iter()
                .filter_map(|g| g.message_id().map(String::from))
                .collect(),
        };
        for g in &got {
            if !failed.iter().any(|f| Some(f.as_str()) == g.message_id()) {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(g.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete a replayed record");
            }
        }
        handed.push(event);
    }
}

#[tokio::test]
async fn events_that_failed_every_retry_are_replayed_from_the_dead_letter_queue() {
    let m = Matrix::plain(Some(Faulted::DynamoDb)).await;
    let proxy = m.proxy.as_ref().expect("proxy");
    let sqs = aws_sdk_sqs::Client::new(&integration_tests::sdk().await);
    let dlq = dead_letter_queue(&sqs).await;
    // DynamoDB unavailable for the whole of Lambda's three tries of each event.
    proxy.set(json!({"unavailable": 1.0}));
    let sent: Vec<Sent> = (0..DEAD_LETTERS)
        .map(|_| Sent {
            token: unique("dlq").replace('-', ""),
            id: unique("ses").replace('-', ""),
            rcpts: bob(0),
        })
        .collect();
    let dead: Vec<String> = stream::iter(&sent)
        .map(|s| async {
            m.ses_writes
                .put(
                    &format!("{}{}", m.rig.deps.prefix, s.id),
                    message(&s.token, &s.rcpts[0]),
                )
                .await
                .expect("SES's write");
            let err = invoke_as_lambda(&m.rig, m.t0, s, INBOUND)
                .await
                .expect_err("every try fails while DynamoDB is down");
            let event = inbound::SesEvent::single(
                &s.id,
                t(T0),
                SENDER,
                s.rcpts.clone(),
                Verdicts::ALL_PASS,
            );
            failure_record(&event, &err).to_string()
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    assert!(
        proxy.injected() >= DEAD_LETTERS as u64 * 3,
        "{}",
        proxy.stats()
    );
    assert_eq!(
        m.server.messages().len(),
        0,
        "nothing delivered during the outage"
    );
    proxy.clear();
    // Lambda's on-failure destination writes each record into the queue; one message there
    // is not an on-failure record at all.
    for (i, body) in dead.iter().enumerate() {
        if i == 3 {
            sqs.send_message()
                .queue_url(&dlq)
                .message_body("{\"hello\": 1}")
                .send()
                .await
                .expect("send the stray message");
        }
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(body)
            .send()
            .await
            .expect("the on-failure destination's write");
    }
    assert_eq!(queue_depth(&sqs, &dlq).await, (DEAD_LETTERS + 1, 0));

    // The operator turns the redrive on (README "Replaying failed inbound mail").
    let handed = redrive(&m, &sqs, &dlq).await;
    assert_eq!(
        queue_depth(&sqs, &dlq).await,
        (0, 1),
        "only the unreadable message stays in the queue (in flight until its visibility ends)"
    );
    // SQS hands a batch over again (at least once): nothing is delivered twice.
    inbound::handle_event(
        &m.rig.deps,
        handed[0].clone(),
        inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
    )
    .await
    .expect("the repeated batch");
    *m.dead_lettered.lock().expect("count") = DEAD_LETTERS;
    m.drain(30, 1).await;
    m.tally(
        "every retry failed: replayed from the dead-letter queue (SQS)",
        &sent,
        none_refused,
    )
    .await;
}

/// The write requests of DynamoDB: the durable steps a process can be killed at.
const WRITES: [&str; 5] = [
    "TransactWriteItems",
    "BatchWriteItem",
    "UpdateItem",
    "PutItem",
    "DeleteItem",
];

/// The inbound function's own binary, run as Lambda runs it, against the fault proxy.
async fn inbound_process(m: &Matrix, proxy: &FaultProxy) -> LambdaProcess {
    function_process(m, proxy, "inbound").await
}

/// One of the mail path's binaries (`inbound`, `queue`), run as Lambda runs it, its DynamoDB
/// requests through the fault proxy.
async fn function_process(m: &Matrix, proxy: &FaultProxy, binary: &str) -> LambdaProcess {
    let settings_env = vec![
        ("TABLE_NAME", m.rig.store().table().to_string()),
        ("MAIL_BUCKET", m.rig.deps.raw.bucket().to_string()),
        ("MAIL_PREFIX", m.rig.deps.prefix.clone()),
        ("BOUNCE_SENDER", BOUNCE_SENDER.to_string()),
        (
            "SMTP_HELO_NAME",
            integration_tests::SERVICE_HOST.to_string(),
        ),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.url()),
        ("RUST_LOG", "warn".to_string()),
    ];
    LambdaProcess::start(binary, &settings_env).await
}

/// Sends one message's event to a fresh inbound process and waits for its answer.
async fn run_once(m: &Matrix, proxy: &FaultProxy, s: &Sent) -> Option<Answer> {
    let p = inbound_process(m, proxy).await;
    let event = inbound::SesEvent::single(&s.id, m.t0, SENDER, s.rcpts.clone(), Verdicts::ALL_PASS);
    let id = p.invoke(
        serde_json::to_value(&event).expect("event"),
        inbound::INBOUND_TIMEOUT,
    );
    p.answer(&id, Duration::from_secs(60)).await
}

/// The write requests the proxy saw since it had seen `before` requests, each with how many
/// of its kind came before it: the durable steps of what ran in between.
fn write_steps(proxy: &FaultProxy, before: usize) -> (Vec<(String, usize)>, Vec<String>) {
    let sequence: Vec<String> = proxy.stats()["sequence"]
        .as_array()
        .expect("sequence")
        .iter()
        .skip(before)
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let mut nth: HashMap<String, usize> = HashMap::new();
    let steps = sequence
        .iter()
        .filter(|op| WRITES.contains(&op.as_str()))
        .map(|op| {
            let n = nth.entry(op.clone()).or_default();
            *n += 1;
            (op.clone(), *n - 1)
        })
        .collect();
    (steps, sequence)
}

/// The requests the proxy has seen so far.
fn requests_seen(proxy: &FaultProxy) -> usize {
    proxy.stats()["sequence"].as_array().map_or(0, Vec::len)
}

/// Has the proxy hold the `after`-th next `op` request (`hang`: `hang_before` holds it before
/// it reaches DynamoDB, `hang_after` holds DynamoDB's answer), waits until `p` is stuck there
/// and ends it (SIGKILL), as Lambda ends a container in the middle of an invocation; asserts
/// the invocation `id` got no answer. The proxy is cleared afterwards.
async fn kill_at(
    proxy: &FaultProxy,
    (op, after, hang): (&str, usize, &str),
    start: impl std::future::Future<Output = (LambdaProcess, String)>,
) {
    let held_before = proxy.stats()["held"].as_array().map_or(0, Vec::len);
    proxy.set_control(json!({
        "operations": [op], "after": after, "limit": 1, "faults": {hang: 1.0}
    }));
    let (mut p, id) = start.await;
    let mut at_step = false;
    for _ in 0..600 {
        if proxy.stats()["held"].as_array().map_or(0, Vec::len) > held_before {
            at_step = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(at_step, "the process reached {op} #{after} ({hang})");
    p.kill().await;
    assert_eq!(
        p.answer(&id, Duration::ZERO).await,
        None,
        "killed before it answered"
    );
    proxy.clear();
}

#[tokio::test]
async fn the_inbound_process_killed_at_each_durable_step_loses_nothing() {
    // Real time: the process's clock is the system's.
    let m = Matrix::plain_at(Some(Faulted::DynamoDb), chrono::Utc::now()).await;
    let proxy = m.proxy.as_ref().expect("proxy");
    let fresh = |n: usize| -> Vec<Sent> {
        (0..n)
            .map(|_| Sent {
                token: unique("kill").replace('-', ""),
                id: unique("ses").replace('-', ""),
                rcpts: bob(0),
            })
            .collect()
    };
    let writes = &m.ses_writes;
    let store_raw = |s: &Sent| {
        let key = format!("{}{}", m.rig.deps.prefix, s.id);
        let raw = message(&s.token, &s.rcpts[0]);
        async move { writes.put(&key, raw).await.expect("SES's write") }
    };
    // A clean run first: its write requests, in order, are the durable steps.
    let clean = fresh(1);
    store_raw(&clean[0]).await;
    let before = requests_seen(proxy);
    let answer = run_once(&m, proxy, &clean[0]).await;
    assert!(matches!(answer, Some(Answer::Response(_))), "{answer:?}");
    let (steps, sequence) = write_steps(proxy, before);
    assert!(
        steps.len() >= 4,
        "queue, file, mark filed, record, dequeue: {sequence:?}"
    );

    let mut sent = clean;
    let mut killed = Vec::new();
    for (op, after) in &steps {
        for hang in ["hang_before", "hang_after"] {
            let s = fresh(1).remove(0);
            store_raw(&s).await;
            kill_at(proxy, (op, *after, hang), async {
                let p = inbound_process(&m, proxy).await;
                let event = inbound::SesEvent::single(
                    &s.id,
                    m.t0,
                    SENDER,
                    s.rcpts.clone(),
                    Verdicts::ALL_PASS,
                );
                let id = p.invoke(
                    serde_json::to_value(&event).expect("event"),
                    inbound::INBOUND_TIMEOUT,
                );
                (p, id)
            })
            .await;
            // Lambda invokes the event again, in another container.
            let again = run_once(&m, proxy, &s).await;
            assert!(
                matches!(again, Some(Answer::Response(_))),
                "the retry after a kill at {op} #{after} ({hang}): {again:?}"
            );
            killed.push(format!("{op}#{after}/{hang}"));
            sent.push(s);
        }
    }
    m.drain(40, 1).await;
    tally_kills(
        &m,
        "inbound process killed at each durable step (before and after the write)",
        &sent,
        &killed,
    )
    .await;
    assert_eq!(sent.len(), 1 + 2 * steps.len());
}

/// The row of a kill test: one duplicate allowed for each kill (one after the server's 250
/// delivers again), none lost.
async fn tally_kills(m: &Matrix, fault: &'static str, sent: &[Sent], killed: &[String]) {
    m.tally_allowing(fault, sent, none_refused, killed.len())
        .await;
    println!("killed at: {}", killed.join(", "));
}

impl Matrix {
    /// Pauses or resumes `acme`'s deliveries (Q4).
    async fn pause(&self, paused: bool) {
        use shared::ports::store::ConfigStore;
        let mut c = self
            .rig
            .store()
            .get_config("acme")
            .await
            .expect("config")
            .expect("acme's configuration");
        c.queue.paused = paused;
        self.rig.put_config(&c).await;
    }

    /// One fresh message received 15 minutes before `at` (past its first retry's wait) while
    /// `acme`'s deliveries are paused (queued without an attempt), then deliveries resumed:
    /// the queue's run at `at` has it to deliver.
    async fn queue_one(&self, at: chrono::DateTime<chrono::Utc>) -> Sent {
        self.rig.clock.set(at - chrono::Duration::minutes(15));
        self.pause(true).await;
        let s = self.receive(1, bob, 1, INBOUND).await.remove(0);
        self.pause(false).await;
        assert_eq!(self.rig.figures("acme").await.count, 1, "queued, not sent");
        s
    }
}

/// The scheduled event EventBridge hands the `queue` function, for the run at `at`.
fn scheduled(at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "version": "0",
        "id": unique("evt"),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/continuity-queue"],
        "detail": {}
    })
}

/// Starts a fresh `queue` process and hands it the run at `at`.
async fn start_queue_run(
    m: &Matrix,
    proxy: &FaultProxy,
    at: chrono::DateTime<chrono::Utc>,
) -> (LambdaProcess, String) {
    let p = function_process(m, proxy, "queue").await;
    let id = p.invoke(scheduled(at), inbound::QUEUE_TIMEOUT);
    (p, id)
}

/// One queue run at `at` in a fresh `queue` process, and its answer.
async fn queue_run(
    m: &Matrix,
    proxy: &FaultProxy,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<Answer> {
    let (p, id) = start_queue_run(m, proxy, at).await;
    p.answer(&id, Duration::from_secs(60)).await
}

#[tokio::test]
async fn the_queue_process_killed_at_each_durable_step_loses_nothing() {
    let m = Matrix::plain_at(Some(Faulted::DynamoDb), chrono::Utc::now()).await;
    let proxy = m.proxy.as_ref().expect("proxy");
    // The runs are 20 minutes apart (each at its scheduled event's time): the leases a killed
    // run held, the organisation's and the message's (five minutes each), are over by the next.
    let run_at = |k: i64| m.t0 + chrono::Duration::minutes(20 * (k + 1));
    let delivered = |a: &Option<Answer>| match a {
        Some(Answer::Response(r)) => r["delivered"].as_u64(),
        _ => None,
    };
    // A clean run first: its write requests, in order, are the durable steps.
    let clean = m.queue_one(run_at(0)).await;
    let before = requests_seen(proxy);
    let answer = queue_run(&m, proxy, run_at(0)).await;
    assert_eq!(delivered(&answer), Some(1), "{answer:?}");
    let (steps, sequence) = write_steps(proxy, before);
    assert!(
        steps.len() >= 3,
        "claim the organisation, record the delivery, dequeue, settle: {sequence:?}"
    );

    let mut sent = vec![clean];
    let mut killed = Vec::new();
    let mut k = 0;
    for (op, after) in &steps {
        for hang in ["hang_before", "hang_after"] {
            k += 1;
            let s = m.queue_one(run_at(k)).await;
            kill_at(
                proxy,
                (op, *after, hang),
                start_queue_run(&m, proxy, run_at(k)),
            )
            .await;
            // The schedule's next run, in another container: what the killed run left is
            // delivered, or was already (a kill after the server's 250 delivers twice).
            k += 1;
            let again = queue_run(&m, proxy, run_at(k)).await;
            assert!(
                matches!(again, Some(Answer::Response(_))),
                "the run after a kill at {op} #{after} ({hang}): {again:?}"
            );
            assert_eq!(
                m.rig.figures("acme").await.count,
                0,
                "nothing left queued after a kill at {op} #{after} ({hang}) and the next run"
            );
            killed.push(format!("{op}#{after}/{hang}"));
            sent.push(s);
        }
    }
    tally_kills(
        &m,
        "queue process killed at each durable step (before and after the write)",
        &sent,
        &killed,
    )
    .await;
    assert_eq!(sent.len(), 1 + 2 * steps.len());
}
