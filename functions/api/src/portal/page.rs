//! The portal's HTML: one page (status panel, chart, forms), readable on a phone, usable without
//! JavaScript and with the keyboard. Everything from the organisation or the store is escaped.

use chrono::{DateTime, Utc};
use shared::domain::alerts::html_escape as esc;
use shared::domain::config::OrgConfig;
use shared::domain::continuity::{self, local_text, span_text, utc_text, Action, BUTTONS};
use shared::domain::continuity::{ContinuityState, Phase};
use shared::domain::monitoring::HistoryEntry;
use shared::domain::monitoring::PortalView;
use shared::domain::window::Window;

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

pub struct PageInput<'a> {
    pub cfg: &'a OrgConfig,
    pub view: &'a PortalView,
    pub now: DateTime<Utc>,
    pub token: &'a str,
    pub form_token: &'a str,
    pub link_expires: DateTime<Utc>,
    pub notice: Option<Notice>,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:42rem;margin:0 auto;padding:1rem;color:#111;background:#fff;line-height:1.5}\
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}\
.state{font-size:1.3rem;font-weight:700;padding:.6rem .8rem;border-radius:.4rem;border:2px solid}\
.on{background:#fff4e5;border-color:#8a4b00;color:#5c3200}.off{background:#eef6ee;border-color:#1e6b1e;color:#0f3d0f}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0}\
.notice{padding:.8rem;border-radius:.4rem;margin:0 0 1rem;border:2px solid}.ok{background:#e8f0fe;border-color:#0b4f9c}.no{background:#fdecea;border-color:#a11}\
.notice h2{margin:0 0 .3rem}form{margin:.4rem 0}fieldset{border:1px solid #767676;border-radius:.4rem;margin:0 0 1rem;padding:.5rem .8rem}\
legend{font-weight:700;padding:0 .3rem}.buttons{display:flex;flex-wrap:wrap;gap:.5rem}\
button{font:inherit;font-size:1rem;min-height:2.75rem;min-width:4.5rem;padding:.5rem .9rem;border-radius:.4rem;border:2px solid #0b4f9c;background:#0b4f9c;color:#fff;cursor:pointer}\
button.stop{background:#a11;border-color:#a11}button:focus-visible{outline:3px solid #111;outline-offset:2px}\
svg{width:100%;height:auto;border:1px solid #767676;border-radius:.3rem}small,.muted{color:#444}a{color:#0b4f9c}";

fn when(t: DateTime<Utc>, zone: &str) -> String {
    format!(
        "<time datetime=\"{}\">{}</time> ({})",
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        esc(&utc_text(t)),
        esc(&local_text(t, zone))
    )
}

/// The whole status page.
pub fn status_page(p: &PageInput) -> String {
    let cfg = p.cfg;
    let zone = cfg.time_zone.as_str();
    let st = &p.view.state;
    let now = p.now;
    let mut h = String::with_capacity(12_000);
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<meta name=\"robots\" content=\"noindex\">");
    h.push_str(&format!(
        "<title>Continuity - {}</title><style>{STYLE}</style></head><body><main>",
        esc(&cfg.name)
    ));
    h.push_str(&format!("<h1>Email continuity for {}</h1>", esc(&cfg.name)));

    // The notice of an action just taken.
    match &p.notice {
        Some(Notice::Done { action, after }) => {
            h.push_str("<section class=\"notice ok\" role=\"status\" id=\"confirmation\">");
            h.push_str(&format!("<h2>{}</h2>", esc(action.confirmation())));
            h.push_str(&confirmation_detail(action, after, zone));
            h.push_str("</section>");
        }
        Some(Notice::Repeated { action, current }) => {
            h.push_str("<section class=\"notice ok\" role=\"status\" id=\"confirmation\">");
            h.push_str(&format!(
                "<h2>{}</h2><p>This request had already been carried out; nothing changed a second time.</p>",
                esc(action.confirmation())
            ));
            h.push_str(&confirmation_detail(action, current, zone));
            h.push_str("</section>");
        }
        Some(Notice::Refused(why)) => {
            h.push_str("<section class=\"notice no\" role=\"alert\" id=\"refusal\"><h2>Nothing was changed</h2>");
            h.push_str(&format!("<p>{}</p></section>", esc(why)));
        }
        None => {}
    }

    // Status (P1).
    h.push_str("<section aria-labelledby=\"status-h\"><h2 id=\"status-h\">Status</h2>");
    let active = match st.phase(now) {
        Phase::Continuity { end, .. } => {
            h.push_str("<p class=\"state on\" id=\"mode\">Continuity mode: Active</p><dl>");
            h.push_str(&format!(
                "<dt>Ends</dt><dd id=\"event-end\">{}</dd><dt>Remaining</dt><dd>{}</dd>",
                when(end, zone),
                esc(&span_text(end - now))
            ));
            if let Some(v) = &p.view.marks.via {
                if v == "automatic" {
                    h.push_str("<dt>Started</dt><dd>automatically (the condition held)</dd>");
                }
            }
            h.push_str("</dl>");
            true
        }
        Phase::PostEvent { ended, until, .. } => {
            h.push_str("<p class=\"state off\" id=\"mode\">Continuity mode: Inactive</p><dl>");
            h.push_str(&format!(
                "<dt>Ended</dt><dd>{}</dd><dt>Hand-back</dt><dd>mail clients return to the server until {}</dd></dl>",
                when(ended, zone),
                esc(&utc_text(until))
            ));
            false
        }
        Phase::Normal => {
            h.push_str("<p class=\"state off\" id=\"mode\">Continuity mode: Inactive</p>");
            false
        }
    };
    if let Some((start, end)) = continuity::planned(st, now) {
        h.push_str(&format!(
            "<p id=\"planned\">Planned event: from {} to {}.</p>",
            when(start, zone),
            when(end, zone)
        ));
    }
    h.push_str("<dl>");
    match st.suspended_until.filter(|u| *u > now) {
        Some(u) => h.push_str(&format!(
            "<dt>Notifications</dt><dd id=\"suspension\">suspended until {}</dd>",
            when(u, zone)
        )),
        None => h.push_str("<dt>Notifications</dt><dd id=\"suspension\">on</dd>"),
    }
    let threshold = cfg.monitoring.threshold;
    let counter = p.view.counter.map(|c| c.value).unwrap_or(0);
    h.push_str(&format!(
        "<dt>Failure counter</dt><dd id=\"counter\">{counter} of threshold {threshold}{}</dd>",
        if counter >= threshold {
            " (condition reached)"
        } else {
            ""
        }
    ));
    let q = p.view.queue;
    h.push_str(&format!(
        "<dt>Inbound queue</dt><dd id=\"queue\">{} message{}{}</dd></dl>",
        q.count,
        if q.count == 1 { "" } else { "s" },
        q.oldest
            .map(|o| format!(", oldest queued {}", esc(&utc_text(o))))
            .unwrap_or_default()
    ));
    h.push_str("</section>");

    // Actions (P2-P5).
    h.push_str("<section aria-labelledby=\"act-h\"><h2 id=\"act-h\">Actions</h2>");
    if active {
        h.push_str(&buttons(p, "extend", "Extend continuity mode by"));
        h.push_str(&format!(
            "<form method=\"post\" action=\"/l/{t}/stop\">{hidden}\
             <fieldset><legend>End continuity mode now</legend>\
             <button type=\"submit\" class=\"stop\">Stop continuity mode</button></fieldset></form>",
            t = esc(p.token),
            hidden = hidden(p)
        ));
    } else {
        h.push_str(&buttons(p, "activate", "Activate continuity mode for"));
    }
    h.push_str(&buttons(p, "suspend", "Suspend notifications for"));
    h.push_str("</section>");

    // History (D7).
    h.push_str("<section aria-labelledby=\"chart-h\"><h2 id=\"chart-h\">Failure counter, last 24 hours</h2>");
    let to = Window::containing(now).prev();
    h.push_str(&chart_svg(
        &p.view.history,
        Window(to.0 - 719),
        to,
        threshold,
    ));
    h.push_str("</section>");
    h.push_str(&format!(
        "<p><small>Times in UTC and in {}. This link works until {}. <a href=\"/l/{}\">Reload the status</a>.</small></p>",
        esc(zone),
        esc(&utc_text(p.link_expires)),
        esc(p.token)
    ));
    h.push_str("</main></body></html>");
    h
}

fn confirmation_detail(action: &Action, s: &ContinuityState, zone: &str) -> String {
    let t = match action {
        Action::Suspend { .. } => s.suspended_until.map(|u| ("Notifications restart", u)),
        Action::Stop => s.event_end().map(|u| ("Ended", u)),
        _ => s.event_until.map(|u| ("Ends", u)),
    };
    match t {
        Some((label, u)) => format!(
            "<p>{label}: <span id=\"confirmed-end\">{}</span></p>",
            when(u, zone)
        ),
        None => String::new(),
    }
}

fn hidden(p: &PageInput) -> String {
    format!(
        "<input type=\"hidden\" name=\"form_token\" value=\"{}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{}\">",
        esc(p.form_token),
        esc(&super::request_id())
    )
}

fn buttons(p: &PageInput, action: &str, legend: &str) -> String {
    let mut h = format!(
        "<form method=\"post\" action=\"/l/{}/{action}\">{}<fieldset><legend>{}</legend><div class=\"buttons\">",
        esc(p.token),
        hidden(p),
        esc(legend)
    );
    for (value, label, _) in BUTTONS {
        h.push_str(&format!(
            "<button type=\"submit\" name=\"duration\" value=\"{value}\" aria-label=\"{} {label}\">{}</button>",
            esc(legend),
            label.replace("hours", "h").replace("hour", "h").replace(" days", " d").replace(" day", " d")
        ));
    }
    h.push_str("</div></fieldset></form>");
    h
}

/// An SVG chart of the counter and the threshold over windows `from..=to` (D7).
pub fn chart_svg(history: &[HistoryEntry], from: Window, to: Window, threshold: u32) -> String {
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
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"chart-t\">\
         <title id=\"chart-t\">{label}</title>\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#767676\"/>\
         <line x1=\"{PAD}\" y1=\"{ty:.1}\" x2=\"{r}\" y2=\"{ty:.1}\" stroke=\"#a11\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{PAD}\" y=\"{tl:.1}\" font-size=\"11\" fill=\"#a11\">threshold {threshold}</text>\
         <polyline fill=\"none\" stroke=\"#0b4f9c\" stroke-width=\"2\" points=\"{pts}\"/>\
         <text x=\"{PAD}\" y=\"{H}\" font-size=\"11\" fill=\"#444\">24 h ago</text>\
         <text x=\"{r}\" y=\"{H}\" font-size=\"11\" fill=\"#444\" text-anchor=\"end\">now</text></svg>",
        label = esc(&label),
        b = H - PAD,
        r = W - PAD,
        tl = (ty - 4.0).max(10.0),
        pts = points.join(" ")
    )
}
