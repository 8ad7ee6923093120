-- Messaging: templates, sends (one row per message, its attempt state), audiences, broadcasts,
-- journeys and their durable timers, and the secret that signs unsubscribe links.

CREATE TABLE message_templates (
    name TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    subscription_group TEXT NOT NULL DEFAULT '',
    subject TEXT,
    html TEXT,
    text TEXT,
    body TEXT,
    created_at {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL
);

-- state: pending -> sending (claimed, lease_until) -> handed (SMTP: committed before the final
-- "." of DATA) -> sent | failed | dropped. message id = row id, passed to the provider.
CREATE TABLE message_sends (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    channel TEXT NOT NULL,
    contact TEXT NOT NULL,
    broadcast_id TEXT,
    journey TEXT,
    transactional INTEGER NOT NULL DEFAULT 0,
    context TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {{bigint}} NOT NULL,
    lease_until {{bigint}} NOT NULL DEFAULT 0,
    provider TEXT,
    provider_message_id TEXT,
    error TEXT,
    created_at {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL,
    UNIQUE (broadcast_id, contact)
);
CREATE INDEX message_sends_due ON message_sends (state, next_attempt_at);
CREATE INDEX message_sends_broadcast ON message_sends (broadcast_id, state);

CREATE TABLE audiences (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at {{bigint}} NOT NULL
);

-- state: running | paused | done | canceled. Recipients are message_sends rows.
CREATE TABLE broadcasts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    template TEXT NOT NULL,
    audience TEXT NOT NULL,
    state TEXT NOT NULL,
    rate_per_second REAL NOT NULL,
    recipients {{bigint}} NOT NULL DEFAULT 0,
    created_at {{bigint}} NOT NULL,
    started_at {{bigint}},
    finished_at {{bigint}}
);

CREATE TABLE journeys (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at {{bigint}} NOT NULL
);

-- One person in one journey: the step they are at and when it is due (durable timer).
CREATE TABLE journey_runs (
    journey TEXT NOT NULL,
    contact TEXT NOT NULL,
    step INTEGER NOT NULL,
    state TEXT NOT NULL,
    due_at {{bigint}} NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    entered_at {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL,
    exit_reason TEXT,
    PRIMARY KEY (journey, contact)
);
CREATE INDEX journey_runs_due ON journey_runs (state, due_at);

CREATE TABLE messaging_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
