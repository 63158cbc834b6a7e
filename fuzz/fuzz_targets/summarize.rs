//! Any bytes through the inbound path's pure part: summary (what is filed), header block and
//! bounce construction. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::mail::{FailedRecipient, delivery_status_notification, header_block, summarize};

fuzz_target!(|raw: &[u8]| {
    let s = summarize(raw);
    assert!(!s.message_id.is_empty());
    let _ = header_block(raw);
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let failed = [FailedRecipient {
        address: "b@acme.test".into(),
        status: "5.0.0".into(),
        diagnostic: "fuzz".into(),
    }];
    let _ = delivery_status_notification("m@s.test", "a@example.org", "id", now, now, &failed, raw);
});
