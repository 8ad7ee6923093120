-- Export targets: one durable cursor per (output, format, events filter). ``pending_upto`` is
-- the write-ahead intent of a run: the seq range being written, so a rerun after a crash
-- rewrites exactly the same files (same names) before moving on.
CREATE TABLE export_targets (
    name TEXT PRIMARY KEY,
    seq {{bigint}} NOT NULL DEFAULT 0,
    pending_upto {{bigint}},
    snapshot_seq {{bigint}} NOT NULL DEFAULT 0,
    files {{bigint}} NOT NULL DEFAULT 0,
    events {{bigint}} NOT NULL DEFAULT 0,
    updated_at {{bigint}} NOT NULL
);

-- Destinations: each follows the log with its own cursor. ``inflight_upto`` fixes the range of
-- the batch being delivered (so its id stays the same on every retry); ``lease_until`` lets
-- one process at a time deliver to a destination.
CREATE TABLE destinations (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT,
    subject TEXT,
    events TEXT,
    batch_size INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    cursor {{bigint}} NOT NULL DEFAULT 0,
    inflight_upto {{bigint}},
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {{bigint}} NOT NULL DEFAULT 0,
    lease_until {{bigint}} NOT NULL DEFAULT 0,
    delivered {{bigint}} NOT NULL DEFAULT 0,
    failures {{bigint}} NOT NULL DEFAULT 0,
    dead {{bigint}} NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at {{bigint}},
    last_success_at {{bigint}},
    created_at {{bigint}} NOT NULL
);

-- Batches a destination refused for good (4xx, or retries exhausted): the seq range and why.
-- ``status`` is dead | replay (queued by ``destinations replay --dead-letters``) | replayed.
CREATE TABLE dead_letters (
    id {{pk}},
    destination TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    after_seq {{bigint}} NOT NULL,
    upto_seq {{bigint}} NOT NULL,
    events INTEGER NOT NULL,
    error TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL
);
CREATE INDEX dead_letters_destination ON dead_letters (destination, status);
