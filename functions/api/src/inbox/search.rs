//! Search of the Online Inbox (issue 17): the search page
//! (`GET /inbox/{mailbox}/search`, a form and its results, working without script) and the same
//! as JSON (`GET /api/v1/mailboxes/{mailbox}/search`). Both authorise the mailbox and search
//! through [`shared::app::search`]; bad parameters answer 400 with the reason.

use super::message::MessageJson;
use super::pages::fmt_time;
use crate::web::auth::{PageUser, Principal};
use crate::web::error::ApiError;
use crate::web::extract::{Paged, Qs};
use crate::web::render;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::Json;
use serde::Serialize;
use shared::domain::mailbox::Folder;
use shared::domain::search::{highlight, SearchParams, Span};

/// A result as JSON: the message as listed, whether unread, the words it matched and its
/// subject and sender cut into highlighted and plain pieces.
#[derive(Debug, Serialize)]
struct HitJson {
    #[serde(flatten)]
    message: MessageJson,
    unread: bool,
    matched: Vec<String>,
    subject_highlight: Vec<Span>,
    from_highlight: Vec<Span>,
}

/// `GET /api/v1/mailboxes/{mailbox}/search`: a page of results, newest first.
pub async fn json(
    State(state): State<AppState>,
    p: Principal,
    Path(mailbox): Path<String>,
    Qs(q): Qs<SearchParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = state
        .search()
        .search(&p.user(), &mailbox, &q, state.clock.now())
        .await?;
    let hits: Vec<HitJson> = r
        .hits
        .iter()
        .map(|h| HitJson {
            message: MessageJson::from(&h.listed),
            unread: h.unread,
            matched: h.matched.clone(),
            subject_highlight: highlight(
                h.listed.summary.subject.as_deref().unwrap_or_default(),
                &r.words,
            ),
            from_highlight: highlight(
                h.listed.summary.from.as_deref().unwrap_or_default(),
                &r.words,
            ),
        })
        .collect();
    Ok(Json(serde_json::json!({
        "mailbox": r.mailbox,
        "results": hits,
        "words": r.words,
        "next_cursor": r.next,
    })))
}

/// One result row of the page.
struct Row {
    when: String,
    who: Vec<Span>,
    id: String,
    subject: Vec<Span>,
    folder: &'static str,
    unread: bool,
    attachments: bool,
}

#[derive(Template)]
#[template(path = "inbox/search.html")]
struct SearchPage {
    title: String,
    nav: Option<String>,
    mailbox: String,
    /// The form as submitted.
    q: String,
    from: String,
    after: String,
    before: String,
    attachment: bool,
    unread: bool,
    folder: String,
    /// Whether a search was made (else only the form).
    searched: bool,
    words: Vec<String>,
    rows: Vec<Row>,
    /// The next page's query string.
    more: Option<String>,
}

/// `GET /inbox/{mailbox}/search`: the form, and its results when something was asked.
pub async fn page(
    State(state): State<AppState>,
    PageUser(p): PageUser,
    Path(mailbox): Path<String>,
    Qs(q): Qs<SearchParams>,
) -> Result<Html<String>, ApiError> {
    let asked = q.limit.is_some()
        || [
            &q.q,
            &q.from,
            &q.after,
            &q.before,
            &q.attachment,
            &q.unread,
            &q.folder,
            &q.cursor,
        ]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
    let (mailbox, results) = if asked {
        let r = state
            .search()
            .search(&p.user(), &mailbox, &q, state.clock.now())
            .await
            .paged()?;
        (r.mailbox.clone(), Some(r))
    } else {
        let m = state.inbox().authorise(&p.user(), &mailbox).await.paged()?;
        (m, None)
    };
    let on = |v: &Option<String>| matches!(v.as_deref(), Some("1" | "on" | "true"));
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let more = results.as_ref().and_then(|r| r.next.clone()).map(|c| {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &q.q),
            ("from", &q.from),
            ("after", &q.after),
            ("before", &q.before),
            ("attachment", &q.attachment),
            ("unread", &q.unread),
            ("folder", &q.folder),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                qs.append_pair(k, v);
            }
        }
        qs.append_pair("cursor", &c);
        qs.finish()
    });
    let (words, rows) = match &results {
        Some(r) => (
            r.words.clone(),
            r.hits
                .iter()
                .map(|h| {
                    let l = &h.listed;
                    let who = match l.r#ref.folder {
                        Folder::Sent => format!("To: {}", l.summary.to.join(", ")),
                        _ => l.summary.from.clone().unwrap_or_default(),
                    };
                    let subject = l
                        .summary
                        .subject
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "(no subject)".into());
                    Row {
                        when: fmt_time(l.received_at),
                        who: highlight(&who, &r.words),
                        id: l.r#ref.encode(),
                        subject: highlight(&subject, &r.words),
                        folder: l.r#ref.folder.name(),
                        unread: h.unread && l.r#ref.folder != Folder::Sent,
                        attachments: !l.summary.attachments.is_empty(),
                    }
                })
                .collect(),
        ),
        None => (vec![], vec![]),
    };
    render::page(&SearchPage {
        title: format!("Search - {mailbox}"),
        nav: Some(mailbox.clone()),
        q: text(&q.q),
        from: text(&q.from),
        after: text(&q.after),
        before: text(&q.before),
        attachment: on(&q.attachment),
        unread: on(&q.unread),
        folder: text(&q.folder),
        searched: results.is_some(),
        words,
        rows,
        more,
        mailbox,
    })
}
