"""Log lines as text (uvicorn's default) or, with ``ENGAGEHUB_LOG_FORMAT=json``, one JSON object
per line: what log shippers (Loki, Elasticsearch, CloudWatch) parse without a grok pattern."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from engagehub.settings import Settings

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JSONFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra, "exc"}``; access lines get HTTP fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            out.update(client=client, method=method, path=path, status=status)
            out["http_version"] = version
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def log_config(settings: Settings, level: str = "info") -> dict[str, Any] | None:
    """uvicorn's ``log_config``: None keeps uvicorn's text default; json routes every logger
    (ours, uvicorn's, the access log) through :class:`JSONFormatter` on stderr."""
    if settings.log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "engagehub.ops.logs.JSONFormatter"}},
        "handlers": {"json": handler},
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }


def announce(settings: Settings, message: str, **fields: str) -> None:
    """A line for the operator on stderr, even below the log level (the generated admin token)."""
    if settings.log_format == "json":
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "warning"}
        line.update(logger="engagehub", message=message, **fields)
        print(orjson.dumps(line).decode(), file=sys.stderr, flush=True)
    else:
        extra = " ".join(f"{value}" for value in fields.values())
        print(f"engagehub: {message}: {extra}", file=sys.stderr, flush=True)
