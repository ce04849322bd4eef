-- Files attached to records (photos, scanned papers). Records hold
-- references by SHA-256; the bytes live in a blob store (a directory, S3,
-- or the table below), stored once however many records name them.

-- Every reference a record holds: a projection part, rewritten with the
-- record. `event_id` is empty for a file attached to the record itself.
CREATE TABLE proj_attachments (
    doc_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    event_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    name TEXT NOT NULL,
    caption TEXT NOT NULL,
    author TEXT NOT NULL,
    device TEXT NOT NULL,
    taken_at BIGINT NOT NULL,
    location TEXT NOT NULL,
    PRIMARY KEY (doc_id, position)
);
CREATE INDEX proj_attachments_sha ON proj_attachments (sha256);

-- Files received whole and verified. `media_type` is what the bytes are;
-- `stored_size` and `thumb_size` what the blob store holds for it (the
-- file without its metadata, and a thumbnail, 0 for none).
-- `unreferenced_since` is set by the sweep when no record names the file,
-- cleared when one does again; past the retention the file is deleted.
CREATE TABLE attachments (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    stored_size BIGINT NOT NULL,
    thumb_size BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    unreferenced_since BIGINT
);

-- Uploads under way, one per file and device, and the bytes received so
-- far, in parts as they arrived: a dropped connection keeps what came.
-- Parts live in the database whatever the blob store is, so that any
-- instance resumes an upload; only whole, verified files go to the store.
CREATE TABLE attachment_uploads (
    sha256 TEXT NOT NULL,
    device_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    received BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, device_id)
);
CREATE TABLE attachment_parts (
    sha256 TEXT NOT NULL,
    device_id TEXT NOT NULL,
    first BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (sha256, device_id, first)
);

-- Bytes received per device per day (days since the epoch, UTC), for the
-- daily limit.
CREATE TABLE attachment_quota (
    device_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (device_id, day)
);

-- The blob store when it is the database (`attachment_store = "database"`).
CREATE TABLE attachment_blobs (
    key TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL
);
