-- One follower mechanism: processor_offsets holds the cursor of every follower of the log
-- (kind processor, destination or export), so retention and /metrics see them all
-- (storage/followers.py). Destinations and export targets are copied in by migration 410.
ALTER TABLE processor_offsets ADD COLUMN kind TEXT NOT NULL DEFAULT 'processor';
