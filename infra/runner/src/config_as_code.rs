//! Configuration as code, against a table: plan (show what would change) and apply (store what
//! changed, through the same validation as the administration API), the user directory a file
//! carries (`users`) included. Used by the
//! `continuity-config` command (AWS or local) and by the local runner's `--config` files.

use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::config_as_code::{self, OrgPlan};
use shared::ports::store::{ConfigStore, ContinuityStore};
use std::path::Path;

/// Reads, validates and plans every file; nothing is written.
pub async fn plan(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
) -> Result<Vec<(OrgPlan, shared::domain::config::OrgConfig)>, String> {
    plan_at(store, files, chrono::Utc::now()).await
}

/// As [`plan`], at `now` (the directory's import time).
async fn plan_at(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
    now: DateTime<Utc>,
) -> Result<Vec<(OrgPlan, shared::domain::config::OrgConfig)>, String> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|e| format!("{name}: {e}"))?;
        for (cfg, users) in
            config_as_code::parse_documents(&name, &text).map_err(|e| e.to_string())?
        {
            if out
                .iter()
                .any(|(p, _): &(OrgPlan, _)| p.org_id == cfg.org_id)
            {
                return Err(format!(
                    "organisation {} is configured by more than one file",
                    cfg.org_id
                ));
            }
            let stored = store
                .get_config(&cfg.org_id)
                .await
                .map_err(|e| format!("{name}: reading organisation {}: {e}", cfg.org_id))?;
            let mut p = config_as_code::plan(stored.as_ref(), &cfg);
            if let Some(rows) = users {
                let current = store
                    .user_directory(&cfg.org_id)
                    .await
                    .map_err(|e| format!("{name}: reading organisation {}: {e}", cfg.org_id))?;
                p = p
                    .with_users(&cfg, &rows, &current, now)
                    .map_err(|e| format!("{name}: organisation {}: {e}", cfg.org_id))?;
            }
            out.push((p, cfg));
        }
    }
    Ok(out)
}

/// Plans, then stores every configuration that differs; returns the plans (all files are
/// validated before anything is written).
pub async fn apply(
    store: &DynamoStore,
    files: &[impl AsRef<Path>],
    now: DateTime<Utc>,
) -> Result<Vec<OrgPlan>, String> {
    let plans = plan_at(store, files, now).await?;
    let mut out = Vec::new();
    for (p, cfg) in plans {
        let config_changed = p.create || p.changes.iter().any(|c| c.path != "users");
        if config_changed {
            store
                .put_config(&cfg, now)
                .await
                .map_err(|e| format!("organisation {}: {e}", cfg.org_id))?;
        }
        if let Some(d) = &p.users {
            store
                .put_user_directory(&cfg.org_id, d)
                .await
                .map_err(|e| format!("organisation {}: users: {e}", cfg.org_id))?;
        }
        out.push(p);
    }
    Ok(out)
}
