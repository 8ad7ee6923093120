"""Ingest: HTTP routes per vendor, body limits, validation, group-commit append, the answer."""
