//! `pbx365`: the PBX directory and presence server and its admin commands (SPEC §8).

mod commands;
mod config;
mod credentials_cmd;
mod demo;
mod m365;
mod mail_cmd;
mod sip_cmd;
mod sync_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// PBX directory and presence server with first-class Microsoft 365 integration.
#[derive(Debug, Parser)]
#[command(name = "pbx365", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./pbx365.toml if it exists). Settings can also come from
    /// PBX365_<KEY> environment variables, nested keys joined by `__` (PBX365_M365__CLIENT_ID).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log format on stderr; the level comes from RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PBX365_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: REST API, console, /healthz and /metrics.
    Serve,
    /// Extensions.
    #[command(subcommand)]
    Ext(ExtCommand),
    /// Console administrators and API tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Microsoft 365 connection: key pair + certificate, end-to-end check.
    #[command(subcommand)]
    M365(m365::M365Command),
    /// pbx365's own mail.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Phones: Kamailio, pbx365's SIP engine.
    #[command(subcommand)]
    Sip(SipCommand),
    /// One sync run with a progress bar, then its report.
    Sync {
        /// What to sync: users, contacts (PRO) or all; calendar prints the plan of calendar
        /// status (who switches when).
        #[arg(default_value = "users", value_parser = ["users", "contacts", "calendar", "all"])]
        kind: String,
        /// Full reconciliation even when changes could be read as a delta.
        #[arg(long)]
        full: bool,
        /// Compute the report without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as the JSON object of GET /api/v1/sync/runs/{id}.
        #[arg(long)]
        json: bool,
    },
    /// Start an embedded simulated Microsoft 365 tenant, connect to it, sync, and serve the console.
    Demo {
        /// Address of the console.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// Users in the sample organisation.
        #[arg(long, default_value_t = 50, value_name = "N")]
        users: usize,
        /// Data directory (default: a fresh temporary directory).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Send a test mail through the configured mail server and wait for the outcome.
    Test {
        /// Recipient address.
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum ExtCommand {
    /// List the extensions (the same fields as the REST API).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A new SIP secret for an enabled extension, printed alone on stdout (shown once; only
    /// its digest hashes are stored); the old secret stops working.
    SipSecret {
        /// The extension number.
        number: String,
    },
}

#[derive(Debug, Subcommand)]
enum SipCommand {
    /// Print the kamailio.cfg for this deployment (registrar, routing by profile, caller ID)
    /// for an admin who runs Kamailio as a service (sip.manage_kamailio = false).
    Config,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a console administrator (local password login).
    Create {
        /// Login name.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// API tokens for `Authorization: Bearer`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Change a console administrator's password: the new one is one line of standard input
    /// (asked twice without echo on a terminal), at least 12 characters; the admin's console
    /// sessions end.
    Password {
        /// Login name.
        #[arg(long, default_value = "admin")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token: it is printed alone on stdout, once; only its hash is stored.
    Create {
        /// A name that says who uses the token (shown in the audit log).
        #[arg(long, default_value = "api")]
        name: String,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "D")]
        expires_in_days: Option<u32>,
    },
    /// List the API tokens: name, created, last used, expiry (never the tokens themselves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every API token with this name; it stops working at once.
    Revoke {
        /// The token's name (as listed).
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    pbx365_web::server::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One sentence: the errors we raise already carry their context.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => commands::serve(settings).await,
        Command::Ext(ExtCommand::List { json }) => commands::ext_list(settings, json).await,
        Command::Ext(ExtCommand::SipSecret { number }) => {
            sip_cmd::sip_secret(settings, &number).await
        }
        Command::Sip(SipCommand::Config) => sip_cmd::config(settings).await,
        Command::Admin(AdminCommand::Create {
            name,
            password_stdin,
        }) => commands::admin_create(settings, &name, password_stdin).await,
        Command::Admin(AdminCommand::Token(TokenCommand::Create {
            name,
            expires_in_days,
        })) => commands::token_create(settings, &name, expires_in_days).await,
        Command::Admin(AdminCommand::Token(TokenCommand::List { json })) => {
            credentials_cmd::token_list(settings, json).await
        }
        Command::Admin(AdminCommand::Token(TokenCommand::Revoke { name })) => {
            credentials_cmd::token_revoke(settings, &name).await
        }
        Command::Admin(AdminCommand::Password { name }) => {
            credentials_cmd::password(settings, &name).await
        }
        Command::M365(command) => m365::run(settings, command).await,
        Command::Mail(MailCommand::Test { to }) => mail_cmd::test(settings, &to).await,
        Command::Sync {
            kind,
            full,
            dry_run,
            json,
        } => {
            sync_cmd::run(
                settings,
                sync_cmd::SyncArgs {
                    kind,
                    full,
                    dry_run,
                    json,
                },
            )
            .await
        }
        Command::Demo {
            listen,
            users,
            data_dir,
        } => {
            demo::run(
                settings,
                demo::DemoArgs {
                    listen,
                    users,
                    data_dir,
                },
            )
            .await
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
