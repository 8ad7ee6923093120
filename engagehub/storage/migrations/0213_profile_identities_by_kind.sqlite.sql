-- Back to the layout of 0210/0211 (rowid table, (kind, value) key, value and profile_id
-- indexes): 0212's WITHOUT ROWID (value, kind) table measured 8-10% more processor CPU per row
-- on 1M-row CSV imports (two same-run pairs; more page reads as its wider rows outgrew the
-- page cache), though 9% less at 200k rows.
CREATE TABLE profile_identities_by_kind (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);
INSERT INTO profile_identities_by_kind (kind, value, profile_id, first_seen)
SELECT kind, value, profile_id, first_seen FROM profile_identities ORDER BY kind, value;
DROP TABLE profile_identities;
ALTER TABLE profile_identities_by_kind RENAME TO profile_identities;
CREATE INDEX profile_identities_profile ON profile_identities (profile_id);
CREATE INDEX profile_identities_value ON profile_identities (value);
