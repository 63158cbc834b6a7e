//! Tests of the configuration: every mistake names its field, older stored forms still load; the
//! [`sample`] is what other modules' tests start from.

use super::*;

/// A valid configuration with every section filled in.
pub fn sample() -> OrgConfig {
    OrgConfig {
        org_id: "acme".into(),
        name: "Acme Ltd".into(),
        domains: vec!["acme.example".into()],
        routes: vec![Route {
            host: "mail.acme.example".into(),
            port: 25,
            tls: RouteTls::Opportunistic,
        }],
        monitoring: Monitoring {
            enabled: true,
            inbound_check: true,
            outbound_check: true,
            threshold: 3,
            acceptable_latency_secs: 60,
        },
        probe: Some(ProbeMailbox {
            host: "mail.acme.example".into(),
            port: 587,
            tls: SubmissionTls::Starttls,
            username: "continuity-probe".into(),
            logon: ProbeLogon::Password,
            password_secret: None,
            from_address: "continuity-probe@acme.example".into(),
            probe_address: "probe@probe.continuity.example".into(),
            provider_health: false,
        }),
        alerts: AlertSettings {
            contacts: vec![Contact {
                name: "Ops".into(),
                mobile: Some("+447700900123".into()),
                email: Some("ops@acme-backup.example".into()),
                recovery_notice: true,
            }],
            queue: Some(QueueAlert {
                max_count: 500,
                max_age_minutes: 30,
            }),
            notify_users: false,
        },
        queue: QueueSettings::default(),
        delivery: DeliverySettings::default(),
        time_zone: "Europe/London".into(),
        continuity: ContinuitySettings::default(),
        sign_in: Default::default(),
    }
}

fn fields(c: &OrgConfig) -> Vec<String> {
    match c.validate() {
        Ok(()) => vec![],
        Err(e) => e.0.into_iter().map(|f| f.field).collect(),
    }
}

#[test]
fn sample_is_valid() {
    assert_eq!(sample().validate(), Ok(()));
}

#[test]
fn each_mistake_names_its_field() {
    type Mutation = Box<dyn Fn(&mut OrgConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("org_id", Box::new(|c| c.org_id = "Acme Corp".into())),
        ("name", Box::new(|c| c.name = "  ".into())),
        ("domains", Box::new(|c| c.domains.clear())),
        (
            "domains",
            Box::new(|c| {
                c.domains = (0..=MAX_DOMAINS)
                    .map(|i| format!("d{i}.acme.example"))
                    .collect()
            }),
        ),
        (
            "domains[0]",
            Box::new(|c| c.domains[0] = "not a domain".into()),
        ),
        ("routes", Box::new(|c| c.routes.clear())),
        ("routes[0].port", Box::new(|c| c.routes[0].port = 0)),
        (
            "routes[0].host",
            Box::new(|c| c.routes[0].host = "bad host!".into()),
        ),
        (
            "monitoring.threshold",
            Box::new(|c| c.monitoring.threshold = 0),
        ),
        (
            "monitoring.threshold",
            Box::new(|c| c.monitoring.threshold = 10_000),
        ),
        (
            "monitoring.acceptable_latency_secs",
            Box::new(|c| c.monitoring.acceptable_latency_secs = 120),
        ),
        (
            "monitoring.acceptable_latency_secs",
            Box::new(|c| c.monitoring.acceptable_latency_secs = 0),
        ),
        (
            "monitoring",
            Box::new(|c| {
                c.monitoring.inbound_check = false;
                c.monitoring.outbound_check = false;
            }),
        ),
        ("probe", Box::new(|c| c.probe = None)),
        (
            "probe.password_secret",
            Box::new(|c| {
                c.probe.as_mut().unwrap().password_secret =
                    Some("continuity/other-org/probe".into())
            }),
        ),
        (
            "probe.from_address",
            Box::new(|c| c.probe.as_mut().unwrap().from_address = "probe@elsewhere.example".into()),
        ),
        (
            "probe.probe_address",
            Box::new(|c| c.probe.as_mut().unwrap().probe_address = "probe@acme.example".into()),
        ),
        (
            "probe.probe_address",
            Box::new(|c| c.probe.as_mut().unwrap().probe_address = "p+x@probe.example".into()),
        ),
        (
            "probe.username",
            Box::new(|c| c.probe.as_mut().unwrap().username = "".into()),
        ),
        (
            "queue.retention_hours",
            Box::new(|c| c.queue.retention_hours = 0),
        ),
        (
            "queue.retention_hours",
            Box::new(|c| c.queue.retention_hours = MAX_RETENTION_HOURS + 1),
        ),
        (
            "queue.backoff_initial_minutes",
            Box::new(|c| c.queue.backoff_initial_minutes = 0),
        ),
        (
            "queue.backoff_max_minutes",
            Box::new(|c| c.queue.backoff_max_minutes = 31),
        ),
        (
            "queue.backoff_max_minutes",
            Box::new(|c| {
                c.queue.backoff_initial_minutes = 10;
                c.queue.backoff_max_minutes = 5;
            }),
        ),
        (
            "queue.drain_per_minute",
            Box::new(|c| c.queue.drain_per_minute = 0),
        ),
        (
            "delivery.timeout_secs",
            Box::new(|c| c.delivery.timeout_secs = 0),
        ),
        (
            "delivery.timeout_secs",
            Box::new(|c| c.delivery.timeout_secs = 121),
        ),
        (
            // Three routes of 41 s each cannot all be tried within the 120 s budget.
            "delivery.timeout_secs",
            Box::new(|c| {
                let r = c.routes[0].clone();
                c.routes = vec![r.clone(), r.clone(), r];
                c.delivery.timeout_secs = 41;
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut c = sample();
        mutate(&mut c);
        let got = fields(&c);
        assert!(
            got.contains(&field.to_string()),
            "mutation for {field}: {got:?}"
        );
        // Emptying the domains also orphans the probe sender; every other mistake stands alone.
        if !field.starts_with("domains") {
            assert_eq!(got.len(), 1, "mutation for {field}: {got:?}");
        }
        let msg = c.validate().unwrap_err().to_string();
        assert!(msg.contains(field), "{msg}");
    }
}

#[test]
fn all_problems_reported_together() {
    let mut c = sample();
    c.monitoring.threshold = 0;
    c.routes.clear();
    assert_eq!(fields(&c), vec!["routes", "monitoring.threshold"]);
}

#[test]
fn outbound_off_needs_no_probe() {
    let mut c = sample();
    c.monitoring.outbound_check = false;
    c.probe = None;
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn subdomains_are_owned() {
    let c = sample();
    assert!(c.owns_address("x@eu.acme.example"));
    assert!(c.owns_address("x@ACME.example"));
    assert!(!c.owns_address("x@notacme.example"));
}

#[test]
fn own_domain_alert_address_is_refused_with_a_clear_message() {
    let mut c = sample();
    c.alerts.contacts[0].email = Some("ops@acme.example".into());
    let msg = c.validate().unwrap_err().to_string();
    assert!(
        msg.contains(
            "alerts.contacts[0].email: ops@acme.example is on the organisation's own domain"
        ),
        "{msg}"
    );
}

#[test]
fn configurations_stored_before_the_queue_settings_still_load() {
    let mut v = serde_json::to_value(sample()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("queue");
    obj.remove("delivery");
    let c: OrgConfig = serde_json::from_value(v).unwrap();
    assert_eq!(c.queue.retention_hours, 96);
    assert!(!c.queue.paused);
    assert!(c.queue.backoff_max_minutes <= MAX_BACKOFF_MINUTES);
    assert!(!c.delivery.expand_distribution_lists);
    assert_eq!(c.validate(), Ok(()));
    // A partial section fills in the rest.
    let mut v = serde_json::to_value(sample()).unwrap();
    v["queue"] = serde_json::json!({ "paused": true });
    let c: OrgConfig = serde_json::from_value(v).unwrap();
    assert!(c.queue.paused);
    assert_eq!(
        c.queue.drain_per_minute,
        QueueSettings::default().drain_per_minute
    );
}

#[test]
fn configurations_without_alerts_still_load() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v.as_object_mut().unwrap().remove("alerts");
    let c: OrgConfig = serde_json::from_value(v).unwrap();
    assert_eq!(c.alerts, AlertSettings::default());
}

#[test]
fn unknown_fields_are_refused() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["monitoring"]["treshold"] = 3.into();
    let e = serde_json::from_value::<OrgConfig>(v)
        .unwrap_err()
        .to_string();
    assert!(e.contains("treshold"), "{e}");
}

/// A Microsoft app as the OAuth methods configure it.
fn app() -> MicrosoftApp {
    MicrosoftApp {
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".into(),
        credential: AppCredential::ClientSecret,
        certificate_thumbprint: None,
    }
}

#[test]
fn probe_logon_methods_are_checked_field_by_field() {
    let with = |logon: ProbeLogon, f: &dyn Fn(&mut ProbeMailbox)| {
        let mut c = sample();
        let p = c.probe.as_mut().unwrap();
        p.username = "continuity-probe@acme.example".into();
        p.logon = logon;
        f(p);
        fields(&c)
    };
    assert!(with(ProbeLogon::Oauth2ClientCredentials(app()), &|_| {}).is_empty());
    assert!(with(ProbeLogon::GraphSendmail(app()), &|p| p.host =
        String::new())
    .is_empty());
    assert!(with(ProbeLogon::GoogleXoauth2, &|_| {}).is_empty());
    let mut bad = app();
    bad.tenant = "not a tenant".into();
    bad.client_id = "acme-app".into();
    assert_eq!(
        with(ProbeLogon::Oauth2ClientCredentials(bad), &|_| {}),
        ["probe.logon.tenant", "probe.logon.client_id"]
    );
    let mut cert = app();
    cert.credential = AppCredential::Certificate;
    assert_eq!(
        with(ProbeLogon::GraphSendmail(cert.clone()), &|_| {}),
        ["probe.logon.certificate_thumbprint"]
    );
    cert.certificate_thumbprint = Some("A9E2A7B0C3D4E5F60718293A4B5C6D7E8F901234".into());
    assert!(with(ProbeLogon::GraphSendmail(cert), &|_| {}).is_empty());
    assert_eq!(
        with(ProbeLogon::GoogleXoauth2, &|p| p.username = "probe".into()),
        ["probe.username"]
    );
    assert_eq!(
        with(ProbeLogon::Password, &|p| p.provider_health = true),
        ["probe.provider_health"]
    );
    assert!(
        with(ProbeLogon::GraphSendmail(app()), &|p| p.provider_health =
            true)
        .is_empty()
    );
}

#[test]
fn a_configuration_cannot_name_a_secret() {
    // The old field, written now: refused with the way forward, whatever it names.
    for name in [
        "continuity/acme/probe",
        "continuity/other-org/probe",
        "continuity-link-signing-key",
    ] {
        let mut c = sample();
        c.probe.as_mut().unwrap().password_secret = Some(name.into());
        let e = c.validate().unwrap_err();
        let m = &e.for_field("probe.password_secret").unwrap().message;
        assert!(
            m.contains("no longer accepted") && m.contains("<org_id>/probe"),
            "{m}"
        );
    }
    // No other field of the probe or its logon takes a secret's name.
    let json = serde_json::to_value(sample()).unwrap();
    let mut probe = json["probe"].clone();
    probe["logon"] = serde_json::json!({"method": "password", "secret": "continuity/other/probe"});
    assert!(serde_json::from_value::<ProbeMailbox>(probe).is_err());
    // A stored configuration of an older version still loads; the field is dropped on read.
    let mut stored = json.clone();
    stored["probe"]["password_secret"] = "continuity/acme/probe".into();
    stored["probe"].as_object_mut().unwrap().remove("logon");
    let mut c: OrgConfig = serde_json::from_value(stored).unwrap();
    assert!(c.forget_legacy_fields());
    assert_eq!(c, sample());
    assert!(c.validate().is_ok());
}

#[test]
fn routes_times_the_timeout_must_fit_the_delivery_budget() {
    let mut c = sample();
    let r = c.routes[0].clone();
    c.routes = vec![r.clone(), r.clone(), r];
    c.delivery.timeout_secs = 40;
    assert!(fields(&c).is_empty(), "3 x 40 s = 120 s fits");
    c.delivery.timeout_secs = 41;
    let e = c.validate().unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("3 routes x 41 s is 123 s"), "{msg}");
    assert!(msg.contains("at most 40 s"), "{msg}");
}
