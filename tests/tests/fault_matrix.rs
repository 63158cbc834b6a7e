//! Production's faults on the mail path (issue 13), reproduced: DynamoDB's throttling and
//! server errors and dropped connections, and S3's SlowDown and 500s, injected by a real HTTP
//! proxy in front of DynamoDB Local or moto (`infra/local/faultproxy.py`) with the services'
//! own error bodies, under the production
//! SDK settings (`shared::adapters::aws::sdk_config`: retries and time limits). Each test
//! receives mail as SES invokes the inbound function (at least once: a failed invocation is
//! invoked again, as Lambda retries an asynchronous event twice), drains the queue with the
//! faults still on, and checks that every message reached the organisation's server exactly
//! once, nothing is left queued, and the faults really happened.

use integration_tests::faults::FaultProxy;
use integration_tests::{message, plain_server, t, unique, MailRig};
use serde_json::{json, Value};
use shared::adapters::s3::S3RawMessages;
use shared::domain::verdicts::Verdicts;
use shared::ports::blob::RawMessages;

/// Messages per fault kind: enough for every kind to hit each step of the path.
const MESSAGES: usize = 16;

/// Lambda's asynchronous invocation: the first try and two retries.
async fn invoke_as_lambda(rig: &MailRig, id: &str, to: &str) -> Result<(), String> {
    let event = inbound::SesEvent::single(
        id,
        t("2026-11-23T10:00:00Z"),
        "alice@example.org",
        vec![to.to_string()],
        Verdicts::ALL_PASS,
    );
    let mut last = String::new();
    for _ in 0..3 {
        match inbound::handle_ses(&rig.deps, &event).await {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{e:?}"),
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

async fn nothing_lost_nor_doubled(faulted: Faulted, faults: Value) {
    let (proxy, rig) = match faulted {
        Faulted::DynamoDb => {
            let proxy = FaultProxy::dynamodb().await;
            let store = proxy.store().await;
            let rig = MailRig::start_with(t("2026-11-23T10:00:00Z"), store, |_| {}).await;
            (proxy, rig)
        }
        Faulted::S3 => {
            let proxy = FaultProxy::moto().await;
            let sdk = shared::adapters::aws::sdk_config().await;
            let store = integration_tests::fresh_store().await;
            let rig = MailRig::start_with(t("2026-11-23T10:00:00Z"), store, |deps| {
                deps.raw = proxy.s3_raw(&sdk, deps.raw.bucket());
            })
            .await;
            (proxy, rig)
        }
    };
    let server = plain_server().await;
    rig.org("acme", &[server.port]).await;
    proxy.set(faults.clone());
    let ses_writes =
        S3RawMessages::from_sdk(&integration_tests::sdk().await, rig.deps.raw.bucket());
    let mut tokens = Vec::new();
    let mut failed = Vec::new();
    for _ in 0..MESSAGES {
        let token = unique("fault");
        let id = unique("ses").replace('-', "");
        // SES stores the raw message before it invokes the function: never through the proxy.
        ses_writes
            .put(
                &format!("{}{id}", rig.deps.prefix),
                message(&token, "bob@acme.test"),
            )
            .await
            .expect("put raw");
        if let Err(e) = invoke_as_lambda(&rig, &id, "bob@acme.test").await {
            failed.push((token.clone(), e));
        }
        tokens.push(token);
    }
    // The queue drains with the faults still on; a tick that fails runs again next minute.
    let start = t("2026-11-23T10:00:00Z");
    for minute in 1..=20 {
        let at = start + chrono::Duration::minutes(minute);
        rig.clock.set(at);
        let _ = inbound::handle_queue(&rig.deps, inbound::ScheduledEvent { time: Some(at) }).await;
    }
    let injected = proxy.stats();
    proxy.clear();
    assert!(
        proxy.injected() >= 3,
        "the faults happened ({faults}): {injected}"
    );
    assert!(
        failed.is_empty(),
        "every event was taken within Lambda's three invocations: {failed:?}"
    );
    let received = server.messages();
    for token in &tokens {
        let copies = received
            .iter()
            .filter(|m| m.contains(token.as_str()))
            .count();
        assert_eq!(
            copies, 1,
            "{token} reached the server once ({faults}; {injected})"
        );
    }
    assert_eq!(received.len(), tokens.len(), "nothing else arrived");
    assert_eq!(rig.figures("acme").await.count, 0, "nothing left queued");
}

#[tokio::test]
async fn dynamodb_throttled_one_request_in_five() {
    nothing_lost_nor_doubled(
        Faulted::DynamoDb,
        json!({"throttle": 0.1, "throughput": 0.1}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_answering_server_errors() {
    nothing_lost_nor_doubled(
        Faulted::DynamoDb,
        json!({"internal": 0.1, "unavailable": 0.05}),
    )
    .await;
}

#[tokio::test]
async fn dynamodb_connections_dropped_before_the_request_arrives() {
    nothing_lost_nor_doubled(Faulted::DynamoDb, json!({"drop_before": 0.1})).await;
}

#[tokio::test]
async fn dynamodb_connections_dropped_after_the_write_was_applied() {
    nothing_lost_nor_doubled(Faulted::DynamoDb, json!({"drop_after": 0.1})).await;
}

#[tokio::test]
async fn s3_answering_slow_down_and_server_errors() {
    // The function's reads of the raw message and the queue's are faulted (SES's own write
    // happens before the function runs).
    nothing_lost_nor_doubled(
        Faulted::S3,
        json!({"throttle": 0.15, "internal": 0.15, "drop_after": 0.05}),
    )
    .await;
}
