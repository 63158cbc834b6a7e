//! Errors a caller can act on: a failed condition (someone else got there first), a transient
//! fault (retry), a permanent one (log and give up), a missing or corrupt item.

/// Errors of the storage adapters.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: another writer changed the item first.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// Throttling, a timeout, a 5xx, a dropped connection: the same call may succeed later.
    #[error("transient store error: {0}")]
    Transient(String),
    /// Anything else: bad request, missing table, access denied.
    #[error("store error: {0}")]
    Permanent(String),
    /// An item exists but cannot be read as its type.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    pub fn is_conditional_check_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed(_))
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

/// Errors fetching a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0:?} not found")]
    NotFound(String),
    #[error("secret {name:?} has no string value")]
    NotString { name: String },
    #[error("transient error reading secret {name:?}: {reason}")]
    Transient { name: String, reason: String },
    #[error("cannot read secret {name:?}: {reason}")]
    Permanent { name: String, reason: String },
}

/// Errors of the raw message store (S3).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object under that key: the receipt rule's S3 action did not store it (or it expired).
    #[error("raw message {0:?} not found")]
    NotFound(String),
    /// Throttling, a timeout, a 5xx: the same call may succeed later.
    #[error("transient error reading raw message: {0}")]
    Transient(String),
    /// Access denied, missing bucket, bad request.
    #[error("cannot access raw message: {0}")]
    Permanent(String),
}

/// Errors sending mail, SMS or events.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Throttling, or no connection at all: nothing was sent; send again later.
    #[error("transient error sending mail: {0}")]
    Transient(String),
    /// Refused (unverified sender, bad address, sending paused): will not succeed as it is.
    #[error("mail refused: {0}")]
    Permanent(String),
    /// The request may have reached the service but no definite answer came back (a timeout,
    /// a connection dropped after sending, a 5xx): it may have been sent. A caller that must
    /// send at most once treats it as sent, never as a refusal.
    #[error("the mail service did not confirm: {0}")]
    Unknown(String),
}

impl SendError {
    /// Whether the service may have taken the message (only [`SendError::Unknown`]).
    pub fn maybe_sent(&self) -> bool {
        matches!(self, SendError::Unknown(_))
    }
}

/// Why a configuration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutConfigError {
    #[error(transparent)]
    Invalid(#[from] crate::domain::config::ConfigErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another organisation's configuration already lists this domain.
    #[error("domains: {0:?} belongs to another organisation")]
    DomainTaken(String),
    /// The stored configuration is no longer the version the write replaces (another write
    /// came first): nothing was stored.
    #[error("the configuration changed since version {read} was read")]
    Stale { read: u64 },
}

/// An error as a function reports it to Lambda: whether running the same event again may
/// succeed, and a stable name of the failure. Lambda shows both in the invocation's `errorType`
/// (`Retryable.StoreUnavailable`, `NonRetryable.BadEvent`), where alarms, log filters and
/// failure destinations can tell a fault worth retrying from one that is not.
pub trait Failure: std::fmt::Display {
    /// Whether the same event may succeed later.
    fn retryable(&self) -> bool;
    /// A stable name of the failure, without spaces.
    fn kind(&self) -> &'static str;
}

impl Failure for StoreError {
    /// Only a fault of the moment: a lost condition, a refused request or a corrupt item will
    /// be the same on a retry.
    fn retryable(&self) -> bool {
        self.is_transient()
    }
    fn kind(&self) -> &'static str {
        match self {
            StoreError::Transient(_) => "StoreUnavailable",
            StoreError::ConditionFailed(_) => "StoreConditionFailed",
            StoreError::Permanent(_) => "StoreRefused",
            StoreError::Corrupt { .. } => "CorruptItem",
        }
    }
}

impl Failure for BlobError {
    fn retryable(&self) -> bool {
        matches!(self, BlobError::Transient(_))
    }
    fn kind(&self) -> &'static str {
        match self {
            BlobError::Transient(_) => "RawMessageUnavailable",
            BlobError::NotFound(_) => "RawMessageMissing",
            BlobError::Permanent(_) => "RawMessageRefused",
        }
    }
}
