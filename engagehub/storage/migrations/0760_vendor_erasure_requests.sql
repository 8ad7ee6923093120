-- Erasure requests vendors send through the log (Braze users.UserDeleteRequest, Segment
-- `delete` calls, "User Deleted" track events): one row per such event, never an identifier
-- (the event itself holds it until an erasure removes both). ``state``: pending (an operator
-- decides), erasing (an erasure job was requested: ``erasure_id``), dismissed, or gone (the
-- event was erased before anyone decided).
CREATE TABLE privacy_vendor_requests (
    id TEXT PRIMARY KEY,
    seq {{bigint}} NOT NULL,
    source_id {{bigint}} NOT NULL,
    vendor_event TEXT,
    state TEXT NOT NULL,
    erasure_id TEXT,
    decided_by TEXT,
    created_at {{bigint}} NOT NULL,
    decided_at {{bigint}}
);
CREATE INDEX privacy_vendor_requests_state ON privacy_vendor_requests (state, created_at);
