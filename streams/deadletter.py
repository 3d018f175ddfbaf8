"""The dead-letter record: nothing a hub sends is ever silently dropped.

Records are JSON so that any tool can read them; ``raw`` keeps the original
bytes (UTF-8 text, or base64 when the input was not UTF-8) so a record can be
re-driven after the reference data has been fixed.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

MAX_RAW_BYTES = 64 * 1024

Source = Literal["emit", "gateway", "worker"]


def encode_raw(raw: bytes | str) -> tuple[str, str]:
    """The original input, truncated to 64 KiB, with its encoding ('utf-8' or 'base64')."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    data = data[:MAX_RAW_BYTES]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and len(raw) > MAX_RAW_BYTES:
            # The cut split a multi-byte character: keep the valid prefix as text.
            return data[: exc.start].decode("utf-8"), "utf-8"
        return base64.b64encode(data).decode("ascii"), "base64"


def decode_raw(record: dict[str, Any]) -> bytes:
    if record.get("raw_encoding") == "base64":
        return base64.b64decode(record["raw"])
    return str(record.get("raw", "")).encode("utf-8")


def dead_letter_record(
    source: Source,
    reason: str,
    raw: bytes | str,
    field: str | None = None,
    line: int | None = None,
    **extra: Any,
) -> bytes:
    text, encoding = encode_raw(raw)
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    record: dict[str, Any] = {
        "source": source,
        "reason": reason,
        "field": field,
        "line": line,
        "raw": text,
        "raw_encoding": encoding,
        "raw_truncated": size > MAX_RAW_BYTES,
        "dead_lettered_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    record.update(extra)
    return orjson.dumps(record)
