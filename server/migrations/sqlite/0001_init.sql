-- gridsync schema, SQLite. Never edit a migration that has shipped: add one.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    org_unit      TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE devices (
    id                 TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id),
    name               TEXT NOT NULL,
    refresh_token_hash TEXT NOT NULL UNIQUE,
    created_at         INTEGER NOT NULL,
    last_seen_at       INTEGER,
    revoked_at         INTEGER
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    private_der BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

-- One row per record document: the latest merged snapshot and where it
-- stands in the change feed.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    org_unit     TEXT NOT NULL,
    snapshot     BLOB NOT NULL,
    heads        BLOB NOT NULL,
    first_seq    INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    change_count INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX documents_seq ON documents (seq);
CREATE INDEX documents_org_unit ON documents (org_unit, kind);

-- Every Automerge change ever accepted, append-only. `seq` orders the feed
-- devices follow with their cursor.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id      TEXT NOT NULL REFERENCES documents (id) DEFERRABLE INITIALLY DEFERRED,
    hash        BLOB NOT NULL,
    bytes       BLOB NOT NULL,
    actor       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX changes_doc ON changes (doc_id, seq);
