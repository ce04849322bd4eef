//! The `gridsync` command line: `serve`, `admin` tasks that act on the
//! database directly, and `openapi`, which prints the API description.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::{Config, LogFormat};
use crate::demo;
use crate::http::AppState;
use crate::http::admin::{self, Actor, DeviceView, NewOrgUnit, NewUser, RoleAssignment};
use crate::http::error::AppError;

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
    /// Print the OpenAPI 3.1 description of the HTTP API (YAML), as
    /// generated from the code: what `api-spec/openapi.yaml` holds.
    Openapi,
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
    /// Create an org unit.
    CreateOrgUnit {
        /// Id: a-z, 0-9, '.', '-'.
        #[arg(long)]
        id: String,
        /// Parent org unit (none for a root).
        #[arg(long)]
        parent: Option<String>,
        /// county, township, community or grid.
        #[arg(long)]
        kind: String,
        /// Name shown to people.
        #[arg(long)]
        name: String,
    },
    /// Move an org unit, with everything below it, under another parent.
    MoveOrgUnit {
        /// The unit to move.
        #[arg(long)]
        id: String,
        /// Its new parent.
        #[arg(long)]
        parent: String,
    },
    /// Create a user; the password is read from standard input.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Name shown to people (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// grid_worker, mediator, community_staff, centre_staff, department,
        /// supervisor or admin.
        #[arg(long)]
        role: String,
        /// An org unit the user is bound to (repeat for several).
        #[arg(long = "org-unit")]
        org_units: Vec<String>,
    },
    /// Replace a user's role and org units.
    SetRole {
        /// The user's login name.
        #[arg(long)]
        username: String,
        /// The new role.
        #[arg(long)]
        role: String,
        /// An org unit (repeat for several).
        #[arg(long = "org-unit")]
        org_units: Vec<String>,
    },
    /// Set a user's password, read from standard input.
    ResetPassword {
        /// The user's login name.
        #[arg(long)]
        username: String,
    },
    /// List devices, of one user or of everyone.
    ListDevices {
        /// Only this user's devices.
        #[arg(long)]
        username: Option<String>,
    },
    /// Revoke a device: its next request is refused.
    RevokeDevice {
        /// Device id.
        #[arg(long)]
        id: String,
    },
    /// Add a new token-signing key; tokens signed with older keys stay valid.
    RotateKey,
    /// Recompute the query projections from the stored documents (after
    /// changing case deadlines, say).
    Reindex,
    /// Delete changes older than the retention window from the change log
    /// (their content stays in the documents' snapshots), and attached
    /// files no record has named for `attachment_retention_days`.
    Compact {
        /// Keep this many days instead of `change_retention_days`; 0
        /// compacts everything received until now.
        #[arg(long)]
        retention_days: Option<u32>,
    },
    /// List quarantined changes waiting for a decision, a page at a time:
    /// `{"items": [...], "next_cursor": "..."}`, oldest first.
    ListQuarantine {
        /// Entries per page, 1 to 1000.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// The `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Merge a quarantined change into the shared history.
    Approve {
        /// Quarantine entry id.
        #[arg(long)]
        id: String,
    },
    /// Drop a quarantined change for good.
    Discard {
        /// Quarantine entry id.
        #[arg(long)]
        id: String,
    },
    /// Import a household ledger (XLSX or UTF-8 CSV, the columns of
    /// `GET /v1/admin/import/households/template`) into a grid; prints the
    /// report as JSON. Only checks and reports unless `--apply` is given.
    Import {
        /// The grid rows naming no grid go to.
        #[arg(long = "org-unit")]
        org_unit: String,
        /// The admin the imported records are written in the name of; the
        /// grids must be in their area.
        #[arg(long = "as")]
        admin: String,
        /// Import; without it, a dry run.
        #[arg(long)]
        apply: bool,
        /// The ledger file.
        file: PathBuf,
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

/// What a `gridsync` binary's `main` does: run, and turn an error into a
/// message and a failing exit code.
pub async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsync: {e}");
            std::process::ExitCode::FAILURE
        }
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
            crate::http::serve(listener, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Openapi => print!("{}", crate::http::openapi::yaml()),
        Command::Admin { common, task } => {
            let config = common.config(None)?;
            init_tracing(config.log_format);
            let state = AppState::open(config).await?;
            admin_task(&state, task).await?;
        }
    }
    Ok(())
}

fn read_password() -> Result<String, Box<dyn std::error::Error>> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

async fn user_id(state: &AppState, username: &str) -> Result<String, AppError> {
    Ok(state
        .engine
        .storage
        .user_by_username(username)
        .await?
        .ok_or(AppError::Missing("user"))?
        .id)
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

async fn admin_task(state: &AppState, task: AdminTask) -> Result<(), Box<dyn std::error::Error>> {
    let actor = Actor::cli();
    match task {
        AdminTask::CreateOrgUnit {
            id,
            parent,
            kind,
            name,
        } => {
            let unit = NewOrgUnit {
                id,
                parent,
                kind,
                name,
            };
            print_json(&admin::create_org_unit(state, &actor, unit).await?);
        }
        AdminTask::MoveOrgUnit { id, parent } => {
            print_json(&admin::move_org_unit(state, &actor, &id, &parent).await?);
        }
        AdminTask::CreateUser {
            username,
            display_name,
            role,
            org_units,
        } => {
            let user = NewUser {
                username,
                display_name,
                password: read_password()?,
                role,
                org_units,
            };
            print_json(&admin::create_user(state, &actor, user).await?);
        }
        AdminTask::SetRole {
            username,
            role,
            org_units,
        } => {
            let id = user_id(state, &username).await?;
            admin::set_role(state, &actor, &id, RoleAssignment { role, org_units }).await?;
        }
        AdminTask::ResetPassword { username } => {
            let id = user_id(state, &username).await?;
            admin::reset_password(state, &actor, &id, read_password()?).await?;
        }
        AdminTask::ListDevices { username } => {
            let user = match username {
                Some(name) => Some(user_id(state, &name).await?),
                None => None,
            };
            let devices = state.engine.storage.devices(user.as_deref()).await?;
            let views: Vec<DeviceView> = devices.into_iter().map(DeviceView::from).collect();
            print_json(&views);
        }
        AdminTask::RevokeDevice { id } => {
            let device: DeviceView = admin::revoke_device(state, &actor, &id).await?.into();
            print_json(&device);
        }
        AdminTask::Reindex => {
            let n = crate::engine::reindex::reindex(
                &*state.engine.storage,
                &state.engine.config.deadlines,
                progress_bar("reindexing"),
            )
            .await?;
            println!("{n} documents reindexed");
        }
        AdminTask::Compact { retention_days } => {
            let days = retention_days.unwrap_or(state.engine.config.change_retention_days);
            let cutoff = crate::engine::compaction::cutoff(crate::domain::now_ms(), days);
            let report = crate::engine::compaction::compact(
                state.engine.storage.as_ref(),
                cutoff,
                crate::engine::compaction::BATCH,
            )
            .await?;
            let swept = state
                .engine
                .files
                .sweep(
                    crate::domain::now_ms(),
                    state.engine.config.attachment_retention_days,
                )
                .await?;
            let mut shown = serde_json::to_value(report).map_err(AppError::internal)?;
            shown["attachments"] = serde_json::to_value(swept).map_err(AppError::internal)?;
            print_json(&shown);
        }
        AdminTask::RotateKey => {
            let kid = crate::http::auth::rotate_key(state.engine.storage.as_ref()).await?;
            let entry = crate::storage::AuditRow {
                at: crate::domain::now_ms(),
                user_id: actor.user_id.clone(),
                device_id: None,
                action: "rotate_key".into(),
                target: kid.clone(),
                detail: String::new(),
            };
            state.engine.storage.audit(&entry).await?;
            println!("{kid}");
        }
        AdminTask::ListQuarantine { limit, cursor } => {
            let page =
                admin::quarantine_page(state, &actor, "pending", Some(limit), cursor.as_deref())
                    .await?;
            print_json(&page);
        }
        AdminTask::Approve { id } => {
            print_json(&admin::decide(&state.engine, &actor, &id, true).await?)
        }
        AdminTask::Discard { id } => {
            print_json(&admin::decide(&state.engine, &actor, &id, false).await?)
        }
        AdminTask::Import {
            org_unit,
            admin: username,
            apply,
            file,
        } => {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let importer = crate::http::import::Importer::command_line(state, &username).await?;
            let mut bar = progress_bar("importing households");
            let progress = |done: usize, total: usize| bar(done as u64, total as u64);
            let file = (org_unit.as_str(), bytes.as_slice());
            let report =
                admin::import_households(state, &actor, &importer, file, !apply, progress).await?;
            print_json(&report);
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

/// A progress bar on standard error, `label [#####.....] done/total`, as
/// `progress(done, total)` is called; finished when `done` reaches `total`.
pub fn progress_bar(label: &'static str) -> impl FnMut(u64, u64) {
    let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {eta}")
        .expect("a valid template")
        .progress_chars("##.");
    let bar = indicatif::ProgressBar::new(0)
        .with_style(style)
        .with_message(label);
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    }
}
