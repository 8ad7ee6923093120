-- Access and privacy (750-799): scoped API tokens, the audit log of management calls, erasure
-- jobs and the salted hashes of erased identifiers that suppress their future events.

-- Tokens are stored as SHA-256 hashes; a revoked token keeps its row (the audit log names it).
CREATE TABLE access_tokens (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at {{bigint}} NOT NULL,
    revoked_at {{bigint}}
);

-- One row per state-changing management call (API, dashboard, CLI); never updated by the API.
CREATE TABLE audit_log (
    id {{pk}},
    at {{bigint}} NOT NULL,
    actor TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL,
    status INTEGER
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Erasure jobs. ``subject`` is the salted hash of the key asked for (never the key itself);
-- ``step`` is the last finished step, so a restarted server resumes where the job stopped.
-- ``profiles`` (pseudonymous profile ids) is cleared by the deletion, ``notice`` (what
-- destinations need to delete the person downstream) once they were told.
CREATE TABLE privacy_erasures (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    reason TEXT,
    state TEXT NOT NULL,
    step TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    profiles TEXT NOT NULL DEFAULT '[]',
    notice TEXT,
    counts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_at {{bigint}} NOT NULL,
    updated_at {{bigint}} NOT NULL,
    finished_at {{bigint}}
);

-- Log events an erasure removed (ids only), for the deletion manifests of export targets.
CREATE TABLE privacy_deletions (
    erasure_id TEXT PRIMARY KEY,
    event_ids TEXT NOT NULL,
    created_at {{bigint}} NOT NULL
);
-- Which export target already holds the manifest of which erasure.
CREATE TABLE privacy_manifests (
    target TEXT NOT NULL,
    erasure_id TEXT NOT NULL,
    path TEXT NOT NULL,
    written_at {{bigint}} NOT NULL,
    PRIMARY KEY (target, erasure_id)
);

-- Salted hashes of every erased identifier (kind-free: the value decides). Events carrying one
-- are acknowledged and dropped; a contact point's row goes when the person opts in anew.
CREATE TABLE privacy_suppressions (
    hash TEXT PRIMARY KEY,
    erasure_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at {{bigint}} NOT NULL
);
