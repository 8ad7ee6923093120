"""The per-import duplicate memory: the first row per key wins, across its sorted runs (merged
while of similar size), its Bloom filter and the keys already written to its table."""

from __future__ import annotations

import random

import pytest

from engagehub.consent import seen
from engagehub.consent.seen import SeenStatuses


@pytest.mark.parametrize("spill_at", [700, 10**9])
def test_lookups_answer_like_a_dict_across_flushes(
    monkeypatch: pytest.MonkeyPatch, spill_at: int
) -> None:
    monkeypatch.setattr(seen, "MEMORY", spill_at)  # 700: several spills to the table
    monkeypatch.setattr(seen, "RUN", 1000)  # runs merged, and some left apart
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
    assert (memory._db is not None) == (spill_at < 6000)
    memory.close()
