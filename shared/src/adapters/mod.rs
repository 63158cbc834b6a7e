//! Adapters: the ports implemented against the outside world. One module per service:
//! [`dynamodb`] (the table), [`ses`] (mail out through SES, and the email alert channel),
//! [`sns`] (the SMS alert channel), [`eventbridge`] (the event bus), [`s3`] (raw messages),
//! [`secrets_manager`], [`dns`] (domain proofs through a real resolver), [`sesv2`] (organisations'
//! sending identities), [`smtp`] (the probe's submission and delivery to the organisation's
//! server), [`oauth`] (token endpoints), [`graph`] (Microsoft Graph), [`jwks`] (the identity
//! provider's keys, and a local issuer), [`clock`]. [`notify`]
//! puts the channels and the bus together from their settings. What they share: [`aws`] (SDK
//! settings and the one reading of SDK errors), [`lambda`] (what every function's entry point
//! needs: settings, logging, the scheduled event, errors as Lambda reports them), and
//! [`error_chain`].

pub mod aws;
pub mod clock;
pub mod dns;
pub mod dynamodb;
pub mod eventbridge;
pub mod graph;
pub mod jwks;
pub mod lambda;
pub mod notify;
pub mod oauth;
pub mod s3;
pub mod secrets_manager;
pub mod ses;
pub mod sesv2;
pub mod smtp;
pub mod sns;

/// An error and its sources, one after the other (`a: b: c`), each said once: SDK and SMTP
/// errors hide the useful part (a refused connection, a TLS failure) in their sources.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        src = e.source();
    }
    out
}
