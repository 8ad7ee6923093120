-- Suspected bot clicks (link scanners, previews: properties.bot_click) kept apart from human
-- clicks, like machine opens from human opens. Derived tables are rebuilt from the log.
ALTER TABLE analytics_messages ADD COLUMN first_bot_clicked {{bigint}};
ALTER TABLE analytics_message_hours ADD COLUMN bot_clicks {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE analytics_rollups ADD COLUMN bot_clicked {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE analytics_rollups ADD COLUMN bot_clicks_total {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE analytics_campaigns ADD COLUMN bot_clicked {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE analytics_campaigns ADD COLUMN bot_clicks_total {{bigint}} NOT NULL DEFAULT 0;
DELETE FROM analytics_messages;
DELETE FROM analytics_message_hours;
DELETE FROM analytics_rollups;
DELETE FROM analytics_rollup_details;
DELETE FROM analytics_campaigns;
DELETE FROM analytics_campaign_names;
DELETE FROM analytics_goal_events;
DELETE FROM analytics_message_aliases;
UPDATE processor_offsets SET seq = 0 WHERE name = 'analytics';
