//! `continuity-config`: organisations' configuration as code.
//!
//!   continuity-config plan  orgs/*.json     # what would change (nothing is written)
//!   continuity-config apply orgs/*.json     # shows the plan, then stores what differs
//!
//! The table comes from TABLE_NAME (the stack's `TableName` output), credentials and region
//! from the usual AWS settings (or AWS_ENDPOINT_URL* for the local stand-ins). Every file is
//! validated before anything is written; applying the same files twice changes nothing.

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
    let result = if cmd == "plan" {
        config_as_code::plan(&store, &files)
            .await
            .map(|v| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>())
    } else {
        config_as_code::apply(&store, &files, chrono::Utc::now()).await
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
