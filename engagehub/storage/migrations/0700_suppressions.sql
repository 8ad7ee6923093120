-- Suppression list (issue 20), kept apart from consent: contact points that must not be sent
-- to because they cannot be reached or complained (hard bounces, spam complaints, invalid or
-- unreachable numbers, operator entries), whatever their subscription state.

-- Current state, derived by folding a contact point's signals in (event_time, seq) order.
CREATE TABLE suppressions (
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    event_time {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    expires_at {{bigint}},
    message_id TEXT,
    updated_at {{bigint}} NOT NULL,
    PRIMARY KEY (contact, channel)
){{without_rowid}};

-- Every suppressing, soft-bounce and lifting signal (the audit trail and the fold's input).
CREATE TABLE suppression_signals (
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    seq {{bigint}} NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    event_time {{bigint}} NOT NULL,
    expires_at {{bigint}},
    message_id TEXT,
    event_id TEXT,
    recorded_at {{bigint}} NOT NULL,
    PRIMARY KEY (contact, channel, seq)
){{without_rowid}};

-- The newest delivery per contact point: a bounce older than it does not suppress.
CREATE TABLE suppression_deliveries (
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    event_time {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    PRIMARY KEY (contact, channel)
){{without_rowid}};
