-- Core: sources, the append-only event log, processor cursors, settings kept in the database.

CREATE TABLE sources (
    id {{pk}},
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    write_key_hash TEXT NOT NULL UNIQUE,
    write_key_hint TEXT NOT NULL,
    secret TEXT,
    config TEXT NOT NULL DEFAULT '{}',
    created_at {{bigint}} NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);

-- The log. seq is the log position; (source_id, dedup_key) makes ingest exactly-once.
CREATE TABLE events (
    seq {{pk}},
    event_id TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    type TEXT NOT NULL,
    vendor_event TEXT,
    event TEXT,
    channel TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    contact TEXT,
    message_id TEXT,
    campaign_id TEXT,
    event_time {{bigint}} NOT NULL,
    received_at {{bigint}} NOT NULL,
    properties TEXT NOT NULL,
    raw TEXT NOT NULL,
    UNIQUE (source_id, dedup_key)
);
-- Only the dedup key is indexed on the log itself: every other index costs each acknowledged
-- event. Lookups by user, message and campaign use event_index, which the log_index
-- processor fills right after the commit (off the acknowledgement path).

-- Derived: hashed lookup keys (user, anonymous id, message, campaign) -> log positions.
CREATE TABLE event_index (
    k {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    PRIMARY KEY (k, seq)
){{without_rowid}};

-- Derived: vendor names the taxonomy does not know, counted per source.
CREATE TABLE unmapped_events (
    source_id INTEGER NOT NULL,
    vendor_event TEXT NOT NULL,
    count {{bigint}} NOT NULL,
    first_seen {{bigint}} NOT NULL,
    last_seen {{bigint}} NOT NULL,
    PRIMARY KEY (source_id, vendor_event)
);

-- Durable cursors: processor name -> last log position it applied.
CREATE TABLE processor_offsets (
    name TEXT PRIMARY KEY,
    seq {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
