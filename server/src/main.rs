//! The `gridsync` binary: see [`gridsync_server::cli`].

#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gridsync_server::cli::main().await
}
