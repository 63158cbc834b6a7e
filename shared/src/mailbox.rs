//! The Online Inbox and Online Sent Items (U1-U8, C1-C3): pages, messages, compose, blocks,
//! delegates, distribution lists, client sync.
