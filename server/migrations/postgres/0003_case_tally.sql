-- Case figures kept per org unit: for each unit, how many of its cases have
-- each category, class, status, level resolved and result. A county's
-- all-time figures then sum about a thousand units' rows instead of
-- grouping a hundred thousand cases. Overdue is not kept (it depends on
-- the clock), nor is the time reported (figures for a period are counted
-- from `proj_cases`).
--
-- Kept by triggers on `proj_cases`, so every write of a case row (a merge,
-- the bulk loader, `gridsync admin reindex`) changes the counts in the
-- same transaction, by exactly the rows it removed and added. A missing
-- class, level or result is counted under ''.

CREATE TABLE case_tally (
    org_unit TEXT NOT NULL,
    -- `category`, `class`, `status`, `resolved_level` or `result`.
    dim      TEXT NOT NULL,
    value    TEXT NOT NULL,
    n        BIGINT NOT NULL,
    PRIMARY KEY (org_unit, dim, value)
);

-- One statement-level trigger per event: the rows a statement removed
-- (`gone`) are subtracted and those it added (`came`) are added, one
-- upsert each for the whole statement.
CREATE FUNCTION case_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO case_tally (org_unit, dim, value, n)
        SELECT g.org_unit, d.dim, d.value, -COUNT(*)
        FROM gone g CROSS JOIN LATERAL (VALUES
            ('category', g.category),
            ('class', COALESCE(g.class, '')),
            ('status', g.status),
            ('resolved_level', COALESCE(g.resolved_level, '')),
            ('result', COALESCE(g.result, ''))
        ) AS d (dim, value)
        GROUP BY g.org_unit, d.dim, d.value
        ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = case_tally.n + excluded.n;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO case_tally (org_unit, dim, value, n)
        SELECT c.org_unit, d.dim, d.value, COUNT(*)
        FROM came c CROSS JOIN LATERAL (VALUES
            ('category', c.category),
            ('class', COALESCE(c.class, '')),
            ('status', c.status),
            ('resolved_level', COALESCE(c.resolved_level, '')),
            ('result', COALESCE(c.result, ''))
        ) AS d (dim, value)
        GROUP BY c.org_unit, d.dim, d.value
        ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = case_tally.n + excluded.n;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER case_tally_insert AFTER INSERT ON proj_cases
    REFERENCING NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION case_tally_apply();
CREATE TRIGGER case_tally_delete AFTER DELETE ON proj_cases
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION case_tally_apply();
CREATE TRIGGER case_tally_update AFTER UPDATE ON proj_cases
    REFERENCING OLD TABLE AS gone NEW TABLE AS came
    FOR EACH STATEMENT EXECUTE FUNCTION case_tally_apply();

-- The counts of the cases already projected.
INSERT INTO case_tally (org_unit, dim, value, n)
SELECT c.org_unit, d.dim, d.value, COUNT(*)
FROM proj_cases c CROSS JOIN LATERAL (VALUES
    ('category', c.category),
    ('class', COALESCE(c.class, '')),
    ('status', c.status),
    ('resolved_level', COALESCE(c.resolved_level, '')),
    ('result', COALESCE(c.result, ''))
) AS d (dim, value)
GROUP BY c.org_unit, d.dim, d.value;
