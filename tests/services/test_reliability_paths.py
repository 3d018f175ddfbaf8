"""Stable data paths: every default database in one data folder, whatever the current folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.cli import cli
from services.gateway import GatewayConfig, create_app
from services.paths import default_data_dir
from services.settings import get_settings
from tests.services.helpers import REPO, FakeKafkaIO, FakeWorker, auth, shipment


@pytest.mark.slow
def test_a_token_added_in_one_folder_is_accepted_by_a_gateway_started_in_another(
        tmp_path, monkeypatch) -> None:
    """`packloop hubs add-token` in one folder and the gateway in another share the per-user
    token database (no PACKLOOP_DATA_DIR, no PACKLOOP_TOKEN_DB_URL); neither folder gets a
    database file."""
    home, first, second = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    for folder in (home, first, second):
        folder.mkdir()
    monkeypatch.delenv("PACKLOOP_DATA_DIR")
    monkeypatch.delenv("PACKLOOP_TOKEN_DB_URL", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    added = subprocess.run([sys.executable, "-m", "services.cli", "hubs", "add-token", "H01"],
                           cwd=first, env=env, capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]

    monkeypatch.chdir(second)
    fake = FakeKafkaIO()
    config = GatewayConfig.from_settings(
        get_settings(), kafka_io=fake, webhooks=False,
        worker_transport=httpx.MockTransport(FakeWorker().handler))
    with TestClient(create_app(config)) as client:
        resp = client.post("/v1/events", json=shipment(), headers=auth(token))
    config.tokens.close()
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
    assert (default_data_dir() / "tokens.db").is_file()
    assert str(default_data_dir()).startswith(str(home))
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []


def test_data_dir_moves_every_database_and_a_url_moves_one(tmp_path, monkeypatch) -> None:
    """PACKLOOP_DATA_DIR holds every default database; a URL setting overrides its own."""
    monkeypatch.setenv("PACKLOOP_DATA_DIR", str(tmp_path / "data"))
    settings = get_settings()
    assert settings.token_db_url == f"sqlite:///{tmp_path}/data/tokens.db"
    assert settings.planner_db_url == f"sqlite:///{tmp_path}/data/plans.db"
    monkeypatch.setenv("PACKLOOP_PLANNER_DB_URL", "postgresql+psycopg://planner:pw@db/plans")
    settings = get_settings()
    assert settings.token_db_url == f"sqlite:///{tmp_path}/data/tokens.db"
    assert settings.planner_db_url == "postgresql+psycopg://planner:pw@db/plans"


def test_a_relative_data_dir_is_made_absolute(tmp_path, monkeypatch) -> None:
    """A relative PACKLOOP_DATA_DIR names one folder, not one per current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKLOOP_DATA_DIR", "state")
    assert get_settings().token_db_url == f"sqlite:///{tmp_path}/state/tokens.db"


def test_paths_prints_each_database_and_its_source_without_passwords(tmp_path,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("PACKLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", "postgresql+psycopg://gw:s3cret@db/packloop")
    result = CliRunner().invoke(cli, ["paths", "--json"])
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["data_dir"] == {"value": str(tmp_path), "from": "PACKLOOP_DATA_DIR"}
    assert shown["planner_db_url"] == {"value": f"sqlite:///{tmp_path}/plans.db",
                                       "from": "data folder"}
    assert shown["token_db_url"]["from"] == "PACKLOOP_TOKEN_DB_URL"
    assert "s3cret" not in result.output
    text = CliRunner().invoke(cli, ["paths"]).output
    assert f"{tmp_path}/plans.db" in text and "s3cret" not in text


def test_default_data_dir_is_outside_the_current_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not Path(default_data_dir()).is_relative_to(tmp_path)
    assert Path(default_data_dir()).is_absolute()
