//! The SAM template and the code agree (I1; issue 7). Needs no services: it reads
//! `infra/template.yaml`, the function crates' manifests and sources, and
//! `shared/src/adapters/dynamodb/TABLE.md`.
//!
//! - every crate under `functions/` has an `AWS::Serverless::Function` built by cargo-lambda
//!   (`Metadata.BuildMethod: rust-cargolambda`) whose `Metadata.BuildProperties.Binary` is the
//!   crate's binary, on `provided.al2023` / arm64, and no function resource names a binary that
//!   does not exist;
//! - every environment variable the code reads is set for the function that reads it, and every
//!   variable the template sets is read by something (a misspelt name would otherwise be silently
//!   ignored and the default used);
//! - the table's keys, index and TTL attribute are those of `shared::adapters::dynamodb::keys` and TABLE.md.
//!
//! The checks are plain functions returning the problems found, so that they can also be run on
//! a made-up workspace (the last tests) to show they fail with a useful message.

use serde_norway::Value;
use shared::adapters::dynamodb::keys::{GSI1, TTL_ATTR};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The template as a YAML value. CloudFormation's short forms (`!Ref`, `!Sub`, `!GetAtt`, ...)
/// are kept as tagged values; nothing checked here looks inside them.
fn template() -> Value {
    let path = root().join("infra/template.yaml");
    serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `value[a][b]...`, or `None` when any step is missing.
fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn keys(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ the code side

/// A function crate: its directory name, its binaries, and the environment variables its own
/// sources read.
#[derive(Debug, Clone)]
struct FunctionCrate {
    dir: String,
    binaries: Vec<String>,
    env: BTreeSet<String>,
}

/// Binaries of a crate, from its manifest: every `[[bin]]`, or the package itself when it has
/// `src/main.rs` (cargo's rule).
fn binaries(crate_dir: &Path) -> Result<Vec<String>, String> {
    let manifest_path = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{} is not a crate: {e}", crate_dir.display()))?;
    let manifest: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let mut bins: Vec<String> = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .map(|bins| {
            bins.iter()
                .filter_map(|b| b.get("name")?.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if bins.is_empty() && crate_dir.join("src/main.rs").is_file() {
        let name = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(|| format!("{}: no package name", manifest_path.display()))?;
        bins.push(name.to_string());
    }
    if bins.is_empty() {
        return Err(format!(
            "{} builds no binary: a function crate needs src/main.rs or a [[bin]]",
            crate_dir.display()
        ));
    }
    Ok(bins)
}

/// How code reads a setting: the helpers of `shared::aws` and the standard library.
const ENV_READERS: [&str; 4] = [
    "required_env(\"",
    "env_or(\"",
    "env::var(\"",
    "env::var_os(\"",
];

/// Every `.rs` file under `dir`.
fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// Environment variables named literally in the readers above, in every `.rs` file under `dir`.
/// The SDK's own (`AWS_*`, set by Lambda or by the local stack) are not the template's business.
fn env_reads(dir: &Path) -> BTreeSet<String> {
    rs_files(dir).iter().flat_map(|p| env_reads_in(p)).collect()
}

/// As [`env_reads`], in one file.
fn env_reads_in(path: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in read(path).lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for reader in ENV_READERS {
            let mut rest = line;
            while let Some(i) = rest.find(reader) {
                rest = &rest[i + reader.len()..];
                if let Some(end) = rest.find('"') {
                    let name = &rest[..end];
                    if !name.starts_with("AWS_") {
                        found.insert(name.to_string());
                    }
                }
            }
        }
    }
    found
}

/// Settings readers in `shared/` that only some functions call, and how a call reads: their
/// variables are not everyone's (not `Globals`), they are read by each function crate whose code
/// makes the call.
const SHARED_READERS: [(&str, &str); 2] = [
    ("adapters/notify.rs", "ChannelSettings::from_env("),
    ("adapters/oauth.rs", "OauthEndpoints::from_env("),
];

/// What `shared/` reads for every function (outside [`SHARED_READERS`]' files), and what each of
/// those readers reads besides.
fn shared_env_split() -> (BTreeSet<String>, Vec<(&'static str, BTreeSet<String>)>) {
    let src = root().join("shared/src");
    let is_reader = |p: &Path| SHARED_READERS.iter().any(|(file, _)| p.ends_with(file));
    let everyone: BTreeSet<String> = rs_files(&src)
        .iter()
        .filter(|p| !is_reader(p))
        .flat_map(|p| env_reads_in(p))
        .collect();
    let readers = SHARED_READERS
        .iter()
        .map(|(file, call)| {
            let vars = env_reads_in(&src.join(file));
            assert!(
                !vars.is_empty(),
                "{file} reads no variable: update SHARED_READERS"
            );
            (*call, vars.difference(&everyone).cloned().collect())
        })
        .collect();
    (everyone, readers)
}

/// Whether any `.rs` file under `dir` contains `text`.
fn calls(dir: &Path, text: &str) -> bool {
    rs_files(dir).iter().any(|p| read(p).contains(text))
}

/// Every directory under `functions/`, as a crate.
fn function_crates() -> Vec<FunctionCrate> {
    let dir = root().join("functions");
    let (_, readers) = shared_env_split();
    let mut crates: Vec<FunctionCrate> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let path = e.path();
            let mut env = env_reads(&path.join("src"));
            for (call, vars) in &readers {
                if calls(&path.join("src"), call) {
                    env.extend(vars.iter().cloned());
                }
            }
            FunctionCrate {
                dir: e.file_name().to_string_lossy().into_owned(),
                binaries: binaries(&path).unwrap_or_else(|e| panic!("{e}")),
                env,
            }
        })
        .collect();
    crates.sort_by(|a, b| a.dir.cmp(&b.dir));
    crates
}

// ------------------------------------------------------------------ the checks

/// Variables read by the logging library rather than by our code.
const READ_BY_LIBRARIES: [&str; 1] = ["RUST_LOG"];

/// Functions of the template built by cargo-lambda, by binary: (logical id, resource).
fn cargo_lambda_functions(template: &Value) -> (BTreeMap<String, (String, Value)>, Vec<String>) {
    let mut by_binary = BTreeMap::new();
    let mut problems = Vec::new();
    let resources = at(template, &["Resources"])
        .and_then(Value::as_mapping)
        .expect("the template has Resources");
    for (id, resource) in resources {
        let id = id.as_str().unwrap_or_default().to_string();
        if str_at(resource, &["Type"]) != Some("AWS::Serverless::Function") {
            continue;
        }
        if str_at(resource, &["Metadata", "BuildMethod"]) != Some("rust-cargolambda") {
            problems.push(format!(
                "{id}: Metadata.BuildMethod must be rust-cargolambda (every function is a Rust crate built by cargo-lambda)"
            ));
            continue;
        }
        let Some(binary) = str_at(resource, &["Metadata", "BuildProperties", "Binary"]) else {
            problems.push(format!(
                "{id}: Metadata.BuildProperties.Binary is missing: CodeUri is the workspace, so sam build must be told which binary"
            ));
            continue;
        };
        if let Some((other, _)) =
            by_binary.insert(binary.to_string(), (id.clone(), resource.clone()))
        {
            problems.push(format!("binary {binary} is built by both {other} and {id}"));
        }
    }
    (by_binary, problems)
}

/// Checks the functions against the crates; returns every problem found.
fn check_functions(
    template: &Value,
    crates: &[FunctionCrate],
    shared_env: &BTreeSet<String>,
) -> Vec<String> {
    let (by_binary, mut problems) = cargo_lambda_functions(template);
    let globals = at(template, &["Globals", "Function"]);
    let global_env = keys(globals.and_then(|g| at(g, &["Environment", "Variables"])));
    let setting = |resource: &Value, name: &str| {
        str_at(resource, &["Properties", name])
            .or_else(|| globals.and_then(|g| str_at(g, &[name])))
            .map(String::from)
    };

    let mut all_binaries = BTreeSet::new();
    let mut read_anywhere: BTreeSet<String> = shared_env.clone();
    for krate in crates {
        read_anywhere.extend(krate.env.iter().cloned());
        for binary in &krate.binaries {
            all_binaries.insert(binary.clone());
            let Some((id, resource)) = by_binary.get(binary) else {
                problems.push(format!(
                    "functions/{} builds binary `{binary}`, but infra/template.yaml has no AWS::Serverless::Function with \
                     Metadata.BuildMethod: rust-cargolambda and Metadata.BuildProperties.Binary: {binary} (copy MonitorFunction: \
                     its schedule or API event, least-privilege policy, log group, dead-letter handling and alarms)",
                    krate.dir
                ));
                continue;
            };
            if setting(resource, "Runtime").as_deref() != Some("provided.al2023") {
                problems.push(format!("{id}: Runtime must be provided.al2023"));
            }
            if setting(resource, "Handler").as_deref() != Some("bootstrap") {
                problems.push(format!("{id}: Handler must be bootstrap"));
            }
            let arch = at(resource, &["Properties", "Architectures"])
                .or_else(|| globals.and_then(|g| at(g, &["Architectures"])));
            if arch
                .and_then(Value::as_sequence)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                != Some(vec!["arm64"])
            {
                problems.push(format!("{id}: Architectures must be [arm64]"));
            }
            let own_env = keys(at(resource, &["Properties", "Environment", "Variables"]));
            for var in &krate.env {
                if !own_env.contains(var) && !global_env.contains(var) {
                    problems.push(format!(
                        "functions/{} reads environment variable {var}, but {id} does not set it (neither in its Environment nor in Globals)",
                        krate.dir
                    ));
                }
            }
            for var in own_env.difference(&krate.env) {
                if !shared_env.contains(var) && !READ_BY_LIBRARIES.contains(&var.as_str()) {
                    problems.push(format!(
                        "{id} sets environment variable {var}, which functions/{} never reads (misspelt?)",
                        krate.dir
                    ));
                }
            }
        }
    }
    // shared/ cannot know which function calls it: what it reads must be set for every function.
    for var in shared_env {
        if !global_env.contains(var) {
            problems.push(format!(
                "shared/ reads environment variable {var}: set it in Globals.Function.Environment (or pass it in from the function's settings)"
            ));
        }
    }
    for var in &global_env {
        if !read_anywhere.contains(var) && !READ_BY_LIBRARIES.contains(&var.as_str()) {
            problems.push(format!(
                "Globals sets environment variable {var}, which no code reads (misspelt?)"
            ));
        }
    }
    for (binary, (id, _)) in &by_binary {
        if !all_binaries.contains(binary) {
            problems.push(format!(
                "{id} builds binary `{binary}`, which no crate under functions/ provides"
            ));
        }
    }
    problems
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "template and code disagree:\n- {}",
        problems.join("\n- ")
    );
}

// ------------------------------------------------------------------ the tests

#[test]
fn every_function_crate_has_its_function_and_settings() {
    let crates = function_crates();
    assert!(!crates.is_empty(), "no crates under functions/");
    let (shared_env, _) = shared_env_split();
    // The scan must see what we know is read; if it does not, the patterns no longer match how
    // the code reads settings and every other check here would pass vacuously.
    let monitor = crates
        .iter()
        .find(|c| c.dir == "monitor")
        .expect("functions/monitor");
    assert!(
        monitor.env.contains("TABLE_NAME")
            && monitor.env.contains("SMTP_CA_BUNDLE")
            && monitor.env.contains("ALERT_SENDER"),
        "the environment scan found {:?} in functions/monitor: update ENV_READERS to the way settings are read",
        monitor.env
    );
    assert_none(check_functions(&template(), &crates, &shared_env));
}

#[test]
fn the_table_matches_the_store_and_table_md() {
    let template = template();
    let table = at(&template, &["Resources", "Table", "Properties"]).expect("Resources.Table");
    let pairs = |v: Option<&Value>, a: &str, b: &str| -> Vec<(String, String)> {
        v.and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .map(|e| {
                        (
                            str_at(e, &[a]).unwrap_or_default().to_string(),
                            str_at(e, &[b]).unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let hash_range = |h: &str, r: &str| {
        vec![
            (h.to_string(), "HASH".to_string()),
            (r.to_string(), "RANGE".to_string()),
        ]
    };

    assert_eq!(
        pairs(at(table, &["KeySchema"]), "AttributeName", "KeyType"),
        hash_range("pk", "sk")
    );
    let indexes = at(table, &["GlobalSecondaryIndexes"])
        .and_then(Value::as_sequence)
        .expect("GlobalSecondaryIndexes");
    let names: Vec<&str> = indexes
        .iter()
        .filter_map(|i| str_at(i, &["IndexName"]))
        .collect();
    assert_eq!(names, vec![GSI1], "the table's indexes");
    assert_eq!(
        pairs(at(&indexes[0], &["KeySchema"]), "AttributeName", "KeyType"),
        hash_range("gsi1pk", "gsi1sk")
    );
    assert_eq!(
        str_at(&indexes[0], &["Projection", "ProjectionType"]),
        Some("ALL")
    );
    assert_eq!(
        str_at(table, &["TimeToLiveSpecification", "AttributeName"]),
        Some(TTL_ATTR)
    );
    assert_eq!(
        at(table, &["TimeToLiveSpecification", "Enabled"]).and_then(Value::as_bool),
        Some(true)
    );
    assert_eq!(str_at(table, &["BillingMode"]), Some("PAY_PER_REQUEST"));
    assert_eq!(
        at(
            table,
            &[
                "PointInTimeRecoverySpecification",
                "PointInTimeRecoveryEnabled"
            ]
        )
        .and_then(Value::as_bool),
        Some(true)
    );
    assert_eq!(
        at(table, &["SSESpecification", "SSEEnabled"]).and_then(Value::as_bool),
        Some(true)
    );
    assert_eq!(
        at(table, &["DeletionProtectionEnabled"]).and_then(Value::as_bool),
        Some(true)
    );

    // TABLE.md's key table ("| `pk` | S | ...", "| `gsi1pk`, `gsi1sk` | S | ..."): the attribute
    // definitions plus the TTL attribute (a number, never defined: it is no key).
    let doc = read(&root().join("shared/src/adapters/dynamodb/TABLE.md"));
    let mut documented = BTreeMap::new();
    for line in doc
        .lines()
        .skip_while(|l| !l.starts_with("| key |"))
        .skip(2)
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            break;
        }
        for name in cells[1].split(',') {
            documented.insert(
                name.trim().trim_matches('`').to_string(),
                cells[2].to_string(),
            );
        }
    }
    let mut defined: BTreeMap<String, String> = pairs(
        at(table, &["AttributeDefinitions"]),
        "AttributeName",
        "AttributeType",
    )
    .into_iter()
    .collect();
    defined.insert(TTL_ATTR.to_string(), "N".to_string());
    assert_eq!(
        defined, documented,
        "infra/template.yaml's attribute definitions (+ TTL) against TABLE.md's key table"
    );
    assert!(
        doc.contains(&format!("TTL on `{TTL_ATTR}`")) && doc.contains(&format!("index `{GSI1}`")),
        "TABLE.md names the TTL attribute {TTL_ATTR} and the index {GSI1}"
    );
}

#[test]
fn a_function_crate_without_a_template_resource_is_reported() {
    let mut crates = function_crates();
    crates.push(FunctionCrate {
        dir: "portal".into(),
        binaries: vec!["portal".into()],
        env: ["TABLE_NAME".to_string(), "PORTAL_BASE_URL".to_string()].into(),
    });
    let problems = check_functions(&template(), &crates, &BTreeSet::new());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("functions/portal builds binary `portal`")
                && p.contains("Metadata.BuildProperties.Binary: portal")),
        "{problems:?}"
    );
}

#[test]
fn an_unset_variable_and_a_misspelt_one_are_reported() {
    let mut crates = function_crates();
    let monitor = crates
        .iter_mut()
        .find(|c| c.dir == "monitor")
        .expect("functions/monitor");
    monitor.env.insert("PROBE_SENDER".into());
    monitor.env.remove("SMTP_TIMEOUT_SECS");
    let problems = check_functions(&template(), &crates, &["SHARED_SETTING".to_string()].into());
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(
        has("reads environment variable PROBE_SENDER, but MonitorFunction does not set it"),
        "{problems:?}"
    );
    assert!(
        has("sets environment variable SMTP_TIMEOUT_SECS, which functions/monitor never reads"),
        "{problems:?}"
    );
    assert!(
        has("shared/ reads environment variable SHARED_SETTING"),
        "{problems:?}"
    );
}

/// The inbound and queue functions' deadlines (`inbound::INBOUND_TIMEOUT`, `QUEUE_TIMEOUT`:
/// what the local runner and the tests give the handlers, and what the delivery budget is
/// sized against) are the template's timeouts.
#[test]
fn the_mail_functions_timeouts_are_the_templates() {
    let t = template();
    for (resource, timeout) in [
        ("InboundFunction", inbound::INBOUND_TIMEOUT),
        ("QueueFunction", inbound::QUEUE_TIMEOUT),
    ] {
        let got = at(&t, &["Resources", resource, "Properties", "Timeout"]).and_then(Value::as_u64);
        assert_eq!(got, Some(timeout.as_secs()), "{resource}'s Timeout");
    }
    // The delivery budget, and the margin after it, fit inside the shorter of the two.
    let budget = u64::from(shared::domain::delivery::DELIVERY_BUDGET_SECS)
        + shared::domain::delivery::AFTER_DELIVERY_MARGIN.as_secs();
    assert!(budget < inbound::QUEUE_TIMEOUT.as_secs());
}

#[test]
fn the_unowned_recipients_alarm_counts_the_inbound_functions_log_line() {
    let t = template();
    let pattern = str_at(
        &t,
        &[
            "Resources",
            "UnownedRecipientsMetric",
            "Properties",
            "FilterPattern",
        ],
    )
    .expect("UnownedRecipientsMetric's filter pattern");
    assert_eq!(
        pattern,
        format!("{{ $.fields.message = \"{}\" }}", inbound::NO_OWNER)
    );
    assert_eq!(
        str_at(
            &t,
            &[
                "Resources",
                "UnownedRecipientsAlarm",
                "Properties",
                "MetricName"
            ]
        ),
        Some("UnownedRecipients")
    );
}
