-- Audit entries name the org units they concern; refresh tokens expire
-- and rotate. Never edit a migration that has shipped: add one.

-- The org units each audit entry concerns: an admin reads an entry when
-- one of them lies in their area. An entry with none (a new signing key)
-- concerns the whole tree, and only admins bound to a root unit read it.
CREATE TABLE audit_units (
    audit_id BIGINT NOT NULL REFERENCES audit (id),
    org_unit TEXT NOT NULL,
    PRIMARY KEY (audit_id, org_unit)
);
CREATE INDEX audit_units_unit ON audit_units (org_unit, audit_id);

-- Entries written before: the unit of the record, org unit, user or
-- device they name; for a record the server does not hold, the units of
-- the user who acted.
INSERT INTO audit_units (audit_id, org_unit)
SELECT a.id, d.org_unit FROM audit a JOIN documents d ON d.id = a.target
UNION
SELECT a.id, o.id FROM audit a JOIN org_units o ON o.id = a.target
UNION
SELECT a.id, uu.org_unit_id FROM audit a JOIN user_units uu ON uu.user_id = a.target
UNION
SELECT a.id, uu.org_unit_id FROM audit a
    JOIN devices dv ON dv.id = a.target
    JOIN user_units uu ON uu.user_id = dv.user_id
UNION
SELECT a.id, uu.org_unit_id FROM audit a JOIN user_units uu ON uu.user_id = a.user_id
    WHERE a.action IN ('quarantine', 'quarantine_approved', 'quarantine_discarded', 'read_sensitive')
      AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = a.target);

-- When the device's current refresh token was issued; NULL: at sign-in
-- (`created_at`). A token is refused once `refresh_token_ttl_secs` passed.
ALTER TABLE devices ADD COLUMN refresh_issued_at BIGINT;

-- Refresh tokens replaced by a newer one, kept (as hashes) while they
-- could still be valid: one presented again means that two parties hold
-- the device's tokens, and the device is revoked.
CREATE TABLE retired_refresh_tokens (
    hash       TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices (id),
    retired_at BIGINT NOT NULL
);
CREATE INDEX retired_refresh_tokens_device ON retired_refresh_tokens (device_id, retired_at);
CREATE INDEX retired_refresh_tokens_at ON retired_refresh_tokens (retired_at);
