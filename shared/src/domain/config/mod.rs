//! An organisation's configuration and its validation.
//!
//! Validation collects every problem at once and names each field by its path
//! (`monitoring.threshold`, `routes[1].port`), so that an administrator fixing a file or an API
//! call sees everything wrong in one answer. The types are here; `validate` checks them one
//! section at a time; `syntax` says what an address, a domain or a mobile number looks like.

mod probe;
mod syntax;
mod validate;

pub use probe::{AppCredential, MicrosoftApp, ProbeLogon, ProbeMailbox, SubmissionTls};

pub use syntax::{domain_within, is_address, is_domain, is_e164, is_host, is_org_id};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stored configuration and its version: every write stores the next number, so a writer
/// can say which version it replaces (0: stored before configurations had versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    pub config: OrgConfig,
    pub version: u64,
}

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
    /// Sign-in owned by the service (U11): when one-time codes are offered, their SMS budget.
    #[serde(default)]
    pub sign_in: SignInSettings,
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

/// When users may sign in with a one-time code (U11).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodePolicy {
    /// Always (the identity provider stays the usual way in; codes are there when it is not).
    #[default]
    Always,
    /// Only while a continuity event is active: in normal times the identity provider alone.
    DuringEvents,
    /// Never (passkeys and the identity provider only).
    Off,
}

/// Sign-in owned by the service (U11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInSettings {
    /// When one-time codes are offered.
    pub codes: CodePolicy,
    /// At most this many sign-in SMS a day (UTC) for the organisation; past it, codes go by email
    /// only. SMS cost money; a script requesting codes must not run up the bill.
    pub sms_per_day: u32,
}

/// The largest daily SMS budget accepted.
pub const MAX_SMS_PER_DAY: u32 = 100_000;

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            codes: CodePolicy::Always,
            sms_per_day: 500,
        }
    }
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
/// The longest SMTP step timeout accepted: one route's worth of the delivery budget.
pub const MAX_DELIVERY_TIMEOUT_SECS: u32 = crate::domain::delivery::DELIVERY_BUDGET_SECS;

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
    /// Checks the whole configuration; every problem is reported, section by section in the
    /// order of the fields.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        validate::validate(self)
    }

    /// Whether `address` is on one of the organisation's domains (or a subdomain of one).
    pub fn owns_address(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        self.domains.iter().any(|d| domain_within(domain, d))
    }
}

#[cfg(test)]
pub(crate) mod tests;
