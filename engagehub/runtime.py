"""Interpreter tuning shared by the server and its processor process (a leaf: imports nothing)."""

from __future__ import annotations

import gc
import sys


def tune_runtime() -> None:
    """Interpreter settings for a server that allocates many short-lived dicts per request.

    Startup objects are frozen out of the cyclic GC and collections run less often (ingest
    makes no reference cycles), and a shorter GIL switch interval keeps the writer thread from
    waiting up to 5 ms for the event loop at each SQLite statement.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.0005)
