-- Goal recipients and conversions are looked up by recipient AND campaign: with an index on the
-- recipient alone, every lookup read each of the person's lifecycles (or goal events) of every
-- campaign to keep the one campaign's, so each lookup grew with the log (at 10M events a
-- person had ~18 lifecycles and ~8 goal events: 100x the cost of 1M). Goal events mostly have
-- no contact and no message id: those indexes hold only the rows that have one (an equality
-- lookup implies NOT NULL, so both backends still use them).
DROP INDEX analytics_messages_user;
DROP INDEX analytics_messages_contact;
CREATE INDEX analytics_messages_user ON analytics_messages (user_id, campaign_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX analytics_messages_contact ON analytics_messages (contact, campaign_id)
    WHERE contact IS NOT NULL;
DROP INDEX analytics_goal_events_user;
DROP INDEX analytics_goal_events_contact;
DROP INDEX analytics_goal_events_message;
CREATE INDEX analytics_goal_events_user ON analytics_goal_events (user_id, campaign_id)
    WHERE user_id IS NOT NULL;
CREATE INDEX analytics_goal_events_contact ON analytics_goal_events (contact, campaign_id)
    WHERE contact IS NOT NULL;
CREATE INDEX analytics_goal_events_message ON analytics_goal_events (message_id)
    WHERE message_id IS NOT NULL;
