"""``engagehub tokens add|list|revoke``, ``engagehub audit``, and the audit of CLI commands.

Every command that may change state is recorded when it ends (actor ``cli:<os user>``, the
command path as action, its arguments with secret options masked, ok or the error code).
Daemons, benchmarks and read-only commands are not.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table
from typer.core import TyperGroup

from engagehub.access import audit, tokens
from engagehub.errors import EngagehubError
from engagehub.timeutil import format_ts, parse_param

tokens_app = typer.Typer(help="Scoped API tokens (read, write, admin).", no_args_is_help=True)
_NOT_AUDITED_TOP = frozenset(("serve", "worker", "bench", "template", "taxonomy", "audit", "stats"))
_READ_LEAVES = frozenset(("list", "show", "tail", "status", "preview", "export", "erasure"))
_SECRET_OPTIONS = ("--secret", "--token", "--password", "--write-key", "--api-key", "--key")


def _db() -> Any:
    from engagehub.cli.common import database

    return database()


@tokens_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name the audit log will show.")],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin.")] = "read",
) -> None:
    """Create a token; it is printed once (only its hash is kept)."""
    from engagehub.cli.common import console

    db = _db()
    with db.session() as conn, conn.transaction():
        row, token = tokens.create(conn, name, scope)
    console.print(f"token {row['name']} ({row['scope']}): {token}", highlight=False, soft_wrap=True)


@tokens_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every token: name, scope, hint, created, revoked."""
    from engagehub.cli.common import console

    db = _db()
    with db.session() as conn:
        rows = tokens.list_all(conn)
    if as_json:
        print(orjson.dumps(rows).decode())
        return
    table = Table("name", "scope", "hint", "created", "revoked")
    for r in rows:
        revoked = format_ts(r["revoked_at"]) if r["revoked_at"] else ""
        table.add_row(r["name"], r["scope"], r["hint"], format_ts(r["created_at"]), revoked)
    console.print(table)


@tokens_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token for good (its dashboard sessions end with it)."""
    from engagehub.cli.common import console

    db = _db()
    with db.session() as conn, conn.transaction():
        tokens.revoke(conn, name)
    console.print(f"token {name} revoked")


def audit_command(
    actor: Annotated[str | None, typer.Option(help="Only this token name (or cli:<user>).")] = None,
    action: Annotated[str | None, typer.Option(help="Action contains this text.")] = None,
    via: Annotated[str | None, typer.Option(help="api, dashboard or cli.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="ISO time or epoch ms.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """The audit log of management calls, newest first."""
    from engagehub.cli.common import console

    db = _db()
    with db.session() as conn:
        rows = audit.query(conn, actor, action, via, parse_param(since, "from"), None, None, limit)
    if as_json:
        for r in rows:
            print(orjson.dumps(r).decode())
        return
    table = Table("time", "actor", "via", "action", "target", "result", "params")
    for r in rows:
        params = orjson.dumps(r["params"]).decode()
        table.add_row(
            r["at"], r["actor"], r["via"], r["action"], r["target"] or "", r["result"], params
        )
    console.print(table)


def _masked(args: list[str]) -> list[str]:
    out: list[str] = []
    hide = False
    for arg in args:
        if hide:
            out.append(audit.MASK)
            hide = False
            continue
        name, eq, _ = arg.partition("=")
        if name in _SECRET_OPTIONS:
            if eq:
                out.append(f"{name}={audit.MASK}")
            else:
                out.append(arg)
                hide = True
            continue
        out.append(arg)
    return out


def _leaf(group: Any, ctx: Any, args: list[str]) -> list[str] | None:
    """The command path the arguments name (None when they name no command)."""
    path: list[str] = []
    command: Any = group
    for arg in args:
        if not isinstance(command, TyperGroup):
            break
        if arg.startswith("-"):
            return path or None
        command = command.get_command(ctx, arg)
        if command is None:
            return None
        path.append(arg)
    return path or None


def audited(path: list[str]) -> bool:
    """Whether a command path may change state (and is recorded)."""
    if path[0] in _NOT_AUDITED_TOP:
        return False
    return not (len(path) > 1 and path[-1] in _READ_LEAVES)


class AuditedGroup(TyperGroup):
    """The root command group: records each state-changing command when it ends."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command, then record it (an audit failure is reported, never fatal)."""
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        path = _leaf(self, ctx, args)
        if not path or not audited(path) or "--help" in args:
            return super().invoke(ctx)
        result = "ok"
        try:
            return super().invoke(ctx)
        except EngagehubError as exc:
            result = exc.code
            raise
        except typer.Exit as exc:
            result = "ok" if exc.exit_code == 0 else f"exit_{exc.exit_code}"
            raise
        except BaseException as exc:
            result = type(exc).__name__
            raise
        finally:
            _record(path, _masked(args[len(path) :]), result)


def _record(path: list[str], args: list[str], result: str) -> None:
    try:
        db = _db()
        with db.session() as conn:
            audit.record(
                conn,
                "cli:" + getpass.getuser(),
                "cli",
                " ".join(path),
                next((a for a in args if not a.startswith("-")), None),
                {"args": args},
                result,
            )
        db.close()
    except Exception as exc:  # the command's own outcome matters more than its record
        typer.echo(f"warning: could not write the audit log: {exc}", err=True)


def register(app: typer.Typer) -> None:
    """Attach ``tokens`` and ``audit``."""
    app.add_typer(tokens_app, name="tokens")
    app.command("audit")(audit_command)
