"""Secrets out of the access log: query-string values of sensitive keys are replaced.

The services take tokens only in the Authorization header, but a client may still put one
in the URL (``?token=…``), and uvicorn's access log line holds the whole request target.
Tokens never appear in a log line (docs/services.md), so the values of the keys in
:data:`SENSITIVE_KEYS` are redacted there, whatever the route answers, and so is the
secret of anything shaped like a token under any other key or in the path. Clients
percent-encode differently (``_`` as ``%5F``, a space as ``+`` or ``%20``, some everything
twice), so both are recognised also once decoded.

The filter sits on the ``uvicorn.access`` logger itself: logging's ``dictConfig``, which
uvicorn runs when it starts, replaces a logger's handlers but keeps its filters, so it
holds whatever log configuration the server is given.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote_plus

#: query keys whose values are never logged (compared case-insensitively, ``-`` as ``_``)
SENSITIVE_KEYS = frozenset({
    "token", "access_token", "auth_token", "api_token", "refresh_token", "api_key", "apikey",
    "key", "password", "passwd", "secret", "client_secret", "auth", "authorization", "bearer",
})
REDACTED = "REDACTED"
ACCESS_LOGGER = "uvicorn.access"

_PARAM = re.compile(r"(?P<lead>[?&;](?P<key>[^=&;#?\s\"]+)=)(?P<value>[^&;#?\s\"]*)")


def _sensitive(key: str) -> bool:
    """Whether ``key`` names a secret, whatever a framework's decorations around it
    (``token[]``, ``token%00``: logged in clear before, an outside audit)."""
    name = re.sub(r"[^a-z0-9_]", "", _decoded(key).strip().lower().replace("-", "_"))
    return name in SENSITIVE_KEYS


#: a packloop token's secret wherever it stands (under any key, in a path, its ``_``
#: percent-encoded or not): ``plk_<id>_`` stays, for finding the token in `list-tokens`
_TOKEN = re.compile(r"(plk(?:_|%5f)[0-9a-f]{1,32}(?:_|%5f))[^\s&;#?\"/]+", re.IGNORECASE)
#: what a client may percent-encode: everything between the characters that split a target
_SEGMENT = re.compile(r"[^\s&;#?\"/=]+")


def _decoded(segment: str) -> str:
    """``segment`` percent-decoded until it stops changing (a client may encode twice)."""
    for _ in range(3):
        decoded = unquote_plus(segment)
        if decoded == segment:
            break
        segment = decoded
    return segment


def _redact_encoded(segment: str) -> str:
    """A segment that holds a token only once decoded (``%70lk%5F…``: any character may be
    encoded), as the decoded text before the token, its ``plk_<id>_`` and REDACTED."""
    if "%" not in segment and "+" not in segment:
        return segment
    found = _TOKEN.search(_decoded(segment))
    if found is None or found.group().endswith("_" + REDACTED):
        return segment
    return quote(_decoded(segment)[:found.start()], safe="") + found[1] + REDACTED


def redact_query(text: str) -> str:
    """``text`` with the value of every sensitive ``key=value`` of a query string replaced,
    and the secret of any token in it, percent-encoded or not."""
    text = _TOKEN.sub(lambda m: m[1] + REDACTED, text)
    text = _SEGMENT.sub(lambda m: _redact_encoded(m[0]), text)
    if "=" not in text:
        return text
    return _PARAM.sub(
        lambda m: m["lead"] + REDACTED if m["value"] and _sensitive(m["key"]) else m[0], text)


class RedactQuerySecrets(logging.Filter):
    """Redacts the message and its string arguments (uvicorn passes the target as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a
                                for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_query(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


def redact_access_log() -> None:
    """Put the filter on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
        logger.addFilter(RedactQuerySecrets())
