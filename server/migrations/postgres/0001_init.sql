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
    -- Bumped whenever the user's role or org units change: devices then
    -- rescan what they may hold.
    scope_version BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- The org-unit tree: county > township > community > grid. `path` is the
-- ids from the root down, each followed by '/', so a subtree is a prefix.
CREATE TABLE org_units (
    id         TEXT PRIMARY KEY,
    parent_id  TEXT REFERENCES org_units (id),
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    path       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- The org units a user is bound to; their area is the subtrees below.
CREATE TABLE user_units (
    user_id     TEXT NOT NULL REFERENCES users (id),
    org_unit_id TEXT NOT NULL REFERENCES org_units (id),
    PRIMARY KEY (user_id, org_unit_id)
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

-- The Automerge actor ids each device writes with. A change is accepted
-- only from an actor registered to the device that sends it.
CREATE TABLE device_actors (
    actor         TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL REFERENCES devices (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    registered_at BIGINT NOT NULL
);
CREATE INDEX device_actors_device ON device_actors (device_id);

-- The documents each device holds, as far as the server has sent them:
-- what to send whole, and what to tell it to drop when its scope shrinks.
-- `round` is the response that sent (or dropped) the document; a device
-- confirms a response by presenting its cursor, so rows from a response it
-- never received do not count.
CREATE TABLE device_docs (
    device_id TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    round     BIGINT NOT NULL,
    dropped   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (device_id, doc_id)
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
    reporter     TEXT,
    assignee     TEXT,
    snapshot     BYTEA NOT NULL,
    heads        BYTEA NOT NULL,
    first_seq    BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    change_count BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX documents_seq ON documents (seq);
CREATE INDEX documents_org_unit ON documents (org_unit, kind);
CREATE INDEX documents_reporter ON documents (reporter);
CREATE INDEX documents_assignee ON documents (assignee);

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

-- Changes refused by the policy, with everything that depends on them:
-- kept for an admin to approve (merge) or discard, never sent to devices.
CREATE TABLE quarantine (
    id          TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    hash        BYTEA NOT NULL,
    bytes       BYTEA NOT NULL,
    deps        BYTEA NOT NULL,
    actor       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    message     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    decided_by  TEXT,
    decided_at  BIGINT,
    UNIQUE (doc_id, hash)
);
CREATE INDEX quarantine_status ON quarantine (status, received_at);

-- Who read sensitive details, changed roles, revoked devices, decided on
-- quarantined changes.
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    user_id   TEXT NOT NULL,
    device_id TEXT,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
