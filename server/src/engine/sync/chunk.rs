//! A look at a pushed change's bytes before Automerge decodes them.
//!
//! Automerge 0.12 inflates a *compressed* change chunk (type 2) with no
//! limit, and expands run-length-encoded op columns as it verifies a
//! change: a few kilobytes on the wire can stand for gigabytes or for
//! billions of operations. This reads the chunk header and counts the rows
//! of every op column from its run lengths alone (never expanding them), so
//! that a change is refused before Automerge allocates anything for it.
//! Automerge offers no public way to do this, hence the hand-written reader
//! of the format (`automerge/rust/automerge/src/storage/chunk.rs`,
//! `change.rs` and `columns/`).
//!
//! Honest replicas send changes with `Change::raw_bytes()`, which is never
//! compressed, so refusing compressed chunks costs them nothing.

/// The four bytes every Automerge chunk starts with.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Why a change's bytes are refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Not a change chunk Automerge could read.
    Corrupt(&'static str),
    /// A compressed change chunk.
    Compressed,
    /// More op rows than allowed.
    TooManyOps,
}

/// Checks one change chunk's header and returns how many operations it
/// holds (the rows of its longest op column), refusing compressed chunks
/// and any column longer than `max_ops`.
pub(super) fn inspect(bytes: &[u8], max_ops: u64) -> Result<u64, Refusal> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(Refusal::Corrupt(
            "it does not start with Automerge's magic bytes",
        ));
    }
    r.take(4)?; // checksum
    match r.byte()? {
        1 => {}
        2 => return Err(Refusal::Compressed),
        _ => return Err(Refusal::Corrupt("it is not a change chunk")),
    }
    let len = r.len()?;
    if len != r.rest() {
        return Err(Refusal::Corrupt("its length does not match its contents"));
    }
    let deps = r.len()?;
    r.take(deps.checked_mul(32).ok_or(Refusal::Corrupt(TRUNCATED))?)?;
    let actor = r.len()?;
    r.take(actor)?;
    r.uleb()?; // seq
    r.uleb()?; // start op
    r.sleb()?; // time
    let message = r.len()?;
    r.take(message)?;
    let others = r.len()?;
    for _ in 0..others {
        let actor = r.len()?;
        r.take(actor)?;
    }
    let columns = r.len()?;
    let mut specs = Vec::new();
    for _ in 0..columns {
        let spec = r.uleb()?;
        let len = r.len()?;
        specs.push((spec, len));
    }
    let mut ops = 0;
    for (spec, len) in specs {
        let data = r.take(len)?;
        let rows = column_rows(spec, data, max_ops)?;
        ops = ops.max(rows);
    }
    Ok(ops)
}

const TRUNCATED: &str = "it ends early";

/// Whether stored bytes are whole Automerge chunks, each with the checksum
/// its header states: a cheap test (one SHA-256 pass, no decoding) that a
/// snapshot was not damaged, before it is sent to a device that would fail
/// to load it.
pub(super) fn intact(bytes: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let mut r = Reader { bytes, at: 0 };
    if r.rest() == 0 {
        return false;
    }
    while r.rest() > 0 {
        let header = (|| -> Result<([u8; 4], u8, &[u8]), Refusal> {
            if r.take(4)? != MAGIC {
                return Err(Refusal::Corrupt(TRUNCATED));
            }
            let checksum: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
            let kind = r.byte()?;
            let len = r.len()?;
            Ok((checksum, kind, r.take(len)?))
        })();
        let Ok((checksum, kind, data)) = header else {
            return false;
        };
        let mut prefix = vec![kind];
        let mut n = data.len() as u64;
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                prefix.push(low);
                break;
            }
            prefix.push(low | 0x80);
        }
        let hash = Sha256::new()
            .chain_update(&prefix)
            .chain_update(data)
            .finalize();
        if hash[..4] != checksum {
            return false;
        }
    }
    true
}

/// Rows in one column, from its run lengths; more than `max` is refused.
fn column_rows(spec: u64, data: &[u8], max: u64) -> Result<u64, Refusal> {
    let mut r = Reader { bytes: data, at: 0 };
    let mut rows: u64 = 0;
    let mut add = |n: u64| {
        rows = rows.saturating_add(n);
        if rows > max {
            Err(Refusal::TooManyOps)
        } else {
            Ok(())
        }
    };
    match spec & 0b111 {
        // Boolean: alternating run lengths of false and true.
        4 => {
            while r.rest() > 0 {
                add(r.uleb()?)?;
            }
        }
        // Value: raw bytes whose layout the metadata column gives.
        7 => {}
        // Run-length encoded: Group, Actor, Integer, DeltaInteger,
        // String, ValueMetadata.
        kind => {
            let skip = |r: &mut Reader<'_>| -> Result<(), Refusal> {
                match kind {
                    3 => r.sleb().map(drop),
                    5 => {
                        let len = r.len()?;
                        r.take(len).map(drop)
                    }
                    _ => r.uleb().map(drop),
                }
            };
            while r.rest() > 0 {
                let run = r.sleb()?;
                if run > 0 {
                    add(run.unsigned_abs())?;
                    skip(&mut r)?;
                } else if run < 0 {
                    let literal = run.unsigned_abs();
                    add(literal)?;
                    for _ in 0..literal {
                        skip(&mut r)?;
                    }
                } else {
                    add(r.uleb()?)?;
                }
            }
        }
    }
    Ok(rows)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Refusal> {
        if n > self.rest() {
            return Err(Refusal::Corrupt(TRUNCATED));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, Refusal> {
        Ok(self.take(1)?[0])
    }

    fn uleb(&mut self) -> Result<u64, Refusal> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(Refusal::Corrupt(OVERLONG))?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Refusal::Corrupt(OVERLONG))
    }

    fn sleb(&mut self) -> Result<i64, Refusal> {
        let mut value: i64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= i64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(Refusal::Corrupt(OVERLONG))?;
            if b & 0x80 == 0 {
                if shift < 57 && b & 0x40 != 0 {
                    value |= -1i64 << (shift + 7);
                }
                return Ok(value);
            }
        }
        Err(Refusal::Corrupt(OVERLONG))
    }

    /// A length or count: never more than the bytes left could hold.
    fn len(&mut self) -> Result<usize, Refusal> {
        let n = self.uleb()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest())
            .ok_or(Refusal::Corrupt(TRUNCATED))
    }
}

const OVERLONG: &str = "a number in it is too long";

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::automerge::{AutoCommit, ObjType, ROOT, transaction::Transactable};

    fn change_with_text(chars: usize) -> sync_core::automerge::Change {
        let mut doc = AutoCommit::new();
        let text = doc.put_object(ROOT, "t", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, &"a".repeat(chars)).unwrap();
        doc.put(ROOT, "n", -5i64).unwrap();
        doc.get_last_local_change().unwrap().clone()
    }

    #[test]
    fn counts_the_ops_of_a_real_change() {
        let mut change = change_with_text(1000);
        let ops = inspect(change.raw_bytes(), 10_000).unwrap();
        assert_eq!(ops, change.len() as u64);
        assert_eq!(inspect(change.raw_bytes(), 100), Err(Refusal::TooManyOps));
        // Large changes compress; a compressed chunk is refused.
        let compressed = change.bytes().into_owned();
        assert_ne!(compressed, change.raw_bytes());
        assert_eq!(inspect(&compressed, 10_000), Err(Refusal::Compressed));
    }

    #[test]
    fn snapshots_are_checked_whole() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1).unwrap();
        let saved = doc.save();
        assert!(intact(&saved));
        assert!(!intact(&saved[..saved.len() - 1]));
        let mut flipped = saved.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(!intact(&flipped));
        assert!(!intact(&[]));
    }

    #[test]
    fn garbage_is_corrupt_never_a_panic() {
        let change = change_with_text(10);
        let bytes = change.raw_bytes();
        for cut in 0..bytes.len() {
            assert!(matches!(
                inspect(&bytes[..cut], 1000),
                Err(Refusal::Corrupt(_))
            ));
        }
        let mut huge = MAGIC.to_vec();
        huge.extend([0, 0, 0, 0, 1]);
        huge.extend([0xff; 12]);
        assert!(matches!(inspect(&huge, 1000), Err(Refusal::Corrupt(_))));
    }
}
