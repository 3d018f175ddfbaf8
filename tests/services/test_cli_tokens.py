"""`packloop hubs|planners revoke-token|list-tokens` as an operator uses them: a pasted
whole token, a second revocation, and a table whose columns line up."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from services.cli import cli


@pytest.fixture
def runner(tmp_path, monkeypatch) -> CliRunner:
    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", f"sqlite:///{tmp_path}/tokens.db")
    return CliRunner()


def _add(runner: CliRunner, group: str, owner: str, *args: str) -> str:
    added = runner.invoke(cli, [group, "add-token", owner, *args])
    assert added.exit_code == 0, added.output
    return added.output.strip().splitlines()[-1]


@pytest.mark.parametrize(("group", "owner"), [("hubs", "H01"), ("planners", "ops")])
def test_revoke_takes_the_whole_token_and_never_echoes_its_secret(runner, group: str,
                                                                  owner: str) -> None:
    """Before: "no hub token with id 'plk_<id>_<secret>'", the secret on the terminal."""
    token = _add(runner, group, owner)
    token_id, secret = token.split("_", 2)[1:]
    revoked = runner.invoke(cli, [group, "revoke-token", token])
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked token {token_id} of" in revoked.output and secret not in revoked.output
    listed = runner.invoke(cli, [group, "list-tokens", "--json", "--active"])
    assert listed.output.strip() == "[]"


@pytest.mark.parametrize("given", ["plk_zz_s3cretpart", "s3cretpart", "plk_abc"])
def test_an_argument_that_is_no_id_is_refused_without_repeating_it(runner, given: str) -> None:
    """Neither an id nor a whole token: it may be a mangled secret, so it is not shown."""
    _add(runner, "hubs", "H01")
    refused = runner.invoke(cli, ["hubs", "revoke-token", given])
    assert refused.exit_code == 1
    assert "neither a hub token id" in refused.output and given not in refused.output


def test_a_second_revocation_says_it_was_already_revoked(runner) -> None:
    """Before: "revoked token …" again, as if it had been live until then."""
    token_id = _add(runner, "hubs", "H01").split("_")[1]
    first = runner.invoke(cli, ["hubs", "revoke-token", token_id])
    assert first.exit_code == 0 and first.output.startswith(f"revoked token {token_id} of hub")
    again = runner.invoke(cli, ["hubs", "revoke-token", token_id])
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"token {token_id} of hub H01 was already revoked (at 20")
    unknown = runner.invoke(cli, ["hubs", "revoke-token", "abc123"])
    assert unknown.exit_code == 1 and "no hub token with id 'abc123'" in unknown.output


def test_list_tokens_columns_line_up(runner) -> None:
    """Before: each LABEL value sat one space right of its header (and a revoked token's
    state pushed it further)."""
    _add(runner, "hubs", "H01", "--label", "scanner")
    revoked_id = _add(runner, "hubs", "H02", "--label", "old phone").split("_")[1]
    assert runner.invoke(cli, ["hubs", "revoke-token", revoked_id]).exit_code == 0
    lines = runner.invoke(cli, ["hubs", "list-tokens"]).output.splitlines()
    header, rows = lines[0], lines[1:]
    assert [row.index(label) for row, label in zip(rows, ["scanner", "old phone"],
                                                   strict=True)] == [header.index("LABEL")] * 2
    assert all(row.index("revoked") == header.index("STATE") for row in rows[1:])


def test_aligned_pads_every_column_but_the_last() -> None:
    """Each column is as wide as its widest cell, two spaces apart, no trailing blanks."""
    from services.cli.tokens import aligned

    assert aligned([("ID", "HUB", "LABEL"), ("a1", "H0001", ""), ("b", "H1", "x")]) == [
        "ID  HUB    LABEL",
        "a1  H0001",
        "b   H1     x",
    ]


def test_a_label_with_a_newline_is_refused_and_a_stored_one_cannot_fake_a_row(
        runner, tmp_path) -> None:
    """`--label "$(printf 'evil\\nlabel')"` put a line of its own into list-tokens."""
    refused = runner.invoke(cli, ["hubs", "add-token", "H01", "--label", "evil\nH02  x"])
    assert refused.exit_code == 2 and "--label" in refused.output
    assert "one line without control characters" in refused.output
    from services.auth.tokens import TokenStore
    from services.settings import Settings

    store = TokenStore(Settings().token_db_url, Settings().pepper())
    store.add("hub", "H01", "old\nrow")  # as a store written before the check holds
    store.close()
    listed = runner.invoke(cli, ["hubs", "list-tokens"])
    assert listed.exit_code == 0, listed.output
    assert len(listed.output.strip().splitlines()) == 2  # the header and one token
    assert "old\\nrow" in listed.output
