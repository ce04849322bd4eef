-- The feed walks documents in seq order from a device's cursor and keeps
-- those in the user's scope. With the scope's columns in the index, a
-- document out of scope is passed over from the index alone, without
-- reading its row (and its snapshot): in a rush, most documents changed
-- since a cursor are other grids'.
CREATE INDEX documents_seq_scope ON documents (seq, org_unit, kind, reporter, assignee);
DROP INDEX documents_seq;
