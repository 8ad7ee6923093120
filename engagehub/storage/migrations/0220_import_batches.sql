-- The rows of a CSV import, one row per "Subscriptions Imported" log record (a chunk of the
-- file): normalized identifiers, traits and subscription changes, zlib-compressed JSON. The log
-- record stays small (every processor and export reads it); consent and profiles read the rows.
CREATE TABLE import_batches (
    event_id TEXT PRIMARY KEY,
    import_key TEXT NOT NULL,
    first_row {{bigint}} NOT NULL,
    last_row {{bigint}} NOT NULL,
    rows_count {{bigint}} NOT NULL,
    payload {{blob}} NOT NULL,
    created_at {{bigint}} NOT NULL
);
