//! Blocks (U4) and distribution lists (U6) through the real inbound function, the directory
//! import API, against DynamoDB Local and moto.

use chrono::Duration;
use integration_tests::inbox_support::{addr, plain, InboxRig, ORG};
use integration_tests::{mail_deps, t, unique};
use serde_json::json;
use shared::domain::mailbox::Folder;
use shared::ports::blob::RawMessages;
use shared::ports::clock::Clock;
use shared::ports::store::ConfigStore;
use shared::ports::store::MailboxStore;
use std::sync::Arc;

async fn subjects(rig: &InboxRig, mailbox: &str) -> Vec<String> {
    let page = rig
        .api
        .store()
        .mailbox_page(
            ORG,
            mailbox,
            Folder::Inbox,
            rig.now() - Duration::days(1),
            None,
            100,
        )
        .await
        .unwrap();
    page.items
        .into_iter()
        .filter_map(|l| l.summary.subject)
        .collect()
}

/// Receives `raw` through the inbound function (raw in its bucket, then the SES event).
async fn receive(deps: &inbound::Deps, sender: &str, rcpts: &[String], raw: &[u8]) {
    let id = unique("ses").replace('-', "");
    deps.raw
        .put(&format!("{}{id}", deps.prefix), raw.to_vec())
        .await
        .unwrap();
    let event = inbound::SesEvent::single(
        &id,
        deps.clock.now(),
        sender,
        rcpts.to_vec(),
        shared::domain::verdicts::Verdicts::ALL_PASS,
    );
    integration_tests::handle_ses_now(deps, &event)
        .await
        .expect("inbound");
}

#[tokio::test]
async fn blocked_senders_and_domains_stay_out_of_that_users_inbox() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let deps = mail_deps(
        rig.api.store().clone(),
        Arc::new(rig.api.clock.clone()) as Arc<dyn Clock>,
    )
    .await;
    let (bob, carol) = (addr("bob"), addr("carol"));
    let tok = rig.token("bob", false);
    let p = format!("/api/v1/mailboxes/{bob}/blocks");
    assert_eq!(
        rig.post(&tok, &p, &json!({"target": "junk.example"}))
            .await
            .0,
        201
    );
    assert_eq!(
        rig.post(
            &tok,
            &p,
            &json!({"target": "pest@example.org", "kind": "spam"})
        )
        .await
        .0,
        201
    );
    let both = vec![bob.clone(), carol.clone()];
    receive(
        &deps,
        "x@eu.junk.example",
        &both,
        &plain("x@eu.junk.example", &bob, "from-junk", "j@x", "x"),
    )
    .await;
    receive(
        &deps,
        "pest@example.org",
        &both,
        &plain("Pest <pest@example.org>", &bob, "from-pest", "p@x", "x"),
    )
    .await;
    receive(
        &deps,
        "friend@example.org",
        &both,
        &plain("friend@example.org", &bob, "from-friend", "f@x", "x"),
    )
    .await;
    assert_eq!(subjects(&rig, &bob).await, vec!["from-friend"]);
    let mut c = subjects(&rig, &carol).await;
    c.sort();
    assert_eq!(
        c,
        vec!["from-friend", "from-junk", "from-pest"],
        "only Bob's inbox is affected"
    );
    // Unblocked: later mail comes through again.
    let r = rig
        .http
        .delete(rig.api.url(&format!("{p}/junk.example")))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    receive(
        &deps,
        "x@junk.example",
        &both,
        &plain("x@junk.example", &bob, "junk-again", "j2@x", "x"),
    )
    .await;
    assert!(subjects(&rig, &bob)
        .await
        .contains(&"junk-again".to_string()));
}

#[tokio::test]
async fn directory_import_replaces_atomically_and_expands_lists() {
    let rig = InboxRig::start(t("2026-11-23T10:00:00Z")).await;
    let mut config = integration_tests::inbound_org(ORG, 3);
    config.delivery.expand_distribution_lists = true;
    rig.api
        .store()
        .put_config(&config, rig.now())
        .await
        .unwrap();
    let deps = mail_deps(
        rig.api.store().clone(),
        Arc::new(rig.api.clock.clone()) as Arc<dyn Clock>,
    )
    .await;
    let admin = rig.token("admin", true);
    let user = rig.token("bob", false);
    let put = |body: &'static str, ct: &'static str, tok: String| {
        let http = rig.http.clone();
        let url = rig.api.url("/api/v1/admin/groups");
        async move {
            let r = http
                .put(url)
                .bearer_auth(tok)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    // Users may not import.
    assert_eq!(put("group,member\n", "text/csv", user.clone()).await.0, 403);
    let (_, before) = rig.get(&user, "/api/v1/mailboxes").await;
    assert!(before["directory_synced_at"].is_null());
    let (st, r) = put(
        "group,member\nsales@acme.test,bob@acme.test\nsales@acme.test,carol@acme.test\nold@acme.test,bob@acme.test\n",
        "text/csv",
        admin.clone(),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["groups"], 2);
    // A bad row refuses the whole import; the previous one stays.
    let (st, _) = put(
        "sales@acme.test,not an address\n",
        "text/csv",
        admin.clone(),
    )
    .await;
    assert_eq!(st, 422);
    let (st, _) = put("<groups/>", "application/xml", admin.clone()).await;
    assert_eq!(st, 415);
    rig.api.clock.advance(Duration::minutes(5));
    let (st, r) = put(
        r#"{"groups":[{"address":"sales@acme.test","members":["bob@acme.test","dan@acme.test"]}]}"#,
        "application/json",
        admin.clone(),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["removed"], 1, "old@ is gone");
    let (_, g) = rig.get(&admin, "/api/v1/admin/groups").await;
    assert_eq!(
        g["groups"],
        json!([{"address": "sales@acme.test", "members": ["bob@acme.test", "dan@acme.test"]}])
    );
    assert_eq!(g["synced_at"], "2026-11-23T10:05:00Z");
    let (_, after) = rig.get(&user, "/api/v1/mailboxes").await;
    assert_eq!(after["directory_synced_at"], "2026-11-23T10:05:00Z");
    let (_, home) = rig.get_text(&user, "/inbox").await;
    assert!(
        home.contains("2026-11-23 10:05 UTC"),
        "the sync time is shown: {home}"
    );
    // Mail to the list appears for each member (as of the last import).
    receive(
        &deps,
        "a@example.org",
        &["sales@acme.test".to_string()],
        &plain("a@example.org", "sales@acme.test", "to-sales", "s@x", "x"),
    )
    .await;
    receive(
        &deps,
        "a@example.org",
        &["old@acme.test".to_string()],
        &plain("a@example.org", "old@acme.test", "to-old", "o@x", "x"),
    )
    .await;
    assert_eq!(subjects(&rig, &addr("bob")).await, vec!["to-sales"]);
    assert_eq!(subjects(&rig, &addr("dan")).await, vec!["to-sales"]);
    assert!(
        subjects(&rig, &addr("carol")).await.is_empty(),
        "carol left the list"
    );
    assert_eq!(
        subjects(&rig, "old@acme.test").await,
        vec!["to-old"],
        "no longer a list"
    );
}
