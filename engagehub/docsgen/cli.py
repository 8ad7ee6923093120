"""The CLI reference: every command of the ``engagehub`` Typer app, walked from its click tree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer.main


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def root_command() -> Any:
    """The click command of ``engagehub`` with every feature's commands registered."""
    from engagehub.cli import app, register

    register()
    return typer.main.get_command(app)


def walk(command: Any, path: tuple[str, ...] = ("engagehub",)) -> Iterator[tuple[str, Any]]:
    """(``engagehub sources add``, command) for every command and group, depth first."""
    yield " ".join(path), command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from walk(sub, (*path, name))


def param_rows(command: Any) -> Iterator[tuple[str, str, str]]:
    """(spelling, default, help) of each visible parameter."""
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        if type(param).__name__.endswith("Argument"):
            spelling = f"`{(param.metavar or param.name).upper()}`"
        else:
            spelling = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
        default = param.default
        shown = "" if default in (None, False, ()) or callable(default) else f"`{default}`"
        if getattr(param, "envvar", None):
            shown += f" (env `{param.envvar}`)"
        yield spelling, shown.strip(), param.help or ""


def usage(path: str, command: Any) -> str:
    """``engagehub sources add NAME [OPTIONS]`` (or ``COMMAND`` for groups)."""
    args = [
        (p.metavar or p.name).upper()
        for p in command.params
        if type(p).__name__.endswith("Argument")
    ]
    tail = " COMMAND [ARGS]..." if getattr(command, "commands", None) else ""
    return " ".join([path, "[OPTIONS]", *args]) + tail


def cli_page() -> str:
    """Markdown of every command: usage, help, options."""
    out = [
        "# CLI reference",
        "",
        "Generated from the `engagehub` Typer app when the docs are built; every command a feature",
        "registers appears here. `engagehub COMMAND --help` prints the same.",
        "",
    ]
    for path, command in walk(root_command()):
        depth = min(path.count(" ") + 1, 4)
        out += [f"{'#' * (depth + 1)} `{path}`", ""]
        if command.help:
            out += [command.help.strip(), ""]
        out += ["```text", usage(path, command), "```", ""]
        rows = list(param_rows(command))
        if rows:
            out += ["| parameter | default | meaning |", "|---|---|---|"]
            out += [f"| {s} | {_cell(d)} | {_cell(h)} |" for s, d, h in rows]
            out.append("")
    return "\n".join(out) + "\n"
