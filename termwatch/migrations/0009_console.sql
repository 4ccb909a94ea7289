-- The console's search by the digits of an id ("34" finds T-000034 first): the number an
-- id ends with, without its leading zeros.
CREATE INDEX terminals_tid_number ON terminals ((ltrim(substring(tid from '[0-9]+$'), '0')));

-- The console's start page: unresolved incidents by severity (a partial index stays small).
CREATE INDEX incidents_unresolved ON incidents (severity, opened_at DESC) WHERE status <> 'resolved';
