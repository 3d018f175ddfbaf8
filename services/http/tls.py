"""HTTPS for the gateway and the planner: the certificate a service serves, the CAs a
client trusts, and a failed handshake said in one line.

Tokens cross the network in every request, so both services serve HTTPS when given a
certificate and its key (``--tls-cert``/``--tls-key`` or ``PACKLOOP_GATEWAY_TLS_*`` /
``PACKLOOP_PLANNER_TLS_*``). The files are loaded once before the server starts: a
missing file or a key that does not match is a one-line error then, not a traceback
from inside uvicorn.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsError(ValueError):
    """A certificate, key or CA file that cannot be used; the message is one line."""


def server_tls(cert: Path | None, key: Path | None, env_prefix: str) -> tuple[str, str] | None:
    """The certificate and key files for uvicorn's ``ssl_certfile``/``ssl_keyfile``, checked;
    None: plain HTTP.

    ``env_prefix`` (``PACKLOOP_GATEWAY_TLS``) names the settings in a message.
    """
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise TlsError(f"HTTPS needs a certificate and its key: give both --tls-cert and "
                       f"--tls-key (or {env_prefix}_CERT and {env_prefix}_KEY)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise TlsError(f"{cert} and {key} are not a PEM certificate and its private key "
                           f"({exc.reason or exc})") from None
        raise TlsError(f"cannot read {exc.filename or cert}: {exc.strerror}") from None
    return str(cert), str(key)


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify servers against ``ca_file`` (``PACKLOOP_CA_FILE``), else the system's trust
    store, with host names checked."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise TlsError(f"PACKLOOP_CA_FILE={ca_file} holds no CA certificate in PEM "
                           f"format ({exc.reason or exc})") from None
        raise TlsError(f"PACKLOOP_CA_FILE={ca_file} cannot be read: {exc.strerror}") from None


def handshake_problem(exc: BaseException, url: str, ca_file: Path | None) -> str | None:
    """One line saying why the TLS handshake with ``url`` failed, or None when ``exc`` was
    not a TLS failure."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            trusted = f"PACKLOOP_CA_FILE={ca_file}" if ca_file else "the system's trust store"
            return (f"the TLS certificate of {url} is not trusted by {trusted} "
                    f"({cause.verify_message}); set PACKLOOP_CA_FILE to the CA that signed it")
        if isinstance(cause, ssl.SSLError):
            if "WRONG_VERSION_NUMBER" in str(cause) or "record layer" in str(cause):
                return f"{url} does not speak HTTPS (is it a plain http:// service?)"
            return f"TLS handshake with {url} failed: {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    return None
