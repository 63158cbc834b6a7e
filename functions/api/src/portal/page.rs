//! The portal's page (`templates/portal/status.html`): status panel, chart, forms; readable on a
//! phone, usable without JavaScript and with the keyboard. This module turns the portal's view
//! into what the template shows; the template escapes everything from the organisation or the
//! store.

use askama::Template;
use chrono::{DateTime, Utc};
use shared::app::portal::HISTORY_WINDOWS;
use shared::domain::config::OrgConfig;
use shared::domain::continuity::{self, local_text, span_text, utc_text, Action, BUTTONS};
use shared::domain::continuity::{ContinuityState, Phase};
use shared::domain::monitoring::{HistoryEntry, PortalView};
use shared::domain::queue::{AsideKind, QueuedView};
use shared::domain::window::Window;
use shared::ports::store::QueueSnapshot;

/// What the page says above the status after a POST.
#[derive(Debug, Clone)]
pub enum Notice {
    Done {
        action: Action,
        after: ContinuityState,
    },
    Repeated {
        action: Action,
        current: ContinuityState,
    },
    Refused(String),
}

/// What the page is rendered from.
pub struct PageInput<'a> {
    pub cfg: &'a OrgConfig,
    pub view: &'a PortalView,
    pub queue: &'a QueueSnapshot,
    pub now: DateTime<Utc>,
    pub token: &'a str,
    pub form_token: &'a str,
    pub link_expires: DateTime<Utc>,
    pub notice: Option<Notice>,
}

/// A time as the page shows it: in UTC, and in the organisation's zone unless that is UTC.
pub struct When {
    iso: String,
    utc: String,
    local: Option<String>,
}

impl When {
    fn new(t: DateTime<Utc>, zone: &str) -> Self {
        When {
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            utc: utc_text(t),
            local: local_text(t, zone),
        }
    }
}

/// The notice, as shown.
pub enum NoticeView {
    Done {
        confirmation: &'static str,
        detail: Option<(&'static str, When)>,
    },
    Repeated {
        confirmation: &'static str,
        detail: Option<(&'static str, When)>,
    },
    Refused {
        why: String,
    },
}

/// Continuity mode, as shown.
pub enum Mode {
    Active {
        end: When,
        remaining: String,
        automatic: bool,
    },
    PostEvent {
        ended: When,
        until: String,
    },
    Normal,
}

impl Mode {
    /// Whether the page offers extend and stop (rather than activate).
    pub fn is_active(&self) -> bool {
        matches!(self, Mode::Active { .. })
    }
}

/// One duration button.
pub struct Duration {
    value: &'static str,
    label: &'static str,
    short: String,
}

/// The counter's chart (D7), its coordinates already computed.
pub struct Chart {
    width: String,
    height: String,
    pad: String,
    base: String,
    right: String,
    threshold: u32,
    threshold_y: String,
    threshold_label_y: String,
    points: String,
    label: String,
}

/// A queued message as the page lists it: why it waits.
pub struct QueuedRow {
    received: String,
    sender: String,
    recipients: String,
    subject: String,
    attempts: u32,
    last_error: String,
    next_retry: String,
}

/// A message set aside (a virus, or undeliverable without a bounce) with its reason.
pub struct AsideRow {
    at: String,
    kind: &'static str,
    sender: String,
    recipients: String,
    subject: String,
    reason: String,
}

/// `a, b, c and 2 more`, of `total` recipients (a record set aside lists only the first).
fn recipients_text(r: &[String], total: usize) -> String {
    const SHOWN: usize = 3;
    let mut text = r.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    let total = total.max(r.len());
    if total > SHOWN {
        text.push_str(&format!(" and {} more", total - SHOWN.min(r.len())));
    }
    text
}

fn sender_text(s: &str) -> String {
    if s.is_empty() {
        "<> (no sender)".into()
    } else {
        s.to_string()
    }
}

fn queued_rows(q: &QueueSnapshot) -> Vec<QueuedRow> {
    q.queued
        .iter()
        .map(|m| QueuedView::of(m, q.next_look))
        .map(|v| QueuedRow {
            received: utc_text(v.received_at),
            sender: sender_text(&v.sender),
            recipients: recipients_text(&v.recipients, v.recipients.len()),
            subject: v.subject.unwrap_or_else(|| "(no subject)".into()),
            attempts: v.attempts,
            last_error: v.last_error.unwrap_or_else(|| "none yet".into()),
            next_retry: v
                .next_retry
                .map(utc_text)
                .unwrap_or_else(|| "with the next queue run".into()),
        })
        .collect()
}

fn aside_rows(q: &QueueSnapshot) -> Vec<AsideRow> {
    q.set_aside
        .iter()
        .map(|a| AsideRow {
            at: utc_text(a.at),
            kind: match a.kind {
                AsideKind::Quarantined => "Quarantined (virus)",
                AsideKind::Undeliverable => "Undeliverable, no bounce sent",
            },
            sender: sender_text(&a.sender),
            recipients: recipients_text(&a.recipients, a.recipients_total()),
            subject: a.subject.clone().unwrap_or_else(|| "(no subject)".into()),
            reason: a.reason.clone(),
        })
        .collect()
}

/// The status page (P1-P6).
#[derive(Template)]
#[template(path = "portal/status.html")]
pub struct StatusPage<'a> {
    name: &'a str,
    notice: Option<NoticeView>,
    mode: Mode,
    planned: Option<(When, When)>,
    suspended_until: Option<When>,
    counter: u32,
    threshold: u32,
    /// The provider's open incident of the latest window (D10): shown beside the counter.
    provider: Option<String>,
    /// Why the latest window's probe could not be sent (D9).
    probe_refused: Option<String>,
    queue_count: u64,
    queue_oldest: Option<String>,
    /// The oldest queued messages, with why each waits.
    queued: Vec<QueuedRow>,
    /// Mail set aside in the last 30 days, newest first, with the reasons.
    set_aside: Vec<AsideRow>,
    token: &'a str,
    form_token: &'a str,
    durations: Vec<Duration>,
    chart: Chart,
    /// The organisation's zone, named in the footer unless it is UTC.
    zone: Option<&'a str>,
    link_expires: String,
}

/// The whole status page, ready to render.
pub fn status_page<'a>(p: &PageInput<'a>) -> StatusPage<'a> {
    let cfg = p.cfg;
    let zone = cfg.time_zone.as_str();
    let st = &p.view.state;
    let now = p.now;
    let when = |t| When::new(t, zone);
    let notice = p.notice.as_ref().map(|n| match n {
        Notice::Done { action, after } => NoticeView::Done {
            confirmation: action.confirmation(),
            detail: confirmation_detail(action, after, zone),
        },
        Notice::Repeated { action, current } => NoticeView::Repeated {
            confirmation: action.confirmation(),
            detail: confirmation_detail(action, current, zone),
        },
        Notice::Refused(why) => NoticeView::Refused { why: why.clone() },
    });
    let mode = match st.phase(now) {
        Phase::Continuity { end, .. } => Mode::Active {
            end: when(end),
            remaining: span_text(end - now),
            automatic: p.view.marks.via.as_deref() == Some("automatic"),
        },
        Phase::PostEvent { ended, until, .. } => Mode::PostEvent {
            ended: when(ended),
            until: utc_text(until),
        },
        Phase::Normal => Mode::Normal,
    };
    let threshold = cfg.monitoring.threshold;
    let to = Window::containing(now).prev();
    StatusPage {
        name: &cfg.name,
        notice,
        mode,
        planned: continuity::planned(st, now).map(|(s, e)| (when(s), when(e))),
        suspended_until: st.suspended_until.filter(|u| *u > now).map(when),
        counter: p.view.counter.map(|c| c.value).unwrap_or(0),
        threshold,
        provider: p
            .view
            .history
            .last()
            .and_then(|h| h.provider.as_ref())
            .map(|i| i.describe()),
        probe_refused: p
            .view
            .history
            .last()
            .and_then(|h| h.outbound_reason.clone()),
        queue_count: p.view.queue.count,
        queue_oldest: p.view.queue.oldest.map(utc_text),
        queued: queued_rows(p.queue),
        set_aside: aside_rows(p.queue),
        token: p.token,
        form_token: p.form_token,
        durations: BUTTONS
            .iter()
            .map(|(value, label, _)| Duration {
                value,
                label,
                short: label
                    .replace("hours", "h")
                    .replace("hour", "h")
                    .replace(" days", " d")
                    .replace(" day", " d"),
            })
            .collect(),
        chart: chart(
            &p.view.history,
            Window(to.0 - (HISTORY_WINDOWS - 1)),
            to,
            threshold,
        ),
        zone: local_text(now, zone).map(|_| zone),
        link_expires: utc_text(p.link_expires),
    }
}

fn confirmation_detail(
    action: &Action,
    s: &ContinuityState,
    zone: &str,
) -> Option<(&'static str, When)> {
    let t = match action {
        Action::Suspend { .. } => s.suspended_until.map(|u| ("Notifications restart", u)),
        Action::Stop => s.event_end().map(|u| ("Ended", u)),
        _ => s.event_until.map(|u| ("Ends", u)),
    };
    t.map(|(label, u)| (label, When::new(u, zone)))
}

/// The chart of the counter and the threshold over windows `from..=to` (D7).
fn chart(history: &[HistoryEntry], from: Window, to: Window, threshold: u32) -> Chart {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    const PAD: f64 = 20.0;
    let span = (to.0 - from.0).max(1) as f64;
    let top = history
        .iter()
        .map(|e| e.step.value)
        .max()
        .unwrap_or(0)
        .max(threshold)
        .max(1) as f64;
    let x = |w: Window| PAD + (w.0 - from.0) as f64 / span * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - v / top * (H - 2.0 * PAD);
    let points: Vec<String> = history
        .iter()
        .filter(|e| e.window >= from && e.window <= to)
        .map(|e| format!("{:.1},{:.1}", x(e.window), y(f64::from(e.step.value))))
        .collect();
    let last = history.last().map(|e| e.step.value).unwrap_or(0);
    let label = format!(
        "Failure counter over the last 24 hours: {} windows recorded, now {last}, highest {}, threshold {threshold}.",
        points.len(),
        history.iter().map(|e| e.step.value).max().unwrap_or(0)
    );
    let ty = y(f64::from(threshold));
    Chart {
        width: W.to_string(),
        height: H.to_string(),
        pad: PAD.to_string(),
        base: (H - PAD).to_string(),
        right: (W - PAD).to_string(),
        threshold,
        threshold_y: format!("{ty:.1}"),
        threshold_label_y: format!("{:.1}", (ty - 4.0).max(10.0)),
        points: points.join(" "),
        label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;

    fn render(zone: &str, now: DateTime<Utc>) -> String {
        render_with(zone, now, &QueueSnapshot::default())
    }

    fn render_with(zone: &str, now: DateTime<Utc>, queue: &QueueSnapshot) -> String {
        let cfg: OrgConfig = serde_json::from_value(serde_json::json!({
            "org_id": "acme", "name": "Acme", "domains": ["acme.example"], "routes": [],
            "monitoring": {"enabled": true, "inbound_check": true, "outbound_check": false,
                "threshold": 5, "acceptable_latency_secs": 300},
            "time_zone": zone,
        }))
        .expect("configuration");
        let view = PortalView {
            state: ContinuityState {
                event_until: Some(now + chrono::Duration::hours(4)),
                event_started_at: Some(now),
                ..Default::default()
            },
            ..Default::default()
        };
        let input = PageInput {
            cfg: &cfg,
            view: &view,
            queue,
            now,
            token: "tok<en>",
            form_token: "ft",
            link_expires: now + chrono::Duration::days(1),
            notice: None,
        };
        status_page(&input).render().expect("renders")
    }

    #[test]
    fn a_utc_organisation_sees_each_time_once() {
        let now = "2026-11-27T14:38:00Z".parse().expect("time");
        let page = render("UTC", now);
        assert!(page.contains(">2026-11-27 18:38 UTC</time></dd>"), "{page}");
        assert!(!page.contains("(UTC)") && !page.contains("UTC ("), "{page}");
        assert!(page.contains("Times in UTC. "), "{page}");
        let page = render("Europe/Paris", now);
        assert!(
            page.contains(">2026-11-27 18:38 UTC</time> (2026-11-27 19:38 CET (Europe/Paris))"),
            "{page}"
        );
        assert!(page.contains("Times in UTC and in Europe/Paris."), "{page}");
        // Values are escaped by the template.
        assert!(page.contains("/l/tok&lt;en&gt;/stop"), "{page}");
    }

    #[test]
    fn why_mail_waits_is_listed_escaped_and_only_when_there_is_some() {
        let now: DateTime<Utc> = "2026-11-27T14:38:00Z".parse().expect("time");
        let page = render("UTC", now);
        assert!(!page.contains("id=\"queued\"") && !page.contains("id=\"set-aside\""));
        let raw = b"From: a@example.org\r\nSubject: <b>hi</b>\r\n\r\nbody\r\n";
        let summary = shared::domain::mail::summarize(raw);
        let mut m = shared::domain::queue::QueuedMessage::new("acme", "id1", "k", now, &summary)
            .envelope("<evil>@example.org", vec!["bob@acme.example".into()]);
        m.attempts = 2;
        m.last_error = Some("route 1 (mail.acme.example:25): connect: refused".into());
        let queue = QueueSnapshot {
            next_look: Some(now + chrono::Duration::minutes(4)),
            queued: vec![m],
            ..Default::default()
        };
        let page = render_with("UTC", now, &queue);
        assert!(
            page.contains("&ldquo;&#60;b&#62;hi&#60;/b&#62;&rdquo;")
                || page.contains("&ldquo;&lt;b&gt;hi&lt;/b&gt;&rdquo;"),
            "{page}"
        );
        assert!(!page.contains("<evil>"), "{page}");
        assert!(
            page.contains("2 attempts; last error: route 1 (mail.acme.example:25): connect: refused; next try: 2026-11-27 14:42 UTC."),
            "{page}"
        );
    }

    #[test]
    fn recipients_are_counted_past_the_ones_listed() {
        let r: Vec<String> = (0..5).map(|i| format!("u{i}@acme.test")).collect();
        assert_eq!(recipients_text(&r[..2], 2), "u0@acme.test, u1@acme.test");
        assert_eq!(
            recipients_text(&r, 5),
            "u0@acme.test, u1@acme.test, u2@acme.test and 2 more"
        );
        // A record set aside lists the first 100 of 1,500.
        assert!(recipients_text(&r, 1_500).ends_with("u2@acme.test and 1497 more"));
    }
}
