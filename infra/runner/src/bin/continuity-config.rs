//! `continuity-config`: organisations' configuration as code.
//!
//!   continuity-config plan  orgs/*.json     # what would change (nothing is written)
//!   continuity-config apply orgs/*.json     # shows the plan, then stores what differs
//!
//! The table comes from TABLE_NAME (the stack's `TableName` output), credentials and region
//! from the usual AWS settings (or AWS_ENDPOINT_URL* for the local stand-ins). Every file is
//! validated before anything is written; applying the same files twice changes nothing.
//! A domain a file adds joins only after its DNS proof (P11): apply prints the TXT record to
//! publish and stops; applied again once it is published, it verifies it (`DNS_SERVERS`, or the
//! system's resolver) and goes on. `plan` also shows each domain's records and their status.

use local_runner::config_as_code;
use shared::adapters::dynamodb::DynamoStore;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, files) = match args.split_first() {
        Some((c, f)) if (c == "plan" || c == "apply") && !f.is_empty() => (c.clone(), f.to_vec()),
        _ => {
            eprintln!("usage: continuity-config plan|apply FILE.json...");
            std::process::exit(2);
        }
    };
    let table = match shared::adapters::lambda::required_env("TABLE_NAME") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("continuity-config: {e}");
            std::process::exit(2);
        }
    };
    let sdk = shared::adapters::aws::sdk_config().await;
    let store = DynamoStore::from_sdk(&sdk, table);
    let ports = match config_as_code::DomainPorts::from_env(&sdk, store.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("continuity-config: {e}");
            std::process::exit(2);
        }
    };
    let now = chrono::Utc::now();
    let result = if cmd == "plan" {
        match config_as_code::plan(&store, &files).await {
            Ok(v) => {
                let orgs: Vec<String> = v.iter().map(|(p, _)| p.org_id.clone()).collect();
                // The domains' records to publish, and their status (P11).
                match config_as_code::domain_records(&ports.domains(), &orgs, now).await {
                    Ok(text) => print!("{text}"),
                    Err(e) => eprintln!("continuity-config: domains: {e}"),
                }
                Ok(v.into_iter().map(|(p, _)| p).collect::<Vec<_>>())
            }
            Err(e) => Err(e),
        }
    } else {
        config_as_code::apply(&store, &files, now, &ports.domains()).await
    };
    match result {
        Ok(plans) => {
            for p in &plans {
                print!("{}", shared::domain::config_as_code::render(p));
            }
            let changed = plans.iter().filter(|p| !p.is_noop()).count();
            if cmd == "apply" {
                println!(
                    "applied: {changed} organisation(s) changed, {} unchanged",
                    plans.len() - changed
                );
            } else {
                println!(
                    "plan: {changed} organisation(s) would change, {} unchanged",
                    plans.len() - changed
                );
            }
        }
        Err(e) => {
            eprintln!("continuity-config: {e}\nnothing was written");
            std::process::exit(1);
        }
    }
}
