"""The HTTP client the command line uses to reach packloop's services (``plan submit|
status|fetch``): HTTPS verified against ``PACKLOOP_CA_FILE`` or the system's trust store,
and a failure said in one line."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx

from services.http.tls import client_context, handshake_problem

if TYPE_CHECKING:
    from services.settings import Settings


def check_service_url(url: str, name: str) -> str:
    """``url`` if it is an http(s) address with a host, else ValueError in one line naming
    where it came from (``name``: the setting or option): httpx raised InvalidURL with a
    traceback for ``http://host:abc``, and took ``host:8080`` as a scheme."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{name}={url!r} is not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{name}={url!r} is not a valid URL: give http://HOST:PORT or "
                         "https://HOST:PORT")
    return url


def httpx_client(settings: Settings, **kwargs: Any) -> httpx.Client:
    """An httpx client trusting ``settings.ca_file`` (or the system store); ``kwargs`` go to
    :class:`httpx.Client`. Raises :class:`~services.http.tls.TlsError` (one line) when the
    CA file cannot be used."""
    return httpx.Client(verify=client_context(settings.ca_file), **kwargs)


def connection_problem(exc: httpx.HTTPError, url: str, settings: Settings) -> str:
    """Why a request to ``url`` got no answer, in one line: a TLS failure named as such
    (an untrusted certificate, plain HTTP on the other end), else the error itself."""
    problem = handshake_problem(exc, url, settings.ca_file)
    if problem is not None:
        return problem
    from services.db import redact_url

    # an HTTP library's message may quote a header it refused: never a token; nor the
    # password of a URL written with one (https://user:pw@host)
    said = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", str(exc))
    return f"cannot reach {redact_url(url)} ({type(exc).__name__}: {said})"
