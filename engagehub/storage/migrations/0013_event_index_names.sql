-- event_index also keys each event's name (COALESCE(event, vendor_event), kind 'n'), so audiences
-- and name filters no longer scan the whole log: log_index re-reads the log from the start
-- (existing keys are kept, ON CONFLICT DO NOTHING). Readers stay complete meanwhile: they scan
-- the part of the log not indexed yet.
UPDATE processor_offsets SET seq = 0 WHERE name = 'log_index' OR name LIKE 'log_index#%';
