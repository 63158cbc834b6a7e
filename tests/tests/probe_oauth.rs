//! The outbound check for Exchange Online and Google Workspace (D9, D10), against real local
//! parts: the token endpoint stand-in (client credentials with a secret or a certificate's
//! assertion, Google's JWT-bearer grant), the SMTP server stand-in with AUTH XOAUTH2 verifying
//! that endpoint's tokens (or answering 5.7.30 to a password), and Graph's stand-in answering
//! with the documented shapes of `tests/fixtures/graph/`. Each probe is sent at a window start
//! and judged at the next, on virtual time; refusals are checked for what the administrator
//! reads and for nothing else having changed.

use integration_tests::api::ApiRig;
use integration_tests::oauth::*;
use integration_tests::*;
use serde_json::json;
use shared::app::monitor::ProbeResult;
use shared::domain::config::{AppCredential, MicrosoftApp, OrgConfig, ProbeLogon};
use shared::domain::counter::ProbeObservation as P;
use shared::domain::monitoring::HistoryEntry;
use shared::domain::window::Window;
use shared::ports::store::ConfigStore;

const START: &str = "2026-11-23T08:00:00Z";
const MAILBOX: &str = "continuity-probe@acme.test";

fn app(credential: AppCredential, thumbprint: Option<&str>) -> MicrosoftApp {
    MicrosoftApp {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        credential,
        certificate_thumbprint: thumbprint.map(str::to_string),
    }
}

/// `acme` probing through 127.0.0.1:`port` as [`MAILBOX`], logging on with `logon`.
fn org(port: u16, logon: ProbeLogon) -> OrgConfig {
    let mut c = probed_org("acme", 3, port);
    let p = c.probe.as_mut().expect("probe");
    p.username = MAILBOX.into();
    p.logon = logon;
    c
}

/// An SMTP stand-in with STARTTLS and AUTH XOAUTH2 (`style`) relaying to the rig's receiving
/// stand-in; the app may send as [`MAILBOX`].
async fn xoauth2_server(rig: &Rig, tokens: &TokenServer, style: &'static str) -> MailServer {
    xoauth2_relaying(
        tokens,
        style,
        vec![(PROBE_DOMAIN.into(), rig.receiving_port)],
    )
    .await
}

/// As [`xoauth2_server`], relaying as `relay` says.
async fn xoauth2_relaying(
    tokens: &TokenServer,
    style: &'static str,
    relay: Vec<(String, u16)>,
) -> MailServer {
    xoauth2_mail_server(tokens, style, &[MAILBOX], relay).await
}

/// Runs the tick at `w.start()` (sends `w`'s probe, judges `w - 1`): the probe's result.
async fn tick(rig: &Rig, org_id: &str, w: Window) -> ProbeResult {
    let ticks = rig.advance_to(w.start()).await;
    ticks
        .last()
        .and_then(|t| {
            t.summary
                .attention
                .iter()
                .find(|o| o.org_id == org_id)
                .map(|o| o.probe.clone())
        })
        .unwrap_or(ProbeResult::Sent)
}

/// Windows `w0 .. w0 + n` probed and judged: each window's history entry.
async fn windows(rig: &Rig, org_id: &str, w0: Window, n: i64) -> Vec<HistoryEntry> {
    for k in 0..=n {
        tick(rig, org_id, Window(w0.0 + k)).await;
    }
    rig.store()
        .history(org_id, w0, Window(w0.0 + n - 1))
        .await
        .expect("history")
}

/// A rig at `START` with `cfg` stored and the probe's credential `secret` in its derived secret.
async fn rig_with(oauth: shared::adapters::oauth::OauthEndpoints, secret: &str) -> (Rig, Window) {
    let rig = Rig::start_oauth(t(START), chrono::Duration::seconds(3), oauth).await;
    put_secret(&rig.probe_secret("acme"), secret).await;
    let w = Window::containing(t(START));
    rig.clock.set(w.start() - chrono::Duration::seconds(1));
    (rig, w)
}

fn outbound(h: &[HistoryEntry]) -> Vec<P> {
    h.iter().map(|e| e.outbound.expect("outbound on")).collect()
}

fn reason(h: &HistoryEntry) -> &str {
    h.outbound_reason.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn xoauth2_probe_arrives_in_time_with_one_token_for_several_windows() {
    let tokens = TokenServer::start(registry("app-secret-1", None, None)).await;
    let (rig, w) = rig_with(endpoints(&tokens, free_port()), "app-secret-1").await;
    let server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();

    let h = windows(&rig, "acme", w, 3).await;
    assert_eq!(outbound(&h), [P::InTime, P::InTime, P::InTime]);
    let msgs = server.messages();
    assert_eq!(msgs.len(), 4, "one probe per window");
    assert!(
        msgs[0].contains(&format!(
            "X-Continuity-Session: tls=yes; auth={MAILBOX} (xoauth2)"
        )),
        "{}",
        msgs[0]
    );
    // Four windows, one token (it lives an hour): the cache serves the others.
    assert_eq!(tokens.issued(CLIENT_ID).await, 1);
    assert_eq!(rig.runner.deps.token_cache.fetches(), 1);
}

#[tokio::test]
async fn a_certificate_assertion_gets_the_token_and_the_logon_test_sends_nothing() {
    let key = AppKey::generate();
    let tokens = TokenServer::start(registry("unused", Some(&key), None)).await;
    let (rig, _) = rig_with(endpoints(&tokens, free_port()), &key.key_pem).await;
    let server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::Certificate, Some(&key.thumbprint))),
    );
    let report = rig.runner.deps.logons().test(&cfg, rig.clock.now()).await;
    assert!(report.ok, "{report:?}");
    assert!(report.token);
    assert_eq!(report.method, "oauth2-client-credentials");
    assert_eq!(report.secret, rig.probe_secret("acme"));
    assert!(server.messages().is_empty(), "a logon test sends nothing");
    assert_eq!(tokens.issued(CLIENT_ID).await, 1);

    // Another certificate's key (a function started after the secret changed): the assertion
    // is refused, said as such.
    put_secret(&rig.probe_secret("acme"), &AppKey::generate().key_pem).await;
    let mut fresh = deps_oauth(
        rig.store().clone(),
        std::sync::Arc::new(rig.clock.clone()),
        std::time::Duration::from_secs(3),
        &rig.alerts,
        endpoints(&tokens, free_port()),
    )
    .await;
    fresh.probe_secret_prefix = rig.runner.deps.probe_secret_prefix.clone();
    let report = fresh.logons().test(&cfg, rig.clock.now()).await;
    assert!(!report.ok && !report.token, "{report:?}");
    let e = report.error.unwrap();
    assert!(
        e.contains("refused the certificate assertion (invalid_client, AADSTS700027)"),
        "{e}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_a_revoked_one_replaced() {
    let mut reg = registry("app-secret-1", None, None);
    reg["lifetime"] = json!(600);
    let tokens = TokenServer::start(reg).await;
    let (rig, w) = rig_with(endpoints(&tokens, free_port()), "app-secret-1").await;
    let server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();

    // Ten-minute tokens, used until five minutes before they expire: the ticks at 0, 2 and 4
    // minutes share the first, 6-10 the second, 12 and 14 the third.
    let h = windows(&rig, "acme", w, 7).await;
    assert_eq!(outbound(&h), vec![P::InTime; 7]);
    assert_eq!(tokens.issued(CLIENT_ID).await, 3);
    assert_eq!(rig.runner.deps.token_cache.fetches(), 3);

    // The endpoint's key changes (the token is revoked) while the third token is still fresh
    // for the cache: the server refuses it at 16 minutes, the window fails with the reason,
    // the token is dropped, the next window fetches a new one and passes.
    tokens.rotate_key().await;
    let h = windows(&rig, "acme", Window(w.0 + 8), 2).await;
    assert_eq!(outbound(&h), [P::NotSent, P::InTime]);
    assert!(
        reason(&h[0]).starts_with("Exchange Online refused the app's access token (535 5.7.3); register the app's service principal"),
        "{}",
        reason(&h[0])
    );
    assert_eq!(h[1].outbound_reason, None);
    assert_eq!(tokens.issued(CLIENT_ID).await, 4);
}

#[tokio::test]
async fn a_bad_client_secret_is_reported_as_such_and_nothing_else_happens() {
    let tokens = TokenServer::start(registry("the-right-secret", None, None)).await;
    let (rig, w) = rig_with(endpoints(&tokens, free_port()), "an-old-secret").await;
    let server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();

    let first = tick(&rig, "acme", w).await;
    let ProbeResult::NotSent { reason: said } = first else {
        panic!("expected NotSent, got {first:?}")
    };
    assert!(said.starts_with("the Microsoft identity platform refused the client secret (invalid_client, AADSTS7000215); store the Value"), "{said}");
    let h = windows(&rig, "acme", w, 1).await;
    assert_eq!(outbound(&h), [P::NotSent]);
    assert_eq!(reason(&h[0]), said, "the history says the same");
    assert_eq!(
        (h[0].step.delta, h[0].step.value),
        (1, 1),
        "one failing window, as any"
    );
    // Nothing else: no token, nothing sent, nothing cached, the configuration as stored.
    assert_eq!(tokens.issued(CLIENT_ID).await, 0);
    assert_eq!(
        tokens.stats().await["refused"],
        json!(["invalid_client", "invalid_client"])
    );
    assert!(server.messages().is_empty());
    assert_eq!(rig.runner.deps.token_cache.fetches(), 0);
    assert_eq!(rig.store().get_config("acme").await.unwrap(), Some(cfg));

    // The administrator stores the secret's Value: the next window reads it (the refused one
    // is not kept in the function's secret cache for its hour) and passes.
    put_secret(&rig.probe_secret("acme"), "the-right-secret").await;
    let h = windows(&rig, "acme", Window(w.0 + 2), 1).await;
    assert_eq!(outbound(&h), [P::InTime]);
    assert_eq!(tokens.issued(CLIENT_ID).await, 1);
    assert_eq!(server.messages().len(), 2);
}

#[tokio::test]
async fn consent_missing_is_reported_for_microsoft_and_google() {
    let key = AppKey::generate();
    let mut reg = registry(
        "app-secret-1",
        None,
        Some((&key, &["continuity-probe@globex.test"])),
    );
    reg["microsoft"]["apps"][CLIENT_ID]["consented"] = json!(false);
    reg["google"]["service_accounts"][SERVICE_ACCOUNT]["delegated_scopes"] = json!([]);
    let tokens = TokenServer::start(reg).await;
    let (rig, w) = rig_with(endpoints(&tokens, free_port()), "app-secret-1").await;
    let closed = free_port();
    let ms = org(
        closed,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&ms, rig.clock.now()).await.unwrap();
    let mut google = probed_org("globex", 3, closed);
    google.probe.as_mut().unwrap().username = "continuity-probe@globex.test".into();
    google.probe.as_mut().unwrap().logon = ProbeLogon::GoogleXoauth2;
    put_secret(
        &rig.probe_secret("globex"),
        &key.service_account_json(&format!("{}/token", tokens.url())),
    )
    .await;
    rig.store()
        .put_config(&google, rig.clock.now())
        .await
        .unwrap();

    tick(&rig, "acme", w).await;
    tick(&rig, "acme", w.next()).await;
    let h = rig.store().history("acme", w, w).await.unwrap();
    assert!(
        reason(&h[0]).starts_with("an administrator has not consented to the app's permissions (invalid_grant, AADSTS65001); grant admin consent"),
        "{}",
        reason(&h[0])
    );
    let g = rig.store().history("globex", w, w).await.unwrap();
    assert!(
        reason(&g[0]).starts_with("Google refused the service account: domain-wide delegation is not authorised for it (unauthorized_client); in the Admin console"),
        "{}",
        reason(&g[0])
    );
    assert_eq!(tokens.stats().await["issued"], json!({}));
}

#[tokio::test]
async fn a_google_service_account_probe_arrives_in_time() {
    let key = AppKey::generate();
    let tokens = TokenServer::start(registry("unused", None, Some((&key, &[MAILBOX])))).await;
    let (rig, w) = rig_with(endpoints(&tokens, free_port()), "").await;
    put_secret(
        &rig.probe_secret("acme"),
        &key.service_account_json(&format!("{}/token", tokens.url())),
    )
    .await;
    let server = xoauth2_server(&rig, &tokens, "google").await;
    let cfg = org(server.port, ProbeLogon::GoogleXoauth2);
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();
    let h = windows(&rig, "acme", w, 1).await;
    assert_eq!(outbound(&h), [P::InTime]);
    assert_eq!(tokens.issued(SERVICE_ACCOUNT).await, 1);

    // Gmail no longer accepts the cached token (revoked: the endpoint's key changed). Its
    // refusal starts with a 334 challenge carrying the error, which the logon test reads as a
    // refused token; the token is dropped, and the next test gets a new one and logs on.
    tokens.rotate_key().await;
    let report = rig.runner.deps.logons().test(&cfg, rig.clock.now()).await;
    let e = report.error.clone().expect("refused");
    assert!(e.starts_with("Google refused the access token ("), "{e}");
    assert!(e.contains("domain-wide delegation"), "{e}");
    assert!(report.token && !report.ok, "{report:?}");
    assert_eq!(
        tokens.issued(SERVICE_ACCOUNT).await,
        1,
        "the cached token was used"
    );
    let report = rig.runner.deps.logons().test(&cfg, rig.clock.now()).await;
    assert!(report.ok && report.token, "{report:?}");
    assert_eq!(tokens.issued(SERVICE_ACCOUNT).await, 2);
    assert_eq!(
        server.messages().len(),
        2,
        "the two probes; logon tests send nothing"
    );
}

#[tokio::test]
async fn a_password_refused_with_5_7_30_is_explained_in_the_history_and_the_alert() {
    let rig = Rig::start(t(START), chrono::Duration::seconds(3)).await;
    put_secret(&rig.probe_secret("acme"), "the-password").await;
    let server = MailServer::start(MailServerOptions {
        tls: true,
        auth: Some((PROBE_USER.into(), "the-password".into())),
        relay: vec![(PROBE_DOMAIN.into(), rig.receiving_port)],
        password_refusal: Some(
            "550 5.7.30 Basic authentication is not supported for Client Submission.".into(),
        ),
        ..Default::default()
    })
    .await;
    let mut cfg = probed_org("acme", 1, server.port);
    let admin = format!("{}@elsewhere.test", unique("admin"));
    cfg.alerts.contacts = vec![shared::domain::config::Contact {
        name: "Admin".into(),
        mobile: None,
        email: Some(admin.clone()),
        recovery_notice: true,
    }];
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();
    let w = Window::containing(t(START));
    rig.clock.set(w.start() - chrono::Duration::seconds(1));
    let h = windows(&rig, "acme", w, 1).await;
    let expected = "Exchange Online refused the logon: Basic authentication is not supported (550 5.7.30); switch the probe to OAuth (probe.logon.method oauth2-client-credentials or graph-sendmail)";
    assert_eq!(outbound(&h), [P::NotSent]);
    assert_eq!(reason(&h[0]), expected);
    assert_eq!(h[0].step.value, 1);
    assert!(server.messages().is_empty(), "nothing was sent");

    let mails = emails_to(&admin).await;
    assert_eq!(mails.len(), 1, "one alert");
    let msg = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .expect("mime");
    let text = msg.body_text(0).expect("text").to_string();
    assert!(text.contains(&format!("Why: {expected}")), "{text}");
    assert!(
        !text.contains("Provider:"),
        "no incident without provider health"
    );
}

#[tokio::test]
async fn graph_sendmail_sends_retries_a_throttle_and_explains_a_403() {
    let tokens = TokenServer::start(registry("app-secret-1", None, None)).await;
    let graph_port = free_port();
    let (rig, w) = rig_with(endpoints(&tokens, graph_port), "app-secret-1").await;
    let graph = GraphServer::start(
        graph_port,
        &tokens,
        &[(PROBE_DOMAIN.into(), rig.receiving_port)],
        &[MAILBOX],
        "health-operational.json",
    )
    .await;
    let cfg = org(
        0,
        ProbeLogon::GraphSendmail(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();

    // Sent (202), then throttled once (429, Retry-After: 1) and retried within the window.
    tick(&rig, "acme", w).await;
    graph.set_mode("throttle 1");
    tick(&rig, "acme", w.next()).await;
    let stats = graph.stats().await;
    assert_eq!(
        (stats["sent"].as_u64(), stats["throttled"].as_u64()),
        (Some(2), Some(1))
    );
    // Forbidden (403): explained, the token dropped, the next window fetches another.
    graph.set_mode("forbidden");
    let third = tick(&rig, "acme", Window(w.0 + 2)).await;
    graph.set_mode("accept");
    tick(&rig, "acme", Window(w.0 + 3)).await;
    tick(&rig, "acme", Window(w.0 + 4)).await;
    let h = rig
        .store()
        .history("acme", w, Window(w.0 + 3))
        .await
        .unwrap();
    assert_eq!(outbound(&h), [P::InTime, P::InTime, P::NotSent, P::InTime]);
    let expected = "Microsoft Graph refused to send as the probe mailbox (403 ErrorAccessDenied); grant the app Mail.Send";
    assert!(reason(&h[2]).starts_with(expected), "{}", reason(&h[2]));
    assert!(matches!(third, ProbeResult::NotSent { ref reason } if reason.starts_with(expected)));
    assert_eq!(
        tokens.issued(CLIENT_ID).await,
        2,
        "one token, then another after the 403"
    );
}

#[tokio::test]
async fn an_open_incident_is_shown_in_the_alert_the_portal_and_the_history_and_moves_nothing() {
    let tokens = TokenServer::start(registry("app-secret-1", None, None)).await;
    let graph_port = free_port();
    let (rig, w) = rig_with(endpoints(&tokens, graph_port), "app-secret-1").await;
    let graph = GraphServer::start(
        graph_port,
        &tokens,
        &[(PROBE_DOMAIN.into(), rig.receiving_port)],
        &[MAILBOX],
        "health-incident.json",
    )
    .await;
    // Graph refuses to send (403): the counter climbs as it would without health.
    graph.set_mode("forbidden");
    let mut cfg = org(
        0,
        ProbeLogon::GraphSendmail(app(AppCredential::ClientSecret, None)),
    );
    cfg.monitoring.threshold = 2;
    cfg.probe.as_mut().unwrap().provider_health = true;
    let admin = format!("{}@elsewhere.test", unique("admin"));
    cfg.alerts.contacts = vec![shared::domain::config::Contact {
        name: "Admin".into(),
        mobile: None,
        email: Some(admin.clone()),
        recovery_notice: true,
    }];
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();
    let h = windows(&rig, "acme", w, 3).await;
    // The same counter sequence as without health: +1, +1, held at the threshold.
    let values: Vec<u32> = h.iter().map(|e| e.step.value).collect();
    assert_eq!(values, [1, 2, 2]);
    let described = "Microsoft reports incident EX926792: Users may be unable to send or receive email through the Exchange Online service, since 2026-11-23 11:40 UTC";
    for e in &h {
        assert_eq!(
            e.provider.as_ref().map(|p| p.describe()).as_deref(),
            Some(described)
        );
    }
    // The alert.
    let mails = emails_to(&admin).await;
    assert_eq!(mails.len(), 1);
    let msg = mail_parser::MessageParser::default()
        .parse(mails[0].as_bytes())
        .expect("mime");
    let text = msg.body_text(0).expect("text").to_string();
    assert!(text.contains(&format!("Provider: {described}")), "{text}");
    assert!(
        text.contains(
            "Why: Microsoft Graph refused to send as the probe mailbox (403 ErrorAccessDenied)"
        ),
        "{text}"
    );

    // The portal's status panel, beside the counter.
    let store = rig.store().clone();
    let api = ApiRig::start_with(rig.clock.now(), move |s| s.use_store(store)).await;
    let link = api
        .env
        .link_keys
        .sign("acme", "ep1-0", api.clock.now())
        .expect("sign");
    let (status, page) = portal_support::get(&api.url(&format!("/l/{link}"))).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<dd id=\"provider\">{described}</dd>")),
        "{page}"
    );

    // Health back to normal: nothing shown, the counter untouched by it.
    graph.set_health("health-operational.json");
    let h = windows(&rig, "acme", Window(w.0 + 3), 1).await;
    assert_eq!(h[0].provider, None);
    assert_eq!(h[0].step.value, 2);
}

#[tokio::test]
async fn a_day_with_the_oauth_probe_gives_the_password_probes_counter() {
    let day = t(integration_tests::day::DAY);
    let tokens = TokenServer::start(registry("app-secret-1", None, None)).await;
    let rig = Rig::start_oauth(
        day - chrono::Duration::seconds(1),
        chrono::Duration::seconds(2),
        endpoints(&tokens, free_port()),
    )
    .await;
    put_secret(&rig.probe_secret("acme"), "app-secret-1").await;
    let mut server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, day).await.unwrap();

    let history = integration_tests::day::run_day(&rig, "acme", &mut server).await;
    let got: Vec<u32> = history.iter().map(|h| h.step.value).collect();
    assert_eq!(got, integration_tests::day::expected_counter());
    // A token an hour (3599 s, refreshed 5 minutes early): 25 over the day, not 720.
    let issued = tokens.issued(CLIENT_ID).await;
    assert!((24..=26).contains(&issued), "{issued} tokens");
    // The outage's windows say why: the server could not be reached, not a logon problem.
    assert!(
        reason(&history[361]).contains("could not connect"),
        "{}",
        reason(&history[361])
    );
}

#[tokio::test]
async fn the_logon_test_route_gets_a_token_logs_on_and_sends_nothing() {
    let cert = AppKey::generate();
    let sa = AppKey::generate();
    let google_user = "continuity-probe@globex.test";
    let tokens =
        TokenServer::start(registry("unused", Some(&cert), Some((&sa, &[google_user])))).await;
    let exchange = xoauth2_relaying(&tokens, "microsoft", vec![]).await;
    let gmail = xoauth2_relaying(&tokens, "google", vec![]).await;
    let basic_off = MailServer::start(MailServerOptions {
        tls: true,
        auth: Some((PROBE_USER.into(), "the-password".into())),
        password_refusal: Some(
            "550 5.7.30 Basic authentication is not supported for Client Submission.".into(),
        ),
        ..Default::default()
    })
    .await;
    let oauth = endpoints(&tokens, free_port());
    // The API as configured from its environment: the token endpoints' settings, and
    // SMTP_CA_BUNDLE naming the test servers' CA.
    let api = ApiRig::start_configured(t(START), |s| s.oauth = oauth, |_| {}).await;
    let prefix = api.state.settings.probe_secret_prefix.clone();
    let secret = |org: &str| shared::domain::probe::probe_secret_name(&prefix, org);
    let now = api.clock.now();

    // acme: an Entra ID app with a certificate, over SMTP XOAUTH2.
    let acme = org(
        exchange.port,
        ProbeLogon::Oauth2ClientCredentials(app(
            AppCredential::Certificate,
            Some(&cert.thumbprint),
        )),
    );
    put_secret(&secret("acme"), &cert.key_pem).await;
    // globex: a Google service account acting for its probe mailbox.
    let mut globex = probed_org("globex", 3, gmail.port);
    let p = globex.probe.as_mut().unwrap();
    p.username = google_user.into();
    p.logon = ProbeLogon::GoogleXoauth2;
    put_secret(
        &secret("globex"),
        &sa.service_account_json(&format!("{}/token", tokens.url())),
    )
    .await;
    // initech: a password, which Exchange Online no longer takes.
    let initech = probed_org("initech", 3, basic_off.port);
    put_secret(&secret("initech"), "the-password").await;
    // umbrella: the inbound check only, no probe mailbox.
    let umbrella = inbound_org("umbrella", 3);
    for c in [&acme, &globex, &initech, &umbrella] {
        api.store().put_config(c, now).await.unwrap();
    }

    let test = |token: Option<String>| {
        let mut r = ApiRig::http().post(api.url("/api/v1/admin/probe-test"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.expect("POST probe-test");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let admin = |org: &str| Some(api.token(&format!("admin@{org}.test"), true));

    let (status, v) = test(admin("acme")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"method": "oauth2-client-credentials", "secret": secret("acme"), "token": true, "ok": true})
    );
    let (status, v) = test(admin("globex")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"method": "google-xoauth2", "secret": secret("globex"), "token": true, "ok": true})
    );
    let (status, v) = test(admin("initech")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["ok"].as_bool(), v["token"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    assert_eq!(
        v["error"],
        "Exchange Online refused the logon: Basic authentication is not supported (550 5.7.30); switch the probe to OAuth (probe.logon.method oauth2-client-credentials or graph-sendmail)"
    );

    // Refusals: no probe mailbox (422), not an administrator (403), not signed in (401).
    let (status, v) = test(admin("umbrella")).await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v.to_string().contains("no probe mailbox is configured"),
        "{v}"
    );
    let (status, _) = test(Some(api.token("someone@acme.test", false))).await;
    assert_eq!(status, 403);
    let (status, _) = test(None).await;
    assert_eq!(status, 401);

    // Again: the same answer, from the cached token.
    let (status, v) = test(admin("acme")).await;
    assert_eq!((status, v["ok"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(tokens.issued(CLIENT_ID).await, 1);
    assert_eq!(tokens.issued(SERVICE_ACCOUNT).await, 1);

    // Nothing sent anywhere, nothing changed.
    assert!(
        exchange.messages().is_empty()
            && gmail.messages().is_empty()
            && basic_off.messages().is_empty()
    );
    for c in [&acme, &globex, &initech, &umbrella] {
        assert_eq!(
            api.store().get_config(&c.org_id).await.unwrap().as_ref(),
            Some(c)
        );
    }
}

#[tokio::test]
async fn concurrent_logons_and_duplicate_runs_fetch_one_token_per_container() {
    let tokens = TokenServer::start(registry("app-secret-1", None, None)).await;
    let oauth = endpoints(&tokens, free_port());
    let (rig, w) = rig_with(oauth.clone(), "app-secret-1").await;
    let server = xoauth2_server(&rig, &tokens, "microsoft").await;
    let cfg = org(
        server.port,
        ProbeLogon::Oauth2ClientCredentials(app(AppCredential::ClientSecret, None)),
    );
    rig.store().put_config(&cfg, rig.clock.now()).await.unwrap();

    // Eight logon tests at once in one container, its cache empty: one token request, the
    // others wait for it and use it.
    let logons = rig.runner.deps.logons();
    let now = rig.clock.now();
    let reports = futures::future::join_all((0..8).map(|_| logons.test(&cfg, now))).await;
    assert!(reports.iter().all(|r| r.ok && r.token), "{reports:?}");
    assert_eq!(tokens.issued(CLIENT_ID).await, 1);
    assert_eq!(rig.runner.deps.token_cache.fetches(), 1);

    // Window w's run delivered four times at once (at-least-once scheduling), to four new
    // containers with empty caches: the one run that claims the probe fetches a token and
    // sends; the others fetch nothing.
    rig.clock.set(w.start());
    let mut containers = Vec::new();
    for _ in 0..4 {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(rig.clock.clone());
        let mut d = deps_oauth(
            rig.store().clone(),
            clock,
            std::time::Duration::from_secs(3),
            &rig.alerts,
            oauth.clone(),
        )
        .await;
        d.probe_secret_prefix = rig.runner.deps.probe_secret_prefix.clone();
        containers.push(d);
    }
    let runs = futures::future::join_all(
        containers
            .iter()
            .map(|d| async move { d.monitor().run(w.start()).await }),
    )
    .await;
    let sent: usize = runs
        .iter()
        .map(|r| r.as_ref().expect("run").probes_sent)
        .sum();
    assert_eq!(sent, 1, "one probe for the window");
    let fetched: u64 = containers.iter().map(|d| d.token_cache.fetches()).sum();
    assert_eq!(fetched, 1);
    assert_eq!(tokens.issued(CLIENT_ID).await, 2);

    // The probe arrives (waited for in real time, as the runner waits after its own runs) and
    // is judged in time; the logon tests sent nothing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rig
        .store()
        .probe("acme", w)
        .await
        .expect("probe")
        .and_then(|p| p.arrived_at)
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe did not arrive"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let h = windows(&rig, "acme", w, 1).await;
    assert_eq!(outbound(&h), [P::InTime]);
    assert_eq!(
        server.messages().len(),
        2,
        "window w's probe and the next window's"
    );
}
