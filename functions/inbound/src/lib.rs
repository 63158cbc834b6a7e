//! The `inbound` and `queue` functions (one crate, two binaries: they share every collaborator).
//!
//! - `inbound`: invoked by the SES receipt rule after its S3 action (Q1). For each record of the
//!   event it reads the raw message from the mail bucket, files it, delivers it or queues it
//!   ([`shared::inbound`]). An error makes Lambda retry the event; a retried event makes no
//!   second record (Q6).
//! - `queue`: run every minute by an EventBridge schedule; retries, drains and bounces
//!   ([`shared::queue`]). The run's time comes from the event's `time`.
//!
//! Errors reach Lambda as [`HandlerError`]: retryable when the fault is of the moment (the
//! table or the bucket unavailable), not when the event itself is unreadable or a retry would
//! meet the same refusal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::lambda::{diagnostic, env_or, required_env, BadEvent};
use shared::adapters::s3::S3RawMessages;
use shared::adapters::secrets_manager::SecretsManagerSource;
use shared::adapters::ses::SesMailSender;
use shared::adapters::smtp::relay::SmtpRelay;
use shared::app::inbound::{Inbound, InboundError, InboundReport, Receipt};
use shared::app::queue::{Courier, Queue, TickReport};
pub use shared::domain::delivery::Deadline;
use shared::domain::verdicts::{Verdict, Verdicts};
use shared::ports::clock::Clock;
use shared::ports::error::Failure;
use shared::ports::error::StoreError;
use shared::ports::secrets::SecretSource;
use std::sync::Arc;

/// Settings read once from the environment at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`: the single table.
    pub table: String,
    /// `MAIL_BUCKET`: where the receipt rule's S3 action stores raw messages.
    pub bucket: String,
    /// `MAIL_PREFIX`: the S3 action's object key prefix (default empty).
    pub prefix: String,
    /// `BOUNCE_SENDER`: the address bounces come from (a verified SES identity).
    pub bounce_sender: String,
    /// `SMTP_HELO_NAME`: the name announced to organisations' servers.
    pub helo: String,
    /// `SMTP_CA_BUNDLE`: optional PEM file of extra trusted CAs for `starttls-required` routes.
    pub ca_bundle: Option<String>,
    /// `SMTP_CLIENT_CERT_SECRET`: optional Secrets Manager secret (name or ARN) holding the
    /// client certificate and its private key (PEM) presented to organisations' servers.
    pub client_cert_secret: Option<String>,
    /// `QUEUE_FAN_OUT`: organisations the queue handles at once (default 16).
    pub fan_out: usize,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        let bounce_sender = required_env("BOUNCE_SENDER")?;
        if !shared::domain::config::is_address(&bounce_sender) {
            return Err(format!(
                "BOUNCE_SENDER {bounce_sender:?} is not an email address"
            ));
        }
        Ok(Settings {
            table: required_env("TABLE_NAME")?,
            bucket: required_env("MAIL_BUCKET")?,
            prefix: std::env::var("MAIL_PREFIX").unwrap_or_default(),
            bounce_sender,
            helo: shared::adapters::lambda::helo_name(&required_env("SMTP_HELO_NAME")?)?,
            ca_bundle: std::env::var("SMTP_CA_BUNDLE")
                .ok()
                .filter(|v| !v.is_empty()),
            client_cert_secret: std::env::var("SMTP_CLIENT_CERT_SECRET")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            fan_out: env_or("QUEUE_FAN_OUT", 16usize)?.max(1),
        })
    }
}

/// Clients and adapters, built once per container.
pub struct Deps {
    pub store: DynamoStore,
    pub raw: S3RawMessages,
    pub relay: SmtpRelay,
    pub bouncer: SesMailSender,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub bounce_sender: String,
    pub helo: String,
    pub fan_out: usize,
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
            raw: S3RawMessages::from_sdk(sdk, &settings.bucket),
            relay: SmtpRelay::new(&settings.helo, roots),
            bouncer: SesMailSender::from_sdk(sdk),
            clock,
            prefix: settings.prefix.clone(),
            bounce_sender: settings.bounce_sender.clone(),
            helo: settings.helo.clone(),
            fan_out: settings.fan_out,
        })
    }

    /// As [`Deps::new`], then the client certificate read from Secrets Manager when one is
    /// configured: the functions' start-up. A secret that cannot be read or holds no usable
    /// certificate and key stops the start with the reason (delivering without the certificate
    /// would only meet the connector's refusal).
    pub async fn start(
        settings: &Settings,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let mut deps = Self::new(settings, sdk, clock)?;
        if let Some(name) = &settings.client_cert_secret {
            let secrets = SecretsManagerSource::from_sdk(sdk, std::time::Duration::ZERO);
            let pem = secrets
                .secret(name)
                .await
                .map_err(|e| format!("SMTP_CLIENT_CERT_SECRET {name}: {e}"))?;
            deps.relay = deps
                .relay
                .with_client_certificate(&pem)
                .map_err(|e| format!("SMTP_CLIENT_CERT_SECRET {name}: {e}"))?;
        }
        Ok(deps)
    }

    pub fn courier(&self) -> Courier<'_> {
        Courier {
            queue: &self.store,
            recorder: &self.store,
            raw: &self.raw,
            transport: &self.relay,
            bouncer: &self.bouncer,
            bounce_sender: &self.bounce_sender,
            host: &self.helo,
        }
    }

    /// The inbound path for one invocation that must be over by `deadline`.
    pub fn inbound(&self, deadline: Deadline) -> Inbound<'_> {
        Inbound {
            mail: &self.store,
            probes: &self.store,
            courier: self.courier(),
            raw_prefix: &self.prefix,
            deadline,
        }
    }

    /// The queue's run for one invocation that must be over by `deadline`.
    pub fn queue(&self, deadline: Deadline) -> Queue<'_> {
        Queue {
            store: &self.store,
            mail: &self.store,
            courier: self.courier(),
            fan_out: self.fan_out,
            deadline,
        }
    }
}

/// The SES receiving event (the fields read; the rest of the event is ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SesEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SesRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SesRecord {
    pub ses: SesService,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SesService {
    pub mail: SesMail,
    pub receipt: SesReceipt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesMail {
    pub timestamp: DateTime<Utc>,
    /// Envelope sender; SES writes an empty string for `<>`.
    #[serde(default)]
    pub source: String,
    pub message_id: String,
}

/// The receipt as SES reports it, with its scan's verdicts (`ScanEnabled` on the rule, Q9).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SesReceipt {
    pub timestamp: DateTime<Utc>,
    pub recipients: Vec<String>,
    #[serde(default)]
    pub spam_verdict: SesVerdict,
    #[serde(default)]
    pub virus_verdict: SesVerdict,
    #[serde(default)]
    pub spf_verdict: SesVerdict,
    #[serde(default)]
    pub dkim_verdict: SesVerdict,
    #[serde(default)]
    pub dmarc_verdict: SesVerdict,
    /// The sender domain's DMARC policy, present when DMARC failed (`none`, `quarantine`, `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmarc_policy: Option<String>,
}

/// One verdict object (`{"status": "PASS"}`); a missing one reads as `GRAY` (not judged).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct SesVerdict {
    pub status: Verdict,
}

impl SesReceipt {
    /// The five verdicts as the inbound path reads them.
    pub fn verdicts(&self) -> Verdicts {
        Verdicts {
            spam: self.spam_verdict.status,
            virus: self.virus_verdict.status,
            spf: self.spf_verdict.status,
            dkim: self.dkim_verdict.status,
            dmarc: self.dmarc_verdict.status,
        }
    }
}

impl SesEvent {
    /// Reads the event as Lambda hands it over; anything else is a bad event.
    pub fn parse(event: serde_json::Value) -> Result<Self, BadEvent> {
        serde_json::from_value(event).map_err(|e| BadEvent(format!("SES event: {e}")))
    }

    /// An event for one message, as SES sends it with its verdicts (the local receiving
    /// stand-in builds these).
    pub fn single(
        message_id: &str,
        at: DateTime<Utc>,
        sender: &str,
        recipients: Vec<String>,
        verdicts: Verdicts,
    ) -> Self {
        let v = |status| SesVerdict { status };
        SesEvent {
            records: vec![SesRecord {
                ses: SesService {
                    mail: SesMail {
                        timestamp: at,
                        source: sender.to_string(),
                        message_id: message_id.to_string(),
                    },
                    receipt: SesReceipt {
                        timestamp: at,
                        recipients,
                        spam_verdict: v(verdicts.spam),
                        virus_verdict: v(verdicts.virus),
                        spf_verdict: v(verdicts.spf),
                        dkim_verdict: v(verdicts.dkim),
                        dmarc_verdict: v(verdicts.dmarc),
                        dmarc_policy: None,
                    },
                },
            }],
        }
    }
}

impl From<&SesRecord> for Receipt {
    fn from(r: &SesRecord) -> Self {
        let sender = r.ses.mail.source.trim();
        Receipt {
            ses_id: r.ses.mail.message_id.clone(),
            received_at: r.ses.mail.timestamp,
            sender: if sender == "<>" {
                String::new()
            } else {
                sender.to_string()
            },
            recipients: r.ses.receipt.recipients.clone(),
            verdicts: r.ses.receipt.verdicts(),
        }
    }
}

/// The inbound function's timeout as the template sets it (`InboundFunction`).
pub const INBOUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The queue function's timeout as the template sets it (`QueueFunction`).
pub const QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);

/// The deadline Lambda gives an invocation of a function with `timeout` starting now, less
/// the margin to settle: for the local runner and the tests, which invoke the handlers directly.
pub fn invocation_deadline(timeout: std::time::Duration) -> Deadline {
    Deadline::within(tokio::time::Instant::now().into_std(), timeout)
        .less(shared::domain::delivery::AFTER_DELIVERY_MARGIN)
}

/// The inbound handler: every record of the event, in order. The first error stops the event
/// (Lambda retries the whole event; records already handled are recognised as duplicates).
/// Deliveries give up by `deadline` (the invocation's, less a margin to settle).
pub async fn handle_ses(
    deps: &Deps,
    event: &SesEvent,
    deadline: Deadline,
) -> Result<Vec<InboundReport>, InboundError> {
    let mut out = Vec::with_capacity(event.records.len());
    for record in &event.records {
        let receipt = Receipt::from(record);
        let report = deps
            .inbound(deadline)
            .handle(&receipt, deps.clock.now())
            .await?;
        tracing::info!(
            ses_id = %report.ses_id,
            message_id = %report.message_id,
            size = report.size,
            probes = report.probes,
            filed = report.filed,
            organisations = ?report.organisations,
            refused = ?report.refused,
            "inbound message handled"
        );
        // Operators' view of mail SES accepted for a domain no organisation owns (a domain
        // removed from its organisation while still on the receipt rule): one line per
        // recipient, at warn, never dropped silently (README "Mail for domains nobody owns").
        for (rcpt, why) in &report.refused {
            tracing::warn!(ses_id = %report.ses_id, recipient = %rcpt, reason = %why, "{NO_OWNER}");
        }
        out.push(report);
    }
    Ok(out)
}

/// The log line of a recipient no organisation owns: the template's `UnownedRecipientsMetric`
/// counts exactly this message (`tests/tests/template_agreement.rs` checks they agree).
pub const NO_OWNER: &str = "inbound recipient not delivered: no owner";

pub use shared::adapters::lambda::ScheduledEvent;

/// The queue handler: one run at the event's time, over by `deadline`.
pub async fn handle_queue(
    deps: &Deps,
    event: ScheduledEvent,
    deadline: Deadline,
) -> Result<TickReport, StoreError> {
    deps.queue(deadline).tick(event.at(deps.clock.now())).await
}

/// Why an invocation of `inbound` or `queue` failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is not one this function reads: the same event never will be.
    #[error(transparent)]
    BadEvent(#[from] BadEvent),
    /// A received message could not be handled.
    #[error(transparent)]
    Inbound(#[from] InboundError),
    /// The queue's run could not list its organisations.
    #[error("queue run failed: {0}")]
    Queue(#[from] StoreError),
}

impl Failure for HandlerError {
    fn retryable(&self) -> bool {
        match self {
            HandlerError::BadEvent(e) => e.retryable(),
            HandlerError::Inbound(e) => e.retryable(),
            HandlerError::Queue(e) => e.retryable(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            HandlerError::BadEvent(e) => e.kind(),
            HandlerError::Inbound(e) => e.kind(),
            HandlerError::Queue(e) => e.kind(),
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        diagnostic(&e)
    }
}

/// The inbound handler as Lambda calls it: the SES event as sent, read here so that an
/// unreadable one is reported as such.
pub async fn handle_ses_event(
    deps: &Deps,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<Vec<InboundReport>, HandlerError> {
    let event = SesEvent::parse(event)?;
    Ok(handle_ses(deps, &event, deadline).await?)
}

/// One record of the dead-letter queue's redrive: an SQS message whose body is the on-failure
/// destination record Lambda wrote after the inbound function's last retry
/// (`requestPayload` is the SES event as it was sent).
#[derive(Debug, Deserialize)]
struct SqsRecord {
    #[serde(rename = "messageId")]
    message_id: String,
    body: String,
}

#[derive(Debug, Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

/// The fields of Lambda's on-failure destination record that the redrive reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailureRecord {
    request_payload: serde_json::Value,
}

/// Whether `event` is an SQS batch (the redrive) rather than SES's event.
fn is_sqs(event: &serde_json::Value) -> bool {
    event["Records"][0]["eventSource"].as_str() == Some("aws:sqs")
}

/// Replays the dead-letter queue (the `InboundRedrive` event source mapping, off until an
/// operator turns it on): each record's SES event handled as SES's own would be (a message
/// taken or delivered meanwhile is recognised as a duplicate). The answer is SQS's partial
/// batch response: the records that failed again stay in the queue, the rest are deleted.
pub async fn handle_redrive(
    deps: &Deps,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<serde_json::Value, HandlerError> {
    let batch: SqsEvent = serde_json::from_value(event)
        .map_err(|e| BadEvent(format!("SQS event of the dead-letter queue: {e}")))?;
    let mut failures = Vec::new();
    for record in &batch.records {
        let outcome = match serde_json::from_str::<FailureRecord>(&record.body)
            .map_err(|e| BadEvent(format!("on-failure record: {e}")))
            .and_then(|r| SesEvent::parse(r.request_payload))
        {
            Ok(ses) => handle_ses(deps, &ses, deadline)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                tracing::info!(sqs_message_id = %record.message_id, "dead-letter record replayed")
            }
            Err(e) => {
                tracing::warn!(sqs_message_id = %record.message_id, error = %e, "dead-letter record failed again; it stays in the queue");
                failures.push(serde_json::json!({ "itemIdentifier": record.message_id }));
            }
        }
    }
    Ok(serde_json::json!({ "batchItemFailures": failures }))
}

/// The inbound function as Lambda invokes it: SES's event, or the dead-letter queue's redrive.
pub async fn handle_event(
    deps: &Deps,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<serde_json::Value, HandlerError> {
    if is_sqs(&event) {
        return handle_redrive(deps, event, deadline).await;
    }
    let reports = handle_ses_event(deps, event, deadline).await?;
    serde_json::to_value(reports).map_err(|e| BadEvent(format!("report: {e}")).into())
}

/// The queue handler as Lambda calls it.
pub async fn handle_queue_event(
    deps: &Deps,
    event: serde_json::Value,
    deadline: Deadline,
) -> Result<TickReport, HandlerError> {
    let event = ScheduledEvent::parse(event)?;
    Ok(handle_queue(deps, event, deadline).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ports::error::BlobError;

    const SES: &str = include_str!("../../../tests/fixtures/ses-receipt.json");

    fn error_type(e: HandlerError) -> String {
        lambda_runtime::Diagnostic::from(e).error_type
    }

    #[test]
    fn transient_errors_are_retried_and_malformed_events_are_not() {
        assert_eq!(
            error_type(InboundError::Raw(BlobError::Transient("503".into())).into()),
            "Retryable.RawMessageUnavailable"
        );
        assert_eq!(
            error_type(InboundError::Store(StoreError::Transient("throttled".into())).into()),
            "Retryable.StoreUnavailable"
        );
        assert_eq!(
            error_type(InboundError::Raw(BlobError::NotFound("k".into())).into()),
            "NonRetryable.RawMessageMissing"
        );
        assert_eq!(
            error_type(StoreError::Transient("t".into()).into()),
            "Retryable.StoreUnavailable"
        );
        let bad = SesEvent::parse(serde_json::json!({ "Records": [{ "ses": {} }] })).unwrap_err();
        assert_eq!(error_type(bad.into()), "NonRetryable.BadEvent");
        let bad = ScheduledEvent::parse(serde_json::json!({ "time": 3 })).unwrap_err();
        assert_eq!(error_type(bad.into()), "NonRetryable.BadEvent");
    }

    #[test]
    fn the_ses_fixture_is_read() {
        let event = SesEvent::parse(serde_json::from_str(SES).unwrap()).unwrap();
        assert!(!event.records.is_empty());
    }
}
