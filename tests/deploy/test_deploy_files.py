"""The Dockerfile, compose file and systemd units stay valid (no docker engine here).

They are parsed and their essentials checked; every command they run is checked against the real
CLI, every ENGAGEHUB_* variable against the settings, and the image's health check command is run
against a live server.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from engagehub.cli import app, register
from engagehub.settings import Settings
from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {f"ENGAGEHUB_{name.upper()}" for name in Settings.model_fields}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        word, _, rest = buffer.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buffer = ""
    assert not buffer, "dangling line continuation"
    return out


@functools.cache
def _registered() -> bool:
    register()
    return True


def cli_accepts(argv: list[str]) -> None:
    """The engagehub CLI knows this command and these options (checked with --help)."""
    assert _registered()
    flags = [a for a in argv if a.startswith("--")]
    command = [a for a in argv if not a.startswith("-")][:1]
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, (argv, result.output)
    for flag in flags:
        assert flag.split("=")[0] in result.output, (argv, flag)


def test_dockerfile_is_slim_non_root_and_checks_health() -> None:
    instructions = dockerfile()
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "VOLUME", "EXPOSE"}
    known |= {"HEALTHCHECK", "ENTRYPOINT", "CMD", "ARG", "LABEL"}
    assert {word for word, _ in instructions} <= known
    bases = [args.split()[0] for word, args in instructions if word == "FROM"]
    assert bases, "no FROM"
    assert all(b.startswith("python:3.11-slim") for b in bases), bases
    final = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    stage = instructions[final:]
    users = [args for word, args in stage if word == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1] not in ("root", "0"), users
    user_at = max(i for i, (word, _) in enumerate(stage) if word == "USER")
    assert all(word != "RUN" for word, _ in stage[user_at:]), "RUN after dropping root"
    for word, args in instructions:
        if word == "COPY" and not args.startswith("--from"):
            for src in args.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} is missing"
    env = " ".join(args for word, args in stage if word == "ENV")
    port = next(args for word, args in stage if word == "EXPOSE")
    assert f"ENGAGEHUB_PORT={port}" in env
    assert "ENGAGEHUB_HOST=0.0.0.0" in env
    health = next(args for word, args in stage if word == "HEALTHCHECK")
    assert "/healthz" in health
    assert f":{port}/" in health
    entrypoint = json.loads(next(args for word, args in stage if word == "ENTRYPOINT"))
    cmd = json.loads(next(args for word, args in stage if word == "CMD"))
    assert entrypoint == ["engagehub"]
    cli_accepts(cmd)


def test_image_health_check_command_works_against_a_server(tmp_path: Path) -> None:
    health = next(args for word, args in dockerfile() if word == "HEALTHCHECK")
    argv = json.loads(health.split(" CMD ", 1)[1])
    assert argv[0] == "python"
    env = {
        "ENGAGEHUB_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
        "ENGAGEHUB_ADMIN_TOKEN": "x" * 20,
    }
    with live_server(env) as server:
        port = server.url.rsplit(":", 1)[1]
        live = [sys.executable, *[a.replace(":8000/", f":{port}/") for a in argv[1:]]]
        assert subprocess.run(live, check=False, timeout=10).returncode == 0
        server.kill()
        dead = subprocess.run(live, check=False, timeout=10, capture_output=True)
        assert dead.returncode != 0


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_runs_api_and_workers_on_postgres_with_nats(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "nats", "migrate", "api", "worker"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["nats"]["image"].startswith("nats:")
    assert "--jetstream" in services["nats"]["command"]
    for name in ("postgres", "nats"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("migrate", "api", "worker"):
        service = services[name]
        env = service["environment"]
        url = env["ENGAGEHUB_DATABASE_URL"]
        assert url.startswith("postgresql://"), url
        assert "@postgres:5432/" in url, url
        assert set(env) <= SETTINGS, set(env) - SETTINGS
        cli_accepts(service["command"])
        if name != "migrate":
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully"
    assert services["migrate"]["build"] == "."
    api = services["api"]
    assert api["environment"]["ENGAGEHUB_RUN_PROCESSORS"] == "false"
    assert api["command"][:1] == ["serve"]
    assert any(p.endswith(":8000") for p in api["ports"])
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert services["worker"]["command"] == ["worker"]
    assert set(compose["volumes"]) >= {"pgdata"}


def systemd_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert _, f"not key=value: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize(
    ("unit", "command"),
    [("engagehub.service", "serve"), ("engagehub-worker@.service", "worker")],
)
def test_systemd_units(unit: str, command: str) -> None:
    sections = systemd_unit(unit)
    assert set(sections) == {"Unit", "Service", "Install"}
    service = sections["Service"]
    assert service["User"] == ["engagehub"]
    assert service["Restart"] == ["on-failure"]
    for assignment in service.get("Environment", []):
        assert assignment.split("=")[0] in SETTINGS, assignment
    argv = shlex.split(service["ExecStart"][0])
    assert argv[0].endswith("/engagehub")
    assert argv[1] == command
    cli_accepts(argv[1:])
    for pre in service.get("ExecStartPre", []):
        cli_accepts(shlex.split(pre)[1:])
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]


def test_deployment_doc_configuration_table() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    table = text.split("## Configuration", 1)[1]
    documented = set(re.findall(r"^\| `(ENGAGEHUB_[A-Z_]+)` \|", table, re.MULTILINE))
    assert documented <= SETTINGS, documented - SETTINGS  # the table names no phantom setting
    scaleout = {"DATABASE_URL", "RUN_PROCESSORS", "RUN_SERVICES", "POSTGRES_POOL_SIZE"}
    scaleout |= {"RETENTION_DAYS", "PARTITIONS_AHEAD", "MAINTENANCE_INTERVAL"}
    scaleout |= {"WORKER_POLL_INTERVAL"}
    assert {f"ENGAGEHUB_{name}" for name in scaleout} <= documented
