//! The sync wire format: one request and one response per round, each
//! carrying many documents, encoded as CBOR (RFC 8949).
//!
//! The exact layout is specified in `api-spec/sync-protocol.md`; the types
//! here are that specification in code. A round is idempotent: applying the
//! same Automerge changes twice is a no-op on both sides.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::id::RecordId;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The media type of request and response bodies.
pub const CONTENT_TYPE: &str = "application/vnd.gridsync.sync+cbor";

/// What a device sends in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The cursor from the last response this device applied, absent on a
    /// device that has never synced. Opaque to the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<ByteBuf>,
    /// The Automerge actor ids this device writes with (16 bytes each,
    /// usually one). The server registers each to the device on first sight
    /// and accepts changes only from actors registered to the device that
    /// sends them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<ByteBuf>,
    /// Documents with changes the server has not acknowledged.
    #[serde(default)]
    pub docs: Vec<DocPush>,
    /// Fallback: Automerge sync-protocol messages, for documents whose heads
    /// the device cannot state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub am_sync: Vec<AmSync>,
}

/// One document's changes going up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocPush {
    /// The record id.
    pub id: RecordId,
    /// The device's heads for this document, after its changes.
    pub heads: Heads,
    /// Automerge changes the server has not acknowledged, each in its
    /// binary change-chunk form, in causal order.
    pub changes: Vec<ByteBuf>,
}

/// What the server answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Protocol version.
    pub v: u32,
    /// Send this back in the next request.
    pub cursor: ByteBuf,
    /// True when the server has more to send: run another round at once.
    #[serde(default)]
    pub more: bool,
    /// True when the server did not recognise the request's cursor (its
    /// database was replaced or restored from a backup) and is sending
    /// everything again: the device must treat every document as
    /// unacknowledged except those this pass returns heads for, and offer
    /// the rest again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Documents with changes the device lacks.
    #[serde(default)]
    pub docs: Vec<DocPull>,
    /// Documents whose changes were not accepted, and why.
    #[serde(default)]
    pub errors: Vec<DocError>,
    /// Documents the device must no longer hold: they left its scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<RecordId>,
    /// Automerge sync-protocol replies to [`SyncRequest::am_sync`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub am_sync: Vec<AmSync>,
}

/// One document coming down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocPull {
    /// The record id.
    pub id: RecordId,
    /// The server's heads after this round. Everything in their history is
    /// committed on the server: this is the acknowledgement.
    pub heads: Heads,
    /// Chunks to load in order with Automerge's `load_incremental`: either a
    /// whole saved document or single changes. Empty when the device already
    /// has everything.
    pub chunks: Vec<ByteBuf>,
}

/// A document the server did not accept in this round. Nothing of it was
/// stored; the rest of the batch was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocError {
    /// The record id.
    pub id: RecordId,
    /// Stable machine-readable code, e.g. `corrupt_change`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The change at fault, when one change is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ByteBuf>,
}

/// One Automerge sync-protocol message for one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmSync {
    /// The record id.
    pub id: RecordId,
    /// The encoded `automerge::sync::Message`.
    pub message: ByteBuf,
}

/// A set of change hashes, sent as one byte string: the 32-byte hashes
/// concatenated, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heads(pub Vec<ChangeHash>);

impl Serialize for Heads {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let mut bytes = Vec::with_capacity(sorted.len() * 32);
        for hash in &sorted {
            bytes.extend_from_slice(&hash.0);
        }
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Heads {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = ByteBuf::deserialize(deserializer)?;
        if bytes.len() % 32 != 0 {
            return Err(serde::de::Error::custom(
                "heads must be a whole number of 32-byte hashes",
            ));
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|c| ChangeHash(c.try_into().expect("chunk of 32")))
            .collect();
        Ok(Heads(hashes))
    }
}

/// A body that is not a sync message this crate can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not CBOR, or not the shape of a sync message.
    #[error("not a sync message: {0}")]
    Malformed(String),
    /// A version this crate does not speak.
    #[error("unsupported sync protocol version {0} (this server speaks {PROTOCOL_VERSION})")]
    Version(u32),
}

/// A CBOR decoding error in words for people: never the decoder's Debug
/// output, which names its internals.
fn describe<E>(error: ciborium::de::Error<E>) -> String {
    use ciborium::de::Error;
    match error {
        Error::Io(_) => "the message ends early or cannot be read".into(),
        Error::Syntax(at) => format!("not valid CBOR (at byte {at})"),
        Error::Semantic(Some(at), what) => format!("{what} (at byte {at})"),
        Error::Semantic(None, what) => what,
        Error::RecursionLimitExceeded => "the message is nested too deeply".into(),
    }
}

/// Reads only the `v` field of a message.
fn check_version(bytes: &[u8]) -> Result<(), DecodeError> {
    #[derive(Deserialize)]
    struct Versioned {
        v: u32,
    }
    let versioned: Versioned =
        ciborium::from_reader(bytes).map_err(|e| DecodeError::Malformed(describe(e)))?;
    if versioned.v != PROTOCOL_VERSION {
        return Err(DecodeError::Version(versioned.v));
    }
    Ok(())
}

macro_rules! cbor_message {
    ($ty:ty) => {
        impl $ty {
            /// Encodes the message as CBOR.
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                ciborium::into_writer(self, &mut out).expect("writing to a Vec cannot fail");
                out
            }

            /// Decodes a CBOR message: exactly one CBOR item, of this
            /// protocol version (checked first, so that a message of
            /// another version is named as such whatever its shape).
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                check_version(bytes)?;
                let mut rest = bytes;
                let message: Self = ciborium::from_reader(&mut rest)
                    .map_err(|e| DecodeError::Malformed(describe(e)))?;
                if !rest.is_empty() {
                    return Err(DecodeError::Malformed(format!(
                        "{} bytes after the end of the message",
                        rest.len()
                    )));
                }
                Ok(message)
            }
        }
    };
}

cbor_message!(SyncRequest);
cbor_message!(SyncResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RecordKind;

    #[test]
    fn request_round_trips() {
        let request = SyncRequest {
            v: PROTOCOL_VERSION,
            cursor: Some(ByteBuf::from(vec![1, 2, 3])),
            actors: vec![ByteBuf::from(vec![7; 16])],
            docs: vec![DocPush {
                id: RecordId::new(RecordKind::Household),
                heads: Heads(vec![ChangeHash([7; 32]), ChangeHash([9; 32])]),
                changes: vec![ByteBuf::from(vec![0x85, 0x6f, 0x4a, 0x83])],
            }],
            am_sync: vec![],
        };
        assert_eq!(SyncRequest::decode(&request.encode()).unwrap(), request);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let request = SyncRequest {
            v: 99,
            ..Default::default()
        };
        assert!(matches!(
            SyncRequest::decode(&request.encode()),
            Err(DecodeError::Version(99))
        ));
        assert!(matches!(
            SyncRequest::decode(b"{\"v\":1}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(SyncResponse::decode(&[]).is_err());
        // Messages for people, not the decoder's internals.
        for bad in [&b""[..], &[0xa1, 0x61, 0x76][..], &[0xa0][..], &[0xff][..]] {
            let message = SyncRequest::decode(bad).unwrap_err().to_string();
            assert!(
                !message.contains("Semantic")
                    && !message.contains("Io(")
                    && !message.contains("kind:"),
                "{message}"
            );
        }

        // A future version is named as such even when its shape differs.
        #[derive(Serialize)]
        struct Future {
            v: u32,
            docs: String,
        }
        let mut future = Vec::new();
        ciborium::into_writer(
            &Future {
                v: 2,
                docs: "?".into(),
            },
            &mut future,
        )
        .unwrap();
        assert!(matches!(
            SyncRequest::decode(&future),
            Err(DecodeError::Version(2))
        ));

        let mut trailing = SyncRequest {
            v: PROTOCOL_VERSION,
            ..Default::default()
        }
        .encode();
        trailing.push(0);
        assert!(matches!(
            SyncRequest::decode(&trailing),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn heads_are_sent_sorted() {
        let heads = Heads(vec![ChangeHash([9; 32]), ChangeHash([1; 32])]);
        let mut out = Vec::new();
        ciborium::into_writer(&heads, &mut out).unwrap();
        let back: Heads = ciborium::from_reader(&out[..]).unwrap();
        assert_eq!(back.0, vec![ChangeHash([1; 32]), ChangeHash([9; 32])]);
    }

    #[test]
    fn heads_must_be_whole_hashes() {
        #[derive(Serialize)]
        struct Doc {
            id: String,
            heads: ByteBuf,
            changes: Vec<ByteBuf>,
        }
        #[derive(Serialize)]
        struct Bad {
            v: u32,
            docs: Vec<Doc>,
        }
        let doc = |heads: usize| Doc {
            id: RecordId::new(RecordKind::Case).to_string(),
            heads: ByteBuf::from(vec![0; heads]),
            changes: vec![],
        };
        let mut good = Vec::new();
        ciborium::into_writer(
            &Bad {
                v: 1,
                docs: vec![doc(64)],
            },
            &mut good,
        )
        .unwrap();
        assert_eq!(SyncRequest::decode(&good).unwrap().docs[0].heads.0.len(), 2);
        let mut out = Vec::new();
        let bad = Bad {
            v: 1,
            docs: vec![doc(31)],
        };
        ciborium::into_writer(&bad, &mut out).unwrap();
        assert!(SyncRequest::decode(&out).is_err());
    }
}
