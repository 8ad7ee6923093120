-- An erasure deletes a person's refused merges from either side (privacy/erase.py, ``_ROWS``);
-- the table's only index led with ``seq``, so each of those deletes read the whole table.
CREATE INDEX profile_conflicts_profile ON profile_conflicts (profile_id);
CREATE INDEX profile_conflicts_other ON profile_conflicts (other_profile_id);
