"""A round of every processor fits SQLite's statement cache (else each round recompiles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engagehub import registry
from engagehub.analytics import service
from engagehub.processing import run_round
from engagehub.settings import Settings
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.storage.sqlite import STATEMENT_CACHE, SQLiteConnection
from tests.analytics.helpers import T0, H, ev


class _Recorder:
    """The sqlite3 connection, noting every SQL text it is asked to run."""

    def __init__(self, real: Any, seen: set[str]) -> None:
        self._real, self._seen = real, seen

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._seen.add(sql)
        return self._real.execute(sql, params)

    def executemany(self, sql: str, rows: Any) -> Any:
        self._seen.add(sql)
        return self._real.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_round_of_every_processor_fits_the_statement_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cache.db"
    settings = Settings(database_url=url)
    database = open_database(url, settings)
    try:
        with database.session() as conn:
            assert isinstance(conn, SQLiteConnection)
            migrate(conn)
            from tests.conftest import make_source

            source = make_source(database)[0].id
            service.add_goal(conn, "c1", "Order Completed", None, "24h")
            processors = registry.processors(settings)
            sizes = []
            for r in range(4):
                story = [
                    ev(f"{r}-{i}-{k}", name, T0 + r * H + i, f"m{r}-{i}", "c1", user=f"u{i}",
                       contact=f"u{i}@example.com", provider_message_id=f"p{r}-{i}",
                       url="https://x.test/a", bounce_reason="550 unknown")
                    for i in range(30)
                    for k, name in enumerate(
                        ("Email Sent", "Email Delivered", "Email Opened", "Email Link Clicked",
                         "Email Bounced", "Email Unsubscribed")
                    )
                ] + [ev(f"{r}-o{i}", "Order Completed", T0 + r * H + 60_000, user=f"u{i}")
                     for i in range(10)]  # fmt: skip
                log.append(conn, [log.Batch(source, T0, story)])
                seen: set[str] = set()
                real = conn.raw
                conn._conn = _Recorder(real, seen)  # type: ignore[assignment]
                try:
                    result = run_round(conn, processors, 10_000)
                finally:
                    conn._conn = real
                assert not result.failed, result.failed
                assert result.applied > 0
                sizes.append(len(seen))
        # Twice over: a window also runs a few statements whose text depends on its size.
        assert 2 * max(sizes) <= STATEMENT_CACHE, sizes
        assert max(sizes) > 32, sizes  # what the cache used to hold: it did not fit
    finally:
        database.close()
