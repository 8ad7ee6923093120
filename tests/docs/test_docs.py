"""The docs cover the code: every command, setting, route, canonical event, vendor and metric."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config

from engagehub.docsgen import api_page, cli_page, settings_page, taxonomy_page
from engagehub.docsgen.cli import param_rows, root_command, walk
from engagehub.docsgen.openapi import openapi
from engagehub.docsgen.taxonomy import env_name
from engagehub.ops import metrics
from engagehub.settings import Settings
from engagehub.taxonomy import get_taxonomy
from engagehub.vendors import SOURCE_KINDS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_every_cli_command_and_option_is_documented() -> None:
    page = cli_page()
    commands = list(walk(root_command()))
    assert len(commands) > 10
    for path, command in commands:
        assert (command.help or "").strip(), f"{path} has no help text"
        assert f"`{path}`" in page
        for spelling, _, meaning in param_rows(command):
            assert meaning.strip(), f"{path} {spelling} has no help text"
    assert "`engagehub demo`" in page
    assert "`engagehub serve`" in page
    assert "`--demo`" in page


def test_every_setting_is_documented() -> None:
    page = settings_page()
    for name, field in Settings.model_fields.items():
        assert (field.description or "").strip(), f"setting {name} has no docstring"
        assert f"`{env_name(name)}`" in page
    assert "`ENGAGEHUB_METRICS_TOKEN`" in page


def test_every_canonical_event_and_vendor_name_is_in_the_taxonomy_page() -> None:
    page = taxonomy_page()
    taxonomy = get_taxonomy()
    for name in taxonomy.events:
        assert f"| **{name}** |" in page
    for vendor, mapping in taxonomy.vendors.items():
        for name, rule in mapping.rules.items():
            if not rule.custom:
                assert f"{vendor}: `{name}`" in page, (vendor, name)


def test_every_route_is_in_the_api_reference() -> None:
    schema = openapi()
    page = api_page(schema)
    routes = [(m, p) for p, item in schema["paths"].items() for m in item]
    assert ("get", "/metrics") in routes
    for method, path in routes:
        assert f"`{method.upper()} {path}`" in page


def test_every_vendor_has_a_setup_guide_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    text = str(config["nav"])
    for kind in SOURCE_KINDS:
        guide = DOCS / "vendors" / f"{kind}.md"
        assert guide.exists(), guide
        assert f"vendors/{kind}.md" in text


def test_every_metric_is_documented() -> None:
    page = (DOCS / "operations" / "metrics.md").read_text()
    snap = metrics.Snapshot(1, {("processor", "x"): metrics.Lag(1, 1.0)}, [("s", "k", 1, 1)])
    names = [m.name for m in metrics._gauges(snap, {"x": "boom"})]
    names += [f"{c._name}_total" for c in (metrics.EVENTS, metrics.REJECTED)]
    for name in names:
        assert f"`{name}`" in page, name


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """The docs tree plus a page another feature adds without touching mkdocs.yml."""
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / "exports.md").write_text("# Exports\n\nSee [the CLI](reference/cli.md).\n")
    config = (
        (ROOT / "mkdocs.yml")
        .read_text()
        .replace("scripts/mkdocs_hooks.py", str(ROOT / "scripts" / "mkdocs_hooks.py"))
    )
    (tmp_path / "mkdocs.yml").write_text(config)
    return tmp_path


def test_site_builds_strict_and_lists_new_feature_pages(docs_copy: Path) -> None:
    config = load_config(
        config_file=str(docs_copy / "mkdocs.yml"), site_dir=str(docs_copy / "site"), strict=True
    )
    build(config)
    site = docs_copy / "site"
    assert (site / "exports" / "index.html").exists()
    home = (site / "index.html").read_text()
    assert re.search(r"Features", home)
    taxonomy = (site / "concepts" / "taxonomy" / "index.html").read_text()
    assert "users.messages.email.Delivery" in taxonomy
    assert (site / "reference" / "openapi.json").exists()
    architecture = (site / "architecture" / "index.html").read_text()
    assert '<pre class="mermaid"><code>flowchart TD' in architecture  # a diagram, not code
