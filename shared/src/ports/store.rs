//! Storage ports: what the use cases need from the table, one trait per capability. The records
//! that cross them live in the domain. The DynamoDB adapter is `crate::adapters::dynamodb`; its
//! item layout is in `shared/src/adapters/dynamodb/TABLE.md`.

use crate::domain::alerts::Episode;
use crate::domain::config::{OrgConfig, StoredConfig};
use crate::domain::continuity::{ActionOutcome, AuditRecord, ContinuityState};
use crate::domain::directory::{DirectoryUser, Grant, ImportOutcome, UserDirectory};
use crate::domain::mailbox::Filing;
use crate::domain::monitoring::{
    ArrivalOutcome, CommitOutcome, DeliveryOutcome, HistoryEntry, OrgEntry, PortalView, WindowState,
};
use crate::domain::probe::ProbeToken;
use crate::domain::queue::{
    AcceptOutcome, Departure, DueOrg, QueueFigures, QueueState, QueuedMessage, SetAside,
};
use crate::domain::sign_in::{Session, StoredCode};
use crate::domain::window::Window;
use crate::ports::error::{PutConfigError, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

pub use super::mailbox_store::{MailboxStore, Postings, SearchIndex};

/// The audit record of an action that moved the continuity state from the first state to the
/// second: the store writes it in the same transaction as the action.
pub type AuditOf<'a> = dyn Fn(&ContinuityState, &ContinuityState) -> AuditRecord + Send + Sync + 'a;

/// Continuity events and the audit (P2-P10), as the portal, the API and the monitor use them.
#[async_trait]
pub trait ContinuityStore: Send + Sync {
    /// Applies `action` at `now` once per `request_id` (a retried or concurrent duplicate is
    /// `Repeated`; the request is remembered for a few days, beyond any link's life): the state,
    /// the request's record and, given `audit`, the audit record in one transaction.
    async fn continuity_action_audited(
        &self,
        org_id: &str,
        action: &crate::domain::continuity::Action,
        via: crate::domain::continuity::Via,
        request_id: &str,
        now: DateTime<Utc>,
        audit: Option<&AuditOf<'_>>,
    ) -> Result<ActionOutcome, StoreError>;
    /// [`ContinuityStore::continuity_action_audited`] without an audit record (tools, tests).
    async fn continuity_action(
        &self,
        org_id: &str,
        action: &crate::domain::continuity::Action,
        via: crate::domain::continuity::Via,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, StoreError> {
        self.continuity_action_audited(org_id, action, via, request_id, now, None)
            .await
    }
    /// Activates continuity mode for the alert episode `episode_id` (P9), at most once per
    /// episode; with `audit`'s record in the same transaction.
    async fn auto_activate(
        &self,
        org_id: &str,
        episode_id: &str,
        minutes: u32,
        now: DateTime<Utc>,
        audit: Option<&AuditOf<'_>>,
    ) -> Result<ActionOutcome, StoreError>;
    /// Claims the announcement of event `event_id`'s start (`start`) or end; `true`: announce it.
    async fn claim_announcement(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<bool, StoreError>;
    /// Counts event `event_id` among the events whose users are told on `day` (`YYYY-MM-DD`),
    /// unless `cap` events are counted there already: `true` when it is counted (now or by an
    /// earlier run), `false` when the day's budget is spent.
    async fn claim_notice_event(
        &self,
        org_id: &str,
        day: &str,
        event_id: &str,
        cap: usize,
    ) -> Result<bool, StoreError>;
    /// Records that users were told of event `event_id`'s start (`start`) or end (A6).
    async fn mark_users_told(
        &self,
        org_id: &str,
        event_id: &str,
        start: bool,
    ) -> Result<(), StoreError>;
    /// The user directory as last imported (empty when never imported).
    async fn user_directory(&self, org_id: &str) -> Result<UserDirectory, StoreError>;
    /// Replaces the user directory as a whole, atomically for its readers; how many users the
    /// directory held before. A concurrent import makes one of the two fail with
    /// `StoreError::ConditionFailed` (nothing of it visible). Given `audit`, its record (made
    /// from the count before) is written in the transaction that makes the import visible.
    async fn put_user_directory_audited(
        &self,
        org_id: &str,
        directory: &UserDirectory,
        audit: Option<&CountAudit<'_>>,
    ) -> Result<usize, StoreError>;
    /// [`ContinuityStore::put_user_directory_audited`] without an audit record (configuration
    /// as code's first import, tools, tests).
    async fn put_user_directory(
        &self,
        org_id: &str,
        directory: &UserDirectory,
    ) -> Result<usize, StoreError> {
        self.put_user_directory_audited(org_id, directory, None)
            .await
    }
}

/// The audit record of a directory import, made from its outcome (lists written, removed).
pub type ImportAudit<'a> = dyn Fn(&ImportOutcome) -> AuditRecord + Send + Sync + 'a;

/// The audit record of a change whose "before" only the store knows (how many items it
/// replaced): the store makes it and writes it in the change's transaction.
pub type CountAudit<'a> = dyn Fn(usize) -> AuditRecord + Send + Sync + 'a;

/// What the alerting needs from storage (A2, A4, A5).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Opens an episode; `false` when one is already open (another run got there first).
    async fn start_episode(&self, org_id: &str, episode: &Episode) -> Result<bool, StoreError>;
    /// The open episode.
    async fn episode(&self, org_id: &str) -> Result<Option<Episode>, StoreError>;
    /// Closes the episode `id`; `false` when it was no longer open.
    async fn end_episode(&self, org_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Claims one send (alert id, contact, channel). `true`: the caller sends. A claim whose send
    /// failed, or that was left unfinished for longer than `stale_after`, can be claimed again.
    async fn claim_send(
        &self,
        org_id: &str,
        send_key: &str,
        now: DateTime<Utc>,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError>;
    /// Records the result of a claimed send.
    async fn finish_send(
        &self,
        org_id: &str,
        send_key: &str,
        result: Result<String, String>,
    ) -> Result<(), StoreError>;
}

/// What the monitor needs from storage.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    /// Every organisation with monitoring on.
    async fn monitored_orgs(&self) -> Result<Vec<OrgEntry>, StoreError>;
    /// Counter, inbound counts and probe of one window.
    async fn window_state(&self, org_id: &str, window: Window) -> Result<WindowState, StoreError>;
    /// Continuity events (P6, P9, P10), when this store keeps them.
    fn continuity(&self) -> Option<&dyn ContinuityStore> {
        None
    }
    /// Writes the history item and moves the counter, atomically, only if the window has not been
    /// evaluated and the counter is still at `expected` (the last window read; `None`: no counter yet).
    async fn commit_window(
        &self,
        org_id: &str,
        expected: Option<Window>,
        entry: &HistoryEntry,
    ) -> Result<CommitOutcome, StoreError>;
    /// Claims the right to send the probe of `window`; `false` when another run holds it.
    async fn claim_probe(
        &self,
        org_id: &str,
        window: Window,
        nonce: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records the send result of a claimed probe.
    async fn finish_probe(
        &self,
        org_id: &str,
        window: Window,
        result: Result<DateTime<Utc>, String>,
    ) -> Result<(), StoreError>;
}

/// What the delivery path reports for the inbound check (D2).
#[async_trait]
pub trait InboundRecorder: Send + Sync {
    /// Counts one delivery outcome in the window containing `at`: one atomic update.
    async fn record_delivery(
        &self,
        org_id: &str,
        at: DateTime<Utc>,
        outcome: DeliveryOutcome,
    ) -> Result<(), StoreError>;
}

/// What the receiving path reports when a probe arrives (D3, Q7).
#[async_trait]
pub trait ProbeArrivals: Send + Sync {
    async fn record_probe_arrival(
        &self,
        token: &ProbeToken,
        at: DateTime<Utc>,
    ) -> Result<ArrivalOutcome, StoreError>;
}

/// Reads the queue figures. The queue keeps them: the `QUEUESTAT` item's `count` moves in the
/// same transaction as each enqueue and dequeue, and queued messages sort by enqueue time under
/// `QUEUE#` (see TABLE.md).
#[async_trait]
pub trait QueueFiguresSource: Send + Sync {
    async fn queue_figures(&self, org_id: &str) -> Result<QueueFigures, StoreError>;
}

/// What the inbound function needs from storage (Q2, Q6, U6).
#[async_trait]
pub trait MailStore: DomainOwners + SearchIndex {
    async fn org_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError>;
    /// Members of those of `addresses` that are distribution lists (last directory import).
    async fn group_members(
        &self,
        org_id: &str,
        addresses: &[String],
    ) -> Result<HashMap<String, Vec<String>>, StoreError>;
    /// Which of `mailboxes` have blocked `sender` (its address or domain) or marked it as spam
    /// (U4): their Online Inbox does not get its mail.
    async fn blocked_mailboxes(
        &self,
        org_id: &str,
        mailboxes: &[String],
        sender: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError>;
    /// Files the message in each mailbox; keyed on the SES message id, so a repeat overwrites
    /// the same items (one record).
    async fn file_message(
        &self,
        filing: &Filing<'_>,
        mailboxes: &[String],
    ) -> Result<(), StoreError>;
    /// Notes on the once-per-message record that the message was filed in every mailbox
    /// (the inbound path takes a message into the queue first, then files it).
    async fn mark_filed(
        &self,
        org_id: &str,
        ses_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Whether the message's filing was finished (a repeated event after a crash between the
    /// queue and the filing files it again; one after a finished filing does not).
    async fn filed(&self, org_id: &str, ses_id: &str) -> Result<bool, StoreError>;
    /// Takes the message into the queue once per SES message id, as its parts
    /// ([`QueuedMessage::parts`]: the first carries the id; at most
    /// [`crate::domain::queue::MAX_PARTS`]), in one transaction with the queue count (which
    /// counts queue items: parts); `wake` is when the queue should look at the organisation at
    /// the latest.
    async fn accept_message(
        &self,
        parts: &[QueuedMessage],
        wake: DateTime<Utc>,
    ) -> Result<AcceptOutcome, StoreError>;
    /// Sets a received message aside instead of taking it (a virus, Q9): once per SES message
    /// id, with its audit record, in one transaction; a repeat is a duplicate.
    async fn quarantine(
        &self,
        record: &SetAside,
        audit: &AuditRecord,
    ) -> Result<AcceptOutcome, StoreError>;
}

/// What the queue (and the inbound function after its attempt) needs from storage (Q3-Q6).
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Organisations whose queue marker is due at `now` (one Query of the sparse index).
    async fn due_orgs(&self, now: DateTime<Utc>) -> Result<Vec<DueOrg>, StoreError>;
    /// Claims a due organisation until `lease_until`; `None` when another run got it first.
    async fn claim_org(
        &self,
        due: &DueOrg,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<QueueState>, StoreError>;
    /// The oldest queued messages, oldest first.
    async fn oldest(&self, org_id: &str, limit: usize) -> Result<Vec<QueuedMessage>, StoreError>;
    /// Removes a message (if still there) with the count, and records why.
    async fn dequeue(
        &self,
        msg: &QueuedMessage,
        why: Departure,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Stores the message's new state (remaining recipients, attempts, error, lease), if still queued.
    async fn requeue(&self, msg: &QueuedMessage) -> Result<(), StoreError>;
    /// Points a queued message at another copy of its raw bytes (if still queued).
    async fn set_raw_key(&self, msg: &QueuedMessage, raw_key: &str) -> Result<(), StoreError>;
    /// Sets when to look at the organisation next and its consecutive failures; `paused_at`
    /// records that deliveries were paused at that time.
    async fn set_wake(
        &self,
        org_id: &str,
        wake: DateTime<Utc>,
        failures: u32,
        paused_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// The organisation's queue looked empty: takes it off the due index if the count is 0,
    /// otherwise (a message arrived meanwhile) wakes it at `fallback`.
    async fn settle_idle(&self, org_id: &str, fallback: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records mail set aside (undeliverable and not bounced, Q10) with its audit record; a
    /// repeat of the same record changes nothing.
    async fn set_aside(&self, record: &SetAside, audit: &AuditRecord) -> Result<(), StoreError>;
}

/// What the queue view shows administrators (P8, Q3, Q9, Q10): why mail is waiting.
#[derive(Debug, Clone, Default)]
pub struct QueueSnapshot {
    /// When the queue looks at the organisation next (its backoff), if it has queued mail.
    pub next_look: Option<DateTime<Utc>>,
    /// Consecutive failed retries (the backoff's exponent).
    pub failures: u32,
    /// The oldest queued messages, oldest first.
    pub queued: Vec<QueuedMessage>,
    /// Mail set aside in the last 30 days (quarantined, undeliverable without a bounce), newest first.
    pub set_aside: Vec<SetAside>,
}

/// Reads the queue view.
#[async_trait]
pub trait QueueViews: Send + Sync {
    async fn queue_snapshot(&self, org_id: &str, limit: usize)
        -> Result<QueueSnapshot, StoreError>;
}

/// Which organisation owns each domain: the inbound path files mail by it (Q2), sign-in finds a
/// user's organisation by it (U7).
#[async_trait]
pub trait DomainOwners: Send + Sync {
    /// Which organisation owns each of `domains` (exact domain names; absent ones are not ours).
    async fn orgs_for_domains(
        &self,
        domains: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;
}

/// An organisation's configuration, as the administration API reads and replaces it (P8).
#[async_trait]
pub trait ConfigStore: Send + Sync {
    async fn get_config(&self, org_id: &str) -> Result<Option<OrgConfig>, StoreError>;
    /// The configuration with its version.
    async fn stored_config(&self, org_id: &str) -> Result<Option<StoredConfig>, StoreError>;
    /// Validates and stores `config` as the version after `previous` (`None`: there is none
    /// yet), with its domains' ownership, in one transaction conditional on `previous` still
    /// being the stored version: a write that lost a race stores nothing
    /// ([`PutConfigError::Stale`]), so no update is lost and no domain item orphaned. A domain
    /// another organisation owns refuses the whole change. The version stored.
    async fn replace_config(
        &self,
        config: &OrgConfig,
        previous: Option<&StoredConfig>,
        now: DateTime<Utc>,
    ) -> Result<u64, PutConfigError> {
        self.replace_config_audited(config, previous, now, None)
            .await
    }
    /// [`ConfigStore::replace_config`] with `audit`'s record in the same transaction (P7): the
    /// change and its audit item are stored together or not at all.
    async fn replace_config_audited(
        &self,
        config: &OrgConfig,
        previous: Option<&StoredConfig>,
        now: DateTime<Utc>,
        audit: Option<&crate::domain::continuity::AuditRecord>,
    ) -> Result<u64, PutConfigError>;
    /// [`ConfigStore::replace_config`] of the version stored now (read first): for writers that
    /// did not read it (configuration as code, tools); a write in between still makes it stale.
    async fn put_config(
        &self,
        config: &OrgConfig,
        now: DateTime<Utc>,
    ) -> Result<(), PutConfigError> {
        let previous = self.stored_config(&config.org_id).await?;
        self.replace_config(config, previous.as_ref(), now)
            .await
            .map(|_| ())
    }
}

/// What the portal and the administration API show of continuity (P1, P7).
#[async_trait]
pub trait ContinuityViews: Send + Sync {
    /// Continuity mode and notification suspension (one consistent read).
    async fn continuity_state(&self, org_id: &str) -> Result<ContinuityState, StoreError>;
    /// The portal page's view with the history of windows `from..=to`.
    async fn portal_view(
        &self,
        org_id: &str,
        from: Window,
        to: Window,
    ) -> Result<PortalView, StoreError>;
    /// Audit records between `from` and `to`, newest first, at most `limit`.
    async fn audit(
        &self,
        org_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Delegates and distribution lists, as administrators set them (U5, U6).
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Grants `g` (replacing an earlier grant of the same pair), with `audit`'s record in the
    /// same transaction (P7).
    async fn grant_delegate(
        &self,
        org_id: &str,
        g: &Grant,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Revokes a grant, with `audit`'s record in the same transaction: `false` (nothing
    /// written, nothing audited) when there was no such grant.
    async fn revoke_delegate(
        &self,
        org_id: &str,
        user: &str,
        mailbox: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
    async fn is_delegate(
        &self,
        org_id: &str,
        user: &str,
        mailbox: &str,
    ) -> Result<bool, StoreError>;
    /// Grants, of one user or of everyone.
    async fn delegates(&self, org_id: &str, user: Option<&str>) -> Result<Vec<Grant>, StoreError>;
    /// Replaces every distribution list at once, with the audit record `audit` makes of the
    /// outcome (one transaction).
    async fn replace_groups(
        &self,
        org_id: &str,
        groups: &[(String, Vec<String>)],
        synced_at: DateTime<Utc>,
        audit: &ImportAudit<'_>,
    ) -> Result<ImportOutcome, StoreError>;
    /// Every list with its members, and when they were imported.
    async fn groups(
        &self,
        org_id: &str,
    ) -> Result<(Vec<(String, Vec<String>)>, Option<DateTime<Utc>>), StoreError>;
    async fn directory_synced_at(&self, org_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// What a code request reads about an address (U11).
#[derive(Debug, Clone, Default)]
pub struct SignInContext {
    /// The organisation's configuration (none: the organisation is not served).
    pub config: Option<OrgConfig>,
    /// Its continuity state (codes may be offered during events only).
    pub continuity: ContinuityState,
    /// The user, if the directory lists the address.
    pub user: Option<DirectoryUser>,
}

/// A request counter of a rate limit: sign-in (U11), the actions of alert links, requests per
/// source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateCounter {
    /// Code requests for one address in the hour starting at the given epoch second.
    Address { address: String, window: i64 },
    /// Requests from one source (its key: `domain::source_limits::source_key`) to one area
    /// of the API in the window starting at the given epoch second.
    Source {
        area: crate::domain::source_limits::Area,
        source: String,
        window: i64,
    },
    /// Actions through one alert link (the organisation's alert `alert_id`) in the hour starting
    /// at the given epoch second.
    Link {
        org_id: String,
        alert_id: String,
        window: i64,
    },
    /// Actions through all of an organisation's alert links in that hour.
    OrgLinks { org_id: String, window: i64 },
    /// Uploads asked for by one user (`domain::uploads::user_digest`) of an organisation in the
    /// hour starting at the given epoch second (issue 13).
    Uploads {
        org_id: String,
        user: String,
        window: i64,
    },
}

/// Counters of rate limits: one atomic increment per request.
#[async_trait]
pub trait RateCounters: Send + Sync {
    /// Adds one to `counter` (kept until `expires`); the count after.
    async fn count_request(
        &self,
        counter: &RateCounter,
        expires: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
}

/// The service's own sign-in (U11): the directory's users as sign-in reads them, one-time
/// codes, the rate limits' counters, the organisation's SMS budget and the sessions.
#[async_trait]
pub trait SignInStore: RateCounters + Send + Sync {
    /// The organisation's configuration, continuity state and the directory's entry for
    /// `address`. An address on no organisation's domain is looked up under an organisation id
    /// that cannot exist, so that it costs the same requests.
    async fn sign_in_context(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<SignInContext, StoreError>;
    /// Stores a fresh code for `address`, replacing the previous one, unless the address is in
    /// its cool-down at `code.issued_at` (`false`: nothing written).
    async fn put_code(&self, address: &str, code: &StoredCode) -> Result<bool, StoreError>;
    /// The current code of `address`.
    async fn code(&self, address: &str) -> Result<Option<StoredCode>, StoreError>;
    /// Spends one try of the code issued at `issued_at`, if it is still the current one, unused
    /// and has tries left; `None` otherwise. The tries after.
    async fn spend_try(
        &self,
        address: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;
    /// Marks the code issued at `issued_at` used, once: `false` when it was used already or
    /// replaced.
    async fn use_code(
        &self,
        address: &str,
        issued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Starts the cool-down of `address` until `until`.
    async fn lock_address(&self, address: &str, until: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes one SMS from the organisation's budget for `day` (`YYYY-MM-DD`, UTC): `false` when
    /// `cap` were taken already.
    async fn take_sms(&self, org_id: &str, day: &str, cap: u32) -> Result<bool, StoreError>;
    /// Stores a session under the digest of its token.
    async fn put_session(&self, digest: &str, session: &Session) -> Result<(), StoreError>;
    /// The session of a token's digest (expired ones included: the caller checks).
    async fn session(&self, digest: &str) -> Result<Option<Session>, StoreError>;
    /// Records that the directory was asked about the session's user at `at`: `false` when the
    /// session is gone (signed out or ended meanwhile; nothing written).
    async fn session_checked(&self, digest: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Ends a session (absent is fine).
    async fn delete_session(&self, digest: &str) -> Result<(), StoreError>;
    /// Ends every session opened for `address` of `org_id`; how many. Found through an
    /// eventually consistent index: a session opened in the same instant may be missed.
    async fn end_user_sessions(&self, org_id: &str, address: &str) -> Result<usize, StoreError>;
}

/// A user's passkey, as stored (U11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub org_id: String,
    pub address: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The relying party's record of the credential (`webauthn_rs::Passkey` as JSON).
    pub passkey: String,
    /// The user's name for it ("Work laptop").
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Passkeys and their ceremonies (U11).
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// The user's passkeys.
    async fn passkeys(&self, org_id: &str, address: &str)
        -> Result<Vec<PasskeyRecord>, StoreError>;
    /// The passkey with this credential id, whoever's it is.
    async fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StoreError>;
    /// Stores a new passkey: `false` when its credential id is registered already (to anyone).
    /// Given `audit`, its record is written in the same transaction (P7).
    async fn add_passkey_audited(
        &self,
        record: &PasskeyRecord,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError>;
    /// [`PasskeyStore::add_passkey_audited`] without an audit record (tests).
    async fn add_passkey(&self, record: &PasskeyRecord) -> Result<bool, StoreError> {
        self.add_passkey_audited(record, None).await
    }
    /// Stores a passkey's updated record (signature counter, backup state) and when it was used.
    async fn touch_passkey(
        &self,
        record: &PasskeyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Removes one passkey of the user: `false` when it was not theirs or not there. Given
    /// `audit`, its record is written in the same transaction (P7).
    async fn remove_passkey_audited(
        &self,
        org_id: &str,
        address: &str,
        credential_id: &str,
        audit: Option<&AuditRecord>,
    ) -> Result<bool, StoreError>;
    /// [`PasskeyStore::remove_passkey_audited`] without an audit record (tests).
    async fn remove_passkey(
        &self,
        org_id: &str,
        address: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError> {
        self.remove_passkey_audited(org_id, address, credential_id, None)
            .await
    }
    /// Removes the passkeys `credential_ids` of the user (those still there) and writes
    /// `audit`, in one transaction (at most [`crate::app::passkeys::MAX_PASSKEYS`] passkeys).
    async fn remove_passkeys_audited(
        &self,
        org_id: &str,
        address: &str,
        credential_ids: &[String],
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    /// Keeps a ceremony's state (registration or authentication) until `expires`.
    async fn put_ceremony(
        &self,
        id: &str,
        state: &str,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Takes a ceremony's state, once (a second take finds nothing); expired ones are gone.
    async fn take_ceremony(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;
}
