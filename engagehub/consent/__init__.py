"""Consent: subscription states per contact point x channel x group, derived from the log."""
