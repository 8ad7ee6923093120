-- Most lifecycles have no contact point and no conversion: index only the rows that have one
-- (every NULL entry was an index write per message and never read). Lookups by equality
-- (goal recipients by contact, messages a goal converted) imply NOT NULL, so both backends
-- still use the indexes.
DROP INDEX analytics_messages_contact;
DROP INDEX analytics_messages_goal;
CREATE INDEX analytics_messages_contact ON analytics_messages (contact) WHERE contact IS NOT NULL;
CREATE INDEX analytics_messages_goal ON analytics_messages (goal_id) WHERE goal_id IS NOT NULL;
