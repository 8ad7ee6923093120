-- event_index keys are now computed inside the database (md5-based, see processing/log_index.py):
-- the old keys are dropped and log_index rebuilds from the start of the log. Readers stay
-- complete meanwhile (they scan the part of the log not indexed yet).
DELETE FROM event_index;
UPDATE processor_offsets SET seq = 0 WHERE name = 'log_index';
