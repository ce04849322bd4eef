//! The `gridsync` command line: `serve`, and `admin` tasks that act on the
//! database directly.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::auth::hash_password;
use crate::config::{Config, LogFormat};
use crate::error::AppError;
use crate::storage::UserRow;
use crate::{AppState, demo, now_ms, random_hex};

/// gridsync: offline-first sync for grid workers' household and case records.
#[derive(Debug, Parser)]
#[command(name = "gridsync", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Seed a demo county and demo users into an empty database.
        #[arg(long)]
        demo: bool,
    },
    /// Administrative tasks on the database.
    Admin {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// A TOML configuration file (also GRIDSYNC_CONFIG).
    #[arg(long, env = "GRIDSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database (default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL (default sqlite://<data-dir>/gridsync.db).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AdminTask {
    /// Create a user; the password is read from standard input.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Name shown to people (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Role, e.g. grid_worker, community_staff, admin.
        #[arg(long)]
        role: String,
        /// The org unit the user works in, e.g. demo.t1.c1.g1.
        #[arg(long)]
        org_unit: String,
    },
}

impl Common {
    fn config(&self, listen: Option<SocketAddr>) -> Result<Config, Box<dyn std::error::Error>> {
        let mut flags = toml::Table::new();
        if let Some(dir) = &self.data_dir {
            flags.insert("data_dir".into(), dir.display().to_string().into());
        }
        if let Some(url) = &self.database_url {
            flags.insert("database_url".into(), url.clone().into());
        }
        if let Some(listen) = listen {
            flags.insert("listen".into(), listen.to_string().into());
        }
        Ok(Config::load(
            self.config.as_deref(),
            std::env::vars(),
            flags,
        )?)
    }
}

/// Parses the command line and runs it.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Serve {
            common,
            listen,
            demo,
        } => {
            let config = common.config(listen)?;
            init_tracing(config.log_format);
            tracing::info!(?config, "starting");
            let listener = TcpListener::bind(config.listen).await?;
            let state = AppState::open(config).await?;
            if demo && demo::seed(&state).await? {
                tracing::info!(
                    password = demo::DEMO_PASSWORD,
                    "demo users created: admin, worker1, worker2, mediator1, staff1, supervisor1"
                );
            }
            tracing::info!(addr = %listener.local_addr()?, "listening");
            crate::serve(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Admin { common, task } => {
            let config = common.config(None)?;
            init_tracing(config.log_format);
            let state = AppState::open(config).await?;
            match task {
                AdminTask::CreateUser {
                    username,
                    display_name,
                    role,
                    org_unit,
                } => {
                    let mut password = String::new();
                    std::io::stdin().read_to_string(&mut password)?;
                    let password = password.trim_end_matches(['\r', '\n']).to_owned();
                    if password.chars().count() < 8 {
                        return Err("the password must have at least 8 characters".into());
                    }
                    let user = UserRow {
                        id: format!("usr_{}", random_hex(12)),
                        display_name: display_name.unwrap_or_else(|| username.clone()),
                        username,
                        password_hash: hash_password(password).await?,
                        role,
                        org_unit,
                        created_at: now_ms(),
                    };
                    state
                        .storage
                        .insert_user(&user)
                        .await
                        .map_err(AppError::from)?;
                    println!("{}", user.id);
                }
            }
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
