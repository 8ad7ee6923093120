"""Suppression list, kept apart from consent: contact points that are never sent to.

Hard bounces, spam complaints, invalid or unreachable numbers (provider error codes in
``data/codes.yaml``), carrier violations, the soft-bounce rule and operators' entries suppress a
contact point with the reason; sending checks the list before consent and records the drop.
"""
