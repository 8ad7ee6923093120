-- The link-signing key exists from the start, so pages that verify links only read (readers are
-- read-only); randomblob draws from SQLite's CSPRNG (seeded by the operating system).
INSERT INTO messaging_secrets (name, value) VALUES ('links', lower(hex(randomblob(32))))
ON CONFLICT (name) DO NOTHING;
