//! Administrators' changes to the organisation's settings as one use case: the configuration
//! replaced (P8; validated, every wrong field named), the queue paused or resumed (Q4), the
//! user directory imported (A6, U11). Each change that took effect is audited with who, how
//! and from where, and published on the bus as `ConfigChanged`, through the continuity use
//! case's one audit-and-publish.
//!
//! Configuration writes are versioned: each names the version it replaces (the one the
//! administrator read, `If-Match`, or else the one this request read) and the store writes only
//! if that version is still the stored one. Of two concurrent writes one wins and the other is
//! refused as [`SettingsError::Stale`] with nothing changed: no update is lost silently.

use crate::app::continuity::{Continuity, Requester};
use crate::app::delivery::deliver;
use crate::domain::config::{is_address, ConfigErrors, OrgConfig, StoredConfig};
use crate::domain::continuity::AuditRecord;
use crate::domain::delivery::{Deadline, DeliveryReport};
use crate::domain::directory::{check_import, DirectoryUser, UserDirectory, MAX_USERS};
use crate::ports::error::{PutConfigError, StoreError};
use crate::ports::mail::RouteTransport;
use crate::ports::store::{ConfigStore, DomainOwners};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Why a change was not made; the messages are for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("org_id {given:?} is not your organisation ({own:?}).")]
    OtherOrganisation { given: String, own: String },
    #[error("Your organisation has no configuration yet.")]
    NoConfiguration,
    /// The write named (or read) a version that is no longer the stored one.
    #[error("The configuration was changed by someone else since version {read} was read; version {stored} is stored now. Nothing was changed: read it again (GET /api/v1/admin/config), make your change to that version and send it with If-Match: \"{stored}\".")]
    Stale { read: u64, stored: u64 },
    /// Names every wrong field by its path (`routes[1].port`).
    #[error("Invalid configuration: {0}")]
    Invalid(ConfigErrors),
    #[error("domains: {0:?} belongs to another organisation.")]
    DomainTaken(String),
    #[error("At most {MAX_USERS} users per organisation; this import lists {0}.")]
    TooManyUsers(usize),
    /// A row of a users import, named by its index.
    #[error("{0}")]
    InvalidUser(String),
    #[error("recipient must be an address on one of your organisation's domains.")]
    NotOurRecipient,
    /// A domain added without its proof (P11).
    #[error("{0}")]
    DomainNotProven(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The settings use case's collaborators.
pub struct Settings<'a> {
    pub config: &'a dyn ConfigStore,
    /// Who owns which domain: a change may add only domains this organisation proved (P11).
    pub owners: &'a dyn DomainOwners,
    /// The audit and the bus (and the user directory it stores).
    pub continuity: Continuity<'a>,
}

impl Settings<'_> {
    /// The organisation's configuration.
    pub async fn current(&self, org: &str) -> Result<OrgConfig, SettingsError> {
        Ok(self.versioned(org).await?.config)
    }

    /// The organisation's configuration with its version.
    pub async fn versioned(&self, org: &str) -> Result<StoredConfig, SettingsError> {
        self.config
            .stored_config(org)
            .await?
            .ok_or(SettingsError::NoConfiguration)
    }

    /// Replaces the organisation's configuration with `cfg` (audited as `config`), if `expected`
    /// (the version the administrator read; `None`: the one read now) is still the stored one.
    /// The configuration stored, with its new version.
    pub async fn replace(
        &self,
        org: &str,
        cfg: OrgConfig,
        expected: Option<u64>,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<StoredConfig, SettingsError> {
        let before = self.config.stored_config(org).await?;
        self.store(org, (before, expected), cfg, ("config", by), now)
            .await
    }

    /// Pauses or resumes deliveries from the queue (audited as `queue-pause` / `queue-unpause`),
    /// if `expected` is still the stored version; whether that changed anything, and the
    /// version stored.
    pub async fn set_queue_paused(
        &self,
        org: &str,
        paused: bool,
        expected: Option<u64>,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<(bool, u64), SettingsError> {
        let before = self.versioned(org).await?;
        check_version(org, expected, before.version)?;
        if before.config.queue.paused == paused {
            return Ok((false, before.version));
        }
        let mut cfg = before.config.clone();
        cfg.queue.paused = paused;
        let what = if paused {
            "queue-pause"
        } else {
            "queue-unpause"
        };
        let stored = self
            .store(org, (Some(before), expected), cfg, (what, by), now)
            .await?;
        Ok((true, stored.version))
    }

    /// Stores `cfg` in place of `before` (if `expected` names it, or names none), audited as
    /// `what` by `by`.
    async fn store(
        &self,
        org: &str,
        (before, expected): (Option<StoredConfig>, Option<u64>),
        cfg: OrgConfig,
        (what, by): (&str, &Requester),
        now: DateTime<Utc>,
    ) -> Result<StoredConfig, SettingsError> {
        if cfg.org_id != org {
            return Err(SettingsError::OtherOrganisation {
                given: cfg.org_id,
                own: org.to_string(),
            });
        }
        check_version(org, expected, before.as_ref().map_or(0, |b| b.version))?;
        let previous = before.as_ref().map(|b| &b.config);
        match crate::app::domains::require_proven(self.owners, org, previous, &cfg).await {
            Ok(()) => {}
            Err(crate::app::domains::DomainError::Store(e)) => return Err(e.into()),
            Err(crate::app::domains::DomainError::Refused(
                crate::domain::domains::Refusal::Taken(d),
            )) => return Err(SettingsError::DomainTaken(d)),
            Err(e) => {
                tracing::info!(org, error = %e, "configuration refused: domain not proven");
                return Err(SettingsError::DomainNotProven(e.to_string()));
            }
        }
        let states = (
            serde_json::to_value(previous).unwrap_or_default(),
            serde_json::to_value(&cfg).unwrap_or_default(),
        );
        // The change and its audit item in one transaction (P7); the event after it.
        let record = audit_record(org, what, by, now, states);
        let version = match self
            .config
            .replace_config_audited(&cfg, before.as_ref(), now, Some(&record))
            .await
        {
            Ok(v) => v,
            Err(PutConfigError::Invalid(errors)) => {
                tracing::info!(org, %errors, "configuration refused");
                return Err(SettingsError::Invalid(errors));
            }
            Err(PutConfigError::DomainTaken(d)) => return Err(SettingsError::DomainTaken(d)),
            Err(PutConfigError::Stale { read }) => {
                // Another write came between the read and this one: say which version won.
                let stored = self
                    .config
                    .stored_config(org)
                    .await?
                    .map_or(0, |c| c.version);
                tracing::info!(
                    org,
                    read,
                    stored,
                    "configuration write refused: stale version (lost a race)"
                );
                return Err(SettingsError::Stale { read, stored });
            }
            Err(PutConfigError::Store(e)) => return Err(e.into()),
        };
        // At least once: a failed publication is logged; the stored audit item stands.
        self.continuity.publish(&record, "ConfigChanged", &[]).await;
        Ok(StoredConfig {
            config: cfg,
            version,
        })
    }

    /// Replaces the user directory with `rows` (address, name, mobile number, alternate
    /// address), each checked ([`check_import`]); one bad row refuses the import and names it.
    /// Replaced atomically; audited as `users-import` (the counts before and after).
    pub async fn import_users(
        &self,
        org: &str,
        rows: &[DirectoryUser],
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<UserDirectory, SettingsError> {
        if rows.len() > MAX_USERS {
            return Err(SettingsError::TooManyUsers(rows.len()));
        }
        let cfg = self.current(org).await?;
        let directory = check_import(&cfg, rows, now).map_err(SettingsError::InvalidUser)?;
        let after = directory.users.len();
        // The switch to the new directory and its audit record in one transaction (P7); the
        // count before is the store's to know.
        let audit = |before: usize| {
            let counts = (json!({"users": before}), json!({"users": after}));
            audit_record(org, "users-import", by, now, counts)
        };
        let before = self
            .continuity
            .store
            .put_user_directory_audited(org, &directory, Some(&audit))
            .await?;
        // At least once: a failed publication is logged; the stored audit item stands.
        self.continuity
            .publish(&audit(before), "ConfigChanged", &[])
            .await;
        Ok(directory)
    }
}

/// The audit record of a change `what` by `by` at `now`, from `before` to `after` (the
/// administration's use cases: settings, domains, passkeys).
pub(crate) fn audit_record(
    org: &str,
    what: &str,
    by: &Requester,
    now: DateTime<Utc>,
    (before, after): (Value, Value),
) -> AuditRecord {
    AuditRecord {
        org_id: org.to_string(),
        at: now,
        who: by.who.clone(),
        via: by.via,
        what: what.into(),
        minutes: None,
        before,
        after,
        source: by.source.clone(),
        request_id: by.request_id.clone(),
    }
}

/// The audit record of a change `what` that has no "before" to show (`after` says what changed:
/// a passkey, a grant, a claim).
pub(crate) fn change_record(
    org: &str,
    what: &str,
    by: &Requester,
    now: DateTime<Utc>,
    after: Value,
) -> AuditRecord {
    audit_record(org, what, by, now, (Value::Null, after))
}

/// Refuses a write that names a version other than the stored one (`None` names none).
fn check_version(org: &str, expected: Option<u64>, stored: u64) -> Result<(), SettingsError> {
    match expected {
        Some(read) if read != stored => {
            tracing::info!(
                org,
                read,
                stored,
                "configuration write refused: stale version"
            );
            Err(SettingsError::Stale { read, stored })
        }
        _ => Ok(()),
    }
}

/// The test message of "test the delivery route" (P8), from `sender` to `recipient`.
pub struct RouteTest<'a> {
    pub sender: &'a str,
    pub recipient: &'a str,
    /// The host named in the Message-ID (the service's own).
    pub host: &'a str,
    /// Unique per test.
    pub id: &'a str,
}

impl Settings<'_> {
    /// "Test the delivery route" (P8): sends a short test message to one of the organisation's
    /// mailboxes over its routes, in order, through `relay`; what each route answered.
    pub async fn test_delivery(
        &self,
        org: &str,
        relay: &dyn RouteTransport,
        test: &RouteTest<'_>,
        now: DateTime<Utc>,
    ) -> Result<DeliveryReport, SettingsError> {
        let cfg = self.current(org).await?;
        if !is_address(test.recipient) || !cfg.owns_address(test.recipient) {
            return Err(SettingsError::NotOurRecipient);
        }
        let raw = format!(
            "From: {sender}\r\nTo: {to}\r\nSubject: Email continuity: delivery route test\r\n\
             Date: {date}\r\nMessage-ID: <route-test-{id}@{host}>\r\nAuto-Submitted: auto-generated\r\n\r\n\
             This is a test of the delivery route from the email continuity service to your server.\r\n",
            sender = test.sender,
            to = test.recipient,
            date = now.to_rfc2822(),
            id = test.id,
            host = test.host,
        );
        // The API answers within API Gateway's 29 s: the test gives up at 25 s over all routes.
        let deadline = Deadline::within(
            tokio::time::Instant::now().into_std(),
            std::time::Duration::from_secs(25),
        );
        Ok(deliver(
            relay,
            &cfg.routes,
            std::time::Duration::from_secs(u64::from(cfg.delivery.timeout_secs).min(30)),
            deadline,
            test.sender,
            &[test.recipient.to_string()],
            raw.as_bytes(),
        )
        .await)
    }
}
