//! The Online Inbox's pages (U1, U2, U7): the mailboxes, a folder, a message (and its print
//! view), and the list page's script. Each page authorises the mailbox through
//! [`shared::app::mailbox`] and renders a template of `templates/inbox/`; errors are pages.

use super::message::{open_raw, AttachmentJson};
use super::read::ListQuery;
use crate::web::auth::{cookie, PageUser};
use crate::web::error::ApiError;
use crate::web::extract::{Paged, Qs};
use crate::web::render::{self, INBOX_JS};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shared::domain::mail::mailbox_of;
use shared::domain::mailbox::{decode_cursor, group_threads, list_time, user_zone, Folder, Listed};

/// The CSP of a message page whose user asked for remote images: images from anywhere, still
/// no script but the service's own.
const CSP_WITH_IMAGES: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https: http:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A time as the inbox shows it.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `GET /static/inbox.js`: loads the next page when the "More" link comes into view (the link
/// works without it).
pub async fn script() -> Response {
    render::script(INBOX_JS)
}

#[derive(Template)]
#[template(path = "inbox/home.html")]
struct HomePage {
    title: &'static str,
    nav: Option<String>,
    /// The user's own mailbox first.
    mailboxes: Vec<String>,
    synced: Option<String>,
}

/// `GET /inbox`: the mailboxes the user reaches.
pub async fn home(
    State(state): State<AppState>,
    PageUser(p): PageUser,
) -> Result<Html<String>, ApiError> {
    let mailboxes = state.inbox().reachable(&p.user()).await.paged()?;
    if mailboxes.is_empty() {
        return Err(ApiError::forbidden("Your account has no mailbox address.").page());
    }
    let synced = state
        .directory
        .directory_synced_at(&p.org_id)
        .await
        .paged()?;
    render::page(&HomePage {
        title: "Mailboxes",
        nav: None,
        mailboxes,
        synced: synced.map(fmt_time),
    })
}

/// One row of a folder (or one conversation in the threads view).
struct Row {
    /// Relative, in the user's zone ("14:32", "Yesterday", "12 Nov").
    when: String,
    /// The full time, in the user's zone (the cell's title).
    when_full: String,
    /// The sender's display name (the address when it has none); recipients in Sent Items.
    who: String,
    /// The address(es), shown on hover.
    who_title: String,
    id: String,
    subject: String,
    preview: String,
    attachments: bool,
    flagged: bool,
    unread: bool,
    /// Messages of the conversation on this page (threads view).
    count: usize,
}

#[derive(Template)]
#[template(path = "inbox/list.html")]
struct ListPage {
    title: String,
    nav: Option<String>,
    heading: &'static str,
    mailbox: String,
    folder: &'static str,
    empty: bool,
    rows: Vec<Row>,
    more: Option<String>,
    /// The cursor of this page (the buttons come back to it).
    cursor: String,
    threads: bool,
    /// Unread messages per received folder: (label, folder name, count).
    counts: Vec<(&'static str, &'static str, String)>,
    /// The zone the times are shown in.
    zone: String,
}

/// The cookie the inbox's script sets with the browser's time zone (an IANA name).
pub const ZONE_COOKIE: &str = "ec_tz";

/// `GET /inbox/{mailbox}`: a page of the inbox, Spam or Sent Items; `view=threads` groups the
/// page's messages by conversation. Requests: the page's Query, and one Query (Select COUNT) of
/// the unread index per received folder.
pub async fn list(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    Qs(q): Qs<ListQuery>,
) -> Result<Html<String>, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), &mailbox).await.paged()?;
    let now = state.clock.now();
    let (l, counts) = tokio::try_join!(
        inbox.page(
            &p.org_id,
            &mailbox,
            q.folder.as_deref(),
            q.cursor.as_deref(),
            q.limit,
            now,
        ),
        inbox.unread_counts(&p.org_id, &mailbox, now),
    )
    .paged()?;
    let zone = user_zone(cookie(&headers, ZONE_COOKIE).as_deref());
    let threads = q.view.as_deref() == Some("threads");
    let row = |item: &Listed, count: usize, unread: bool, flagged: bool| {
        let s = &item.summary;
        let (who, who_title) = match l.folder {
            Folder::Inbox | Folder::Junk => {
                let address = s.from.clone().unwrap_or_default();
                (
                    s.from_name.clone().unwrap_or_else(|| address.clone()),
                    address,
                )
            }
            Folder::Sent => {
                let to = s.to.join(", ");
                (format!("To: {to}"), to)
            }
        };
        Row {
            when: list_time(item.received_at, now, zone),
            when_full: item
                .received_at
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string(),
            who,
            who_title,
            id: item.r#ref.encode(),
            subject: s
                .subject
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "(no subject)".into()),
            preview: s.preview.clone().unwrap_or_default(),
            attachments: !s.attachments.is_empty(),
            flagged,
            unread,
            count,
        }
    };
    let rows = if threads {
        group_threads(&l.items)
            .into_iter()
            .map(|t| row(t.newest, t.count, t.unread, t.flagged))
            .collect()
    } else {
        l.items
            .iter()
            .map(|i| row(i, 1, i.unread(), i.flagged))
            .collect()
    };
    let heading = match l.folder {
        Folder::Inbox => "Inbox",
        Folder::Sent => "Sent Items",
        Folder::Junk => "Spam",
    };
    let counts = counts
        .into_iter()
        .map(|(f, n)| match f {
            Folder::Junk => ("Spam", f.name(), n.shown()),
            _ => ("Inbox", f.name(), n.shown()),
        })
        .collect();
    render::page(&ListPage {
        title: format!("{heading} - {mailbox}"),
        nav: Some(mailbox.clone()),
        heading,
        folder: l.folder.name(),
        empty: l.items.is_empty() && q.cursor.is_none(),
        rows,
        more: l.next,
        cursor: q
            .cursor
            .clone()
            .filter(|c| decode_cursor(c, l.folder).is_some())
            .unwrap_or_default(),
        threads,
        counts,
        zone: zone.name().to_string(),
        mailbox,
    })
}

/// Whether to load the message's remote images.
#[derive(Debug, Deserialize, Default)]
pub struct ViewQuery {
    #[serde(default)]
    images: Option<String>,
}

/// A message's body, as shown.
enum Body {
    Html {
        /// Through [`super::message::sanitize_html`]: safe to insert as it is.
        sanitised: String,
        /// It has images that were not loaded.
        images_withheld: bool,
    },
    Text {
        text: String,
    },
    Empty,
}

#[derive(Template)]
#[template(path = "inbox/message.html")]
struct MessagePage {
    title: String,
    nav: Option<String>,
    mailbox: String,
    id: String,
    subject: String,
    /// Header name and value, those with a value.
    headers: Vec<(&'static str, String)>,
    print: bool,
    attachments: Vec<AttachmentJson>,
    body: Body,
    /// Block and spam buttons: the sender's address and domain.
    block: Option<(String, String)>,
    flagged: bool,
    /// Sent, but the mail service never confirmed it.
    unconfirmed: bool,
    unconfirmed_notice: &'static str,
    /// The list it belongs to (the way back after "Mark unread").
    folder: &'static str,
}

/// `GET /inbox/{mailbox}/messages/{id}`: a message, remote images only if asked for.
pub async fn message(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path((mailbox, id)): Path<(String, String)>,
    Qs(q): Qs<ViewQuery>,
) -> Result<Response, ApiError> {
    let images = q.images.as_deref() == Some("1");
    view(&state, &p, &mailbox, &id, images, false).await
}

/// `GET /inbox/{mailbox}/messages/{id}/print`: the message without the page's controls.
pub async fn print(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path((mailbox, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    view(&state, &p, &mailbox, &id, false, true).await
}

async fn view(
    state: &AppState,
    p: &crate::web::auth::Principal,
    mailbox: &str,
    id: &str,
    images: bool,
    print: bool,
) -> Result<Response, ApiError> {
    let inbox = state.inbox();
    let mailbox = inbox.authorise(&p.user(), mailbox).await.paged()?;
    let l = if print {
        inbox.message(&p.org_id, &mailbox, id).await.paged()?
    } else {
        inbox
            .open(&p.org_id, &mailbox, id, state.clock.now())
            .await
            .paged()?
    };
    let o = open_raw(&inbox.raw(&l).await.paged()?, images);
    let s = &l.summary;
    let date = s.date.unwrap_or(l.received_at);
    let headers = [
        (
            "From",
            match (&s.from_name, &s.from) {
                (Some(n), Some(a)) => format!("{n} <{a}>"),
                (_, a) => a.clone().unwrap_or_default(),
            },
        ),
        ("To", s.to.join(", ")),
        ("Cc", s.cc.join(", ")),
        ("Reply-To", o.reply_to.join(", ")),
        ("Date", fmt_time(date)),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let body = match (o.html, o.text) {
        (Some(sanitised), _) => Body::Html {
            sanitised,
            images_withheld: !images && !print && o.has_images,
        },
        (None, Some(text)) => Body::Text { text },
        (None, None) => Body::Empty,
    };
    let block = s
        .from
        .as_deref()
        .and_then(mailbox_of)
        .filter(|_| !print && l.r#ref.folder == Folder::Inbox)
        .map(|from| {
            let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            (from.clone(), domain.to_string())
        });
    let page = MessagePage {
        title: s.subject.clone().unwrap_or_else(|| "Message".into()),
        nav: (!print).then(|| mailbox.clone()),
        id: l.r#ref.encode(),
        subject: s.subject.clone().unwrap_or_else(|| "(no subject)".into()),
        headers,
        print,
        attachments: o.attachments,
        body,
        block,
        flagged: l.flagged,
        unconfirmed: l.unconfirmed,
        unconfirmed_notice: shared::app::send_mail::UNCONFIRMED_NOTICE,
        folder: l.r#ref.folder.name(),
        mailbox,
    };
    let mut resp = render::page(&page)?.into_response();
    if images {
        // The user asked for remote images: allow them for this page only (still no script).
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_WITH_IMAGES),
        );
    }
    Ok(resp)
}
