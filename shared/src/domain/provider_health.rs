//! The provider's own view of its health (D10): an open Exchange Online incident from Microsoft's
//! service health, shown beside the counter in alerts, the portal and the history. It never
//! moves the counter (D2-D5): it tells an administrator at once whether an outage is theirs or
//! the provider's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The service whose health is read.
pub const EXCHANGE_ONLINE: &str = "Exchange Online";

/// One open incident as Microsoft reports it (a `serviceHealthIssue` that is not resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderIncident {
    /// Microsoft's id, e.g. `EX226792`.
    pub id: String,
    pub title: String,
    /// When it began (`startDateTime`).
    pub since: DateTime<Utc>,
    /// Microsoft's status word, e.g. `serviceDegradation`, `investigating`.
    pub status: String,
}

impl ProviderIncident {
    /// "Microsoft reports incident EX123456: <title>, since <time>".
    pub fn describe(&self) -> String {
        format!(
            "Microsoft reports incident {}: {}, since {}",
            self.id,
            self.title.trim(),
            self.since.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// An issue as the health overview lists it, before it is judged open or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedIssue {
    pub id: String,
    pub title: String,
    pub since: DateTime<Utc>,
    pub status: String,
    /// `incident` or `advisory` (Microsoft writes `Incident`, `Advisory`).
    pub classification: String,
    pub is_resolved: bool,
}

/// The incident to show, if any: the most recent open incident. Advisories (a feature partly
/// affected, mail flowing) and resolved issues are not shown as an outage.
pub fn open_incident(issues: &[ReportedIssue]) -> Option<ProviderIncident> {
    issues
        .iter()
        .filter(|i| !i.is_resolved && i.classification.eq_ignore_ascii_case("incident"))
        .max_by_key(|i| i.since)
        .map(|i| ProviderIncident {
            id: i.id.clone(),
            title: i.title.clone(),
            since: i.since,
            status: i.status.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(id: &str, class: &str, resolved: bool, since: &str) -> ReportedIssue {
        ReportedIssue {
            id: id.into(),
            title: format!("title of {id}"),
            since: DateTime::parse_from_rfc3339(since)
                .unwrap()
                .with_timezone(&Utc),
            status: "serviceDegradation".into(),
            classification: class.into(),
            is_resolved: resolved,
        }
    }

    #[test]
    fn only_open_incidents_count() {
        let issues = [
            issue("EX1", "Incident", true, "2026-11-30T09:00:00Z"),
            issue("EX2", "Advisory", false, "2026-11-30T09:30:00Z"),
            issue("EX3", "Incident", false, "2026-11-30T08:00:00Z"),
            issue("EX4", "incident", false, "2026-11-30T08:30:00Z"),
        ];
        let i = open_incident(&issues).unwrap();
        assert_eq!(i.id, "EX4");
        assert_eq!(
            i.describe(),
            "Microsoft reports incident EX4: title of EX4, since 2026-11-30 08:30 UTC"
        );
        assert_eq!(open_incident(&issues[..2]), None);
    }
}
