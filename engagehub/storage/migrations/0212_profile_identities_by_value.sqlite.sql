-- profile_identities keyed by (value, kind) WITHOUT ROWID: one B-tree holds the rows and serves
-- both lookups (by value, the profiles processor's; by kind and value, consent's), where the
-- rowid table plus its (kind, value) key and value index were three, all written per identity
-- (a CSV import writes ~3 identities per row). The profile_id index stays.
CREATE TABLE profile_identities_by_value (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (value, kind)
) WITHOUT ROWID;
INSERT INTO profile_identities_by_value (kind, value, profile_id, first_seen)
SELECT kind, value, profile_id, first_seen FROM profile_identities ORDER BY value, kind;
DROP TABLE profile_identities;
ALTER TABLE profile_identities_by_value RENAME TO profile_identities;
CREATE INDEX profile_identities_profile ON profile_identities (profile_id);
