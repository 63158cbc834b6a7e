//! Compose sends once (issue 13): the send route against moto's SES v2 and DynamoDB Local, each
//! behind the fault-injecting proxy (`infra/local/faultproxy.py`), with the production adapters
//! (SES v2 without the SDK's retries, DynamoDB with them). Every test counts what moto sent for
//! its message: exactly one per idempotency key (or none when the request never reached it),
//! across duplicate and concurrent retries and at every failure point.
//!
//! - SES gives no definite answer (connection dropped after the request went out, no answer
//!   until the timeout, a 500, a connection closed before forwarding): 202, unconfirmed, filed in
//!   Sent Items marked so, and a retry answers the same without sending.
//! - SES refuses for certain (MessageRejected, throttled): 502, the claim released, nothing
//!   filed; a retry sends once.
//! - DynamoDB fails after SES accepted (recording the outcome, filing, completing): a retry
//!   finishes what is missing and never sends again.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use integration_tests::faults::FaultProxy;
use integration_tests::inbox_support::{addr, sent_with, InboxRig, ORG};
use integration_tests::{sdk, unique};
use serde_json::{json, Value};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sesv2::SesV2MailSender;
use shared::domain::mailbox::Folder;
use shared::ports::store::MailboxStore;
use std::sync::Arc;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The inbox's API with SES v2 and the mailbox store behind a proxy each.
struct Rig {
    inbox: InboxRig,
    ses: FaultProxy,
    ddb: FaultProxy,
}

impl Rig {
    async fn start() -> Rig {
        let ses = FaultProxy::moto().await;
        let ddb = FaultProxy::dynamodb().await;
        let sdk = sdk().await;
        // The production sender (no SDK retries), with a short attempt limit so that "no
        // answer" costs the test 2 seconds, not 15.
        let sender = SesV2MailSender::from_conf(
            aws_sdk_sesv2::config::Builder::from(&sdk)
                .endpoint_url(ses.url())
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(std::time::Duration::from_secs(3))
                        .operation_attempt_timeout(std::time::Duration::from_secs(2))
                        .operation_timeout(std::time::Duration::from_secs(3))
                        .build(),
                ),
        );
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(ddb.url())
                .build(),
        );
        let inbox = InboxRig::start_with(t("2026-11-30T10:00:00Z"), move |s| {
            s.mail_sender = Arc::new(sender);
            s.mailboxes = Arc::new(DynamoStore::new(client, s.settings.table.clone()));
        })
        .await;
        Rig { inbox, ses, ddb }
    }

    fn path() -> String {
        format!("/api/v1/mailboxes/{}/send", addr("bob"))
    }

    async fn send(&self, key: &str, token: &str) -> (u16, Value) {
        let tok = self.inbox.token("bob", false);
        let body = json!({"idempotency_key": key, "to": ["x@example.org"], "subject": token, "text": "once"});
        self.inbox.post(&tok, &Self::path(), &body).await
    }

    /// `n` sends of the same key at once.
    async fn sends(&self, n: usize, key: &str, token: &str) -> Vec<(u16, Value)> {
        join_all((0..n).map(|_| self.send(key, token))).await
    }

    /// Bob's Sent Items whose subject is `token`.
    async fn sent_items(&self, token: &str) -> Vec<shared::domain::mailbox::Listed> {
        let page = self
            .inbox
            .api
            .store()
            .mailbox_page(
                ORG,
                &addr("bob"),
                Folder::Sent,
                self.inbox.now() - Duration::days(1),
                None,
                100,
            )
            .await
            .unwrap();
        page.items
            .into_iter()
            .filter(|l| l.summary.subject.as_deref() == Some(token))
            .collect()
    }

    async fn message_json(&self, id: &str) -> Value {
        let tok = self.inbox.token("bob", false);
        let path = format!("/api/v1/mailboxes/{}/messages/{id}", addr("bob"));
        let (st, m) = self.inbox.get(&tok, &path).await;
        assert_eq!(st, 200, "{m}");
        m
    }
}

#[tokio::test]
async fn an_unanswered_send_is_unconfirmed_and_never_sent_again() {
    let rig = Rig::start().await;
    // (fault, whether the request reached moto)
    for (kind, reached) in [
        ("drop_after", true),
        ("hang_after", true),
        ("internal", false),
        ("drop_before", false),
    ] {
        let token = unique(kind);
        let key = format!("k-{kind}");
        rig.ses.set_control(json!({
            "seed": 1, "operations": ["POST"], "faults": {kind: 1.0}, "limit": 1
        }));
        let (st, first) = rig.send(&key, &token).await;
        assert_eq!(st, 202, "{kind}: {first}");
        assert_eq!(first["confirmed"], false, "{kind}: {first}");
        let notice = first["notice"].as_str().unwrap_or_default();
        assert!(
            notice.contains("will not be sent again automatically"),
            "{kind}: {notice}"
        );
        let expected = usize::from(reached);
        assert_eq!(sent_with(&token).await.len(), expected, "{kind}: moto");
        rig.ses.clear();
        // Duplicate and concurrent retries once SES answers again: the same state, no send.
        for (st, again) in rig.sends(3, &key, &token).await {
            assert_eq!(st, 202, "{kind}: {again}");
            assert_eq!(again["id"], first["id"], "{kind}");
            assert_eq!(again["repeated"], true, "{kind}");
            assert_eq!(again["confirmed"], false, "{kind}");
        }
        assert_eq!(sent_with(&token).await.len(), expected, "{kind}: moto");
        // Filed once, marked unconfirmed, readable as such.
        let items = rig.sent_items(&token).await;
        assert_eq!(items.len(), 1, "{kind}: one Sent item");
        assert!(items[0].unconfirmed, "{kind}");
        let m = rig.message_json(first["id"].as_str().unwrap()).await;
        assert_eq!(m["unconfirmed"], true, "{kind}: {m}");
        // Long after, still never taken over.
        rig.inbox.api.clock.advance(Duration::minutes(10));
        let (st, _) = rig.send(&key, &token).await;
        assert_eq!(st, 202, "{kind}");
        assert_eq!(sent_with(&token).await.len(), expected, "{kind}: moto");
    }
    // A new key sends normally: 201, confirmed, not marked.
    let token = unique("after");
    let (st, ok) = rig.send("k-after", &token).await;
    assert_eq!(st, 201, "{ok}");
    assert_eq!(ok["confirmed"], true);
    assert!(ok.get("notice").is_none(), "{ok}");
    assert_eq!(sent_with(&token).await.len(), 1);
    assert!(!rig.sent_items(&token).await[0].unconfirmed);
}

#[tokio::test]
async fn a_definite_refusal_releases_the_key_and_a_retry_sends_once() {
    let rig = Rig::start().await;
    for kind in ["reject", "throttle"] {
        let token = unique(kind);
        let key = format!("k-{kind}");
        rig.ses.set_control(json!({
            "seed": 1, "operations": ["POST"], "faults": {kind: 1.0}, "limit": 1
        }));
        let (st, refused) = rig.send(&key, &token).await;
        assert_eq!(st, 502, "{kind}: {refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("nothing was sent"),
            "{kind}: {refused}"
        );
        assert_eq!(sent_with(&token).await.len(), 0, "{kind}: moto");
        assert!(
            rig.sent_items(&token).await.is_empty(),
            "{kind}: nothing filed"
        );
        rig.ses.clear();
        let (st, sent) = rig.send(&key, &token).await;
        assert_eq!(st, 201, "{kind}: {sent}");
        let retries = rig.sends(3, &key, &token).await;
        assert!(retries.iter().all(|(st, _)| *st == 200), "{kind}");
        assert_eq!(sent_with(&token).await.len(), 1, "{kind}: moto");
        assert_eq!(rig.sent_items(&token).await.len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn dynamodb_failing_after_ses_accepted_never_sends_twice() {
    let rig = Rig::start().await;
    // (failure point, the proxy's control: six faults are the SDK's six attempts)
    let points = [
        (
            "filing in Sent Items",
            json!({"operations": ["PutItem"], "after": 1, "limit": 6, "faults": {"internal": 1.0}}),
        ),
        (
            "marking the send complete",
            json!({"operations": ["UpdateItem"], "after": 1, "limit": 6, "faults": {"throttle": 1.0}}),
        ),
        (
            "recording SES's answer",
            json!({"operations": ["UpdateItem"], "limit": 6, "faults": {"drop_before": 1.0}}),
        ),
    ];
    for (point, mut control) in points {
        let token = unique("ddb");
        let key = unique("k").replace(['.', ':'], "-");
        control["seed"] = json!(7);
        rig.ddb.set_control(control);
        let (st, failed) = rig.send(&key, &token).await;
        assert_eq!(st, 503, "{point}: {failed}");
        assert_eq!(
            failed["error"]["code"], "send_unrecorded",
            "{point}: {failed}"
        );
        assert!(
            failed["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("will not be sent again"),
            "{point}: {failed}"
        );
        assert_eq!(sent_with(&token).await.len(), 1, "{point}: moto");
        rig.ddb.clear();
        if point == "recording SES's answer" {
            // The claim still says "sending": in progress until stale, then settled as
            // unconfirmed (its answer was never recorded), never sent again.
            for (st, b) in rig.sends(2, &key, &token).await {
                assert_eq!(st, 409, "{point}: {b}");
            }
            rig.inbox.api.clock.advance(Duration::minutes(3));
            let all = rig.sends(3, &key, &token).await;
            let settled: Vec<_> = all.iter().filter(|(st, _)| *st == 202).collect();
            assert!(!settled.is_empty(), "{point}: {all:?}");
            assert!(
                all.iter().all(|(st, _)| [202, 409].contains(st)),
                "{point}: {all:?}"
            );
            let (st, again) = rig.send(&key, &token).await;
            assert_eq!(st, 202, "{point}: {again}");
            assert!(rig.sent_items(&token).await[0].unconfirmed, "{point}");
        } else {
            // Duplicate and concurrent retries finish what is missing.
            for (st, b) in rig.sends(3, &key, &token).await {
                assert_eq!(st, 200, "{point}: {b}");
                assert_eq!(b["confirmed"], true, "{point}: {b}");
            }
            assert!(!rig.sent_items(&token).await[0].unconfirmed, "{point}");
        }
        assert_eq!(sent_with(&token).await.len(), 1, "{point}: moto");
        assert_eq!(
            rig.sent_items(&token).await.len(),
            1,
            "{point}: one Sent item"
        );
    }
}
