//! Items written from what the Internet sends, capped in bytes (issue 13), through the real
//! inbound handler (DynamoDB Local, moto's S3, an SMTP server) and the real API: crafted
//! messages (a 300 KB subject of multi-byte characters, 20,000 addresses in `To`, thousands of
//! attachment names, a huge display name and Message-ID) are delivered byte for byte, filed,
//! listed and opened with everything they said; every item of the organisation's partition is
//! measured as DynamoDB counts it and stays within the budget.

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
    let store = rig.api.store();
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
