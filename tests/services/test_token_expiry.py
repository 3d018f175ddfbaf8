"""Tokens that expire: `add-token --expires-in`, refused once past (401 token_expired,
counted as `expired`), listed as expired, and tokens stored before expiry existed still
valid. Before, a token lived until someone revoked it."""

from __future__ import annotations

import time

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text, update

from services.auth.tokens import TokenStore
from services.cli import cli
from services.db import api_tokens
from tests.services.helpers import auth, shipment


def _expire(store: TokenStore, token_id: str) -> None:
    """As if the token's lifetime had run out a second ago."""
    with store.engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id)
                     .values(expires_at=time.time() - 1))


@pytest.fixture
def runner(tmp_path, monkeypatch) -> CliRunner:
    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", f"sqlite:///{tmp_path}/tokens.db")
    return CliRunner()


def test_add_token_with_a_lifetime_says_until_when_and_lists_it(runner, tmp_path) -> None:
    before = time.time()
    added = runner.invoke(cli, ["hubs", "add-token", "H01", "--expires-in", "90d"])
    assert added.exit_code == 0, added.output
    assert ", valid until 20" in added.output.splitlines()[0]
    [row] = orjson.loads(runner.invoke(cli, ["hubs", "list-tokens", "--json"]).output)
    store = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    [info] = store.list("hub")
    assert info.expires_at is not None
    assert before + 90 * 86400 <= info.expires_at <= time.time() + 90 * 86400
    assert row["expires_at"] is not None and row["active"] is True
    _expire(store, info.token_id)
    store.close()
    table = runner.invoke(cli, ["hubs", "list-tokens"]).output.splitlines()
    assert "EXPIRES" in table[0] and table[1].split()[-1] == "expired"
    assert runner.invoke(cli, ["hubs", "list-tokens", "--json", "--active"]).output.strip() \
        == "[]"
    # an expired token can still be revoked (it was not, so it is not "already revoked")
    revoked = runner.invoke(cli, ["hubs", "revoke-token", info.token_id])
    assert revoked.exit_code == 0 and revoked.output.startswith("revoked token"), revoked.output


@pytest.mark.parametrize("given", ["0d", "90", "90y", "-1d", "1.5d", "4000d"])
def test_a_lifetime_that_is_not_one_is_a_usage_error_naming_the_flag(runner, given) -> None:
    refused = runner.invoke(cli, ["planners", "add-token", "ops", "--expires-in", given])
    assert refused.exit_code == 2, refused.output
    assert "--expires-in" in refused.output
    assert orjson.loads(runner.invoke(cli, ["planners", "list-tokens", "--json"]).output) == []


def test_an_expired_hub_token_gets_401_token_expired_and_is_counted(make_client,
                                                                    token_store) -> None:
    client = make_client()
    info, token = token_store.add("hub", "H01", expires_in_s=3600)
    assert client.post("/v1/events", json=shipment(), headers=auth(token)).status_code in (200, 202)
    _expire(token_store, info.token_id)
    refused = client.post("/v1/events", json=shipment(), headers=auth(token))
    assert refused.status_code == 401, refused.text
    body = refused.json()
    assert body["error"] == "token_expired" and "packloop hubs add-token" in body["message"]
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert token.split("_", 2)[2] not in refused.text
    metrics = client.get("/metrics").text
    assert 'packloop_gateway_auth_failures_total{result="expired"} 1.0' in metrics
    # a wrong secret for the same id is still just refused: only the holder learns "expired"
    wrong = client.post("/v1/events", json=shipment(), headers=auth(token[:-4] + "AAAA"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"


def test_a_token_stored_before_expiry_existed_still_works(tmp_path) -> None:
    """A token database made by an earlier packloop has no expires_at column: opening it
    adds the column, and its tokens live until revoked, as they did."""
    url = f"sqlite:///{tmp_path}/old.db"
    made = TokenStore(url)
    info, token = made.add("planner", "ops")
    made.close()
    engine = create_engine(url)
    with engine.begin() as conn:  # back to the table as earlier versions made it
        conn.execute(text("ALTER TABLE api_tokens DROP COLUMN expires_at"))
    engine.dispose()
    store = TokenStore(url)
    check = store.check("planner", token)
    assert check.outcome == "ok" and check.info is not None
    assert check.info.token_id == info.token_id and check.info.expires_at is None
    store.close()
