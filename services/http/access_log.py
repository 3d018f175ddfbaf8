"""Secrets out of the access log: query-string values of sensitive keys are replaced.

The services take tokens only in the Authorization header, but a client may still put one
in the URL (``?token=…``), and uvicorn's access log line holds the whole request target.
Tokens never appear in a log line (docs/services.md), so the values of the keys in
:data:`SENSITIVE_KEYS` are redacted there, whatever the route answers.

The filter sits on the ``uvicorn.access`` logger itself: logging's ``dictConfig``, which
uvicorn runs when it starts, replaces a logger's handlers but keeps its filters, so it
holds whatever log configuration the server is given.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

#: query keys whose values are never logged (compared case-insensitively, ``-`` as ``_``)
SENSITIVE_KEYS = frozenset({"token", "access_token", "api_key", "key", "password", "secret"})
REDACTED = "REDACTED"
ACCESS_LOGGER = "uvicorn.access"

_PARAM = re.compile(r"(?P<lead>[?&;](?P<key>[^=&;#?\s\"]+)=)(?P<value>[^&;#?\s\"]*)")


def _sensitive(key: str) -> bool:
    return unquote_plus(key).strip().lower().replace("-", "_") in SENSITIVE_KEYS


#: a packloop token's secret wherever it stands (under any key, in a path, percent-encoded
#: or not): ``plk_<id>_`` stays, for finding the token in `list-tokens`
_TOKEN = re.compile(r"(plk_[0-9a-f]{1,32}_)[^\s&;#?\"/]+")


def redact_query(text: str) -> str:
    """``text`` with the value of every sensitive ``key=value`` of a query string replaced,
    and the secret of any token in it."""
    text = _TOKEN.sub(lambda m: m[1] + REDACTED, text)
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
