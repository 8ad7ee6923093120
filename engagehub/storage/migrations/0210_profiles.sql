-- Profiles: identities merged from every event, traits from identify calls.

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    merged_into TEXT,
    traits TEXT NOT NULL DEFAULT '{}',
    trait_times TEXT NOT NULL DEFAULT '{}',
    first_seen {{bigint}} NOT NULL,
    last_seen {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL
);

-- kind: user_id, anonymous_id, email, phone, braze_id, or a custom identifier kind.
CREATE TABLE profile_identities (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_seen {{bigint}} NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX profile_identities_profile ON profile_identities (profile_id);

-- Merges refused because both profiles already had a different user_id.
CREATE TABLE profile_conflicts (
    seq {{bigint}} NOT NULL,
    profile_id TEXT NOT NULL,
    other_profile_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (seq, profile_id, other_profile_id)
);
