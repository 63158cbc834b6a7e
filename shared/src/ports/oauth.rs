//! Access tokens from an identity platform's token endpoint (D9): client credentials with a
//! client secret or a certificate's JWT assertion (Microsoft), or a service account's JWT
//! assertion (Google, RFC 7523).

use async_trait::async_trait;
use std::time::Duration;

/// Which token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// The Microsoft identity platform, for one tenant (`<login>/<tenant>/oauth2/v2.0/token`).
    Microsoft { tenant: String },
    /// Google's OAuth 2.0 token endpoint.
    Google,
}

/// How the app proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Client credentials with a client secret (RFC 6749 4.4, `client_secret` in the body).
    ClientSecret { client_id: String, secret: String },
    /// Client credentials with a certificate: a JWT assertion signed with its key (RFC 7523 2.2).
    ClientCertificate {
        client_id: String,
        /// SHA-1 thumbprint, hex (Entra ID's form); sent as `x5t`.
        thumbprint_hex: String,
        key_pem: String,
    },
    /// A service account's JWT assertion as the grant (RFC 7523 2.1), acting for `subject`.
    ServiceAccount { key_json: String, subject: String },
}

/// One token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub issuer: Issuer,
    pub grant: Grant,
    /// `https://outlook.office365.com/.default`, `https://graph.microsoft.com/.default`,
    /// `https://mail.google.com/`.
    pub scope: String,
}

/// An access token and how long it lives, as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

/// Why no token was issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The endpoint answered with an error (RFC 6749 5.2).
    #[error("token endpoint refused: HTTP {status} {error}: {description}")]
    Refused {
        status: u16,
        error: String,
        description: String,
    },
    /// No usable answer: connection, timeout, not JSON.
    #[error("token endpoint unavailable: {0}")]
    Unavailable(String),
    /// The stored credential cannot be used (not a PEM key, not a service-account key).
    #[error("{0}")]
    BadCredential(String),
}

/// A token endpoint.
#[async_trait]
pub trait TokenEndpoint: Send + Sync {
    async fn token(&self, request: &TokenRequest) -> Result<AccessToken, TokenError>;
}
