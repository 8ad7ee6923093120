-- The rows of a CSV import, one row per "Subscriptions Imported" log record (a chunk of the
-- file), zlib-compressed JSON: ``payload`` the rows (normalized identifiers, traits, changes)
-- for profiles, ``changes`` the same changes flat ([contact, channel, group, status]) for
-- consent's set-based SQL. The log record stays small (every processor and export reads it).
CREATE TABLE import_batches (
    event_id TEXT PRIMARY KEY,
    import_key TEXT NOT NULL,
    first_row {{bigint}} NOT NULL,
    last_row {{bigint}} NOT NULL,
    rows_count {{bigint}} NOT NULL,
    payload {{blob}} NOT NULL,
    changes {{blob}} NOT NULL,
    created_at {{bigint}} NOT NULL
);
