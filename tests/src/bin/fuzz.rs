//! The fuzzer: runs the targets of `tests::fuzz` (`decode`, `push`,
//! `records`) for a time budget and reports executions and crashes.
//!
//! `cargo run -p tests --bin fuzz -- [--secs N] [--seed S] [--targets decode,push,records]
//!  [--crash-dir DIR]`; `GRIDSYNC_FUZZ_SECS` and `GRIDSYNC_FUZZ_SEED` set the
//! defaults (60 s, a seed from the clock, printed). The budget is shared
//! equally between the targets. `--input TARGET:SEED:ITERATION` regenerates
//! one input and runs it alone (for a crash report).
//!
//! Each target runs in a child process, so that a crash that takes the
//! process down (a stack overflow, an abort) is reported like any other:
//! the child prints the number of each input before running it, and the
//! parent starts a new child after the one that died. Every distinct crash
//! is written to the crash directory with its input (base64), ready to
//! become a test in `tests/fuzz_regressions.rs`. Exits non-zero when a
//! crash was found.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use base64::Engine;
use tests::fuzz::{self, Crash};

struct Args {
    secs: f64,
    seed: u64,
    targets: Vec<String>,
    crash_dir: String,
    child: bool,
    from: u64,
    input: Option<String>,
}

fn args() -> Args {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut a = Args {
        secs: env("GRIDSYNC_FUZZ_SECS").map_or(60.0, |s| s.parse().expect("GRIDSYNC_FUZZ_SECS")),
        seed: env("GRIDSYNC_FUZZ_SEED").map_or_else(
            || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            },
            |s| s.parse().expect("GRIDSYNC_FUZZ_SEED"),
        ),
        targets: fuzz::TARGETS.map(String::from).to_vec(),
        crash_dir: "fuzz-crashes".into(),
        child: false,
        from: 0,
        input: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--child" {
            a.child = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--secs" => a.secs = value.parse().expect("--secs N"),
            "--seed" => a.seed = value.parse().expect("--seed S"),
            "--targets" => a.targets = value.split(',').map(str::to_owned).collect(),
            "--crash-dir" => a.crash_dir = value,
            "--from" => a.from = value.parse().expect("--from N"),
            "--input" => a.input = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    for t in &a.targets {
        assert!(fuzz::TARGETS.contains(&t.as_str()), "unknown target {t}");
    }
    a
}

fn main() -> std::process::ExitCode {
    let args = args();
    if let Some(input) = &args.input {
        return replay_one(input);
    }
    if args.child {
        fuzz::install_panic_hook();
        child(&args);
        return std::process::ExitCode::SUCCESS;
    }
    parent(&args)
}

/// What one target did.
#[derive(Default)]
struct Tally {
    execs: u64,
    /// Distinct crashes by signature: (first crash, times seen).
    crashes: BTreeMap<String, (Crash, u64)>,
}

fn parent(args: &Args) -> std::process::ExitCode {
    println!(
        "fuzz: seed {} (GRIDSYNC_FUZZ_SEED={} reproduces this run), {:.0} s over {}",
        args.seed,
        args.seed,
        args.secs,
        args.targets.join(", ")
    );
    let exe = std::env::current_exe().expect("own path");
    let per_target = args.secs / args.targets.len() as f64;
    let mut tallies = BTreeMap::new();
    for target in &args.targets {
        let tally: &mut Tally = tallies.entry(target.clone()).or_default();
        let deadline = Instant::now() + Duration::from_secs_f64(per_target);
        let mut from = 0u64;
        while Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs_f64();
            let mut child = std::process::Command::new(&exe)
                .args(["--child", "--targets", target])
                .args(["--seed", &args.seed.to_string()])
                .args(["--from", &from.to_string()])
                .args(["--secs", &format!("{left:.3}")])
                .env_remove("GRIDSYNC_FUZZ_SECS")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start the fuzz child");
            let stderr = child.stderr.take().expect("stderr");
            let errors = std::thread::spawn(move || {
                let mut tail: Vec<String> = Vec::new();
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    tail.push(line);
                    if tail.len() > 20 {
                        tail.remove(0);
                    }
                }
                tail
            });
            let mut last = None;
            let mut done = false;
            let stdout = child.stdout.take().expect("stdout");
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(i) = line.strip_prefix("at ") {
                    last = i.parse::<u64>().ok();
                } else if let Some(json) = line.strip_prefix("crash ") {
                    let (crash, input, doc): (Crash, String, Option<String>) =
                        serde_json::from_str(json).expect("crash line");
                    record(args, tally, crash, Some((input, doc)));
                } else if let Some(n) = line.strip_prefix("done ") {
                    tally.execs += n.parse::<u64>().unwrap_or(0);
                    done = true;
                }
            }
            let status = child.wait().expect("wait for the child");
            let tail = errors.join().unwrap_or_default();
            if done && status.success() {
                break;
            }
            // The child died in the middle of input `last`.
            let i = last.unwrap_or(from);
            tally.execs += i + 1 - from;
            let why = tail
                .iter()
                .rev()
                .find(|l| l.contains("overflow") || l.contains("panicked") || l.contains("memory"))
                .or(tail.last())
                .cloned()
                .unwrap_or_default();
            let crash = Crash {
                target: target.clone(),
                seed: args.seed,
                iteration: i,
                symptom: format!("the process died ({status}): {why}"),
            };
            record(args, tally, crash, None);
            from = i + 1;
        }
        print_tally(target, tally);
    }
    println!("== fuzz summary (seed {})", args.seed);
    let mut found = 0;
    for (target, tally) in &tallies {
        let hits: u64 = tally.crashes.values().map(|(_, n)| n).sum();
        println!(
            "{target}: {} executions, {} distinct crashes ({hits} crashing inputs)",
            tally.execs,
            tally.crashes.len()
        );
        found += tally.crashes.len();
    }
    if found == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        println!("crashing inputs are in {}/", args.crash_dir);
        std::process::ExitCode::FAILURE
    }
}

fn print_tally(target: &str, tally: &Tally) {
    println!("{target}: {} executions", tally.execs);
    for (crash, n) in tally.crashes.values() {
        println!(
            "  crash ×{n}: {} (input {}:{}:{})",
            crash.symptom, crash.target, crash.seed, crash.iteration
        );
    }
}

fn record(args: &Args, tally: &mut Tally, crash: Crash, input: Option<(String, Option<String>)>) {
    let signature = fuzz::signature(&crash.symptom);
    if let Some((_, n)) = tally.crashes.get_mut(&signature) {
        *n += 1;
        return;
    }
    eprintln!("fuzz: new crash in {}: {}", crash.target, crash.symptom);
    let (input, doc) = input.unwrap_or_else(|| {
        // Regenerated from its seed: the process that ran it is gone.
        let (bytes, doc) = generate(&crash.target, crash.seed, crash.iteration);
        (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            doc.map(|d| d.to_string()),
        )
    });
    let _ = std::fs::create_dir_all(&args.crash_dir);
    let path = format!(
        "{}/{}-{}-{}.json",
        args.crash_dir, crash.target, crash.seed, crash.iteration
    );
    let json = serde_json::json!({
        "target": crash.target, "seed": crash.seed, "iteration": crash.iteration,
        "symptom": crash.symptom, "doc": doc, "input": input,
    });
    let _ = std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap_or_default());
    tally.crashes.insert(signature, (crash, 1));
}

/// Input `iteration` of `target` for `seed`, and (for `push`) the document
/// it pushes to.
fn generate(target: &str, seed: u64, iteration: u64) -> (Vec<u8>, Option<sync_core::RecordId>) {
    let mut rng = fuzz::rng_for(target, seed, iteration);
    match target {
        "decode" => (fuzz::gen_decode(&mut rng), None),
        "records" => (fuzz::gen_records(&mut rng), None),
        _ => {
            thread_local! {
                static BASE: sync_core::Replica<sync_core::MemoryStore> = fuzz::base_replica();
            }
            let (body, id) = BASE.with(|base| fuzz::gen_push(&mut rng, base));
            (body, Some(id))
        }
    }
}

fn child(args: &Args) {
    let target = args.targets[0].as_str();
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut fixture = (target == "push").then(|| runtime.block_on(fuzz::Fixture::start()));
    let mut out = std::io::stdout().lock();
    let mut i = args.from;
    let mut execs = 0u64;
    while Instant::now() < deadline {
        writeln!(out, "at {i}").expect("stdout");
        out.flush().expect("stdout");
        let (input, id) = generate(target, args.seed, i);
        let result = match target {
            "decode" => fuzz::run_decode(&input),
            "records" => fuzz::run_records(&input),
            _ => {
                let f = fixture.as_ref().expect("fixture");
                let before = peak_rss_mib();
                let result = runtime.block_on(f.push(input.clone(), id.as_ref()));
                let grew = peak_rss_mib() - before;
                match result {
                    Ok(()) if grew > 256.0 => Err(format!(
                        "memory: the server's peak grew by {grew:.0} MiB during one request of {} KiB",
                        input.len() / 1024
                    )),
                    other => other,
                }
            }
        };
        execs += 1;
        if let Err(symptom) = result {
            let crash = Crash {
                target: target.into(),
                seed: args.seed,
                iteration: i,
                symptom,
            };
            let input64 = base64::engine::general_purpose::STANDARD.encode(&input);
            let doc = id.as_ref().map(|d| d.to_string());
            let line = serde_json::to_string(&(&crash, input64, doc)).expect("json");
            writeln!(out, "crash {line}").expect("stdout");
            if fixture.is_some() {
                // A fresh server: what this input stored must not make
                // every later input crash the same way.
                fixture = Some(runtime.block_on(fuzz::Fixture::start()));
            }
        }
        i += 1;
    }
    writeln!(out, "done {execs}").expect("stdout");
}

/// `--input TARGET:SEED:ITERATION`: runs one input on its own (for `push`,
/// against a fresh server) and prints what happened.
fn replay_one(spec: &str) -> std::process::ExitCode {
    let parts: Vec<&str> = spec.split(':').collect();
    let [target, seed, iteration] = parts[..] else {
        panic!("--input TARGET:SEED:ITERATION");
    };
    let (input, id) = generate(
        target,
        seed.parse().expect("seed"),
        iteration.parse().expect("iteration"),
    );
    println!(
        "input {spec}: {} bytes: {}",
        input.len(),
        base64::engine::general_purpose::STANDARD.encode(&input)
    );
    let result = match target {
        "decode" => fuzz::run_decode(&input),
        "records" => fuzz::run_records(&input),
        _ => {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                let f = fuzz::Fixture::start().await;
                f.push(input, id.as_ref()).await
            })
        }
    };
    match result {
        Ok(()) => {
            println!("ok");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("crash: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
