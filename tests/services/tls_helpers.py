"""A test certificate authority made with the ``openssl`` command, and an app served over
HTTPS by uvicorn in a thread, for the services' HTTPS tests (unit and integration)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from services.broker import free_port
from tests.helpers import wait_until

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class TestCA:
    """A CA certificate and key, and the server certificates it issues."""

    __test__ = False  # not a test class, whatever its name

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path, name: str = "packloop-test-ca") -> TestCA:
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        _openssl("req", "-x509", *_KEY, "-keyout", str(key), "-out", str(cert), "-days", "2",
                 "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return cls(cert, key)

    def issue(self, directory: Path, name: str,
              hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
        """A server certificate for ``hosts`` signed by this CA: (certificate, key)."""
        cert, key, csr = (directory / f"{name}.pem", directory / f"{name}.key",
                          directory / f"{name}.csr")
        names = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}"
                         for h in hosts)
        extensions = directory / f"{name}.ext"
        extensions.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                              "keyUsage=critical,digitalSignature\n"
                              "extendedKeyUsage=serverAuth\n"
                              "authorityKeyIdentifier=keyid\n", "utf-8")
        _openssl("req", *_KEY, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hosts[0]}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-out", str(cert), "-days", "2",
                 "-extfile", str(extensions))
        return cert, key


@contextmanager
def serve(app: Any, cert: Path | None = None, key: Path | None = None) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port (HTTPS with ``cert`` and ``key``);
    yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            ssl_certfile=str(cert) if cert else None,
                            ssl_keyfile=str(key) if key else None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "uvicorn to start")
        yield f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
