"""The databases' secrets (:mod:`services.db`): a database URL is printed without its
password, wherever the password stands and whether or not the URL parses, and the SQLite
files (tokens.db holds the hubs' webhook signing secrets) are readable by their owner
alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from services.cli import cli
from services.db import cannot_open, make_engine, open_token_db, redact_url

SECRET = "Sup3rSecretPW"
#: the tester's URLs, and libpq's other secret parameter
LEAKY = [
    f"postgresql+psycopg://packloop:{SECRET}@127.0.0.1:notaport/packloop",
    f"postgresql+psycopg://packloop@127.0.0.1:1/packloop?password={SECRET}",
    f"postgresql+psycopg://packloop:pw@127.0.0.1:1/packloop?sslmode=require&sslpassword={SECRET}",
    f"postgresql+psycopg://packloop:{SECRET}@db/packloop?PassWord={SECRET}",
    f"mysql://packloop:{SECRET}/with-slash@db:x/packloop",
    # no "://" (an outside audit: printed in clear by `paths`, `gateway` and `planner`)
    f"postgresql+psycopg//packloop:{SECRET}@db/packloop",
    f"packloop:{SECRET}@db/packloop",
]


@pytest.mark.parametrize("url", LEAKY)
def test_redact_url_hides_every_password(url) -> None:
    shown = redact_url(url)
    assert SECRET not in shown and "***" in shown
    assert "packloop" in shown  # what tells databases apart stays


def test_redact_url_keeps_what_holds_no_secret() -> None:
    assert redact_url("sqlite:////var/lib/packloop/tokens.db") == \
        "sqlite:////var/lib/packloop/tokens.db"
    assert redact_url("postgresql+psycopg://gw@db:5432/packloop?sslmode=require") == \
        "postgresql+psycopg://gw@db:5432/packloop?sslmode=require"
    assert redact_url("postgresql://gw:s3cret@db/packloop") == "postgresql://gw:***@db/packloop"


def test_cannot_open_is_one_line_without_the_secret_even_if_the_driver_quotes_it() -> None:
    url = f"postgresql://u:{SECRET}@db/x?sslpassword=k3y-{SECRET}"
    said = cannot_open("the ledger", "PACKLOOP_LEDGER_DB_URL", url,
                       RuntimeError(f'missing "=" after "{SECRET}" in connection info\nmore'))
    assert said == ('cannot open the ledger (PACKLOOP_LEDGER_DB_URL=postgresql://u:***@db/x?'
                    'sslpassword=***): missing "=" after "***" in connection info')


@pytest.mark.parametrize("url", LEAKY[:2])
def test_paths_prints_no_password(monkeypatch, url) -> None:
    """Before: the unparsable URL was printed as given, and ``?password=`` kept."""
    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", url)
    for args in (["paths"], ["paths", "--json"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "token_db_url" in result.output and SECRET not in result.output


@pytest.mark.parametrize("url", LEAKY[:2])
def test_list_tokens_names_the_database_it_cannot_open_without_its_password(monkeypatch,
                                                                             url) -> None:
    """Before: "cannot open the token database (127.0.0.1:1/packloop?password=…)"."""
    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", url)
    result = CliRunner().invoke(cli, ["hubs", "list-tokens"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open the token database "
                                    "(PACKLOOP_TOKEN_DB_URL=postgresql+psycopg://")
    assert SECRET not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which the files used to be world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_folder_and_its_databases_are_the_owners_alone(tmp_path, umask_022) -> None:
    """Before: the folder 0755 and tokens.db 0644 (its WAL files too)."""
    folder = tmp_path / "state" / "packloop"
    engine = open_token_db(f"sqlite:///{folder}/tokens.db")
    try:
        with engine.begin() as conn:  # the WAL and shared-memory files exist while open
            conn.execute(text("SELECT count(*) FROM api_tokens"))
            files = sorted(folder.iterdir())
            assert {f.name for f in files} >= {"tokens.db", "tokens.db-wal", "tokens.db-shm"}
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()
    assert mode(folder) == 0o700


def test_an_existing_folder_and_file_keep_their_mode(tmp_path, umask_022) -> None:
    """An operator's choice (a group that backs the folder up) is not undone."""
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    (folder / "ledger.db").touch(mode=0o640)
    make_engine(f"sqlite:///{folder}/ledger.db").dispose()
    assert (mode(folder), mode(folder / "ledger.db")) == (0o750, 0o640)
