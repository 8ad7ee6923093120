-- A profile's identities listed in its own row instead of the profile_identities_profile index
-- (see the SQLite file). JSON text as in SQLite; "C" order is the readers' (code points).
ALTER TABLE profiles ADD COLUMN identities TEXT NOT NULL DEFAULT '[]';
UPDATE profiles SET identities = listed.ids
FROM (
    SELECT profile_id,
           json_agg(json_build_array(kind, value) ORDER BY kind COLLATE "C", value COLLATE "C")::text
               AS ids
    FROM profile_identities
    GROUP BY profile_id
) AS listed
WHERE listed.profile_id = profiles.id;
DROP INDEX profile_identities_profile;
CREATE INDEX profiles_merged_into ON profiles (merged_into) WHERE merged_into IS NOT NULL;
