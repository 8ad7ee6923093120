-- Message analytics: one lifecycle row per message, hourly campaign rollups, conversion goals.

-- First time of each milestone per message (min over events, so order does not matter);
-- state holds per-bucket totals and clicked links; last_seq makes replays no-ops.
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
    converted_at {{bigint}},
    goal_id {{bigint}},
    status TEXT,
    state TEXT NOT NULL DEFAULT '{}',
    last_seq {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL
){{without_rowid}};
CREATE INDEX analytics_messages_user ON analytics_messages (user_id);
CREATE INDEX analytics_messages_contact ON analytics_messages (contact);

-- Counts per campaign, hour (UTC ms), channel, variation, step, metric and detail (link URL,
-- bounce reason, goal id); '' where a dimension is unknown.
CREATE TABLE analytics_rollups (
    campaign_id TEXT NOT NULL,
    bucket {{bigint}} NOT NULL,
    channel TEXT NOT NULL,
    variation TEXT NOT NULL,
    step TEXT NOT NULL,
    metric TEXT NOT NULL,
    detail TEXT NOT NULL,
    n {{bigint}} NOT NULL,
    PRIMARY KEY (campaign_id, bucket, channel, variation, step, metric, detail)
){{without_rowid}};

-- All-time totals per campaign (campaign list), kept from the same increments.
CREATE TABLE analytics_campaigns (
    campaign_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    n {{bigint}} NOT NULL,
    PRIMARY KEY (campaign_id, metric)
);

CREATE TABLE analytics_campaign_names (
    campaign_id TEXT PRIMARY KEY,
    name TEXT,
    first_seen {{bigint}} NOT NULL,
    last_seen {{bigint}} NOT NULL
);

CREATE TABLE analytics_goals (
    id {{pk}},
    campaign_id TEXT NOT NULL,
    event TEXT NOT NULL,
    where_expr TEXT,
    within_ms {{bigint}} NOT NULL,
    created_at {{bigint}} NOT NULL
);

-- Goal events seen in the log (goal_id 0: a conversion the vendor reported for campaign_id).
CREATE TABLE analytics_goal_events (
    goal_id {{bigint}} NOT NULL,
    seq {{bigint}} NOT NULL,
    campaign_id TEXT NOT NULL,
    user_id TEXT,
    contact TEXT,
    message_id TEXT,
    event_time {{bigint}} NOT NULL,
    PRIMARY KEY (goal_id, seq)
);
CREATE INDEX analytics_goal_events_user ON analytics_goal_events (user_id);
CREATE INDEX analytics_goal_events_contact ON analytics_goal_events (contact);
CREATE INDEX analytics_goal_events_message ON analytics_goal_events (message_id);

-- A provider's id for a message (SendGrid sg_message_id, Twilio MessageSid) -> our message id,
-- learnt from events that carry both; events that carry only the provider id join that message.
CREATE TABLE analytics_message_aliases (
    alias TEXT PRIMARY KEY,
    message_id TEXT NOT NULL
);
CREATE INDEX analytics_message_aliases_message ON analytics_message_aliases (message_id);
