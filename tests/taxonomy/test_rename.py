"""Property renames: canonical names out, the caller's dict never changed behind its back."""

from __future__ import annotations

from engagehub.taxonomy import get_taxonomy


def test_a_dict_the_caller_keeps_is_copied_and_an_owned_one_is_not() -> None:
    taxonomy = get_taxonomy()
    props = {"campaign_id": "c1", "subject": "Hi"}
    copied = taxonomy.rename("segment", props)
    copied["bot_click"] = True
    assert props == {"campaign_id": "c1", "subject": "Hi"}
    assert taxonomy.rename("segment", props, owned=True) is props


def test_renamed_names_come_back_in_a_new_dict_either_way() -> None:
    taxonomy = get_taxonomy()
    vendor, name = next(
        (v, n) for v, m in taxonomy.vendors.items() for n in m.properties if m.properties[n] != n
    )
    props = {name: "x", "kept": 1}
    for owned in (False, True):
        out = taxonomy.rename(vendor, props, owned=owned)
        assert out is not props
        assert out == {taxonomy.vendors[vendor].properties[name]: "x", "kept": 1}
    assert props == {name: "x", "kept": 1}
