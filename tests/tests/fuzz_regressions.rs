//! Every crash the fuzzer (`src/bin/fuzz.rs`) found, as a fixed input
//! checked in under `tests/fuzz-regressions/`: each must now run clean (no
//! panic, no `5xx`, no closed connection, no parser internals in an error
//! message; for `push` inputs, against a fresh server with the fuzzer's
//! users and records).

use std::path::PathBuf;

async fn clean(name: &str) {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("fuzz-regressions")
        .join(name);
    tests::fuzz::install_panic_hook();
    if let Err(crash) = tests::fuzz::replay_file(&path).await {
        panic!("{name}: {crash}");
    }
}

/// A change stamped with an extreme time (Automerge keeps it in seconds):
/// the record's history multiplied it by 1000 and panicked, closing the
/// connection with no answer.
#[tokio::test]
async fn history_of_a_change_with_an_extreme_time() {
    clean("history-change-time-overflow.json").await;
}

/// Malformed sync messages: the decoder's error named the CBOR parser's
/// internals (`Syntax(…)`, `Semantic(None, …)`, `Io(Error { kind:
/// UnexpectedEof … })`, `RecursionLimitExceeded`).
#[test]
fn decode_errors_without_parser_internals() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for name in [
        "decode-cbor-syntax.json",
        "decode-cbor-semantic.json",
        "decode-cbor-io.json",
        "decode-cbor-recursion.json",
    ] {
        runtime.block_on(clean(name));
    }
}

/// The same through the server: `400 bad_sync_message` quoted
/// `Semantic(None, …)`.
#[tokio::test]
async fn sync_400_without_parser_internals() {
    clean("push-http-400-semantic.json").await;
}

/// A visit pushed with an extreme `visited_at`: afterwards the area's
/// daily log answered 500.
#[tokio::test]
async fn extreme_visit_time_and_the_daily_log() {
    clean("push-visit-daily-log-500.json").await;
}

/// A record document nested thousands of levels deep: the projection's
/// conflict walk recursed until the stack overflowed and the process
/// aborted.
#[tokio::test]
async fn deeply_nested_record() {
    clean("records-deep-nesting.json").await;
}
