-- Scale-out (PostgreSQL only): the log becomes a table partitioned by received_at month, so
-- retention drops whole partitions. A unique constraint on a partitioned table must include the
-- partition key, so exactly-once moves to event_keys: an unpartitioned primary-key table written
-- in the same transaction as the events (appends hold the log's advisory lock).

ALTER TABLE events RENAME TO events_unpartitioned;

-- Partitioned tables cannot have identity columns before PostgreSQL 17: a plain sequence.
CREATE SEQUENCE events_seq AS BIGINT;
SELECT setval('events_seq', COALESCE((SELECT MAX(seq) FROM events_unpartitioned), 0) + 1, false);

CREATE TABLE events (
    seq BIGINT NOT NULL DEFAULT nextval('events_seq'),
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
    event_time BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    properties TEXT NOT NULL,
    raw TEXT NOT NULL
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE events_seq OWNED BY events.seq;
-- Every partition gets this index: processors and readers go by log position.
CREATE INDEX events_seq_idx ON events (seq);

-- Exactly once: one row per (source, dedup key) ever appended (until retention drops it).
CREATE TABLE event_keys (
    source_id INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    PRIMARY KEY (source_id, dedup_key)
);

-- One partition per UTC month holding existing rows, plus the current month.
DO $$
DECLARE
    month TIMESTAMPTZ;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', to_timestamp(received_at / 1000.0) AT TIME ZONE 'UTC')
            AT TIME ZONE 'UTC'
        FROM events_unpartitioned
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)',
            'events_p' || to_char(month AT TIME ZONE 'UTC', 'YYYYMM'),
            (extract(epoch FROM month) * 1000)::BIGINT,
            (extract(epoch FROM month + INTERVAL '1 month') * 1000)::BIGINT
        );
    END LOOP;
END
$$;

INSERT INTO events SELECT * FROM events_unpartitioned;
INSERT INTO event_keys (source_id, dedup_key)
    SELECT source_id, dedup_key FROM events_unpartitioned;
DROP TABLE events_unpartitioned;
