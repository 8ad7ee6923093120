"""MkDocs hooks: add the generated reference pages, list every other ``docs/*.md`` page
(features document themselves in ``docs/<feature>.md``) under "Features" in the nav, and render
```` ```mermaid ```` blocks as diagrams (the architecture page's package diagram)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from pymdownx.superfences import fence_code_format

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


def _mermaid(config: Any) -> None:
    """Material's Mermaid support: a ``mermaid`` fence kept as ``<pre class="mermaid">`` (set
    here, not in mkdocs.yml, whose ``!!python/name`` tag a plain YAML reader refuses)."""
    fences = config["mdx_configs"].setdefault("pymdownx.superfences", {})
    custom = fences.setdefault("custom_fences", [])
    if not any(f.get("name") == "mermaid" for f in custom):
        custom.append({"name": "mermaid", "class": "mermaid", "format": fence_code_format})


def on_config(config: Any) -> Any:
    """Nav entries for feature pages nobody listed (so a new docs/<feature>.md is never lost)."""
    _mermaid(config)
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
