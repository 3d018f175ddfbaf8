"""`packloop plan submit|status|fetch` at the edges: the token on the command line or in
the environment, a broken file, and how a job's progress and KPIs read."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from services.cli import cli

JOB = {"job_id": "plan-0123", "status": "queued", "attempts": 0, "links": {}}


@pytest.fixture
def sent(monkeypatch) -> list[httpx.Request]:
    """The requests the CLI sends, answered with a queued job."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=JOB)

    real_client = httpx.Client

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(answer)
        return real_client(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
    monkeypatch.delenv("PACKLOOP_PLANNER_TOKEN", raising=False)
    return requests


@pytest.mark.parametrize("command", [["status", "plan-0123"],
                                     ["fetch", "plan-0123", "--out", "x"],
                                     ["submit", "--from-state"]])
def test_token_flag_is_sent_and_wins_over_the_variable(sent, monkeypatch, command) -> None:
    """`--token` works on every job command without PACKLOOP_PLANNER_TOKEN, and a token
    given on the command line is the one sent when the variable is set too."""
    r = CliRunner().invoke(cli, ["plan", *command, "--token", "from-flag"])
    assert sent and sent[-1].headers["authorization"] == "Bearer from-flag", r.output
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", "from-env")
    CliRunner().invoke(cli, ["plan", *command, "--token", "from-flag-2"])
    assert sent[-1].headers["authorization"] == "Bearer from-flag-2"
    CliRunner().invoke(cli, ["plan", *command])
    assert sent[-1].headers["authorization"] == "Bearer from-env"


def test_no_token_names_both_ways_to_give_one(sent) -> None:
    r = CliRunner().invoke(cli, ["plan", "status", "plan-0123"])
    assert r.exit_code == 1 and not sent
    assert "PACKLOOP_PLANNER_TOKEN" in r.output and "--token" in r.output


@pytest.mark.parametrize("command", ["submit", "status", "fetch"])
def test_help_names_the_token_variable_and_flag(command) -> None:
    """A user who only reads `--help` learns where the token comes from."""
    text = CliRunner().invoke(cli, ["plan", command, "--help"]).output
    assert "--token" in text and "PACKLOOP_PLANNER_TOKEN" in text
    assert "PACKLOOP_PLANNER_URL" in text


def test_submit_of_a_broken_file_is_one_line_with_its_place(sent, tmp_path) -> None:
    """The same line and column as `plan solve` gives, exit 2, nothing sent."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhubs: [a, b\nfoo: 1\n")
    r = CliRunner().invoke(cli, ["plan", "submit", str(bad), "--token", "t"])
    assert r.exit_code == 2 and not sent
    assert len(r.output.strip().splitlines()) == 1
    assert f"{bad}:3:4:" in r.output
