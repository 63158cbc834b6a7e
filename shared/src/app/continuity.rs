//! Continuity actions as one use case (P2-P7, P9, P10): whoever asks - an alert link's page, the
//! signed-in administration API, the monitor's automatic activation - the action is one
//! conditional update, and what took effect is audited and published on the bus the same way.
//! The monitor's announcements of an event's start (planned) and end (by itself, P6) are here
//! too, so that every `Continuity*` event on the bus comes from one place.

use crate::domain::config::OrgConfig;
use crate::domain::continuity::{
    self, Action, ActionOutcome, AuditRecord, ContinuityState, EventMarks, Phase, Via,
};
use crate::ports::error::StoreError;
use crate::ports::notify::EventBus;
use crate::ports::store::ContinuityStore;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Who asks for an action, how, and from where: the audit's "who, how, source" (P7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// `link:{alert id}`, `admin:{subject}`, `service:auto-activation`.
    pub who: String,
    pub via: Via,
    /// The caller's address (`-` for the service itself).
    pub source: String,
    /// Unique per request; a retried request carries the same one (the action happens once).
    pub request_id: String,
}

/// The continuity use case's collaborators.
pub struct Continuity<'a> {
    pub store: &'a dyn ContinuityStore,
    pub bus: &'a dyn EventBus,
}

impl Continuity<'_> {
    /// Carries out `action` at `now`, once per request: the state, the request's record and the
    /// audit record in one transaction (P7); then the event on the bus. A repeated request
    /// changes nothing and audits nothing; a refusal changes nothing.
    pub async fn perform(
        &self,
        org_id: &str,
        action: &Action,
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError> {
        let audit = |before: &ContinuityState, after: &ContinuityState| {
            audit_record(
                org_id,
                (action.name(), action.minutes()),
                by,
                now,
                (before, after),
            )
        };
        let outcome = self
            .store
            .continuity_action_audited(org_id, action, by.via, &by.request_id, now, Some(&audit))
            .await?;
        match &outcome {
            ActionOutcome::Applied { before, after } => {
                tracing::info!(org = org_id, who = %by.who, via = ?by.via, action = action.name(),
                    minutes = ?action.minutes(), source = %by.source, "continuity action");
                let until = match action {
                    Action::Suspend { .. } => after.suspended_until,
                    _ => after.event_end(),
                };
                self.publish(
                    &audit(before, after),
                    action.event_name(),
                    &[("until", json!(until))],
                )
                .await;
            }
            ActionOutcome::Repeated { .. } => {
                tracing::info!(org = org_id, who = %by.who, action = action.name(),
                    request_id = %by.request_id, "repeated request: nothing changed");
            }
            ActionOutcome::Refused { refusal, .. } => {
                tracing::info!(org = org_id, who = %by.who, action = action.name(),
                    reason = %refusal, "continuity action refused");
            }
        }
        Ok(outcome)
    }

    /// Activates continuity mode by itself for the alert episode `episode_id` (P9), at most once
    /// per episode; audited and published like an administrator's activation. The state after
    /// it when this call activated it, `None` when it did not (already active, or done before).
    pub async fn activate_automatically(
        &self,
        org_id: &str,
        episode_id: &str,
        minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<ContinuityState>, StoreError> {
        let by = Requester {
            who: "service:auto-activation".into(),
            via: Via::Automatic,
            source: "-".into(),
            request_id: format!("auto-{episode_id}"),
        };
        let audit = |before: &ContinuityState, after: &ContinuityState| {
            audit_record(
                org_id,
                ("activate", Some(minutes)),
                &by,
                now,
                (before, after),
            )
        };
        match self
            .store
            .auto_activate(org_id, episode_id, minutes, now, Some(&audit))
            .await?
        {
            ActionOutcome::Applied { before, after } => {
                tracing::info!(
                    org = org_id,
                    episode = episode_id,
                    minutes,
                    "continuity mode activated automatically"
                );
                self.publish(
                    &audit(&before, &after),
                    "ContinuityActivated",
                    &[
                        ("until", json!(after.event_until)),
                        ("automatic", json!(true)),
                    ],
                )
                .await;
                Ok(Some(after))
            }
            _ => Ok(None),
        }
    }

    /// Publishes an audit record (stored already, in the transaction of the change it records)
    /// as `event` with `extra` fields added (at least once: a failure is logged, never undoes
    /// what was stored). Every administrator's change is published through it.
    pub async fn publish(&self, record: &AuditRecord, event: &str, extra: &[(&str, Value)]) {
        publish_audit(self.bus, record, event, extra).await;
    }

    /// Announces a planned event's start (P10) and every event's end (P6) once each: the
    /// announcement is claimed by a conditional write, so concurrent runs announce nothing twice.
    /// Never fails; what could not be announced is tried again at the next run.
    pub async fn announce(
        &self,
        org_id: &str,
        marks: &EventMarks,
        state: &ContinuityState,
        now: DateTime<Utc>,
    ) {
        let Some(event_id) = marks.event_id.as_deref() else {
            return;
        };
        if let Phase::Continuity { start, end } = state.phase(now) {
            if marks.start_announced.as_deref() != Some(event_id) {
                match self.store.claim_announcement(org_id, event_id, true).await {
                    Ok(true) => {
                        tracing::info!(
                            org = org_id,
                            event = event_id,
                            "planned continuity event started"
                        );
                        let detail = json!({
                            "org_id": org_id, "event_id": event_id, "via": marks.via,
                            "planned": true, "start": start, "until": end,
                        });
                        self.bus.publish_or_log("ContinuityActivated", detail).await;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(org = org_id, error = %e, "event start not announced"),
                }
            }
        }
        if let Some(end) = ended(state, now) {
            if marks.end_announced.as_deref() != Some(event_id) {
                match self.store.claim_announcement(org_id, event_id, false).await {
                    Ok(true) => {
                        tracing::info!(org = org_id, event = event_id, ended = %end, "continuity event ended");
                        let detail = json!({
                            "org_id": org_id, "event_id": event_id, "via": marks.via,
                            "start": state.event_started_at.unwrap_or(end), "ended_at": end,
                            "stopped": state.event_stopped_at.is_some(),
                        });
                        self.bus.publish_or_log("ContinuityEnded", detail).await;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(org = org_id, error = %e, "event end not announced"),
                }
            }
        }
    }
}

/// Publishes an audit record as `event` on `bus`, with `extra` fields added (at least once: a
/// failure is logged). THE shape of every audited change's event.
pub async fn publish_audit(
    bus: &dyn EventBus,
    record: &AuditRecord,
    event: &str,
    extra: &[(&str, Value)],
) {
    let mut detail = serde_json::to_value(record).unwrap_or_default();
    if let Some(obj) = detail.as_object_mut() {
        for (k, v) in extra {
            obj.insert((*k).to_string(), v.clone());
        }
    }
    bus.publish_or_log(event, detail).await;
}

/// When the event ended, if it has (its end passed, or it was stopped) and it had started.
pub fn ended(state: &ContinuityState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let end = state.event_end()?;
    let started = state.event_started_at.unwrap_or(end);
    (end <= now && started <= end).then_some(end)
}

/// Automatic activation is due (P9) for this organisation's open episode, and not yet done for
/// it: the minutes to activate for.
pub fn automatic_activation_due(
    cfg: &OrgConfig,
    episode: Option<(&str, DateTime<Utc>)>,
    marks: &EventMarks,
    state: &ContinuityState,
    now: DateTime<Utc>,
) -> Option<u32> {
    let (id, since) = episode?;
    let minutes = continuity::auto_activation_due(
        cfg.continuity.auto_activate.as_ref(),
        Some(since),
        state,
        now,
    )?;
    (marks.auto_episode.as_deref() != Some(id)).then_some(minutes)
}

/// The audit record of an action that moved the continuity state from `states.0` to `states.1`.
fn audit_record(
    org_id: &str,
    action: (&str, Option<u32>),
    by: &Requester,
    now: DateTime<Utc>,
    states: (&ContinuityState, &ContinuityState),
) -> AuditRecord {
    AuditRecord {
        org_id: org_id.to_string(),
        at: now,
        who: by.who.clone(),
        via: by.via,
        what: action.0.to_string(),
        minutes: action.1,
        before: serde_json::to_value(states.0).unwrap_or_default(),
        after: serde_json::to_value(states.1).unwrap_or_default(),
        source: by.source.clone(),
        request_id: by.request_id.clone(),
    }
}
