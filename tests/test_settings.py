"""Settings are grouped per feature, yet read as before: one flat namespace, same env names."""

from __future__ import annotations

import pytest

from engagehub.settings import GROUPS, Settings


def test_every_setting_belongs_to_exactly_one_group() -> None:
    owners: dict[str, list[str]] = {}
    for group in GROUPS:
        for name in group.model_fields:
            owners.setdefault(name, []).append(group.__name__)
    assert set(owners) == set(Settings.model_fields)
    assert {n: g for n, g in owners.items() if len(g) != 1} == {}
    assert set(GROUPS) == set(Settings.__bases__)
    # the reference and the /system page list settings group by group, in GROUPS order
    assert list(Settings.model_fields) == [n for g in GROUPS for n in g.model_fields]


def test_env_variables_keep_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGEHUB_SMTP_HOST", "mail.example.test")
    monkeypatch.setenv("ENGAGEHUB_CONSENT_SPAM_POLICY", "ignore")
    monkeypatch.setenv("ENGAGEHUB_PROCESSOR_SHARDS", "4")
    monkeypatch.setenv("ENGAGEHUB_QUIET_HOURS", "21:00-08:00")
    s = Settings()
    assert (s.smtp_host, s.consent_spam_policy, s.processor_shards, s.quiet_hours) == (
        "mail.example.test",
        "ignore",
        4,
        "21:00-08:00",
    )


def test_groups_validate_like_the_whole() -> None:
    with pytest.raises(ValueError, match="ENGAGEHUB_ADMIN_TOKEN is 5 characters"):
        Settings(admin_token="short")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port"):
        Settings(port=70000)
