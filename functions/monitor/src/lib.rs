//! The `monitor` function: run by an EventBridge schedule at every window start
//! (`cron(0/2 * * * ? *)`, aligned to the epoch's two-minute windows).
//!
//! The handler reads only the event's `time`: a retried or duplicated event names the same
//! window, so it cannot move a counter twice (D6). A run fails as a whole only when the
//! organisations cannot be listed ([`RunError`], retryable when the store's fault is of the
//! moment) or when the event is unreadable (not retryable).

use serde::Serialize;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::graph::HttpGraph;
use shared::adapters::lambda::{diagnostic, env_or, required_env, BadEvent};
use shared::adapters::notify::{AwsChannels, ChannelSettings};
use shared::adapters::oauth::{HttpTokenEndpoint, OauthEndpoints};
use shared::adapters::secrets_manager::SecretsManagerSource;
use shared::adapters::smtp::probe::SmtpProbeSender;
use shared::app::monitor::{Alerting, Evaluation, Monitor, OrgOutcome, ProbeResult, RunReport};
use shared::app::probe_logon::{ProbeLogons, TokenCache};
use shared::domain::window::Window;
use shared::ports::clock::Clock;
use shared::ports::error::Failure;
use std::sync::Arc;
use std::time::Duration;

/// Settings read once from the environment at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`: the single table.
    pub table: String,
    /// `MONITOR_FAN_OUT`: organisations handled at once (default 64).
    pub fan_out: usize,
    /// `SMTP_TIMEOUT_SECS`: per SMTP command of the probe (default 20; the whole exchange gets 3x).
    pub smtp_timeout: Duration,
    /// `SMTP_CA_BUNDLE`: optional PEM file of extra trusted CAs for organisations' submission servers.
    pub ca_bundle: Option<String>,
    /// `SMTP_HELO_NAME`: the service's host name, announced (EHLO) when the probe submits.
    pub helo: String,
    /// `SECRET_CACHE_SECS`: how long a warm function reuses a secret (default 3600).
    pub secret_cache: Duration,
    /// `PORTAL_BASE_URL`: base of the links in alerts (`https://...`, no trailing path).
    pub portal_base_url: String,
    /// `LINK_KEYS_SECRET`: the Secrets Manager secret with the link-signing key set.
    pub link_keys_secret: String,
    /// `ALERT_SENDER`, `ALERT_SENDER_NAME`, `SMS_SENDER_ID`, `EVENT_BUS_NAME`: the alert
    /// channels and the event bus.
    pub channels: ChannelSettings,
    /// `PROBE_SECRET_PREFIX`: organisation `o`'s probe credential is the secret
    /// `<prefix><o>/probe` (default `continuity/`); the role may read nothing else under it.
    pub probe_secret_prefix: String,
    /// `MICROSOFT_LOGIN_URL`, `GOOGLE_TOKEN_URL`, `GRAPH_URL`: the token endpoints and Graph
    /// (the real hosts by default; in AWS nothing else).
    pub oauth: OauthEndpoints,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let smtp_timeout: u64 = env_or("SMTP_TIMEOUT_SECS", 20)?;
        if !(1..=30).contains(&smtp_timeout) {
            return Err(
                "SMTP_TIMEOUT_SECS must be between 1 and 30: a probe must finish within its window"
                    .into(),
            );
        }
        Ok(Settings {
            table: required_env("TABLE_NAME")?,
            fan_out: env_or("MONITOR_FAN_OUT", 64usize)?.max(1),
            smtp_timeout: Duration::from_secs(smtp_timeout),
            ca_bundle: std::env::var("SMTP_CA_BUNDLE")
                .ok()
                .filter(|v| !v.is_empty()),
            helo: shared::adapters::lambda::helo_name(&required_env("SMTP_HELO_NAME")?)?,
            secret_cache: Duration::from_secs(env_or("SECRET_CACHE_SECS", 3600)?),
            portal_base_url: {
                let u = required_env("PORTAL_BASE_URL")?;
                if !(u.starts_with("https://")
                    || u.starts_with("http://127.0.0.1")
                    || u.starts_with("http://localhost"))
                {
                    return Err("PORTAL_BASE_URL must be an https:// address (plain http only for localhost)".into());
                }
                u.trim_end_matches('/').to_string()
            },
            link_keys_secret: required_env("LINK_KEYS_SECRET")?,
            channels: ChannelSettings::from_env()?,
            probe_secret_prefix: probe_secret_prefix()?,
            oauth: OauthEndpoints::from_env()?,
        })
    }
}

/// `PROBE_SECRET_PREFIX`, checked: the prefix the template's IAM policy names.
pub fn probe_secret_prefix() -> Result<String, String> {
    let prefix = env_or("PROBE_SECRET_PREFIX", "continuity/".to_string())?;
    shared::domain::probe::checked_secret_prefix(prefix)
}

/// Clients and adapters, built once per container.
pub struct Deps {
    pub store: DynamoStore,
    pub secrets: SecretsManagerSource,
    pub sender: SmtpProbeSender,
    /// The token endpoints (D9).
    pub tokens: HttpTokenEndpoint,
    /// Microsoft Graph (sendMail, service health).
    pub graph: HttpGraph,
    /// Access tokens for the life of the container.
    pub token_cache: TokenCache,
    pub probe_secret_prefix: String,
    /// The probe's whole budget (3x the per-command SMTP timeout).
    pub probe_budget: Duration,
    pub channels: AwsChannels,
    pub clock: Arc<dyn Clock>,
    pub fan_out: usize,
    pub link_keys_secret: String,
    pub portal_base_url: String,
}

impl Deps {
    pub fn new(
        settings: &Settings,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let roots = match &settings.ca_bundle {
            None => None,
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| format!("SMTP_CA_BUNDLE {path}: {e}"))?)
            }
        };
        Ok(Deps {
            store: DynamoStore::from_sdk(sdk, &settings.table),
            secrets: SecretsManagerSource::from_sdk(sdk, settings.secret_cache),
            sender: SmtpProbeSender::new(settings.smtp_timeout, roots).announcing(&settings.helo),
            tokens: HttpTokenEndpoint::new(settings.oauth.clone(), settings.smtp_timeout)?,
            graph: HttpGraph::new(&settings.oauth.graph, settings.smtp_timeout)?,
            token_cache: TokenCache::default(),
            probe_secret_prefix: settings.probe_secret_prefix.clone(),
            probe_budget: settings.smtp_timeout * 3,
            channels: AwsChannels::new(sdk, &settings.channels),
            clock,
            fan_out: settings.fan_out,
            link_keys_secret: settings.link_keys_secret.clone(),
            portal_base_url: settings.portal_base_url.clone(),
        })
    }

    /// How probes log on, over these adapters.
    pub fn logons(&self) -> ProbeLogons<'_> {
        ProbeLogons {
            secrets: &self.secrets,
            tokens: &self.tokens,
            cache: &self.token_cache,
            smtp: &self.sender,
            graph: &self.graph,
            secret_prefix: &self.probe_secret_prefix,
            budget: self.probe_budget,
        }
    }

    pub fn monitor(&self) -> Monitor<'_> {
        Monitor {
            store: &self.store,
            secrets: &self.secrets,
            logon: self.logons(),
            clock: self.clock.as_ref(),
            fan_out: self.fan_out,
            alerting: Alerting {
                store: &self.store,
                queue: &self.store,
                channels: &self.channels,
                bus: &self.channels,
                link_keys_secret: &self.link_keys_secret,
                portal_base_url: &self.portal_base_url,
            },
        }
    }
}

pub use shared::adapters::lambda::ScheduledEvent;

/// What the function returns: the run's figures and the organisations that need attention.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub window: Window,
    pub organisations: usize,
    pub committed: usize,
    pub already_evaluated: usize,
    pub failed: usize,
    pub probes_sent: usize,
    pub probes_not_sent: usize,
    pub alerts_sent: u32,
    pub alerts_failed: u32,
    /// Organisations whose evaluation failed, whose probe could not be sent, or whose alerts
    /// failed, with reasons.
    pub attention: Vec<OrgOutcome>,
}

impl From<RunReport> for RunSummary {
    fn from(r: RunReport) -> Self {
        let attention = r
            .outcomes
            .into_iter()
            .filter(|o| {
                matches!(o.evaluation, Evaluation::Failed { .. })
                    || matches!(
                        o.probe,
                        ProbeResult::NotSent { .. } | ProbeResult::StoreFailed { .. }
                    )
            })
            .collect();
        RunSummary {
            window: r.window,
            organisations: r.organisations,
            committed: r.committed,
            already_evaluated: r.already_evaluated,
            failed: r.failed,
            probes_sent: r.probes_sent,
            probes_not_sent: r.probes_not_sent,
            alerts_sent: r.alerts_sent,
            alerts_failed: r.alerts_failed,
            attention,
        }
    }
}

/// Why a whole run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The event is not a scheduled event: the same event never will be.
    #[error(transparent)]
    BadEvent(#[from] BadEvent),
    /// The organisations could not be listed.
    #[error("monitor run failed: {0}")]
    Store(#[from] shared::ports::error::StoreError),
}

impl Failure for RunError {
    fn retryable(&self) -> bool {
        match self {
            RunError::BadEvent(e) => e.retryable(),
            RunError::Store(e) => e.retryable(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            RunError::BadEvent(e) => e.kind(),
            RunError::Store(e) => e.kind(),
        }
    }
}

impl From<RunError> for lambda_runtime::Diagnostic {
    fn from(e: RunError) -> Self {
        diagnostic(&e)
    }
}

/// The handler: evaluates the window that ended at the event's time. The clock is read once
/// here: the run's `now`.
pub async fn handle(deps: &Deps, event: ScheduledEvent) -> Result<RunReport, RunError> {
    let now = deps.clock.now();
    Ok(deps.monitor().run_at(event.at(now), now).await?)
}

/// The handler as Lambda calls it: the event as sent, read here so that an unreadable one is
/// reported as such.
pub async fn handle_event(deps: &Deps, event: serde_json::Value) -> Result<RunSummary, RunError> {
    let event = ScheduledEvent::parse(event)?;
    Ok(handle(deps, event).await?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ports::error::StoreError;

    #[test]
    fn errors_map_to_retryable_or_not() {
        let d = lambda_runtime::Diagnostic::from(RunError::from(StoreError::Transient(
            "throttled".into(),
        )));
        assert_eq!(d.error_type, "Retryable.StoreUnavailable");
        assert_eq!(
            d.error_message,
            "monitor run failed: transient store error: throttled"
        );
        let d = lambda_runtime::Diagnostic::from(RunError::from(StoreError::Permanent(
            "access denied".into(),
        )));
        assert_eq!(d.error_type, "NonRetryable.StoreRefused");
        let bad = ScheduledEvent::parse(serde_json::json!("not an event")).unwrap_err();
        let d = lambda_runtime::Diagnostic::from(RunError::from(bad));
        assert_eq!(d.error_type, "NonRetryable.BadEvent");
    }
}
