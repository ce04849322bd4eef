-- The feed walks documents in seq order from a device's cursor and keeps
-- those in the user's scope. With the scope's columns in the index, a
-- document out of scope is passed over from the index alone (where the
-- table's visibility map allows), without reading its row.
CREATE INDEX documents_seq_scope ON documents (seq) INCLUDE (org_unit, kind, reporter, assignee);
DROP INDEX documents_seq;
