"""A throw-away PostgreSQL server for the test session (Debian's `postgresql` package).

The server runs from a temporary directory owned by the ``postgres`` user (initdb and
pg_ctl refuse to run as root), listens only on 127.0.0.1 on a free port with trust
authentication, and is stopped (``pg_ctl stop -m immediate``) and removed at the end.
Missing binaries or driver make the tests FAIL with the package to install: the
PostgreSQL path is only proven when these tests actually run.

Load it with ``pytest_plugins = ["tests.integration.conftest_postgres"]``.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_USER = "postgres"
_databases = itertools.count(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bindir() -> Path:
    """Where initdb and pg_ctl are: Debian keeps them in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
        "/usr/lib/postgresql/*/bin: install the Debian package `postgresql` "
        "(apt-get install -y postgresql). These tests must not be skipped.",
        pytrace=False,
    )


def _as_pg_user(argv: list[str]) -> list[str]:
    """initdb/pg_ctl refuse to run as root: run them as the postgres user then."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        pytest.fail(f"running as root but there is no {PG_USER!r} user to run PostgreSQL as "
                    "(the Debian package `postgresql` creates it)", pytrace=False)
    return ["runuser", "-u", PG_USER, "--", *argv]


@dataclass(frozen=True)
class PostgresServer:
    port: int
    datadir: Path

    def url(self, database: str = "packloop") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("the PostgreSQL driver is missing: pip install -e '.[postgres]' "
                    "(psycopg[binary]>=3.1,<4)", pytrace=False)
    bindir = _pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="packloop-pg-"))  # /tmp: traversable by postgres
    datadir, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        _as_pg_user([])  # fails clearly if there is no postgres user
        pw = pwd.getpwnam(PG_USER)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    started = False
    try:
        subprocess.run(
            _as_pg_user([str(bindir / "initdb"), "-D", str(datadir), "-U", PG_USER,
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]),
            check=True, capture_output=True, timeout=120)
        # trust auth, only loopback TCP and a socket in our directory; durability off (tests)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        subprocess.run(
            _as_pg_user([str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-w", "-t", "60",
                         "-l", str(log), "-o", options]),
            check=True, capture_output=True, timeout=90)
        started = True
        server = PostgresServer(port=port, datadir=datadir)
        server.create_database("packloop")
        yield server
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {exc.cmd[-1] if exc.cmd else ''}\n"
                    f"{exc.stderr.decode(errors='replace')}\n{server_log}", pytrace=False)
    finally:
        if started:
            subprocess.run(
                _as_pg_user([str(bindir / "pg_ctl"), "stop", "-D", str(datadir),
                             "-m", "immediate", "-w", "-t", "30"]),
                capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session's `packloop` database."""
    return postgres_server.url("packloop")


@pytest.fixture
def pg_db_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database per test (tables are created by the stores themselves)."""
    return postgres_server.create_database(f"packloop_t{os.getpid()}_{next(_databases)}")
