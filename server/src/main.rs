//! The `gridsync` binary: see [`gridsync_server::cli`].

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
