//! The fuzz targets behind `src/bin/fuzz.rs` and `tests/fuzz_regressions.rs`:
//! input generators (deterministic from a seed) and the checks each input
//! must pass.
//!
//! - `decode`: sync messages, from arbitrary bytes and from valid messages
//!   mutated byte by byte, through `SyncRequest::decode` and
//!   `SyncResponse::decode`.
//! - `push`: a sync round that pushes random Automerge changes onto one of a
//!   worker's stored records (raw edits of any type and depth, typed edits
//!   with extreme values, compressed chunks, missing or extra changes,
//!   random heads) through a real server: merge, policy and projection; then
//!   the record is read back over the REST API and a desk adds an event.
//! - `records`: Automerge documents built from random operations (from
//!   nothing, or from a real record) through the record readers, the
//!   workflow fold and the server's projection.
//!
//! A crash is a panic, a `5xx`, a request answered by a closed connection, a
//! stored document that no longer loads, an error message that shows parser
//! internals, or a request that makes the server's memory jump.
//!
//! Generators draw from [`rand`]'s `StdRng` seeded per input, so
//! `(target, seed, iteration)` names an input for good.

use std::collections::BTreeMap;
use std::sync::Mutex;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_bytes::ByteBuf;
use sync_core::doc::AnyRecord;
use sync_core::protocol::{
    AmSync, DocError, DocPull, DocPush, Heads, PROTOCOL_VERSION, SyncRequest, SyncResponse,
};
use sync_core::records::{Case, CaseEvent, Household, Member, Sensitive, Visit};
use sync_core::{MemoryStore, RecordId, RecordKind, Replica, ReplicaStore};

use crate::{Device, TestServer};

/// The fuzz targets, by name.
pub const TARGETS: [&str; 3] = ["decode", "push", "records"];

/// The random source of one input: seeded by the run's seed, the target and
/// the input's number.
pub fn rng_for(target: &str, seed: u64, iteration: u64) -> StdRng {
    let t = TARGETS.iter().position(|t| *t == target).unwrap_or(9) as u64;
    StdRng::seed_from_u64(seed ^ (t << 56) ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

// ---------------------------------------------------------------------------
// Panics

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs a panic hook that remembers the last panic (message and place)
/// for [`take_panic`] instead of printing it: the fuzzer reports each kind
/// of crash once. Panics on the server's threads land here too.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut short: String = message.chars().take(200).collect();
        if short.len() < message.len() {
            short.push('…');
        }
        let line = format!("panicked at {place}: {short}");
        eprintln!("{line}");
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
    }));
}

/// The last panic since the previous call, if any.
pub fn take_panic() -> Option<String> {
    LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take()
}

fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| take_panic().unwrap_or_else(|| "panicked".into()))
}

/// Parser internals that must never reach a person (Debug output of the
/// CBOR and JSON parsers' errors).
const LEAKS: [&str; 5] = [
    "Semantic(",
    "Syntax(",
    "Io(Error",
    "UnexpectedEof",
    "RecursionLimit",
];

fn leak(message: &str) -> Option<&'static str> {
    LEAKS.into_iter().find(|l| message.contains(l))
}

// ---------------------------------------------------------------------------
// Random values

const FIELDS: [&str; 40] = [
    "org_unit",
    "address",
    "head",
    "members",
    "tags",
    "notes",
    "category",
    "title",
    "description",
    "parties",
    "household",
    "location",
    "reporter",
    "reported_at",
    "events",
    "kind",
    "author",
    "device",
    "at",
    "role",
    "hlc",
    "data",
    "id",
    "name",
    "worker",
    "visited_at",
    "findings",
    "follow_up",
    "categories",
    "phone",
    "id_number",
    "sex",
    "birth_date",
    "relation",
    "residence",
    "room",
    "text",
    "class",
    "to",
    "result",
];

fn extreme_i64(rng: &mut StdRng) -> i64 {
    match rng.gen_range(0..10) {
        0 => i64::MAX,
        1 => i64::MIN,
        2 => i64::MAX - rng.gen_range(0..1000),
        3 => i64::MIN + rng.gen_range(0..1000),
        4 => -1,
        5 => 0,
        6 => 1 << rng.gen_range(0..63),
        7 => -(1 << rng.gen_range(0..63)),
        8 => 1_700_000_000_000 + rng.gen_range(-1_000_000_000..1_000_000_000),
        _ => rng.r#gen(),
    }
}

fn string(rng: &mut StdRng) -> String {
    match rng.gen_range(0..12) {
        0 => String::new(),
        1 => " ".repeat(rng.gen_range(1..4)),
        2 => "王".repeat(rng.gen_range(1..2000)),
        3 if rng.gen_bool(0.1) => "x".repeat(rng.gen_range(10_000..200_000)),
        4 => ["=cmd|' /C calc'!A0", "\t=1+1", "\r+1", "@SUM(1)", "-1"][rng.gen_range(0..5)].into(),
        5 => "\u{0}\u{1}\u{7f}\u{202e}\u{fffd}".into(),
        6 => FIELDS[rng.gen_range(0..FIELDS.len())].into(),
        7 => [
            "grid_worker",
            "admin",
            "usr_fz-w1",
            "usr_fz-w2",
            "fz.g1",
            "fz.g2",
            "fz",
        ][rng.gen_range(0..7)]
        .into(),
        8 => [
            "report", "accept", "assign", "resolve", "close", "escalate", "comment",
        ][rng.gen_range(0..7)]
        .into(),
        9 => "2024-02-30".into(),
        10 => format!("{}", extreme_i64(rng)),
        _ => (0..rng.gen_range(1..40))
            .map(|_| rng.gen_range(' '..='~'))
            .collect(),
    }
}

fn scalar(rng: &mut StdRng) -> ScalarValue {
    match rng.gen_range(0..11) {
        0 | 1 => ScalarValue::Int(extreme_i64(rng)),
        2 => ScalarValue::Uint([u64::MAX, 0, 1 << 63, rng.r#gen()][rng.gen_range(0..4)]),
        3 => ScalarValue::F64(
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e308, 0.5][rng.gen_range(0..6)],
        ),
        4..=6 => ScalarValue::Str(string(rng).into()),
        7 => ScalarValue::Bytes((0..rng.gen_range(0..64)).map(|_| rng.r#gen()).collect()),
        8 => ScalarValue::Timestamp(extreme_i64(rng)),
        9 => ScalarValue::counter(extreme_i64(rng)),
        _ => [
            ScalarValue::Boolean(true),
            ScalarValue::Boolean(false),
            ScalarValue::Null,
        ][rng.gen_range(0..3)]
        .clone(),
    }
}

fn key(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.8) {
        FIELDS[rng.gen_range(0..FIELDS.len())].into()
    } else {
        string(rng).chars().take(64).collect()
    }
}

/// The objects of `doc` down to a bounded depth (the documents the
/// generators build may be deep; they are walked iteratively).
fn objects(doc: &impl ReadDoc, limit: usize) -> Vec<(ObjId, ObjType)> {
    let mut found = vec![(ROOT, ObjType::Map)];
    let mut next = 0;
    while next < found.len() && found.len() < limit {
        let (obj, _) = found[next].clone();
        next += 1;
        let children: Vec<(ObjId, ObjType)> = doc
            .values(&obj)
            .filter_map(|(value, id)| match value {
                automerge::Value::Object(t) => Some((id, t)),
                automerge::Value::Scalar(_) => None,
            })
            .take(16)
            .collect();
        found.extend(children);
    }
    found
}

/// One random operation somewhere in the document.
fn random_op(
    rng: &mut StdRng,
    tx: &mut impl Transactable,
) -> Result<(), automerge::AutomergeError> {
    let objs = objects(tx, 64);
    let (obj, kind) = objs[rng.gen_range(0..objs.len())].clone();
    let len = tx.length(&obj);
    match kind {
        ObjType::Map | ObjType::Table => match rng.gen_range(0..10) {
            0..=4 => tx.put(&obj, key(rng), scalar(rng)),
            5 | 6 => {
                let t = [ObjType::Map, ObjType::List, ObjType::Text][rng.gen_range(0..3)];
                tx.put_object(&obj, key(rng), t).map(drop)
            }
            7 => {
                let keys: Vec<String> = tx.keys(&obj).collect();
                match keys.get(rng.gen_range(0..keys.len().max(1))) {
                    Some(k) => tx.delete(&obj, k.as_str()),
                    None => Ok(()),
                }
            }
            8 => tx.increment(&obj, key(rng), extreme_i64(rng)),
            _ => {
                let depth = deep_depth(rng);
                nest(rng, tx, obj, depth)
            }
        },
        ObjType::List => match rng.gen_range(0..6) {
            0 | 1 => tx.insert(&obj, rng.gen_range(0..=len), scalar(rng)),
            2 => tx
                .insert_object(&obj, rng.gen_range(0..=len), ObjType::Map)
                .map(drop),
            3 if len > 0 => tx.put(&obj, rng.gen_range(0..len), scalar(rng)),
            4 if len > 0 => tx.delete(&obj, rng.gen_range(0..len)),
            _ => tx.insert(&obj, len + rng.gen_range(0..3), scalar(rng)),
        },
        ObjType::Text => {
            let at = rng.gen_range(0..=len);
            let del = rng.gen_range(0..=(len - at).min(8)) as isize;
            tx.splice_text(&obj, at, del, &string(rng))
        }
    }
}

fn deep_depth(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..100) {
        0 => rng.gen_range(2_000..20_000),
        1..=10 => rng.gen_range(100..1_000),
        _ => rng.gen_range(1..20),
    }
}

/// Maps and lists nested `depth` deep under a random key of `obj`.
fn nest(
    rng: &mut StdRng,
    tx: &mut impl Transactable,
    obj: ObjId,
    depth: usize,
) -> Result<(), automerge::AutomergeError> {
    let mut at = tx.put_object(&obj, key(rng), ObjType::Map)?;
    for i in 0..depth {
        at = if i % 2 == 0 {
            tx.put_object(&at, "n", ObjType::List)?
        } else {
            tx.insert_object(&at, 0, ObjType::Map)?
        };
    }
    Ok(())
}

fn event(rng: &mut StdRng) -> CaseEvent {
    let mut data = BTreeMap::new();
    for _ in 0..rng.gen_range(0..3) {
        data.insert(key(rng), string(rng));
    }
    CaseEvent {
        attachments: Vec::new(),
        id: if rng.gen_bool(0.9) {
            format!("e{:016x}", rng.r#gen::<u64>())
        } else {
            string(rng)
        },
        kind: string(rng),
        author: string(rng),
        device: string(rng),
        at: extreme_i64(rng),
        role: string(rng),
        hlc: extreme_i64(rng),
        data,
    }
}

/// Edits the record through its typed form, with no check: what a modified
/// phone could write (extreme times and clocks, empty or huge strings,
/// duplicate ids, moved org units).
fn typed_edit(
    rng: &mut StdRng,
    kind: RecordKind,
    tx: &mut automerge::transaction::Transaction<'_>,
) {
    fn edit<R: sync_core::autosurgeon::Hydrate + sync_core::autosurgeon::Reconcile>(
        tx: &mut automerge::transaction::Transaction<'_>,
        f: impl FnOnce(&mut R),
    ) {
        if let Ok(mut record) = sync_core::autosurgeon::hydrate::<_, R>(tx) {
            f(&mut record);
            let _ = sync_core::autosurgeon::reconcile(tx, &record);
        }
    }
    match kind {
        RecordKind::Household => edit::<Household>(tx, |h| match rng.gen_range(0..6) {
            0 => h.org_unit = string(rng),
            1 => h.head = string(rng),
            2 => h.members.push(Member::new(string(rng), string(rng))),
            3 => {
                if let Some(m) = h.members.first_mut() {
                    m.birth_date = string(rng);
                    m.id_number = string(rng);
                    m.phone = string(rng);
                }
            }
            4 => {
                h.tags.insert(string(rng), rng.r#gen());
            }
            _ => h.members.clear(),
        }),
        RecordKind::Case => edit::<Case>(tx, |c| match rng.gen_range(0..6) {
            0 | 1 => c.events.push(event(rng)),
            2 => c.reported_at = extreme_i64(rng),
            3 => c.reporter = string(rng),
            4 => {
                if let Some(e) = c.events.first_mut() {
                    e.hlc = extreme_i64(rng);
                    e.at = extreme_i64(rng);
                }
            }
            _ => c.org_unit = string(rng),
        }),
        RecordKind::Visit => edit::<Visit>(tx, |v| match rng.gen_range(0..4) {
            0 | 1 => v.visited_at = extreme_i64(rng),
            2 => v.household = string(rng),
            _ => v.worker = string(rng),
        }),
        RecordKind::Sensitive => edit::<Sensitive>(tx, |s| match rng.gen_range(0..3) {
            0 => s.household = string(rng),
            1 => s.org_unit = string(rng),
            _ => {
                s.categories.insert(string(rng), rng.r#gen());
            }
        }),
    }
}

/// Random changes on `doc`, as a new actor: `changes` transactions of a
/// few operations each, typed or raw. Returns the edited copy.
fn random_changes(
    rng: &mut StdRng,
    kind: RecordKind,
    doc: &Automerge,
    changes: usize,
) -> Automerge {
    let actor: [u8; 16] = rng.r#gen();
    let mut doc = doc.fork().with_actor(ActorId::from(actor));
    for _ in 0..changes {
        let time = if rng.gen_bool(0.1) {
            extreme_i64(rng)
        } else {
            1_735_689_600 + rng.gen_range(0..100_000)
        };
        let ops = rng.gen_range(1..6);
        let typed = rng.gen_bool(0.4);
        // Automerge itself may panic on what it is given (an extreme
        // change time overflows its history's delta encoding in a debug
        // build): such a change is not made, and the document is kept as
        // it was.
        let before = doc.clone();
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            doc.transact_with(
                |_| CommitOptions::default().with_time(time),
                |tx| {
                    if typed {
                        typed_edit(rng, kind, tx);
                    }
                    for _ in 0..ops {
                        if !typed || rng.gen_bool(0.3) {
                            // An operation automerge refuses is just not made.
                            let _ = random_op(rng, tx);
                        }
                    }
                    Ok::<_, automerge::AutomergeError>(())
                },
            )
            .is_ok()
        }));
        if made.is_err() {
            take_panic();
            doc = before;
        }
    }
    doc
}

/// A first change of a document, by a new actor, stamped `time`: sent to
/// a stored document it is a concurrent root change with an extreme time.
fn root_change(rng: &mut StdRng, time: i64) -> Vec<u8> {
    let actor: [u8; 16] = rng.r#gen();
    let mut doc = sync_core::doc::empty(ActorId::from(actor));
    let _ = doc.transact_with::<_, _, automerge::AutomergeError, _>(
        |_| CommitOptions::default().with_time(time),
        |tx| {
            tx.put(ROOT, "org_unit", GRID)?;
            Ok(())
        },
    );
    doc.get_last_local_change()
        .map(|c| c.raw_bytes().to_vec())
        .unwrap_or_default()
}

/// A change that inflates to `size` bytes from a chunk of a few
/// kilobytes: one string of zeros, sent compressed.
fn bomb(rng: &mut StdRng, doc: &Automerge, size: usize) -> Vec<u8> {
    let actor: [u8; 16] = rng.r#gen();
    let mut doc = doc.fork().with_actor(ActorId::from(actor));
    let _ = doc.transact::<_, _, automerge::AutomergeError>(|tx| {
        tx.put(ROOT, "notes_bomb", "\0".repeat(size))?;
        Ok(())
    });
    doc.get_last_local_change()
        .map(|mut c| c.bytes().into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Byte mutations

const INTERESTING: [u8; 16] = [
    0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x5b, 0x5f, 0x7f, 0x80, 0x9f, 0xbf, 0xf6, 0xff,
];

/// Mutates `bytes` in place a few times: bit flips, interesting bytes,
/// insertions, deletions, truncation, repeated spans, huge length headers.
pub fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
    for _ in 0..rng.gen_range(1..5) {
        let len = bytes.len();
        match rng.gen_range(0..8) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                bytes[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
            }
            2 => {
                let i = rng.gen_range(0..=len);
                let n = rng.gen_range(1..9);
                let insert: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
                bytes.splice(i..i, insert);
            }
            3 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(16));
                bytes.drain(i..i + n);
            }
            4 if len > 0 => bytes.truncate(rng.gen_range(0..len)),
            5 if len > 0 => {
                let i = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - i).min(64));
                let span = bytes[i..i + n].to_vec();
                for _ in 0..rng.gen_range(1..50) {
                    bytes.splice(i..i, span.iter().copied());
                }
            }
            6 => {
                // A CBOR header claiming a huge length (byte string, text,
                // array, map) or deep nesting.
                let i = rng.gen_range(0..=len);
                let header: Vec<u8> = match rng.gen_range(0..5) {
                    0 => vec![0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    1 => vec![0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    2 => vec![0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
                    3 => vec![0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    _ => vec![0x81; rng.gen_range(10..100_000)],
                };
                bytes.splice(i..i, header);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// decode

/// An input of the `decode` target: arbitrary bytes, or a valid request or
/// response mutated.
pub fn gen_decode(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 | 1 => (0..rng.gen_range(0..256)).map(|_| rng.r#gen()).collect(),
        2 => {
            let mut b = vec![0xa1, 0x61, b'v', 0x01];
            mutate(rng, &mut b);
            b
        }
        _ => {
            let mut bytes = valid_message(rng);
            if rng.gen_bool(0.9) {
                mutate(rng, &mut bytes);
            }
            bytes
        }
    }
}

fn random_id(rng: &mut StdRng) -> RecordId {
    let kind = [
        RecordKind::Household,
        RecordKind::Case,
        RecordKind::Visit,
        RecordKind::Sensitive,
    ][rng.gen_range(0..4)];
    RecordId::from_parts(kind, rng.r#gen())
}

fn random_bytes(rng: &mut StdRng, max: usize) -> ByteBuf {
    ByteBuf::from(
        (0..rng.gen_range(0..max))
            .map(|_| rng.r#gen())
            .collect::<Vec<u8>>(),
    )
}

fn random_heads(rng: &mut StdRng) -> Heads {
    Heads(
        (0..rng.gen_range(0..3))
            .map(|_| automerge::ChangeHash(rng.r#gen()))
            .collect(),
    )
}

fn valid_message(rng: &mut StdRng) -> Vec<u8> {
    let doc = || Automerge::new();
    if rng.gen_bool(0.6) {
        let mut changes = Vec::new();
        if rng.gen_bool(0.7) {
            let d = random_changes(rng, RecordKind::Household, &doc(), 1);
            changes = d
                .get_changes(&[])
                .iter()
                .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                .collect();
        }
        SyncRequest {
            v: PROTOCOL_VERSION,
            cursor: rng.gen_bool(0.5).then(|| random_bytes(rng, 40)),
            actors: (0..rng.gen_range(0..3))
                .map(|_| random_bytes(rng, 20))
                .collect(),
            docs: (0..rng.gen_range(0..3))
                .map(|_| DocPush {
                    id: random_id(rng),
                    heads: random_heads(rng),
                    changes: changes.clone(),
                })
                .collect(),
            am_sync: (0..rng.gen_range(0..2))
                .map(|_| AmSync {
                    id: random_id(rng),
                    message: random_bytes(rng, 64),
                })
                .collect(),
        }
        .encode()
    } else {
        SyncResponse {
            v: PROTOCOL_VERSION,
            cursor: random_bytes(rng, 40),
            more: rng.r#gen(),
            reset: rng.r#gen(),
            docs: (0..rng.gen_range(0..3))
                .map(|_| DocPull {
                    id: random_id(rng),
                    heads: random_heads(rng),
                    chunks: vec![random_bytes(rng, 64)],
                })
                .collect(),
            errors: (0..rng.gen_range(0..2))
                .map(|_| DocError {
                    id: random_id(rng),
                    code: string(rng),
                    message: string(rng),
                    change: None,
                })
                .collect(),
            drop: (0..rng.gen_range(0..2)).map(|_| random_id(rng)).collect(),
            am_sync: vec![],
        }
        .encode()
    }
}

/// Runs one `decode` input: no panic, an error message without parser
/// internals, and a message that decodes encodes back to itself.
pub fn run_decode(bytes: &[u8]) -> Result<(), String> {
    catch(|| {
        match SyncRequest::decode(bytes) {
            Ok(m) => {
                let again = SyncRequest::decode(&m.encode())
                    .map_err(|e| format!("request does not decode after encoding: {e}"))?;
                let third = SyncRequest::decode(&again.encode()).map_err(|e| e.to_string())?;
                if third != again {
                    return Err("request changes on a second round trip".into());
                }
            }
            Err(e) => {
                if let Some(l) = leak(&e.to_string()) {
                    return Err(format!("decode error shows parser internals ({l})"));
                }
            }
        }
        match SyncResponse::decode(bytes) {
            Ok(m) => {
                SyncResponse::decode(&m.encode())
                    .map_err(|e| format!("response does not decode after encoding: {e}"))?;
            }
            Err(e) => {
                if let Some(l) = leak(&e.to_string()) {
                    return Err(format!("decode error shows parser internals ({l})"));
                }
            }
        }
        Ok(())
    })?
}

// ---------------------------------------------------------------------------
// records

/// The real records the `push` and `records` targets start from: a
/// household, special-population details, a case and a visit in grid
/// `fz.g1`, worker `usr_fz-w1`.
pub fn seed_records() -> Vec<(RecordId, AnyRecord)> {
    let hid = RecordId::from_parts(RecordKind::Household, 0xf2_0001);
    let mut h = Household {
        org_unit: GRID.into(),
        head: "m1".into(),
        ..Default::default()
    };
    h.members.push(Member::new("m1", "张三"));
    h.members.push(Member::new("m2", "李四"));
    h.notes = "独居老人。".into();
    let mut rng = gridsync_server::demo::Rng::new(7);
    let at = 1_735_689_600_000;
    let mut c = gridsync_server::demo::case(&mut rng, GRID, &hid, WORKER_ID, at);
    c.events[0].role = "grid_worker".into();
    c.events[0].hlc = at << 16;
    let v = Visit {
        attachments: Vec::new(),
        household: hid.to_string(),
        org_unit: GRID.into(),
        worker: WORKER_ID.into(),
        visited_at: at,
        findings: "入户走访，情况正常。".into(),
        follow_up: false,
        location: String::new(),
    };
    let s = Sensitive {
        household: hid.to_string(),
        org_unit: GRID.into(),
        notes: "定期走访。".into(),
        ..Default::default()
    };
    vec![
        (hid, AnyRecord::Household(h)),
        (
            RecordId::from_parts(RecordKind::Case, 0xf2_0002),
            AnyRecord::Case(c),
        ),
        (
            RecordId::from_parts(RecordKind::Visit, 0xf2_0003),
            AnyRecord::Visit(v),
        ),
        (
            RecordId::from_parts(RecordKind::Sensitive, 0xf2_0004),
            AnyRecord::Sensitive(s),
        ),
    ]
}

fn record_doc(record: &AnyRecord) -> Automerge {
    let actor = ActorId::from([0xf2; 16]);
    let at = 1_735_689_600_000;
    match record {
        AnyRecord::Household(r) => sync_core::doc::create(actor, r, at),
        AnyRecord::Case(r) => sync_core::doc::create(actor, r, at),
        AnyRecord::Visit(r) => sync_core::doc::create(actor, r, at),
        AnyRecord::Sensitive(r) => sync_core::doc::create(actor, r, at),
    }
    .expect("the seed records are valid")
}

/// An input of the `records` target: a saved Automerge document.
pub fn gen_records(rng: &mut StdRng) -> Vec<u8> {
    let seeds = seed_records();
    let (kind, base) = if rng.gen_bool(0.2) {
        (
            RecordKind::Household,
            sync_core::doc::empty(ActorId::from([1; 16])),
        )
    } else {
        let (id, record) = &seeds[rng.gen_range(0..seeds.len())];
        (id.kind(), record_doc(record))
    };
    let n = rng.gen_range(1..5);
    let mut doc = random_changes(rng, kind, &base, n);
    if rng.gen_bool(0.2) {
        // A concurrent edit, so that fields hold conflicts.
        // Automerge's merge may panic on an extreme change time as its
        // transactions do (see `random_changes`): the edit is left out.
        let other = random_changes(rng, kind, &base, 1);
        let before = doc.clone();
        let merged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = doc.merge(&mut other.clone());
        }));
        if merged.is_err() {
            take_panic();
            doc = before;
        }
    }
    doc.save()
}

/// Runs one `records` input: the document is read as every record kind;
/// what reads is folded, projected and checked for conflicts; nothing
/// panics.
pub fn run_records(bytes: &[u8]) -> Result<(), String> {
    catch(|| {
        let Ok(doc) = sync_core::doc::load(bytes) else {
            return Ok(());
        };
        let deadlines = sync_core::workflow::Deadlines::default();
        for kind in [
            RecordKind::Household,
            RecordKind::Case,
            RecordKind::Visit,
            RecordKind::Sensitive,
        ] {
            // As a merge reads it: the record and its conflicts in one read.
            let Ok(read) = gridsync_server::projection::Read::new(kind, &doc) else {
                continue;
            };
            let _ = read.record.meta();
            if let AnyRecord::Case(c) = &read.record {
                let _ = sync_core::workflow::fold(c, &deadlines);
                let _ = sync_core::workflow::next_hlc(c, 1_735_689_600_000);
            }
            let id = RecordId::from_parts(kind, 1).to_string();
            let _ =
                gridsync_server::projection::project(&id, &read.record, read.conflicts, &deadlines);
        }
        let _ = gridsync_server::projection::conflicts(&doc);
        let saved = doc.save();
        sync_core::doc::load(&saved).map_err(|e| format!("a saved document does not load: {e}"))?;
        Ok(())
    })?
}

// ---------------------------------------------------------------------------
// push

/// The grid of the `push` target's worker.
pub const GRID: &str = "fz.g1";
/// The worker's user id.
pub const WORKER_ID: &str = "usr_fz-w1";

/// A server with the `push` target's users and records: worker `fz-w1` in
/// grid `fz.g1` (who pushes), a worker of the neighbouring grid `fz.g2`,
/// and community staff `fz-staff` over both (who reads and acts on cases).
pub struct Fixture {
    /// The server.
    pub server: TestServer,
    /// The worker's device, holding the seed records as acknowledged.
    pub worker: Device<MemoryStore>,
    /// The staff member's bearer token.
    pub staff_token: String,
    /// The request that stored the seed records (the worker's first sync).
    pub setup: Vec<u8>,
    http: reqwest::Client,
}

fn fixed_clock() -> i64 {
    1_735_689_600_000
}

fn add_seed_records(replica: &mut Replica<MemoryStore>) {
    replica.set_clock(fixed_clock);
    for (id, record) in seed_records() {
        match record {
            AnyRecord::Household(r) => replica.create_with_id(id, &r),
            AnyRecord::Case(r) => replica.create_with_id(id, &r),
            AnyRecord::Visit(r) => replica.create_with_id(id, &r),
            // A worker does not keep special-population details.
            AnyRecord::Sensitive(_) => continue,
        }
        .expect("seed record");
    }
}

/// The worker's replica as the fixture starts it, without a server: what
/// [`gen_push`] builds on, so that an input can be regenerated anywhere.
pub fn base_replica() -> Replica<MemoryStore> {
    let mut store = MemoryStore::default();
    store
        .put_actor(&ActorId::from([0xf2; 16]))
        .expect("memory store");
    let mut replica = Replica::open(store).expect("replica");
    add_seed_records(&mut replica);
    replica
}

impl Fixture {
    /// Starts a server on a fresh database and stores the seed records.
    pub async fn start() -> Self {
        let server = TestServer::start().await;
        server.org_unit("fz", None).await;
        server.org_unit(GRID, Some("fz")).await;
        server.org_unit("fz.g2", Some("fz")).await;
        server.user("fz-w1", "grid_worker", GRID).await;
        server.user("fz-w2", "grid_worker", "fz.g2").await;
        server.user("fz-staff", "community_staff", "fz").await;
        let mut store = MemoryStore::default();
        store
            .put_actor(&ActorId::from([0xf2; 16]))
            .expect("memory store");
        let mut worker = server.device_with_store("fz-w1", store).await;
        add_seed_records(&mut worker.replica);
        let setup = worker.replica.sync_request().encode();
        let (status, reply) = worker.post_raw(setup.clone()).await;
        assert_eq!(status, 200, "the seed records are stored");
        let response = SyncResponse::decode(&reply).expect("sync response");
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        worker.replica.apply_response(response).expect("apply");
        let staff_token = crate::login(&server.url(""), "fz-staff", crate::PASSWORD)
            .await
            .access_token;
        Self {
            server,
            worker,
            staff_token,
            setup,
            http: reqwest::Client::new(),
        }
    }

    /// Replays a request that was recorded against another fixture: its
    /// device announces the same actors, so the same bytes mean the same.
    pub async fn replay(&self, body: Vec<u8>) -> Result<(), String> {
        self.push(body, None).await
    }

    async fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let response = self
            .http
            .post(self.server.url("/v1/sync"))
            .bearer_auth(&self.worker.token)
            .header("content-type", sync_core::protocol::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| no_answer("POST /v1/sync", &e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| no_answer("POST /v1/sync (body)", &e))?;
        Ok((status, bytes.to_vec()))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, String), String> {
        let mut request = self
            .http
            .request(method.clone(), self.server.url(path))
            .bearer_auth(&self.staff_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| no_answer(&format!("{method} {path}"), &e))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, text))
    }

    /// Pushes `body` and checks the answer, then reads the document `probe`
    /// back (stored snapshot, REST views, a desk event on a case).
    pub async fn push(&self, body: Vec<u8>, probe: Option<&RecordId>) -> Result<(), String> {
        let (status, reply) = self.post(body).await?;
        let mut probes: Vec<RecordId> = probe.into_iter().cloned().collect();
        if status >= 500 {
            return Err(format!(
                "POST /v1/sync answered {status}: {}",
                String::from_utf8_lossy(&reply)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        if status == 200 {
            let response = SyncResponse::decode(&reply)
                .map_err(|e| format!("the sync answer does not decode: {e}"))?;
            for e in &response.errors {
                if let Some(l) = leak(&e.message) {
                    return Err(format!(
                        "sync error {} shows parser internals ({l})",
                        e.code
                    ));
                }
            }
            probes.extend(response.docs.iter().map(|d| d.id.clone()));
        } else {
            let text = String::from_utf8_lossy(&reply);
            if let Some(l) = leak(&text) {
                return Err(format!("HTTP {status} shows parser internals ({l})"));
            }
        }
        probes.sort();
        probes.dedup();
        for id in probes.iter().take(4) {
            self.probe(id).await?;
        }
        Ok(())
    }

    async fn probe(&self, id: &RecordId) -> Result<(), String> {
        use reqwest::Method;
        let mut tx = self
            .server
            .state
            .engine
            .storage
            .begin(false)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(row) = tx.load(&id.to_string()).await.map_err(|e| e.to_string())? {
            sync_core::doc::load(&row.snapshot).map_err(|e| {
                format!("the stored snapshot of a {} does not load: {e}", id.kind())
            })?;
        }
        drop(tx);
        let mut calls = vec![
            (Method::GET, format!("/v1/records/{id}"), None),
            (Method::GET, format!("/v1/records/{id}/history"), None),
            (Method::GET, format!("/v1/records/{id}/conflicts"), None),
        ];
        match id.kind() {
            RecordKind::Household => {
                calls.push((Method::GET, "/v1/households?org_unit=fz".into(), None));
            }
            RecordKind::Visit => {
                calls.push((Method::GET, "/v1/visits/daily?org_unit=fz".into(), None));
                calls.push((Method::GET, "/v1/visits?org_unit=fz".into(), None));
            }
            RecordKind::Case => {
                calls.push((Method::GET, format!("/v1/cases/{id}"), None));
                calls.push((Method::GET, "/v1/cases?org_unit=fz".into(), None));
                calls.push((
                    Method::POST,
                    format!("/v1/cases/{id}/events"),
                    Some(serde_json::json!({"kind": "comment", "data": {"text": "已回访。"}})),
                ));
            }
            RecordKind::Sensitive => {}
        }
        for (method, path, body) in calls {
            let (status, text) = self.call(method.clone(), &path, body).await?;
            if status >= 500 {
                let path = path.replace(&id.to_string(), &format!("{{{}}}", id.kind()));
                return Err(format!(
                    "{method} {path} answered {status}: {}",
                    text.chars().take(200).collect::<String>()
                ));
            }
            if let Some(l) = leak(&text) {
                return Err(format!("{method} {path} shows parser internals ({l})"));
            }
        }
        Ok(())
    }
}

fn no_answer(what: &str, e: &reqwest::Error) -> String {
    let panic = take_panic()
        .map(|p| format!(" (the server {p})"))
        .unwrap_or_default();
    let _ = e;
    format!("{what}: the connection closed with no answer{panic}")
}

/// An input of the `push` target: one sync request from the fixture's
/// worker, pushing random changes onto one of the seed records (or a new
/// document); returns the body and the document to read back.
pub fn gen_push(rng: &mut StdRng, base: &Replica<MemoryStore>) -> (Vec<u8>, RecordId) {
    let ids: Vec<RecordId> = base.ids().cloned().collect();
    let (id, start) = if rng.gen_bool(0.08) {
        let (seed_id, _) = &seed_records()[rng.gen_range(0..4)];
        (
            RecordId::from_parts(seed_id.kind(), rng.r#gen()),
            sync_core::doc::empty(ActorId::from([3; 16])),
        )
    } else {
        let id = ids[rng.gen_range(0..ids.len())].clone();
        let doc = base.document(&id).expect("held").clone();
        (id, doc)
    };
    let start_heads = if start.get_heads().is_empty() {
        vec![]
    } else {
        start.get_heads()
    };
    let n = rng.gen_range(1..4);
    let doc = if start_heads.is_empty() && rng.gen_bool(0.5) {
        // A new document: the seed record of that kind, as a new actor.
        let record = seed_records()
            .into_iter()
            .find(|(s, _)| s.kind() == id.kind());
        let created = record_doc(&record.expect("kind").1);
        random_changes(rng, id.kind(), &created, n)
    } else {
        random_changes(rng, id.kind(), &start, n)
    };
    let compress = rng.gen_bool(0.3);
    let mut changes: Vec<ByteBuf> = doc
        .get_changes(&start_heads)
        .into_iter()
        .map(|mut c| match compress {
            true => ByteBuf::from(c.bytes().into_owned()),
            false => ByteBuf::from(c.raw_bytes().to_vec()),
        })
        .collect();
    let mut actors: Vec<ByteBuf> = doc
        .get_changes(&start_heads)
        .iter()
        .map(|c| ByteBuf::from(c.actor_id().to_bytes().to_vec()))
        .collect();
    actors.sort();
    actors.dedup();
    let mut heads = Heads(doc.get_heads());
    match rng.gen_range(0..30) {
        0 if !changes.is_empty() => {
            changes.remove(rng.gen_range(0..changes.len()));
        }
        1 => changes.reverse(),
        2 if !changes.is_empty() => {
            let c = changes[rng.gen_range(0..changes.len())].clone();
            changes.push(c);
        }
        3 if !changes.is_empty() => {
            let i = rng.gen_range(0..changes.len());
            mutate(rng, &mut changes[i]);
        }
        4 => changes.push(random_bytes(rng, 200)),
        5 => heads = random_heads(rng),
        6 => heads = Heads(start_heads.clone()),
        7 => heads = Heads(vec![]),
        8 => actors.clear(),
        9 => actors.push(random_bytes(rng, 20)),
        11 => {
            let time = [i64::MIN, i64::MAX, -1][rng.gen_range(0..3)];
            let change = root_change(rng, time);
            actors.push(ByteBuf::from(
                automerge::Change::try_from(&change[..])
                    .map(|c| c.actor_id().to_bytes().to_vec())
                    .unwrap_or_default(),
            ));
            changes.push(ByteBuf::from(change));
        }
        10 => {
            let size = [1 << 20, 16 << 20, 64 << 20][rng.gen_range(0..3)];
            changes.push(ByteBuf::from(bomb(rng, &doc, size)));
        }
        _ => {}
    }
    let mut docs = vec![DocPush {
        id: id.clone(),
        heads,
        changes,
    }];
    if rng.gen_bool(0.03) {
        docs.push(docs[0].clone());
    }
    let mut am_sync = vec![];
    if rng.gen_bool(0.05) {
        let mut state = automerge::sync::State::new();
        if let Some(message) = automerge::sync::SyncDoc::generate_sync_message(&doc, &mut state) {
            let mut bytes = message.encode();
            if rng.gen_bool(0.5) {
                mutate(rng, &mut bytes);
            }
            am_sync.push(AmSync {
                id: id.clone(),
                message: ByteBuf::from(bytes),
            });
        }
    }
    let request = SyncRequest {
        v: PROTOCOL_VERSION,
        cursor: rng.gen_bool(0.05).then(|| random_bytes(rng, 40)),
        actors,
        docs,
        am_sync,
    };
    let mut body = request.encode();
    if rng.gen_bool(0.03) {
        mutate(rng, &mut body);
    }
    (body, id)
}

/// A crash: what the fuzzer (or a regression test) saw.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Crash {
    /// The target.
    pub target: String,
    /// The run's seed and the input's number, which regenerate it.
    pub seed: u64,
    /// The input's number.
    pub iteration: u64,
    /// What went wrong.
    pub symptom: String,
}

/// A crash's signature for counting distinct crashes: its symptom without
/// numbers.
pub fn signature(symptom: &str) -> String {
    symptom
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(120)
        .collect()
}

/// Runs a crash file the fuzzer wrote (`{"target", "input" (base64),
/// "doc"}`): for `push`, against a fresh [`Fixture`].
pub async fn replay_file(path: &std::path::Path) -> Result<(), String> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let input = base64::engine::general_purpose::STANDARD
        .decode(json["input"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    match json["target"].as_str().unwrap_or_default() {
        "decode" => run_decode(&input),
        "records" => run_records(&input),
        "push" => {
            let doc: Option<RecordId> = json["doc"].as_str().and_then(|d| d.parse().ok());
            Fixture::start().await.push(input, doc.as_ref()).await
        }
        other => Err(format!("unknown target {other:?}")),
    }
}
