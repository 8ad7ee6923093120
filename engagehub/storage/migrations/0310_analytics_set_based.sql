-- Analytics derived in SQL, per window (analytics/fold.py): plain columns instead of a JSON state
-- per message, per-message hourly counters, and wide rollups (one row per campaign, hour and
-- dimensions, one column per metric: ~10x fewer rows, and a new metric is one new column).
-- Everything here is derived: the tables are rebuilt from the log (the cursor goes back to 0).

DROP TABLE analytics_messages;
DROP TABLE analytics_rollups;
DROP TABLE analytics_campaigns;
DELETE FROM analytics_campaign_names;
DELETE FROM analytics_goal_events;
DELETE FROM analytics_message_aliases;
UPDATE processor_offsets SET seq = 0 WHERE name = 'analytics';

-- First time of each milestone (first_left: first sign the message left the sender), the
-- dimensions (smallest value seen), span, first bounce/failure reason, conversion, status.
CREATE TABLE analytics_messages (
    message_id TEXT PRIMARY KEY,
    campaign_id TEXT,
    campaign_name TEXT,
    channel TEXT,
    variation TEXT,
    step TEXT,
    user_id TEXT,
    contact TEXT,
    first_queued {{bigint}},
    first_sent {{bigint}},
    first_delivered {{bigint}},
    first_deferred {{bigint}},
    first_soft_bounced {{bigint}},
    first_bounced {{bigint}},
    first_opened {{bigint}},
    first_machine_opened {{bigint}},
    first_clicked {{bigint}},
    first_unsubscribed {{bigint}},
    first_spam {{bigint}},
    first_failed {{bigint}},
    first_read {{bigint}},
    first_left {{bigint}},
    first_seen {{bigint}} NOT NULL,
    last_seen {{bigint}} NOT NULL,
    reason_at {{bigint}},
    reason TEXT,
    converted_at {{bigint}},
    goal_id {{bigint}},
    status TEXT,
    updated_at {{bigint}} NOT NULL
){{without_rowid}};
CREATE INDEX analytics_messages_user ON analytics_messages (user_id);
CREATE INDEX analytics_messages_contact ON analytics_messages (contact);
CREATE INDEX analytics_messages_goal ON analytics_messages (goal_id);

-- Opens, machine opens and clicks of a message per UTC hour and clicked URL ('' = no URL or an
-- open); first_click: the first click on that URL in that hour.
CREATE TABLE analytics_message_hours (
    message_id TEXT NOT NULL,
    bucket {{bigint}} NOT NULL,
    url TEXT NOT NULL,
    opens {{bigint}} NOT NULL,
    machine_opens {{bigint}} NOT NULL,
    clicks {{bigint}} NOT NULL,
    first_click {{bigint}},
    PRIMARY KEY (message_id, bucket, url)
){{without_rowid}};

-- Counts per campaign, time bucket, channel, variation and step ('' where unknown); one column
-- per metric (analytics/lifecycle.py METRICS). Every count is kept twice: per UTC hour (grain
-- 3600000) and per UTC day (grain 86400000), so a long range reads a day's row, not 24.
CREATE TABLE analytics_rollups (
    campaign_id TEXT NOT NULL,
    grain {{bigint}} NOT NULL,
    bucket {{bigint}} NOT NULL,
    channel TEXT NOT NULL,
    variation TEXT NOT NULL,
    step TEXT NOT NULL,
    queued {{bigint}} NOT NULL DEFAULT 0,
    sent {{bigint}} NOT NULL DEFAULT 0,
    delivered {{bigint}} NOT NULL DEFAULT 0,
    deferred {{bigint}} NOT NULL DEFAULT 0,
    soft_bounced {{bigint}} NOT NULL DEFAULT 0,
    bounced {{bigint}} NOT NULL DEFAULT 0,
    failed {{bigint}} NOT NULL DEFAULT 0,
    opened {{bigint}} NOT NULL DEFAULT 0,
    machine_opened {{bigint}} NOT NULL DEFAULT 0,
    clicked {{bigint}} NOT NULL DEFAULT 0,
    read {{bigint}} NOT NULL DEFAULT 0,
    unsubscribed {{bigint}} NOT NULL DEFAULT 0,
    spam {{bigint}} NOT NULL DEFAULT 0,
    converted {{bigint}} NOT NULL DEFAULT 0,
    opens_total {{bigint}} NOT NULL DEFAULT 0,
    machine_opens_total {{bigint}} NOT NULL DEFAULT 0,
    clicks_total {{bigint}} NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, grain, bucket, channel, variation, step)
){{without_rowid}};

-- Counts with a detail, same grains and dimensions: kind 'link' (detail URL; uniques = unique clicks,
-- total = clicks), 'bounce_reason' and 'goal' (detail goal id; uniques = conversions).
CREATE TABLE analytics_rollup_details (
    campaign_id TEXT NOT NULL,
    grain {{bigint}} NOT NULL,
    bucket {{bigint}} NOT NULL,
    channel TEXT NOT NULL,
    variation TEXT NOT NULL,
    step TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    uniques {{bigint}} NOT NULL,
    total {{bigint}} NOT NULL,
    PRIMARY KEY (campaign_id, grain, bucket, channel, variation, step, kind, detail)
){{without_rowid}};

-- All-time totals per campaign (campaign list), kept from the same deltas as the rollups.
CREATE TABLE analytics_campaigns (
    campaign_id TEXT PRIMARY KEY,
    queued {{bigint}} NOT NULL DEFAULT 0,
    sent {{bigint}} NOT NULL DEFAULT 0,
    delivered {{bigint}} NOT NULL DEFAULT 0,
    deferred {{bigint}} NOT NULL DEFAULT 0,
    soft_bounced {{bigint}} NOT NULL DEFAULT 0,
    bounced {{bigint}} NOT NULL DEFAULT 0,
    failed {{bigint}} NOT NULL DEFAULT 0,
    opened {{bigint}} NOT NULL DEFAULT 0,
    machine_opened {{bigint}} NOT NULL DEFAULT 0,
    clicked {{bigint}} NOT NULL DEFAULT 0,
    read {{bigint}} NOT NULL DEFAULT 0,
    unsubscribed {{bigint}} NOT NULL DEFAULT 0,
    spam {{bigint}} NOT NULL DEFAULT 0,
    converted {{bigint}} NOT NULL DEFAULT 0,
    opens_total {{bigint}} NOT NULL DEFAULT 0,
    machine_opens_total {{bigint}} NOT NULL DEFAULT 0,
    clicks_total {{bigint}} NOT NULL DEFAULT 0
);
