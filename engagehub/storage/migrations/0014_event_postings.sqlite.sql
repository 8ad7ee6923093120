-- event_index holds one posting list per key and window (k, first position, JSON array of
-- positions) instead of one row per key and event: a window writes ~6x fewer B-tree rows, at
-- random places, so the log_index round holds the write lock much less. Rebuilt from the log.
DROP TABLE event_index;
CREATE TABLE event_index (
    k INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    seqs TEXT NOT NULL,
    PRIMARY KEY (k, first_seq)
) WITHOUT ROWID;
UPDATE processor_offsets SET seq = 0 WHERE name = 'log_index' OR name LIKE 'log_index#%';
