"""Double opt-in, consent side: a subscribe that asks for confirmation is the change
``pending`` (reason ``double_opt_in_requested``, or ``double_opt_in_resent``) in an event whose
dedup key starts with ``doi:`` — the messaging package follows those and sends the
confirmation message; the person's confirmation is ``subscribed`` with reason
``double_opt_in`` (their own action); an unconfirmed request expires to ``did_not_subscribe``
(reason ``double_opt_in_expired``). Every step is a change, so the history shows each one.
"""

from __future__ import annotations

from dataclasses import replace

from engagehub.consent.model import PENDING, Change

DOI_PREFIX = "doi:"
REQUESTED, RESENT = "double_opt_in_requested", "double_opt_in_resent"
CONFIRMED, EXPIRED = "double_opt_in", "double_opt_in_expired"


def double_opt_in_request(change: Change, reason: str = REQUESTED) -> Change:
    """A subscribe turned into a confirmation request; other changes stay as they are."""
    if change.status != "subscribed":
        return change
    return replace(change, status=PENDING, reason=reason)
