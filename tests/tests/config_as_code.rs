//! Configuration as code against DynamoDB Local: plan shows what would change and writes nothing;
//! apply stores it through the same validation; applying the same file twice changes nothing; an
//! invalid file writes nothing at all; a file may carry the user directory (`users`). Domains join only with their DNS proof (P11): the first
//! apply stops with the TXT records to publish; once the local DNS server serves them, apply
//! verifies them and goes on.

use integration_tests::dns::DnsServer;
use integration_tests::{fresh_store, inbound_org, sdk, t, TempDir, RECEIVING_DOMAIN};
use local_runner::config_as_code::{apply, plan, DomainPorts};
use shared::domain::domains::{proof_name, proof_value};
use shared::ports::domains::DomainClaims;
use shared::ports::store::ConfigStore;

fn write(dir: &TempDir, name: &str, v: &serde_json::Value) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).expect("json")).expect("write");
    p
}

async fn updated_at(store: &shared::adapters::dynamodb::DynamoStore, org: &str) -> Option<String> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#{org}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONFIG".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    out.item
        .and_then(|i| i.get("updated_at").and_then(|v| v.as_s().ok()).cloned())
}

#[tokio::test]
async fn plan_apply_and_apply_again() {
    let store = fresh_store().await;
    let dir = TempDir::new("iac");
    let acme = inbound_org("acme", 3);
    let globex = inbound_org("globex", 4);
    let file = write(&dir, "orgs.json", &serde_json::json!([acme, globex]));

    // Plan: both new; nothing written.
    let p = plan(&store, &[&file]).await.expect("plan");
    assert!(p.iter().all(|(p, _)| p.create));
    assert_eq!(store.get_config("acme").await.expect("get"), None);

    let mut dns = DnsServer::start(&[]).await;
    let ports = DomainPorts {
        store: store.clone(),
        proofs: shared::adapters::dns::DnsTxtProofs::new(&dns.servers()).expect("resolver"),
        identities: shared::adapters::sesv2::SesIdentities::from_sdk(&sdk().await),
        bus: local_runner::config_as_code::OperatorBus::from_env(&sdk().await),
        receiving_domain: RECEIVING_DOMAIN.into(),
    };
    let domains = ports.domains();
    // Unproven domains: claimed, and the records to publish named; nothing stored.
    let e = apply(&store, &[&file], t("2026-11-23T09:00:00Z"), &domains)
        .await
        .expect_err("domains not proven yet");
    assert!(
        e.contains("publish _email-continuity.acme.test TXT \"email-continuity-verification="),
        "{e}"
    );
    assert_eq!(store.get_config("acme").await.expect("get"), None);
    let mut records = Vec::new();
    for org in ["acme", "globex"] {
        for c in store
            .claims(org, t("2026-11-23T09:00:00Z"))
            .await
            .expect("claims")
        {
            records.push((proof_name(&c.domain), proof_value(&c.token)));
        }
    }
    assert_eq!(records.len(), 2);
    let refs: Vec<(&str, &str)> = records
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    dns.set_records(&refs).await;
    let applied = apply(&store, &[&file], t("2026-11-23T10:00:00Z"), &domains)
        .await
        .expect("apply");
    assert_eq!(applied.iter().filter(|p| p.create).count(), 2);
    assert_eq!(
        store.get_config("acme").await.expect("get"),
        Some(acme.clone())
    );
    let first = updated_at(&store, "acme").await;

    // The same file again: no changes, nothing written (the timestamp stays).
    let again = apply(&store, &[&file], t("2026-11-23T11:00:00Z"), &domains)
        .await
        .expect("apply");
    assert!(again.iter().all(|p| p.is_noop()), "{again:?}");
    assert_eq!(updated_at(&store, "acme").await, first);

    // A change shows in the plan by field, then applies; the other organisation is untouched.
    let mut acme2 = acme.clone();
    acme2.monitoring.threshold = 6;
    let file2 = write(&dir, "orgs2.json", &serde_json::json!([acme2, globex]));
    let p = plan(&store, &[&file2]).await.expect("plan");
    let acme_plan = &p.iter().find(|(p, _)| p.org_id == "acme").expect("acme").0;
    assert_eq!(acme_plan.changes.len(), 1);
    assert_eq!(acme_plan.changes[0].path, "monitoring.threshold");
    assert_eq!(
        store.get_config("acme").await.expect("get"),
        Some(acme.clone()),
        "plan wrote nothing"
    );
    apply(&store, &[&file2], t("2026-11-23T12:00:00Z"), &domains)
        .await
        .expect("apply");
    assert_eq!(
        store
            .get_config("acme")
            .await
            .expect("get")
            .map(|c| c.monitoring.threshold),
        Some(6)
    );
    assert_eq!(
        store.get_config("globex").await.expect("get"),
        Some(globex.clone())
    );

    // An invalid file (one good organisation, one bad): refused, naming the field; nothing written.
    let mut bad = globex.clone();
    bad.monitoring.threshold = 0;
    let mut acme3 = acme2.clone();
    acme3.name = "Acme renamed".into();
    let file3 = write(&dir, "bad.json", &serde_json::json!([acme3, bad]));
    let e = apply(&store, &[&file3], t("2026-11-23T13:00:00Z"), &domains)
        .await
        .expect_err("invalid");
    assert!(e.contains("monitoring.threshold"), "{e}");
    assert_eq!(store.get_config("acme").await.expect("get"), Some(acme2));

    // A domain another organisation already proved is refused (no claim, nothing stored).
    let mut thief = inbound_org("initech", 3);
    thief.domains = vec!["acme.test".into()];
    let file4 = write(&dir, "thief.json", &serde_json::json!(thief));
    assert!(
        apply(&store, &[&file4], t("2026-11-23T14:00:00Z"), &domains)
            .await
            .is_err()
    );
    assert_eq!(store.get_config("initech").await.expect("get"), None);
}

/// The domain ports with a local DNS server that already serves the proofs of `org`'s domains
/// (claimed here, as an administrator would before the first apply).
async fn proven(
    store: &shared::adapters::dynamodb::DynamoStore,
    org: &str,
    domains: &[&str],
) -> (DnsServer, DomainPorts) {
    let mut dns = DnsServer::start(&[]).await;
    let ports = DomainPorts {
        store: store.clone(),
        proofs: shared::adapters::dns::DnsTxtProofs::new(&dns.servers()).expect("resolver"),
        identities: shared::adapters::sesv2::SesIdentities::from_sdk(&sdk().await),
        bus: local_runner::config_as_code::OperatorBus::from_env(&sdk().await),
        receiving_domain: RECEIVING_DOMAIN.into(),
    };
    let by = shared::app::domains::operator("test-claim");
    for d in domains {
        let view = ports
            .domains()
            .claim(org, d, &by, t("2026-11-23T09:00:00Z"))
            .await
            .expect("claim");
        let r = &view.records[0];
        dns.add_txt(&r.name, &r.value).await;
    }
    (dns, ports)
}

#[tokio::test]
async fn a_file_carries_the_user_directory() {
    use shared::ports::store::ContinuityStore;
    let store = fresh_store().await;
    let dir = TempDir::new("iac-users");
    let acme = inbound_org("acme", 3);
    let mut doc = serde_json::to_value(&acme).expect("json");
    doc["users"] = serde_json::json!([
        {"address": "Ann@acme.test", "name": "Ann", "mobile": "+447700900123"},
        {"address": "bob@acme.test", "alternate": "bob@elsewhere.test"}
    ]);
    let file = write(&dir, "acme.json", &doc);
    let (_dns, ports) = proven(&store, "acme", &["acme.test"]).await;
    let domains = ports.domains();

    // Plan: the configuration and the directory; nothing written.
    let p = plan(&store, &[&file]).await.expect("plan");
    assert!(p[0].0.create && p[0].0.users.is_some());
    assert!(store
        .user_directory("acme")
        .await
        .expect("read")
        .users
        .is_empty());

    apply(&store, &[&file], t("2026-11-23T10:00:00Z"), &domains)
        .await
        .expect("apply");
    let stored = store.user_directory("acme").await.expect("read");
    let addresses: Vec<_> = stored.users.keys().cloned().collect();
    assert_eq!(addresses, ["ann@acme.test", "bob@acme.test"]);
    assert_eq!(
        stored.users["bob@acme.test"].alternate.as_deref(),
        Some("bob@elsewhere.test")
    );

    // The same file again: nothing to do, nothing written (the import time stays).
    let again = apply(&store, &[&file], t("2026-11-23T11:00:00Z"), &domains)
        .await
        .expect("apply");
    assert!(again[0].is_noop(), "{again:?}");
    assert_eq!(store.user_directory("acme").await.expect("read"), stored);

    // A bad row (an alternate address on the organisation's own domain) refuses the whole file:
    // neither the configuration change beside it nor the directory is written.
    let mut acme2 = acme.clone();
    acme2.monitoring.threshold = 6;
    let mut bad = serde_json::to_value(&acme2).expect("json");
    bad["users"] = serde_json::json!([
        {"address": "ann@acme.test"},
        {"address": "carol@acme.test", "alternate": "carol2@acme.test"}
    ]);
    let bad_file = write(&dir, "bad.json", &bad);
    let e = apply(&store, &[&bad_file], t("2026-11-23T12:00:00Z"), &domains)
        .await
        .expect_err("refused");
    assert!(e.contains("users[1].alternate"), "{e}");
    assert_eq!(store.get_config("acme").await.expect("get"), Some(acme));
    assert_eq!(store.user_directory("acme").await.expect("read"), stored);

    // A new directory replaces the old whole; a file without `users` leaves it alone.
    doc["users"] = serde_json::json!([{"address": "carol@acme.test", "mobile": "+447700900124"}]);
    let file2 = write(&dir, "acme2.json", &doc);
    apply(&store, &[&file2], t("2026-11-23T13:00:00Z"), &domains)
        .await
        .expect("apply");
    let replaced = store.user_directory("acme").await.expect("read");
    assert_eq!(
        replaced.users.keys().cloned().collect::<Vec<_>>(),
        ["carol@acme.test"]
    );
    let file3 = write(&dir, "acme3.json", &serde_json::json!(acme2));
    apply(&store, &[&file3], t("2026-11-23T14:00:00Z"), &domains)
        .await
        .expect("apply");
    assert_eq!(store.user_directory("acme").await.expect("read"), replaced);
}
