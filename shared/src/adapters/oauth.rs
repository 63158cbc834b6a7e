//! Token endpoints over HTTPS (D9): the Microsoft identity platform's client-credentials grant
//! (client secret, or a certificate's JWT assertion) and Google's JWT-bearer grant for a service
//! account with domain-wide delegation (RFC 6749 4.4, RFC 7523 2.1 and 2.2). The endpoints' base
//! addresses are settings ([`OauthEndpoints`]): the real hosts over https in AWS, a loopback
//! stand-in on a workstation.

use crate::ports::oauth::{AccessToken, Grant, Issuer, TokenEndpoint, TokenError, TokenRequest};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use std::time::Duration;

/// Where the identity platforms and Graph are, as settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthEndpoints {
    /// `MICROSOFT_LOGIN_URL`: base of the Microsoft identity platform
    /// (`https://login.microsoftonline.com`); the token endpoint is
    /// `<base>/<tenant>/oauth2/v2.0/token`.
    pub microsoft_login: String,
    /// `GOOGLE_TOKEN_URL`: Google's token endpoint (`https://oauth2.googleapis.com/token`).
    pub google_token: String,
    /// `GRAPH_URL`: base of Microsoft Graph (`https://graph.microsoft.com`).
    pub graph: String,
}

/// The real hosts each setting may name (with the national clouds), over https.
const MICROSOFT_LOGIN_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
];
const GOOGLE_TOKEN_HOSTS: &[&str] = &["oauth2.googleapis.com"];
const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

impl Default for OauthEndpoints {
    fn default() -> Self {
        OauthEndpoints {
            microsoft_login: "https://login.microsoftonline.com".into(),
            google_token: "https://oauth2.googleapis.com/token".into(),
            graph: "https://graph.microsoft.com".into(),
        }
    }
}

impl OauthEndpoints {
    /// Reads `MICROSOFT_LOGIN_URL`, `GOOGLE_TOKEN_URL` and `GRAPH_URL` (each optional). Inside
    /// Lambda (`AWS_LAMBDA_FUNCTION_NAME`, set by the runtime) only https to the real hosts is
    /// accepted; elsewhere a loopback stand-in (`http://127.0.0.1:N`) too.
    pub fn from_env() -> Result<Self, String> {
        let in_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok_and(|v| !v.is_empty());
        let d = OauthEndpoints::default();
        let read = |name: &str, value: Option<String>, default: String, hosts: &[&str]| match value
            .filter(|v| !v.trim().is_empty())
        {
            None => Ok(default),
            Some(v) => check_url(name, v.trim(), hosts, in_lambda),
        };
        Ok(OauthEndpoints {
            microsoft_login: read(
                "MICROSOFT_LOGIN_URL",
                std::env::var("MICROSOFT_LOGIN_URL").ok(),
                d.microsoft_login,
                MICROSOFT_LOGIN_HOSTS,
            )?,
            google_token: read(
                "GOOGLE_TOKEN_URL",
                std::env::var("GOOGLE_TOKEN_URL").ok(),
                d.google_token,
                GOOGLE_TOKEN_HOSTS,
            )?,
            graph: read(
                "GRAPH_URL",
                std::env::var("GRAPH_URL").ok(),
                d.graph,
                GRAPH_HOSTS,
            )?,
        })
    }

    /// The token endpoint of `issuer`.
    pub fn token_url(&self, issuer: &Issuer) -> String {
        match issuer {
            Issuer::Microsoft { tenant } => format!(
                "{}/{}/oauth2/v2.0/token",
                self.microsoft_login.trim_end_matches('/'),
                tenant
            ),
            Issuer::Google => self.google_token.clone(),
        }
    }
}

/// `value` is https to one of `hosts`, or (outside Lambda) http(s) to a loopback address.
pub fn check_url(
    name: &str,
    value: &str,
    hosts: &[&str],
    in_lambda: bool,
) -> Result<String, String> {
    let url =
        reqwest::Url::parse(value).map_err(|e| format!("{name}: {value:?} is not a URL: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    let real = url.scheme() == "https" && hosts.contains(&host) && url.port().is_none();
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]")
        && matches!(url.scheme(), "http" | "https");
    if real || (loopback && !in_lambda) {
        Ok(value.trim_end_matches('/').to_string())
    } else if in_lambda {
        Err(format!(
            "{name} must be https://{} in AWS (got {value:?})",
            hosts.join(" or https://")
        ))
    } else {
        Err(format!(
            "{name} must be https://{} or a loopback stand-in such as http://127.0.0.1:8443 (got {value:?})",
            hosts.join(" or https://")
        ))
    }
}

/// The token endpoints over HTTP.
pub struct HttpTokenEndpoint {
    endpoints: OauthEndpoints,
    http: reqwest::Client,
}

impl HttpTokenEndpoint {
    pub fn new(endpoints: OauthEndpoints, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A token endpoint answers itself; a redirect would carry the credential elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpTokenEndpoint { endpoints, http })
    }
}

/// A successful token response (RFC 6749 5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// An error response (RFC 6749 5.2).
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// A Google service-account key file (the fields used).
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
}

/// Claims of a JWT assertion (RFC 7523 3).
#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

fn bad(what: impl std::fmt::Display) -> TokenError {
    TokenError::BadCredential(what.to_string())
}

/// Signs `claims` with the RSA key `pem` (RS256).
fn sign(header: Header, claims: &Assertion<'_>, pem: &str) -> Result<String, TokenError> {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
        bad(format!(
            "the probe secret does not hold an RSA private key in PEM form: {e}"
        ))
    })?;
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| bad(format!("signing the assertion: {e}")))
}

impl HttpTokenEndpoint {
    /// The form of a request: the grant's parameters.
    fn form(
        &self,
        req: &TokenRequest,
        url: &str,
    ) -> Result<Vec<(&'static str, String)>, TokenError> {
        // Assertions are for the remote party's clock: the real time, whatever the caller's.
        let now = chrono::Utc::now().timestamp();
        let jti = hex::encode(rand::random::<[u8; 16]>());
        Ok(match &req.grant {
            Grant::ClientSecret { client_id, secret } => vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", secret.clone()),
                ("scope", req.scope.clone()),
            ],
            Grant::ClientCertificate {
                client_id,
                thumbprint_hex,
                key_pem,
            } => {
                let thumb = hex::decode(thumbprint_hex)
                    .map_err(|_| bad("probe.logon.certificate_thumbprint is not hex"))?;
                let mut header = Header::new(Algorithm::RS256);
                header.x5t = Some(URL_SAFE_NO_PAD.encode(thumb));
                let claims = Assertion {
                    iss: client_id,
                    sub: client_id,
                    aud: url,
                    iat: now,
                    nbf: now,
                    exp: now + 600,
                    jti,
                    scope: None,
                };
                vec![
                    ("grant_type", "client_credentials".into()),
                    ("client_id", client_id.clone()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                    ),
                    ("client_assertion", sign(header, &claims, key_pem)?),
                    ("scope", req.scope.clone()),
                ]
            }
            Grant::ServiceAccount { key_json, subject } => {
                let key: ServiceAccountKey = serde_json::from_str(key_json).map_err(|e| {
                    bad(format!(
                        "the probe secret is not a service-account key (JSON): {e}"
                    ))
                })?;
                let mut header = Header::new(Algorithm::RS256);
                header.kid = key.private_key_id.clone();
                let claims = Assertion {
                    iss: &key.client_email,
                    sub: subject,
                    aud: url,
                    iat: now,
                    nbf: now,
                    exp: now + 3600,
                    jti,
                    scope: Some(&req.scope),
                };
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", sign(header, &claims, &key.private_key)?),
                ]
            }
        })
    }
}

#[async_trait]
impl TokenEndpoint for HttpTokenEndpoint {
    async fn token(&self, req: &TokenRequest) -> Result<AccessToken, TokenError> {
        let url = self.endpoints.token_url(&req.issuer);
        let form = self.form(req, &url)?;
        let resp = self.http.post(&url).form(&form).send().await.map_err(|e| {
            TokenError::Unavailable(format!("{url}: {}", crate::adapters::error_chain(&e)))
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{url}: {e}")))?;
        if (200..300).contains(&status) {
            let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                TokenError::Unavailable(format!("{url}: unreadable token response: {e}"))
            })?;
            // Microsoft once sent expires_in as a string; either form is read. One hour when absent.
            let secs = match t.expires_in {
                Some(serde_json::Value::Number(n)) => n.as_u64(),
                Some(serde_json::Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .unwrap_or(3600);
            return Ok(AccessToken {
                token: t.access_token,
                expires_in: Duration::from_secs(secs),
            });
        }
        match serde_json::from_slice::<ErrorResponse>(&body) {
            // Both fields reach the history, the alert and the portal: bounded, whatever the
            // endpoint (or something posing as it) sends.
            Ok(e) => Err(TokenError::Refused {
                status,
                error: e.error.chars().take(100).collect(),
                description: e.error_description.chars().take(300).collect(),
            }),
            Err(_) => Err(TokenError::Unavailable(format!(
                "{url} answered HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_settings_are_the_real_hosts_or_loopback_outside_aws() {
        let ms = MICROSOFT_LOGIN_HOSTS;
        assert!(check_url("X", "https://login.microsoftonline.com/", ms, true).is_ok());
        assert!(check_url("X", "http://127.0.0.1:9000", ms, false).is_ok());
        let e = check_url("X", "http://127.0.0.1:9000", ms, true).unwrap_err();
        assert!(e.contains("in AWS"), "{e}");
        for bad in [
            "http://login.microsoftonline.com",
            "https://login.microsoftonline.com.evil.example",
            "https://evil.example",
            "https://login.microsoftonline.com:8443",
            "not a url",
        ] {
            assert!(check_url("X", bad, ms, false).is_err(), "{bad}");
        }
        let d = OauthEndpoints::default();
        assert_eq!(
            d.token_url(&Issuer::Microsoft {
                tenant: "contoso.onmicrosoft.com".into()
            }),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }
}
