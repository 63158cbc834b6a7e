//! The probe mailbox (D3, D9, D10): where the outbound check logs on, how, and its validation.
//!
//! No field names a secret. Every probe credential (a password, a client secret, a certificate's
//! private key, a Google service-account key) lives in Secrets Manager under the name the
//! service derives from the organisation's id ([`crate::domain::probe::probe_secret_name`]):
//! a name taken from configuration would let one organisation's administrator point the probe at
//! another organisation's secret, or at the link-signing key, and receive it as SMTP AUTH on a
//! server of their own.

use super::syntax::{is_address, is_domain, is_host};
use super::validate::Problems;
use super::OrgConfig;
use serde::{Deserialize, Serialize};

/// The mailbox on the organisation's server that sends the probe (D3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeMailbox {
    /// SMTP submission host of the organisation's server (`smtp.office365.com`,
    /// `smtp.gmail.com`); not used by `graph-sendmail`.
    pub host: String,
    pub port: u16,
    pub tls: SubmissionTls,
    /// The login name: SMTP AUTH's user, XOAUTH2's `user=`, the mailbox Graph sends as, the
    /// Workspace user a service account acts for.
    pub username: String,
    /// How the probe logs on (D9); `password` when absent (configurations stored before D9).
    #[serde(default)]
    pub logon: ProbeLogon,
    /// Replaced by the derived secret name: accepted when reading a stored configuration (and
    /// dropped, see [`OrgConfig::forget_legacy_fields`]), refused when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
    /// The sender address of the probe: the mailbox's own address.
    pub from_address: String,
    /// Where probes go: an address at the service's receiving domain. Each probe is sent to a
    /// unique sub-address of it (`local+token@domain`).
    pub probe_address: String,
    /// Read Exchange Online's service health from Microsoft Graph each window and show an open
    /// incident beside the counter (D10); needs a Microsoft app (`oauth2-client-credentials` or
    /// `graph-sendmail`) with `ServiceHealth.Read.All`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub provider_health: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How the probe mailbox's submission port uses TLS. Both encrypt before AUTH: a password or a
/// token never crosses the network in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmissionTls {
    /// Port 587 style: plain greeting, then STARTTLS, required.
    Starttls,
    /// Port 465 style: TLS from the first byte.
    Implicit,
}

/// How the probe logs on (D9).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", from = "LogonFields")]
pub enum ProbeLogon {
    /// SMTP AUTH PLAIN/LOGIN with the mailbox's password (Exchange Server and other servers).
    #[default]
    Password,
    /// An app's token from the Microsoft identity platform (client credentials), then SMTP
    /// `AUTH XOAUTH2` (Exchange Online; the app needs `SMTP.SendAsApp` and an Exchange service
    /// principal with permission on the probe mailbox).
    Oauth2ClientCredentials(MicrosoftApp),
    /// Microsoft Graph `POST /users/{username}/sendMail` with an app token (`Mail.Send`, scoped
    /// to the probe mailbox), for tenants that turn SMTP AUTH off entirely.
    GraphSendmail(MicrosoftApp),
    /// A Google service account with domain-wide delegation acting for the probe mailbox (a
    /// JWT assertion exchanged for a token), then `AUTH XOAUTH2` to `smtp.gmail.com:587`.
    GoogleXoauth2,
}

impl ProbeLogon {
    /// The method's name as configured.
    pub fn name(&self) -> &'static str {
        match self {
            ProbeLogon::Password => "password",
            ProbeLogon::Oauth2ClientCredentials(_) => "oauth2-client-credentials",
            ProbeLogon::GraphSendmail(_) => "graph-sendmail",
            ProbeLogon::GoogleXoauth2 => "google-xoauth2",
        }
    }

    /// The Microsoft app, for the methods that have one.
    pub fn microsoft_app(&self) -> Option<&MicrosoftApp> {
        match self {
            ProbeLogon::Oauth2ClientCredentials(a) | ProbeLogon::GraphSendmail(a) => Some(a),
            ProbeLogon::Password | ProbeLogon::GoogleXoauth2 => None,
        }
    }
}

/// What `probe.logon` is read from. serde ignores every other field of an internally tagged
/// unit variant (`{"method": "password", "secret": "..."}` would read as `Password`, and even
/// an enum-level `deny_unknown_fields` does not reach it), so the methods without settings
/// read an empty struct that refuses any field: nothing that looks like a secret's name is
/// silently accepted and then dropped.
#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
enum LogonFields {
    Password(NoFields),
    Oauth2ClientCredentials(MicrosoftApp),
    GraphSendmail(MicrosoftApp),
    GoogleXoauth2(NoFields),
}

/// A method without settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl From<LogonFields> for ProbeLogon {
    fn from(f: LogonFields) -> Self {
        match f {
            LogonFields::Password(NoFields {}) => ProbeLogon::Password,
            LogonFields::Oauth2ClientCredentials(a) => ProbeLogon::Oauth2ClientCredentials(a),
            LogonFields::GraphSendmail(a) => ProbeLogon::GraphSendmail(a),
            LogonFields::GoogleXoauth2(NoFields {}) => ProbeLogon::GoogleXoauth2,
        }
    }
}

/// An app registration in Microsoft Entra ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftApp {
    /// The tenant: its id (a GUID) or one of its domains (`contoso.onmicrosoft.com`).
    pub tenant: String,
    /// The application (client) id, a GUID.
    pub client_id: String,
    /// What the app proves itself with; the secret itself is in Secrets Manager.
    pub credential: AppCredential,
    /// With `certificate`: the certificate's SHA-1 thumbprint as Entra ID shows it (40 hex
    /// digits); the secret holds its private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_thumbprint: Option<String>,
}

/// What a Microsoft app proves itself with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppCredential {
    /// A client secret (the secret holds its value).
    ClientSecret,
    /// A certificate: a JWT assertion signed with its private key (the secret holds the PEM).
    Certificate,
}

impl OrgConfig {
    /// Drops fields an older version stored that are no longer read (`probe.password_secret`:
    /// the secret's name is now derived); true when something was dropped. Reads of stored
    /// configurations call it, so that an organisation stored before the change keeps being
    /// monitored; writes refuse the field instead (validation).
    pub fn forget_legacy_fields(&mut self) -> bool {
        self.probe
            .as_mut()
            .and_then(|p| p.password_secret.take())
            .is_some()
    }
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits).
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `probe`: required by the outbound check; a reachable submission server, a logon method with
/// what it needs, no secret's name, a sender on the organisation's domains and a probe address
/// at the service's.
pub(super) fn check(c: &OrgConfig, p: &mut Problems) {
    let Some(probe) = &c.probe else {
        if c.monitoring.outbound_check {
            p.add(
                "probe",
                "the outbound check is on: a probe mailbox is required",
            );
        }
        return;
    };
    let uses_smtp = !matches!(probe.logon, ProbeLogon::GraphSendmail(_));
    if uses_smtp && !is_host(&probe.host) {
        p.add(
            "probe.host",
            format!("{:?} is not a host name or IP address", probe.host),
        );
    }
    if uses_smtp && probe.port == 0 {
        p.add("probe.port", "must be between 1 and 65535");
    }
    if probe.username.trim().is_empty() {
        p.add("probe.username", "must not be empty");
    }
    if probe.password_secret.is_some() {
        p.add(
            "probe.password_secret",
            "is no longer accepted: the service reads the probe's credential from the secret it names for this organisation, <ProbeSecretPrefix><org_id>/probe (continuity/<org_id>/probe by default); store the password there (README, Probe logon) and remove this field",
        );
    }
    logon(probe, p);
    if probe.provider_health && probe.logon.microsoft_app().is_none() {
        p.add(
            "probe.provider_health",
            "needs a Microsoft app: set probe.logon.method to oauth2-client-credentials or graph-sendmail (with ServiceHealth.Read.All granted)",
        );
    }
    if !is_address(&probe.from_address) {
        p.add(
            "probe.from_address",
            format!("{:?} is not an email address", probe.from_address),
        );
    } else if !c.owns_address(&probe.from_address) {
        p.add(
            "probe.from_address",
            "must be a mailbox on one of the organisation's domains",
        );
    }
    if !is_address(&probe.probe_address) {
        p.add(
            "probe.probe_address",
            format!("{:?} is not an email address", probe.probe_address),
        );
    } else if probe.probe_address.contains('+') {
        p.add(
            "probe.probe_address",
            "must not contain '+': the service adds a +token sub-address per probe",
        );
    } else if c.owns_address(&probe.probe_address) {
        p.add(
            "probe.probe_address",
            "must be at the service's receiving domain, not on the organisation's own domain (it would go to the server being checked)",
        );
    }
}

/// `probe.logon`: what each method needs.
fn logon(probe: &ProbeMailbox, p: &mut Problems) {
    if let Some(app) = probe.logon.microsoft_app() {
        if !(is_guid(&app.tenant) || is_domain(&app.tenant)) {
            p.add(
                "probe.logon.tenant",
                "must be the tenant's id (a GUID) or one of its domains (contoso.onmicrosoft.com)",
            );
        }
        if !is_guid(&app.client_id) {
            p.add(
                "probe.logon.client_id",
                "must be the app's application (client) id, a GUID as Entra ID shows it",
            );
        }
        match (app.credential, &app.certificate_thumbprint) {
            (AppCredential::Certificate, None) => p.add(
                "probe.logon.certificate_thumbprint",
                "credential is certificate: give the certificate's thumbprint as Entra ID shows it (40 hex digits)",
            ),
            (AppCredential::Certificate, Some(t))
                if t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                p.add(
                    "probe.logon.certificate_thumbprint",
                    "must be the SHA-1 thumbprint as Entra ID shows it: 40 hex digits",
                )
            }
            (AppCredential::ClientSecret, Some(_)) => p.add(
                "probe.logon.certificate_thumbprint",
                "only with credential certificate",
            ),
            _ => {}
        }
    }
    if matches!(
        probe.logon,
        ProbeLogon::GraphSendmail(_) | ProbeLogon::GoogleXoauth2
    ) && !is_address(&probe.username)
    {
        p.add(
            "probe.username",
            format!(
                "with {} this is the probe mailbox's address (user principal name)",
                probe.logon.name()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("6731de76-14a6-49ae-97bc-6eba6914391e"));
        assert!(!is_guid("6731de76-14a6-49ae-97bc-6eba6914391"));
        assert!(!is_guid("6731de7614a649ae97bc6eba6914391e"));
        assert!(!is_guid("6731de76-14a6-49ae-97bc-6eba6914391g"));
    }

    #[test]
    fn logon_methods_read_as_written() {
        let j = r#"{"method":"oauth2-client-credentials","tenant":"contoso.onmicrosoft.com",
            "client_id":"6731de76-14a6-49ae-97bc-6eba6914391e","credential":"client-secret"}"#;
        let l: ProbeLogon = serde_json::from_str(j).unwrap();
        assert_eq!(l.name(), "oauth2-client-credentials");
        assert_eq!(
            l.microsoft_app().unwrap().credential,
            AppCredential::ClientSecret
        );
        let g: ProbeLogon = serde_json::from_str(r#"{"method":"google-xoauth2"}"#).unwrap();
        assert_eq!(g, ProbeLogon::GoogleXoauth2);
        let bad = r#"{"method":"graph-sendmail","tenant":"t.example","client_id":"x","credential":"client-secret","secret_name":"other/secret"}"#;
        let e = serde_json::from_str::<ProbeLogon>(bad).unwrap_err();
        assert!(e.to_string().contains("secret_name"), "{e}");
        let p: ProbeLogon = serde_json::from_str(r#"{"method":"password"}"#).unwrap();
        assert_eq!(p, ProbeLogon::Password);
        for bad in [
            r#"{"method":"password","secret":"continuity/other/probe"}"#,
            r#"{"method":"google-xoauth2","key_secret":"continuity/other/probe"}"#,
        ] {
            let e = serde_json::from_str::<ProbeLogon>(bad).unwrap_err();
            assert!(e.to_string().contains("unknown field"), "{bad}: {e}");
        }
        // What is written reads back the same.
        for l in [ProbeLogon::Password, ProbeLogon::GoogleXoauth2] {
            let j = serde_json::to_string(&l).unwrap();
            assert_eq!(serde_json::from_str::<ProbeLogon>(&j).unwrap(), l, "{j}");
        }
    }
}
