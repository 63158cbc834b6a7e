//! Malformed input (Q8): filed and delivered as it came where possible, refused with a reason
//! where not, never a panic. Includes the randomized parse-and-file test that stands in for the
//! fuzz target in CI (cargo-fuzz needs nightly; `fuzz/` holds the target for local runs).

use integration_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::app::inbound::OrgResult;

/// Raw bytes of the messages in a server's Maildir (non-UTF-8 kept).
fn raw_messages(server: &MailServer) -> Vec<Vec<u8>> {
    let dir = server.dir.path().join("maildir/new");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn broken_mime_8bit_headers_nul_bytes_and_no_message_id_are_delivered_as_they_came() {
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = plain_server().await;
    rig.org("bad", &[server.port]).await;
    let cases: Vec<(&str, Vec<u8>)> = [
        ("broken mime", "broken-boundary.eml"),
        ("8-bit headers", "8bit-headers.eml"),
        ("NUL bytes", "nul-bytes.eml"),
        ("no Message-ID", "no-message-id.eml"),
        ("no headers at all", "no-headers.eml"),
    ]
    .into_iter()
    .map(|(name, file)| (name, mail_fixture(&format!("malformed/{file}"), &[])))
    .collect();
    for (name, raw) in &cases {
        let (id, r) = rig.receive("a@example.org", &["bob@bad.test"], raw).await;
        assert!(
            matches!(r.organisations["bad"], OrgResult::Done { delivered: 1, .. }),
            "{name}: {r:?}"
        );
        let filed = rig.store().mailbox("bad", "bob@bad.test").await.unwrap();
        let item = filed
            .iter()
            .find(|i| i["ses_id"].as_s().unwrap() == &id)
            .unwrap_or_else(|| panic!("{name}: filed"));
        let mid = item["message_id"].as_s().unwrap();
        assert!(!mid.is_empty(), "{name}");
        if *name == "no Message-ID" || *name == "no headers at all" {
            assert!(mid.ends_with("@continuity.invalid"), "{name}: {mid}");
            assert_eq!(
                mid,
                &shared::domain::mail::derived_message_id(raw),
                "stable: from the content"
            );
        }
        if let Some(s) = item.get("subject") {
            assert!(!s.as_s().unwrap().contains('\0'), "{name}: no NUL filed");
        }
    }
    let got = raw_messages(&server);
    assert_eq!(got.len(), cases.len());
    for (name, raw) in &cases {
        // The body as it came (the server's Maildir holds the bytes received).
        let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
        let tail = &raw[body_start..];
        assert!(
            got.iter().any(|m| contains(m, tail)),
            "{name}: delivered byte for byte"
        );
    }
}

#[tokio::test]
async fn invalid_and_foreign_recipients_are_refused_with_a_reason_the_rest_delivered() {
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = plain_server().await;
    rig.org("mixed", &[server.port]).await;
    let (_, r) = rig
        .receive(
            "a@example.org",
            &[
                "bob@mixed.test",
                "not an address",
                "eve@elsewhere.example",
                "x@",
            ],
            &message("mixed", "bob@mixed.test"),
        )
        .await;
    assert!(matches!(
        r.organisations["mixed"],
        OrgResult::Done { delivered: 1, .. }
    ));
    let reasons: Vec<&str> = r.refused.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["not an address", "eve@elsewhere.example", "x@"]
    );
    assert!(
        r.refused[1].1.contains("no organisation"),
        "{:?}",
        r.refused
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn ten_thousand_recipients_are_filed_and_delivered_in_transactions_of_100() {
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = plain_server().await;
    rig.org("big", &[server.port]).await;
    let rcpts: Vec<String> = (0..10_000).map(|i| format!("u{i:05}@big.test")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    // Folded (RFC 5322 lines stay under 1,000 characters; servers refuse longer ones).
    let to = rcpts.join(",\r\n ");
    let (_, r) = rig
        .receive("a@example.org", &refs, &message("ten-thousand", &to))
        .await;
    assert_eq!(
        r.organisations["big"],
        OrgResult::Done {
            delivered: 10_000,
            bounced: 0
        }
    );
    assert_eq!(r.filed, 10_000);
    assert_eq!(server.messages().len(), 100);
    let one = rig.store().mailbox("big", "u09999@big.test").await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["to_count"].as_n().unwrap(), "10000");
    assert_eq!(
        one[0]["to"].as_l().unwrap().len(),
        shared::domain::item_budget::MAX_FILED_ADDRESSES
    );
    // The other 9,900 are in the whole summary the item names (issue 13).
    assert!(one[0]["summary_key"]
        .as_s()
        .unwrap()
        .starts_with(shared::domain::item_budget::OVERFLOW_PREFIX));
}

#[tokio::test]
async fn a_40_mb_message_is_stored_filed_and_delivered() {
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = MailServer::start(MailServerOptions {
        max_size: Some(50 * 1000 * 1000),
        ..Default::default()
    })
    .await;
    let mut cfg = rig.org("huge", &[server.port]).await;
    cfg.delivery.timeout_secs = 30;
    rig.put_config(&cfg).await;
    let mut raw = b"From: a@example.org\r\nSubject: huge\r\nMessage-ID: <huge@example.org>\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let line = [b'A'; 76];
    while raw.len() < 40 * 1000 * 1000 {
        raw.extend_from_slice(&line);
        raw.extend_from_slice(b"\r\n");
    }
    let size = raw.len();
    let (_, r) = rig.receive("a@example.org", &["bob@huge.test"], &raw).await;
    assert!(
        matches!(
            r.organisations["huge"],
            OrgResult::Done { delivered: 1, .. }
        ),
        "{r:?}"
    );
    assert_eq!(r.size as usize, size);
    let got = raw_messages(&server);
    assert_eq!(got.len(), 1);
    assert!(got[0].len() >= size);
    let filed = rig.store().mailbox("huge", "bob@huge.test").await.unwrap();
    assert_eq!(filed[0]["size"].as_n().unwrap(), &size.to_string());
}

/// Random and mutated messages through parse, file and deliver: every one is filed and either
/// delivered as it came or, where the server refuses it for good (for example a line over
/// 1,000 characters), bounced with the server's reason; nothing panics, nothing stays behind.
/// (The proptest in `shared::mail` covers the parser alone with far more cases.)
#[tokio::test]
async fn random_and_mutated_messages_are_filed_and_delivered() {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let rig = MailRig::start(t("2026-11-23T10:00:00Z")).await;
    let server = plain_server().await;
    rig.org("fuzz", &[server.port]).await;
    let base = mail_fixture("mutation-base.eml", &[]);
    let n = 60;
    let mut delivered = 0;
    for i in 0..n {
        let raw: Vec<u8> = if i % 3 == 0 {
            (0..rng.random_range(0..2000))
                .map(|_| rng.random())
                .collect()
        } else {
            let mut m = base.clone();
            for _ in 0..rng.random_range(1..20) {
                let p = rng.random_range(0..m.len());
                match rng.random_range(0..3) {
                    0 => m[p] = rng.random(),
                    1 => {
                        m.remove(p);
                    }
                    _ => m.insert(p, rng.random()),
                }
            }
            m
        };
        let (_, r) = rig.receive("a@example.org", &["bob@fuzz.test"], &raw).await;
        match &r.organisations["fuzz"] {
            OrgResult::Done { delivered: 1, .. } => delivered += 1,
            OrgResult::Done { bounced: 1, .. } => {}
            other => panic!("message {i} (seed {seed}): {other:?}"),
        }
    }
    assert_eq!(raw_messages(&server).len(), delivered);
    assert!(
        delivered >= n / 2,
        "mutated real messages are delivered: {delivered} of {n}"
    );
    assert_eq!(rig.figures("fuzz").await.count, 0);
    assert_eq!(
        rig.store()
            .mailbox("fuzz", "bob@fuzz.test")
            .await
            .unwrap()
            .len(),
        n
    );
}
