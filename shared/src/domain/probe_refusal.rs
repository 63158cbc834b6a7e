//! Why a probe could not log on or send, in words an administrator acts on (D9).
//!
//! One table ([`ROWS`]) of the refusals seen in practice, from the submission server (SMTP
//! replies with enhanced status codes), the identity platform's token endpoint (RFC 6749
//! section 5.2 errors, with Microsoft's `AADSTS` codes) and Microsoft Graph (HTTP status and
//! error code). The first row that matches says what happened and what to do; an answer no row
//! knows is still reported, with what the other side said. The alert and the window history
//! carry the sentence, so that "Exchange Online refused the logon: Basic authentication is not
//! supported (550 5.7.30); switch the probe to OAuth" reaches the administrator rather than a
//! bare code.

use crate::domain::config::ProbeLogon;

/// What the other side answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// An SMTP reply: its code and text (the text starts with the enhanced code when there is
    /// one: `5.7.30 Basic authentication is not supported for Client Submission.`).
    Smtp { code: u16, text: &'a str },
    /// The SMTP client gave up before a reply (lettre's words): no shared mechanism, or a
    /// challenge where the mechanism expects none (Google's XOAUTH2 refusal starts with one).
    SmtpClient { text: &'a str },
    /// A token endpoint's error response (RFC 6749 5.2): HTTP status, `error`,
    /// `error_description`.
    Token {
        status: u16,
        error: &'a str,
        description: &'a str,
    },
    /// Microsoft Graph's error response: HTTP status, `error.code`, `error.message`.
    Graph {
        status: u16,
        code: &'a str,
        message: &'a str,
    },
}

/// Which way the probe logged on, as the table tells the methods apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Password,
    MicrosoftOauth,
    Graph,
    Google,
}

impl Way {
    pub fn of(logon: &ProbeLogon) -> Way {
        match logon {
            ProbeLogon::Password => Way::Password,
            ProbeLogon::Oauth2ClientCredentials(_) => Way::MicrosoftOauth,
            ProbeLogon::GraphSendmail(_) => Way::Graph,
            ProbeLogon::GoogleXoauth2 => Way::Google,
        }
    }

    fn oauth(self) -> bool {
        self != Way::Password
    }
}

/// A refusal explained: a stable id (for tests and logs) and the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub id: &'static str,
    pub text: String,
}

/// One row: when it applies, what happened, what to do.
pub struct Row {
    pub id: &'static str,
    pub matches: fn(&Answer<'_>, Way) -> bool,
    pub what: &'static str,
    pub action: &'static str,
}

fn smtp_enhanced(a: &Answer<'_>, enhanced: &str) -> bool {
    matches!(a, Answer::Smtp { text, .. } if text.trim_start().starts_with(enhanced)
        && text.trim_start()[enhanced.len()..].starts_with([' ', '\0']))
        || matches!(a, Answer::Smtp { text, .. } if text.trim() == enhanced)
}

fn smtp_code(a: &Answer<'_>, codes: &[u16]) -> bool {
    matches!(a, Answer::Smtp { code, .. } if codes.contains(code))
}

fn token(a: &Answer<'_>, error: &str, aadsts: Option<&str>) -> bool {
    matches!(a, Answer::Token { error: e, description, .. }
        if *e == error && aadsts.is_none_or(|code| description.contains(code)))
}

fn aadsts(a: &Answer<'_>, code: &str) -> bool {
    matches!(a, Answer::Token { description, .. } if description.contains(code))
}

fn graph(a: &Answer<'_>, statuses: &[u16]) -> bool {
    matches!(a, Answer::Graph { status, .. } if statuses.contains(status))
}

/// The refusals, first match wins.
pub const ROWS: &[Row] = &[
    // ---- the submission server (SMTP)
    Row {
        id: "smtp-basic-auth-disabled",
        matches: |a, _| smtp_enhanced(a, "5.7.30"),
        what: "Exchange Online refused the logon: Basic authentication is not supported",
        action: "switch the probe to OAuth (probe.logon.method oauth2-client-credentials or graph-sendmail)",
    },
    Row {
        id: "smtp-auth-disabled",
        matches: |a, _| smtp_enhanced(a, "5.7.139"),
        what: "Exchange Online refused the logon: SMTP AUTH is turned off for the tenant or the mailbox, or security defaults block it",
        action: "allow authenticated SMTP for the probe mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false) or switch the probe to graph-sendmail",
    },
    Row {
        id: "smtp-token-refused-microsoft",
        matches: |a, w| w == Way::MicrosoftOauth && (smtp_enhanced(a, "5.7.3") || smtp_code(a, &[535])),
        what: "Exchange Online refused the app's access token",
        action: "register the app's service principal in Exchange Online and give it FullAccess to the probe mailbox (New-ServicePrincipal, Add-MailboxPermission), and grant SMTP.SendAsApp with admin consent",
    },
    Row {
        id: "smtp-token-refused-google",
        matches: |a, w| {
            w == Way::Google
                && (smtp_code(a, &[535])
                    || matches!(a, Answer::SmtpClient { text } if text.contains("challenge")))
        },
        what: "Google refused the access token",
        action: "authorise the service account's client id for https://mail.google.com/ under domain-wide delegation (Admin console, Security, API controls) and check that probe.username is a Workspace user",
    },
    Row {
        id: "smtp-login-refused",
        matches: |a, w| w == Way::Password && smtp_code(a, &[535]),
        what: "the submission server refused the login",
        action: "check probe.username and the password in the organisation's probe secret",
    },
    Row {
        id: "smtp-auth-required",
        matches: |a, _| smtp_code(a, &[530, 538]),
        what: "the submission server requires authentication or encryption the probe did not use",
        action: "check probe.port and probe.tls (587 with starttls, or 465 with implicit)",
    },
    Row {
        id: "smtp-mechanism-missing",
        matches: |a, _| {
            smtp_code(a, &[504])
                || matches!(a, Answer::SmtpClient { text } if text.contains("No compatible authentication mechanism"))
        },
        what: "the submission server does not offer the probe's logon mechanism",
        action: "XOAUTH2 needs the provider's own submission host on port 587 with STARTTLS (smtp.office365.com, smtp.gmail.com); a password needs AUTH PLAIN or LOGIN",
    },
    // ---- the Microsoft identity platform's token endpoint
    Row {
        id: "token-client-secret-invalid",
        matches: |a, _| aadsts(a, "AADSTS7000215"),
        what: "the Microsoft identity platform refused the client secret",
        action: "store the Value (not the Secret ID) of a current client secret of the app in the organisation's probe secret",
    },
    Row {
        id: "token-client-secret-expired",
        matches: |a, _| aadsts(a, "AADSTS7000222"),
        what: "the app's client secret has expired",
        action: "add a new client secret to the app in Entra ID and store its Value in the organisation's probe secret",
    },
    Row {
        id: "token-certificate-refused",
        matches: |a, _| aadsts(a, "AADSTS700027") || aadsts(a, "AADSTS700024"),
        what: "the Microsoft identity platform refused the certificate assertion",
        action: "upload the certificate to the app registration, check probe.logon.certificate_thumbprint, and store its private key (PEM) in the organisation's probe secret",
    },
    Row {
        id: "token-app-not-in-tenant",
        matches: |a, _| aadsts(a, "AADSTS700016"),
        what: "the app was not found in the tenant: not registered there, or no administrator consented to it",
        action: "check probe.logon.client_id and probe.logon.tenant, and grant admin consent for the app in that tenant",
    },
    Row {
        id: "token-tenant-unknown",
        matches: |a, _| aadsts(a, "AADSTS90002") || aadsts(a, "AADSTS900023"),
        what: "the Microsoft identity platform does not know the tenant",
        action: "check probe.logon.tenant (the tenant id, or a domain of the tenant)",
    },
    Row {
        id: "token-consent-missing",
        matches: |a, w| aadsts(a, "AADSTS65001") || (w != Way::Google && token(a, "invalid_grant", None)),
        what: "an administrator has not consented to the app's permissions",
        action: "grant admin consent for the app's application permissions (SMTP.SendAsApp, Mail.Send, ServiceHealth.Read.All) in Entra ID",
    },
    Row {
        id: "token-delegation-missing",
        matches: |a, w| w == Way::Google && token(a, "unauthorized_client", None),
        what: "Google refused the service account: domain-wide delegation is not authorised for it",
        action: "in the Admin console (Security, API controls, Domain-wide delegation) authorise the service account's client id for https://mail.google.com/",
    },
    Row {
        id: "token-assertion-refused-google",
        matches: |a, w| w == Way::Google && token(a, "invalid_grant", None),
        what: "Google refused the service account's assertion",
        action: "store a current key of the service account (JSON) in the organisation's probe secret and check that probe.username is a Workspace user",
    },
    Row {
        id: "token-client-refused",
        matches: |a, _| token(a, "invalid_client", None) || token(a, "unauthorized_client", None),
        what: "the token endpoint refused the app's credential",
        action: "check probe.logon.client_id (an Entra ID app) or the service account's key (Google), and the credential in the organisation's probe secret",
    },
    Row {
        id: "token-scope-refused",
        matches: |a, _| token(a, "invalid_scope", None),
        what: "the token endpoint refused the scope the probe asks for",
        action: "grant the app the permission the method needs (SMTP.SendAsApp, Mail.Send or https://mail.google.com/)",
    },
    Row {
        id: "token-endpoint-unavailable",
        matches: |a, _| matches!(a, Answer::Token { status, .. } if *status >= 500 || *status == 429),
        what: "the token endpoint is unavailable (the provider's side)",
        action: "nothing on your side: the probe tries again next window",
    },
    // ---- Microsoft Graph
    Row {
        id: "graph-forbidden",
        matches: |a, _| graph(a, &[403]),
        what: "Microsoft Graph refused to send as the probe mailbox",
        action: "grant the app Mail.Send (application) with admin consent, and include the probe mailbox in its application access policy or RBAC for Applications scope",
    },
    Row {
        id: "graph-token-refused",
        matches: |a, _| graph(a, &[401]),
        what: "Microsoft Graph refused the app's access token",
        action: "grant the app Mail.Send (application) with admin consent",
    },
    Row {
        id: "graph-mailbox-unknown",
        matches: |a, _| graph(a, &[404]),
        what: "Microsoft Graph does not find the probe mailbox",
        action: "check probe.username: the mailbox's user principal name, with an Exchange Online licence",
    },
    Row {
        id: "graph-throttled",
        matches: |a, _| graph(a, &[429]),
        what: "Microsoft Graph kept throttling the probe past its window",
        action: "if it lasts, check which other apps send as the probe mailbox",
    },
    Row {
        id: "graph-unavailable",
        matches: |a, _| matches!(a, Answer::Graph { status, .. } if *status >= 500),
        what: "Microsoft Graph is unavailable (the provider's side)",
        action: "nothing on your side: the probe tries again next window",
    },
];

/// What the other side said, as quoted after the sentence.
fn quote(a: &Answer<'_>) -> String {
    fn short(s: &str) -> String {
        let s = s.split("\r\n").next().unwrap_or(s).trim();
        s.chars().take(160).collect()
    }
    match a {
        Answer::Smtp { code, text } => {
            let enhanced = text.split_whitespace().next().filter(|w| {
                w.split('.').count() == 3 && w.split('.').all(|p| p.parse::<u16>().is_ok())
            });
            match enhanced {
                Some(e) => format!("{code} {e}"),
                None => code.to_string(),
            }
        }
        Answer::SmtpClient { text } => short(text),
        Answer::Token {
            error, description, ..
        } => match description
            .split(':')
            .next()
            .filter(|c| c.starts_with("AADSTS"))
        {
            Some(code) => format!("{error}, {code}"),
            None => error.to_string(),
        },
        Answer::Graph { status, code, .. } => format!("{status} {code}"),
    }
}

/// Explains `answer` for a probe logging on `way`: "what happened (what was said); what to do".
pub fn explain(answer: &Answer<'_>, way: Way) -> Explained {
    if let Some(row) = ROWS.iter().find(|r| (r.matches)(answer, way)) {
        return Explained {
            id: row.id,
            text: format!("{} ({}); {}", row.what, quote(answer), row.action),
        };
    }
    let said = match answer {
        Answer::Smtp { code, text } => format!("{code} {}", text.trim()),
        Answer::SmtpClient { text } => text.to_string(),
        Answer::Token {
            status,
            error,
            description,
        } => format!("HTTP {status} {error}: {description}"),
        Answer::Graph {
            status,
            code,
            message,
        } => format!("HTTP {status} {code}: {message}"),
    };
    let whom = match (answer, way.oauth()) {
        (Answer::Token { .. }, _) => "the token endpoint",
        (Answer::Graph { .. }, _) => "Microsoft Graph",
        _ => "the submission server",
    };
    Explained {
        id: "unclassified",
        text: format!(
            "{whom} refused the probe: {}",
            said.chars().take(300).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Answer::*;

    /// Every row, with an answer recorded from the provider or documented by it, the way it
    /// applies to, and what the administrator reads.
    #[test]
    fn the_table() {
        let cases: &[(Answer<'_>, Way, &str, &str)] = &[
            (Smtp { code: 550, text: "5.7.30 Basic authentication is not supported for Client Submission." }, Way::Password,
             "smtp-basic-auth-disabled",
             "Exchange Online refused the logon: Basic authentication is not supported (550 5.7.30); switch the probe to OAuth"),
            (Smtp { code: 535, text: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant." }, Way::Password,
             "smtp-auth-disabled", "(535 5.7.139); allow authenticated SMTP"),
            (Smtp { code: 535, text: "5.7.3 Authentication unsuccessful [SN4PR0201CA0029.namprd02.prod.outlook.com]" }, Way::MicrosoftOauth,
             "smtp-token-refused-microsoft", "Exchange Online refused the app's access token (535 5.7.3); register the app's service principal"),
            (Smtp { code: 535, text: "5.7.3 Authentication unsuccessful" }, Way::Password,
             "smtp-login-refused", "the submission server refused the login (535 5.7.3); check probe.username"),
            (Smtp { code: 535, text: "5.7.8 Username and Password not accepted." }, Way::Google,
             "smtp-token-refused-google", "Google refused the access token (535 5.7.8)"),
            (SmtpClient { text: "client error: This mechanism does not expect a challenge" }, Way::Google,
             "smtp-token-refused-google", "Google refused the access token (client error: This mechanism does not expect a challenge)"),
            (Smtp { code: 535, text: "5.7.8 Authentication credentials invalid" }, Way::Password,
             "smtp-login-refused", "refused the login (535 5.7.8)"),
            (Smtp { code: 530, text: "5.7.0 Authentication required" }, Way::Password,
             "smtp-auth-required", "(530 5.7.0); check probe.port"),
            (SmtpClient { text: "client error: No compatible authentication mechanism was found" }, Way::MicrosoftOauth,
             "smtp-mechanism-missing", "does not offer the probe's logon mechanism"),
            (Token { status: 401, error: "invalid_client", description: "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID" }, Way::MicrosoftOauth,
             "token-client-secret-invalid", "refused the client secret (invalid_client, AADSTS7000215); store the Value"),
            (Token { status: 401, error: "invalid_client", description: "AADSTS7000222: The provided client secret keys for app '6731de76' are expired." }, Way::Graph,
             "token-client-secret-expired", "has expired (invalid_client, AADSTS7000222)"),
            (Token { status: 401, error: "invalid_client", description: "AADSTS700027: Client assertion contains an invalid signature." }, Way::MicrosoftOauth,
             "token-certificate-refused", "refused the certificate assertion"),
            (Token { status: 400, error: "unauthorized_client", description: "AADSTS700016: Application with identifier '6731de76' was not found in the directory 'Contoso'." }, Way::MicrosoftOauth,
             "token-app-not-in-tenant", "(unauthorized_client, AADSTS700016); check probe.logon.client_id"),
            (Token { status: 400, error: "invalid_request", description: "AADSTS90002: Tenant 'nope.example' not found." }, Way::Graph,
             "token-tenant-unknown", "does not know the tenant (invalid_request, AADSTS90002)"),
            (Token { status: 400, error: "invalid_grant", description: "AADSTS65001: The user or administrator has not consented to use the application" }, Way::MicrosoftOauth,
             "token-consent-missing", "has not consented to the app's permissions (invalid_grant, AADSTS65001); grant admin consent"),
            (Token { status: 401, error: "unauthorized_client", description: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested." }, Way::Google,
             "token-delegation-missing", "domain-wide delegation is not authorised for it (unauthorized_client)"),
            (Token { status: 400, error: "invalid_grant", description: "Invalid JWT Signature." }, Way::Google,
             "token-assertion-refused-google", "refused the service account's assertion (invalid_grant)"),
            (Token { status: 401, error: "invalid_client", description: "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'." }, Way::MicrosoftOauth,
             "token-client-refused", "the token endpoint refused the app's credential (invalid_client, AADSTS7000218); check probe.logon.client_id"),
            (Token { status: 401, error: "invalid_client", description: "The OAuth client was not found." }, Way::Google,
             "token-client-refused", "refused the app's credential (invalid_client); check"),
            (Token { status: 400, error: "invalid_scope", description: "AADSTS1002012: The provided value for scope is not valid." }, Way::MicrosoftOauth,
             "token-scope-refused", "refused the scope"),
            (Token { status: 503, error: "temporarily_unavailable", description: "" }, Way::MicrosoftOauth,
             "token-endpoint-unavailable", "nothing on your side"),
            (Graph { status: 403, code: "ErrorAccessDenied", message: "Access to OData is disabled: Blocked by tenant configured AppOnly AccessPolicy settings." }, Way::Graph,
             "graph-forbidden", "Microsoft Graph refused to send as the probe mailbox (403 ErrorAccessDenied); grant the app Mail.Send"),
            (Graph { status: 401, code: "InvalidAuthenticationToken", message: "Access token validation failure." }, Way::Graph,
             "graph-token-refused", "(401 InvalidAuthenticationToken)"),
            (Graph { status: 404, code: "ErrorInvalidUser", message: "The requested user 'probe@contoso.com' is invalid." }, Way::Graph,
             "graph-mailbox-unknown", "does not find the probe mailbox"),
            (Graph { status: 429, code: "TooManyRequests", message: "Please retry again later." }, Way::Graph,
             "graph-throttled", "(429 TooManyRequests)"),
            (Graph { status: 503, code: "ServiceUnavailable", message: "" }, Way::Graph,
             "graph-unavailable", "(the provider's side)"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (answer, way, id, words) in cases {
            let e = explain(answer, *way);
            assert_eq!(e.id, *id, "{answer:?}: {}", e.text);
            assert!(
                e.text.contains(words),
                "{answer:?}:\n{}\nlacks\n{words}",
                e.text
            );
            seen.insert(e.id);
        }
        // Every row is exercised by some recorded answer.
        for row in ROWS {
            assert!(seen.contains(row.id), "row {} has no case", row.id);
        }
    }

    #[test]
    fn unknown_answers_still_say_what_was_said() {
        let e = explain(
            &Smtp {
                code: 554,
                text: "5.6.0 Something new",
            },
            Way::Password,
        );
        assert_eq!(e.id, "unclassified");
        assert_eq!(
            e.text,
            "the submission server refused the probe: 554 5.6.0 Something new"
        );
        let e = explain(
            &Token { status: 400, error: "invalid_request", description: "AADSTS900144: The request body must contain the following parameter: 'grant_type'." },
            Way::MicrosoftOauth,
        );
        assert_eq!(e.id, "unclassified");
        assert!(
            e.text.starts_with(
                "the token endpoint refused the probe: HTTP 400 invalid_request: AADSTS900144"
            ),
            "{}",
            e.text
        );
    }

    #[test]
    fn an_enhanced_code_matches_only_itself() {
        // 5.7.3 is not 5.7.30, nor 5.7.139's prefix.
        assert_eq!(
            explain(
                &Smtp {
                    code: 535,
                    text: "5.7.3 Authentication unsuccessful"
                },
                Way::Password
            )
            .id,
            "smtp-login-refused"
        );
        assert_eq!(
            explain(
                &Smtp {
                    code: 550,
                    text: "5.7.300 Other"
                },
                Way::Password
            )
            .id,
            "unclassified"
        );
    }
}
