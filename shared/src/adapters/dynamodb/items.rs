//! Readers of the items that both the monitor's window read and the portal's view read: the
//! `COUNTER` item and the `CONTINUITY` item's state and marks (`TABLE.md`). Kept apart from
//! `monitor.rs` and `continuity.rs` so that neither port implementation imports the other.

use super::codec::{get_n, get_time, opt_s, Item};
use crate::domain::continuity::{ContinuityState, EventMarks};
use crate::domain::monitoring::CounterState;
use crate::domain::window::Window;
use crate::ports::error::StoreError;

/// Reads the `COUNTER` item.
pub(super) fn parse_counter(item: &Item) -> Result<CounterState, StoreError> {
    Ok(CounterState {
        value: get_n(item, "value")?,
        window: Window(get_n(item, "window")?),
        threshold: get_n(item, "threshold")?,
    })
}

/// Reads the `CONTINUITY` item's event and suspension.
pub(super) fn parse_continuity(item: &Item) -> Result<ContinuityState, StoreError> {
    Ok(ContinuityState {
        event_started_at: get_time(item, "event_started_at")?,
        event_until: get_time(item, "event_until")?,
        event_stopped_at: get_time(item, "event_stopped_at")?,
        suspended_until: get_time(item, "suspended_until")?,
    })
}

/// Reads the `CONTINUITY` item's marks: which event, and what was announced and told of it.
pub(super) fn parse_marks(item: &Item) -> EventMarks {
    EventMarks {
        event_id: opt_s(item, "event_id"),
        via: opt_s(item, "event_via"),
        start_announced: opt_s(item, "start_announced"),
        end_announced: opt_s(item, "end_announced"),
        auto_episode: opt_s(item, "auto_episode"),
        users_told_start: opt_s(item, "users_told_start"),
        users_told_end: opt_s(item, "users_told_end"),
    }
}
