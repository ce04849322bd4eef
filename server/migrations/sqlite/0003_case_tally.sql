-- Case figures kept per org unit: for each unit, how many of its cases have
-- each category, class, status, level resolved and result. A county's
-- all-time figures then sum about a thousand units' rows instead of
-- grouping a hundred thousand cases. Overdue is not kept (it depends on
-- the clock), nor is the time reported (figures for a period are counted
-- from `proj_cases`).
--
-- Kept by triggers on `proj_cases`, so every write of a case row (a merge,
-- the bulk loader, `gridsync admin reindex`) changes the counts in the
-- same transaction, by exactly the row it removed or added. A missing
-- class, level or result is counted under ''.

CREATE TABLE case_tally (
    org_unit TEXT NOT NULL,
    -- `category`, `class`, `status`, `resolved_level` or `result`.
    dim      TEXT NOT NULL,
    value    TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (org_unit, dim, value)
);

CREATE TRIGGER case_tally_insert AFTER INSERT ON proj_cases
BEGIN
    INSERT INTO case_tally (org_unit, dim, value, n) VALUES
        (NEW.org_unit, 'category', NEW.category, 1),
        (NEW.org_unit, 'class', COALESCE(NEW.class, ''), 1),
        (NEW.org_unit, 'status', NEW.status, 1),
        (NEW.org_unit, 'resolved_level', COALESCE(NEW.resolved_level, ''), 1),
        (NEW.org_unit, 'result', COALESCE(NEW.result, ''), 1)
    ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER case_tally_delete AFTER DELETE ON proj_cases
BEGIN
    INSERT INTO case_tally (org_unit, dim, value, n) VALUES
        (OLD.org_unit, 'category', OLD.category, -1),
        (OLD.org_unit, 'class', COALESCE(OLD.class, ''), -1),
        (OLD.org_unit, 'status', OLD.status, -1),
        (OLD.org_unit, 'resolved_level', COALESCE(OLD.resolved_level, ''), -1),
        (OLD.org_unit, 'result', COALESCE(OLD.result, ''), -1)
    ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER case_tally_update AFTER UPDATE ON proj_cases
BEGIN
    INSERT INTO case_tally (org_unit, dim, value, n) VALUES
        (OLD.org_unit, 'category', OLD.category, -1),
        (OLD.org_unit, 'class', COALESCE(OLD.class, ''), -1),
        (OLD.org_unit, 'status', OLD.status, -1),
        (OLD.org_unit, 'resolved_level', COALESCE(OLD.resolved_level, ''), -1),
        (OLD.org_unit, 'result', COALESCE(OLD.result, ''), -1)
    ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = n + excluded.n;
    INSERT INTO case_tally (org_unit, dim, value, n) VALUES
        (NEW.org_unit, 'category', NEW.category, 1),
        (NEW.org_unit, 'class', COALESCE(NEW.class, ''), 1),
        (NEW.org_unit, 'status', NEW.status, 1),
        (NEW.org_unit, 'resolved_level', COALESCE(NEW.resolved_level, ''), 1),
        (NEW.org_unit, 'result', COALESCE(NEW.result, ''), 1)
    ON CONFLICT (org_unit, dim, value) DO UPDATE SET n = n + excluded.n;
END;

-- The counts of the cases already projected.
INSERT INTO case_tally (org_unit, dim, value, n)
SELECT org_unit, 'category', category, COUNT(*) FROM proj_cases GROUP BY 1, 3
UNION ALL
SELECT org_unit, 'class', COALESCE(class, ''), COUNT(*) FROM proj_cases GROUP BY 1, 3
UNION ALL
SELECT org_unit, 'status', status, COUNT(*) FROM proj_cases GROUP BY 1, 3
UNION ALL
SELECT org_unit, 'resolved_level', COALESCE(resolved_level, ''), COUNT(*)
FROM proj_cases GROUP BY 1, 3
UNION ALL
SELECT org_unit, 'result', COALESCE(result, ''), COUNT(*) FROM proj_cases GROUP BY 1, 3;
