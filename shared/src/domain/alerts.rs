//! Alerts, domain side (A1-A5, D8): when an alert is due, what it says, and how it fits an SMS.
//!
//! An *episode* starts when the condition first holds (counter at threshold, or the inbound queue
//! over its limits) and ends when the counter is back at 0 with the queue under its limits. Within
//! an episode, alert number `seq` is due in hour `seq` after the start (0 at once, then hourly)
//! while the condition holds and nothing suppresses it (notifications suspended, an event active).
//! Alert ids are `{episode}-{seq}`, the recovery notice `{episode}-r`: each send is claimed under
//! that id per contact and channel, so a repeated run never sends one twice.
//!
//! What goes out is a [`Notice`] (an alert, a recovery, an automatic activation), rendered by
//! each [`Channel`] into its [`Message`]: a new channel is one arm of [`Channel`] (the contact
//! field it reads, the message it renders) and one adapter of `ports::notify::AlertChannel`.

use crate::domain::config::{Contact, OrgConfig, QueueAlert};
use crate::domain::provider_health::ProviderIncident;
use crate::domain::queue::QueueFigures;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What is failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Failing {
    /// Inbound deliveries failed on every route.
    Inbound,
    /// The outbound probe was late, missing or not sent.
    Outbound,
    /// The inbound queue is over its limits.
    Queue,
}

impl Failing {
    pub fn describe(self) -> &'static str {
        match self {
            Failing::Inbound => "inbound delivery to your server is failing",
            Failing::Outbound => "your server is not sending mail (outbound check)",
            Failing::Queue => "inbound mail is queuing up for your server",
        }
    }
}

/// The state of an open episode, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// Identifier: the start, as epoch seconds.
    pub id: String,
    pub since: DateTime<Utc>,
    /// What was failing when it started.
    pub failing: Vec<Failing>,
}

impl Episode {
    pub fn new(since: DateTime<Utc>, failing: Vec<Failing>) -> Self {
        Episode {
            id: since.timestamp().to_string(),
            since,
            failing,
        }
    }

    /// The number of the alert due at `now` (0 at the start, then one per hour).
    pub fn seq_at(&self, now: DateTime<Utc>) -> i64 {
        ((now - self.since).num_seconds().max(0)) / 3600
    }

    pub fn alert_id(&self, seq: i64) -> String {
        format!("{}-{seq}", self.id)
    }

    pub fn recovery_id(&self) -> String {
        format!("{}-r", self.id)
    }
}

/// A send claimed this long ago and never finished belongs to a run that died: it is tried again.
pub const STALE_SEND_MINUTES: i64 = 5;

/// A channel alerts go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// A text message to the contact's mobile number (E.164).
    Sms,
    /// An email (HTML and plain text) to the contact's alternate address.
    Email,
}

impl Channel {
    /// Every channel, in the order one contact's sends are made.
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Email];

    /// The channel's name in send keys (`{alert}#{i}#sms`) and in `AlertSent` events.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }

    /// Where `contact` gets this channel's messages, if they gave one.
    pub fn address(self, contact: &Contact) -> Option<&str> {
        match self {
            Channel::Sms => contact.mobile.as_deref(),
            Channel::Email => contact.email.as_deref(),
        }
    }

    /// `notice` for `cfg`'s contacts as this channel says it, with the portal link `url`.
    pub fn render(self, cfg: &OrgConfig, notice: &Notice<'_>, url: &str) -> Message {
        match (self, *notice) {
            (
                Channel::Sms,
                Notice::Alert {
                    counter,
                    seq,
                    context,
                    ..
                },
            ) => Message::Text(alert_sms(cfg, counter, seq, url, context)),
            (Channel::Sms, Notice::Recovery { .. }) => Message::Text(recovery_sms(cfg, url)),
            (Channel::Sms, Notice::AutoActivated { until }) => {
                Message::Text(auto_activation_text(cfg, until, url))
            }
            (
                Channel::Email,
                Notice::Alert {
                    counter,
                    episode,
                    seq,
                    context,
                },
            ) => Message::Email(alert_email(cfg, counter, episode, seq, url, context)),
            (Channel::Email, Notice::Recovery { episode }) => {
                Message::Email(recovery_email(cfg, episode, url))
            }
            (Channel::Email, Notice::AutoActivated { until }) => {
                Message::Email(auto_activation_email(cfg, until, url))
            }
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What contacts are told, before a channel renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Alert `seq` of an open episode (A1, A3), the counter at `counter`.
    Alert {
        counter: u32,
        episode: &'a Episode,
        seq: i64,
        context: AlertContext<'a>,
    },
    /// The episode ended: mail flows again (A5).
    Recovery { episode: &'a Episode },
    /// Continuity mode was activated automatically, until `until` (P9).
    AutoActivated { until: &'a str },
}

/// What the latest window adds to an alert: why the probe failed (D9) and the provider's open
/// incident (D10), each when there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertContext<'a> {
    /// The probe's refusal, in the refusal table's words.
    pub why: Option<&'a str>,
    pub provider: Option<&'a ProviderIncident>,
}

/// What one channel carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Plain text (an SMS).
    Text(String),
    /// An email's subject and parts.
    Email(EmailContent),
}

/// The key a send to contact number `contact` on `channel` is claimed under: at most one send
/// per alert, contact and channel, whatever the runs.
pub fn send_key(alert_id: &str, contact: usize, channel: Channel) -> String {
    format!("{alert_id}#{contact}#{channel}")
}

/// Whether the queue is over its limits (D8).
pub fn queue_over(limits: Option<&QueueAlert>, q: &QueueFigures, now: DateTime<Utc>) -> bool {
    let Some(l) = limits else { return false };
    let too_many = q.count > l.max_count;
    let too_old = q
        .oldest
        .is_some_and(|o| now - o > chrono::Duration::minutes(i64::from(l.max_age_minutes)));
    q.count > 0 && (too_many || too_old)
}

/// What the monitor should do about alerts for one organisation at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No episode, no condition.
    Quiet,
    /// Start an episode (and publish ThresholdReached); send alert 0 unless suppressed.
    Start { episode: Episode, send: bool },
    /// An episode is open and the condition holds: alert `seq` is due unless suppressed.
    Repeat { seq: i64, send: bool },
    /// An episode is open, the condition no longer holds, the counter is not yet back at 0.
    Waiting,
    /// The counter is back at 0 and the queue under its limits: end the episode, send recovery notices.
    End,
}

/// Inputs of the decision.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub counter: u32,
    pub threshold: u32,
    pub queue_over: bool,
    pub episode: Option<&'a Episode>,
    /// Notifications suspended or a continuity event active (A2).
    pub suppressed: bool,
    /// What failed in the latest window (for a new episode).
    pub failing_now: Vec<Failing>,
    pub now: DateTime<Utc>,
}

/// Decides (A1, A2, A5, D8).
pub fn plan(s: &Situation<'_>) -> Plan {
    let holds = s.counter >= s.threshold || s.queue_over;
    match (s.episode, holds) {
        (None, false) => Plan::Quiet,
        (None, true) => {
            let mut failing = s.failing_now.clone();
            if s.queue_over && !failing.contains(&Failing::Queue) {
                failing.push(Failing::Queue);
            }
            Plan::Start {
                episode: Episode::new(s.now, failing),
                send: !s.suppressed,
            }
        }
        (Some(e), true) => Plan::Repeat {
            seq: e.seq_at(s.now),
            send: !s.suppressed,
        },
        (Some(_), false) if s.counter == 0 => Plan::End,
        (Some(_), false) => Plan::Waiting,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The GSM 03.38 basic character set: anything else would switch an SMS to UCS-2 (70 characters).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// `s` with every character outside the GSM-7 basic set replaced (accents dropped where plain
/// letters exist, else `?`), and control characters removed.
pub fn gsm7(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if GSM7_BASIC.contains(c) {
                c
            } else {
                match c {
                    'á' | 'â' | 'ã' | 'ā' => 'a',
                    'Á' | 'Â' | 'Ã' | 'À' => 'A',
                    'ê' | 'ë' | 'ē' => 'e',
                    'È' | 'Ê' | 'Ë' => 'E',
                    'í' | 'î' | 'ï' => 'i',
                    'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
                    'ó' | 'ô' | 'õ' => 'o',
                    'Ó' | 'Ò' | 'Ô' | 'Õ' => 'O',
                    'ú' | 'û' => 'u',
                    'Ú' | 'Ù' | 'Û' => 'U',
                    'ç' => 'c',
                    '’' | '‘' => '\'',
                    '“' | '”' => '"',
                    '–' | '—' => '-',
                    _ => '?',
                }
            }
        })
        .collect()
}

/// Longest SMS body that stays one part in GSM-7.
pub const SMS_MAX: usize = 160;

/// Fits `name` into an SMS built as `prefix(name) + rest`, shortening the name with `...`.
fn fit_name(name: &str, fixed_len: usize) -> String {
    let name = gsm7(name.trim());
    let room = SMS_MAX.saturating_sub(fixed_len);
    if name.chars().count() <= room {
        return name;
    }
    let keep = room.saturating_sub(3);
    let mut short: String = name.chars().take(keep).collect();
    short.push_str("...");
    short
}

/// The alert SMS (A1, A3): one GSM-7 part with the link; the provider's incident id when
/// Microsoft reports one (D10).
pub fn alert_sms(
    cfg: &OrgConfig,
    counter: u32,
    seq: i64,
    url: &str,
    context: AlertContext<'_>,
) -> String {
    let state = if seq == 0 {
        "mail problem"
    } else {
        "still failing"
    };
    let provider = context
        .provider
        .map(|p| format!(" Microsoft incident {}.", gsm7(&p.id)))
        .unwrap_or_default();
    let rest = format!(
        ": {state}, counter {counter}/{}.{provider} Act: {url}",
        cfg.monitoring.threshold
    );
    let name = fit_name(&cfg.name, rest.chars().count());
    format!("{name}{rest}")
}

/// The recovery SMS (A5).
pub fn recovery_sms(cfg: &OrgConfig, url: &str) -> String {
    let rest = format!(": mail flowing again, counter back at 0. {url}");
    let name = fit_name(&cfg.name, rest.chars().count());
    format!("{name}{rest}")
}

/// An email's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The alert email (A1, A3): a "Manage Event" button and the plain URL in both parts; every value
/// from configuration escaped in the HTML part.
pub fn alert_email(
    cfg: &OrgConfig,
    counter: u32,
    episode: &Episode,
    seq: i64,
    url: &str,
    context: AlertContext<'_>,
) -> EmailContent {
    let name = cfg.name.replace(['\r', '\n'], " ");
    let one_line = |s: &str| s.replace(['\r', '\n'], " ");
    let why = context.why.map(one_line);
    let provider = context.provider.map(|p| one_line(&p.describe()));
    let mut extra_text = String::new();
    let mut extra_html = String::new();
    for (label, value) in [("Why", &why), ("Provider", &provider)] {
        if let Some(v) = value {
            extra_text.push_str(&format!("{label}: {v}\r\n"));
            extra_html.push_str(&format!(
                "<tr><th align=\"left\">{label}</th><td>{}</td></tr>",
                html_escape(v)
            ));
        }
    }
    let since = episode.since.format("%Y-%m-%d %H:%M UTC").to_string();
    let failing: Vec<&str> = episode.failing.iter().map(|f| f.describe()).collect();
    let failing_text = if failing.is_empty() {
        "the checks are failing".to_string()
    } else {
        failing.join("; ")
    };
    let threshold = cfg.monitoring.threshold;
    let subject = if seq == 0 {
        format!("[Continuity] {name}: mail problem detected ({counter}/{threshold})")
    } else {
        format!("[Continuity] {name}: mail still failing after {seq} h ({counter}/{threshold})")
    };
    let text = format!(
        "Email continuity alert for {name}\r\n\r\n\
         What is failing: {failing_text}\r\n\
         {extra_text}\
         Failure counter: {counter} of {threshold}\r\n\
         Since: {since}\r\n\r\n\
         Manage the event (switch continuity mode on, suspend notifications):\r\n{url}\r\n\r\n\
         The link is valid for 24 hours. Opening it changes nothing until you press a button.\r\n"
    );
    let (n, f, u, s) = (
        html_escape(&name),
        html_escape(&failing_text),
        html_escape(url),
        html_escape(&since),
    );
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Email continuity alert</title></head>\
         <body style=\"font-family:Arial,Helvetica,sans-serif;color:#111;background:#fff\">\
         <h1 style=\"font-size:20px\">Email continuity alert for {n}</h1>\
         <table role=\"presentation\" style=\"font-size:15px\">\
         <tr><th align=\"left\">What is failing</th><td>{f}</td></tr>{extra_html}\
         <tr><th align=\"left\">Failure counter</th><td>{counter} of {threshold}</td></tr>\
         <tr><th align=\"left\">Since</th><td>{s}</td></tr></table>\
         <p><a href=\"{u}\" style=\"display:inline-block;padding:12px 20px;background:#0b57d0;color:#fff;\
         text-decoration:none;border-radius:4px;font-weight:bold\">Manage Event</a></p>\
         <p>Or open this address: <a href=\"{u}\">{u}</a></p>\
         <p style=\"color:#444\">The link is valid for 24 hours. Opening it changes nothing until you press a button.</p>\
         </body></html>"
    );
    EmailContent {
        subject,
        text,
        html,
    }
}

/// The recovery email (A5).
pub fn recovery_email(cfg: &OrgConfig, episode: &Episode, url: &str) -> EmailContent {
    let name = cfg.name.replace(['\r', '\n'], " ");
    let since = episode.since.format("%Y-%m-%d %H:%M UTC").to_string();
    let subject = format!("[Continuity] {name}: mail flowing again");
    let text = format!(
        "Mail for {name} is flowing again: the failure counter is back at 0.\r\n\
         The problem began at {since}.\r\n\r\nStatus: {url}\r\n"
    );
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Mail flowing again</title></head>\
         <body style=\"font-family:Arial,Helvetica,sans-serif\"><h1 style=\"font-size:20px\">Mail for {n} is flowing again</h1>\
         <p>The failure counter is back at 0. The problem began at {s}.</p>\
         <p>Status: <a href=\"{u}\">{u}</a></p></body></html>",
        n = html_escape(&name),
        s = html_escape(&since),
        u = html_escape(url)
    );
    EmailContent {
        subject,
        text,
        html,
    }
}

/// The automatic activation notice (P9): by SMS as it is, and the email's plain part.
fn auto_activation_text(cfg: &OrgConfig, until: &str, url: &str) -> String {
    format!(
        "{}: continuity mode was activated automatically (the mail problem lasted), until {until}. Manage: {url}",
        cfg.name
    )
}

/// The automatic activation email (P9): the notice and a "Manage Event" link.
pub fn auto_activation_email(cfg: &OrgConfig, until: &str, url: &str) -> EmailContent {
    let text = auto_activation_text(cfg, until, url);
    let html = format!(
        "<!doctype html><html><body><p>{}</p><p><a href=\"{u}\">Manage Event</a></p><p>{u}</p></body></html>",
        html_escape(&text),
        u = html_escape(url)
    );
    EmailContent {
        subject: format!("{}: continuity mode activated automatically", cfg.name),
        text,
        html,
    }
}

/// The A6 user notice by SMS: at the start, where to read and send mail and how to get in (the
/// sign-in page, the address to sign in as, a code by SMS); at the end, that it is over. One
/// GSM-7 part: the organisation's name is shortened first, then the address left out.
pub fn user_notice_sms(
    org_name: &str,
    started: bool,
    sign_in_url: &str,
    address: Option<&str>,
) -> String {
    if !started {
        let rest = ": mail is back to normal. Use your usual mail app again.";
        let name = fit_name(org_name, rest.chars().count());
        return format!("{name}{rest}");
    }
    let address = address.map(gsm7);
    let candidates = [
        address.as_deref().map(|a| {
            format!(": mail server down. Read mail at {sign_in_url} as {a} (code by SMS)")
        }),
        Some(format!(
            ": mail server down. Read mail at {sign_in_url} with your work address (code by SMS)"
        )),
    ];
    // The first that leaves room for at least a short name; else the shortest form.
    let rest = candidates
        .into_iter()
        .flatten()
        .find(|r| r.chars().count() + 8 <= SMS_MAX)
        .unwrap_or_else(|| format!(": mail down. Sign in at {sign_in_url}"));
    let name = fit_name(org_name, rest.chars().count());
    format!("{name}{rest}")
}

/// The activation email to a user's alternate address (A6, U11): their mail server is down,
/// where to read and send mail meanwhile, and how to get in without the usual sign-in.
pub fn user_activation_email(
    org_name: &str,
    sign_in_url: &str,
    address: &str,
    has_mobile: bool,
) -> EmailContent {
    let name = org_name.replace(['\r', '\n'], " ");
    let subject = format!("{name}: mail is down - read and send your mail in the Online Inbox");
    let by = if has_mobile {
        "to this address and by SMS to your mobile"
    } else {
        "to this address"
    };
    let text = format!(
        "The {name} mail server is down. Meanwhile, read and send your mail in the Online Inbox:\r\n\r\n\
         {sign_in_url}\r\n\r\n\
         Sign in as {address}: type that address, press \"Send me a code\", and enter the code we send {by}.\r\n\
         If you set up a passkey, choose \"Sign in with a passkey\" instead.\r\n\r\n\
         Mail sent to you meanwhile is kept and delivered to your usual mailbox when the server is back.\r\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:Arial,Helvetica,sans-serif\">\
         <h1 style=\"font-size:20px\">The {n} mail server is down</h1>\
         <p>Meanwhile, read and send your mail in the Online Inbox:</p>\
         <p><a href=\"{u}\" style=\"display:inline-block;padding:12px 20px;background:#0b57d0;color:#fff;text-decoration:none;border-radius:4px;font-weight:bold\">Open the Online Inbox</a></p>\
         <p>Or open this address: <a href=\"{u}\">{u}</a></p>\
         <p>Sign in as <strong>{a}</strong>: type that address, press &quot;Send me a code&quot;, and enter the code we send {by}. \
         If you set up a passkey, choose &quot;Sign in with a passkey&quot; instead.</p>\
         <p style=\"color:#444\">Mail sent to you meanwhile is kept and delivered to your usual mailbox when the server is back.</p>\
         </body></html>",
        n = html_escape(&name),
        u = html_escape(sign_in_url),
        a = html_escape(address),
    );
    EmailContent {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::tests::sample;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sit<'a>(
        counter: u32,
        queue_over: bool,
        episode: Option<&'a Episode>,
        suppressed: bool,
        now: &str,
    ) -> Situation<'a> {
        Situation {
            counter,
            threshold: 3,
            queue_over,
            episode,
            suppressed,
            failing_now: vec![Failing::Inbound],
            now: t(now),
        }
    }

    #[test]
    fn plans() {
        assert_eq!(
            plan(&sit(2, false, None, false, "2026-11-23T12:00:00Z")),
            Plan::Quiet
        );
        let Plan::Start {
            episode,
            send: true,
        } = plan(&sit(3, false, None, false, "2026-11-23T12:00:00Z"))
        else {
            panic!()
        };
        assert_eq!(episode.failing, vec![Failing::Inbound]);
        assert!(matches!(
            plan(&sit(3, false, None, true, "2026-11-23T12:00:00Z")),
            Plan::Start { send: false, .. }
        ));
        let Plan::Start { episode: q, .. } =
            plan(&sit(0, true, None, false, "2026-11-23T12:00:00Z"))
        else {
            panic!()
        };
        assert_eq!(q.failing, vec![Failing::Inbound, Failing::Queue]);
        let e = Episode::new(t("2026-11-23T12:00:00Z"), vec![]);
        assert_eq!(
            plan(&sit(3, false, Some(&e), false, "2026-11-23T12:59:59Z")),
            Plan::Repeat { seq: 0, send: true }
        );
        assert_eq!(
            plan(&sit(3, false, Some(&e), false, "2026-11-23T13:00:00Z")),
            Plan::Repeat { seq: 1, send: true }
        );
        assert_eq!(
            plan(&sit(3, false, Some(&e), true, "2026-11-23T15:10:00Z")),
            Plan::Repeat {
                seq: 3,
                send: false
            }
        );
        assert_eq!(
            plan(&sit(1, false, Some(&e), false, "2026-11-23T13:00:00Z")),
            Plan::Waiting
        );
        assert_eq!(
            plan(&sit(0, true, Some(&e), false, "2026-11-23T13:00:00Z")),
            Plan::Repeat { seq: 1, send: true }
        );
        assert_eq!(
            plan(&sit(0, false, Some(&e), false, "2026-11-23T13:00:00Z")),
            Plan::End
        );
    }

    #[test]
    fn queue_limits() {
        let l = QueueAlert {
            max_count: 10,
            max_age_minutes: 30,
        };
        let now = t("2026-11-23T12:00:00Z");
        let q = |count, mins: i64| QueueFigures {
            count,
            oldest: Some(now - chrono::Duration::minutes(mins)),
        };
        assert!(!queue_over(Some(&l), &q(10, 30), now));
        assert!(queue_over(Some(&l), &q(11, 1), now));
        assert!(queue_over(Some(&l), &q(1, 31), now));
        assert!(!queue_over(None, &q(1000, 1000), now));
        assert!(!queue_over(Some(&l), &QueueFigures::default(), now));
    }

    #[test]
    fn sms_fits_one_gsm7_part_for_the_longest_name() {
        let mut cfg = sample();
        cfg.monitoring.threshold = 720;
        // The longest name validation allows (100 characters), with characters outside GSM-7.
        let base = "Ünïcödé 🚀 Ŵorldwide Holdings & Subsidiaries of the Very Long Name Group ";
        cfg.name = base.chars().cycle().take(100).collect();
        assert_eq!(cfg.validate(), Ok(()));
        let url = format!("https://continuity.example.com/l/{}", "A".repeat(60));
        for sms in [
            alert_sms(&cfg, 720, 5, &url, AlertContext::default()),
            recovery_sms(&cfg, &url),
            user_notice_sms(
                &cfg.name,
                true,
                &url,
                Some("firstname.lastname@acme.example"),
            ),
            user_notice_sms(&cfg.name, true, &url, Some(&"x".repeat(200))),
            user_notice_sms(&cfg.name, false, &url, None),
        ] {
            assert!(
                sms.chars().count() <= SMS_MAX,
                "{} chars: {sms}",
                sms.chars().count()
            );
            assert!(sms.chars().all(|c| GSM7_BASIC.contains(c)), "{sms}");
            assert!(
                sms.contains(&url) || sms.contains("back to normal"),
                "the link is whole: {sms}"
            );
        }
    }

    #[test]
    fn email_escapes_everything_from_configuration() {
        let mut cfg = sample();
        cfg.name = "<script>alert(1)</script> & \"Co\"".into();
        let e = Episode::new(
            t("2026-11-23T12:00:00Z"),
            vec![Failing::Inbound, Failing::Outbound],
        );
        let m = alert_email(
            &cfg,
            3,
            &e,
            0,
            "https://c.example/l/abc?x=1&y=\"2\"",
            AlertContext::default(),
        );
        assert!(!m.html.contains("<script>"));
        assert!(m
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
        assert!(m
            .html
            .contains("href=\"https://c.example/l/abc?x=1&amp;y=&quot;2&quot;\""));
        assert!(m.html.contains(">Manage Event</a>"));
        assert!(m.text.contains("https://c.example/l/abc?x=1&y=\"2\""));
        assert!(m.text.contains(
            "inbound delivery to your server is failing; your server is not sending mail"
        ));
        assert!(m.text.contains("Failure counter: 3 of 3"));
        assert!(m.text.contains("Since: 2026-11-23 12:00 UTC"));
    }

    #[test]
    fn each_channel_reads_its_contact_field_and_renders_its_message() {
        let cfg = sample();
        let contact = &cfg.alerts.contacts[0];
        assert_eq!(Channel::Sms.address(contact), Some("+447700900123"));
        assert_eq!(
            Channel::Email.address(contact),
            Some("ops@acme-backup.example")
        );
        assert_eq!(
            send_key("1700000000-2", 1, Channel::Sms),
            "1700000000-2#1#sms"
        );
        assert_eq!(
            send_key("1700000000-r", 0, Channel::Email),
            "1700000000-r#0#email"
        );
        let e = Episode::new(t("2026-11-23T12:00:00Z"), vec![Failing::Inbound]);
        let url = "https://c.example/l/abc";
        let alert = Notice::Alert {
            counter: 3,
            episode: &e,
            seq: 1,
            context: AlertContext::default(),
        };
        assert_eq!(
            Channel::Sms.render(&cfg, &alert, url),
            Message::Text(alert_sms(&cfg, 3, 1, url, AlertContext::default()))
        );
        assert_eq!(
            Channel::Email.render(&cfg, &alert, url),
            Message::Email(alert_email(&cfg, 3, &e, 1, url, AlertContext::default()))
        );
        let recovery = Notice::Recovery { episode: &e };
        assert_eq!(
            Channel::Sms.render(&cfg, &recovery, url),
            Message::Text(recovery_sms(&cfg, url))
        );
        assert_eq!(
            Channel::Email.render(&cfg, &recovery, url),
            Message::Email(recovery_email(&cfg, &e, url))
        );
    }

    #[test]
    fn an_alert_says_why_the_probe_failed_and_what_the_provider_reports() {
        let cfg = sample();
        let e = Episode::new(t("2026-11-23T12:00:00Z"), vec![Failing::Outbound]);
        let incident = ProviderIncident {
            id: "EX226792".into(),
            title: "Users can't send <mail>".into(),
            since: t("2026-11-23T11:40:00Z"),
            status: "serviceDegradation".into(),
        };
        let why = "Exchange Online refused the logon: Basic authentication is not supported (550 5.7.30); switch the probe to OAuth";
        let ctx = AlertContext {
            why: Some(why),
            provider: Some(&incident),
        };
        let m = alert_email(&cfg, 3, &e, 0, "https://c.example/l/x", ctx);
        assert!(m.text.contains(&format!("Why: {why}\r\n")), "{}", m.text);
        assert!(m.text.contains(
            "Provider: Microsoft reports incident EX226792: Users can't send <mail>, since 2026-11-23 11:40 UTC\r\n"
        ));
        assert!(m.html.contains("Users can&#39;t send &lt;mail&gt;"));
        let sms = alert_sms(&cfg, 3, 0, "https://c.example/l/x", ctx);
        assert!(
            sms.contains("counter 3/3. Microsoft incident EX226792. Act: https://c.example/l/x"),
            "{sms}"
        );
        assert!(sms.chars().count() <= SMS_MAX);
        // Without context the alert reads as before.
        let plain = alert_email(
            &cfg,
            3,
            &e,
            0,
            "https://c.example/l/x",
            AlertContext::default(),
        );
        assert!(!plain.text.contains("Why:") && !plain.text.contains("Provider:"));
    }

    #[test]
    fn the_automatic_activation_notice_reads_as_before() {
        let mut cfg = sample();
        cfg.name = "Acme & Co".into();
        let notice = Notice::AutoActivated {
            until: "2026-11-23 14:00 UTC",
        };
        let text = "Acme & Co: continuity mode was activated automatically (the mail problem lasted), until 2026-11-23 14:00 UTC. Manage: https://c.example/l/a?b&c";
        assert_eq!(
            Channel::Sms.render(&cfg, &notice, "https://c.example/l/a?b&c"),
            Message::Text(text.into())
        );
        let Message::Email(email) =
            Channel::Email.render(&cfg, &notice, "https://c.example/l/a?b&c")
        else {
            panic!("an email")
        };
        assert_eq!(
            email.subject,
            "Acme & Co: continuity mode activated automatically"
        );
        assert_eq!(email.text, text);
        assert_eq!(
            email.html,
            "<!doctype html><html><body><p>Acme &amp; Co: continuity mode was activated automatically (the mail problem lasted), until 2026-11-23 14:00 UTC. Manage: https://c.example/l/a?b&amp;c</p><p><a href=\"https://c.example/l/a?b&amp;c\">Manage Event</a></p><p>https://c.example/l/a?b&amp;c</p></body></html>"
        );
    }
}
