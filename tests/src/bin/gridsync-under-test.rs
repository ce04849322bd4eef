//! The `gridsync` binary, built inside the test package so that tests can
//! run it as a separate process (and kill it) by path.

#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match gridsync_server::cli::run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsync: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
