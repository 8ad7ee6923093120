-- profile_identities keyed by (value, kind): the key serves lookups by value (the profiles
-- processor's) and by kind and value (consent's), so the separate value index is dropped and
-- each identity written updates one index fewer.
ALTER TABLE profile_identities DROP CONSTRAINT profile_identities_pkey;
ALTER TABLE profile_identities ADD PRIMARY KEY (value, kind);
DROP INDEX profile_identities_value;
