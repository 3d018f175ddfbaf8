"""Signatures on the records one packloop service hands another through Kafka.

The gateway serves each hub the first run sheet published for a (hub, date), so whoever can
write the ``dispatch`` topic decides what a hub's vans do tomorrow. Kafka's ACLs are the
first guard (docs/operations.md); the signature is the second: the planner signs each
record with a key derived from the server secret it shares with the gateway
(``PACKLOOP_TOKEN_PEPPER``, which both already need for the token database), and a gateway
with that secret refuses records it cannot verify. Without a pepper nothing is signed and
nothing is checked, as the tokens are then hashed without one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

#: the record header that carries the signature (hex HMAC-SHA256 of the record's value)
HEADER = "packloop-signature"


def _key(pepper: str, purpose: str) -> bytes:
    # one key per purpose, never the pepper itself: a signature leaks nothing usable for
    # the token hashes, and a dispatch signature is no signature of anything else
    return hmac.new(pepper.encode("utf-8"), b"packloop record v1:" + purpose.encode(),
                    hashlib.sha256).digest()


def signature(pepper: str, purpose: str, value: bytes) -> bytes:
    return hmac.new(_key(pepper, purpose), value, hashlib.sha256).hexdigest().encode()


def signed_headers(pepper: str | None, purpose: str, value: bytes
                   ) -> tuple[tuple[str, bytes], ...]:
    """The headers a record of ``purpose`` carries: its signature, or none without a
    pepper."""
    return ((HEADER, signature(pepper, purpose, value)),) if pepper else ()


def verified(pepper: str, purpose: str, value: bytes,
             headers: Iterable[tuple[str, bytes | None]] | None) -> bool:
    """Whether a record carries exactly one signature header and it is ``value``'s."""
    found = [v for k, v in (headers or ()) if k == HEADER]
    if len(found) != 1 or not found[0]:
        return False
    return hmac.compare_digest(found[0], signature(pepper, purpose, value))
