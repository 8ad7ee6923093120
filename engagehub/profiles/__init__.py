"""Profiles: one person's identities (ids, email, phone, vendor ids) and traits, from the log."""
