//! [`OrgConfig::validate`], one section at a time: each check adds the problems it finds, named
//! by the field's path, to one list, in the order of the fields; the whole list is the answer.

use super::syntax::{is_address, is_domain, is_e164, is_host, is_org_id};
use super::{
    AlertSettings, ConfigErrors, ContinuitySettings, DeliverySettings, FieldError, Monitoring,
    OrgConfig, QueueSettings, Route, SignInSettings, MAX_BACKOFF_MINUTES, MAX_CONTACTS,
    MAX_DELIVERY_TIMEOUT_SECS, MAX_DOMAINS, MAX_EVENT_MINUTES, MAX_RETENTION_HOURS,
    MAX_SMS_PER_DAY, MAX_THRESHOLD,
};
use crate::domain::delivery::DELIVERY_BUDGET_SECS;
use crate::domain::window::WINDOW_SECS;

/// The problems found so far.
#[derive(Default)]
pub(super) struct Problems(Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Checks every section of `c`.
pub(super) fn validate(c: &OrgConfig) -> Result<(), ConfigErrors> {
    let mut p = Problems::default();
    identity(c, &mut p);
    domains(&c.domains, &mut p);
    routes(&c.routes, &mut p);
    monitoring(&c.monitoring, &mut p);
    super::probe::check(c, &mut p);
    alerts(c, &c.alerts, &mut p);
    queue(&c.queue, &mut p);
    time_zone(&c.time_zone, &mut p);
    continuity(&c.continuity, &mut p);
    delivery(&c.delivery, c.routes.len(), &mut p);
    sign_in(&c.sign_in, &mut p);
    if p.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(p.0))
    }
}

/// `org_id` and `name`.
fn identity(c: &OrgConfig, p: &mut Problems) {
    if !is_org_id(&c.org_id) {
        p.add(
            "org_id",
            "must be 1-63 lower-case letters, digits or inner hyphens",
        );
    }
    if c.name.trim().is_empty() {
        p.add("name", "must not be empty");
    } else if c.name.chars().count() > 100 {
        p.add("name", "must be at most 100 characters");
    } else if c.name.chars().any(char::is_control) {
        p.add("name", "must not contain control characters");
    }
}

/// `domains`: at least one, at most [`MAX_DOMAINS`], each valid and listed once.
fn domains(domains: &[String], p: &mut Problems) {
    if domains.is_empty() {
        p.add("domains", "at least one domain is required");
    } else if domains.len() > MAX_DOMAINS {
        p.add(
            "domains",
            format!("at most {MAX_DOMAINS} domains (a configuration and its domains are stored in one transaction)"),
        );
    }
    for (i, d) in domains.iter().enumerate() {
        if !is_domain(d) {
            p.add(
                format!("domains[{i}]"),
                format!("{d:?} is not a valid domain name"),
            );
        } else if domains[..i].iter().any(|o| o.eq_ignore_ascii_case(d)) {
            p.add(format!("domains[{i}]"), format!("{d:?} is listed twice"));
        }
    }
}

/// `routes`: at least one, each a host and a port.
fn routes(routes: &[Route], p: &mut Problems) {
    if routes.is_empty() {
        p.add("routes", "at least one delivery route is required");
    }
    for (i, r) in routes.iter().enumerate() {
        if !is_host(&r.host) {
            p.add(
                format!("routes[{i}].host"),
                format!("{:?} is not a host name or IP address", r.host),
            );
        }
        if r.port == 0 {
            p.add(format!("routes[{i}].port"), "must be between 1 and 65535");
        }
    }
}

/// `monitoring`: the threshold, the probe's acceptable latency, at least one check when on.
fn monitoring(m: &Monitoring, p: &mut Problems) {
    if m.threshold < 1 {
        p.add("monitoring.threshold", "must be at least 1");
    } else if m.threshold > MAX_THRESHOLD {
        p.add(
            "monitoring.threshold",
            format!("must be at most {MAX_THRESHOLD} (one day of windows)"),
        );
    }
    if m.acceptable_latency_secs < 1 || i64::from(m.acceptable_latency_secs) >= WINDOW_SECS {
        p.add(
            "monitoring.acceptable_latency_secs",
            format!("must be at least 1 and shorter than a window ({WINDOW_SECS} s): the probe is judged at the next window start"),
        );
    }
    if m.enabled && !m.inbound_check && !m.outbound_check {
        p.add(
            "monitoring",
            "monitoring is on but both checks are off: turn on at least one check",
        );
    }
}

/// `alerts`: at most [`MAX_CONTACTS`] contacts, each reachable somewhere the organisation's
/// own mail is not; the queue condition's limits.
fn alerts(c: &OrgConfig, a: &AlertSettings, p: &mut Problems) {
    if a.contacts.len() > MAX_CONTACTS {
        p.add(
            "alerts.contacts",
            format!("at most {MAX_CONTACTS} contacts"),
        );
    }
    for (i, contact) in a.contacts.iter().enumerate() {
        let f = |name: &str| format!("alerts.contacts[{i}].{name}");
        if contact.name.trim().is_empty()
            || contact.name.chars().count() > 60
            || contact.name.chars().any(char::is_control)
        {
            p.add(
                f("name"),
                "must be 1-60 characters without control characters",
            );
        }
        if contact.mobile.is_none() && contact.email.is_none() {
            p.add(
                format!("alerts.contacts[{i}]"),
                "give a mobile number, an email address, or both",
            );
        }
        if let Some(m) = &contact.mobile {
            if !is_e164(m) {
                p.add(f("mobile"), format!("{m:?} is not an E.164 number (+ country code and number, digits only, e.g. +447700900123)"));
            }
        }
        if let Some(e) = &contact.email {
            if !is_address(e) {
                p.add(f("email"), format!("{e:?} is not an email address"));
            } else if c.owns_address(e) {
                p.add(
                    f("email"),
                    format!("{e} is on the organisation's own domain: alerts must reach you while that mail is down, so give an address elsewhere"),
                );
            }
        }
    }
    if let Some(q) = &a.queue {
        if q.max_count < 1 {
            p.add("alerts.queue.max_count", "must be at least 1");
        }
        if q.max_age_minutes < 1 {
            p.add("alerts.queue.max_age_minutes", "must be at least 1");
        }
    }
}

/// `queue`: retention within the raw messages' lifetime, backoff within
/// [`MAX_BACKOFF_MINUTES`], a drain rate.
fn queue(q: &QueueSettings, p: &mut Problems) {
    if q.retention_hours < 1 || q.retention_hours > MAX_RETENTION_HOURS {
        p.add(
            "queue.retention_hours",
            format!(
                "must be between 1 and {MAX_RETENTION_HOURS} (the raw message is kept 30 days)"
            ),
        );
    }
    if q.backoff_initial_minutes < 1 || q.backoff_initial_minutes > MAX_BACKOFF_MINUTES {
        p.add(
            "queue.backoff_initial_minutes",
            format!("must be between 1 and {MAX_BACKOFF_MINUTES}"),
        );
    }
    if q.backoff_max_minutes > MAX_BACKOFF_MINUTES {
        p.add(
            "queue.backoff_max_minutes",
            format!("must be at most {MAX_BACKOFF_MINUTES}: the server is the organisation's own, retries must stay frequent"),
        );
    } else if q.backoff_max_minutes < q.backoff_initial_minutes {
        p.add(
            "queue.backoff_max_minutes",
            "must not be less than queue.backoff_initial_minutes",
        );
    }
    if q.drain_per_minute < 1 || q.drain_per_minute > 10_000 {
        p.add(
            "queue.drain_per_minute",
            "must be between 1 and 10000 messages per minute",
        );
    }
}

/// `time_zone`: an IANA name.
fn time_zone(zone: &str, p: &mut Problems) {
    if zone.parse::<chrono_tz::Tz>().is_err() {
        p.add(
            "time_zone",
            format!("{zone:?} is not an IANA time zone name (for example Europe/London or UTC)"),
        );
    }
}

/// `continuity`: automatic activation's delay and duration.
fn continuity(c: &ContinuitySettings, p: &mut Problems) {
    if let Some(a) = &c.auto_activate {
        if a.after_minutes < 2 || a.after_minutes > 24 * 60 {
            p.add(
                "continuity.auto_activate.after_minutes",
                "must be between 2 and 1440 (a window is 2 minutes)",
            );
        }
        if a.duration_minutes < 10 || a.duration_minutes > MAX_EVENT_MINUTES {
            p.add(
                "continuity.auto_activate.duration_minutes",
                format!("must be between 10 and {MAX_EVENT_MINUTES}"),
            );
        }
    }
}

/// `delivery`: the SMTP step timeout, which every route must be able to spend within one
/// message's delivery budget (a server hanging at each route still gets its failure recorded
/// and the message requeued before the function's own timeout).
fn delivery(d: &DeliverySettings, routes: usize, p: &mut Problems) {
    if d.timeout_secs < 1 || d.timeout_secs > MAX_DELIVERY_TIMEOUT_SECS {
        p.add(
            "delivery.timeout_secs",
            format!("must be between 1 and {MAX_DELIVERY_TIMEOUT_SECS}"),
        );
    } else if routes as u64 * u64::from(d.timeout_secs) > u64::from(DELIVERY_BUDGET_SECS) {
        p.add(
            "delivery.timeout_secs",
            format!(
                "{routes} routes x {} s is {} s: a delivery over every route must fit in {DELIVERY_BUDGET_SECS} s \
                 (so that a hanging server is given up, recorded and retried before the function ends); \
                 lower it to at most {} s or use fewer routes",
                d.timeout_secs,
                routes as u64 * u64::from(d.timeout_secs),
                u64::from(DELIVERY_BUDGET_SECS) / routes.max(1) as u64
            ),
        );
    }
}

/// `sign_in`: the daily SMS budget.
fn sign_in(s: &SignInSettings, p: &mut Problems) {
    if s.sms_per_day > MAX_SMS_PER_DAY {
        p.add(
            "sign_in.sms_per_day",
            format!("must be at most {MAX_SMS_PER_DAY} (0: codes by email only)"),
        );
    }
}
