//! The receiving SMTP stand-in: records probe arrivals, defers everything else (never accepts
//! mail it cannot keep), and ignores forged probe tokens.

use integration_tests::*;
use shared::probe::ProbeToken;
use shared::store::MonitorStore;
use shared::window::Window;
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
        if *l == "." || !(l.starts_with("Subject") || l.is_empty() || l.starts_with("X-")) {
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
async fn probes_are_recorded_and_other_mail_is_deferred() {
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
        replies[3].starts_with("451"),
        "non-probe mail deferred, not dropped: {replies:?}"
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
    assert!(replies[3].starts_with("451"), "{replies:?}");
    assert!(replies[4].starts_with("503"), "{replies:?}");
}
