"""The per-import duplicate memory: the first row per key wins, across its Bloom filter, the
keys waiting in memory and those already written to its table."""

from __future__ import annotations

import random

import pytest

from engagehub.consent import seen
from engagehub.consent.seen import SeenStatuses


def test_lookups_answer_like_a_dict_across_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seen, "PENDING", 700)  # several flushes to the table
    rnd = random.Random(5)
    memory = SeenStatuses()
    reference: dict[int, tuple[int, str]] = {}
    keys: list[int] = []
    statuses = ("subscribed", "unsubscribed", "did_not_subscribe")
    for chunk in range(30):
        fresh = [rnd.getrandbits(64) - (1 << 63) for _ in range(200)]
        again = [keys[rnd.randrange(len(keys))] for _ in range(40)] if keys else []
        asked = fresh + again
        found = memory.lookup(asked)
        assert found == {k: reference[k] for k in set(asked) if k in reference}
        items = [(k, chunk * 1000 + i, rnd.choice(statuses)) for i, k in enumerate(asked)]
        new = [item for item in items if item[0] not in found]
        memory.record(new)
        for k, row, status in new:
            reference.setdefault(k, (row, status))
        keys.extend(fresh)
    assert len(reference) == len(set(keys))
    memory.close()
