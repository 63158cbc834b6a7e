//! One test per attack (issue 12): each is named after what it tries and asserts the refusal and
//! that nothing changed (the organisation's partition, the mail and SMS sent, the servers' logs).
//!
//! - `tenancy`: another organisation's administrator or user, and a user without the admin
//!   group, on every route the OpenAPI document lists (a new route is attacked by itself).
//! - `secrets`: a configuration naming another organisation's probe secret or the link-signing
//!   key, with a server of the attacker's that would accept the stolen value.
//! - `identity`: the identity provider down or hanging, an administrator without a second
//!   factor, an address not verified, a session outliving its user's removal.
//! - `edge`: a burst from one source address (or one IPv6 /64 behind forged forwarding headers)
//!   on alert links and on sign-in, while other addresses are served.
//! - `writes`: 10,000 actions through one link, concurrent and stale configuration writes,
//!   the same request again and again.

mod edge;
mod identity;
mod secrets;
mod tenancy;
mod writes;
