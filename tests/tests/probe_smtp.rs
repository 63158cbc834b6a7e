//! The outbound check (D3) through a real SMTP server with STARTTLS and AUTH: in time, late,
//! lost, server down, AUTH refused, server hanging, certificate not trusted. Each case sends the
//! probe at a window start and judges it at the next, on virtual time.

use integration_tests::*;
use shared::app::monitor::ProbeResult;
use shared::domain::counter::ProbeObservation;
use shared::domain::monitoring::HistoryEntry;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;

const START: &str = "2026-11-23T08:00:00Z";

/// Runs the tick at W.start (sends the probe of W) and the tick at W.end (judges it);
/// returns the probe result of the first tick and the history entry of W.
async fn probe_window(
    rig: &Rig,
    org: &shared::domain::config::OrgConfig,
) -> (ProbeResult, HistoryEntry) {
    rig.store()
        .put_config(org, rig.clock.now())
        .await
        .expect("config");
    let w = Window::containing(t(START));
    rig.clock.set(w.start() - chrono::Duration::seconds(1));
    let first = rig.advance_to(w.start()).await;
    let probe = first[0]
        .summary
        .attention
        .iter()
        .find(|o| o.org_id == org.org_id)
        .map(|o| o.probe.clone())
        .unwrap_or(ProbeResult::Sent);
    rig.advance_to(w.end()).await;
    let h = rig
        .store()
        .history(&org.org_id, w, w)
        .await
        .expect("history");
    assert_eq!(h.len(), 1, "one history item for the window");
    (probe, h.into_iter().next().expect("entry"))
}

#[tokio::test]
async fn probe_in_time_lowers_the_counter_and_uses_tls_and_auth() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(5)).await;
    let server = rig.org_server("acme").await;
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    assert_eq!(probe, ProbeResult::Sent);
    assert_eq!(h.outbound, Some(ProbeObservation::InTime));
    assert_eq!(h.step.verdict, shared::domain::counter::Verdict::Pass);

    // The probe of W, then the one of W+1 sent by the tick that judged W.
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2, "one probe per window");
    let w = Window::containing(t(START));
    assert!(
        msgs[0].contains(&format!("X-Continuity-Probe: acme.{}.", w.0)),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].contains(&format!("X-Continuity-Probe: acme.{}.", w.0 + 1)),
        "{}",
        msgs[1]
    );
    assert!(
        msgs[0].contains(&format!(
            "X-Continuity-Session: tls=yes; auth=continuity-probe@acme.test; helo={SERVICE_HOST};"
        )),
        "{}",
        msgs[0]
    );
    assert!(msgs[0].contains("X-Continuity-Probe: acme."), "{}", msgs[0]);
    let rec = rig
        .store()
        .probe("acme", Window::containing(t(START)))
        .await
        .unwrap()
        .unwrap();
    let latency = rec.arrived_at.unwrap() - rec.claimed_at;
    assert_eq!(latency, chrono::Duration::seconds(5));
}

#[tokio::test]
async fn probe_arriving_after_the_acceptable_latency_is_late() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(90)).await;
    let server = rig.org_server("acme").await;
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    assert_eq!(probe, ProbeResult::Sent);
    assert_eq!(h.outbound, Some(ProbeObservation::Late));
    assert_eq!((h.step.delta, h.step.value), (1, 1));
}

#[tokio::test]
async fn probe_accepted_but_never_delivered_is_missing() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    // Accepts the submission, relays nothing: the probe is lost on the way.
    let server = submission_server(&rig.probe_secret("acme"), vec![]).await;
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    assert_eq!(probe, ProbeResult::Sent);
    assert_eq!(server.messages().len(), 2, "probes of W and W+1 accepted");
    assert_eq!(h.outbound, Some(ProbeObservation::Missing));
    assert_eq!((h.step.delta, h.step.value), (1, 1));
}

fn not_sent_reason(p: &ProbeResult) -> &str {
    match p {
        ProbeResult::NotSent { reason } => reason,
        other => panic!("expected NotSent, got {other:?}"),
    }
}

#[tokio::test]
async fn server_down_means_not_sent() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    let mut server = rig.org_server("acme").await;
    server.stop().await;
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    let reason = not_sent_reason(&probe);
    assert!(reason.contains("could not connect"), "{reason}");
    assert_eq!(h.outbound, Some(ProbeObservation::NotSent));
    assert_eq!((h.step.delta, h.step.value), (1, 1));
    let rec = rig
        .store()
        .probe("acme", Window::containing(t(START)))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.error.unwrap().contains("could not connect"));
}

#[tokio::test]
async fn refused_login_means_not_sent() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    let server = rig.org_server("acme").await;
    put_secret(&rig.probe_secret("acme"), "not-the-password").await;
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    let reason = not_sent_reason(&probe);
    assert!(reason.contains("refused the login"), "{reason}");
    assert_eq!(h.outbound, Some(ProbeObservation::NotSent));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn hanging_server_times_out_and_means_not_sent() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    let server = rig.org_server("acme").await;
    server.set_mode("hang");
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    let reason = not_sent_reason(&probe);
    assert!(reason.contains("did not answer in time"), "{reason}");
    assert_eq!(h.outbound, Some(ProbeObservation::NotSent));
}

#[tokio::test]
async fn server_refusing_mail_means_not_sent() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    let server = rig.org_server("acme").await;
    server.set_mode("tempfail");
    let org = probed_org("acme", 3, server.port);
    let (probe, h) = probe_window(&rig, &org).await;
    let reason = not_sent_reason(&probe);
    assert!(reason.contains("deferred"), "{reason}");
    assert_eq!(h.outbound, Some(ProbeObservation::NotSent));
}

#[tokio::test]
async fn untrusted_certificate_is_refused_before_the_password_is_sent() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(1)).await;
    let server = rig.org_server("acme").await;
    // A sender that trusts only the public roots: the test server's self-signed certificate fails.
    let sender = shared::adapters::smtp::probe::SmtpProbeSender::new(
        std::time::Duration::from_secs(3),
        None,
    );
    let org = probed_org("acme", 3, server.port);
    let mailbox = org.probe.as_ref().unwrap();
    let err = shared::ports::mail::ProbeSender::send_probe(
        &sender,
        mailbox,
        shared::ports::mail::SmtpLogon::Password("irrelevant"),
        "probe@probe.continuity.test",
        b"x",
    )
    .await
    .expect_err("untrusted certificate must fail");
    assert_eq!(
        err.kind,
        shared::ports::mail::SendFailure::Connection,
        "{err}"
    );
    assert!(server.messages().is_empty());
    drop(rig);
}
