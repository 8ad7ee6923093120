"""Reference pages generated from the code at docs build time, so they can never go stale.

``pages()`` returns ``{docs path: markdown}``: the canonical taxonomy with every vendor name
mapped to each event, the CLI (walked from the Typer app), the HTTP API (from the app's
OpenAPI), the settings (from ``Settings`` docstrings) and the vendors (from their registry).
The MkDocs hook
``scripts/mkdocs_hooks.py`` adds them to the site; ``tests/docs`` checks they cover everything.
"""

from __future__ import annotations

import orjson

from engagehub.docsgen.cli import cli_page
from engagehub.docsgen.openapi import api_page, openapi
from engagehub.docsgen.taxonomy import settings_page, taxonomy_page
from engagehub.docsgen.vendors import vendors_page

__all__ = ["api_page", "cli_page", "pages", "settings_page", "taxonomy_page", "vendors_page"]


def pages() -> dict[str, str]:
    """Every generated page, by its path under ``docs/``."""
    schema = openapi()
    return {
        "concepts/taxonomy.md": taxonomy_page(),
        "reference/cli.md": cli_page(),
        "reference/api.md": api_page(schema),
        "reference/openapi.json": orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode(),
        "reference/settings.md": settings_page(),
        "reference/vendors.md": vendors_page(),
    }
