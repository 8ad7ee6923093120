-- A campaign's all-time totals are the sum of its day rollups (the same deltas fed both): the
-- campaign list reads them there, and a fold no longer upserts one more row per campaign each
-- round (bench e2e: ~0.6 us of the analytics processor's CPU per event).
DROP TABLE analytics_campaigns;
