-- Indexes for the console's terminal search (termwatch/web/search.py).
-- Ids by prefix, through a pattern index that works whatever the database collation.
CREATE INDEX terminals_tid_prefix ON terminals (lower(tid) text_pattern_ops);

-- Words of id, name, address and city, matched by word prefix ("Тверская 12", "Каз Баум"):
-- a full-text index with the 'simple' configuration (no stemming, no stop words).
CREATE INDEX terminals_search_words ON terminals
    USING gin (to_tsvector('simple', lower(tid || ' ' || name || ' ' || address || ' ' || city)));

-- Fragments anywhere in those words, for a search the word index finds nothing for:
-- a trigram index. pg_trgm ships with PostgreSQL's contrib package and is trusted (a
-- database owner may create it); when it is missing or may not be created, that fallback
-- scans the registry.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm may not be created here; fragment search scans the registry';
            RETURN;
        END;
        CREATE INDEX terminals_search_trgm ON terminals
            USING gin (lower(tid || ' ' || name || ' ' || address || ' ' || city) gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available; fragment search scans the registry';
    END IF;
END
$$;
