-- Identity lookups go by value (an email, a phone, a user id) across kinds; without this index
-- each batch of the profiles processor scanned the whole table.
CREATE INDEX profile_identities_value ON profile_identities (value);
