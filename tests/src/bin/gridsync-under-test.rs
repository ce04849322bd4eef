//! The `gridsync` binary, built inside the test package so that tests can
//! run it as a separate process (and kill it) by path.

#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gridsync_server::cli::main().await
}
