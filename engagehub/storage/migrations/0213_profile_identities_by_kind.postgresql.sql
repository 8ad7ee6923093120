-- Back to the layout of 0210/0211 ((kind, value) key, value index): see the SQLite file.
ALTER TABLE profile_identities DROP CONSTRAINT profile_identities_pkey;
ALTER TABLE profile_identities ADD PRIMARY KEY (kind, value);
CREATE INDEX profile_identities_value ON profile_identities (value);
