//! Ports: what the use cases need from the world, one trait per capability, each as narrow as
//! its callers allow. Adapters implement them (`crate::adapters`); tests may implement them in
//! memory for pure logic, never in place of the real services for behaviour that depends on them.
//!
//! [`store`] (the table, by capability), [`mail`] (mail out: routes, probe, SES), [`notify`]
//! (alert channels, the event bus), [`domains`] (proofs, SES identities, claims), [`blob`] (raw
//! messages), [`secrets`], [`oauth`] (access tokens), [`graph`] (Microsoft Graph), [`identity`]
//! (the identity provider's keys), [`clock`], and [`error`] (the errors they answer with, by
//! kind).

pub mod blob;
pub mod clock;
pub mod domains;
pub mod error;
pub mod graph;
pub mod identity;
pub mod mail;
pub mod mailbox_store;
pub mod notify;
pub mod oauth;
pub mod secrets;
pub mod store;
