"""The public event id is RFC 4122 uuid5 of ``"{source}:{dedup key}"``, however it is computed."""

from __future__ import annotations

import uuid

import pytest

from engagehub.model import EVENT_ID_NAMESPACE, event_id_for

KEYS = ["m1", "", "e2e-123456-5", "h:" + "f" * 40 + ":1", "ü€😀", "x" * 5000, "a:b:c", " "]


@pytest.mark.parametrize("source_id", [1, 7, 123456789])
def test_event_id_is_uuid5(source_id: int) -> None:
    keys = KEYS + [f"k{i}" for i in range(2000)]  # every version/variant digit the hash gives
    for key in keys:
        want = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source_id}:{key}"))
        assert event_id_for(source_id, key) == want, key
    variants = {event_id_for(source_id, key)[19] for key in keys}
    assert variants == set("89ab")
