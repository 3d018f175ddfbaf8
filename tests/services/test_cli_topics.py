"""`packloop topics create`: partitions or replication below 1 are a usage error (exit 2,
nothing asked of the broker); a topic the broker did not create is named, exit 1."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from services.cli import cli


@pytest.fixture
def asked(monkeypatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def create(kafka: Any, topics: Any, partitions: int, replication: int = 1) -> dict[str, str]:
        calls.append((partitions, replication))
        return {f"{topics.prefix}hub-events": "created",
                f"{topics.prefix}dead-letter": "failed: InvalidPartitionsError (error code 37): "
                                               "Number of partitions is invalid."}

    monkeypatch.setattr("streams.create_topics", create)
    return calls


@pytest.mark.parametrize("args", [["--partitions", "0"], ["--partitions", "-2"],
                                  ["--replication-factor", "0"]])
def test_counts_below_one_are_a_usage_error(asked, args: list[str]) -> None:
    """Before: `--partitions 0` printed "created" and left topics nothing could be written to."""
    result = CliRunner().invoke(cli, ["topics", "create", *args])
    assert result.exit_code == 2, result.output
    assert args[0] in result.output and "x>=1" in result.output
    assert asked == []


def test_a_topic_the_broker_refused_is_named_and_exits_1(asked) -> None:
    result = CliRunner().invoke(cli, ["topics", "create", "--partitions", "2",
                                      "--replication-factor", "3"])
    assert result.exit_code == 1
    assert "hub-events\tcreated" in result.output
    assert "dead-letter\tfailed: InvalidPartitionsError (error code 37)" in result.output
    assert "1 topic(s) not created: dead-letter" in result.output
    assert asked == [(2, 3)]


def test_the_replication_factor_defaults_to_the_setting(asked, monkeypatch) -> None:
    """Before: the default was a fixed 1, so the topics job created production topics with
    one copy (PACKLOOP_REPLICATION_FACTOR did not exist)."""
    monkeypatch.setenv("PACKLOOP_REPLICATION_FACTOR", "3")
    CliRunner().invoke(cli, ["topics", "create", "--partitions", "2"])
    CliRunner().invoke(cli, ["topics", "create", "--partitions", "2",
                             "--replication-factor", "2"])
    monkeypatch.delenv("PACKLOOP_REPLICATION_FACTOR")
    CliRunner().invoke(cli, ["topics", "create", "--partitions", "2"])
    assert asked == [(2, 3), (2, 2), (2, 1)]
