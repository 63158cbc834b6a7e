//! The whole summary of a message whose item had to be cut (issue 13): stored in the mail bucket
//! before the items that point at it are written, and read back when the message is opened.
//!
//! The rule on both sides is [`crate::domain::item_budget`]: an item keeps what fits in
//! [`crate::domain::item_budget::FILED_SUMMARY_BYTES`]; when anything was cut the item's
//! `summary_key` is [`overflow_key`] of its raw key, and the object there is the summary as
//! [`crate::domain::mail::summarize`] read it (JSON). Writing it again writes the same bytes
//! (a repeated event, several organisations, a retried send): idempotent.

use crate::domain::item_budget::{fit, overflow_key};
use crate::domain::mail::MessageSummary;
use crate::domain::mailbox::Listed;
use crate::ports::blob::RawMessages;
use crate::ports::error::BlobError;

/// Keeps the whole summary of the message stored at `raw_key` when its items will have to cut
/// it: `full` stored at [`overflow_key`] (one PutObject; none for the usual message that fits),
/// before the items are written, so an item never names an object that is not there yet.
/// Returns `full` cut to its budget, for what only needs the items' part (the search index, the
/// queue item). The items themselves are given `full`: the store cuts it the same way and,
/// seeing it cut, names the object (`summary_key`).
pub async fn keep_overflow(
    raw: &dyn RawMessages,
    raw_key: &str,
    full: &MessageSummary,
) -> Result<MessageSummary, BlobError> {
    let fitted = fit(full);
    if fitted.overflowed {
        let json = serde_json::to_vec(full)
            .map_err(|e| BlobError::Permanent(format!("summary as JSON: {e}")))?;
        raw.put(&overflow_key(raw_key), json).await?;
        tracing::info!(
            raw_key,
            bytes = full.subject.as_ref().map_or(0, String::len),
            to = full.to.len(),
            cc = full.cc.len(),
            attachments = full.attachments.len(),
            "summary over the item budget: the whole one kept in the bucket"
        );
    }
    Ok(fitted.summary)
}

/// `l` with its whole summary when its item says the summary was cut (one GetObject; none for
/// a message that fit). The object gone or unreadable leaves the item's summary, with a log
/// line: the message still opens, with what the list shows.
pub async fn complete(raw: &dyn RawMessages, mut l: Listed) -> Result<Listed, BlobError> {
    let Some(key) = l.summary_key.clone() else {
        return Ok(l);
    };
    match raw.get(&key).await {
        Ok(bytes) => match serde_json::from_slice::<MessageSummary>(&bytes) {
            Ok(full) => {
                // The item's Message-ID, thread and kind are what the list, threads and sync
                // use; the object only adds what was cut.
                l.summary = MessageSummary {
                    message_id: l.summary.message_id,
                    thread: l.summary.thread,
                    ..full
                };
            }
            Err(e) => tracing::warn!(key, error = %e, "unreadable full summary; the item's shown"),
        },
        Err(BlobError::NotFound(_)) => {
            tracing::warn!(key, "full summary missing; the item's shown")
        }
        Err(e) => return Err(e),
    }
    Ok(l)
}
