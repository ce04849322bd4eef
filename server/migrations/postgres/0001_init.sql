-- gridsync schema, PostgreSQL. Never edit a migration that has shipped: add one.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    org_unit      TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id),
    name               TEXT NOT NULL,
    refresh_token_hash TEXT NOT NULL UNIQUE,
    created_at         BIGINT NOT NULL,
    last_seen_at       BIGINT,
    revoked_at         BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- One row per record document: the latest merged snapshot and where it
-- stands in the change feed.
CREATE TABLE documents (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    org_unit     TEXT NOT NULL,
    snapshot     BYTEA NOT NULL,
    heads        BYTEA NOT NULL,
    first_seq    BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    change_count BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX documents_seq ON documents (seq);
CREATE INDEX documents_org_unit ON documents (org_unit, kind);

-- Every Automerge change ever accepted, append-only. `seq` orders the feed
-- devices follow with their cursor.
CREATE TABLE changes (
    seq         BIGSERIAL PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    bytes       BYTEA NOT NULL,
    actor       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (doc_id, hash)
);
CREATE INDEX changes_doc ON changes (doc_id, seq);
