"""MkDocs hooks: add the generated reference pages, and list every other ``docs/*.md`` page
(features document themselves in ``docs/<feature>.md``) under "Features" in the nav."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from engagehub.docsgen import pages


def _listed(nav: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, list):
        for item in nav:
            found |= _listed(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= _listed(value)
    return found


def on_config(config: Any) -> Any:
    """Nav entries for feature pages nobody listed (so a new docs/<feature>.md is never lost)."""
    nav = config.get("nav") or []
    listed = _listed(nav)
    docs = Path(config["docs_dir"])
    extra = sorted(p.name for p in docs.glob("*.md") if p.name not in listed)
    if extra:
        nav.append({"Features": extra})
        config["nav"] = nav
    return config


def on_files(files: Files, config: Any) -> Files:
    """The taxonomy, CLI, API and settings references, generated from the code."""
    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    return files
