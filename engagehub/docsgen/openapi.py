"""The HTTP API reference, rendered from the app's own OpenAPI document (grouped by tag)."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from typing import Any

from engagehub.settings import Settings

METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def openapi() -> dict[str, Any]:
    """The OpenAPI document of a fresh app (nothing is started, no database is opened)."""
    from engagehub.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/docs.db")
        schema: dict[str, Any] = create_app(settings).openapi()
    return schema


def _params(op: dict[str, Any]) -> list[str]:
    rows = []
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        kind = schema.get("type") or ("enum" if "enum" in schema else "")
        need = "yes" if p.get("required") else ""
        rows.append(
            f"| `{p['name']}` | {p['in']} | {kind} | {need} | {_cell(p.get('description', ''))} |"
        )
    if not rows:
        return []
    return ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|", *rows, ""]


def _body(op: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return []
    media, spec = next(iter(content.items()))
    body = spec.get("schema", {})
    ref = body.get("$ref", "")
    if ref:
        body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    fields = body.get("properties", {})
    out = [f"Request body: `{media}`", ""]
    if fields:
        required = set(body.get("required", []))
        out += ["| field | type | required |", "|---|---|---|"]
        for name, spec_ in fields.items():
            kind = spec_.get("type") or "/".join(
                str(a.get("type", "object")) for a in spec_.get("anyOf", [])
            )
            out.append(f"| `{name}` | {kind} | {'yes' if name in required else ''} |")
        out.append("")
    return out


def api_page(schema: dict[str, Any] | None = None) -> str:
    """Markdown of every route: method, path, summary, parameters, body, answers."""
    schema = schema or openapi()
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                by_tag[(op.get("tags") or ["other"])[0]].append((method, path, op))
    out = [
        "# HTTP API reference",
        "",
        f"Generated from the app's OpenAPI document (version {schema['info']['version']}) when",
        "the docs are built. A running server serves it at `/openapi.json` and as pages at",
        "`/docs`. Management routes (`/api/...`) take the admin token as",
        "`Authorization: Bearer`. Every error answers",
        '`{"error": {"code", "message", "details"}}`.',
        "",
    ]
    for tag in sorted(by_tag):
        out += [f"## {tag}", ""]
        for method, path, op in by_tag[tag]:
            out += [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                out += [f"**{op['summary']}**", ""]
            if op.get("description"):
                out += [op["description"].strip(), ""]
            out += _params(op)
            out += _body(op, schema)
            answers = ", ".join(f"`{code}`" for code in op.get("responses", {}))
            out += [f"Answers: {answers}", ""]
    out += ["The whole document: [openapi.json](openapi.json)."]
    return "\n".join(out) + "\n"
