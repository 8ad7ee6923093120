-- The link-signing key exists from the start, so pages that verify links only read (readers are
-- read-only); gen_random_uuid draws from PostgreSQL's strong random source (2 x 122 bits).
INSERT INTO messaging_secrets (name, value)
VALUES ('links', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (name) DO NOTHING;
