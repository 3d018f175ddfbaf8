"""Fixtures of the integration tests: stream-worker processes and a throw-away PostgreSQL.

The broker fixtures (``broker``, ``kafka``, ``topics_factory``, ``topics``) are the
session's, in ``tests/conftest.py``. These are exposed to every module here by
``conftest.py``; a test asks for them by parameter.

PostgreSQL is Debian's ``postgresql`` package run from a temporary directory owned by the
``postgres`` user (initdb and pg_ctl refuse to run as root), on 127.0.0.1 and a free port
with trust authentication, stopped (``pg_ctl stop -m immediate``) and removed at the
end. Missing binaries or driver FAIL with the package to install: the PostgreSQL path is
only proven when its tests actually run.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.broker import free_port
from streams.topics import Topics
from tests.integration.helpers import ReadyWorker, WorkerProcess

PG_USER = "postgres"
_databases = itertools.count(1)


@pytest.fixture
def workers(broker: Any, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """A factory of worker processes on the session broker: ``workers(prefix, **env)``.

    Not started: the test starts each when it wants. Every one is killed at the end.
    """
    made: list[WorkerProcess] = []

    def make(prefix: str, **env: str) -> WorkerProcess:
        w = WorkerProcess(broker.bootstrap, prefix, tmp_path, env)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill9()


@pytest.fixture
def ready_worker(
    topics_factory: Callable[..., Topics], workers: Callable[..., WorkerProcess]
) -> ReadyWorker:
    """Fresh topics (``partitions`` of them) and one worker on them that owns partitions.

    How most worker tests begin. The worker is returned only once it is assigned, so what
    a test does next (produce, kill, ask) meets a consumer in its group, not one starting.
    """

    def start(partitions: int = 4) -> tuple[Topics, WorkerProcess]:
        topics = topics_factory(partitions)
        w = workers(topics.prefix).start()
        w.wait_ready()
        return topics, w

    return start


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
    port = free_port()
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
