//! Where a [`Replica`](crate::Replica) keeps its documents between runs: in
//! memory for tests and short-lived clients, or in a directory on the phone.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use automerge::{ActorId, ChangeHash};

use crate::id::RecordId;

/// Everything a replica persists.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The actor id this replica writes with, once chosen.
    pub actor: Option<ActorId>,
    /// The server's cursor from the last applied response.
    pub cursor: Option<Vec<u8>>,
    /// Each document: its saved bytes and the heads the server acknowledged.
    pub docs: BTreeMap<RecordId, StoredDoc>,
    /// Local edits the server refused, kept for the user.
    pub rejected: Vec<Rejected>,
    /// Attached files waiting to be uploaded, oldest first.
    pub uploads: Vec<Upload>,
}

/// An attached file waiting to be uploaded (`PUT /v1/attachments/{sha256}`).
/// Its bytes are in the store ([`ReplicaStore::read_file`]); it is sent
/// once the record that references it has reached the server, since the
/// server takes only files a record it holds names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Upload {
    /// The file's SHA-256, lowercase hex.
    pub sha256: String,
    /// Its media type, as the record's reference says.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The record that references it.
    pub record: RecordId,
}

/// Local edits the server refused (or that left the device's scope before
/// they were sent): kept on the device so that nothing typed is lost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// The document.
    pub id: RecordId,
    /// The server's error code (`forbidden`, `unregistered_actor`,
    /// `out_of_scope`).
    pub code: String,
    /// The server's reason.
    pub message: String,
    /// The refused Automerge changes.
    pub changes: Vec<serde_bytes::ByteBuf>,
}

/// One persisted document.
#[derive(Debug, Clone, Default)]
pub struct StoredDoc {
    /// `Automerge::save()` output.
    pub bytes: Vec<u8>,
    /// The server heads acknowledged for this document (empty: none yet).
    pub acked: Vec<ChangeHash>,
}

/// Durable storage for a replica. Each call must be durable when it returns:
/// the replica relies on it to never lose a local edit.
pub trait ReplicaStore {
    /// Reads everything stored.
    fn load(&mut self) -> io::Result<Stored>;
    /// Stores the actor id, once.
    fn put_actor(&mut self, actor: &ActorId) -> io::Result<()>;
    /// Replaces one document and its acknowledged heads.
    fn put_doc(&mut self, id: &RecordId, doc: &StoredDoc) -> io::Result<()>;
    /// Replaces the cursor. Called only after every document of the response
    /// that produced it is stored.
    fn put_cursor(&mut self, cursor: &[u8]) -> io::Result<()>;
    /// Removes a document.
    fn remove_doc(&mut self, id: &RecordId) -> io::Result<()>;
    /// Replaces the list of refused edits.
    fn put_rejected(&mut self, rejected: &[Rejected]) -> io::Result<()>;
    /// Replaces the upload queue.
    fn put_uploads(&mut self, uploads: &[Upload]) -> io::Result<()>;
    /// Keeps an attached file's bytes under their SHA-256 (lowercase hex).
    fn put_file(&mut self, sha256: &str, bytes: &[u8]) -> io::Result<()>;
    /// An attached file's bytes, if this store holds them. A store that
    /// keeps files where only its host reads them (a browser's IndexedDB)
    /// answers `None`, and its host uploads them itself.
    fn read_file(&mut self, sha256: &str) -> io::Result<Option<Vec<u8>>>;
}

/// A store in memory. Cloning it is how a test "restarts" a phone.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Stored, BTreeMap<String, Vec<u8>>);

impl ReplicaStore for MemoryStore {
    fn load(&mut self) -> io::Result<Stored> {
        Ok(self.0.clone())
    }

    fn put_actor(&mut self, actor: &ActorId) -> io::Result<()> {
        self.0.actor = Some(actor.clone());
        Ok(())
    }

    fn put_doc(&mut self, id: &RecordId, doc: &StoredDoc) -> io::Result<()> {
        self.0.docs.insert(id.clone(), doc.clone());
        Ok(())
    }

    fn put_cursor(&mut self, cursor: &[u8]) -> io::Result<()> {
        self.0.cursor = Some(cursor.to_vec());
        Ok(())
    }

    fn remove_doc(&mut self, id: &RecordId) -> io::Result<()> {
        self.0.docs.remove(id);
        Ok(())
    }

    fn put_rejected(&mut self, rejected: &[Rejected]) -> io::Result<()> {
        self.0.rejected = rejected.to_vec();
        Ok(())
    }

    fn put_uploads(&mut self, uploads: &[Upload]) -> io::Result<()> {
        self.0.uploads = uploads.to_vec();
        Ok(())
    }

    fn put_file(&mut self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        self.1.insert(sha256.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn read_file(&mut self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.1.get(sha256).cloned())
    }
}

/// A store in a directory: `actor`, `cursor`, `rejected.cbor`,
/// `uploads.cbor`, per document `<id>.automerge` (saved document) and
/// `<id>.acked` (heads), and attached files as `files/<sha256>`. Every file is
/// written to a temporary name, flushed to disk, then renamed over the old
/// one, so a crash leaves either the old or the new version.
///
/// A document file is always written before its `.acked` file and all
/// documents before the cursor: after a crash the replica may re-send or
/// re-fetch some changes, which is harmless, but never believes it holds
/// something it does not.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

const DOC_SUFFIX: &str = ".automerge";
const ACKED_SUFFIX: &str = ".acked";
const REJECTED: &str = "rejected.cbor";
const UPLOADS: &str = "uploads.cbor";
const FILES: &str = "files";

impl FileStore {
    /// Opens (creating if needed) a store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn read_cbor<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> io::Result<T> {
        match Self::read_optional(&self.dir.join(name))? {
            Some(bytes) => ciborium::from_reader(&bytes[..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            None => Ok(T::default()),
        }
    }

    fn write_cbor<T: serde::Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).expect("writing to a Vec cannot fail");
        self.write_atomic(name, &bytes)
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join(name))
    }

    fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl ReplicaStore for FileStore {
    fn load(&mut self) -> io::Result<Stored> {
        let mut stored = Stored {
            actor: Self::read_optional(&self.dir.join("actor"))?.map(ActorId::from),
            cursor: Self::read_optional(&self.dir.join("cursor"))?,
            docs: BTreeMap::new(),
            rejected: self.read_cbor(REJECTED)?,
            uploads: self.read_cbor(UPLOADS)?,
        };
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(DOC_SUFFIX))
                .and_then(|n| n.parse::<RecordId>().ok())
            else {
                continue;
            };
            let bytes = fs::read(self.dir.join(&name))?;
            let acked = Self::read_optional(&self.dir.join(format!("{id}{ACKED_SUFFIX}")))?
                .unwrap_or_default()
                .chunks_exact(32)
                .map(|c| ChangeHash(c.try_into().expect("chunk of 32")))
                .collect();
            stored.docs.insert(id, StoredDoc { bytes, acked });
        }
        Ok(stored)
    }

    fn put_actor(&mut self, actor: &ActorId) -> io::Result<()> {
        self.write_atomic("actor", actor.to_bytes())
    }

    fn put_doc(&mut self, id: &RecordId, doc: &StoredDoc) -> io::Result<()> {
        self.write_atomic(&format!("{id}{DOC_SUFFIX}"), &doc.bytes)?;
        let acked: Vec<u8> = doc.acked.iter().flat_map(|h| h.0).collect();
        self.write_atomic(&format!("{id}{ACKED_SUFFIX}"), &acked)
    }

    fn put_cursor(&mut self, cursor: &[u8]) -> io::Result<()> {
        self.write_atomic("cursor", cursor)
    }

    fn remove_doc(&mut self, id: &RecordId) -> io::Result<()> {
        for suffix in [ACKED_SUFFIX, DOC_SUFFIX] {
            match fs::remove_file(self.dir.join(format!("{id}{suffix}"))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn put_rejected(&mut self, rejected: &[Rejected]) -> io::Result<()> {
        self.write_cbor(REJECTED, &rejected)
    }

    fn put_uploads(&mut self, uploads: &[Upload]) -> io::Result<()> {
        self.write_cbor(UPLOADS, &uploads)
    }

    fn put_file(&mut self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(self.dir.join(FILES))?;
        self.write_atomic(&format!("{FILES}/{sha256}"), bytes)
    }

    fn read_file(&mut self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        Self::read_optional(&self.dir.join(FILES).join(sha256))
    }
}
