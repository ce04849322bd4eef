-- A user whose area is a few org units (a grid worker, a community's
-- staff) has the feed read through the documents of those units since the
-- cursor, one range of this index each, instead of a walk over every
-- document written since the cursor: in a county of a thousand grids that
-- walk passes over everyone else's documents, more of them the more phones
-- sync. Nothing read the index on (org_unit, kind) it replaces.
CREATE INDEX documents_unit_seq ON documents (org_unit, seq);
DROP INDEX documents_org_unit;
