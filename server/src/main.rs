//! The `gridsync` binary: see [`gridsync_server::cli`].

#![forbid(unsafe_code)]

/// mimalloc rather than the system's allocator: a sync round allocates and
/// frees many short-lived buffers of every size (documents, rows, answers
/// of hundreds of kilobytes), which glibc's allocator serves with fresh,
/// zeroed pages from the kernel again and again (`BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    gridsync_server::cli::main().await
}
