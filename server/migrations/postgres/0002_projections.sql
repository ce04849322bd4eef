-- Projections: queryable rows derived from each merged document, written in
-- the same transaction as the document's changes (so a query never sees a
-- half-merged record) and recomputed from the documents by
-- `gridsync admin reindex`. Never edit a migration that has shipped: add one.
--
-- Scope is decided on these rows exactly as on `documents`: by org unit,
-- and for cases also by reporter and assignee. Indexes lead with what a
-- supervisor narrows by first (the org unit), then what they sort by.

CREATE TABLE proj_households (
    id           TEXT PRIMARY KEY NOT NULL,
    org_unit     TEXT NOT NULL,
    building     TEXT NOT NULL,
    unit         TEXT NOT NULL,
    room         TEXT NOT NULL,
    head_id      TEXT NOT NULL,
    head_name    TEXT NOT NULL,
    member_count BIGINT NOT NULL,
    -- Names and address, lowercased, for substring search.
    search       TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX proj_households_unit ON proj_households (org_unit, id);

CREATE TABLE proj_members (
    household_id TEXT NOT NULL,
    position     BIGINT NOT NULL,
    member_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    id_number    TEXT NOT NULL,
    sex          TEXT NOT NULL,
    birth_date   TEXT NOT NULL,
    relation     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    residence    TEXT NOT NULL,
    PRIMARY KEY (household_id, position)
);
CREATE INDEX proj_members_residence ON proj_members (residence, household_id);

-- Care tags from household documents, and special-population categories
-- from sensitive documents (`sensitive` true: shown only to roles that
-- receive sensitive details).
CREATE TABLE proj_tags (
    doc_id       TEXT NOT NULL,
    household_id TEXT NOT NULL,
    tag          TEXT NOT NULL,
    sensitive    BOOLEAN NOT NULL,
    PRIMARY KEY (doc_id, tag)
);
CREATE INDEX proj_tags_tag ON proj_tags (tag, household_id);
-- (household_id, tag): whether one household has a tag is one index probe.
CREATE INDEX proj_tags_household ON proj_tags (household_id, tag);

CREATE TABLE proj_visits (
    id           TEXT PRIMARY KEY NOT NULL,
    household_id TEXT NOT NULL,
    org_unit     TEXT NOT NULL,
    worker       TEXT NOT NULL,
    visited_at   BIGINT NOT NULL,
    follow_up    BOOLEAN NOT NULL,
    findings     TEXT NOT NULL
);
CREATE INDEX proj_visits_household ON proj_visits (household_id, visited_at);
CREATE INDEX proj_visits_unit ON proj_visits (org_unit, visited_at);
CREATE INDEX proj_visits_worker ON proj_visits (worker, visited_at);

-- A case with the state folded from its events. `due_at` is set while the
-- case is open, from the deadlines configured when it was last written.
CREATE TABLE proj_cases (
    id             TEXT PRIMARY KEY NOT NULL,
    org_unit       TEXT NOT NULL,
    category       TEXT NOT NULL,
    title          TEXT NOT NULL,
    household_id   TEXT NOT NULL,
    location       TEXT NOT NULL,
    reporter       TEXT NOT NULL,
    reported_at    BIGINT NOT NULL,
    status         TEXT NOT NULL,
    class          TEXT,
    level          TEXT NOT NULL,
    assignee       TEXT,
    due_at         BIGINT,
    resolved_at    BIGINT,
    resolved_level TEXT,
    result         TEXT,
    supervised     BOOLEAN NOT NULL,
    not_applied    BIGINT NOT NULL
);
CREATE INDEX proj_cases_unit ON proj_cases (org_unit, reported_at);
-- Overdue cases of a unit: one range per unit of the subtree, not every
-- overdue case of the county filtered.
CREATE INDEX proj_cases_due ON proj_cases (org_unit, due_at);
CREATE INDEX proj_cases_assignee ON proj_cases (assignee);
CREATE INDEX proj_cases_reporter ON proj_cases (reporter);

CREATE TABLE proj_case_events (
    case_id  TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    author   TEXT NOT NULL,
    device   TEXT NOT NULL,
    at       BIGINT NOT NULL,
    role     TEXT NOT NULL,
    applied  BOOLEAN NOT NULL,
    reason   TEXT,
    PRIMARY KEY (case_id, position)
);

-- Fields two people wrote concurrently, still unresolved: every value (JSON)
-- with the actor that wrote it, and the one shown.
CREATE TABLE proj_conflicts (
    doc_id TEXT NOT NULL,
    path   TEXT NOT NULL,
    shown  TEXT NOT NULL,
    vals   TEXT NOT NULL,
    PRIMARY KEY (doc_id, path)
);
