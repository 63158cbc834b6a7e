//! An administrator's configuration cannot make the service read another organisation's probe
//! secret or the link-signing key and hand it to a server of the administrator's choosing. The
//! attacker's server accepts only the stolen value as its password: had the service sent it, the
//! logon test would have succeeded.

use integration_tests::api::ApiRig;
use integration_tests::{
    probed_org, put_secret, sdk, t, unique, MailServer, MailServerOptions, PROBE_USER,
};
use serde_json::{json, Value};
use shared::domain::config::OrgConfig;
use shared::domain::probe::probe_secret_name;
use shared::ports::clock::Clock;
use shared::ports::store::ConfigStore;

/// A server of the attacker's: STARTTLS, and AUTH that succeeds only with `password`.
async fn server_accepting(password: &str) -> MailServer {
    MailServer::start(MailServerOptions {
        tls: true,
        auth: Some((PROBE_USER.into(), password.into())),
        ..Default::default()
    })
    .await
}

async fn logon_test(api: &ApiRig, admin: &str) -> (u16, Value) {
    let r = ApiRig::http()
        .post(api.url("/api/v1/admin/probe-test"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("POST probe-test");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn put_config(api: &ApiRig, admin: &str, body: &Value) -> (u16, Value) {
    let r = ApiRig::http()
        .put(api.url("/api/v1/admin/config"))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .expect("PUT config");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// acme (its probe through 127.0.0.1:`port`, its own password in its derived secret) and
/// globex (holding `globex_password` in its derived secret); acme's administrator's token.
async fn rig(port: u16, globex_password: &str) -> (ApiRig, OrgConfig, String) {
    let api = ApiRig::start(t("2026-11-23T08:00:00Z")).await;
    let prefix = api.state.settings.probe_secret_prefix.clone();
    put_secret(&probe_secret_name(&prefix, "globex"), globex_password).await;
    put_secret(&probe_secret_name(&prefix, "acme"), "acme's-own-password").await;
    let acme = probed_org("acme", 3, port);
    let now = api.clock.now();
    api.store().put_config(&acme, now).await.expect("acme");
    api.store()
        .put_config(&probed_org("globex", 3, port), now)
        .await
        .expect("globex");
    let admin = api.token("admin@acme.test", true);
    (api, acme, admin)
}

/// The configuration with `probe.<path>` set to `value` (a field that does not exist, or an
/// old one that no longer may).
fn with_probe_field(acme: &OrgConfig, path: &[&str], value: Value) -> Value {
    let mut body = serde_json::to_value(acme).expect("json");
    let mut at = &mut body["probe"];
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[path[path.len() - 1]] = value;
    body
}

/// Every configuration naming `name` at one of `paths` is refused (naming the field) and the
/// stored configuration stays `acme`; then the logon test's answer (which secret it read, and
/// whether the attacker's server took the password).
async fn refused_then_logon(
    api: &ApiRig,
    admin: &str,
    acme: &OrgConfig,
    paths: &[&[&str]],
    names: &[&str],
) -> Value {
    for path in paths {
        for name in names {
            let (st, v) = put_config(api, admin, &with_probe_field(acme, path, json!(name))).await;
            assert!(matches!(st, 400 | 422), "probe.{path:?}: {st} {v}");
            let field = path[path.len() - 1];
            assert!(
                v.to_string().contains(field),
                "the refusal names {field}: {v}"
            );
        }
    }
    let stored = api.store().get_config("acme").await.expect("read");
    assert_eq!(stored.as_ref(), Some(acme), "nothing changed");
    let (st, v) = logon_test(api, admin).await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test]
async fn another_organisations_probe_secret_cannot_be_named_nor_reached() {
    // The attacker's server takes only globex's password; acme's administrator points its probe
    // there and tries every way of naming globex's secret.
    let stolen = unique("globex-pw");
    let server = server_accepting(&stolen).await;
    let (api, acme, admin) = rig(server.port, &stolen).await;
    let prefix = api.state.settings.probe_secret_prefix.clone();
    let globex_secret = probe_secret_name(&prefix, "globex");
    let v = refused_then_logon(
        &api,
        &admin,
        &acme,
        &[
            &["password_secret"],
            &["secret"],
            &["secret_name"],
            &["logon", "secret"],
            &["logon", "password_secret"],
        ],
        &[&globex_secret, "continuity/globex/probe"],
    )
    .await;
    // The logon test read acme's own derived secret, which the server refuses: globex's password
    // never reached it.
    assert_eq!(
        v["secret"],
        json!(probe_secret_name(&prefix, "acme")),
        "{v}"
    );
    assert_eq!(
        v["ok"],
        json!(false),
        "the server was never given globex's password: {v}"
    );
    assert!(server.messages().is_empty(), "nothing was sent");
    // The control: with that password in acme's own secret, the same logon succeeds - the
    // refusal above was the password, not the rig.
    put_secret(&probe_secret_name(&prefix, "acme"), &stolen).await;
    let (st, v) = logon_test(&api, &admin).await;
    assert_eq!((st, &v["ok"]), (200, &json!(true)), "{v}");
}

#[tokio::test]
async fn the_link_signing_key_cannot_be_named_as_a_probe_secret_nor_reached() {
    // Nothing listens on port 9 until the attacker's server is known.
    let (api, mut acme, admin) = rig(9, &unique("globex-pw")).await;
    let key_secret = api.env.link_keys_secret.clone();
    let key = aws_sdk_secretsmanager::Client::new(&sdk().await)
        .get_secret_value()
        .secret_id(&key_secret)
        .send()
        .await
        .expect("link key")
        .secret_string
        .expect("a string secret");
    // The attacker's server takes only the link-signing key's value as its password.
    let server = server_accepting(&key).await;
    acme.probe.as_mut().expect("probe").port = server.port;
    api.store()
        .put_config(&acme, api.clock.now())
        .await
        .expect("acme");
    let v = refused_then_logon(
        &api,
        &admin,
        &acme,
        &[&["password_secret"], &["logon", "secret"]],
        &[&key_secret],
    )
    .await;
    assert_ne!(v["secret"], json!(key_secret), "{v}");
    assert_eq!(
        v["ok"],
        json!(false),
        "the server was never given the link key: {v}"
    );
    assert!(server.messages().is_empty(), "nothing was sent");
}
