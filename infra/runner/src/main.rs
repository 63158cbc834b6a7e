//! `local-runner`: the functions on a workstation. See `infra/local/run.sh` for the whole stack.

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use local_runner::{http, receiving, Runner};
use monitor::{Deps, RunSummary, Settings};
use shared::adapters::clock::{SystemClock, VirtualClock};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::jwks::LocalIssuer;
use shared::domain::identity::IdentitySettings;
use shared::ports::clock::Clock;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    about = "Runs the email continuity functions locally (endpoints from AWS_ENDPOINT_URL*, table from TABLE_NAME)"
)]
struct Cli {
    /// Also append the log (without colours) to this file; `run.sh` keeps it beside the other
    /// logs of the run state directory.
    #[arg(long, global = true)]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the schedules, the receiving SMTP stand-in and the control API until interrupted.
    Serve {
        /// Control API address (loopback only).
        #[arg(long, default_value = "127.0.0.1:8787")]
        http: String,
        /// Receiving SMTP stand-in address (loopback only).
        #[arg(long, default_value = "127.0.0.1:2525")]
        receiving: String,
        /// The HTTP API (portal, administration API, Online Inbox, sign-in), as API Gateway
        /// serves it in AWS (loopback only).
        #[arg(long, default_value = "127.0.0.1:8080")]
        api: String,
        /// Run on a virtual clock starting here (RFC 3339); advance it with POST /clock/advance.
        #[arg(long)]
        virtual_start: Option<DateTime<Utc>>,
        /// Virtual clock: real milliseconds to wait after each tick for sent probes to arrive.
        #[arg(long, default_value_t = 3000)]
        settle_ms: u64,
        /// Create the table and the mail bucket first if they do not exist, and verify the
        /// bounce sender (local stand-ins only).
        #[arg(long)]
        create_table: bool,
        /// Organisation configuration files (JSON) to apply at start.
        #[arg(long)]
        config: Vec<PathBuf>,
    },
    /// Runs a scheduled function once and prints its summary.
    Once {
        /// `monitor` or `queue`.
        function: String,
        /// The schedule time to run as (default: the start of the current window).
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
    /// Creates the table (index and TTL as in infra/template.yaml).
    CreateTable,
    /// Validates an organisation configuration file and stores what differs (see also the
    /// `continuity-config plan|apply` command).
    ApplyConfig { file: PathBuf },
    /// Stores a secret string in Secrets Manager (creates or updates it).
    PutSecret { name: String, value: String },
    /// Local stand-ins only: creates what the template creates in AWS (the event bus, the
    /// link-signing key set, the verified sender identity), if missing.
    PrepareLocalAws,
}

fn loopback(addr: &str) -> Result<std::net::SocketAddr, String> {
    let a: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "{addr}: the local runner listens on loopback addresses only"
        ));
    }
    Ok(a)
}

async fn apply_config(
    sdk: &aws_config::SdkConfig,
    store: &DynamoStore,
    file: &PathBuf,
) -> Result<(), String> {
    let ports = local_runner::config_as_code::DomainPorts::from_env(sdk, store.clone())?;
    for plan in local_runner::config_as_code::apply(
        store,
        std::slice::from_ref(file),
        Utc::now(),
        &ports.domains(),
    )
    .await?
    {
        print!("{}", shared::domain::config_as_code::render(&plan));
    }
    Ok(())
}

async fn ensure_table(store: &DynamoStore) -> Result<(), String> {
    let exists = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .is_ok();
    if !exists {
        DynamoStore::create_table(store.client(), store.table())
            .await
            .map_err(|e| e.to_string())?;
        println!("created table {}", store.table());
    }
    Ok(())
}

/// Logs to stderr, coloured only when it is a terminal (escape codes would litter files and
/// pipes), and, with `--log-file`, to that file as plain text.
fn init_logging(log_file: Option<&PathBuf>) -> Result<(), String> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let file = match log_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("log file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(file.map(|f| {
            tracing_subscriber::fmt::layer()
                .with_writer(Arc::new(f))
                .with_ansi(false)
        }))
        .init();
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match init_logging(cli.log_file.as_ref()) {
        Ok(()) => run(cli).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("local-runner: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let settings = Settings::from_env()?;
    let sdk = shared::adapters::aws::sdk_config().await;
    match cli.command {
        Command::CreateTable => {
            let store = DynamoStore::from_sdk(&sdk, &settings.table);
            ensure_table(&store).await
        }
        Command::ApplyConfig { file } => {
            let store = DynamoStore::from_sdk(&sdk, &settings.table);
            apply_config(&sdk, &store, &file).await
        }
        Command::PutSecret { name, value } => {
            let client = aws_sdk_secretsmanager::Client::new(&sdk);
            let created = client
                .create_secret()
                .name(&name)
                .secret_string(&value)
                .send()
                .await;
            if created.is_err() {
                client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(&value)
                    .send()
                    .await
                    .map_err(|e| format!("secret {name}: {e}"))?;
            }
            println!("stored secret {name}");
            Ok(())
        }
        Command::PrepareLocalAws => {
            let events = aws_sdk_eventbridge::Client::new(&sdk);
            if events
                .describe_event_bus()
                .name(&settings.channels.event_bus)
                .send()
                .await
                .is_err()
            {
                events
                    .create_event_bus()
                    .name(&settings.channels.event_bus)
                    .send()
                    .await
                    .map_err(|e| format!("event bus: {e}"))?;
            }
            let domain = settings
                .channels
                .sender
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or_default();
            aws_sdk_ses::Client::new(&sdk)
                .verify_domain_identity()
                .domain(domain)
                .send()
                .await
                .map_err(|e| format!("SES identity {domain}: {e}"))?;
            let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
            if secrets
                .describe_secret()
                .secret_id(&settings.link_keys_secret)
                .send()
                .await
                .is_err()
            {
                let json = format!(
                    r#"{{"current":"k1","keys":{{"k1":{{"secret":"{}"}}}}}}"#,
                    shared::domain::links::generate_key_secret()
                );
                secrets
                    .create_secret()
                    .name(&settings.link_keys_secret)
                    .secret_string(json)
                    .send()
                    .await
                    .map_err(|e| format!("link keys: {e}"))?;
            }
            println!(
                "prepared bus {}, sender domain {domain}, link keys {}",
                settings.channels.event_bus, settings.link_keys_secret
            );
            Ok(())
        }
        Command::Once { function, at } => {
            let json = match function.as_str() {
                "monitor" => {
                    let deps = Arc::new(Deps::new(&settings, &sdk, Arc::new(SystemClock))?);
                    let runner = Runner::new(deps, None, Duration::ZERO);
                    let report = runner.run_monitor(at).await.map_err(|e| e.to_string())?;
                    serde_json::to_string_pretty(&RunSummary::from(report))
                }
                "queue" => {
                    let inbound_settings = inbound::Settings::from_env()?;
                    let deps = inbound::Deps::start(&inbound_settings, &sdk, Arc::new(SystemClock))
                        .await?;
                    let report = inbound::handle_queue(
                        &deps,
                        inbound::ScheduledEvent { time: at },
                        inbound::invocation_deadline(inbound::QUEUE_TIMEOUT),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    serde_json::to_string_pretty(&report)
                }
                other => {
                    return Err(format!(
                        "unknown scheduled function {other:?}: `monitor` or `queue`"
                    ))
                }
            };
            println!("{}", json.map_err(|e| e.to_string())?);
            Ok(())
        }
        Command::Serve {
            http: http_addr,
            receiving: recv_addr,
            api: api_addr,
            virtual_start,
            settle_ms,
            create_table,
            config,
        } => {
            let (http_addr, recv_addr, api_addr) = (
                loopback(&http_addr)?,
                loopback(&recv_addr)?,
                loopback(&api_addr)?,
            );
            let virtual_clock = virtual_start.map(VirtualClock::new);
            let clock: Arc<dyn Clock> = match &virtual_clock {
                Some(v) => Arc::new(v.clone()),
                None => Arc::new(SystemClock),
            };
            let deps = Arc::new(Deps::new(&settings, &sdk, clock.clone())?);
            let inbound_settings = inbound::Settings::from_env()?;
            let mail =
                Arc::new(inbound::Deps::start(&inbound_settings, &sdk, clock.clone()).await?);
            if create_table {
                ensure_table(&deps.store).await?;
                mail.raw.ensure_bucket().await.map_err(|e| e.to_string())?;
                mail.bouncer
                    .verify_sender(&inbound_settings.bounce_sender)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            for file in &config {
                apply_config(&sdk, &deps.store, file).await?;
            }
            let runner = Arc::new(
                Runner::new(
                    deps.clone(),
                    virtual_clock.clone(),
                    Duration::from_millis(settle_ms),
                )
                .with_inbound(mail.clone()),
            );

            let recv = tokio::net::TcpListener::bind(recv_addr)
                .await
                .map_err(|e| format!("receiving {recv_addr}: {e}"))?;
            let judge = Arc::new(local_runner::verdicts::Judge::from_env(
                "receiving.localhost",
            )?);
            tokio::spawn(receiving::serve(recv, mail, clock.clone(), judge));
            // The HTTP API, with the runner's own identity provider (demo users sign in on its
            // form; `GET /dev/token` on the control API issues bearer tokens).
            let issuer = Arc::new(LocalIssuer::generate(IdentitySettings::cognito(
                format!("http://{http_addr}/local-idp"),
                "continuity-local",
            ))?);
            let api_settings = api::Settings {
                table: settings.table.clone(),
                portal_base_url: settings.portal_base_url.clone(),
                link_keys_secret: settings.link_keys_secret.clone(),
                channels: settings.channels.clone(),
                mail_bucket: inbound_settings.bucket.clone(),
                mail_prefix: inbound_settings.prefix.clone(),
                identity: issuer.settings.clone(),
                jwks_url: format!("http://{http_addr}/local-idp/.well-known/jwks.json"),
                hosted_sign_in: None,
                secure_cookies: false,
                secret_cache: settings.secret_cache,
                sign_in_floor: Duration::from_millis(300),
                session_recheck: chrono::Duration::minutes(5),
                receiving_domain: local_runner::config_as_code::DomainPorts::from_env(
                    &sdk,
                    deps.store.clone(),
                )?
                .receiving_domain,
                dns_servers: shared::adapters::dns::parse_servers(
                    &std::env::var("DNS_SERVERS").unwrap_or_default(),
                )?,
                probe_secret_prefix: settings.probe_secret_prefix.clone(),
                oauth: settings.oauth.clone(),
                smtp_ca_bundle: settings.ca_bundle.clone(),
                source_limits: api::web::limits::settings_from_env()?,
                downloads: api::download_settings_from_env()?,
                uploads: api::upload_limits_from_env()?,
            };
            let mut services = api::Services::with_verifier(
                api_settings,
                &sdk,
                clock.clone(),
                shared::app::auth::JwtVerifier::with_key_set(
                    issuer.settings.clone(),
                    issuer.jwks(),
                ),
            );
            services.local_issuer = Some(issuer.clone());
            // Served as API Gateway and Lambda serve it: their limits fail here as there.
            let api_app =
                local_runner::gateway::aws_shaped(api::router(api::AppState(Arc::new(services))));
            let api_listener = tokio::net::TcpListener::bind(api_addr)
                .await
                .map_err(|e| format!("HTTP API {api_addr}: {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(
                    api_listener,
                    api_app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .await
                {
                    tracing::error!(error = %e, "HTTP API stopped");
                }
            });
            let listener = tokio::net::TcpListener::bind(http_addr)
                .await
                .map_err(|e| format!("control API {http_addr}: {e}"))?;
            if virtual_clock.is_none() {
                tokio::spawn(runner.clone().run_schedule());
                tokio::spawn(runner.clone().run_queue_schedule());
            }
            println!(
                "local-runner: HTTP API http://{api_addr}/  control API http://{http_addr}/  receiving SMTP {recv_addr}  clock {}",
                if virtual_clock.is_some() { "virtual (POST /clock/advance?minutes=N)" } else { "machine (monitor every 2 minutes, queue every minute)" }
            );
            axum::serve(
                listener,
                http::router(runner).merge(http::identity_router(issuer, clock)),
            )
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
        }
    }
}
