//! The mail path as AWS and the Internet really are (issue 11; Q9, Q10, P11, P8), against the
//! real local services: SES receipt events in the documented format (fixtures) through the real
//! inbound handler; the local receiving stand-in judging SPF, DKIM and DMARC against a real DNS
//! server (dnsmasq on loopback) and finding the EICAR test file; bounces only to authenticated
//! senders (moto's SES shows what was sent); domains proven through the DNS, with their SES
//! identity created in moto; the administrators' queue view.

use integration_tests::api::ApiRig;
use integration_tests::dns::DnsServer;
use integration_tests::*;
use serde_json::{json, Value};
use shared::app::inbound::OrgResult;
use shared::domain::domains::{proof_name, proof_value};
use shared::domain::mailbox::Folder;
use shared::domain::queue::AsideKind;
use shared::ports::domains::DomainClaims;
use shared::ports::store::{ConfigStore, MailboxStore, QueueViews};
use std::sync::Arc;

const T0: &str = "2026-11-23T10:00:00Z";

fn token(prefix: &str) -> String {
    unique(prefix).replace('-', "")
}

/// An SES receipt event from `tests/fixtures/` (the documented Lambda event format) for one
/// message, with its placeholders filled in.
fn ses_fixture(name: &str, id: &str, source: &str, rcpt: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let path = if path.exists() {
        path
    } else {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(
        &text
            .replace("{{MESSAGE_ID}}", id)
            .replace("{{SOURCE}}", source)
            .replace("{{RECIPIENT}}", rcpt)
            .replace("{{TIMESTAMP}}", T0),
    )
    .expect("fixture json")
}

/// Stores `raw` as SES's S3 action would, then runs the inbound function on the fixture's event.
async fn receive_fixture(
    rig: &MailRig,
    fixture: &str,
    source: &str,
    rcpt: &str,
    raw: &[u8],
) -> (String, shared::app::inbound::InboundReport) {
    let id = token("ses");
    rig.deps
        .raw
        .put(&format!("{}{id}", rig.deps.prefix), raw.to_vec())
        .await
        .expect("put raw");
    let event = ses_fixture(fixture, &id, source, rcpt);
    let mut r = inbound::handle_ses_event(
        &rig.deps,
        event,
        inbound::invocation_deadline(inbound::INBOUND_TIMEOUT),
    )
    .await
    .expect("inbound handler");
    (id, r.remove(0))
}

async fn snapshot(
    store: &shared::adapters::dynamodb::DynamoStore,
    org: &str,
) -> shared::ports::store::QueueSnapshot {
    store.queue_snapshot(org, 100).await.expect("snapshot")
}

#[tokio::test]
async fn a_virus_is_quarantined_with_its_reason_never_filed_nor_delivered() {
    let rig = MailRig::start(t(T0)).await;
    let server = plain_server().await;
    rig.org("vir", &[server.port]).await;
    let tok = token("virus");
    let (id, r) = receive_fixture(
        &rig,
        "ses-receipt-virus.json",
        "alice@example.org",
        "bob@vir.test",
        &message(&tok, "bob@vir.test"),
    )
    .await;
    assert_eq!(r.organisations["vir"], OrgResult::Quarantined);
    assert!(server.messages().is_empty(), "not delivered");
    assert!(
        rig.store()
            .mailbox("vir", "bob@vir.test")
            .await
            .unwrap()
            .is_empty(),
        "not filed"
    );
    assert_eq!(rig.figures("vir").await.count, 0, "not queued");
    let snap = snapshot(rig.store(), "vir").await;
    assert_eq!(snap.set_aside.len(), 1);
    let q = &snap.set_aside[0];
    assert_eq!(
        (q.kind, q.id.as_str()),
        (AsideKind::Quarantined, id.as_str())
    );
    assert!(q.reason.contains("virus"), "{}", q.reason);
    assert_eq!(q.recipients, vec!["bob@vir.test".to_string()]);
    // The raw message is kept.
    assert!(rig.deps.raw.get(&q.raw_key).await.is_ok());
    assert_eq!(
        rig.store()
            .message_state("vir", &id)
            .await
            .unwrap()
            .as_deref(),
        Some("quarantined")
    );
    // The same event again (Lambda retries): nothing more.
    let again = rig
        .deliver_judged(
            &id,
            "alice@example.org",
            &["bob@vir.test"],
            Verdicts {
                virus: Verdict::Fail,
                ..Verdicts::ALL_PASS
            },
        )
        .await;
    assert_eq!(again.organisations["vir"], OrgResult::Duplicate);
    assert_eq!(snapshot(rig.store(), "vir").await.set_aside.len(), 1);
    // Audited.
    use shared::ports::store::ContinuityViews;
    let audit = rig
        .store()
        .audit(
            "vir",
            t(T0) - chrono::Duration::days(1),
            t(T0) + chrono::Duration::days(1),
            10,
        )
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.what == "quarantined" && a.after["id"] == id.as_str()),
        "{audit:?}"
    );
}

#[tokio::test]
async fn spam_is_delivered_flagged_and_filed_apart_from_the_inbox() {
    let rig = MailRig::start(t(T0)).await;
    let server = plain_server().await;
    rig.org("spm", &[server.port]).await;
    let tok = token("spam");
    let (_, r) = receive_fixture(
        &rig,
        "ses-receipt-spam.json",
        "alice@example.org",
        "bob@spm.test",
        &message(&tok, "bob@spm.test"),
    )
    .await;
    assert!(
        matches!(r.organisations["spm"], OrgResult::Done { delivered: 1, .. }),
        "{r:?}"
    );
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("\r\nX-Spam-Flag: YES\r\n"), "{}", got[0]);
    assert!(
        rig.store()
            .mailbox("spm", "bob@spm.test")
            .await
            .unwrap()
            .is_empty(),
        "not in the Inbox"
    );
    let junk = rig
        .store()
        .mailbox_page(
            "spm",
            "bob@spm.test",
            Folder::Junk,
            t(T0) - chrono::Duration::days(1),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(junk.items.len(), 1, "filed in the spam folder");
    assert_eq!(junk.items[0].summary.subject.as_deref(), Some(tok.as_str()));
}

#[tokio::test]
async fn what_the_server_receives_carries_received_and_authentication_results() {
    let rig = MailRig::start(t(T0)).await;
    let server = plain_server().await;
    rig.org("hop", &[server.port]).await;
    let tok = token("hop");
    // A sender forging our verdicts: its field must not reach the server.
    let mut raw =
        format!("Authentication-Results: {SERVICE_HOST}; spf=pass smtp.mailfrom=ceo@hop.test\r\n")
            .into_bytes();
    raw.extend_from_slice(&message(&tok, "bob@hop.test"));
    receive_fixture(
        &rig,
        "ses-receipt-forged.json",
        "ceo@example.org",
        "bob@hop.test",
        &raw,
    )
    .await;
    let got = server.messages();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.contains(&format!("Received: from amazonses.com (Amazon SES receiving)\r\n\tby {SERVICE_HOST} (email continuity) with ESMTP id ")), "{m}");
    assert!(m.contains("\tfor <bob@hop.test>;"), "{m}");
    assert!(m.contains(&format!("Authentication-Results: {SERVICE_HOST};\r\n\tspf=fail smtp.mailfrom=ceo@example.org;\r\n\tdkim=none (verdict of Amazon SES receiving);\r\n\tdmarc=fail header.from=example.org\r\n")), "{m}");
    assert!(
        !m.contains("smtp.mailfrom=ceo@hop.test"),
        "the forged field was removed: {m}"
    );
    assert!(m.contains(&format!("Body of {tok}")));
}

#[tokio::test]
async fn eicar_sent_to_the_receiving_port_is_quarantined() {
    let rig = Rig::start(t(T0), chrono::Duration::zero()).await;
    let server = plain_server().await;
    let mut cfg = inbound_org("eic", 3);
    cfg.routes[0].port = server.port;
    rig.store().put_config(&cfg, t(T0)).await.unwrap();
    let tok = token("eicar");
    let raw = mail_fixture(
        "eicar-attachment.eml",
        &[
            ("TO", "bob@eic.test"),
            ("SUBJECT", &tok),
            ("MESSAGE_ID", &format!("{tok}@example.org")),
        ],
    );
    smtp_send(
        rig.receiving_port,
        "alice@example.org",
        "bob@eic.test",
        &raw,
    )
    .await;
    assert!(server.messages().is_empty(), "not delivered");
    let snap = snapshot(rig.store(), "eic").await;
    assert_eq!(snap.set_aside.len(), 1, "{snap:?}");
    assert_eq!(snap.set_aside[0].kind, AsideKind::Quarantined);
    assert_eq!(snap.set_aside[0].subject.as_deref(), Some(tok.as_str()));
    // A clean message through the same port is delivered.
    smtp_send(
        rig.receiving_port,
        "alice@example.org",
        "bob@eic.test",
        &message(&token("clean"), "bob@eic.test"),
    )
    .await;
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn an_spf_record_that_does_not_list_the_sending_address_gives_spf_fail() {
    let mut rig = Rig::start(t(T0), chrono::Duration::zero()).await;
    rig.dns
        .set_records(&[
            ("forged.test", "v=spf1 ip4:192.0.2.1 -all"),
            ("genuine.test", "v=spf1 ip4:127.0.0.1 -all"),
            ("_dmarc.genuine.test", "v=DMARC1; p=reject"),
        ])
        .await;
    let server = plain_server().await;
    let mut cfg = inbound_org("spf", 3);
    cfg.routes[0].port = server.port;
    rig.store().put_config(&cfg, t(T0)).await.unwrap();
    let forged = token("forged");
    smtp_send(
        rig.receiving_port,
        "ceo@forged.test",
        "bob@spf.test",
        &message(&forged, "bob@spf.test"),
    )
    .await;
    let genuine = token("genuine");
    let raw = mail_fixture(
        "plain.eml",
        &[
            ("FROM", "Alice <alice@genuine.test>"),
            ("TO", "bob@spf.test"),
            ("SUBJECT", &genuine),
            ("MESSAGE_ID", &format!("{genuine}@genuine.test")),
            ("BODY", "hello"),
        ],
    );
    smtp_send(
        rig.receiving_port,
        "alice@genuine.test",
        "bob@spf.test",
        &raw,
    )
    .await;
    let got = server.messages();
    assert_eq!(got.len(), 2);
    let f = got
        .iter()
        .find(|m| m.contains(&forged))
        .expect("forged delivered");
    assert!(f.contains("spf=fail smtp.mailfrom=ceo@forged.test;"), "{f}");
    let g = got
        .iter()
        .find(|m| m.contains(&genuine))
        .expect("genuine delivered");
    assert!(
        g.contains("spf=pass smtp.mailfrom=alice@genuine.test;"),
        "{g}"
    );
    assert!(g.contains("dmarc=pass header.from=genuine.test"), "{g}");
    assert!(
        g.contains("Received: from "),
        "the stand-in's own trace field: {g}"
    );
}

/// Sends one message over SMTP to the receiving stand-in; panics unless it answers 250.
async fn smtp_send(port: u16, from: &str, to: &str, raw: &[u8]) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) -> String {
        loop {
            line.clear();
            r.read_line(line).await.expect("read");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }
    reply(&mut r, &mut line).await;
    let mut data = Vec::new();
    for l in raw.split(|b| *b == b'\n') {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(l);
        data.extend_from_slice(b"\r\n");
    }
    for (cmd, want) in [
        ("EHLO mail.sender.test\r\n".to_string(), "250"),
        (format!("MAIL FROM:<{from}>\r\n"), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_string(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).await.expect("write");
        let got = reply(&mut r, &mut line).await;
        assert!(got.starts_with(want), "{cmd:?} -> {got}");
    }
    w.write_all(&data).await.expect("data");
    w.write_all(b".\r\n").await.expect("dot");
    let got = reply(&mut r, &mut line).await;
    assert!(got.starts_with("250"), "end of DATA -> {got}");
    let _ = w.write_all(b"QUIT\r\n").await;
}

#[tokio::test]
async fn a_forged_sender_refused_by_the_server_gets_no_dsn_and_is_set_aside() {
    let rig = MailRig::start(t(T0)).await;
    let server = plain_server().await;
    rig.org("bsc", &[server.port]).await;
    server.set_mode("permfail");
    let tok = token("forged5xx");
    let victim = format!("{}@victim.example", token("random"));
    let (id, r) = receive_fixture(
        &rig,
        "ses-receipt-forged.json",
        &victim,
        "nobody@bsc.test",
        &message(&tok, "nobody@bsc.test"),
    )
    .await;
    assert_eq!(
        r.organisations["bsc"],
        OrgResult::Done {
            delivered: 0,
            bounced: 1
        },
        "final for that recipient"
    );
    assert!(
        bounces_mentioning(&tok).await.is_empty(),
        "no backscatter to {victim}"
    );
    assert!(ses_raw_messages()
        .await
        .iter()
        .all(|(_, to, _)| !to.iter().any(|d| d.contains(&victim))));
    assert_eq!(rig.figures("bsc").await.count, 0);
    assert_eq!(
        rig.store()
            .message_state("bsc", &id)
            .await
            .unwrap()
            .as_deref(),
        Some("undeliverable")
    );
    let snap = snapshot(rig.store(), "bsc").await;
    assert_eq!(snap.set_aside.len(), 1);
    let a = &snap.set_aside[0];
    assert_eq!(a.kind, AsideKind::Undeliverable);
    assert!(
        a.reason.contains("550") && a.reason.contains("SPF") && a.reason.contains("DMARC"),
        "{}",
        a.reason
    );
}

#[tokio::test]
async fn a_forged_sender_past_the_retention_gets_no_dsn_a_genuine_one_gets_one() {
    let rig = MailRig::start(t(T0)).await;
    let mut server = plain_server().await;
    let mut cfg = rig.org("ret", &[server.port]).await;
    cfg.queue.retention_hours = 2;
    rig.put_config(&cfg).await;
    server.stop().await;
    let (forged, genuine) = (token("forgedexp"), token("genuineexp"));
    let victim = format!("{}@victim.example", token("v"));
    let sender = format!("{}@example.org", token("alice"));
    receive_fixture(
        &rig,
        "ses-receipt-forged.json",
        &victim,
        "bob@ret.test",
        &message(&forged, "bob@ret.test"),
    )
    .await;
    receive_fixture(
        &rig,
        "ses-receipt-genuine.json",
        &sender,
        "bob@ret.test",
        &message(&genuine, "bob@ret.test"),
    )
    .await;
    assert_eq!(rig.figures("ret").await.count, 2);
    rig.tick_every(
        chrono::Duration::minutes(30),
        t(T0) + chrono::Duration::hours(3),
    )
    .await;
    assert_eq!(rig.figures("ret").await.count, 0, "both left the queue");
    assert!(
        bounces_mentioning(&forged).await.is_empty(),
        "no DSN to a forged sender"
    );
    let b = bounces_mentioning(&genuine).await;
    assert_eq!(b.len(), 1, "exactly one DSN to the genuine sender");
    assert!(b[0].1.iter().any(|d| d.contains(&sender)));
    let snap = snapshot(rig.store(), "ret").await;
    assert_eq!(snap.set_aside.len(), 1, "{:?}", snap.set_aside);
    assert!(
        snap.set_aside[0].reason.contains("within 2 hours"),
        "{}",
        snap.set_aside[0].reason
    );
}

#[tokio::test]
async fn a_genuine_sender_refused_by_the_server_gets_one_dsn() {
    let rig = MailRig::start(t(T0)).await;
    let server = plain_server().await;
    rig.org("gen", &[server.port]).await;
    server.set_mode("permfail");
    let tok = token("genuine5xx");
    let sender = format!("{}@example.org", token("alice"));
    receive_fixture(
        &rig,
        "ses-receipt-genuine.json",
        &sender,
        "nobody@gen.test",
        &message(&tok, "nobody@gen.test"),
    )
    .await;
    let b = bounces_mentioning(&tok).await;
    assert_eq!(b.len(), 1);
    assert!(b[0].1.iter().any(|d| d.contains(&sender)));
    assert!(snapshot(rig.store(), "gen").await.set_aside.is_empty());
}

#[tokio::test]
async fn the_queue_view_shows_why_mail_waits_oldest_first() {
    let api = ApiRig::start(t(T0)).await;
    let mail = Arc::new(mail_deps(api.store().clone(), Arc::new(api.clock.clone())).await);
    let mut server = plain_server().await;
    let mut cfg = inbound_org("acme", 3);
    cfg.routes[0].port = server.port;
    cfg.delivery.timeout_secs = 2;
    api.store().put_config(&cfg, t(T0)).await.unwrap();
    server.stop().await;
    for (i, tok) in ["first", "second"].iter().enumerate() {
        api.clock.set(t(T0) + chrono::Duration::seconds(i as i64));
        let id = token(tok);
        mail.raw
            .put(
                &format!("{}{id}", mail.prefix),
                message(tok, "bob@acme.test"),
            )
            .await
            .unwrap();
        let ev = inbound::SesEvent::single(
            &id,
            api.clock.now(),
            "alice@example.org",
            vec!["bob@acme.test".into()],
            Verdicts::ALL_PASS,
        );
        integration_tests::handle_ses_now(&mail, &ev).await.unwrap();
    }
    let admin = api.token("admin@acme.test", true);
    let r = ApiRig::http()
        .get(api.url("/api/v1/admin/queue"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 2);
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["subject"], "first", "oldest first: {v}");
    assert_eq!(msgs[0]["attempts"], 1);
    assert!(
        msgs[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("route 1"),
        "{v}"
    );
    assert!(msgs[0]["next_retry"].is_string(), "{v}");
    assert!(v["next_attempt"].is_string(), "{v}");
    // Another organisation's administrator sees none of it.
    api.store()
        .put_config(&inbound_org("globex", 3), t(T0))
        .await
        .unwrap();
    let other = api.token("admin@globex.test", true);
    let v: Value = ApiRig::http()
        .get(api.url("/api/v1/admin/queue"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["count"], 0);
    assert_eq!(v["messages"], json!([]));

    // The portal's page (opened from an alert link) says the same: the queued messages oldest
    // first with their last error and next try, and a quarantined virus with its reason.
    let vid = token("virus");
    mail.raw
        .put(
            &format!("{}{vid}", mail.prefix),
            message("infected", "bob@acme.test"),
        )
        .await
        .unwrap();
    let virus = Verdicts {
        virus: shared::domain::verdicts::Verdict::Fail,
        ..Verdicts::ALL_PASS
    };
    let ev = inbound::SesEvent::single(
        &vid,
        api.clock.now(),
        "mallory@example.org",
        vec!["bob@acme.test".into()],
        virus,
    );
    integration_tests::handle_ses_now(&mail, &ev).await.unwrap();
    let link = api
        .env
        .link_keys
        .sign("acme", "ep1-0", api.clock.now())
        .expect("sign");
    let (s, page) = integration_tests::portal_support::get(&api.url(&format!("/l/{link}"))).await;
    assert_eq!(s, 200, "{page}");
    let list = &page[page.find("id=\"queued\"").expect("queued list")..];
    let (first, second) = (
        list.find("&ldquo;first&rdquo;").expect("first listed"),
        list.find("&ldquo;second&rdquo;").expect("second listed"),
    );
    assert!(first < second, "oldest first: {list}");
    assert!(list.contains("1 attempt; last error: route 1"), "{list}");
    assert!(list.contains("next try: 20"), "{list}");
    let aside = &page[page.find("id=\"set-aside\"").expect("set-aside list")..];
    assert!(
        aside.contains("Quarantined (virus)")
            && aside.contains("mallory@example.org")
            && aside.contains("virusVerdict FAIL"),
        "{aside}"
    );
    // Another organisation's link shows none of it.
    let link = api
        .env
        .link_keys
        .sign("globex", "ep1-0", api.clock.now())
        .expect("sign");
    let (s, page) = integration_tests::portal_support::get(&api.url(&format!("/l/{link}"))).await;
    assert_eq!(s, 200);
    assert!(
        !page.contains("id=\"queued\"") && !page.contains("id=\"set-aside\""),
        "{page}"
    );
}

async fn call(
    api: &ApiRig,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let c = ApiRig::http();
    let mut req = match method {
        "GET" => c.get(api.url(path)),
        "PUT" => c.put(api.url(path)),
        _ => c.post(api.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The API with its resolver on `dns`.
/// Asserts an API refusal: `status` with an error message holding `words`.
fn assert_refused(status: u16, v: &Value, expected: u16, words: &str) {
    assert_eq!(status, expected, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains(words),
        "{v}"
    );
}

/// The domains of `org`'s stored configuration.
async fn domains_of(api: &ApiRig, org: &str) -> Vec<String> {
    api.store().get_config(org).await.unwrap().unwrap().domains
}

async fn api_on(dns: &DnsServer) -> ApiRig {
    let servers = dns.servers();
    ApiRig::start_with(t(T0), move |s| {
        s.proofs = Arc::new(shared::adapters::dns::DnsTxtProofs::new(&servers).expect("resolver"));
    })
    .await
}

#[tokio::test]
async fn a_domain_joins_only_with_its_dns_proof_and_gets_its_ses_identity() {
    let mut dns = DnsServer::start(&[]).await;
    let api = api_on(&dns).await;
    api.store()
        .put_config(&inbound_org("acme", 3), t(T0))
        .await
        .unwrap();
    let admin = api.token("admin@acme.test", true);
    let domain = format!("{}.example", token("d"));
    let (s, v) = call(
        &api,
        "POST",
        "/api/v1/admin/domains",
        &admin,
        Some(json!({"domain": domain})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "pending");
    let name = v["records"][0]["name"].as_str().unwrap().to_string();
    let value = v["records"][0]["value"].as_str().unwrap().to_string();
    assert_eq!(name, proof_name(&domain));
    let verify = format!("/api/v1/admin/domains/{domain}/verify");
    // No record yet: refused, nothing changed.
    let (s, v) = call(&api, "POST", &verify, &admin, None).await;
    assert_refused(s, &v, 422, "No TXT record");
    assert_eq!(domains_of(&api, "acme").await, vec!["acme.test"]);
    // A wrong value: refused.
    dns.set_records(&[(&name, &proof_value("not-the-token"))])
        .await;
    let (s, v) = call(&api, "POST", &verify, &admin, None).await;
    assert_refused(s, &v, 422, "do not hold");
    assert_eq!(domains_of(&api, "acme").await, vec!["acme.test"]);
    // The right one: proven, in the configuration, with its SES identity and DKIM records.
    dns.set_records(&[(&name, &value)]).await;
    let (s, v) = call(&api, "POST", &verify, &admin, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "proven");
    assert_eq!(
        api.store()
            .get_config("acme")
            .await
            .unwrap()
            .unwrap()
            .domains,
        vec!["acme.test".to_string(), domain.clone()]
    );
    // The SES identity exists, and the API shows a DKIM CNAME for each of its tokens. (Real SES
    // gives Easy DKIM's three tokens; moto 5.2 gives none, so here the count is moto's: the
    // token-to-record mapping is `shared::domain::domains`' unit test `views`.)
    let ses = aws_sdk_sesv2::Client::new(&sdk().await);
    let id = ses
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("identity in moto");
    assert_eq!(
        id.identity_type(),
        Some(&aws_sdk_sesv2::types::IdentityType::Domain)
    );
    let tokens: Vec<String> = id
        .dkim_attributes()
        .map(|d| d.tokens().to_vec())
        .unwrap_or_default();
    let cnames: Vec<(&str, &str)> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "CNAME")
        .map(|r| (r["name"].as_str().unwrap(), r["value"].as_str().unwrap()))
        .collect();
    let expected: Vec<(String, String)> = tokens
        .iter()
        .map(|t| {
            (
                format!("{t}._domainkey.{domain}"),
                format!("{t}.dkim.amazonses.com"),
            )
        })
        .collect();
    assert_eq!(
        cnames,
        expected
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        "{v}"
    );
    assert!(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "MX" && r["value"] == "10 inbound-smtp.us-east-1.amazonaws.com"),
        "{v}"
    );
    let (s, list) = call(&api, "GET", "/api/v1/admin/domains", &admin, None).await;
    assert_eq!(s, 200);
    assert!(
        list["domains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["domain"] == domain.as_str() && d["status"] == "proven"),
        "{list}"
    );
    // Mail for it now reaches the organisation.
    use shared::ports::store::DomainOwners;
    assert_eq!(
        api.store()
            .orgs_for_domains(std::slice::from_ref(&domain))
            .await
            .unwrap()
            .get(&domain)
            .map(String::as_str),
        Some("acme")
    );
}

#[tokio::test]
async fn public_suffixes_the_receiving_domain_and_other_tenants_subdomains_are_refused() {
    let mut dns = DnsServer::start(&[]).await;
    let api = api_on(&dns).await;
    api.store()
        .put_config(&inbound_org("acme", 3), t(T0))
        .await
        .unwrap();
    api.store()
        .put_config(&inbound_org("globex", 3), t(T0))
        .await
        .unwrap();
    let acme = api.token("admin@acme.test", true);
    let globex = api.token("admin@globex.test", true);
    // acme proves a domain of its own.
    let domain = format!("{}.example", token("own"));
    let (_, v) = call(
        &api,
        "POST",
        "/api/v1/admin/domains",
        &acme,
        Some(json!({"domain": domain})),
    )
    .await;
    dns.set_records(&[(
        v["records"][0]["name"].as_str().unwrap(),
        v["records"][0]["value"].as_str().unwrap(),
    )])
    .await;
    let (s, _) = call(
        &api,
        "POST",
        &format!("/api/v1/admin/domains/{domain}/verify"),
        &acme,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let before = integration_tests::portal_support::partition(&api, "globex").await;
    for (d, status, words) in [
        ("co.uk", 422, "public suffix"),
        ("github.io", 422, "public suffix"),
        (RECEIVING_DOMAIN, 422, "receiving domain"),
        ("probe.continuity.test", 422, "receiving domain"),
        (&format!("eu.{domain}") as &str, 409, "another organisation"),
        (&domain as &str, 409, "another organisation"),
    ] {
        let (s, v) = call(
            &api,
            "POST",
            "/api/v1/admin/domains",
            &globex,
            Some(json!({"domain": d})),
        )
        .await;
        assert_eq!(s, status, "{d}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(words),
            "{d}: {v}"
        );
    }
    assert!(
        api.store()
            .claims("globex", t(T0))
            .await
            .unwrap()
            .is_empty(),
        "no claim made"
    );
    assert_eq!(
        integration_tests::portal_support::partition(&api, "globex").await,
        before,
        "nothing changed"
    );
    // Nor can a configuration change add an unproven domain.
    let mut cfg = api.store().get_config("globex").await.unwrap().unwrap();
    cfg.domains.push("unproven.example".into());
    let (s, v) = call(
        &api,
        "PUT",
        "/api/v1/admin/config",
        &globex,
        Some(serde_json::to_value(&cfg).unwrap()),
    )
    .await;
    assert_refused(s, &v, 422, "not proven");
    assert_eq!(domains_of(&api, "globex").await, vec!["globex.test"]);
}

/// A CA and a client certificate for `cn` it issued (`infra/local/make-client-cert.sh`):
/// `(dir, ca.pem, client.pem's text)`.
fn client_certificate(cn: &str) -> (TempDir, std::path::PathBuf, String) {
    let dir = TempDir::new("continuity-client-cert");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/local/make-client-cert.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .arg(cn)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run make-client-cert.sh");
    assert!(status.success(), "make-client-cert.sh failed");
    let pem = std::fs::read_to_string(dir.path().join("client.pem")).expect("client.pem");
    let ca = dir.path().join("ca.pem");
    (dir, ca, pem)
}

#[tokio::test]
async fn a_connector_that_identifies_the_service_by_certificate_gets_it_from_secrets_manager() {
    init_tracing();
    let (_dir, ca, pem) = client_certificate(SERVICE_HOST);
    // The organisation's server as an Exchange connector restricted to a certificate: STARTTLS,
    // and no session without a client certificate from its CA.
    let server = MailServer::start(MailServerOptions {
        tls: true,
        client_ca: Some(ca),
        ..Default::default()
    })
    .await;
    let store = fresh_store().await;
    let clock = shared::adapters::clock::VirtualClock::new(t(T0));
    let secret = unique("smtp-client-cert");
    put_secret(&secret, &pem).await;
    let mut settings = mail_settings(&store);
    settings.ca_bundle = Some(test_cert().0.display().to_string());
    settings.client_cert_secret = Some(secret.clone());
    let deps = mail_deps_from(&settings, store.clone(), Arc::new(clock.clone()))
        .await
        .expect("started with the certificate");
    assert!(deps.relay.has_client_certificate());
    let rig = MailRig {
        clock: clock.clone(),
        deps: Arc::new(deps),
    };
    let mut cfg = rig.org("crt", &[server.port]).await;
    cfg.routes[0].tls = shared::domain::config::RouteTls::StarttlsRequired;
    rig.put_config(&cfg).await;

    let tok = token("cert");
    let (_, r) = rig
        .receive(
            "alice@example.org",
            &["bob@crt.test"],
            &message(&tok, "bob@crt.test"),
        )
        .await;
    assert!(
        matches!(r.organisations["crt"], OrgResult::Done { delivered: 1, .. }),
        "{r:?}"
    );
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains(&format!(
            "X-Continuity-Session: tls=yes; auth=-; helo={SERVICE_HOST}; cert={SERVICE_HOST}\r\n"
        )),
        "{}",
        got[0]
    );

    // Without the certificate the connector refuses the session: the message waits in the
    // queue with the reason, the server has nothing new.
    let mut plain = mail_settings(&store);
    plain.ca_bundle = settings.ca_bundle.clone();
    let without = MailRig {
        clock: clock.clone(),
        deps: Arc::new(
            mail_deps_from(&plain, store.clone(), Arc::new(clock.clone()))
                .await
                .expect("deps"),
        ),
    };
    let tok2 = token("nocert");
    let (id, r) = without
        .receive(
            "alice@example.org",
            &["bob@crt.test"],
            &message(&tok2, "bob@crt.test"),
        )
        .await;
    assert!(
        matches!(r.organisations["crt"], OrgResult::Queued { .. }),
        "{r:?}"
    );
    assert_eq!(
        server.messages().len(),
        1,
        "nothing delivered without the certificate"
    );
    let snap = snapshot(&store, "crt").await;
    let q = snap.queued.iter().find(|q| q.id == id).expect("queued");
    assert!(q.last_error.is_some(), "{q:?}");

    // A secret that holds no usable certificate and key stops the start, naming the secret.
    let cert_only = pem[..pem.find("-----BEGIN PRIVATE KEY-----").expect("key")].to_string();
    let (_other_dir, _, other) = client_certificate("other.continuity.test");
    let other_key = &other[other.find("-----BEGIN PRIVATE KEY-----").expect("key")..];
    for (case, value, reason) in [
        ("no key", cert_only.clone(), "no private key"),
        ("not PEM", "hunter2".to_string(), "no certificate"),
        (
            "another certificate's key",
            format!("{cert_only}{other_key}"),
            "do not fit together",
        ),
    ] {
        let name = unique("smtp-client-cert-bad");
        put_secret(&name, &value).await;
        settings.client_cert_secret = Some(name.clone());
        let err = mail_deps_from(&settings, store.clone(), Arc::new(clock.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{case}: started"));
        assert!(err.contains(&name) && err.contains(reason), "{case}: {err}");
    }
    settings.client_cert_secret = Some(unique("smtp-client-cert-missing"));
    let err = mail_deps_from(&settings, store.clone(), Arc::new(clock))
        .await
        .err()
        .expect("a missing secret stops the start");
    assert!(err.contains("SMTP_CLIENT_CERT_SECRET"), "{err}");
}
