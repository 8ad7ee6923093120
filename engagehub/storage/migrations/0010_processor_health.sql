-- Processor health: the event a processor is stuck on (found by narrowing the failing window
-- down to one position), and every event an operator told a processor to skip (recorded).

CREATE TABLE processor_failures (
    name TEXT PRIMARY KEY,
    seq {{bigint}} NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failed_at {{bigint}} NOT NULL,
    last_failed_at {{bigint}} NOT NULL
);

CREATE TABLE processor_skips (
    name TEXT NOT NULL,
    seq {{bigint}} NOT NULL,
    error TEXT,
    skipped_by TEXT NOT NULL,
    skipped_at {{bigint}} NOT NULL,
    PRIMARY KEY (name, seq)
);
