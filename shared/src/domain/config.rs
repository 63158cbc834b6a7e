//! An organisation's configuration and its validation.
//!
//! Validation collects every problem at once and names each field by its path
//! (`monitoring.threshold`, `routes[1].port`), so that an administrator fixing a file or an API
//! call sees everything wrong in one answer.

use crate::domain::window::WINDOW_SECS;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An organisation's configuration, as stored and as administrators write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    /// Stable identifier: lower-case letters, digits and inner hyphens, at most 63 characters.
    pub org_id: String,
    /// Display name, shown in alerts and the portal.
    pub name: String,
    /// The organisation's mail domains (its MX points at the service).
    pub domains: Vec<String>,
    /// Delivery routes to the organisation's server, tried in order.
    pub routes: Vec<Route>,
    pub monitoring: Monitoring,
    /// The mailbox the outbound check logs on to; required when the outbound check is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeMailbox>,
    /// Who is told, and when (A1-A6, D8).
    #[serde(default)]
    pub alerts: AlertSettings,
    /// The inbound queue (Q3-Q5): retention, pause, backoff, drain rate.
    #[serde(default)]
    pub queue: QueueSettings,
    /// Inbound delivery (Q2, U6): SMTP timeouts and distribution-list expansion.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// The organisation's time zone (an IANA name such as `Europe/London`): the portal shows
    /// times in it beside UTC.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Continuity mode: automatic activation (P9) and BCC to the server (U8).
    #[serde(default)]
    pub continuity: ContinuitySettings,
}

fn utc() -> String {
    "UTC".into()
}

/// How continuity mode behaves (P9, U8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContinuitySettings {
    /// Activate continuity mode by itself when the condition has held this long (P9); off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_activate: Option<AutoActivation>,
    /// During continuity, queue a copy of what each user sends for their own mailbox on the
    /// organisation's server (U8).
    pub bcc_to_server: bool,
}

/// Automatic activation (P9): the condition (counter at its threshold) held for `after_minutes`
/// activates continuity mode for `duration_minutes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoActivation {
    pub after_minutes: u32,
    pub duration_minutes: u32,
}

/// The longest continuity event one action may set (activate or extend by at most this).
pub const MAX_EVENT_MINUTES: u32 = 14 * 24 * 60;

/// How the inbound queue treats mail the organisation's server did not take (Q3-Q5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// A message still queued this long after it arrived is bounced to its sender (Q3).
    pub retention_hours: u32,
    /// Paused: nothing is delivered or bounced; mail queues indefinitely (Q4).
    pub paused: bool,
    /// First retry this long after the server stopped taking mail; doubled after each failed retry ...
    pub backoff_initial_minutes: u32,
    /// ... up to this (at most 30: the server is the organisation's own).
    pub backoff_max_minutes: u32,
    /// At most this many queued messages are delivered per minute, so that a recovering server
    /// is not flooded (Q5).
    pub drain_per_minute: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            retention_hours: 96,
            paused: false,
            backoff_initial_minutes: 1,
            backoff_max_minutes: 30,
            drain_per_minute: 60,
        }
    }
}

/// How inbound mail reaches the organisation's server and mailboxes (Q2, U6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Each SMTP step (connect, each command, the end of DATA) must answer within this; a route
    /// that does not has failed.
    pub timeout_secs: u32,
    /// File mail sent to a distribution list for each of its members (membership as of the last
    /// directory import). Delivery to the server is unchanged: the server expands its own lists.
    pub expand_distribution_lists: bool,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout_secs: 30,
            expand_distribution_lists: false,
        }
    }
}

/// Most domains one organisation may list.
pub const MAX_DOMAINS: usize = 48;
/// The longest retention accepted: the raw message's bucket keeps mail for 30 days.
pub const MAX_RETENTION_HOURS: u32 = 30 * 24;
/// Retries back off to at most this (Q3).
pub const MAX_BACKOFF_MINUTES: u32 = 30;
/// The longest SMTP step timeout accepted.
pub const MAX_DELIVERY_TIMEOUT_SECS: u32 = 300;

/// Alert contacts and conditions (A1-A6, D8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Administrators to alert.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// The inbound queue as a condition of its own (D8); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueAlert>,
    /// Tell users by SMS when an event starts and ends (A6).
    #[serde(default)]
    pub notify_users: bool,
}

/// An administrator who receives alerts: by SMS, by email, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    /// Mobile number in E.164 form (`+447700900123`): gets SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// An alternate address, not on the organisation's own domains: gets email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Also tell this contact when the counter is back at 0 (A5).
    #[serde(default = "yes")]
    pub recovery_notice: bool,
}

fn yes() -> bool {
    true
}

/// When the inbound queue alone is a condition (D8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueAlert {
    /// More messages waiting than this.
    pub max_count: u64,
    /// The oldest waiting longer than this.
    pub max_age_minutes: u32,
}

/// Most contacts an organisation may list.
pub const MAX_CONTACTS: usize = 20;

/// One SMTP delivery route to the organisation's server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub host: String,
    pub port: u16,
    pub tls: RouteTls,
}

/// How a delivery route uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteTls {
    /// Plain SMTP (a route inside a private network).
    None,
    /// STARTTLS when offered, plain otherwise.
    Opportunistic,
    /// STARTTLS or the route fails.
    StarttlsRequired,
}

/// Which checks run and how the counter reacts (D2-D5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Monitoring on: the organisation is evaluated every window.
    pub enabled: bool,
    /// The organic inbound check (D2).
    pub inbound_check: bool,
    /// The synthetic outbound check (D3).
    pub outbound_check: bool,
    /// The counter's ceiling; an alert is due when the counter reaches it (D5, A1).
    pub threshold: u32,
    /// A probe that arrived later than this after it was sent counts as late (D3).
    pub acceptable_latency_secs: u32,
}

/// The mailbox on the organisation's server that sends the probe (D3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeMailbox {
    /// SMTP submission host of the organisation's server.
    pub host: String,
    pub port: u16,
    pub tls: SubmissionTls,
    /// The login name for SMTP AUTH.
    pub username: String,
    /// Name of the Secrets Manager secret that holds the password (never the password itself).
    pub password_secret: String,
    /// The sender address of the probe: the mailbox's own address.
    pub from_address: String,
    /// Where probes go: an address at the service's receiving domain. Each probe is sent to a
    /// unique sub-address of it (`local+token@domain`).
    pub probe_address: String,
}

/// How the probe mailbox's submission port uses TLS. Both encrypt before AUTH: a password never
/// crosses the network in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmissionTls {
    /// Port 587 style: plain greeting, then STARTTLS, required.
    Starttls,
    /// Port 465 style: TLS from the first byte.
    Implicit,
}

/// One problem with a configuration, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub struct ConfigErrors(pub Vec<FieldError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        write!(f, "invalid configuration: {}", parts.join("; "))
    }
}

impl ConfigErrors {
    /// The error for `field`, if any.
    pub fn for_field(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }
}

/// The largest threshold accepted: a day of windows. Beyond that an alert would come too late to matter.
pub const MAX_THRESHOLD: u32 = 720;

impl OrgConfig {
    /// Checks the whole configuration; every problem is reported.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errs = Vec::new();
        let mut err = |field: &str, message: String| {
            errs.push(FieldError {
                field: field.to_string(),
                message,
            })
        };

        if !is_org_id(&self.org_id) {
            err(
                "org_id",
                "must be 1-63 lower-case letters, digits or inner hyphens".into(),
            );
        }
        if self.name.trim().is_empty() {
            err("name", "must not be empty".into());
        } else if self.name.chars().count() > 100 {
            err("name", "must be at most 100 characters".into());
        } else if self.name.chars().any(char::is_control) {
            err("name", "must not contain control characters".into());
        }
        if self.domains.is_empty() {
            err("domains", "at least one domain is required".into());
        } else if self.domains.len() > MAX_DOMAINS {
            err(
                "domains",
                format!("at most {MAX_DOMAINS} domains (a configuration and its domains are stored in one transaction)"),
            );
        }
        for (i, d) in self.domains.iter().enumerate() {
            if !is_domain(d) {
                err(
                    &format!("domains[{i}]"),
                    format!("{d:?} is not a valid domain name"),
                );
            } else if self.domains[..i].iter().any(|o| o.eq_ignore_ascii_case(d)) {
                err(&format!("domains[{i}]"), format!("{d:?} is listed twice"));
            }
        }
        if self.routes.is_empty() {
            err("routes", "at least one delivery route is required".into());
        }
        for (i, r) in self.routes.iter().enumerate() {
            if !is_host(&r.host) {
                err(
                    &format!("routes[{i}].host"),
                    format!("{:?} is not a host name or IP address", r.host),
                );
            }
            if r.port == 0 {
                err(
                    &format!("routes[{i}].port"),
                    "must be between 1 and 65535".into(),
                );
            }
        }

        let m = &self.monitoring;
        if m.threshold < 1 {
            err("monitoring.threshold", "must be at least 1".into());
        } else if m.threshold > MAX_THRESHOLD {
            err(
                "monitoring.threshold",
                format!("must be at most {MAX_THRESHOLD} (one day of windows)"),
            );
        }
        if m.acceptable_latency_secs < 1 || i64::from(m.acceptable_latency_secs) >= WINDOW_SECS {
            err(
                "monitoring.acceptable_latency_secs",
                format!("must be at least 1 and shorter than a window ({WINDOW_SECS} s): the probe is judged at the next window start"),
            );
        }
        if m.enabled && !m.inbound_check && !m.outbound_check {
            err(
                "monitoring",
                "monitoring is on but both checks are off: turn on at least one check".into(),
            );
        }

        match &self.probe {
            None if m.outbound_check => err(
                "probe",
                "the outbound check is on: a probe mailbox is required".into(),
            ),
            None => {}
            Some(p) => {
                if !is_host(&p.host) {
                    err(
                        "probe.host",
                        format!("{:?} is not a host name or IP address", p.host),
                    );
                }
                if p.port == 0 {
                    err("probe.port", "must be between 1 and 65535".into());
                }
                if p.username.trim().is_empty() {
                    err("probe.username", "must not be empty".into());
                }
                if !is_secret_name(&p.password_secret) {
                    err(
                        "probe.password_secret",
                        "must name a Secrets Manager secret (1-512 characters of letters, digits and /_+=.@-), not hold the password".into(),
                    );
                }
                if !is_address(&p.from_address) {
                    err(
                        "probe.from_address",
                        format!("{:?} is not an email address", p.from_address),
                    );
                } else if !self.owns_address(&p.from_address) {
                    err(
                        "probe.from_address",
                        "must be a mailbox on one of the organisation's domains".into(),
                    );
                }
                if !is_address(&p.probe_address) {
                    err(
                        "probe.probe_address",
                        format!("{:?} is not an email address", p.probe_address),
                    );
                } else if p.probe_address.contains('+') {
                    err(
                        "probe.probe_address",
                        "must not contain '+': the service adds a +token sub-address per probe"
                            .into(),
                    );
                } else if self.owns_address(&p.probe_address) {
                    err(
                        "probe.probe_address",
                        "must be at the service's receiving domain, not on the organisation's own domain (it would go to the server being checked)".into(),
                    );
                }
            }
        }

        let a = &self.alerts;
        if a.contacts.len() > MAX_CONTACTS {
            err(
                "alerts.contacts",
                format!("at most {MAX_CONTACTS} contacts"),
            );
        }
        for (i, c) in a.contacts.iter().enumerate() {
            let f = |name: &str| format!("alerts.contacts[{i}].{name}");
            if c.name.trim().is_empty()
                || c.name.chars().count() > 60
                || c.name.chars().any(char::is_control)
            {
                err(
                    &f("name"),
                    "must be 1-60 characters without control characters".into(),
                );
            }
            if c.mobile.is_none() && c.email.is_none() {
                err(
                    &format!("alerts.contacts[{i}]"),
                    "give a mobile number, an email address, or both".into(),
                );
            }
            if let Some(m) = &c.mobile {
                if !is_e164(m) {
                    err(&f("mobile"), format!("{m:?} is not an E.164 number (+ country code and number, digits only, e.g. +447700900123)"));
                }
            }
            if let Some(e) = &c.email {
                if !is_address(e) {
                    err(&f("email"), format!("{e:?} is not an email address"));
                } else if self.owns_address(e) {
                    err(
                        &f("email"),
                        format!("{e} is on the organisation's own domain: alerts must reach you while that mail is down, so give an address elsewhere"),
                    );
                }
            }
        }
        if let Some(q) = &a.queue {
            if q.max_count < 1 {
                err("alerts.queue.max_count", "must be at least 1".into());
            }
            if q.max_age_minutes < 1 {
                err("alerts.queue.max_age_minutes", "must be at least 1".into());
            }
        }
        let q = &self.queue;
        if q.retention_hours < 1 || q.retention_hours > MAX_RETENTION_HOURS {
            err(
                "queue.retention_hours",
                format!(
                    "must be between 1 and {MAX_RETENTION_HOURS} (the raw message is kept 30 days)"
                ),
            );
        }
        if q.backoff_initial_minutes < 1 || q.backoff_initial_minutes > MAX_BACKOFF_MINUTES {
            err(
                "queue.backoff_initial_minutes",
                format!("must be between 1 and {MAX_BACKOFF_MINUTES}"),
            );
        }
        if q.backoff_max_minutes > MAX_BACKOFF_MINUTES {
            err(
                "queue.backoff_max_minutes",
                format!("must be at most {MAX_BACKOFF_MINUTES}: the server is the organisation's own, retries must stay frequent"),
            );
        } else if q.backoff_max_minutes < q.backoff_initial_minutes {
            err(
                "queue.backoff_max_minutes",
                "must not be less than queue.backoff_initial_minutes".into(),
            );
        }
        if q.drain_per_minute < 1 || q.drain_per_minute > 10_000 {
            err(
                "queue.drain_per_minute",
                "must be between 1 and 10000 messages per minute".into(),
            );
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            err(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone name (for example Europe/London or UTC)",
                    self.time_zone
                ),
            );
        }
        if let Some(a) = &self.continuity.auto_activate {
            if a.after_minutes < 2 || a.after_minutes > 24 * 60 {
                err(
                    "continuity.auto_activate.after_minutes",
                    "must be between 2 and 1440 (a window is 2 minutes)".into(),
                );
            }
            if a.duration_minutes < 10 || a.duration_minutes > MAX_EVENT_MINUTES {
                err(
                    "continuity.auto_activate.duration_minutes",
                    format!("must be between 10 and {MAX_EVENT_MINUTES}"),
                );
            }
        }
        let d = &self.delivery;
        if d.timeout_secs < 1 || d.timeout_secs > MAX_DELIVERY_TIMEOUT_SECS {
            err(
                "delivery.timeout_secs",
                format!("must be between 1 and {MAX_DELIVERY_TIMEOUT_SECS}"),
            );
        }

        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// Whether `address` is on one of the organisation's domains (or a subdomain of one).
    pub fn owns_address(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        self.domains.iter().any(|d| domain_within(domain, d))
    }
}

/// `domain` equals `parent` or is a subdomain of it, ignoring case.
pub fn domain_within(domain: &str, parent: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let parent = parent.trim_end_matches('.').to_ascii_lowercase();
    domain == parent || domain.ends_with(&format!(".{parent}"))
}

/// An E.164 telephone number: `+`, a country code not starting with 0, at most 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Organisation identifiers appear in keys, probe addresses and URLs: keep them plain.
pub fn is_org_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS name: labels of letters, digits and inner hyphens, at least two labels.
pub fn is_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_label)
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A host name (one label is allowed: `localhost`, an internal name) or an IP address.
pub fn is_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// A plain `local@domain` address, as SMTP carries it (no display name, no comments).
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && is_domain(domain)
}

fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
                password_secret: "continuity/acme/probe".into(),
                from_address: "continuity-probe@acme.example".into(),
                probe_address: "probe@probe.continuity.example".into(),
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
                Box::new(|c| c.probe.as_mut().unwrap().password_secret = "hunter2 !".into()),
            ),
            (
                "probe.from_address",
                Box::new(|c| {
                    c.probe.as_mut().unwrap().from_address = "probe@elsewhere.example".into()
                }),
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
                Box::new(|c| c.delivery.timeout_secs = 301),
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
}
