"""Finishes erasure jobs in the background (``serve``, ``engagehub worker``), after crashes too."""

from __future__ import annotations

from engagehub.privacy import erase
from engagehub.settings import Settings
from engagehub.storage import Database


class ErasureService:
    """Runs the oldest unfinished erasure to its end; jobs are safe to run twice."""

    name = "privacy-erasures"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = 2.0

    def run_once(self, db: Database) -> bool:
        """One job; True when more are waiting."""
        with db.session() as conn:
            waiting = erase.unfinished(conn)
        if not waiting:
            return False
        erase.run(db, waiting[0], self.settings)
        return len(waiting) > 1
