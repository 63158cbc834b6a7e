//! The receiving SMTP stand-in (SES receiving): records probe arrivals, refuses recipients no
//! organisation owns, ignores forged probe tokens, and runs ordinary mail through S3 and the
//! inbound handler before answering 250.

use integration_tests::*;
use shared::domain::probe::ProbeToken;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;
use shared::ports::store::MonitorStore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn smtp(port: u16, lines: &[&str]) -> Vec<String> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut replies = Vec::new();
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    replies.push(line.trim_end().to_string());
    for l in lines {
        w.write_all(format!("{l}\r\n").as_bytes()).await.unwrap();
        let data_line =
            l.starts_with("Subject") || l.is_empty() || l.starts_with("X-") || l.starts_with("..");
        if *l == "." || !data_line {
            // Read one (possibly multi-line) reply.
            loop {
                line.clear();
                r.read_line(&mut line).await.unwrap();
                let done = line.as_bytes().get(3) != Some(&b'-');
                if done {
                    replies.push(line.trim_end().to_string());
                    break;
                }
            }
        }
    }
    replies
}

#[tokio::test]
async fn probes_are_recorded_and_unknown_domains_are_refused() {
    let rig = Rig::start(t("2026-11-23T10:00:30Z"), chrono::Duration::zero()).await;
    let store = rig.store().clone();
    let w = Window::containing(t("2026-11-23T10:00:30Z"));
    let token = ProbeToken::new("acme", w);
    assert!(store
        .claim_probe("acme", w, &token.nonce, w.start())
        .await
        .unwrap());
    let rcpt = token.recipient("probe@probe.continuity.test");
    let forged = ProbeToken {
        nonce: "f".repeat(32),
        ..token.clone()
    }
    .recipient("probe@probe.continuity.test");

    let replies = smtp(
        rig.receiving_port,
        &[
            "EHLO mail.acme.test",
            "MAIL FROM:<continuity-probe@acme.test>",
            "RCPT TO:<alice@acme.test>",
            &format!("RCPT TO:<{rcpt}>"),
            &format!("RCPT TO:<{forged}>"),
            "DATA",
            "Subject: probe",
            "",
            ".",
            "QUIT",
        ],
    )
    .await;
    assert!(replies[0].starts_with("220"), "{replies:?}");
    assert!(
        replies[3].starts_with("550"),
        "no organisation owns acme.test: refused as SES would: {replies:?}"
    );
    assert!(replies[4].starts_with("250"), "{replies:?}");
    assert!(replies[5].starts_with("250"), "{replies:?}");
    assert!(replies[6].starts_with("354"), "{replies:?}");
    assert!(replies[7].starts_with("250"), "{replies:?}");

    let rec = store.probe("acme", w).await.unwrap().unwrap();
    assert_eq!(rec.arrived_at, Some(t("2026-11-23T10:00:30Z")));
    assert_eq!(rec.nonce, token.nonce, "the forged token changed nothing");
}

#[tokio::test]
async fn data_without_recipients_is_refused() {
    let rig = Rig::start(t("2026-11-23T10:00:30Z"), chrono::Duration::zero()).await;
    let replies = smtp(
        rig.receiving_port,
        &[
            "HELO x",
            "MAIL FROM:<a@b.test>",
            "RCPT TO:<bob@acme.test>",
            "DATA",
            "QUIT",
        ],
    )
    .await;
    assert!(replies[3].starts_with("550"), "{replies:?}");
    assert!(replies[4].starts_with("503"), "{replies:?}");
}

#[tokio::test]
async fn ordinary_mail_goes_through_s3_and_the_inbound_handler_before_250() {
    let rig = Rig::start(t("2026-11-23T10:00:30Z"), chrono::Duration::zero()).await;
    let server = plain_server().await;
    let mut cfg = inbound_org("rcv", 3);
    cfg.routes[0].port = server.port;
    cfg.routes[0].tls = shared::domain::config::RouteTls::None;
    rig.store()
        .put_config(&cfg, t("2026-11-23T10:00:00Z"))
        .await
        .unwrap();
    let replies = smtp(
        rig.receiving_port,
        &[
            "EHLO mail.example.org",
            "MAIL FROM:<alice@example.org>",
            "RCPT TO:<bob@rcv.test>",
            "DATA",
            "Subject: through the stand-in",
            "",
            "..a dot-stuffed line",
            ".",
            "QUIT",
        ],
    )
    .await;
    assert!(replies[5].starts_with("250"), "{replies:?}");
    let id = replies[5].split_whitespace().last().unwrap().to_string();
    let msgs = server.messages();
    assert_eq!(msgs.len(), 1, "delivered to the organisation's server");
    assert!(msgs[0].contains("Subject: through the stand-in"));
    assert!(msgs[0].contains("\r\n.a dot-stuffed line"), "{:?}", msgs[0]);
    // The raw message is in S3 under the SES-style id, and filed for bob.
    let mail = rig.runner.inbound.as_ref().unwrap();
    let raw = mail.raw.get(&format!("{}{id}", mail.prefix)).await.unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("through the stand-in"));
    assert_eq!(
        rig.store()
            .mailbox("rcv", "bob@rcv.test")
            .await
            .unwrap()
            .len(),
        1
    );
}
