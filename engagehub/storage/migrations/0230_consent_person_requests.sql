-- Consent changes a vendor event asked for a person (a user id, no contact point) before
-- profiles knew any contact point of theirs on that channel: one row per identity the event
-- carried. The consent processor applies them, at the event's own time, in the round where a
-- contact point of that kind is linked to the person, then deletes them.
CREATE TABLE consent_person_requests (
    seq {{bigint}} NOT NULL,
    channel TEXT NOT NULL,
    id_kind TEXT NOT NULL,
    id_value TEXT NOT NULL,
    created_at {{bigint}} NOT NULL,
    PRIMARY KEY (seq, channel, id_kind, id_value)
);
CREATE INDEX consent_person_requests_value ON consent_person_requests (id_value);
