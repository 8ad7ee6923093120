"""Messaging commands run as a user runs them (subprocesses) against a real SMTP server."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engagehub.consent import store
from engagehub.consent.model import Change
from engagehub.storage import events as log
from engagehub.storage import migrate, open_database
from engagehub.timeutil import now_ms
from tests.cli.test_cli import run
from tests.messaging.conftest import Sink


def test_templates_send_test_broadcast_journey(
    smtp_sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: each command is a process start; the API tests cover both backends."""
    monkeypatch.setenv("ENGAGEHUB_SMTP_PORT", str(smtp_sink.port))
    database_url = f"sqlite:///{tmp_path}/cli.db"
    db = open_database(database_url)
    with db.session() as conn:
        migrate(conn)
    (tmp_path / "welcome.yaml").write_text(
        'name: welcome\nchannel: email\nsubject: "Hi {{ profile.first_name }}"\n'
        "text: \"Plan {{ profile.plan | default: 'free' }}\"\n"
    )
    (tmp_path / "promo.json").write_text(
        orjson.dumps(
            {"name": "promo", "channel": "sms", "body": "Sale {{ profile.x }} [50%]"}
        ).decode()
    )
    run(database_url, "templates", "add", str(tmp_path / "welcome.yaml"))
    run(database_url, "templates", "add", str(tmp_path / "promo.json"))

    out = run(database_url, "templates", "preview", "promo", "--traits", '{"x": "today"}').stdout
    assert "Sale today [50%]" in out
    assert "Reply STOP to unsubscribe" in out
    assert "GSM-7, 44 characters, 1 segment" in out  # 42 characters; [ and ] count 2

    out = run(
        database_url,
        "send-test",
        "welcome",
        "--to",
        "Me@Example.com",
        "--traits",
        '{"first_name": "Tess"}',
    ).stdout
    assert "sent test of welcome to me@example.com" in out
    [msg] = smtp_sink.to("me@example.com")
    assert msg["Subject"] == "[TEST] Hi Tess"
    bad_to = run(database_url, "send-test", "welcome", "--to", "nope", ok=False)
    assert "field: to" in bad_to.stderr
    assert "value: nope" in bad_to.stderr

    with db.session() as conn:
        builtin = store.builtin_source_id(conn)
        changes = [
            store.change_event(
                Change(f"c{i}@example.com", "email", "subscribed"), now_ms(), f"t{i}"
            )
            for i in range(5)
        ]
        log.append(conn, [log.Batch(builtin, now_ms(), changes)])
    (tmp_path / "all.yaml").write_text("name: all\nchannel: email\n")
    from engagehub import registry
    from engagehub.processing import run_until_caught_up
    from engagehub.settings import Settings

    with db.session() as conn:
        run_until_caught_up(conn, registry.processors(Settings(database_url=database_url)))
    assert "5 member(s)" in run(database_url, "audiences", "add", str(tmp_path / "all.yaml")).stdout
    tpl = tmp_path / "news.yaml"
    tpl.write_text(
        'name: news\nchannel: email\nsubject: News\ntext: "{{ profile.a | default: 1 }}"\n'
    )
    run(database_url, "templates", "add", str(tpl))
    run(
        database_url,
        "broadcasts",
        "create",
        "b1",
        "--template",
        "news",
        "--audience",
        "all",
        "--rate",
        "1000",
    )
    started = orjson.loads(run(database_url, "broadcasts", "start", "b1").stdout)
    assert started["recipients"] == 5
    run(database_url, "broadcasts", "run", "b1")
    status = orjson.loads(run(database_url, "broadcasts", "status", "b1").stdout)
    assert status["state"] == "done"
    assert status["counts"] == {"sent": 5}
    assert sorted(r[0] for r, m in smtp_sink.messages if m["Subject"] == "News") == [
        f"c{i}@example.com" for i in range(5)
    ]

    later = ["--template", "news", "--audience", "all", "--start-at", "2999-01-01T09:00"]
    made = orjson.loads(run(database_url, "broadcasts", "create", "b2", *later).stdout)
    assert (made["state"], made["scheduled_at"]) == ("scheduled", "2999-01-01T09:00:00.000Z")
    draft = orjson.loads(run(database_url, "broadcasts", "unschedule", "b2").stdout)
    assert (draft["state"], draft["scheduled_at"]) == ("draft", None)
    moved = orjson.loads(run(database_url, "broadcasts", "schedule", "b2", "2998-05-01").stdout)
    assert (moved["state"], moved["scheduled_at"]) == ("scheduled", "2998-05-01T00:00:00.000Z")

    (tmp_path / "j.yaml").write_text(
        "name: welcome-series\nchannel: email\ntrigger: {event: Signed Up}\n"
        "steps:\n  - send: news\n  - wait: 2d\n  - send: welcome\ngoal: Order Completed\n"
    )
    assert "3 steps" in run(database_url, "journeys", "add", str(tmp_path / "j.yaml")).stdout
    db.close()
