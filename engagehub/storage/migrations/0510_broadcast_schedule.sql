-- Scheduled broadcasts (issue 18): state 'scheduled' starts by itself at scheduled_at (UTC ms).
ALTER TABLE broadcasts ADD COLUMN scheduled_at {{bigint}};
