//! Delegates and distribution lists as administrators set them (U5, U6): each change is written
//! with its audit record in one transaction (P7: a grant that lets one user read another's
//! mailbox is never in force unaudited), then published on the bus as `DirectoryChanged`.

use crate::app::continuity::{Continuity, Requester};
use crate::app::settings::change_record;
use crate::domain::continuity::AuditRecord;
use crate::domain::directory::{Grant, ImportOutcome};
use crate::ports::error::StoreError;
use crate::ports::store::DirectoryStore;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The use case's collaborators.
pub struct Directory<'a> {
    pub store: &'a dyn DirectoryStore,
    pub continuity: Continuity<'a>,
}

impl Directory<'_> {
    /// Grants `g` (`user` may use `mailbox`), audited as `delegate-grant`.
    pub async fn grant(&self, org: &str, g: &Grant, by: &Requester) -> Result<(), StoreError> {
        let record = change_record(
            org,
            "delegate-grant",
            by,
            g.granted_at,
            json!({"user": g.user, "mailbox": g.mailbox}),
        );
        self.store.grant_delegate(org, g, &record).await?;
        self.publish(&record).await;
        Ok(())
    }

    /// Revokes the grant of `mailbox` to `user`, audited as `delegate-revoke`; `false` when
    /// there was none (nothing changed, nothing audited).
    pub async fn revoke(
        &self,
        org: &str,
        (user, mailbox): (&str, &str),
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let record = change_record(
            org,
            "delegate-revoke",
            by,
            now,
            json!({"user": user, "mailbox": mailbox}),
        );
        let revoked = self
            .store
            .revoke_delegate(org, user, mailbox, &record)
            .await?;
        if revoked {
            self.publish(&record).await;
        }
        Ok(revoked)
    }

    /// Replaces every distribution list with `groups`, audited as `groups-import` (how many
    /// lists were written and removed; the lists themselves are the `GROUP#` items).
    pub async fn import_groups(
        &self,
        org: &str,
        groups: &[(String, Vec<String>)],
        by: &Requester,
        now: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError> {
        let members: usize = groups.iter().map(|(_, m)| m.len()).sum();
        let record_of = |outcome: &ImportOutcome| {
            let after = match outcome {
                ImportOutcome::Replaced { groups, removed } => {
                    json!({"groups": groups, "removed": removed, "members": members})
                }
                ImportOutcome::TooLarge { changes } => json!({"refused": changes}),
            };
            change_record(org, "groups-import", by, now, after)
        };
        let outcome = self
            .store
            .replace_groups(org, groups, now, &record_of)
            .await?;
        if matches!(outcome, ImportOutcome::Replaced { .. }) {
            self.publish(&record_of(&outcome)).await;
        }
        Ok(outcome)
    }

    async fn publish(&self, record: &AuditRecord) {
        self.continuity
            .publish(record, "DirectoryChanged", &[])
            .await;
    }
}
