"""Read request bodies once, with size limits enforced while streaming and gzip understood."""

from __future__ import annotations

import zlib
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from engagehub.api.deps import hub_of
from engagehub.errors import PayloadError, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    """The decoded body; 413 as soon as it (or its decompressed form) passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"body is {declared} bytes; the limit is {limit}", size=int(declared), limit=limit
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"body is over the {limit} byte limit", limit=limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(body, encoding, limit)
    raise UnsupportedMediaType(
        f"content-encoding {encoding!r} is not supported; use gzip or none",
        header="content-encoding",
        value=encoding,
    )


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress without ever holding more than ``limit`` bytes (no zip bombs)."""
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise UnsupportedMediaType(
            f"body is not valid {encoding}: {exc}", header="content-encoding", value=encoding
        ) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the {limit} byte limit", limit=limit)
    return out


async def body_as(request: Request, model: type[M]) -> M:
    """A management API body as ``model``; the error names the first bad field and its value."""
    raw = await read_body(request, hub_of(request).settings.max_api_body_bytes)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise PayloadError(
            f"invalid {field}: {first['msg']}",
            field=field,
            value=first.get("input") if first["loc"] else None,
            errors=exc.errors(include_url=False),
        ) from None
