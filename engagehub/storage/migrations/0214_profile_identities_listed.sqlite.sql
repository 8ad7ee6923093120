-- A profile's identities listed in its own row (profiles.identities: JSON [[kind, value], ...],
-- written by the statement that writes the row) instead of the profile_identities_profile
-- index: profile ids are hashes, so that index took each new identity at a random place of a
-- B-tree as large as the table (~120 MB at 1M profiles), the largest single cost of a CSV
-- import. profile_identities keeps its (kind, value) key and value index (whose is this
-- identity); the few lookups by profile read the list. merged_into gets a small partial index
-- (only merged profiles): the profile view and erasure look up the profiles merged into one.
ALTER TABLE profiles ADD COLUMN identities TEXT NOT NULL DEFAULT '[]';
UPDATE profiles SET identities = listed.ids
FROM (
    SELECT profile_id, json_group_array(json_array(kind, value)) AS ids
    FROM (SELECT profile_id, kind, value FROM profile_identities ORDER BY profile_id, kind, value)
    GROUP BY profile_id
) AS listed
WHERE listed.profile_id = profiles.id;
DROP INDEX profile_identities_profile;
CREATE INDEX profiles_merged_into ON profiles (merged_into) WHERE merged_into IS NOT NULL;
