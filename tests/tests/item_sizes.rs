//! Items written from what the Internet sends, capped in bytes (issue 13), through the real
//! inbound handler (DynamoDB Local, moto's S3, an SMTP server) and the real API: crafted
//! messages (a 300 KB subject of multi-byte characters, 20,000 addresses in `To`, thousands of
//! attachment names, a huge display name and Message-ID) are delivered byte for byte, filed,
//! listed and opened with everything they said; every item of the organisation's partition is
//! measured as DynamoDB counts it and stays within the budget. A message to 1,500 recipients of
//! 300 bytes is queued in parts of at most 100 (each its own SMTP transaction) in one
//! transaction, delivered, retried and quarantined without a write too large.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::inbox_support::{addr, InboxRig, DOMAIN, ORG};
use integration_tests::*;
use shared::app::inbound::OrgResult;
use shared::domain::item_budget::{overflow_key, MAX_FILED_ITEM_BYTES};
use shared::ports::blob::{DownloadAs, ObjectInfo, PresignedUpload, RawMessages, UploadAs};
use shared::ports::error::BlobError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The real S3 adapter, counting the GetObject requests the API makes.
struct CountingRaw {
    inner: Arc<dyn RawMessages>,
    gets: Arc<AtomicUsize>,
}

#[async_trait]
impl RawMessages for CountingRaw {
    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, raw: Vec<u8>) -> Result<(), BlobError> {
        self.inner.put(key, raw).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), BlobError> {
        self.inner.copy(from, to).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        self.inner.exists(key).await
    }
    async fn presign_get(&self, key: &str, how: &DownloadAs<'_>) -> Result<String, BlobError> {
        self.inner.presign_get(key, how).await
    }
    async fn presign_put(
        &self,
        key: &str,
        how: &UploadAs<'_>,
    ) -> Result<PresignedUpload, BlobError> {
        self.inner.presign_put(key, how).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        self.inner.head(key).await
    }
    async fn origin(&self) -> Result<String, BlobError> {
        self.inner.origin().await
    }
    async fn list(&self, prefix: &str, max: i32) -> Result<Vec<ObjectInfo>, BlobError> {
        self.inner.list(prefix, max).await
    }
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings in UTF-8 bytes,
/// numbers by their digits, lists and maps with their overheads).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|x| value_size(x) + 1).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| k.len() + value_size(x) + 1)
                .sum::<usize>()
        }
        AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
        AttributeValue::Ns(s) => s.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        other => panic!("unexpected attribute {other:?}"),
    }
}

fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Every item of the organisation's partition, every page (consistent).
async fn whole_partition(rig: &InboxRig) -> Vec<HashMap<String, AttributeValue>> {
    partition_of(rig.api.store()).await
}

/// Every item of the organisation's partition in `store`, every page (consistent).
async fn partition_of(
    store: &shared::adapters::dynamodb::DynamoStore,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ORG#{ORG}")))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query");
        out.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

/// A header folded over lines of at most ~900 bytes (servers refuse lines over 1,000).
fn folded(name: &str, parts: &[String], sep: &str) -> String {
    let mut out = format!("{name}:");
    let mut line = out.len();
    for (i, p) in parts.iter().enumerate() {
        let piece = if i + 1 < parts.len() {
            format!("{p}{sep}")
        } else {
            p.clone()
        };
        if line + piece.len() + 1 > 900 {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(&piece);
        line += piece.len() + 1;
    }
    out.push_str("\r\n");
    out
}

/// A crafted message: the subject ~320 KB of 2-, 3- and 4-byte characters ending in a marker,
/// a 6 KB display name, a 900-byte Message-ID, 20,000 addresses in `To` (bob among them), a
/// few in `Cc`, and 3,000 attachments with long multi-byte names.
fn crafted(bob: &str) -> (Vec<u8>, String, Vec<String>, Vec<String>) {
    let words: Vec<String> = (0..17_000).map(|i| format!("Grüße€😀{i:05}")).collect();
    let mut subject_parts = words.clone();
    subject_parts.push("ENDOFSUBJECT".into());
    let mut to: Vec<String> = (0..19_999)
        .map(|i| format!("u{i:05}@big.example"))
        .collect();
    to.push(bob.to_string());
    let cc: Vec<String> = (0..5).map(|i| format!("cc{i}@{DOMAIN}")).collect();
    let names: Vec<String> = (0..3_000)
        .map(|i| format!("Prüfbericht-€-{}-{i:04}.pdf", "ü".repeat(40)))
        .collect();
    let mut raw = String::new();
    // A 6 KB display name, folded inside its quotes.
    let mut from = vec!["Zoë".to_string(); 1_500];
    from[0] = "\"Zoë".into();
    from[1_499] = "Zoë\"".into();
    from.push("<alice@example.org>".into());
    raw.push_str(&folded("From", &from, ""));
    raw.push_str(&folded("To", &to, ","));
    raw.push_str(&folded("Cc", &cc, ","));
    raw.push_str(&folded("Subject", &subject_parts, ""));
    raw.push_str(&format!(
        "Message-ID: <{}@example.org>\r\n",
        "m".repeat(900)
    ));
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    raw.push_str("--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n");
    for n in &names {
        raw.push_str(&format!(
            "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''{}\r\n\r\nx\r\n",
            urlencoding(n)
        ));
    }
    raw.push_str("--b--\r\n");
    (raw.into_bytes(), "ENDOFSUBJECT".into(), to, names)
}

/// RFC 2231 percent-encoding of a UTF-8 file name.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The API (its S3 GetObjects counted) and the real inbound handler on the same table and
/// bucket, the organisation delivering to a real SMTP server.
async fn rigs() -> (InboxRig, MailRig, MailServer, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    let rig = InboxRig::start_with(t("2026-11-23T10:00:00Z"), move |s| {
        s.raw = Arc::new(CountingRaw {
            inner: s.raw.clone(),
            gets: counted,
        })
    })
    .await;
    let server = plain_server().await;
    let bucket = rig.api.state.settings.mail_bucket.clone();
    let sdk = sdk().await;
    let mail = MailRig::start_with(rig.now(), rig.api.store().clone(), |d| {
        d.raw = shared::adapters::s3::S3RawMessages::from_sdk(&sdk, &bucket);
    })
    .await;
    // `org` gives the organisation the domain `{id}.test`: the inbox rig's acme.test.
    mail.org(ORG, &[server.port]).await;
    (rig, mail, server, gets)
}

#[tokio::test]
async fn a_crafted_message_is_delivered_filed_listed_and_opened_whole_with_every_item_in_budget() {
    let (rig, mail, server, gets) = rigs().await;

    let bob = addr("bob");
    let carol = addr("carol");
    let (raw, marker, to, names) = crafted(&bob);
    assert!(raw.len() > 600_000, "{} bytes", raw.len());
    let (ses_id, report) = mail
        .receive("alice@example.org", &[bob.as_str(), carol.as_str()], &raw)
        .await;

    // Delivered byte for byte, once, and filed for both mailboxes.
    assert_eq!(
        report.organisations[ORG],
        OrgResult::Done {
            delivered: 2,
            bounced: 0
        },
        "{report:?}"
    );
    assert_eq!(report.filed, 2);
    let delivered = std::fs::read_dir(server.dir.path().join("maildir/new"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(delivered.len(), 1);
    // The body as it came, as in malformed.rs (the server's Maildir holds the bytes received;
    // its writer may re-fold the headers it prepends to).
    let body = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()..];
    assert!(
        delivered[0].windows(body.len()).any(|w| w == body),
        "the message as it came"
    );

    // The whole summary is in the bucket, where the items say.
    let full_key = overflow_key(&format!("{}{ses_id}", mail.deps.prefix));
    let items = whole_partition(&rig).await;
    let filings: Vec<_> = items
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("MBX#"))
        .collect();
    assert_eq!(filings.len(), 2);
    for f in &filings {
        assert_eq!(f["summary_key"].as_s().unwrap(), &full_key);
        assert_eq!(f["to_count"].as_n().unwrap(), "20000");
    }

    // Every item of the partition within the budget, measured as DynamoDB counts.
    let mut largest = (0, String::new());
    for i in &items {
        let size = item_size(i);
        assert!(
            size <= MAX_FILED_ITEM_BYTES,
            "{} is {size} bytes",
            i["sk"].as_s().unwrap()
        );
        if size > largest.0 {
            largest = (size, i["sk"].as_s().unwrap().clone());
        }
    }
    println!("largest item: {} bytes ({})", largest.0, largest.1);

    // Listed (the list's one Query), with the subject's start.
    let tok = rig.token("bob", false);
    let (st, list) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    assert_eq!(st, 200, "{list}");
    let listed = &list["messages"][0];
    assert!(listed["subject"]
        .as_str()
        .unwrap()
        .starts_with("Grüße€😀00000"));
    let id = listed["id"].as_str().unwrap().to_string();

    // Opened: the whole subject, every recipient and attachment name, from the bucket (one
    // GetObject more than a message that fits: the raw and the summary).
    let before = gets.load(Ordering::SeqCst);
    let (st, opened) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages/{id}"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        gets.load(Ordering::SeqCst) - before,
        2,
        "raw + whole summary"
    );
    let subject = opened["subject"].as_str().unwrap();
    assert!(subject.len() > 300_000, "{} bytes", subject.len());
    assert!(subject.ends_with(&marker));
    assert!(subject.contains("Grüße€😀16999"));
    let opened_to: Vec<&str> = opened["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(opened_to, to);
    assert_eq!(opened["cc"].as_array().unwrap().len(), 5);
    let opened_names: Vec<&str> = opened["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(opened_names, names);
    let name = opened["from_name"].as_str().unwrap();
    assert!(
        name.len() > 5_000 && name.starts_with("Zoë Zoë"),
        "{}",
        name.len()
    );

    // The page shows it too (escaped text), and marks it read without losing it.
    let (st, page) = rig
        .get_text(&tok, &format!("/inbox/{bob}/messages/{id}"))
        .await;
    assert_eq!(st, 200);
    assert!(page.contains(&marker));
    assert!(page.contains("u19998@big.example"));
    let (_, again) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages/{id}"))
        .await;
    assert_eq!(again["read"], true);
    assert!(again["subject"].as_str().unwrap().ends_with(&marker));

    // A message that fits reads no summary: one GetObject (the raw), and no summary_key.
    let small = inbox_support::plain("alice@example.org", &bob, "small", "small@x", "hi");
    let (small_id, _) = mail
        .receive("alice@example.org", &[bob.as_str()], &small)
        .await;
    let small_item = whole_partition(&rig)
        .await
        .into_iter()
        .find(|i| {
            i["sk"].as_s().unwrap().starts_with("MBX#") && i["ses_id"].as_s().unwrap() == &small_id
        })
        .expect("filed");
    assert!(!small_item.contains_key("summary_key"));
    let (_, list) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    let small_ref = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["subject"] == "small")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = gets.load(Ordering::SeqCst);
    let (st, _) = rig
        .get(
            &tok,
            &format!("/api/v1/mailboxes/{bob}/messages/{small_ref}"),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(gets.load(Ordering::SeqCst) - before, 1, "the raw only");
}

#[tokio::test]
async fn a_repeated_event_writes_the_same_summary_and_a_lost_one_still_opens() {
    let (rig, mail, server, _) = rigs().await;
    let bob = addr("bob");
    let to: Vec<String> = (0..3_000).map(|i| format!("r{i:04}@big.example")).collect();
    let raw = format!(
        "From: alice@example.org\r\n{}Subject: many\r\nMessage-ID: <many@x>\r\n\r\nhi\r\n",
        folded("To", &to, ",")
    );
    let (ses_id, _) = mail
        .receive("alice@example.org", &[bob.as_str()], raw.as_bytes())
        .await;
    let key = overflow_key(&format!("{}{ses_id}", mail.deps.prefix));
    let first = rig.api.state.raw.get(&key).await.expect("whole summary");
    // The same event again (SES retries): nothing delivered twice, the same object.
    let again = mail
        .deliver_judged(
            &ses_id,
            "alice@example.org",
            &[bob.as_str()],
            shared::domain::verdicts::Verdicts::ALL_PASS,
        )
        .await;
    assert_eq!(again.organisations[ORG], OrgResult::Duplicate);
    assert_eq!(rig.api.state.raw.get(&key).await.unwrap(), first);
    assert_eq!(server.messages().len(), 1);

    // The object gone (deleted by hand, say): the message still opens with what its item has.
    rig.api.state.raw.delete(&key).await.unwrap();
    let tok = rig.token("bob", false);
    let (_, list) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages"))
        .await;
    let id = list["messages"][0]["id"].as_str().unwrap().to_string();
    let (st, opened) = rig
        .get(&tok, &format!("/api/v1/mailboxes/{bob}/messages/{id}"))
        .await;
    assert_eq!(st, 200, "{opened}");
    let n = opened["to"].as_array().unwrap().len();
    assert!((1..=100).contains(&n), "{n}");
    assert_eq!(opened["subject"], "many");
}

// ------------------------------------------------------------- envelopes of 1,500 recipients

/// `n` distinct envelope recipients of exactly 300 bytes on the organisation's domain (a local
/// part of 64, the rest subdomains of labels of at most 63).
fn long_recipients(n: usize) -> Vec<String> {
    let sub = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(33)
    );
    (0..n)
        .map(|i| {
            let a = format!("r{i:04}.{}@{sub}.{DOMAIN}", "x".repeat(58));
            assert_eq!(a.len(), 300);
            a
        })
        .collect()
}

/// An organisation on a fresh table delivering to a server that takes 100 recipients per
/// transaction at most (452 beyond), as RFC 5321 allows.
async fn parts_rig() -> (MailRig, MailServer, shared::domain::config::OrgConfig) {
    let server = MailServer::start(MailServerOptions {
        max_recipients: Some(100),
        ..Default::default()
    })
    .await;
    let mail = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let cfg = mail.org(ORG, &[server.port]).await;
    (mail, server, cfg)
}

/// The envelope recipients of each transaction the server took (its `X-Envelope-To`).
fn transactions(server: &MailServer, tok: &str) -> Vec<Vec<String>> {
    server
        .messages()
        .iter()
        .filter(|m| m.contains(tok))
        .map(|m| {
            let line = m
                .lines()
                .find_map(|l| l.strip_prefix("X-Envelope-To: "))
                .expect("envelope");
            line.split(", ").map(str::to_string).collect()
        })
        .collect()
}

/// Every recipient delivered exactly once, in transactions of at most 100.
fn delivered_once(server: &MailServer, tok: &str, rcpts: &[String], transactions_wanted: usize) {
    let got = transactions(server, tok);
    assert_eq!(got.len(), transactions_wanted, "transactions");
    assert!(got.iter().all(|t| !t.is_empty() && t.len() <= 100));
    let mut all: Vec<String> = got.into_iter().flatten().collect();
    all.sort();
    let mut want = rcpts.to_vec();
    want.sort();
    assert_eq!(all.len(), want.len(), "no recipient twice");
    assert!(all == want, "every recipient once");
}

/// The `INMSG#` items of `ses_id` and of ids derived from it (none may exist for a part).
fn inmsg_items<'a>(
    items: &'a [HashMap<String, AttributeValue>],
    ses_id: &str,
) -> Vec<&'a HashMap<String, AttributeValue>> {
    items
        .iter()
        .filter(|i| {
            i["sk"]
                .as_s()
                .unwrap()
                .starts_with(&format!("INMSG#{ses_id}"))
        })
        .collect()
}

/// A message to 1,500 recipients of 300 bytes received with `verdicts`: its recipients, its
/// subject token, its SES id and the handler's report.
async fn receive_big(
    mail: &MailRig,
    verdicts: Verdicts,
) -> (
    Vec<String>,
    String,
    String,
    shared::app::inbound::InboundReport,
) {
    let rcpts = long_recipients(1_500);
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let tok = unique("parts").replace('-', "");
    let raw = message(&tok, "undisclosed-recipients:;");
    let (ses_id, report) = mail
        .receive_judged("alice@example.org", &refs, &raw, verdicts)
        .await;
    (rcpts, tok, ses_id, report)
}

/// Every recipient delivered once in 15 transactions, nothing left queued, the message's one
/// record `delivered`, and no record for a part.
async fn all_delivered(
    mail: &MailRig,
    server: &MailServer,
    tok: &str,
    rcpts: &[String],
    ses_id: &str,
) {
    delivered_once(server, tok, rcpts, 15);
    assert_eq!(mail.figures(ORG).await.count, 0);
    assert_eq!(
        mail.store()
            .message_state(ORG, ses_id)
            .await
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
    let items = partition_of(mail.store()).await;
    assert!(items
        .iter()
        .all(|i| !i["sk"].as_s().unwrap().starts_with("QUEUE#")));
    assert_eq!(
        inmsg_items(&items, ses_id).len(),
        1,
        "no INMSG item for a part"
    );
}

#[tokio::test]
async fn a_message_to_1500_long_recipients_is_queued_in_15_parts_in_budget_and_delivered_as_15_transactions(
) {
    use shared::domain::queue::MAX_PART_ITEM_BYTES;
    let (mail, server, mut cfg) = parts_rig().await;
    // Paused first, so that the parts can be measured while queued.
    cfg.queue.paused = true;
    mail.put_config(&cfg).await;
    let (rcpts, tok, ses_id, report) = receive_big(&mail, Verdicts::ALL_PASS).await;
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    assert_eq!(report.organisations[ORG], OrgResult::Paused, "{report:?}");
    assert_eq!(mail.figures(ORG).await.count, 15, "the count counts parts");

    let items = partition_of(mail.store()).await;
    let queued: Vec<_> = items
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("QUEUE#"))
        .collect();
    assert_eq!(queued.len(), 15);
    let mut listed = Vec::new();
    for q in &queued {
        let size = item_size(q);
        assert!(size < MAX_PART_ITEM_BYTES, "{size}");
        assert!(size < 40 * 1024, "100 recipients of 300 bytes: {size}");
        let id = q["id"].as_s().unwrap();
        let n = q["recipients"].as_l().unwrap().len();
        assert_eq!(n, 100);
        listed.extend(
            q["recipients"]
                .as_l()
                .unwrap()
                .iter()
                .map(|r| r.as_s().unwrap().clone()),
        );
        if id == &ses_id {
            assert!(!q.contains_key("part_of"));
        } else {
            assert!(id.starts_with(&format!("{ses_id}.")), "{id}");
            assert_eq!(q["part_of"].as_s().unwrap(), &ses_id);
        }
    }
    listed.sort();
    let mut want = rcpts.clone();
    want.sort();
    assert!(listed == want, "every recipient in exactly one part");
    assert_eq!(inmsg_items(&items, &ses_id).len(), 1);

    // Unpaused: the queue delivers each part as its own transaction.
    cfg.queue.paused = false;
    mail.put_config(&cfg).await;
    let now = mail.clock.now();
    let (delivered, bounced) = mail
        .tick_every(
            chrono::Duration::minutes(1),
            now + chrono::Duration::minutes(3),
        )
        .await;
    assert_eq!((delivered, bounced), (15, 0));
    all_delivered(&mail, &server, &tok, &rcpts, &ses_id).await;
    // The repeated SES event changes nothing: nothing queued, nothing delivered again.
    let r = mail
        .deliver_event(&ses_id, "alice@example.org", &refs)
        .await;
    assert_eq!(r.organisations[ORG], OrgResult::Duplicate);
    assert_eq!(mail.figures(ORG).await.count, 0);
    delivered_once(&server, &tok, &rcpts, 15);
}

#[tokio::test]
async fn a_server_that_stops_taking_mail_part_of_the_way_gets_the_rest_from_the_queue_once() {
    let (mail, server, _) = parts_rig().await;
    // Five transactions, then 451 to every MAIL FROM (a rate limit).
    server.set_mode("tempfail-after-5");
    let (rcpts, tok, ses_id, report) = receive_big(&mail, Verdicts::ALL_PASS).await;
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    match &report.organisations[ORG] {
        OrgResult::Queued { remaining, reason } => {
            assert_eq!(*remaining, 1_000);
            assert!(reason.contains("451"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(transactions(&server, &tok).len(), 5);
    assert_eq!(
        mail.figures(ORG).await.count,
        10,
        "the parts not taken stay queued"
    );
    assert_eq!(
        mail.store()
            .message_state(ORG, &ses_id)
            .await
            .unwrap()
            .as_deref(),
        Some("queued")
    );

    // A repeated event meanwhile changes nothing.
    let r = mail
        .deliver_event(&ses_id, "alice@example.org", &refs)
        .await;
    assert_eq!(r.organisations[ORG], OrgResult::Duplicate);
    assert_eq!(mail.figures(ORG).await.count, 10);
    assert_eq!(transactions(&server, &tok).len(), 5);

    // Still refusing: the queue tries and keeps them; then it takes mail again.
    let now = mail.clock.now();
    mail.tick_at(now + chrono::Duration::minutes(1)).await;
    assert_eq!(mail.figures(ORG).await.count, 10);
    server.set_mode("accept");
    let (delivered, _) = mail
        .tick_every(
            chrono::Duration::minutes(1),
            now + chrono::Duration::minutes(8),
        )
        .await;
    assert_eq!(delivered, 10);
    all_delivered(&mail, &server, &tok, &rcpts, &ses_id).await;
}

#[tokio::test]
async fn a_virus_to_1500_recipients_is_quarantined_with_100_listed_and_the_count() {
    let (mail, server, _) = parts_rig().await;
    let verdicts = Verdicts {
        virus: shared::domain::verdicts::Verdict::Fail,
        ..Verdicts::ALL_PASS
    };
    let (rcpts, _, ses_id, report) = receive_big(&mail, verdicts).await;
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    assert_eq!(
        report.organisations[ORG],
        OrgResult::Quarantined,
        "{report:?}"
    );
    let items = partition_of(mail.store()).await;
    let aside: Vec<_> = items
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("ASIDE#"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(item_size(aside[0]) < 64 * 1024, "{}", item_size(aside[0]));
    let record: serde_json::Value =
        serde_json::from_str(aside[0]["record"].as_s().unwrap()).unwrap();
    assert_eq!(record["recipients"].as_array().unwrap().len(), 100);
    assert_eq!(record["recipient_count"], 1_500);
    assert_eq!(record["recipients"][0], rcpts[0].as_str());
    let audit: Vec<_> = items
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("AUDIT#"))
        .collect();
    assert_eq!(audit.len(), 1);
    assert!(item_size(audit[0]) < 64 * 1024, "{}", item_size(audit[0]));
    let audited: serde_json::Value =
        serde_json::from_str(audit[0]["record"].as_s().unwrap()).unwrap();
    assert_eq!(audited["after"]["recipient_count"], 1_500);
    // Neither queued nor delivered; the repeated event changes nothing.
    assert!(items
        .iter()
        .all(|i| !i["sk"].as_s().unwrap().starts_with("QUEUE#")));
    assert_eq!(mail.figures(ORG).await.count, 0);
    let r = mail
        .deliver_judged(&ses_id, "alice@example.org", &refs, verdicts)
        .await;
    assert_eq!(r.organisations[ORG], OrgResult::Duplicate);
    assert_eq!(partition_of(mail.store()).await.len(), items.len());
    assert!(server.messages().is_empty());
}
