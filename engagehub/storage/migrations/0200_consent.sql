-- Consent: current subscription state per contact point x channel x group, and its history.
-- No row in subscription_states means no_status.

CREATE TABLE subscription_states (
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    event_time {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    source TEXT NOT NULL,
    reason TEXT,
    own_action INTEGER NOT NULL DEFAULT 0,
    updated_at {{bigint}} NOT NULL,
    PRIMARY KEY (contact, channel, group_name)
);

CREATE TABLE subscription_history (
    id {{pk}},
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    previous_status TEXT,
    event_time {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    source TEXT NOT NULL,
    reason TEXT,
    outcome TEXT NOT NULL,
    event_id TEXT,
    recorded_at {{bigint}} NOT NULL,
    UNIQUE (seq, contact, channel, group_name)
);
CREATE INDEX subscription_history_contact ON subscription_history (contact, event_time);

-- The built-in source under which engagehub itself writes events (API, CSV, links, sends).
-- Its key hash is not a SHA-256 hex digest, so no write key can ever match it.
INSERT INTO sources (name, kind, write_key_hash, write_key_hint, config, created_at)
VALUES ('engagehub', 'engagehub', 'builtin:engagehub', 'built-in', '{}', 0);

-- CSV imports started through the API, and their rejected rows (the error report).
CREATE TABLE imports (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    rows_read {{bigint}} NOT NULL DEFAULT 0,
    rows_applied {{bigint}} NOT NULL DEFAULT 0,
    rows_rejected {{bigint}} NOT NULL DEFAULT 0,
    error TEXT,
    created_at {{bigint}} NOT NULL,
    finished_at {{bigint}}
);
CREATE TABLE import_errors (
    import_id TEXT NOT NULL,
    row_number {{bigint}} NOT NULL,
    column_name TEXT NOT NULL,
    value TEXT,
    reason TEXT NOT NULL,
    original TEXT NOT NULL,
    PRIMARY KEY (import_id, row_number, column_name)
);
