-- Frequency caps and quiet hours (issue 20): why a send waits, per-broadcast cap overrides,
-- and the contact lookup that counts a person's recent sends (contact never changes, so the
-- index costs only the insert).
ALTER TABLE message_sends ADD COLUMN defer_reason TEXT;
CREATE INDEX message_sends_contact ON message_sends (contact);
ALTER TABLE broadcasts ADD COLUMN frequency_cap INTEGER;
ALTER TABLE broadcasts ADD COLUMN frequency_window_hours REAL;
