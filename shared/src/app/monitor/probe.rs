//! The outbound check's probe (D3): one message per window from the organisation's own mailbox
//! to a unique address at the service, claimed before it is sent so that concurrent or retried
//! runs send it once.

use super::Monitor;
use crate::domain::config::OrgConfig;
use crate::domain::probe::{probe_message, ProbeToken};
use crate::domain::window::Window;
use serde::Serialize;

/// What became of the probe for the new window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProbeResult {
    /// The outbound check is off.
    Off,
    /// The organisation was not evaluated (its configuration is unusable): no probe either.
    Skipped,
    /// The run is late: the window the probe was for is over, so no probe is sent.
    TooLate,
    /// Another run claimed this window's probe.
    ClaimedElsewhere,
    Sent,
    /// Could not be sent (counts at the next window).
    NotSent {
        reason: String,
    },
    /// The claim or its result could not be stored.
    StoreFailed {
        reason: String,
    },
}

impl Monitor<'_> {
    /// Sends the probe for `window` (the one starting now), once across all runs.
    ///
    /// The one step of a run that reads the clock rather than taking the run's `now`: real
    /// elapsed time matters here. A run that fanned out over many organisations, or waited on a
    /// slow store, may already be past the probe's window (a probe sent then would be judged in
    /// the wrong window); and the probe's latency (D3) runs from its claim, so the claim must
    /// not carry the run's own delays.
    pub async fn probe(&self, cfg: &OrgConfig, window: Window) -> ProbeResult {
        let Some(mailbox) = cfg.probe.as_ref().filter(|_| cfg.monitoring.outbound_check) else {
            return ProbeResult::Off;
        };
        let now = self.clock.now();
        if Window::containing(now) != window {
            tracing::warn!(org = %cfg.org_id, %window, %now, "run is outside the probe's window: no probe sent");
            return ProbeResult::TooLate;
        }
        let token = ProbeToken::new(&cfg.org_id, window);
        match self
            .store
            .claim_probe(&cfg.org_id, window, &token.nonce, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return ProbeResult::ClaimedElsewhere,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "probe claim failed");
                return ProbeResult::StoreFailed {
                    reason: e.to_string(),
                };
            }
        }
        let recipient = token.recipient(&mailbox.probe_address);
        let message = probe_message(&token, &mailbox.from_address, &recipient, now);
        let result = self
            .logon
            .send(cfg, mailbox, &recipient, message.as_bytes(), now)
            .await
            // When the server took it, as measured.
            .map(|_| self.clock.now())
            .map_err(|e| e.text());
        if let Err(reason) = &result {
            tracing::warn!(org = %cfg.org_id, %window, %reason, host = %mailbox.host, method = mailbox.logon.name(), "probe not sent");
        }
        let outcome = match &result {
            Ok(_) => ProbeResult::Sent,
            Err(reason) => ProbeResult::NotSent {
                reason: reason.clone(),
            },
        };
        match self.store.finish_probe(&cfg.org_id, window, result).await {
            Ok(()) => outcome,
            Err(e) => {
                tracing::warn!(org = %cfg.org_id, %window, error = %e, "probe result not stored");
                ProbeResult::StoreFailed {
                    reason: e.to_string(),
                }
            }
        }
    }
}
